-- Reports against hostile or broken input: terminal escapes in a result's
-- values, a bad file in a results folder, a field of the wrong type, a
-- non-finite --threshold, comparing unlike runs, a huge time series.
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

-- One short real run; the faulty results are edited copies of it.
local s = assert(sim.start({ profile = "opt-125m-cpu" }))
local r = assert(bench.run({
  target = { url = s.url },
  workload = { pattern = "closed-loop", users = 1, requests_per_user = 20 },
  dataset = { prompt_tokens = 16, output_tokens = 8 },
  label = "faults",
  progress = false,
}))
s:stop()
local base = results.record({ recipe = { name = "faults", service_name = "vllm" }, executor = "local", urls = { s.url }, bench = r })

--- A plain copy of the record (edited by `edit`), written to dir/name.
local function variant(name, edit)
  local v = json.decode(json.encode(base))
  v.path = nil
  if edit then
    edit(v)
  end
  local path = fs.join(dir, name)
  assert(fs.write(path, json.encode(v, { pretty = true }) .. "\n", { mkdir = true }))
  return path, v
end

local function report_cli(...)
  return assert(proc.run({ aibench.exe(), "report", ... }))
end

local EVIL = "evil\27]0;pwned\7\27[2Jmodel"

t.case("format.clean: control characters become visible escapes; text, newlines and tabs stay", function()
  t.eq(report.clean("a\27[2Jb\tc\nd\127e\r"), "a\\x1b[2Jb\tc\nd\\x7fe\\x0d")
  t.eq(report.clean("C1 \194\155 CSI"), "C1 \\u{9b} CSI")
  t.eq(report.clean("ünïcode ±"), "ünïcode ±")
  t.eq(report.clean("lone \155 byte"), "lone \\x9b byte")
  t.eq(report.clean(report.clean("x\27y")), "x\\x1by", "idempotent")
end)

t.case("terminal escapes in a model id, a label and an error sample are never printed raw", function()
  local path = variant("evil.json", function(v)
    v.recipe.name = EVIL
    v.bench.label = EVIL
    v.bench.target.model = EVIL
    v.bench.error_samples = { http_5xx = { "500 " .. EVIL } }
    v.bench.warnings = { "warned " .. EVIL }
  end)
  for _, extra in ipairs({ {}, { "--md" } }) do
    local out = report_cli(path, table.unpack(extra))
    t.eq(out.code, 0, out.stderr)
    t.ok(not out.stdout:find("\27", 1, true), "no ESC byte in the report: " .. out.stdout)
    t.ok(not out.stdout:find("\7", 1, true), "no BEL byte in the report")
    t.contains(out.stdout, "model evil\\x1b]0;pwned\\x07\\x1b[2Jmodel")
    t.contains(out.stdout, "warned evil\\x1b]0;")
    if #extra == 0 then
      t.contains(out.stdout, "500 evil\\x1b]0;")
    end
  end
  local html = fs.join(dir, "evil.html")
  local out = report_cli(path, "--html", html)
  t.eq(out.code, 0, out.stderr)
  local text = assert(fs.read(html))
  t.ok(not text:find("\27", 1, true), "no ESC byte in the HTML report")
  t.contains(text, "evil\\x1b]0;pwned")
  -- `aibench bench` prints report.summary of the server's answers.
  local b = assert(results.load(path)).bench
  local summary = report.summary(b)
  t.ok(not summary:find("\27", 1, true), "no ESC byte in report.summary")
  t.contains(summary, "model evil\\x1b]0;pwned")
end)

