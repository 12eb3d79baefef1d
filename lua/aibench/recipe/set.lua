--- `--set a.b=value` overrides, each path checked against the schema.
local yaml = require("aibench.yaml")
local json = require("aibench.json")
local aibench = require("aibench")
local check = require("aibench.recipe.check")

local M = {}

--- Parses "a.b=value" (value as YAML: 10, true, [1, 2], text).
function M.parse_set(s)
  local path, value = s:match("^([%w_%.%-%[%]]+)=(.*)$")
  if not path then
    error(string.format("--set %s: expected key.path=value", s), 0)
  end
  local v = yaml.decode(value)
  if v == nil or (type(v) == "table" and not json.is_array(v) and next(v) == nil and value ~= "{}") then
    v = value
  end
  local parts = {}
  for p in path:gmatch("[^%.]+") do
    parts[#parts + 1] = tonumber(p) and math.tointeger(tonumber(p)) or p
  end
  return parts, v
end

--- Applies overrides, checking each path exists in the schema.
function M.apply_sets(kind, doc, sets)
  for _, s in ipairs(sets or {}) do
    local parts, v = M.parse_set(s)
    -- Check the path against the schema, down to the first open (free-form)
    -- table or non-table field: anything goes below it.
    local parent = require("aibench.recipe.schema").kinds[kind]
    for i = 1, #parts do
      if not parent or parent.kind ~= "table" or parent.open then
        break
      end
      local field = parent.fields[parts[i]]
      if not field then
        local prefix = table.concat(parts, ".", 1, i - 1)
        local hint = aibench.suggest(tostring(parts[i]), check.keys_of(parent.fields))
        error(string.format("--set %s: unknown field '%s'%s%s", s, parts[i], prefix ~= "" and (" in " .. prefix) or "", hint and (" (did you mean '" .. hint .. "'?)") or ""), 0)
      end
      parent = field
    end
    local t = doc
    for i = 1, #parts - 1 do
      if type(t[parts[i]]) ~= "table" then
        t[parts[i]] = {}
      end
      t = t[parts[i]]
    end
    t[parts[#parts]] = v
  end
  return doc
end

return M
