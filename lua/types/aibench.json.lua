---@meta aibench.json

---JSON. `json.null` is JSON null (Lua nil cannot live in a table). Tables marked
---with `json.array` (and arrays from `decode`) always encode as arrays; other
---empty tables encode as `{}`; tables with keys exactly 1..n encode as arrays.
---@class aibench.json
local json = {}

---The JSON null value (a light userdata), distinct from nil.
---@type lightuserdata
json.null = nil

---Encodes a value. Raises on values with no JSON form (functions, NaN, cycles).
---@param value any
---@param opts? {pretty?: boolean}
---@return string
function json.encode(value, opts) end

---Decodes JSON text.
---@param text string
---@return any value
---@return aibench.Error? err `kind = "parse"`, with `line` and `column`
function json.decode(text) end

---Marks a table (a new one when omitted) as an array, so it encodes as `[]` even empty.
---@param t? table
---@return table
function json.array(t) end

---True when the table carries the array mark.
---@param t table
---@return boolean
function json.is_array(t) end

return json
