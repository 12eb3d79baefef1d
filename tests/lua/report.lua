-- exclusive
-- Reports: terminal, Markdown, HTML; comparison flags a planted regression
-- and not two runs of the same profile; bad result files.
local bench = require("aibench.bench")
local sim = require("aibench.sim")
local report = require("aibench.report")
local results = require("aibench.results")
local fs = require("aibench.fs")
local json = require("aibench.json")
local proc = require("aibench.proc")
local aibench = require("aibench")
local t = require("aibench.testing")

local dir = assert(fs.tmpdir())

-- A slower simulator profile: the planted regression.
local slow = fs.join(dir, "slow.yaml")
local p = assert(sim.profile("opt-125m-cpu"))
p.name = "opt-125m-cpu-slow"
p.step_base_ms = p.step_base_ms * 2
p.per_prefill_token_ms = p.per_prefill_token_ms * 2
assert(fs.write(slow, require("aibench.yaml").encode(p)))

local function run(profile, label)
  local s = assert(sim.start({ profile = profile }))
  local r = assert(bench.run({
    target = { url = s.url },
    workload = { pattern = "closed-loop", users = 1, requests_per_user = 60 },
    dataset = { prompt_tokens = 32, output_tokens = 16 },
    slo = { ttft_ms = 30 },
    label = label,
    progress = false,
  }))
  s:stop()
  local rec = results.record({ recipe = { name = label, service_name = "vllm" }, executor = "local", urls = { s.url }, bench = r })
  rec.path = assert(results.save(rec, fs.join(dir, "results")))
  return rec
end

local a = run("opt-125m-cpu", "base")
local b = run("opt-125m-cpu", "same")
local c = run(slow, "slower")

t.case("two runs of the same profile: no regression", function()
  local cmp = report.compare({ a, b })
  t.eq(cmp.regressions, 0, report.compare_text({ a, b }, cmp))
end)

t.case("a slower profile is flagged", function()
  local cmp = report.compare({ a, c })
  t.ok(cmp.regressions >= 4, report.compare_text({ a, c }, cmp))
  local flagged = {}
  for _, row in ipairs(cmp.rows) do
    if row.others[1].flag == "REGRESSION" then
      flagged[row.label] = true
    end
  end
  for _, m in ipairs({ "throughput", "TTFT p50", "ITL p50", "E2E mean" }) do
    t.ok(flagged[m], m .. " flagged")
  end
end)

t.case("the CLI: --compare exit codes, Markdown, HTML", function()
  local r = assert(proc.run({ aibench.exe(), "report", a.path, b.path, "--compare" }))
  t.eq(r.code, 0, r.stderr)
  t.contains(r.stdout, "no regression")
  r = assert(proc.run({ aibench.exe(), "report", a.path, c.path, "--compare" }))
  t.eq(r.code, 3, r.stderr)
  t.contains(r.stdout, "REGRESSION")
  r = assert(proc.run({ aibench.exe(), "report", a.path, "--md" }))
  t.eq(r.code, 0, r.stderr)
  t.contains(r.stdout, "# aibench report")
  t.contains(r.stdout, "| throughput | ")
  t.contains(r.stdout, "- **TTFT**: request sent -> first streamed chunk with content")
  local html = fs.join(dir, "r.html")
  r = assert(proc.run({ aibench.exe(), "report", fs.join(dir, "results"), "--compare", "--html", html }))
  t.eq(r.code, 3)
  local text = assert(fs.read(html))
  for _, id in ipairs({ "chart-percentiles-1", "chart-throughput-1", "chart-inflight-1", "chart-errors-1", "chart-compare-ttft" }) do
    t.contains(text, 'id="' .. id .. '"')
  end
  t.ok(not text:find("<script", 1, true), "no scripts")
  t.ok(not text:find("http://cdn", 1, true) and not text:find("https://", 1, true), "no network resources")
end)

t.case("terminal report shows units, and the definitions once when asked (--explain), else one line", function()
  local text = report.terminal({ a }, { explain = true })
  t.contains(text, "req/s")
  t.contains(text, "ms ")
  local _, n = text:gsub("TTFT: request sent", "")
  t.eq(n, 1)
  -- Issue 23: not the 11-line block after every report; one line saying where.
  local plain = report.terminal({ a })
  local _, m = plain:gsub("TTFT: request sent", "")
  t.eq(m, 0)
  t.contains(plain, "--explain prints the definitions")
  local summary = report.summary(a.bench)
  t.ok(not summary:find("TTFT: request sent", 1, true), summary)
  t.contains(summary, "--explain prints the definitions")
  t.contains(report.summary(a.bench, { definitions = true }), "TTFT: request sent")
end)

