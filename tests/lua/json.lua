-- aibench.json: encode/decode, null, arrays vs objects, bad input.
local json = require("aibench.json")
local t = require("aibench.testing")

t.case("scalars round-trip", function()
  for _, v in ipairs({ 1, -5, 2.5, "héllo \"q\"\n", true, false }) do
    t.eq(json.decode(json.encode(v)), v)
  end
  t.eq(math.type(json.decode("3")), "integer")
  t.eq(math.type(json.decode("3.0")), "float")
end)

t.case("null is distinct from nil", function()
  local v = json.decode('{"a":null,"b":[1,null,3]}')
  t.ok(v.a == json.null, "object null")
  t.ok(v.b[2] == json.null, "array null keeps its slot")
  t.eq(#v.b, 3)
  t.eq(json.encode(v), '{"a":null,"b":[1,null,3]}')
end)

t.case("empty table round-trip", function()
  t.eq(json.encode({}), "{}")
  t.eq(json.encode(json.array()), "[]")
  t.eq(json.encode(json.decode("[]")), "[]")
  t.eq(json.encode(json.decode("{}")), "{}")
  t.ok(json.is_array(json.decode("[1]")))
  t.ok(not json.is_array(json.decode("{}")))
end)

t.case("arrays and objects", function()
  t.eq(json.encode({ 1, 2, 3 }), "[1,2,3]")
  t.eq(json.encode({ b = 1, a = 2 }), '{"a":2,"b":1}')
  t.eq(json.encode({ [200] = 5, [404] = 1 }), '{"200":5,"404":1}')
  t.eq(json.encode({ 1, 2, x = 3 }), '{"1":1,"2":2,"x":3}')
end)

t.case("pretty", function()
  t.eq(json.encode({ a = { 1 } }, { pretty = true }), '{\n  "a": [\n    1\n  ]\n}')
end)

t.case("bad input", function()
  local v, err = json.decode('{"a": 1,')
  t.fails("parse", v, err)
  t.contains(err.message, "line 1")
  t.raises("not a finite number", json.encode, { x = 0 / 0 })
  t.raises("$.f", json.encode, { f = print })
  local cyc = {}
  cyc.self = cyc
  t.raises("cycle", json.encode, cyc)
  t.raises("unknown option 'prety' (did you mean 'pretty'?)", json.encode, {}, { prety = true })
end)

t.run()
