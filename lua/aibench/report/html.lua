--- The HTML report: one self-contained file (no scripts, nothing loaded)
--- with SVG charts.
local f = require("aibench.report.format")
local compare = require("aibench.report.compare")
local util = require("aibench.util")
local num, present, workload_line, title_of = f.num, f.present, f.workload_line, f.title_of

local M = {}

--- A value as HTML text: control characters shown as escapes (format.clean),
--- then the HTML specials as entities.
local function esc(s)
  return (f.clean(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

local function html_table(rows, class)
  local out = { '<table class="' .. (class or "") .. '"><thead><tr>' }
  for _, h in ipairs(rows[1]) do
    out[#out + 1] = "<th>" .. esc(h) .. "</th>"
  end
  out[#out + 1] = "</tr></thead><tbody>"
  for i = 2, #rows do
    out[#out + 1] = "<tr>"
    for _, c in ipairs(rows[i]) do
      local cls = tostring(c):find("REGRESSION", 1, true) and ' class="bad"' or (tostring(c):find("improved", 1, true) and ' class="good"' or "")
      out[#out + 1] = "<td" .. cls .. ">" .. esc(c) .. "</td>"
    end
    out[#out + 1] = "</tr>"
  end
  out[#out + 1] = "</tbody></table>"
  return table.concat(out)
end

local CSS = [[
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1500px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.5rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.8rem 0;font-size:.9rem}th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}thead{background:#f4f4f4}
.charts{display:flex;flex-wrap:wrap;gap:.8rem}figure{margin:0;border:1px solid #eee;padding:.3rem}
figcaption{font-size:.8rem;color:#555;text-align:center;max-width:660px;margin:auto}
.chart-empty{border:1px dashed #ccc;color:#555;padding:.6rem 1rem;margin:0;align-self:flex-start;max-width:640px}
.bad{color:#b00020;font-weight:bold}.good{color:#1b7f3b}
.meta td{text-align:left}dl{font-size:.9rem}dt{font-weight:bold}dd{margin:0 0 .4rem 1rem}
.warning{border-left:4px solid #b26a00;background:#fff4e0;padding:.4rem .8rem;margin:.5rem 0}
.client-limited{border-left-color:#b00020;background:#fdecee;font-weight:bold}
]]

local function figure(svg, caption)
  return "<figure>" .. svg .. "<figcaption>" .. esc(caption) .. "</figcaption></figure>"
end

--- At most this many points go to the chart code per series: a longer one
--- (a day-long run's per-second series, a monitor's) is cut into
--- MAX_POINTS / 2 time bins, each kept as its lowest and highest point, so
--- spikes and dips stay visible and the file stays small.
M.MAX_POINTS = 2000

local function finite(x)
  return type(x) == "number" and x - x == 0
end

--- Thins `n` points, the i-th given by `at(i)` as x, y (points whose x or y
--- is not a finite number are left out), to at most `max` points in x order.
--- Returns the points ({x, y} each) and whether it thinned them.
---@param n integer
---@param at fun(i: integer): number?, number?
---@param max? integer default MAX_POINTS
---@return number[][], boolean
function M.thin(n, at, max)
  max = math.max(2, max or M.MAX_POINTS)
  local out = {}
  if n <= max then
    for i = 1, n do
      local x, y = at(i)
      if finite(x) and finite(y) then
        out[#out + 1] = { x, y }
      end
    end
    return out, false
  end
  local x0, x1 = math.huge, -math.huge
  for i = 1, n do
    local x, y = at(i)
    if finite(x) and finite(y) then
      x0, x1 = math.min(x0, x), math.max(x1, x)
    end
  end
  local bins = max // 2
  local span = x1 - x0
  local lo, lo_y, hi, hi_y = {}, {}, {}, {}
  for i = 1, n do
    local x, y = at(i)
    if finite(x) and finite(y) then
      local b
      if span > 0 then
        b = math.min(bins - 1, math.floor((x - x0) / span * bins))
      else
        b = (i - 1) * bins // n
      end
      if not lo[b] or y < lo_y[b] then
        lo[b], lo_y[b] = i, y
      end
      if not hi[b] or y > hi_y[b] then
        hi[b], hi_y[b] = i, y
      end
    end
  end
  for b = 0, bins - 1 do
    local first, second = lo[b], hi[b]
    if first then
      if first > second then
        first, second = second, first
      end
      out[#out + 1] = { at(first) }
      if second ~= first then
        out[#out + 1] = { at(second) }
      end
    end
  end
  return out, true
end

local PCT = { 0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100 }

--- A series needs at least this many points to be drawn: with fewer, a
--- line says nothing true (two points are a ramp between two samples).
M.MIN_POINTS = 3

--- How many of a series' points a chart would draw: finite, inside the x
--- domain, and above 0 on a log axis.
local function drawable(spec, s)
  local n = 0
  for _, p in ipairs(s.points or {}) do
    local x, y = p[1], p[2]
    if finite(x) and finite(y) and (not spec.x_min or x >= spec.x_min) and (not spec.x_max or x <= spec.x_max) and (spec.y_scale ~= "log" or y > 0) then
      n = n + 1
    end
  end
  return n
end

--- A sentence in place of a chart: what it would have shown, and why it
--- does not. Same id as the chart, so that a reader (or a test) finds it.
local function chart_words(id, title, why)
  return string.format('<p class="chart-empty" id="%s">%s: %s.</p>', esc(id), esc(title), esc(why))
end

--- The one place a line chart becomes a figure. Series with fewer than
--- MIN_POINTS drawable points are left out (the caption names them); when
--- none is left, a sentence says so instead of drawing empty axes.
--- `why(n)` says why, given the most points any series had.
---@param spec table plot.lines' spec
---@param caption string
---@param why fun(n: integer): string
local function line_figure(spec, caption, why)
  local plot = require("aibench.plot")
  local kept, left, most = {}, {}, 0
  for _, s in ipairs(spec.series) do
    local n = drawable(spec, s)
    most = math.max(most, n)
    if n >= M.MIN_POINTS then
      kept[#kept + 1] = s
    else
      left[#left + 1] = string.format("%s: %d point%s", s.name, n, n == 1 and "" or "s")
    end
  end
  if #kept == 0 then
    return chart_words(spec.id, spec.title, (most == 0 and "no data (" or "too few points to draw (") .. why(most) .. ")")
  end
  spec.series = kept
  if #left > 0 then
    caption = caption .. "; not drawn, too few points: " .. table.concat(left, ", ")
  end
  return figure(plot.lines(spec), caption)
end

local function percentile_series(b, metric, name)
  local bench = require("aibench.bench")
  local plot = require("aibench.plot")
  if not present(b.histograms) then
    return nil
  end
  local pts = bench.percentiles(b, metric, PCT)
  if not pts then
    return nil
  end
  local points = {}
  for i, p in ipairs(pts) do
    points[i] = { plot.nines(math.min(p[1], 99.999)), p[2] }
  end
  return { name = name, points = points }
end

local function no_histograms()
  return "the result has no latency histograms"
end

--- The run's window on the client's clock: its origin (second 0 of the
--- per-second series, Unix seconds) and its length in seconds (to the last
--- completion). Time charts span exactly [0, length].
function M.run_window(b)
  local ts = present(b.timeseries) and b.timeseries or {}
  local origin = (finite(ts.origin_unix) and ts.origin_unix > 0) and ts.origin_unix or b.window_start_unix
  local len
  if finite(origin) and finite(b.window_end_unix) and b.window_end_unix > origin then
    len = b.window_end_unix - origin
  elseif finite(b.duration_s) and b.duration_s > 0 then
    len = b.duration_s
  else
    len = type(ts.t_s) == "table" and #ts.t_s or 0
  end
  return finite(origin) and origin or nil, len
end

--- The closed loop's lock-step arrivals make per-second counts jump
--- between 0 and the number of users; a centred moving average over this
--- many seconds shows the rate instead.
M.SMOOTH_S = 5

--- A per-second column as points at each second's middle (the last second
--- cut at the window's end), optionally as a moving average over SMOOTH_S
--- seconds. A
--- count (`rate`) is divided by the time its seconds cover inside the
--- window, so the last, partial second does not read as a drop.
local function per_second(ts, key, len, smooth, rate)
  local t, v = ts.t_s, ts[key]
  if type(t) ~= "table" or type(v) ~= "table" then
    return {}
  end
  local half = smooth and (M.SMOOTH_S // 2) or 0
  local function cover(j)
    return finite(t[j]) and math.max(0, math.min(1, len - t[j])) or 0
  end
  return (M.thin(#t, function(i)
    if not finite(t[i]) or t[i] >= len then
      return nil
    end
    -- Centred, but kept whole at the ends (shifted inward) so that the
    -- first and last seconds average as many seconds as the rest.
    local hi = math.min(#v, math.max(1, i - half) + 2 * half)
    local lo = math.max(1, hi - 2 * half)
    local sum, secs = 0, 0
    for j = lo, hi do
      local c = cover(j)
      if finite(v[j]) and c > 0 then
        sum, secs = sum + (rate and v[j] or v[j] * c), secs + c
      end
    end
    return t[i] + cover(i) / 2, secs > 0 and sum / secs or nil
  end))
end

--- A monitor series' points on the client's timeline (shifted by `offset`
--- seconds), thinned; y times `scale`.
local function server_points(points, offset, scale)
  if type(points) ~= "table" then
    return {}
  end
  return (M.thin(#points, function(i)
    local p = points[i]
    if type(p) ~= "table" or not finite(p[1]) then
      return nil
    end
    local y = p[2]
    return p[1] + offset, (scale and finite(y)) and y * scale or y
  end))
end

--- The y domain a unit implies: fractions 0-1, percentages 0-100.
local function unit_domain(spec, unit)
  if unit == "fraction" then
    spec.y_min, spec.y_max = 0, 1
  elseif unit == "%" then
    spec.y_min, spec.y_max = 0, 100
  else
    spec.y_min = 0
  end
  return spec
end

--- The monitor's step (seconds between its points): recorded, else the
--- points' median spacing.
local function server_step(server)
  local ts = server.timeseries
  if finite(ts.step_s) and ts.step_s > 0 then
    return ts.step_s
  end
  for _, sr in pairs(ts.series or {}) do
    local pts, d = sr.points or {}, {}
    for i = 2, #pts do
      d[#d + 1] = pts[i][1] - pts[i - 1][1]
    end
    if #d > 0 then
      table.sort(d)
      return d[(#d + 1) // 2]
    end
  end
  return 1
end

local function client_charts(b, idx, figs, len)
  local s1, s2 = {}, {}
  for _, m in ipairs({ { "ttft", "TTFT" }, { "itl", "ITL" }, { "tpot", "TPOT" } }) do
    s1[#s1 + 1] = percentile_series(b, m[1], m[2])
  end
  s2[#s2 + 1] = percentile_series(b, "latency", "E2E latency")
  -- Token-level latencies on their own panel, on a log axis: under E2E
  -- (seconds) they would be a flat line at the bottom.
  figs[#figs + 1] = line_figure({ id = "chart-percentiles-" .. idx, title = "TTFT, ITL and TPOT by percentile", x_label = "percentile", y_label = "ms (log scale)", x_scale = "nines", y_scale = "log", series = s1 }, "token-level latency percentile curves (HdrHistogram, all requests), log scale", no_histograms)
  figs[#figs + 1] = line_figure({ id = "chart-e2e-" .. idx, title = "E2E latency by percentile", x_label = "percentile", y_label = "ms", x_scale = "nines", y_min = 0, series = s2 }, "request latency percentile curve (HdrHistogram, all requests)", no_histograms)
  local ts = present(b.timeseries) and b.timeseries or {}
  local function too_short(n)
    if not present(b.timeseries) then
      return "the result has no per-second series"
    end
    return string.format("the run lasted %s s: %d per-second point%s", num(len, 1), n, n == 1 and "" or "s")
  end
  local time = { x_label = "seconds since the run's start", x_min = 0, x_max = len, y_min = 0 }
  local smooth = string.format("centred %d s moving average of the per-second counts", M.SMOOTH_S)
  local tp = { { name = "completed req/s", points = per_second(ts, "completed", len, true, true) } }
  if (b.errors or 0) > 0 then
    tp[2] = { name = "errors/s", points = per_second(ts, "errors", len, true, true) }
  end
  figs[#figs + 1] = line_figure(util.merge(util.copy(time), { id = "chart-throughput-" .. idx, title = "Throughput over time", y_label = "per second", series = tp }), "requests " .. (tp[2] and "completed and failed" or "completed") .. " per second: " .. smooth, too_short)
  if (b.tokens and b.tokens.output_total or 0) > 0 then
    figs[#figs + 1] = line_figure(util.merge(util.copy(time), { id = "chart-tokens-" .. idx, title = "Output tokens per second", y_label = "tokens/s", series = { { name = "output tok/s", points = per_second(ts, "output_tokens", len, true, true) } } }), "output tokens per second: " .. smooth, too_short)
  end
  figs[#figs + 1] = line_figure(util.merge(util.copy(time), { id = "chart-inflight-" .. idx, title = "Requests in flight", y_label = "requests", series = { { name = "in flight", points = per_second(ts, "in_flight", len, false, false) } } }), "mean requests in flight during each second", too_short)
end

local function server_charts(b, server, idx, figs, origin, len)
  local sts = server.timeseries.series
  local step = server_step(server)
  -- The monitor's clock starts at the server window's start; the charts' at the client's origin.
  local start = present(server.window) and server.window.start_unix
  local offset = (finite(start) and origin) and (start - origin) or 0
  local function chart(id, title, y_label, unit, keys, caption)
    local series = {}
    for _, k in ipairs(keys) do
      local sr = sts[k[1]]
      if sr then
        series[#series + 1] = { name = k[2], points = server_points(sr.points, offset, k[3]), gap = 1.5 * step }
      end
    end
    if #series == 0 then
      return
    end
    local spec = unit_domain({ id = id .. "-" .. idx, title = title, x_label = "seconds since the run's start", y_label = y_label, x_min = 0, x_max = len, series = series }, unit)
    figs[#figs + 1] = line_figure(spec, string.format("%s; the monitor's Prometheus, one point every %s s, lines broken where a scrape is missing", caption, num(step, 0)), function(n)
      return string.format("the monitor had %d sample%s in the run's %s s (it scrapes every %s s)", n, n == 1 and "" or "s", num(len, 1), num(step, 0))
    end)
  end
  chart("chart-server-queue", "Server: running and waiting requests", "requests", "requests", { { "requests_running", "running" }, { "requests_waiting", "waiting" } }, "requests the server was running and queueing")
  chart("chart-server-latency", "Server: TTFT and queue time", "ms", "ms", { { "ttft_p50_s", "server TTFT p50", 1000 }, { "ttft_p99_s", "server TTFT p99", 1000 }, { "queue_time_p50_s", "server queue time p50", 1000 } }, string.format("server-side quantiles over a %s s window", num(server.timeseries.rate_window_s or 2 * step, 0)))
  chart("chart-gpu", "Server: GPU utilization and memory bandwidth", "%", "%", { { "gpu_util_pct", "GPU utilization %" }, { "gpu_mem_copy_util_pct", "memory bandwidth %" } }, "dcgm-exporter's DCGM_FI_DEV_GPU_UTIL and DCGM_FI_DEV_MEM_COPY_UTIL, mean over the GPUs")
  chart("chart-gpu-power", "Server: GPU power", "W", "W", { { "gpu_power_w", "power W" } }, "DCGM_FI_DEV_POWER_USAGE, summed over the GPUs")
  chart("chart-gpu-memory", "Server: GPU memory used", "MiB", "MiB", { { "gpu_fb_used_mib", "memory used MiB" } }, "DCGM_FI_DEV_FB_USED, summed over the GPUs")
  chart("chart-prefix-cache", "Server: prefix cache hit rate", "fraction", "fraction", { { "prefix_cache_hit_rate", "hit rate" } }, "hit tokens over queried tokens")
end

local function charts_for(b, server, idx)
  local figs = {}
  local origin, len = M.run_window(b)
  client_charts(b, idx, figs, len)
  if present(server) and present(server.timeseries) and present(server.timeseries.series) then
    server_charts(b, server, idx, figs, origin, len)
  end
  local sess = present(b.sessions) and b.sessions.per_turn or {}
  if #sess > 0 then
    local series = {}
    for _, q in ipairs({ { "mean", "TTFT mean" }, { "p50", "TTFT p50" }, { "p99", "TTFT p99" } }) do
      local pts = M.thin(#sess, function(i)
        local t = sess[i]
        if present(t.ttft_ms) then
          return t.turn, t.ttft_ms[q[1]]
        end
      end)
      series[#series + 1] = { name = q[2], points = pts }
    end
    figs[#figs + 1] = line_figure({ id = "chart-turns-" .. idx, title = "TTFT by turn", x_label = "turn", y_label = "ms", y_min = 0, series = series }, "time to first token by turn index: a prefix cache shows in the later turns", function(n)
      return string.format("%d turn%s with a TTFT", n, n == 1 and "" or "s")
    end)
  end
  if present(b.trace) then
    local function per_s(v)
      if type(v) ~= "table" then
        return {}
      end
      return (M.thin(#v, function(i)
        return i - 0.5, v[i]
      end))
    end
    figs[#figs + 1] = line_figure({ id = "chart-trace-" .. idx, title = "Trace: offered and sent", x_label = "seconds since the run's start", y_label = "requests/s", y_min = 0, series = { { name = "offered (trace)", points = per_s(b.trace.offered_per_s) }, { name = "sent", points = per_s(b.trace.sent_per_s) } } }, string.format("the trace's load over time next to what went out (%d of %d sent)", b.trace.sent, b.trace.offered), function(n)
      return string.format("%d second%s of trace", n, n == 1 and "" or "s")
    end)
  end
  if (b.errors or 0) > 0 then
    local plot = require("aibench.plot")
    local bars = {}
    for _, c in ipairs({ "connect", "timeout", "http_4xx", "http_5xx", "stream_broken", "other" }) do
      bars[#bars + 1] = { c, (b.errors_by_class or {})[c] or 0 }
    end
    figs[#figs + 1] = figure(plot.bars({ id = "chart-errors-" .. idx, title = "Errors by class", y_label = "requests", bars = bars, width = 520 }), string.format("%d errors in %d requests", b.errors, b.total_requests))
  else
    figs[#figs + 1] = chart_words("chart-errors-" .. idx, "Errors by class", string.format("no errors in %d requests", b.total_requests or 0))
  end
  return '<div class="charts">' .. table.concat(figs) .. "</div>"
end

--- The self-contained HTML report (inline CSS and SVG; no scripts, no network).
function M.html(records, opts)
  opts = opts or {}
  local out = { "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>aibench report</title><style>" .. CSS .. "</style></head><body>" }
  out[#out + 1] = "<h1>aibench report</h1>"
  out[#out + 1] = string.format("<p>%d run%s, generated by aibench %s.</p>", #records, #records == 1 and "" or "s", esc(require("aibench").version))
  for i, rec in ipairs(records) do
    f.guard(rec, M.section, out, i, rec)
  end
  if opts.compare and #records > 1 then
    local plot = require("aibench.plot")
    local cmp = compare.compare(records, opts)
    out[#out + 1] = '<section id="compare"><h2>Comparison against #1</h2>'
    if cmp.note then
      out[#out + 1] = '<p class="warning compare-note">Note: ' .. esc(cmp.note) .. "</p>"
    end
    out[#out + 1] = html_table(compare.compare_rows(records, cmp), "compare")
    out[#out + 1] = string.format("<p>%s</p>", cmp.regressions == 0 and "No regression." or string.format('<span class="bad">%d regression(s) flagged</span> (worse by more than %.0f%%).', cmp.regressions, 100 * cmp.threshold))
    local figs = {}
    for _, m in ipairs({ { "ttft", "TTFT" }, { "itl", "ITL" }, { "latency", "E2E latency" } }) do
      local series = {}
      for i, rec in ipairs(records) do
        local sr = f.guard(rec, percentile_series, rec.bench, m[1], "#" .. i)
        if sr then
          series[#series + 1] = sr
        end
      end
      figs[#figs + 1] = line_figure({ id = "chart-compare-" .. m[1], title = m[2] .. " by percentile", x_label = "percentile", y_label = "ms", x_scale = "nines", y_min = 0, series = series, width = 480 }, m[2] .. ": all runs", no_histograms)
    end
    out[#out + 1] = '<div class="charts">' .. table.concat(figs) .. "</div></section>"
  end
  out[#out + 1] = '<section id="definitions"><h2>Definitions</h2><dl>'
  for _, d in ipairs(f.definitions) do
    out[#out + 1] = "<dt>" .. esc(d[1]) .. "</dt><dd>" .. esc(d[2]) .. "</dd>"
  end
  out[#out + 1] = "</dl></section></body></html>\n"
  return table.concat(out, "\n")
end

--- One record's section of the HTML report, appended to `out`.
function M.section(out, i, rec)
  local b = rec.bench
  out[#out + 1] = string.format('<section class="run" id="run-%d"><h2>#%d %s</h2>', i, i, esc(title_of(rec)))
  local env = rec.environment or {}
  out[#out + 1] = html_table({
    { "field", "value" },
    { "target", table.concat(b.target.urls or {}, ", ") .. " (" .. tostring(b.target.api or "?") .. ")" },
    { "model", present(b.target.model) and b.target.model or "-" },
    { "workload", workload_line(b.workload) },
    { "executor", tostring(env.executor or "-") .. ((env.slurm_job_ids and #env.slurm_job_ids > 0) and (" (SLURM jobs " .. table.concat(env.slurm_job_ids, ", ") .. ")") or "") },
    { "host", tostring(env.host or b.client and b.client.host or "-") },
    { "result file", tostring(rec.path or "-") },
  }, "meta")
  for _, w in ipairs(f.warnings(b)) do
    local limited = w:find("bottleneck", 1, true) ~= nil
    out[#out + 1] = string.format('<p class="warning%s">%s%s</p>', limited and " client-limited" or "", limited and "CLIENT-LIMITED: " or "Warning: ", esc(w))
  end
  -- Within noise of a limit: the amber banner of a warning, never the red one.
  if f.verdict(b.validity) == "borderline" then
    out[#out + 1] = string.format('<p class="warning borderline">Borderline: %s (over the limit by less than the noise of one run: not clearly client-limited; a second run with more client cores tells)</p>',
      esc(table.concat(b.validity.borderline, "; ")))
  end
  out[#out + 1] = html_table(f.headline_rows(b), "summary")
  local lengths = f.get(b, "asked_vs_served", "served_prompt_tokens")
  if lengths then
    local a = b.asked_vs_served.prompt
    out[#out + 1] = html_table({
      { "prompt tokens", "asked mean", "served mean", "min", "p50", "p90", "p99", "max", "requests" },
      { "served", num(a.asked_mean, 1), num(a.served_mean, 1), num(lengths.min, 0), num(lengths.p50, 0), num(lengths.p90, 0), num(lengths.p99, 0), num(lengths.max, 0), tostring(lengths.count) },
    }, "prompt-lengths")
  end
  out[#out + 1] = html_table(f.dist_rows(b), "dist")
  for _, line in ipairs({ { "Dataset", f.dataset_line(b) }, { "Trace", f.trace_line(b) }, { "Sessions", f.sessions_line(b) } }) do
    if line[2] then
      out[#out + 1] = string.format('<p class="%s">%s: %s.</p>', line[1]:lower(), line[1], esc(line[2]))
    end
  end
  local turns = f.turn_rows(b)
  if turns then
    out[#out + 1] = html_table(turns, "turns")
  end
  local urls = f.url_rows(b)
  if urls then
    out[#out + 1] = '<p class="per-url">Per instance: ' .. esc(f.balance_line(b)) .. ".</p>"
    out[#out + 1] = html_table(urls, "per-url")
  end
  local s = rec.server
  if present(s) then
    local rows = f.server_rows(s, "server-side (ms)")
    local pc = f.prefix_cache_text(s)
    -- Rates from the counters' deltas over the run's own window.
    local rate = ""
    if present(s.generation_tokens_per_s) and present(s.window) and present(s.window.seconds) then
      rate = string.format(" (%s tok/s over the run's %s s)", num(s.generation_tokens_per_s, 1), num(s.window.seconds, 1))
    end
    out[#out + 1] = string.format('<p class="server-side">Server side: %s requests finished (client: %d ok), %s generation tokens%s, %s preemptions%s.</p>', num(s.requests, 0), b.successes, num(s.generation_tokens, 0), rate, num(s.preemptions, 0), pc and (", " .. esc(pc)) or "")
    local gpu = f.gpu_text(s)
    if gpu then
      out[#out + 1] = '<p class="gpu">' .. esc(gpu) .. ".</p>"
    end
    if #rows > 1 then
      out[#out + 1] = html_table(rows, "server")
    end
  end
  local hpc = f.hpc_lines(rec)
  if #hpc > 0 then
    out[#out + 1] = '<h3 id="hpc-' .. i .. '">HPC</h3>'
    for _, w in ipairs(f.hpc_warnings(rec)) do
      out[#out + 1] = string.format('<p class="warning shared-node">Warning: %s</p>', esc(w))
    end
    local rows = { { "what", "" } }
    for _, l in ipairs(hpc) do
      rows[#rows + 1] = { l[1], l[2] }
    end
    out[#out + 1] = html_table(rows, "hpc")
  end
  out[#out + 1] = charts_for(b, rec.server, i)
  out[#out + 1] = "</section>"
end

return M
