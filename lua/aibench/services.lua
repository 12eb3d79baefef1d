--- Registry housekeeping: read every service past damaged files, drop
--- instances whose job is gone, move damaged files aside.
local registry = require("aibench.registry")
local deploy = require("aibench.deploy")
local util = require("aibench.util")

local M = {}

local warned = {}

--- Every registered service: {names = sorted list, services = {name = instances}}.
--- A file that is not a registry file is skipped with one warning on stderr
--- (per file and process) naming it and what is wrong, so the other
--- services stay usable.
function M.scan()
  local scan, err = registry.scan()
  if not scan then
    return nil, err
  end
  for _, c in ipairs(scan.corrupt) do
    if not warned[c.path] then
      warned[c.path] = true
      io.stderr:write(string.format("aibench: warning: skipping %s: not a registry file (%s); `aibench services prune` moves it aside\n", c.path, c.message))
    end
  end
  return { names = util.sorted_keys(scan.services), services = scan.services, corrupt = scan.corrupt }
end

--- Removes every registry entry whose job is no longer pending or running
--- (asked of the executor that ran it, one batched call per executor), and
--- moves files that are not registry files aside.
---@return table[]? removed entries, with the job's state
---@return table[]|table moved corrupt files ({path, moved_to, message}), or err
function M.prune()
  local scan, err = registry.scan()
  if not scan then
    return nil, err
  end
  local moved = {}
  for _, c in ipairs(scan.corrupt) do
    local to, qerr = registry.quarantine(c.service)
    if qerr then
      return nil, qerr
    end
    if to then
      moved[#moved + 1] = { path = c.path, moved_to = to, message = c.message }
    end
  end
  local entries = {}
  for _, s in ipairs(util.sorted_keys(scan.services)) do
    for _, i in ipairs(scan.services[s]) do
      entries[#entries + 1] = { service = s, instance_id = i.instance_id, job_id = i.job_id, executor = i.executor }
    end
  end
  -- Entries from an executor this aibench does not know cannot be checked: gone.
  local _, rerr = deploy.refresh_known(entries, "UNKNOWN")
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
  return removed, moved
end

return M
