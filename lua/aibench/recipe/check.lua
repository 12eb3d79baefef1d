--- Checks a decoded recipe (or any value) against a schema of
--- aibench.recipe.schema, collecting every problem as "field.path: message".
local aibench = require("aibench")
local json = require("aibench.json")
local util = require("aibench.util")

local M = {}

function M.type_name(v)
  if v == json.null then
    return "null"
  end
  if math.type(v) == "integer" then
    return "integer"
  end
  if type(v) == "table" then
    return json.is_array(v) and "list" or "table"
  end
  return type(v)
end

local function show(v)
  if type(v) == "string" then
    return string.format("%q", v)
  end
  if type(v) == "table" then
    return M.type_name(v)
  end
  return tostring(v)
end

M.keys_of = util.sorted_keys

local function join(path, key)
  if path == "" then
    return tostring(key)
  end
  if type(key) == "number" then
    return path .. "[" .. key .. "]"
  end
  return path .. "." .. key
end

--- Checks `v` against `schema`; returns a list of "path: message" strings.
function M.check(v, schema, path, errs)
  local k = schema.kind
  local function bad(expected)
    errs[#errs + 1] = string.format("%s: expected %s, got %s", path, expected, show(v))
  end
  if k == "any" then
    return
  elseif k == "string" then
    if type(v) ~= "string" then
      bad("a string")
    end
  elseif k == "scalar" then
    local t = type(v)
    if t ~= "string" and t ~= "number" and t ~= "boolean" then
      bad("a string, number or boolean")
    end
  elseif k == "boolean" then
    if type(v) ~= "boolean" then
      bad("true or false")
    end
  elseif k == "integer" then
    if math.type(v) ~= "integer" then
      bad("an integer")
    elseif (schema.min and v < schema.min) or (schema.max and v > schema.max) then
      bad(string.format("an integer from %s to %s", schema.min or "-inf", schema.max or "inf"))
    end
  elseif k == "number" then
    if type(v) ~= "number" then
      bad("a number")
    elseif schema.min and v <= schema.min then
      bad("a number above " .. schema.min)
    end
  elseif k == "name" then
    if type(v) ~= "string" then
      bad("a name (letters, digits, '.', '_', '-')")
    else
      local _, err = aibench.check_name(v)
      if err then
        errs[#errs + 1] = path .. ": " .. err.message
      end
    end
  elseif k == "port" then
    if not (v == "auto" or (math.type(v) == "integer" and v >= 0 and v <= 65535)) then
      bad('a port number (0-65535) or "auto"')
    end
  elseif k == "time" then
    local local_ = require("aibench.local")
    -- A bare number is minutes, as for sbatch --time.
    if type(v) ~= "string" and math.type(v) ~= "integer" then
      bad('a time limit like "04:00:00" (or minutes)')
    else
      local _, err = local_.time_limit_seconds(tostring(v))
      if err then
        errs[#errs + 1] = path .. ": " .. err.message
      end
    end
  elseif k == "oneof" then
    for _, ok in ipairs(schema.values) do
      if v == ok then
        return
      end
    end
    local quoted = {}
    for i, s in ipairs(schema.values) do
      quoted[i] = string.format("%q", s)
    end
    errs[#errs + 1] = string.format("%s: expected one of %s, got %s%s", path, table.concat(quoted, ", "), show(v), util.did_you_mean(v, schema.values, ' (did you mean "%s"?)'))
  elseif k == "list" then
    if type(v) ~= "table" or (next(v) ~= nil and #v == 0) then
      bad("a list")
      return
    end
    for i, x in ipairs(v) do
      M.check(x, schema.of, join(path, i), errs)
    end
  elseif k == "map" then
    if type(v) ~= "table" or (next(v) ~= nil and #v > 0) then
      bad("a table of names to values")
      return
    end
    for key, x in pairs(v) do
      M.check(x, schema.of, join(path, key), errs)
    end
  elseif k == "table" then
    if type(v) ~= "table" or (#v > 0) then
      bad("a table")
      return
    end
    for _, req in ipairs(schema.required) do
      if v[req] == nil then
        errs[#errs + 1] = string.format("%s: missing (required)", join(path, req))
      end
    end
    if schema.open then
      return
    end
    local known = M.keys_of(schema.fields)
    for key, x in pairs(v) do
      local sub = schema.fields[key]
      if sub then
        M.check(x, sub, join(path, key), errs)
      else
        errs[#errs + 1] = string.format("%s: unknown field%s", join(path, key), util.did_you_mean(key, known))
      end
    end
  end
end

--- Validates a decoded recipe; raises one error listing every problem,
--- each as "FILE: field.path: message".
function M.validate(kind, doc, file)
  local errs = {}
  if type(doc) ~= "table" then
    error(string.format("%s: expected a YAML mapping at the top, got %s", file, M.type_name(doc)), 0)
  end
  M.check(doc, require("aibench.recipe.schema").kinds[kind], "", errs)
  table.sort(errs)
  if #errs > 0 then
    for i, e in ipairs(errs) do
      errs[i] = file .. ": " .. e
    end
    error(table.concat(errs, "\n"), 0)
  end
  return doc
end

return M
