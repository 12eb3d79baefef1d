--- Finding recipes: ./recipes, then each folder of $AIBENCH_RECIPES, then the
--- stock recipes inside the binary; a path names a file directly.
local fs = require("aibench.fs")
local env = require("aibench.env")
local aibench = require("aibench")
local util = require("aibench.util")

local M = {}

M.KINDS = { server = "servers", client = "clients", monitor = "monitors" }

local function search_dirs(kind)
  local sub = M.KINDS[kind]
  local dirs = { fs.join("recipes", sub) }
  local extra = env.get("AIBENCH_RECIPES")
  if extra and extra ~= "" then
    for d in extra:gmatch("[^:]+") do
      dirs[#dirs + 1] = fs.join(d, sub)
    end
  end
  return dirs
end

local function stock(kind)
  local out = {}
  local prefix = M.KINDS[kind] .. "/"
  for _, p in ipairs(aibench.stock_recipes()) do
    if p:sub(1, #prefix) == prefix and (p:match("%.ya?ml$")) then
      out[#out + 1] = p
    end
  end
  return out
end

local function stem(path)
  return fs.basename(path):gsub("%.ya?ml$", "")
end

--- All recipes of a kind: {name, file, source}, first found wins.
function M.list(kind)
  assert(M.KINDS[kind], "recipe kind must be server, client or monitor")
  local seen, out = {}, {}
  local function add(name, file, source)
    if not seen[name] then
      seen[name] = true
      out[#out + 1] = { name = name, file = file, source = source }
    end
  end
  for _, d in ipairs(search_dirs(kind)) do
    for _, f in ipairs(fs.list(d) or {}) do
      if f:match("%.ya?ml$") then
        add(stem(f), fs.join(d, f), "file")
      end
    end
  end
  for _, p in ipairs(stock(kind)) do
    add(stem(p), "stock:" .. p, "stock")
  end
  table.sort(out, function(a, b)
    return a.name < b.name
  end)
  return out
end

--- Finds a recipe by name (or path); returns its text and a display name.
function M.find(kind, name)
  if name:match("%.ya?ml$") or name:find("/", 1, true) then
    local text, err = fs.read(name)
    if not text then
      error(string.format("recipe '%s': %s", name, err.message), 0)
    end
    return text, name
  end
  for _, d in ipairs(search_dirs(kind)) do
    for _, ext in ipairs({ ".yaml", ".yml" }) do
      local p = fs.join(d, name .. ext)
      local text = fs.read(p)
      if text then
        return text, p
      end
    end
  end
  for _, ext in ipairs({ ".yaml", ".yml" }) do
    local rel = M.KINDS[kind] .. "/" .. name .. ext
    local text = aibench.stock_recipe(rel)
    if text then
      return text, "stock:" .. rel
    end
  end
  local names = {}
  for _, r in ipairs(M.list(kind)) do
    names[#names + 1] = r.name
  end
  error(string.format("unknown %s recipe '%s'%s; available: %s", kind, name, util.did_you_mean(name, names), #names > 0 and table.concat(names, ", ") or "none"), 0)
end

return M
