---@meta aibench.time

---Clocks. Durations are seconds (floats).
---@class aibench.time
local time = {}

---Wall-clock time, seconds since the Unix epoch.
---@return number
function time.now() end

---Monotonic seconds since the process started (for measuring intervals).
---@return number
function time.monotonic() end

---Sleeps without blocking other async work.
---@async
---@param seconds number
function time.sleep(seconds) end

---Formats epoch seconds (default now) as ISO-8601 UTC (`2026-11-27T18:00:00.000Z`),
---or with a strftime-style format.
---@param t? number
---@param fmt? string
---@return string
function time.format(t, fmt) end

---Parses ISO-8601 / RFC 3339 into epoch seconds.
---@param s string
---@return number? t
---@return aibench.Error? err `kind = "parse"`
function time.parse(s) end

return time
