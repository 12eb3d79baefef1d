--- The HTML report: one self-contained file (no scripts, nothing loaded)
--- with SVG charts.
local f = require("aibench.report.format")
local compare = require("aibench.report.compare")
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
figcaption{font-size:.8rem;color:#555;text-align:center}.bad{color:#b00020;font-weight:bold}.good{color:#1b7f3b}
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

--- A series of {x, y} points (a monitor's), thinned; y times `scale`.
local function thin_points(points, scale)
  if type(points) ~= "table" then
    return {}
  end
  return (M.thin(#points, function(i)
    local p = points[i]
    if type(p) ~= "table" then
      return nil
    end
    local y = p[2]
    return p[1], (scale and finite(y)) and y * scale or y
  end))
end

--- A series from two columns (x values, y values), thinned.
local function thin_columns(xs, ys)
  if type(xs) ~= "table" or type(ys) ~= "table" then
    return {}
  end
  return (M.thin(#xs, function(i)
    return xs[i], ys[i]
  end))
end

local PCT = { 0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100 }

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

local function charts_for(b, server, idx)
  local plot = require("aibench.plot")
  local figs = {}
  local series = {}
  for _, m in ipairs({ { "ttft", "TTFT" }, { "itl", "ITL" }, { "latency", "E2E latency" }, { "tpot", "TPOT" } }) do
    local s = percentile_series(b, m[1], m[2])
    if s then
      series[#series + 1] = s
    end
  end
  figs[#figs + 1] = figure(plot.lines({ id = "chart-percentiles-" .. idx, title = "Latency by percentile", x_label = "percentile", y_label = "ms", x_scale = "nines", series = series }), "latency percentile curves (HdrHistogram, all requests)")
  local ts = present(b.timeseries) and b.timeseries or {}
  local completed, errors = thin_columns(ts.t_s, ts.completed), thin_columns(ts.t_s, ts.errors)
  local tokens, inflight = thin_columns(ts.t_s, ts.output_tokens), thin_columns(ts.t_s, ts.in_flight)
  figs[#figs + 1] = figure(plot.lines({ id = "chart-throughput-" .. idx, title = "Throughput over time", x_label = "seconds", y_label = "per second", series = { { name = "completed req/s", points = completed }, { name = "errors/s", points = errors } } }), "requests completed and failed per second")
  if (b.tokens and b.tokens.output_total or 0) > 0 then
    figs[#figs + 1] = figure(plot.lines({ id = "chart-tokens-" .. idx, title = "Output tokens per second", x_label = "seconds", y_label = "tokens/s", series = { { name = "output tok/s", points = tokens } } }), "output tokens per second")
  end
  figs[#figs + 1] = figure(plot.lines({ id = "chart-inflight-" .. idx, title = "Requests in flight", x_label = "seconds", y_label = "requests", series = { { name = "in flight", points = inflight } } }), "mean requests in flight during each second")
  local sts = present(server) and present(server.timeseries) and server.timeseries.series
  if sts then
    local s1 = {}
    for _, k in ipairs({ "requests_running", "requests_waiting" }) do
      if sts[k] then
        s1[#s1 + 1] = { name = k:gsub("_", " "), points = thin_points(sts[k].points) }
      end
    end
    figs[#figs + 1] = figure(plot.lines({ id = "chart-server-queue-" .. idx, title = "Server: running and waiting requests", x_label = "seconds", y_label = "requests", series = s1 }), "from the monitor's Prometheus, same timeline")
    local s2 = {}
    for _, k in ipairs({ "ttft_p50_s", "ttft_p99_s", "queue_time_p50_s" }) do
      if sts[k] then
        s2[#s2 + 1] = { name = "server " .. k:gsub("_s$", ""):gsub("_", " ") .. " ms", points = thin_points(sts[k].points, 1000) }
      end
    end
    if #s2 > 0 then
      figs[#figs + 1] = figure(plot.lines({ id = "chart-server-latency-" .. idx, title = "Server: TTFT and queue time", x_label = "seconds", y_label = "ms", series = s2 }), "server-side quantiles over the run (rate over a short window)")
    end
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
    figs[#figs + 1] = figure(plot.lines({ id = "chart-turns-" .. idx, title = "TTFT by turn", x_label = "turn", y_label = "ms", series = series }), "time to first token by turn index: a prefix cache shows in the later turns")
  end
  if present(b.trace) then
    local function per_s(v)
      if type(v) ~= "table" then
        return {}
      end
      return (M.thin(#v, function(i)
        return i - 1, v[i]
      end))
    end
    figs[#figs + 1] = figure(plot.lines({ id = "chart-trace-" .. idx, title = "Trace: offered and sent", x_label = "seconds", y_label = "requests/s", series = { { name = "offered (trace)", points = per_s(b.trace.offered_per_s) }, { name = "sent", points = per_s(b.trace.sent_per_s) } } }), string.format("the trace's load over time next to what went out (%d of %d sent)", b.trace.sent, b.trace.offered))
  end
  if sts and (sts.gpu_util_pct or sts.gpu_mem_copy_util_pct) then
    local g = {}
    for _, k in ipairs({ { "gpu_util_pct", "GPU utilization %" }, { "gpu_mem_copy_util_pct", "memory bandwidth %" } }) do
      if sts[k[1]] then
        g[#g + 1] = { name = k[2], points = thin_points(sts[k[1]].points) }
      end
    end
    figs[#figs + 1] = figure(plot.lines({ id = "chart-gpu-" .. idx, title = "Server: GPU utilization and memory bandwidth", x_label = "seconds", y_label = "%", series = g }), "dcgm-exporter's DCGM_FI_DEV_GPU_UTIL and DCGM_FI_DEV_MEM_COPY_UTIL, mean over the GPUs")
  end
  if sts and (sts.gpu_power_w or sts.gpu_fb_used_mib) then
    local g = {}
    if sts.gpu_power_w then
      g[#g + 1] = { name = "power W", points = thin_points(sts.gpu_power_w.points) }
    end
    figs[#figs + 1] = figure(plot.lines({ id = "chart-gpu-power-" .. idx, title = "Server: GPU power", x_label = "seconds", y_label = "W", series = g }), "DCGM_FI_DEV_POWER_USAGE, summed over the GPUs")
    if sts.gpu_fb_used_mib then
      figs[#figs + 1] = figure(plot.lines({ id = "chart-gpu-memory-" .. idx, title = "Server: GPU memory used", x_label = "seconds", y_label = "MiB", series = { { name = "memory used MiB", points = thin_points(sts.gpu_fb_used_mib.points) } } }), "DCGM_FI_DEV_FB_USED, summed over the GPUs")
    end
  end
  if sts and sts.prefix_cache_hit_rate then
    figs[#figs + 1] = figure(plot.lines({ id = "chart-prefix-cache-" .. idx, title = "Server: prefix cache hit rate", x_label = "seconds", y_label = "fraction", series = { { name = "hit rate", points = thin_points(sts.prefix_cache_hit_rate.points) } } }), "hit tokens over queried tokens, from the monitor's Prometheus")
  end
  local bars = {}
  for _, c in ipairs({ "connect", "timeout", "http_4xx", "http_5xx", "stream_broken", "other" }) do
    bars[#bars + 1] = { c, (b.errors_by_class or {})[c] or 0 }
  end
  figs[#figs + 1] = figure(plot.bars({ id = "chart-errors-" .. idx, title = "Errors by class", y_label = "requests", bars = bars, width = 520 }), string.format("%d errors in %d requests", b.errors, b.total_requests))
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
      figs[#figs + 1] = figure(plot.lines({ id = "chart-compare-" .. m[1], title = m[2] .. " by percentile", x_label = "percentile", y_label = "ms", x_scale = "nines", series = series, width = 480 }), m[2] .. ": all runs")
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
  local s = rec.server
  if present(s) then
    local rows = f.server_rows(s, "server-side (ms)")
    local pc = f.prefix_cache_text(s)
    out[#out + 1] = string.format("<p>Server side: %s requests finished (client: %d ok), %s generation tokens, %s preemptions%s.</p>", num(s.requests, 0), b.successes, num(s.generation_tokens, 0), num(s.preemptions, 0), pc and (", " .. esc(pc)) or "")
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
