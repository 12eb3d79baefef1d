---@meta aibench.agent

---The job agent's instructions (`agent.json`), built and checked here.
---@class aibench.agent
local agent = {}

---@class aibench.AgentSpec
---@field instance_id string
---@field executor "local"|"slurm"
---@field home string `$AIBENCH_HOME` to register in
---@field service? string register under this service (none: only supervise)
---@field recipe_name? string
---@field ports? (integer|"auto")[]
---@field health? {path?: string, timeout_s?: number} must answer 2xx before registering
---@field time_limit_s? integer the local executor's time limit
---@field grace_s? number SIGTERM to SIGKILL (default 10)
---@field script? string a file whose `{port}` placeholders are filled in before start
---@field aibench? string this binary, for `{aibench}`
---@field extra? table recorded with the registry entry
---@field metrics? {gpu?: "auto"|"dcgm"|"nvml"|"off", gpu_from_file?: string} the agent's metrics endpoint beside the service (its process group; GPUs by `gpu`)

---The text of `agent.json`; raises naming the field when the spec is wrong
---(an unknown field gets a did-you-mean).
---@param spec aibench.AgentSpec
---@return string
function agent.encode(spec) end

return agent
