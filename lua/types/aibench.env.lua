---@meta aibench.env

---Environment variables.
---@class aibench.env
local env = {}

---@param name string
---@param default? string
---@return string?
function env.get(name, default) end

---Expands `${NAME}` and `${NAME:-default}` (defaults may nest) from the
---environment, as the job agent does for a container image; a malformed form
---is kept as written.
---@param s string
---@return string
function env.expand(s) end

---Sets (or with nil, removes) a variable for this process and its children.
---@param name string
---@param value string?
function env.set(name, value) end

---@return table<string, string>
function env.all() end

return env
