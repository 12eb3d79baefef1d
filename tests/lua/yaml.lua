-- aibench.yaml: decode/encode, error locations.
local yaml = require("aibench.yaml")
local json = require("aibench.json")
local t = require("aibench.testing")

t.case("decode a recipe-like document", function()
  local doc = assert(yaml.decode([[
name: vllm-server
ports: [8000, 8001]
orchestration:
  resources:
    cpu_cores: 8
    time_limit: "04:00:00"
empty: ~
flag: true
]]))
  t.eq(doc.name, "vllm-server")
  t.eq(doc.ports, { 8000, 8001 })
  t.eq(doc.orchestration.resources.cpu_cores, 8)
  t.eq(doc.orchestration.resources.time_limit, "04:00:00")
  t.eq(doc.empty, nil, "null map values are dropped")
  t.eq(doc.flag, true)
end)

t.case("encode then decode", function()
  local v = { a = { 1, 2 }, b = "x: y", c = json.array() }
  local back = assert(yaml.decode(yaml.encode(v)))
  t.eq(back.a, { 1, 2 })
  t.eq(back.b, "x: y")
  t.ok(json.is_array(back.c))
end)

t.case("malformed YAML names line and column", function()
  local v, err = yaml.decode("a: 1\nb: [1, 2\nc: 3\n")
  t.fails("parse", v, err)
  t.ok(err.line >= 2, "line")
  t.ok(err.column >= 1, "column")
  t.contains(err.message, "line " .. err.line .. " column " .. err.column)
  local _, named = yaml.decode("a: [", { name = "recipes/servers/x.yaml" })
  t.contains(named.message, "recipes/servers/x.yaml: line ")
end)

t.run()
