-- needs: chromium
-- The HTML report in a real headless browser: loads with no console errors,
-- its charts are there (DOM), and a screenshot is taken.
local bench = require("aibench.bench")
local sim = require("aibench.sim")
local report = require("aibench.report")
local results = require("aibench.results")
local fs = require("aibench.fs")
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

t.case("a monitor that sampled the run once: words, not axes; a missed scrape breaks the line", function()
  local origin = r.timeseries.origin_unix
  local function with_server(series, step)
    local copy = require("aibench.util").copy(rec)
    copy.server = { source = "prometheus", window = { start_unix = origin, end_unix = origin + r.duration_s }, timeseries = { step_s = step, series = series } }
    return report.html({ copy })
  end
  -- A 15 s scrape over a 3 s run: one sample each, and a fraction with none.
  local once = with_server({
    requests_running = { unit = "requests", points = { { 1, 20 } } },
    requests_waiting = { unit = "requests", points = { { 1, 0 } } },
    prefix_cache_hit_rate = { unit = "fraction", points = {} },
  }, 15)
  t.contains(once, '<p class="chart-empty" id="chart-server-queue-1">Server: running and waiting requests: too few points to draw (the monitor had 1 sample in the run')
  t.contains(once, '<p class="chart-empty" id="chart-prefix-cache-1">Server: prefix cache hit rate: no data (the monitor had 0 samples')
  t.ok(not once:find('<svg id="chart-server-queue-1"', 1, true), "axes drawn around one sample")
  -- A sample a second with the one at 1.5 s missing; points before the run and after it dropped.
  local pts = { { -1, 3 }, { 0, 1 }, { 0.5, 2 }, { 1, 2 }, { 2, 4 }, { 2.5, 4 }, { r.duration_s + 1, 9 } }
  local gap = with_server({ requests_running = { unit = "requests", points = pts }, kv_cache_usage = { unit = "fraction", points = {} } }, 0.5)
  local svg = assert(gap:match('<svg id="chart%-server%-queue%-1".-</svg>'), "the server chart is drawn")
  -- One polyline per segment (plotters' "x,y x,y ..." points).
  local segs, pts = 0, 0
  for p in svg:gmatch('<polyline class="series"[^>]- points="([^"]*)"') do
    segs = segs + 1
    for _ in p:gmatch("[%d%.%-]+,[%d%.%-]+") do
      pts = pts + 1
    end
  end
  t.eq(segs, 2, "two segments: " .. svg)
  t.eq(pts, 5, "five points in the run: " .. svg)
  t.eq(svg:match('data%-x%-min="([^"]*)"'), "0")
end)

t.case("a closed loop's lock-step seconds (0, 20, 0, 20...) are smoothed, and the last partial second is no drop", function()
  local util = require("aibench.util")
  local b = util.copy(r)
  local o = r.timeseries.origin_unix
  local ts = { origin_unix = o, t_s = {}, completed = {}, errors = {}, output_tokens = {}, in_flight = {} }
  for i = 0, 20 do
    ts.t_s[#ts.t_s + 1] = i
    -- 10 req/s on average; the 21st second is 0.1 s of the run with 1 completion.
    local n = i == 20 and 1 or (i % 2 == 0 and 0 or 20)
    ts.completed[#ts.completed + 1] = n
    ts.errors[#ts.errors + 1] = 0
    ts.output_tokens[#ts.output_tokens + 1] = 8 * n
    ts.in_flight[#ts.in_flight + 1] = 4
  end
  b.timeseries, b.window_start_unix, b.window_end_unix, b.duration_s = ts, o, o + 20.1, 20.1
  local copy = util.copy(rec)
  copy.bench = b
  local html = report.html({ copy })
  local svg = assert(html:match('<svg id="chart%-throughput%-1".-</svg>'))
  local plot, y0, y1 = {}, tonumber(svg:match('data%-y%-min="([^"]*)"')), tonumber(svg:match('data%-y%-max="([^"]*)"'))
  for v in svg:match('data%-plot="([^"]*)"'):gmatch("[%d%.]+") do
    plot[#plot + 1] = tonumber(v)
  end
  local d = assert(svg:match('<polyline class="series"[^>]- points="([^"]*)"'))
  local lo, hi, n, last = math.huge, -math.huge, 0, nil
  for py in d:gmatch("[%d%.]+,([%d%.]+)") do
    local y = y0 + (plot[4] - tonumber(py)) / (plot[4] - plot[2]) * (y1 - y0)
    lo, hi, n, last = math.min(lo, y), math.max(hi, y), n + 1, y
  end
  t.eq(n, 21)
  t.ok(lo > 7.9 and hi < 12.1, string.format("smoothed req/s between %.1f and %.1f", lo, hi))
  -- The last five seconds: 41 completions in 4.1 s of the run, not in 5.
  t.ok(math.abs(last - 10) < 0.2, string.format("last point %.2f req/s", last))
  t.contains(html, "centred 5 s moving average")
end)

local function chromium(extra)
  return dofile("tests/lua/support/chromium.lua").run(dir, html, extra)
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
  for _, id in ipairs({ "chart-percentiles-1", "chart-e2e-1", "chart-throughput-1", "chart-tokens-1", "chart-inflight-1", "chart-compare-ttft", "chart-compare-itl", "chart-compare-latency" }) do
    t.ok(set[id], "chart " .. id .. " in the DOM")
  end
  t.ok(#ids >= 13, "svg count " .. #ids)
  -- No errors: a sentence, not an empty bar chart.
  t.ok(not set["chart-errors-1"], "an errors chart without errors")
  t.contains(out.stdout, '<p class="chart-empty" id="chart-errors-1">Errors by class: no errors in')
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
