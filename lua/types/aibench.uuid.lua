---@meta aibench.uuid

---Ids: random UUIDs and short instance ids.
---@class aibench.uuid
local uuid = {}

---A random (version 4) UUID.
---@return string
function uuid.v4() end

---Eight hex digits, for short instance ids.
---@return string
function uuid.short() end

return uuid
