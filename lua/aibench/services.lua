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
  -- Entries from an executor this aibench does not know cannot be checked: gone.
  local known = {}
  for _, e in ipairs(entries) do
    if deploy.executors[e.executor] then
      known[#known + 1] = e
    else
      e.state = "UNKNOWN"
    end
  end
  local _, rerr = deploy.refresh(known)
  if rerr then
    return nil, rerr
  end
  local removed = {}
  for _, e in ipairs(entries) do
    if e.state ~= "PENDING" and e.state ~= "STARTING" and e.state ~= "RUNNING" then
      registry.deregister(e.service, e.instance_id)
      removed[#removed + 1] = e
    end
  end
  return removed
end

return M
