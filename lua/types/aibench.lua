---@meta aibench

---An expected failure: functions that can fail return `nil, err`.
---@class aibench.Error
---@field kind string    short machine-readable class (`not_found`, `timeout`, `parse`, `connect`, ...)
---@field message string what went wrong, for a person

---Facts about the running aibench binary.
---@class aibench
---@field version string
local aibench = {}

---Absolute path of the running aibench binary (job scripts call it back).
---@return string
function aibench.exe() end

---`$AIBENCH_HOME` (default `~/.aibenchmark`).
---@return string
function aibench.home() end

---This node's short host name.
---@return string
function aibench.hostname() end

---Names of modules `require` can load: `"native"`, `"lua"` or all.
---@param kind? "native"|"lua"
---@return string[]
function aibench.modules(kind) end

---Text of a stock recipe shipped in the binary (`servers/vllm-sim.yaml`), or nil.
---@param path string
---@return string?
function aibench.stock_recipe(path) end

---Paths of all stock recipes shipped in the binary.
---@return string[]
function aibench.stock_recipes() end

return aibench
