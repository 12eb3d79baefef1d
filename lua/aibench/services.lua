--- Registry housekeeping: drop instances whose job is gone.
local registry = require("aibench.registry")
local deploy = require("aibench.deploy")

local M = {}

--- Removes every registry entry whose job is no longer pending or running
--- (asked of the executor that ran it, one batched call per executor).
---@return table[]? removed entries, with the job's state
---@return table? err
function M.prune()
  local services, err = registry.services()
  if not services then
    return nil, err
  end
  local entries = {}
  for _, s in ipairs(services) do
    for _, i in ipairs(registry.list(s) or {}) do
      entries[#entries + 1] = { service = s, instance_id = i.instance_id, job_id = i.job_id, executor = i.executor }
    end
  end
  local by_exec = {}
  for _, e in ipairs(entries) do
    local ok = deploy.executors[e.executor] ~= nil
    local key = ok and e.executor or "?"
    by_exec[key] = by_exec[key] or {}
    table.insert(by_exec[key], e)
  end
  local removed = {}
  for exec, list in pairs(by_exec) do
    local states = {}
    if exec ~= "?" then
      local ids = {}
      for i, e in ipairs(list) do
        ids[i] = e.job_id
      end
      local s, serr = deploy.executor(exec).statuses(ids)
      if not s then
        return nil, serr
      end
      states = s
    end
    for _, e in ipairs(list) do
      local st = states[e.job_id] and states[e.job_id].state or "UNKNOWN"
      if st ~= "PENDING" and st ~= "STARTING" and st ~= "RUNNING" then
        registry.deregister(e.service, e.instance_id)
        e.state = st
        removed[#removed + 1] = e
      end
    end
  end
  return removed
end

return M
