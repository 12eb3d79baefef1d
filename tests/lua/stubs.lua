-- Every function a native module registers has a LuaLS stub in lua/types/,
-- and so does every method of the handles those modules return.
local aibench = require("aibench")
local fs = require("aibench.fs")
local t = require("aibench.testing")

local missing = {}

-- The stubs' folder, lua/types at the repository root (where the tests run).
local TYPES = "lua/types/"

--- The stub file declaring `---@class name` (its text), if any.
local function class_file(name)
  for _, f in ipairs(fs.list(TYPES) or {}) do
    local text = fs.read(TYPES .. f) or ""
    if text:find("\n%-%-%-@class " .. name:gsub("%p", "%%%0") .. "\n") then
      return text
    end
  end
end

--- A module's stub text, with the text of the class it inherits from
--- (`---@class aibench.local: aibench.Executor`): functions documented there
--- count as documented.
local function stub_text(modname)
  local text = fs.read(TYPES .. modname .. ".lua")
  if not text then
    missing[#missing + 1] = modname .. " (no " .. TYPES .. modname .. ".lua)"
    return ""
  end
  local parent = text:match("%-%-%-@class [%w_.]+: ([%w_.]+)")
  if parent then
    local ptext = class_file(parent)
    if not ptext then
      missing[#missing + 1] = modname .. " (its class " .. parent .. " is not declared in " .. TYPES .. ")"
    end
    text = text .. "\n" .. (ptext or "")
  end
  return text
end

local function escape(s)
  return (s:gsub("%p", "%%%0"))
end

for _, name in ipairs(aibench.modules("native")) do
  local stub = stub_text(name)
  t.contains(stub, "---@meta " .. name, name .. " stub header")
  for k, v in pairs(require(name)) do
    if type(v) == "function" and not stub:find("function [%w_]+%." .. escape(k) .. "%(") then
      missing[#missing + 1] = name .. "." .. k
    end
  end
end

-- Handles (userdata) returned by native modules: their methods need stubs too.
local handles = dofile("tests/lua/support/handles.lua")
for _, h in ipairs(handles) do
  local stub = stub_text(h.module)
  local obj = h.make()
  -- mlua keeps a userdata's field getters and methods in tables held as
  -- upvalues of its __index function; debug reaches past __metatable.
  local index = debug.getmetatable(obj).__index
  local names = {}
  if type(index) == "table" then
    names[1] = index
  else
    for i = 1, 16 do
      local n, v = debug.getupvalue(index, i)
      if n == nil then
        break
      end
      if type(v) == "table" then
        names[#names + 1] = v
      end
    end
  end
  t.ok(#names > 0, h.class .. ": no methods found")
  for _, tbl in ipairs(names) do
    for k in pairs(tbl) do
      local documented = stub:find("function " .. escape(h.class) .. "[:.]" .. escape(k) .. "%(")
        or stub:find("---@field " .. escape(k) .. "[%s?]")
      if not k:match("^__") and not documented then
        missing[#missing + 1] = h.module .. " " .. h.class .. "." .. k
      end
    end
  end
  if h.cleanup then
    h.cleanup(obj)
  end
end

if #missing > 0 then
  error("functions without a LuaLS stub:\n  " .. table.concat(missing, "\n  "))
end
