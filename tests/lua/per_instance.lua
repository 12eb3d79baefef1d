-- Several instances of one service: the result's per-URL shares, shown in
-- the terminal summary, the REPL's one-liner, Markdown, HTML and
-- `report --json`, only where there is more than one URL.
local bench = require("aibench.bench")
local sim = require("aibench.sim")
local report = require("aibench.report")
local results = require("aibench.results")
local pretty = require("aibench.pretty")
local fs = require("aibench.fs")
local json = require("aibench.json")
local proc = require("aibench.proc")
local aibench = require("aibench")
local t = require("aibench.testing")

local good = assert(sim.start({ profile = "instant" }))
local failing = assert(sim.start({ profile = "instant", fail_rate = 1 }))
local dir = assert(fs.tmpdir())

local function run(urls, balance)
  return assert(bench.run({
    target = { url = urls, balance = balance },
    workload = { pattern = "open-loop", rate = 200, arrival = "constant", total_requests = 20 },
    dataset = { prompt_tokens = 4, output_tokens = 4 },
    progress = false,
  }))
end

local two = run({ good.url, failing.url })
local one = run(good.url)

t.case("the result has each URL's share, adding up to the totals", function()
  t.eq(two.balance, "round_robin")
  t.eq(#two.per_url, 2)
  t.eq(two.per_url[1].url, good.url)
  t.eq(two.per_url[1].ok, 10)
  t.eq(two.per_url[2].errors, 10)
  t.eq(two.per_url[2].errors_by_class.http_5xx, 10)
  t.eq(two.per_url[1].ok + two.per_url[2].ok, two.successes)
  t.eq(two.per_url[1].errors + two.per_url[2].errors, two.errors)
  t.eq(#one.per_url, 1)
  t.eq(one.per_url[1].requests, 20)
end)

t.case("the terminal summary shows a per-instance table with the policy, only for several URLs", function()
  local text = report.summary(two, { definitions = false })
  t.contains(text, "per instance: 2 instances, round robin")
  t.contains(text, "instance")
  t.ok(text:find(failing.url:gsub("%p", "%%%0") .. "%s+10%s+0%s+10%s.*http_5xx 10") ~= nil, text)
  local single = report.summary(one, { definitions = false })
  t.ok(not single:find("per instance", 1, true), single)
  t.contains(pretty.result_summary(two), "2 instances, round robin")
  t.ok(not pretty.result_summary(one):find("instances", 1, true))
end)

t.case("least outstanding is named as such", function()
  local r = run({ good.url, good.url .. "/" }, "least_outstanding")
  t.eq(r.balance, "least_outstanding")
  t.contains(report.summary(r, { definitions = false }), "least outstanding requests")
  local ok, err = pcall(run, { good.url, failing.url }, "random")
  t.ok(not ok)
  t.contains(tostring(err), "target.balance")
end)

t.case("Markdown, HTML and report --json carry the shares", function()
  local rec = results.record({ recipe = { name = "two", service_name = "vllm" }, executor = "local", urls = { good.url, failing.url }, bench = two })
  rec.path = assert(results.save(rec, fs.join(dir, "results")))
  local md = report.markdown({ rec })
  t.contains(md, "Per instance: 2 instances, round robin")
  t.contains(md, "| " .. good.url .. " | 10 | 10 | 0 |")
  t.contains(md, " | http_5xx 10 |")
  local html = report.html({ rec })
  t.contains(html, '<table class="per-url">')
  t.contains(html, "<td>" .. failing.url .. "</td>")
  local r = assert(proc.run({ aibench.exe(), "report", rec.path, "--json" }))
  t.eq(r.code, 0, r.stderr)
  local doc = json.decode(r.stdout)
  local per = doc.results[1].bench.per_url
  t.eq(#per, 2)
  t.eq(per[2].errors, 10)
  t.eq(per[1].ttft_hist, nil, "histograms stay in the result file")
  t.eq(doc.results[1].bench.balance, "round_robin")
end)

t.run()
good:stop()
failing:stop()
fs.remove(dir, { recursive = true })
