---@meta aibench.log

---Messages through the host's logger (stderr; `-v`/`-q`, `AIBENCH_LOG`, target `lua`).
---@class aibench.log
local log = {}

---@param ... any
function log.error(...) end
---@param ... any
function log.warn(...) end
---@param ... any
function log.info(...) end
---@param ... any
function log.debug(...) end
---@param ... any
function log.trace(...) end

return log
