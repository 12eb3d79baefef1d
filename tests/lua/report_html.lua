-- needs: chromium
-- The HTML report in a real headless browser: loads with no console errors,
-- its charts are there (DOM), and a screenshot is taken.
local bench = require("aibench.bench")
local sim = require("aibench.sim")
local report = require("aibench.report")
local results = require("aibench.results")
local fs = require("aibench.fs")
local proc = require("aibench.proc")
local t = require("aibench.testing")

local dir = assert(fs.tmpdir())
local s = assert(sim.start({ profile = "opt-125m-cpu" }))
local r = assert(bench.run({
  target = { url = s.url },
  workload = { pattern = "open-loop", rate = 20, duration_s = 3 },
  dataset = { prompt_tokens = 16, output_tokens = 8 },
  progress = false,
}))
s:stop()
local rec = results.record({ recipe = { name = "html-test" }, executor = "local", urls = { s.url }, bench = r })
local html = fs.join(dir, "report.html")
assert(fs.write(html, report.html({ rec, rec }, { compare = true })))

local function chromium(extra)
  local args = {
    "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--user-data-dir=" .. fs.join(dir, "profile"), "--enable-logging=stderr", "--v=0",
  }
  for _, a in ipairs(extra) do
    args[#args + 1] = a
  end
  args[#args + 1] = "file://" .. html
  return assert(proc.run(args, { timeout_s = 120 }))
end

t.case("the DOM holds every chart, and no console errors", function()
  local out = chromium({ "--dump-dom" })
  t.eq(out.code, 0, out.stderr)
  local ids = {}
  for id in out.stdout:gmatch('<svg id="([%w%-]+)"') do
    ids[#ids + 1] = id
  end
  local set = {}
  for _, id in ipairs(ids) do
    set[id] = true
  end
  for _, id in ipairs({ "chart-percentiles-1", "chart-throughput-1", "chart-tokens-1", "chart-inflight-1", "chart-errors-1", "chart-compare-ttft", "chart-compare-itl", "chart-compare-latency" }) do
    t.ok(set[id], "chart " .. id .. " in the DOM")
  end
  t.ok(#ids >= 13, "svg count " .. #ids)
  t.ok(not out.stderr:find(":CONSOLE%("), "console messages:\n" .. out.stderr)
  t.ok(not out.stderr:find("Failed to load resource"), out.stderr)
end)

t.case("a screenshot renders", function()
  local png = fs.join(dir, "report.png")
  local out = chromium({ "--window-size=1500,4000", "--screenshot=" .. png })
  t.eq(out.code, 0, out.stderr)
  local data = assert(fs.read(png))
  t.eq(data:sub(1, 8), "\137PNG\r\n\26\n")
  t.ok(#data > 50000, "screenshot size " .. #data)
end)

t.run()
fs.remove(dir, { recursive = true })
