-- aibench.log, aibench.env, aibench.uuid, aibench.pretty.
local env = require("aibench.env")
local uuid = require("aibench.uuid")
local log = require("aibench.log")
local pretty = require("aibench.pretty")
local proc = require("aibench.proc")
local t = require("aibench.testing")

t.case("env", function()
  env.set("AIBENCH_TEST_X", "1")
  t.eq(env.get("AIBENCH_TEST_X"), "1")
  t.eq(env.all().AIBENCH_TEST_X, "1")
  env.set("AIBENCH_TEST_X", nil)
  t.eq(env.get("AIBENCH_TEST_X"), nil)
  t.eq(env.get("AIBENCH_TEST_X", "dflt"), "dflt")
  t.raises("invalid variable name", env.set, "A=B", "x")
end)

t.case("uuid", function()
  local a, b = uuid.v4(), uuid.v4()
  t.ok(a ~= b)
  t.ok(a:match("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$"), a)
  t.eq(#uuid.short(), 8)
end)

t.case("log goes to stderr and honours -q", function()
  local exe = require("aibench").exe()
  local r = assert(proc.run({ exe, "eval", "require('aibench.log').info('hello', 42)" }))
  t.contains(r.stderr, "hello 42")
  t.eq(r.stdout, "")
  local q = assert(proc.run({ exe, "-q", "eval", "require('aibench.log').info('hidden')" }))
  t.eq(q.stderr, "")
  log.debug("not shown by default")
end)

t.case("pretty: nested, sorted, cycles, depth", function()
  t.eq(pretty.render({ b = 1, a = { 1, 2 } }), "{\n  a = { 1, 2 },\n  b = 1\n}")
  local c = { name = "loop" }
  c.self = c
  t.contains(pretty.render(c), "self = <cycle>")
  local deep = {}
  local cur = deep
  for _ = 1, 20 do
    cur.x = {}
    cur = cur.x
  end
  t.contains(pretty.render(deep), "{...}")
  t.eq(pretty.render({ ["a-b"] = 1, ["end"] = 2 }), '{\n  ["a-b"] = 1,\n  ["end"] = 2\n}')
end)

t.run()
