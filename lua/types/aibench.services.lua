---@meta aibench.services

---Registry housekeeping: read every service past damaged files, drop
---instances whose job is gone, move damaged files aside.
---@class aibench.services
local services = {}

---Every registered service. A file that is not a registry file is skipped
---with one warning on stderr naming it, so the other services stay usable.
---@return {names: string[], services: table<string, aibench.Instance[]>, corrupt: table[]}? scan
---@return aibench.Error? err
function services.scan() end

---Removes every registry entry whose job is no longer pending or running
---(asked of the executor that ran it), and moves files that are not
---registry files aside.
---@return table[]? removed entries, with the job's state
---@return table[]|aibench.Error moved corrupt files ({path, moved_to, message}), or the error
function services.prune() end

return services
