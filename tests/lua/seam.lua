-- The Rust-Lua seam: a spec validated once (userdata), a result that stays
-- a result (userdata around the report), errors that carry their field.
local aibench = require("aibench")
local bench = require("aibench.bench")
local sim = require("aibench.sim")
local json = require("aibench.json")
local yaml = require("aibench.yaml")
local t = require("aibench.testing")

local s = assert(sim.start({ profile = "instant" }))

local function spec_table(workload)
  return {
    target = { url = s.url },
    workload = workload or { pattern = "closed-loop", users = 2, requests_per_user = 5 },
    dataset = { prompt_tokens = 8, output_tokens = 4 },
    label = "seam",
  }
end

t.case("bench.spec: a validated spec to read, encode and run", function()
  local sp = assert(bench.spec(spec_table()))
  t.eq(type(sp), "userdata")
  t.eq(sp.workload.users, 2)
  t.eq(sp.target.api, "openai-completions", "defaults filled in")
  t.ok(sp.workload == sp.workload, "a field reads as the same table each time")
  t.contains(tostring(sp), "bench spec 'seam'")
  -- Its JSON is the spec: made a spec again, it is the same.
  local again = assert(bench.spec(sp:to_json()))
  t.eq(json.decode(again:to_json()), json.decode(sp:to_json()))
  t.eq(json.decode(json.encode(sp)), json.decode(sp:to_json()), "json.encode writes the spec")
  t.eq(sp:to_table().label, "seam")
  t.raises("field 'label' is read-only", function()
    sp.label = "x"
  end)
  t.ok(bench.spec(sp) == sp, "a spec is taken as it is")
  local r = assert(bench.run(sp, { progress = false }))
  t.eq(r.total_requests, 10)
  t.raises("bench.run: unknown option 'progres'", bench.run, sp, { progres = false })
end)

t.case("bench.spec: a bad spec is nil, err with the field apart from the message", function()
  local sp, err = bench.spec(spec_table({ pattern = "open-loop", rate = -5, duration_s = 1 }))
  t.eq(sp, nil)
  t.eq(err.kind, "invalid")
  t.eq(err.field, "workload.rate")
  t.eq(err.message, "expected a positive number (at most 1e9), got -5")
  t.eq(tostring(err), "invalid: workload.rate: expected a positive number (at most 1e9), got -5")
  local _, e2 = bench.spec({ target = { url = { s.url, "http://" } }, workload = { pattern = "closed-loop", users = 1, total_requests = 1 } })
  t.eq(e2.field, "target.url[2]")
  local _, e3 = bench.spec({ target = { url = s.url } })
  t.eq(e3.field, nil, "an error about the whole has no field")
  t.eq(e3.message, "missing field `workload`")
  local _, e4 = bench.spec("{not json")
  t.contains(e4.message, "the spec is not JSON")
  -- Issue 23: a number in quotes is said in a user's words, not "expected u64".
  local _, e5 = bench.spec({ target = { url = s.url }, workload = { pattern = "closed-loop", users = "4", total_requests = 1 } })
  t.eq(e5.field, "workload.users")
  t.eq(e5.message, 'invalid type: string "4", expected a whole number: write 4 without quotes')
end)

t.case("a raised field error gives its parts through aibench.error_info", function()
  local ok, err = pcall(bench.run, spec_table({ pattern = "closed-loop", users = 0, total_requests = 1 }))
  t.eq(ok, false)
  t.contains(tostring(err), "workload.users: expected a positive integer, got 0")
  local info = aibench.error_info(err)
  t.eq(info.kind, "invalid")
  t.eq(info.field, "workload.users")
  t.eq(info.message, "expected a positive integer, got 0")
  local _, other = pcall(error, "plain")
  local oi = aibench.error_info(other)
  t.eq(oi.kind, "error")
  t.eq(oi.field, nil)
  -- A run-time field error (the dataset file is read when the run starts).
  local sp = spec_table()
  sp.dataset = { type = "jsonl", path = "/no/such.jsonl" }
  local _, derr = pcall(bench.run, sp)
  t.eq(aibench.error_info(derr).field, "dataset.path")
end)

t.case("a result stays a result: fields, percentiles, merge, encoding", function()
  local a = assert(bench.run(spec_table(), { progress = false }))
  local b = assert(bench.run(spec_table(), { progress = false }))
  t.eq(type(a), "userdata")
  t.eq(a.successes, 10)
  t.ok(a.ttft_ms == a.ttft_ms, "a field reads as the same table each time")
  local p99 = a:percentile("ttft", 99)
  t.ok(type(p99) == "number" and p99 > 0, "ttft p99 " .. tostring(p99))
  t.eq(a:percentile("ttft_ms", 99), p99, "the _ms name is accepted")
  t.eq(a:percentiles("ttft", { 99 })[1][2], p99)
  t.eq(bench.percentiles(a, "ttft", { 99 })[1][2], p99)
  t.raises("unknown metric 'ttf' (did you mean 'ttft'?)", a.percentile, a, "ttf", 99)
  -- a and b ran one after the other: not one experiment unless asked.
  t.raises("all sending for only", a.merge, a, b)
  local m = a:merge(a)
  t.eq(m.total_requests, 20)
  t.eq(m.latency_ms.count, 20)
  t.eq(m.overlap.share, 1)
  local ab = bench.merge({ a, b }, { allow_partial_overlap = true })
  t.eq(ab.total_requests, 20)
  t.eq(ab.overlap.partial, true)
  t.raises("min_overlap: expected a share in [0, 1], got 2", bench.merge, { a, b }, { min_overlap = 2 })
  t.raises("unknown option", bench.merge, { a, b }, { allow_partial = true })
  -- json.encode writes what bench.to_json writes: the result file format.
  t.eq(json.decode(json.encode(a)), json.decode(bench.to_json(a)))
  t.eq(json.decode(json.encode({ bench = a })).bench.successes, 10)
  t.eq(yaml.decode(yaml.encode(a)).successes, 10)
  -- Read back from its text, it is the same result.
  local back = bench.result(bench.to_json(a))
  t.eq(back:percentile("ttft", 99), p99)
  t.eq(json.decode(back:to_json()), json.decode(a:to_json()))
  local keys = 0
  for k, v in pairs(a) do
    keys = keys + 1
    if k == "successes" then
      t.eq(v, 10)
    end
  end
  t.ok(keys > 20, keys .. " fields")
  t.raises("field 'successes' is read-only", function()
    a.successes = 0
  end)
  local copy = a:to_table()
  copy.successes = 0
  t.eq(a.successes, 10, "a copy changes alone")
  t.eq(a.interrupted, false)
  a:mark_interrupted("SIGTERM")
  t.eq(a.interrupted, true)
  t.eq(a.interrupted_by, "SIGTERM")
  t.eq(json.decode(a:to_json()).interrupted_by, "SIGTERM")
  t.contains(tostring(a), "(interrupted)")
  t.raises("schema 'other/1'", bench.result, { schema = "other/1" })
end)

t.case("a job spec's bad field is named as data", function()
  local ok, err = require("aibench.local").check({ name = "x", dir = "/tmp/x", command = { "true" }, resources = { nodes = 0 } })
  t.eq(ok, nil)
  t.eq(err.field, "resources.nodes")
  t.eq(err.message, "expected a positive integer, got 0")
  local _, terr = require("aibench.local").time_limit_seconds("soon")
  t.eq(terr.field, "time_limit")
  t.contains(terr.message, "expected MM, MM:SS")
  t.eq(require("aibench.local").check({ name = "x", dir = "/tmp/x", command = { "true" } }), true)
end)

t.run()
s:stop()
