--- Recipe overrides, each path checked against the schema: `path = value`
--- entries from scripts (the value used as it is), and the command line's
--- `--set a.b=value` strings (the value read as YAML).
local yaml = require("aibench.yaml")
local json = require("aibench.json")
local check = require("aibench.recipe.check")
local schema = require("aibench.recipe.schema")
local util = require("aibench.util")

local M = {}

--- Splits "a.b.1" into {"a", "b", 1} (numbers are list indices).
function M.parse_path(path)
  local parts = {}
  for p in path:gmatch("[^%.]+") do
    parts[#parts + 1] = tonumber(p) and math.tointeger(tonumber(p)) or p
  end
  return parts
end

local SET = "^([%w_%.%-%[%]]+)=(.*)$"

--- The field a "a.b.1=value" string sets, as fields are named in errors
--- (`a.b[1]`); nil when it is not key.path=value.
function M.set_field(s)
  local path = type(s) == "string" and s:match(SET)
  if not path then
    return nil
  end
  local field = ""
  for _, p in ipairs(M.parse_path(path)) do
    field = math.type(p) == "integer" and string.format("%s[%d]", field, p) or (field == "" and p or field .. "." .. p)
  end
  return field
end

--- Parses "a.b=value" (value as YAML: 10, true, [1, 2], text).
function M.parse_set(s)
  local path, value = s:match(SET)
  if not path then
    util.usage_error(string.format("--set %s: expected key.path=value", s))
  end
  local v = yaml.decode(value)
  if v == nil or (type(v) == "table" and not json.is_array(v) and next(v) == nil and value ~= "{}") then
    v = value
  end
  return M.parse_path(path), v
end

--- The overrides in the order they apply: `sets` holds `path = value`
--- entries (by path, so a parent before its fields), then "k=v" strings in
--- its list part (in order, after the entries: a string added to a table
--- of entries overrides them). Each is {path, value} or {set = "k=v"},
--- parsed when it is applied.
local function overrides(sets)
  sets = sets or {}
  local out = {}
  for _, k in ipairs(util.sorted_keys(sets)) do
    if type(k) == "string" then
      out[#out + 1] = { path = k, value = sets[k] }
    elseif math.type(k) ~= "integer" or k < 1 or k > #sets then
      error(string.format("recipe overrides: expected path = value entries or \"key.path=value\" strings, got the key %s", tostring(k)), 0)
    end
  end
  for _, s in ipairs(sets) do
    if type(s) ~= "string" then
      error(string.format("recipe overrides: expected \"key.path=value\" strings in the list, got %s", check.type_name(s)), 0)
    end
    out[#out + 1] = { set = s }
  end
  return out
end

--- Applies overrides, checking each path exists in the schema. `sets`:
--- `{["workload.duration_seconds"] = 20}` entries (values used as they
--- are), "k=v" strings (--set; values read as YAML), or both in one table.
function M.apply_sets(kind, doc, sets)
  for _, o in ipairs(overrides(sets)) do
    local parts, v, what
    if o.set then
      parts, v = M.parse_set(o.set)
      what = "--set " .. o.set
    else
      parts, v, what = M.parse_path(o.path), o.value, "override " .. o.path
      if not o.path:match("^[%w_%.%-%[%]]+$") or #parts == 0 then
        error(string.format("%s: expected a key.path", what), 0)
      end
    end
    -- Check the path against the schema, down to the first open (free-form)
    -- table or non-table field: anything goes below it.
    local parent = schema.kinds[kind]
    for i = 1, #parts do
      if not parent or parent.kind ~= "table" or parent.open then
        break
      end
      local field = parent.fields[parts[i]]
      if not field then
        local prefix = table.concat(parts, ".", 1, i - 1)
        local msg = string.format("%s: unknown field '%s'%s%s", what, parts[i], prefix ~= "" and (" in " .. prefix) or "", util.did_you_mean(tostring(parts[i]), check.keys_of(parent.fields)))
        -- A --set typo is a bad flag value; a script's override is its own error.
        if o.set then
          util.usage_error(msg)
        end
        error(msg, 0)
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
