-- aibench.time: clocks, async sleep, ISO-8601.
local time = require("aibench.time")
local t = require("aibench.testing")

t.case("sleep is real and async", function()
  local a = time.monotonic()
  time.sleep(0.2)
  local dt = time.monotonic() - a
  t.ok(dt >= 0.19 and dt < 1.5, "slept " .. dt) -- the upper bound only catches a sleep that ignores its argument
end)

t.case("now is wall time", function()
  t.ok(time.now() > 1.7e9)
end)

t.case("ISO-8601", function()
  t.eq(time.format(0), "1970-01-01T00:00:00.000Z")
  t.eq(time.parse("1970-01-01T00:01:00Z"), 60.0)
  t.eq(time.parse("1970-01-01T01:00:00+01:00"), 0.0)
  local now = time.now()
  t.near(time.parse(time.format(now)), now, 0.001)
  t.eq(time.format(0, "%Y%m%d"), "19700101")
end)

t.case("bad input", function()
  local v, err = time.parse("last tuesday")
  t.fails("parse", v, err)
  t.contains(err.message, "ISO-8601")
  t.raises("non-negative", time.sleep, -1)
end)

t.run()
