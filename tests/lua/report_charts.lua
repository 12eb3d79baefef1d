-- needs: chromium, prometheus
-- Charts that do not mislead (issue 23): a short closed-loop run against the
-- simulator, scraped by the stock monitor recipe's real Prometheus, made into
-- the HTML report, opened in headless Chromium (DOM and screenshot), and read
-- back from the SVG the report holds: every chart draws a line or says in
-- words why not, no point lies outside the run, a fraction's axis is 0-1,
-- ticks are whole numbers without ".0" and percentiles with "%", legends sit
-- outside the plot area, and rates come from the run's own window.
local server = require("aibench.server")
local monitor = require("aibench.monitor")
local client = require("aibench.client")
local report = require("aibench.report")
local fs = require("aibench.fs")
local proc = require("aibench.proc")
local t = require("aibench.testing")

local wait_for = dofile("tests/lua/support/flows.lua").wait_for
local dir = assert(fs.tmpdir())

-- The stock monitor recipe, unchanged but for how soon Prometheus re-reads its target files.
local srv = assert(server.run({ recipe = "vllm-sim", executor = "local", quiet = true }))
local m = assert(monitor.start({ recipe = "vllm-monitor", executor = "local", set = { "prometheus.refresh_interval=1s" } }))
m = assert(monitor.get(m.instance_id))
wait_for("the server to be scraped", 30, function()
  for _, tg in ipairs(m.client:targets() or {}) do
    if tg.health == "up" and tg.labels and tg.labels.job == "vllm" then
      return true
    end
  end
end)

local recipe = fs.join(dir, "charts-client.yaml")
assert(fs.write(recipe, [[
name: charts-client
service_name: vllm
workload: {pattern: closed-loop, users: 8, duration_seconds: 8}
dataset: {prompt_tokens: 32, output_tokens: 32}
]]))
local rec = assert(client.run({ recipe = recipe, out_dir = fs.join(dir, "results"), progress = false }))[1]
local b = rec.bench
local html_path = fs.join(dir, "report.html")
local html = report.html({ rec })
assert(fs.write(html_path, html))

