--- Which executor runs a job: the executor modules by name (aibench.local,
--- aibench.slurm), the one a command uses, and whether it can be used here.
local util = require("aibench.util")

local M = {}

M.executors = { ["local"] = require("aibench.local"), slurm = require("aibench.slurm") }

--- The executor module by name; raises on an unknown name.
function M.executor(name)
  local ex = M.executors[name]
  if not ex then
    util.usage_error(string.format("unknown executor '%s'%s; expected local or slurm", tostring(name), util.did_you_mean(tostring(name), { "local", "slurm" })))
  end
  return ex
end

--- The executor a command uses: the --executor flag, else the recipe's
--- orchestration.executor, else local.
function M.executor_name(r, flag)
  return flag or (r.orchestration and r.orchestration.executor) or "local"
end

--- The executor module, checked usable (SLURM answers); nil, err otherwise.
function M.ready_executor(name)
  local ex = M.executor(name)
  local ok, err = ex.available()
  if not ok then
    return nil, err
  end
  return ex
end

--- True for a final state; the states are the executors' (Rust's) rule.
function M.is_final(state)
  return state ~= nil and M.executors["local"].is_final(state)
end

return M
