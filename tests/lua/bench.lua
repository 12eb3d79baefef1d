-- aibench.bench from Lua: run with hooks, result shape, merge, to_json,
-- arrivals, validation errors naming the field.
local bench = require("aibench.bench")
local sim = require("aibench.sim")
local json = require("aibench.json")
local fs = require("aibench.fs")
local t = require("aibench.testing")

local s = assert(sim.start({ profile = "instant" }))

local function spec(extra)
  local sp = {
    target = { url = s.url },
    workload = { pattern = "closed-loop", users = 2, requests_per_user = 10 },
    dataset = { prompt_tokens = 8, output_tokens = 5 },
    progress = false,
  }
  for k, v in pairs(extra or {}) do
    sp[k] = v
  end
  return sp
end

t.case("run returns the MeluXina report's names and more", function()
  local r = assert(bench.run(spec({ slo = { ttft_ms = 1000 } })))
  t.eq(r.schema, bench.schema)
  t.eq(r.total_requests, 20)
  t.eq(r.successes, 20)
  t.eq(r.errors, 0)
  for _, k in ipairs({ "avg_latency_ms", "min_latency_ms", "max_latency_ms", "throughput_req_per_sec" }) do
    t.ok(type(r[k]) == "number", k)
  end
  t.eq(r.tokens.output_total, 100)
  t.eq(r.goodput.good, 20)
  t.ok(r.ttft_ms.p50 <= r.latency_ms.p50)
  t.eq(r.littles_law.users, 2)
  t.eq(r.errors_by_class.http_5xx, 0)
end)

t.case("on_progress is called in Lua about once a second", function()
  local seen = {}
  local r = assert(bench.run(spec({
    workload = { pattern = "open-loop", rate = 40, duration_s = 2.5 },
    on_progress = function(p)
      seen[#seen + 1] = p
    end,
  })))
  t.eq(#seen, 2)
  t.ok(seen[2].completed >= seen[1].completed)
  t.ok(r.rate.requested_req_per_sec == 40)
end)

t.case("an error in on_progress stops the run and is raised", function()
  t.raises("on_progress failed", bench.run, spec({
    workload = { pattern = "closed-loop", users = 1, duration_s = 5 },
    on_progress = function()
      error("hook broke")
    end,
  }))
end)

t.case("merge, to_json", function()
  local a = assert(bench.run(spec()))
  local b = assert(bench.run(spec()))
  local m = bench.merge({ a, b }, { allow_partial_overlap = true })
  t.eq(m.overlap.parts, 2)
  t.eq(m.total_requests, 40)
  t.eq(m.latency_ms.count, 40)
  local text = bench.to_json(m)
  local back = json.decode(text)
  t.eq(back.schema, "aibench.bench/2")
  t.eq(back.total_requests, 40)
  t.raises("schema 'other/1'", bench.merge, { { schema = "other/1" } })
end)

t.case("per-request log streams one line per request", function()
  local dir = assert(fs.tmpdir())
  local path = fs.join(dir, "log.jsonl")
  local r = assert(bench.run(spec({ per_request_log = path })))
  local n = 0
  for line in assert(fs.read(path)):gmatch("[^\n]+") do
    local l = json.decode(line)
    t.eq(l.ok, true)
    n = n + 1
  end
  t.eq(n, r.total_requests)
  fs.remove(dir, { recursive = true })
end)

t.case("arrivals", function()
  t.eq(bench.arrivals({ rate = 4, arrival = "constant", total_requests = 3 }), { 0.0, 0.25, 0.5 })
  local p = bench.arrivals({ rate = 100, total_requests = 1000, seed = 1 })
  t.eq(#p, 1000)
  t.eq(p, bench.arrivals({ rate = 100, total_requests = 1000, seed = 1 }), "seeded")
end)

t.case("bad specs raise naming the field", function()
  t.raises("workload.pattern: expected \"closed-loop\", \"open-loop\", \"trace\" or \"sessions\", got \"zigzag\"", bench.run, spec({ workload = { pattern = "zigzag" } }))
  t.raises("workload.rate: expected a positive number (at most 1e9), got -5", bench.run, spec({ workload = { pattern = "open-loop", rate = -5, duration_s = 1 } }))
  t.raises("target: missing field `url`", bench.run, spec({ target = {} }))
  t.raises("dataset.path: cannot read '/no/such.jsonl'", bench.run, spec({ dataset = { type = "jsonl", path = "/no/such.jsonl" } }))
  t.raises("unknown field 'userz' (did you mean 'users'?)", bench.run, spec({ workload = { pattern = "closed-loop", userz = 2, duration_s = 1 } }))
  t.raises("on_progress: expected a function", bench.run, spec({ on_progress = 5 }))
  local v = bench.validate(spec())
  t.eq(v.target.api, "openai-completions")
  t.eq(v.dataset.type, "synthetic")
end)

t.case("a target with no server returns nil, err", function()
  local v, err = bench.run(spec({ target = { url = "http://127.0.0.1:9" } }))
  t.fails("connect", v, err)
  t.contains(err.message, "target.model not given")
end)

t.run()
s:stop()