--- The run window the charts must keep to: [0, end of the run on the client's clock].
local origin, run_len = require("aibench.report.html").run_window(b)

--- Every chart in the report: {id, svg} for drawings, {id, words} for sentences.
local function charts(text)
  local out = {}
  for svg in text:gmatch("<svg .-</svg>") do
    out[#out + 1] = { id = svg:match('^<svg id="([%w%-]+)"'), svg = svg }
  end
  for id, words in text:gmatch('<p class="chart%-empty" id="([%w%-]+)">(.-)</p>') do
    out[#out + 1] = { id = id, words = words }
  end
  return out
end

local function attr(svg, name)
  return svg:match("^<svg [^>]-" .. name:gsub("%-", "%%-") .. '="([^"]*)"')
end

local function nums(s)
  local out = {}
  for v in (s or ""):gmatch("%-?[%d%.]+") do
    out[#out + 1] = tonumber(v)
  end
  return out
end

--- The series' segments (one polyline each, points "x,y x,y ...") as lists of pixel points.
local function segments(svg)
  local out = {}
  for d in svg:gmatch('<polyline class="series"[^>]- points="([^"]*)"') do
    local pts = {}
    for x, y in d:gmatch("(%-?[%d%.]+),(%-?[%d%.]+)") do
      pts[#pts + 1] = { tonumber(x), tonumber(y) }
    end
    out[#out + 1] = pts
  end
  return out
end

--- The labels of the tick texts of the given class pattern (plotters puts a text on its own line).
local function ticks_of(svg, class)
  local out = {}
  for label in svg:gmatch('<text class="' .. class .. '"[^>]*>%s*([^<]-)%s*</text>') do
    out[#out + 1] = label
  end
  return out
end

local function tick_labels(svg)
  return ticks_of(svg, "[xy]%-tick")
end

local function x_ticks(svg)
  return ticks_of(svg, "x%-tick")
end

local all = charts(html)
local by_id = {}
for _, c in ipairs(all) do
  by_id[c.id] = c
end

t.case("the run was scraped often enough: the stock monitor scrapes every second or two", function()
  local s = require("aibench.prom").duration_s(m.scrape_interval)
  t.ok(s >= 1 and s <= 2, "stock scrape interval " .. tostring(m.scrape_interval))
  t.eq(rec.server.timeseries.step_s, s)
  t.ok(rec.server.timeseries.rate_window_s <= 4 * s, "rate window " .. rec.server.timeseries.rate_window_s)
end)

t.case("every chart draws a line of at least two points, or says in words why not", function()
  t.ok(#all >= 8, "charts: " .. #all)
  for _, c in ipairs(all) do
    t.ok(c.id and c.id:match("^chart%-"), "a chart without an id")
    if c.svg then
      local longest = 0
      for _, seg in ipairs(segments(c.svg)) do
        longest = math.max(longest, #seg)
      end
      local bars = c.svg:find('<rect class="bar"', 1, true)
      t.ok(longest >= 2 or bars, c.id .. " is drawn with no line")
      t.ok(not c.svg:find("no data", 1, true), c.id .. " draws axes around 'no data'")
    else
      t.ok(#c.words > 10, c.id .. ": " .. c.words)
    end
  end
  -- With a scrape a second, an 8 s run's server charts are drawings, not words.
  for _, id in ipairs({ "chart-server-queue-1", "chart-server-latency-1", "chart-throughput-1", "chart-percentiles-1", "chart-e2e-1" }) do
    t.ok(by_id[id] and by_id[id].svg, id .. " is drawn: " .. tostring(by_id[id] and by_id[id].words))
  end
end)

t.case("no point outside the run window, none outside the plot area", function()
  t.ok(run_len > 7 and run_len < 12, "run window " .. run_len)
  local checked = 0
  for _, c in ipairs(all) do
    if c.svg and attr(c.svg, "data-x-scale") == "linear" then
      local plot = nums(attr(c.svg, "data-plot"))
      local x0, x1 = tonumber(attr(c.svg, "data-x-min")), tonumber(attr(c.svg, "data-x-max"))
      t.eq(x0, 0, c.id .. " x axis starts at the run's start")
      t.eq(tonumber(attr(c.svg, "data-y-min")), 0, c.id .. ": counts, rates and times start at 0, not below")
      t.ok(math.abs(x1 - run_len) < 1e-6, string.format("%s x axis ends at %s, the run at %s", c.id, x1, run_len))
      for _, seg in ipairs(segments(c.svg)) do
        for _, p in ipairs(seg) do
          local x = x0 + (p[1] - plot[1]) / (plot[3] - plot[1]) * (x1 - x0)
          t.ok(x >= -0.01 and x <= run_len + 0.01, string.format("%s: a point at %.2f s, outside [0, %.2f]", c.id, x, run_len))
          t.ok(p[2] >= plot[2] - 0.01 and p[2] <= plot[4] + 0.01, c.id .. ": a point above or below the plot area")
          checked = checked + 1
        end
      end
    end
  end
  t.ok(checked > 20, "points checked: " .. checked)
end)

t.case("a fraction's axis is 0 to 1", function()
  local c = by_id["chart-prefix-cache-1"]
  t.ok(c, "the prefix cache chart (or its sentence) is in the report")
  if c.svg then
    t.eq(tonumber(attr(c.svg, "data-y-min")), 0)
    t.eq(tonumber(attr(c.svg, "data-y-max")), 1)
  end
end)

t.case("ticks: whole numbers without .0, percentiles with %, fonts of 12 px or more", function()
  for _, c in ipairs(all) do
    if c.svg then
      local labels = tick_labels(c.svg)
      t.ok(#labels >= 2, c.id .. ": tick labels found: " .. #labels)
      for _, l in ipairs(labels) do
        t.ok(not l:match("^%-?%d+%.0+%%?$"), c.id .. ": tick label " .. l)
      end
      for px in c.svg:gmatch('font%-size="([%d%.]+)"') do
        t.ok(tonumber(px) >= 12, c.id .. ": font-size " .. px)
      end
    end
  end
  for _, id in ipairs({ "chart-percentiles-1", "chart-e2e-1" }) do
    local labels = x_ticks(by_id[id].svg)
    local set = {}
    for _, l in ipairs(labels) do
      t.ok(l:match("%%$"), id .. ": percentile tick " .. l)
      set[l] = true
    end
    t.ok(set["50%"] and set["90%"] and set["99%"] and set["99.9%"], id .. ": " .. table.concat(labels, " "))
  end
end)

t.case("legends sit outside the plot area", function()
  local n = 0
  for _, c in ipairs(all) do
    local legend = c.svg and attr(c.svg, "data-legend")
    if legend then
      local l, p = nums(legend), nums(attr(c.svg, "data-plot"))
      -- Disjoint boxes: the legend is wholly below, above, left or right of the plot.
      t.ok(l[2] > p[4] or l[4] < p[2] or l[1] > p[3] or l[3] < p[1], c.id .. ": legend " .. legend .. " over plot " .. attr(c.svg, "data-plot"))
      n = n + 1
    end
  end
  t.ok(n >= 3, "charts with a legend: " .. n)
end)

t.case("TTFT/ITL/TPOT apart from E2E; throughput smoothed and says so; no empty error chart", function()
  local tok = by_id["chart-percentiles-1"].svg
  t.contains(tok, 'data-series="TTFT"')
  t.contains(tok, 'data-series="ITL"')
  t.ok(not tok:find('data-series="E2E', 1, true), "E2E is on its own panel")
  t.contains(by_id["chart-e2e-1"].svg, 'data-series="E2E latency"')
  t.contains(html, "moving average of the per-second counts")
  t.eq(b.errors, 0)
  t.ok(by_id["chart-errors-1"].words, "no errors: a sentence, not an empty bar chart")
  t.contains(by_id["chart-errors-1"].words, "no errors in")
end)

t.case("rates from counters over the run's own window (summary and export)", function()
  local client_rate = b.tokens.output_per_s
  local server_rate = rec.server.generation_tokens_per_s
  t.ok(server_rate / client_rate > 0.8 and server_rate / client_rate < 1.1, string.format("server %.1f tok/s, client %.1f tok/s", server_rate, client_rate))
  t.contains(html, "tok/s over the run's")
  -- Without the before/after scrapes, the same rate from Prometheus' counters at t0 and t1.
  local w = rec.server.window
  local fallback = require("aibench.servermetrics").after({}, b.target.urls, w.start_unix, w.end_unix)
  t.eq(fallback.source, "prometheus")
  t.ok(math.abs(fallback.generation_tokens_per_s / server_rate - 1) < 0.15, string.format("from Prometheus %.1f tok/s, from the scrapes %.1f", fallback.generation_tokens_per_s, server_rate))
  local csv = assert(monitor.export({ id = m.instance_id, format = "csv", type = "range", start = rec.server.window.start_unix, ["end"] = rec.server.window.end_unix, step = 1 }))
  t.contains(csv, "# rate_window: 4s")
  local top = 0
  for v in csv:gmatch("vllm,generation_tokens_per_s,tokens/s,[^,]*,[^,]*,([^\n]+)") do
    top = math.max(top, tonumber(v) or 0)
  end
  -- A minute's window would show about 8/60 of it.
  t.ok(top / client_rate > 0.7 and top / client_rate < 1.5, string.format("exported %.1f tok/s, client %.1f tok/s", top, client_rate))
end)

local function chromium(extra)
  return dofile("tests/lua/support/chromium.lua").run(dir, html_path, extra)
end

t.case("Chromium renders it: the same charts in the DOM, no console errors, a screenshot", function()
  local out = chromium({ "--dump-dom" })
  t.eq(out.code, 0, out.stderr)
  local svgs, words = 0, 0
  for _ in out.stdout:gmatch("<svg ") do
    svgs = svgs + 1
  end
  for _ in out.stdout:gmatch('class="chart%-empty"') do
    words = words + 1
  end
  t.eq(svgs + words, #all)
  t.ok(not out.stderr:find(":CONSOLE%("), "console messages:\n" .. out.stderr)
  local png = fs.join(dir, "report.png")
  out = chromium({ "--window-size=1500,4000", "--screenshot=" .. png })
  t.eq(out.code, 0, out.stderr)
  local data = assert(fs.read(png))
  t.eq(data:sub(1, 8), "\137PNG\r\n\26\n")
  t.ok(#data > 50000, "screenshot size " .. #data)
  io.stderr:write(string.format("    screenshot %s (%d bytes), %d charts, %d in words\n", png, #data, svgs, words))
end)

t.run()
assert(monitor.stop(m.instance_id))
server.stop_all()
local _ = srv
-- KEEP_CHARTS=DIR keeps the report and its screenshot there, to look at.
if os.getenv("KEEP_CHARTS") then proc.run({ "cp", fs.join(dir, "report.png"), fs.join(dir, "report.html"), os.getenv("KEEP_CHARTS") }) end
fs.remove(dir, { recursive = true })
