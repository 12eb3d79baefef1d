---@meta aibench.local

---The local executor: the same job script, run with bash in its own process
---group on this machine. Its functions are aibench.Executor's.
---@class aibench.local: aibench.Executor
local executor = {}

return executor
