-- The stock scenario scripts and the quickstart, shortened, on the local executor.
local proc = require("aibench.proc")
local fs = require("aibench.fs")
local json = require("aibench.json")
local aibench = require("aibench")
local t = require("aibench.testing")

local dir = assert(fs.tmpdir())

local function run(script, args)
  local argv = { aibench.exe(), "run", "examples/" .. script }
  for _, a in ipairs(args) do
    argv[#argv + 1] = a
  end
  local r = assert(proc.run(argv, { timeout_s = 300 }))
  t.eq(r.code, 0, script .. ":\n" .. r.stdout .. r.stderr)
  return r
end

local function results_in(sub)
  return fs.list(fs.join(dir, sub)) or {}
end

t.case("the four scenarios", function()
  for _, s in ipairs({ "simple-test.lua", "stress-test.lua", "high-throughput.lua", "long-context.lua" }) do
    local sub = s:gsub("%.lua$", "")
    local r = run(s, { "--duration", "3", "--no-monitor", "--out-dir", fs.join(dir, sub) })
    t.contains(r.stdout, "Little's law")
    local files = results_in(sub)
    t.eq(#files, 1, sub)
    local rec = json.decode(assert(fs.read(fs.join(dir, sub, files[1]))))
    t.eq(rec.schema, "aibench.result/1")
    t.ok(rec.bench.successes > 0, sub)
    t.eq(rec.bench.errors, 0, sub)
    t.eq(rec.server.requests, rec.bench.successes, sub)
  end
end)

t.case("chat sessions and trace replay", function()
  local r = run("chat-sessions.lua", { "--duration", "6", "--users", "3", "--no-monitor", "--out-dir", fs.join(dir, "sessions") })
  t.contains(r.stdout, "sessions: 3 users, 5 turns")
  t.contains(r.stdout, "TTFT p50")
  t.contains(r.stdout, "prefix cache hit")
  local files = results_in("sessions")
  t.eq(#files, 1)
  local rec = json.decode(assert(fs.read(fs.join(dir, "sessions", files[1]))))
  t.eq(rec.bench.schema, "aibench.bench/2")
  local s = rec.bench.sessions
  t.ok(s.completed >= 3, "every user completes a session")
  t.eq(s.started, s.completed + s.failed + s.cut)
  t.ok(s.cut <= 3, "at most one session per user is cut by the end")
  t.ok(#s.per_turn == 5 and s.per_turn[5].mean_prompt_tokens > s.per_turn[1].mean_prompt_tokens)
  t.ok(rec.server.prefix_cache_hit_rate > 0.3, "later turns hit the cache")

  r = run("trace-replay.lua", { "--time-scale", "0.5", "--no-monitor", "--out-dir", fs.join(dir, "trace") })
  t.contains(r.stdout, "trace replay at time scale 0.50")
  t.contains(r.stdout, "200 of 200 offered requests sent")
  files = results_in("trace")
  t.eq(#files, 1)
  rec = json.decode(assert(fs.read(fs.join(dir, "trace", files[1]))))
  t.eq(rec.bench.trace.sent, 200)
  t.eq(rec.bench.errors, 0)
  t.ok(rec.server.prefix_cache_hits > 0)
  local bad = assert(proc.run({ aibench.exe(), "run", "examples/trace-replay.lua", "--trace", "/no/such/trace.jsonl", "--no-monitor" }))
  t.eq(bad.code, 1)
  t.contains(bad.stderr, "dataset.path: cannot read '/no/such/trace.jsonl'")
end)

t.case("arguments are checked", function()
  local r = assert(proc.run({ aibench.exe(), "run", "examples/simple-test.lua", "--duraton", "3" }))
  t.eq(r.code, 1)
  t.contains(r.stderr, "unknown argument '--duraton' (did you mean --duration?)")
end)

t.case("paper table", function()
  local r = run("paper-table.lua", { "--duration", "2", "--no-monitor", "--out-dir", fs.join(dir, "paper") })
  for _, name in ipairs({ "Simple Test", "Stress Test", "High-Throughput", "Long-Context", "Throughput (req/s)", "TTFT p50/p99 ms", "Little's law exp/meas", "out tok per GPU/node-hour", "J per out token", "cost per 1M out tokens" }) do
    t.contains(r.stdout, name)
  end
  t.eq(#results_in("paper"), 4)
end)

t.case("sweep finds a knee", function()
  local r = run("sweep.lua", { "--start-rate", "20", "--factor", "3", "--step-duration", "2", "--max-rate", "600", "--ttft-ms", "200", "--no-monitor", "--out-dir", fs.join(dir, "sweep") })
  t.contains(r.stdout, "knee: ")
  local files = results_in("sweep")
  t.eq(#files, 1)
  local s = json.decode(assert(fs.read(fs.join(dir, "sweep", files[1]))))
  t.eq(s.schema, "aibench.sweep/1")
  t.ok(#s.steps >= 2)
end)

t.case("quickstart: the whole pipeline writes a report", function()
  local r = run("quickstart.lua", { "--duration", "5", "--out-dir", fs.join(dir, "qs") })
  t.contains(r.stdout, "report: ")
  local html = assert(fs.read(fs.join(dir, "qs", "quickstart-report.html")))
  t.contains(html, 'id="chart-percentiles-1"')
  t.contains(r.stderr, "stopped")
  t.eq(#require("aibench.registry").list("vllm"), 0, "cleaned up")
end)

t.run()
fs.remove(dir, { recursive = true })
