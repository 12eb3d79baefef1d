---@meta aibench.env

---Environment variables.
---@class aibench.env
local env = {}

---@param name string
---@param default? string
---@return string?
function env.get(name, default) end

---Sets (or with nil, removes) a variable for this process and its children.
---@param name string
---@param value string?
function env.set(name, value) end

---@return table<string, string>
function env.all() end

return env
