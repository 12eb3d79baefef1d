-- The registry from Lua, and 50 parallel registrations from 50 processes.
local registry = require("aibench.registry")
local proc = require("aibench.proc")
local aibench = require("aibench")
local fs = require("aibench.fs")
local t = require("aibench.testing")

local function inst(id, port)
  return { job_id = "j" .. id, recipe_name = "r", instance_id = id, node = "n", host = "n", ports = { port }, url = "http://n:" .. port, executor = "local" }
end

t.case("register, list, deregister, clear; files are private", function()
  assert(registry.register("svc", inst("a", 1)))
  assert(registry.register("svc", inst("b", 2)))
  local l = assert(registry.list("svc"))
  t.eq(#l, 2)
  t.eq(l[1].status, "RUNNING")
  t.ok(l[1].registered_at:match("^%d%d%d%d%-"))
  t.eq(fs.stat(registry.dir()).mode, tonumber("700", 8))
  t.eq(fs.stat(fs.join(registry.dir(), "svc.json")).mode, tonumber("600", 8))
  t.eq(registry.deregister("svc", "a"), true)
  t.eq(registry.services(), { "svc" })
  t.eq(registry.clear(), 1)
  t.eq(#registry.list("svc"), 0)
  t.fails("invalid", registry.register("../etc", inst("x", 1)))
  t.raises("instance", registry.register, "svc", { instance_id = "x" })
end)

t.case("50 parallel registrations from 50 processes keep all 50", function()
  local handles = {}
  for i = 1, 50 do
    local code = string.format("assert(require('aibench.registry').register('race', {job_id='%d', recipe_name='r', instance_id='i%d', node='n', host='n', ports={%d}, url='http://n:%d', executor='local'}))", i, i, 8000 + i, 8000 + i)
    handles[i] = assert(proc.spawn({ aibench.exe(), "eval", code }))
  end
  for _, h in ipairs(handles) do
    local r = assert(h:wait())
    t.eq(r.code, 0, r.stderr)
  end
  local l = assert(registry.list("race"))
  t.eq(#l, 50)
  local seen = {}
  for _, i in ipairs(l) do
    seen[i.instance_id] = true
  end
  for i = 1, 50 do
    t.ok(seen["i" .. i], "i" .. i)
  end
end)

t.case("prune drops entries whose job is gone", function()
  assert(registry.register("ghost", { job_id = "local-deadbeef00", recipe_name = "r", instance_id = "g1", node = "n", host = "n", ports = { 1 }, url = "http://n:1", executor = "local" }))
  local removed = assert(require("aibench.services").prune())
  local found = false
  for _, r in ipairs(removed) do
    found = found or r.instance_id == "g1"
    t.eq(r.state, "UNKNOWN")
  end
  t.ok(found, "g1 pruned")
  t.eq(#registry.list("ghost"), 0)
end)

t.run()
