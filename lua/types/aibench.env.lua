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

---Whether a standard stream is a terminal (colour and progress lines are
---for terminals only; `aibench.report.format.color_on` decides colour).
---@param stream "stdin"|"stdout"|"stderr"
---@return boolean
function env.is_terminal(stream) end

---Columns of the terminal a stream writes to, or nil when it is not one
---(a line updated in place must fit, or it wraps).
---@param stream "stdout"|"stderr"
---@return integer?
function env.terminal_columns(stream) end

return env
