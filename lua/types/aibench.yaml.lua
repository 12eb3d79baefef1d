---@meta aibench.yaml

---YAML. Null values inside maps are dropped on decode (so `if cfg.x then` works).
---@class aibench.yaml
local yaml = {}

---Decodes YAML text.
---@param text string
---@param opts? {name?: string} `name` prefixes error messages (a file name)
---@return any value
---@return aibench.Error? err `kind = "parse"`, with `line` and `column`
function yaml.decode(text, opts) end

---Encodes a value as YAML.
---@param value any
---@return string
function yaml.encode(value) end

return yaml