t.case("asked vs served and the client check: terminal, Markdown, HTML; client-limited runs are marked", function()
  local text = report.terminal({ a })
  t.contains(text, "prompt tokens   mean asked 32.0, served 32.0 (+0.0%), every request exact")
  t.contains(text, "-> not limiting")
  t.ok(not text:find("warning:", 1, true), text)
  t.contains(report.markdown({ a }), "| prompt tokens | mean asked 32.0")
  local html = report.html({ a })
  t.ok(not html:find('class="warning', 1, true), "a calm run has no banner")
  t.contains(html, 'class="prompt-lengths"')
  -- The same run, as a client-limited one would read.
  local limited = json.decode(json.encode(a))
  limited.bench.validity.client_limited = true
  limited.bench.validity.reasons = { "its event loop ran late" }
  limited.bench.warnings = { "the client may have been the bottleneck, not the server: its event loop ran late" }
  t.contains(report.terminal({ limited }), "warning: the client may have been the bottleneck")
  t.contains(report.terminal({ limited }), "-> CLIENT-LIMITED")
  t.contains(report.html({ limited }), '<p class="warning client-limited">CLIENT-LIMITED: the client may have been the bottleneck')
end)

t.case("bad input: other schema, truncated JSON, empty folder, empty file", function()
  local other = fs.join(dir, "other.json")
  assert(fs.write(other, json.encode({ schema = "aibench.result/9" })))
  local v, err = results.load(other)
  t.fails("schema", v, err)
  t.contains(err.message, "schema 'aibench.result/9' is not supported")
  local trunc = fs.join(dir, "trunc.json")
  local full = assert(fs.read(a.path))
  assert(fs.write(trunc, full:sub(1, #full // 2)))
  v, err = results.load(trunc)
  t.fails("invalid", v, err)
  t.contains(err.message, "not valid JSON (truncated?)")
  local empty_dir = fs.join(dir, "empty")
  assert(fs.mkdir(empty_dir))
  local r = assert(proc.run({ aibench.exe(), "report", empty_dir }))
  t.eq(r.code, 1)
  t.contains(r.stderr, "no result files (*.json) in this folder")
  local empty = fs.join(dir, "empty.json")
  assert(fs.write(empty, ""))
  t.contains(select(2, results.load(empty)).message, "the file is empty")
  r = assert(proc.run({ aibench.exe(), "report", other }))
  t.eq(r.code, 1)
  t.contains(r.stderr, "is not supported")
  t.eq(assert(proc.run({ aibench.exe(), "report", a.path, "--compare" })).code, 2)
end)

t.case("a bare bench result (aibench bench --json) is read too", function()
  local bare = fs.join(dir, "bare.json")
  assert(fs.write(bare, bench.to_json(a.bench)))
  local rec = assert(results.load(bare))
  t.eq(rec.bench.total_requests, a.bench.total_requests)
end)

t.case("sessions and trace results: per-turn TTFT, schedule fidelity, prefix-cache hit rate; a bench/1 result still loads", function()
  local s = assert(sim.start({ profile = "opt-125m-cpu" }))
  local before = require("aibench.servermetrics").before({ s.url })
  local t0 = require("aibench.time").now()
  local sess = assert(bench.run({
    target = { url = s.url, api = "openai-chat" },
    workload = { pattern = "sessions", users = 2, total_sessions = 2, turns = 3 },
    dataset = { prefix_tokens = 300, prefix_groups = 2, prompt_tokens = 20, output_tokens = 8 },
    progress = false,
  }))
  local server = require("aibench.servermetrics").after(before, { s.url }, t0, require("aibench.time").now())
  local tr = assert(bench.run({
    target = { url = s.url },
    workload = { pattern = "trace", time_scale = 0.25 },
    dataset = { type = "trace", path = "tests/fixtures/mooncake-200.jsonl", sample = 40 },
    progress = false,
  }))
  s:stop()
  t.eq(sess.schema, "aibench.bench/2")
  t.eq(#sess.sessions.per_turn, 3)
  t.eq(tr.trace.sent, 40)
  t.eq(tr.dataset_stats.used, 40)
  t.ok(server.prefix_cache_hit_rate > 0, "sessions resend their history")
  local a = results.record({ recipe = { name = "sessions" }, executor = "local", urls = { s.url }, bench = sess, server = server })
  local b = results.record({ recipe = { name = "trace" }, executor = "local", urls = { s.url }, bench = tr })
  local term = report.summary(sess) .. report.server_summary(server, sess)
  t.contains(term, "sessions: 2 users, 3 turns")
  t.contains(term, "2 started, 2 completed")
  t.contains(term, "TTFT p50")
  t.contains(term, "prefix cache hit")
  t.contains(report.summary(tr), "40 of 40 offered requests sent")
  t.contains(report.summary(tr), "mooncake-200.jsonl: 40 records read, 40 used")
  local md = report.markdown({ a, b })
  t.contains(md, "| turn | requests |")
  t.contains(md, "Trace: 40 of 40 offered")
  local html = report.html({ a, b })
  t.contains(html, 'id="chart-turns-1"')
  t.contains(html, 'id="chart-trace-2"')
  t.contains(html, "prefix cache hit")
  -- A result written by an older aibench (schema bench/1, no new sections).
  local old = json.decode(bench.to_json(b.bench))
  old.schema, old.trace, old.sessions, old.dataset_stats = "aibench.bench/1", nil, nil, nil
  local path = fs.join(dir, "old-bench-1.json")
  assert(fs.write(path, json.encode(old)))
  local back = assert(results.load(path))
  t.eq(back.bench.schema, "aibench.bench/1")
  t.contains(report.summary(back.bench), "requests")
  local merged = bench.merge({ old, old })
  t.eq(merged.total_requests, 2 * old.total_requests)
end)

t.run()
fs.remove(dir, { recursive = true })