t.case("one bad file in a results folder: a warning naming it, the rest reported", function()
  local folder = fs.join(dir, "mixed")
  local good = variant("mixed/good.json")
  local full = assert(fs.read(good))
  assert(fs.write(fs.join(folder, "truncated.json"), full:sub(1, #full // 2)))
  assert(fs.write(fs.join(folder, "other.json"), json.encode({ hello = "world" })))
  local out = report_cli(folder)
  t.eq(out.code, 0, out.stderr)
  t.contains(out.stderr, "truncated.json")
  t.contains(out.stderr, "not valid JSON")
  t.contains(out.stderr, "other.json")
  t.contains(out.stdout, "== #1 faults")
  t.ok(not out.stdout:find("== #2", 1, true), "only the good file is reported")
  local recs, err, skipped = report.load({ folder })
  t.eq(err, nil)
  t.eq(#recs, 1)
  t.eq(#skipped, 2)
  -- Nothing readable: an error naming every file.
  local bad = fs.join(dir, "allbad")
  assert(fs.write(fs.join(bad, "one.json"), "{", { mkdir = true }))
  assert(fs.write(fs.join(bad, "two.json"), "[1, 2]"))
  out = report_cli(bad)
  t.eq(out.code, 1)
  t.contains(out.stderr, "no result could be read")
  t.contains(out.stderr, "one.json")
  t.contains(out.stderr, "two.json")
  -- A bad file named explicitly is an error.
  out = report_cli(good, fs.join(folder, "truncated.json"))
  t.eq(out.code, 1)
  t.contains(out.stderr, "truncated.json: not valid JSON")
end)

t.case("a field of the wrong type: the file and the field are named, no Lua error", function()
  local path = variant("wrongtype.json", function(v)
    v.bench.latency_ms.p99 = "fast"
  end)
  local out = report_cli(path)
  t.eq(out.code, 1)
  t.contains(out.stderr, path .. ": field bench.latency_ms.p99: expected a number, got string")
  t.ok(not out.stderr:find("%.lua:%d+:"), out.stderr)
  path = variant("wrongcount.json", function(v)
    v.bench.total_requests = "many"
  end)
  out = report_cli(path, "--html", fs.join(dir, "wrong.html"))
  t.eq(out.code, 1)
  t.contains(out.stderr, "field bench.total_requests: expected a whole number, got string")
  -- A bare bench result (aibench bench --json) names its fields without "bench.".
  local bare = fs.join(dir, "bare-wrong.json")
  local b = json.decode(bench.to_json(r))
  b.workload.users = 2.5
  assert(fs.write(bare, json.encode(b)))
  out = report_cli(bare)
  t.eq(out.code, 1)
  t.contains(out.stderr, bare .. ": field workload.users: expected a whole number, got number 2.5")
  -- A record handed to the reports directly, past the loader: the file is named.
  local _, v = variant("direct.json", function(x)
    x.bench.goodput = { goodput_req_per_sec = 1, attainment = "most" }
  end)
  v.path = "direct.json"
  t.raises("direct.json: cannot report this result", report.terminal, { v })
  t.raises("direct.json: cannot report this result", report.markdown, { v })
  t.raises("direct.json: cannot report this result", report.html, { v })
end)

t.case("--threshold must be a finite number > 0: the flag and the value are named, exit 2", function()
  local path = variant("plain.json")
  for _, v in ipairs({ "nan", "inf", "-inf", "0", "-1", "10" }) do
    local out = report_cli(path, path, "--compare", "--threshold=" .. v)
    t.eq(out.code, 2, v .. ": " .. out.stderr)
    t.contains(out.stderr, "--threshold", v)
    t.ok(not out.stderr:find("%.lua:%d+:"), out.stderr)
  end
  t.contains(report_cli(path, "--threshold=nan").stderr, "not a finite number (nan or inf)")
  t.contains(report_cli(path, "--threshold=-1").stderr, "got -1")
  local out = report_cli(path, path, "--compare", "--threshold=5")
  t.eq(out.code, 0, out.stderr)
  t.contains(out.stderr, "--threshold 5")
  t.eq(report_cli(path, path, "--compare", "--threshold=0.2").code, 0)
end)

t.case("--compare of unlike runs says how they differ before the deltas", function()
  local a = variant("cmp-a.json")
  local same = variant("cmp-same.json")
  local other = variant("cmp-other.json", function(v)
    v.bench.workload = { pattern = "open-loop", rate = 5, arrival = "poisson" }
    v.bench.target.model = "another-model"
  end)
  local out = report_cli(a, same, "--compare")
  t.eq(out.code, 0, out.stderr)
  t.ok(not out.stdout:find("these runs differ", 1, true), out.stdout)
  out = report_cli(a, other, "--compare")
  t.contains(out.stdout, "note: these runs differ in")
  t.contains(out.stdout, "workload (closed-loop 1 users vs open-loop 5/s poisson)")
  t.contains(out.stdout, "another-model")
  local note = out.stdout:find("these runs differ", 1, true)
  local table_at = out.stdout:find("metric ", note or 1, true)
  t.ok(note and table_at and note < table_at, "the note comes before the table")
  out = report_cli(a, other, "--compare", "--md")
  t.contains(out.stdout, "> **Note:** these runs differ in")
  local recs = assert(report.load({ a, other }))
  t.contains(report.html(recs, { compare = true }), "these runs differ in")
  t.eq(report.compare(assert(report.load({ a, same }))).note, nil)
end)

t.case("a 1,000,000-point time series: the HTML report stays small", function()
  local _, v = variant("long.json")
  local n = 1000000
  local ts = { t_s = {}, completed = {}, errors = {}, output_tokens = {}, in_flight = {} }
  for i = 1, n do
    ts.t_s[i] = (i - 1) * 0.5
    ts.completed[i] = 10 + i % 7
    ts.errors[i] = i == n // 2 and 99 or 0
    ts.output_tokens[i] = 80 + i % 13
    ts.in_flight[i] = 1 + (i % 3) / 3
  end
  v.bench.timeseries = ts
  v.path = "long.json"
  local html = report.html({ v })
  t.ok(#html < 2000000, string.format("the HTML report is %d bytes", #html))
  t.contains(html, 'id="chart-throughput-1"')
  -- Thinning keeps the spike.
  local pts = require("aibench.report.html").thin(n, function(i)
    return ts.t_s[i], ts.errors[i]
  end)
  t.ok(#pts <= 2000, #pts .. " points")
  local top = 0
  for _, p in ipairs(pts) do
    top = math.max(top, p[2])
  end
  t.eq(top, 99)
end)

t.run()
fs.remove(dir, { recursive = true })
