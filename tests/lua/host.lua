-- The host: arg table, require paths, AIBENCH_LUA_PATH overrides, tracebacks.
local aibench = require("aibench")
local proc = require("aibench.proc")
local fs = require("aibench.fs")
local t = require("aibench.testing")

local exe = aibench.exe()
local dir = assert(fs.tmpdir())

t.case("arg table", function()
  assert(fs.write(fs.join(dir, "args.lua"), "print(arg[0], arg[1], arg[2], select('#', ...))"))
  local r = assert(proc.run({ exe, "run", fs.join(dir, "args.lua"), "--duration", "20" }))
  t.eq(r.stdout, fs.join(dir, "args.lua") .. "\t--duration\t20\t2\n")
end)

t.case("script folder is on package.path", function()
  assert(fs.write(fs.join(dir, "helper.lua"), "return { v = 42 }"))
  assert(fs.write(fs.join(dir, "main.lua"), "print(require('helper').v)"))
  local r = assert(proc.run({ exe, "run", fs.join(dir, "main.lua") }, { cwd = "/" }))
  t.eq(r.stdout, "42\n")
end)

t.case("AIBENCH_LUA_PATH overrides and adds modules", function()
  local user = fs.join(dir, "user")
  assert(fs.write(fs.join(user, "aibench", "pretty.lua"), "return { render = function() return 'overridden' end }", { mkdir = true }))
  assert(fs.write(fs.join(user, "mylib.lua"), "return 'mine'"))
  local r = assert(proc.run({ exe, "eval", "return require('mylib'), {}" }, { env = { AIBENCH_LUA_PATH = user } }))
  t.eq(r.stdout, "mine\toverridden\n")
end)

t.case("errors in embedded modules name lua/aibench files", function()
  local r = assert(proc.run({ exe, "eval", "require('aibench.testing').eq(1, 2)" }))
  t.eq(r.code, 1)
  t.contains(r.stderr, "lua/aibench/testing.lua:")
  t.contains(r.stderr, "expected 2, got 1")
end)

t.case("runtime error exits 1 with file:line and traceback", function()
  assert(fs.write(fs.join(dir, "bad.lua"), "local x = 1\n\nlocal function f() error('boom') end\nf()\n"))
  local r = assert(proc.run({ exe, "run", fs.join(dir, "bad.lua") }))
  t.eq(r.code, 1)
  t.contains(r.stderr, "bad.lua:3: boom")
  t.contains(r.stderr, "stack traceback:")
  t.contains(r.stderr, "bad.lua:4:")
end)

t.case("module list", function()
  local mods = aibench.modules()
  local set = {}
  for _, m in ipairs(mods) do
    set[m] = true
  end
  for _, m in ipairs({ "aibench.json", "aibench.yaml", "aibench.fs", "aibench.time", "aibench.proc", "aibench.http", "aibench.pretty" }) do
    t.ok(set[m], m .. " listed")
  end
end)

t.run()
fs.remove(dir, { recursive = true })
