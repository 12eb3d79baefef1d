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

t.case("arguments are checked", function()
  local r = assert(proc.run({ aibench.exe(), "run", "examples/simple-test.lua", "--duraton", "3" }))
  t.eq(r.code, 1)
  t.contains(r.stderr, "unknown argument '--duraton' (did you mean --duration?)")
end)

t.case("paper table", function()
  local r = run("paper-table.lua", { "--duration", "2", "--no-monitor", "--out-dir", fs.join(dir, "paper") })
  for _, name in ipairs({ "Simple Test", "Stress Test", "High-Throughput", "Long-Context", "Throughput (req/s)", "TTFT p50/p99 ms", "Little's law exp/meas" }) do
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
