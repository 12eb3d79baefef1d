-- Every function a native module registers has a LuaLS stub in lua/types/,
-- and so does every method of the handles those modules return; so do the
-- Lua modules users call (server, client, monitor, report, ...) and the
-- deployment handle. Both ways: a stub of a function that does not exist
-- fails too (the REPL's help() reads these stubs).
local aibench = require("aibench")
local fs = require("aibench.fs")
local t = require("aibench.testing")

local missing = {}
-- Documented functions that do not exist.
local stale = {}

-- The stubs' folder, lua/types at the repository root (where the tests run).
local TYPES = "lua/types/"

local function escape(s)
  return (s:gsub("%p", "%%%0"))
end

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


--- The functions a stub documents on a class's table: `function VAR.name(`
--- where `local VAR = {}` follows `---@class class`.
local function documented(text, class)
  local at = text:find("%-%-%-@class " .. escape(class) .. "[:\n]")
  local var = at and text:match("\nlocal ([%w_]+) = {}", at)
  local out = {}
  if var then
    for fname in text:gmatch("\nfunction " .. escape(var) .. "%.([%w_]+)%(") do
      out[#out + 1] = fname
    end
  end
  return out
end

--- Both ways: every function of module `name` has a stub, and every
--- function the stub documents (itself or through its parent class) exists.
local function check_module(name)
  local stub = stub_text(name)
  t.contains(stub, "---@meta " .. name, name .. " stub header")
  local mod = require(name)
  for k, v in pairs(mod) do
    if type(v) == "function" and not stub:find("function [%w_]+%." .. escape(k) .. "%(") then
      missing[#missing + 1] = name .. "." .. k
    end
  end
  local own = fs.read(TYPES .. name .. ".lua") or ""
  local names = documented(own, name)
  local parent = own:match("%-%-%-@class [%w_.]+: ([%w_.]+)")
  if parent then
    for _, f in ipairs(documented(class_file(parent) or "", parent)) do
      names[#names + 1] = f
    end
  end
  t.ok(#names > 0, name .. ": its stub documents no function")
  for _, f in ipairs(names) do
    if type(mod[f]) ~= "function" then
      stale[#stale + 1] = name .. "." .. f
    end
  end
end

for _, name in ipairs(aibench.modules("native")) do
  check_module(name)
end

-- The Lua modules users call (README's "Writing Lua scripts"): the same, both ways.
for _, short in ipairs({ "server", "client", "monitor", "report", "results", "services", "scenario", "recipe", "pretty", "testing" }) do
  check_module("aibench." .. short)
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

-- Deployments (what server.run, monitor.start and the lists return) are Lua
-- handles: their methods and the stub's `function Deployment:name(` agree.
do
  local text = fs.read(TYPES .. "aibench.server.lua") or ""
  local documented_methods = {}
  for m in text:gmatch("\nfunction Deployment:([%w_]+)%(") do
    documented_methods[m] = true
  end
  local methods = getmetatable(require("aibench.deploy").handle({})).__index
  for k, v in pairs(methods) do
    if type(v) == "function" and not documented_methods[k] then
      missing[#missing + 1] = "aibench.Deployment:" .. k
    end
  end
  for k in pairs(documented_methods) do
    if type(methods[k]) ~= "function" then
      stale[#stale + 1] = "aibench.Deployment:" .. k
    end
  end
  t.ok(next(documented_methods) ~= nil, "aibench.Deployment: no method documented")
end

local problems = {}
if #missing > 0 then
  problems[#problems + 1] = "functions without a LuaLS stub:\n  " .. table.concat(missing, "\n  ")
end
if #stale > 0 then
  problems[#problems + 1] = "stubs of functions that do not exist:\n  " .. table.concat(stale, "\n  ")
end
if #problems > 0 then
  error(table.concat(problems, "\n"))
end
