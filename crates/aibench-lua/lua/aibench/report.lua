--- Reports: terminal summaries of benchmark results (and, see below, Markdown,
--- HTML and comparisons).
local M = {}

--- The metric definitions, stated once in every report.
M.definitions = {
  { "TTFT", "request sent -> first streamed chunk with content" },
  { "ITL", "gaps between consecutive content chunks, pooled over requests" },
  { "TPOT", "(E2E - TTFT) / (output tokens - 1), per request" },
  { "E2E latency", "request sent -> last content chunk (whole response for non-streamed requests)" },
  { "queue", "ready to send -> sent (waiting for a connection or a concurrency slot)" },
  { "send lag", "open loop: intended send time -> ready to send (the client's own timing error)" },
  { "from intended", "open loop: intended send time -> end (coordinated-omission corrected)" },
  { "goodput", "requests meeting every SLO / duration" },
  { "output tokens", "the server's usage counts when it reports them, else counted chunks" },
}

local function num(v, digits)
  if v == nil or v ~= v then
    return "-"
  end
  digits = digits or 1
  local a = math.abs(v)
  if a >= 1e6 then
    return string.format("%.2fM", v / 1e6)
  elseif a >= 1e4 then
    return string.format("%.1fk", v / 1e3)
  end
  return string.format("%." .. digits .. "f", v)
end
M.num = num

local function pad(s, w, right)
  s = tostring(s)
  local n = utf8.len(s) or #s
  if n >= w then
    return s
  end
  return right and (string.rep(" ", w - n) .. s) or (s .. string.rep(" ", w - n))
end
M.pad = pad

local function numeric(cell)
  return tostring(cell):match("^[-+]?[%d.]+[%a%%/]*$") ~= nil or cell == "-"
end

--- Renders rows as aligned columns: numeric columns right-aligned, text left.
---@param rows string[][] the first row is the header
---@return string
function M.columns(rows)
  local widths, is_num = {}, {}
  for r, row in ipairs(rows) do
    for i, cell in ipairs(row) do
      widths[i] = math.max(widths[i] or 0, utf8.len(tostring(cell)) or #tostring(cell))
      if r > 1 then
        is_num[i] = (is_num[i] ~= false) and numeric(cell)
      end
    end
  end
  local out = {}
  for _, row in ipairs(rows) do
    local cells = {}
    for i, cell in ipairs(row) do
      cells[i] = pad(cell, widths[i], i > 1 and is_num[i])
    end
    out[#out + 1] = (table.concat(cells, "  "):gsub("%s+$", ""))
  end
  return table.concat(out, "\n")
end

local DIST = {
  { "latency_ms", "E2E latency" },
  { "ttft_ms", "TTFT" },
  { "tpot_ms", "TPOT" },
  { "itl_ms", "ITL" },
  { "queue_ms", "queue" },
  { "send_lag_ms", "send lag" },
  { "latency_from_intended_ms", "from intended" },
}

local function present(v)
  return v ~= nil and v ~= require("aibench.json").null
end

local function workload_line(w)
  if not w then
    return "workload: -"
  end
  if w.pattern == "closed-loop" then
    local parts = { string.format("closed loop: %d users", w.users or 0) }
    parts[#parts + 1] = string.format("think %s ms", num(w.think_time_ms or 0, 0))
    if present(w.duration_s) then
      parts[#parts + 1] = string.format("%s s", num(w.duration_s, 0))
    end
    if present(w.requests_per_user) then
      parts[#parts + 1] = string.format("%d requests/user", w.requests_per_user)
    end
    return table.concat(parts, ", ")
  end
  return string.format("open loop: %s req/s %s arrivals", num(w.rate, 1), w.arrival or "poisson")
end

--- A readable summary of one result.
---@param r table a bench result
---@param opts? {definitions?: boolean, title?: string}
---@return string
function M.summary(r, opts)
  opts = opts or {}
  local out = {}
  local function add(s)
    out[#out + 1] = s
  end
  local t = r.target or {}
  add(opts.title or string.format("%s  %s  model %s", t.api or "?", table.concat(t.urls or {}, ", "), present(t.model) and t.model or "-"))
  add(workload_line(r.workload) .. string.format("; measured %s s", num(r.duration_s, 1))
    .. ((r.warmup_excluded or 0) > 0 and string.format(" (%d warmup requests excluded)", r.warmup_excluded) or "")
    .. (r.interrupted and string.format("  [INTERRUPTED%s: partial results]", present(r.interrupted_by) and (" by " .. r.interrupted_by) or "") or "")
    .. (present(r.stopped_early) and "  [STOPPED EARLY: server unreachable]" or ""))
  add("")
  local errs = {}
  for k, v in pairs(r.errors_by_class or {}) do
    if v > 0 then
      errs[#errs + 1] = k .. " " .. v
    end
  end
  table.sort(errs)
  local rows = {
    { "requests", string.format("%d total", r.total_requests), string.format("%d ok", r.successes), string.format("%d errors", r.errors), #errs > 0 and ("(" .. table.concat(errs, ", ") .. ")") or "" },
    { "throughput", num(r.throughput_req_per_sec, 2) .. " req/s", "", "", "" },
  }
  local has_tokens = r.tokens and (r.tokens.output_total or 0) > 0
  if has_tokens then
    rows[2][3] = num(r.tokens.output_per_s) .. " out tok/s"
    rows[2][4] = num(r.tokens.input_per_s) .. " in tok/s"
    rows[#rows + 1] = { "tokens", num(r.tokens.output_total, 0) .. " out", num(r.tokens.input_total, 0) .. " in", "(" .. (r.tokens.output_source or "?") .. ")", "" }
  end
  if present(r.goodput) then
    rows[#rows + 1] = { "goodput", num(r.goodput.goodput_req_per_sec, 2) .. " req/s", string.format("%.1f%% meet SLO", 100 * r.goodput.attainment), "", "" }
  end
  if present(r.rate) then
    rows[#rows + 1] = { "rate", "asked " .. num(r.rate.requested_req_per_sec, 1) .. " req/s", "sent " .. num(r.rate.achieved_req_per_sec, 1) .. " req/s", "", "" }
  end
  if (r.short_outputs or 0) > 0 then
    rows[#rows + 1] = { "short outputs", string.format("%d successes", r.short_outputs), "got fewer tokens than asked", "(left out of TPOT)", "" }
  end
  if r.backoff and (r.backoff.count or 0) > 0 then
    rows[#rows + 1] = { "backoff", string.format("%d pauses", r.backoff.count), num(r.backoff.total_s, 2) .. " s in all", "(after refused requests)", "" }
  end
  if present(r.littles_law) then
    local l = r.littles_law
    rows[#rows + 1] = { "Little's law", "expected " .. num(l.expected_req_per_sec, 2) .. " req/s", "measured " .. num(l.measured_req_per_sec, 2) .. " req/s", string.format("ratio %.3f", l.ratio), string.format("client gap %.2f ms", l.client_gap_ms or 0) }
  end
  add(M.columns(rows))
  add("")
  local dist = { { "ms", "mean", "p50", "p90", "p95", "p99", "p99.9", "max", "count" } }
  for _, d in ipairs(DIST) do
    local s = r[d[1]]
    if present(s) then
      dist[#dist + 1] = { d[2], num(s.mean, 2), num(s.p50, 2), num(s.p90, 2), num(s.p95, 2), num(s.p99, 2), num(s.p999, 2), num(s.max, 2), tostring(s.count) }
    end
  end
  if #dist > 1 then
    add(M.columns(dist))
  end
  for class, msgs in pairs(r.error_samples or {}) do
    for _, m in ipairs(msgs) do
      add(string.format("  %s: %s", class, m))
    end
  end
  if present(r.stopped_early) then
    add("stopped early: " .. r.stopped_early.message)
  end
  if r.client and (r.client.cpu_util or 0) > 0.85 then
    add(string.format("warning: the client used %.0f%% of %d cores: it may be the bottleneck", 100 * r.client.cpu_util, r.client.cores))
  end
  if opts.definitions ~= false then
    add("")
    add(M.definitions_text())
  end
  return table.concat(out, "\n")
end

local SERVER_DIST = {
  { "ttft_ms", "TTFT" },
  { "queue_ms", "queue" },
  { "prefill_ms", "prefill" },
  { "decode_ms", "decode" },
  { "itl_ms", "ITL" },
  { "e2e_ms", "E2E latency" },
}

--- The server's latency distributions as table rows under `header` (just
--- the header when it measured none).
local function server_rows(s, header)
  local rows = { { header, "mean", "p50", "p90", "p99", "count" } }
  for _, d in ipairs(SERVER_DIST) do
    local h = s[d[1]]
    if present(h) then
      local function q(k)
        if present(h[k]) then
          return num(h[k], 2)
        elseif present(h[k .. "_le"]) then
          return "<=" .. num(h[k .. "_le"], 0)
        end
        return "-"
      end
      rows[#rows + 1] = { d[2], num(h.mean, 2), q("p50"), q("p90"), q("p99"), num(h.count, 0) }
    end
  end
  return rows
end

--- The server's own view of the run (the result's `server` section).
function M.server_summary(s, client)
  if not present(s) then
    return ""
  end
  local out = {}
  local src = s.source == "prometheus" and ("Prometheus " .. (s.prometheus or "")) or "scraping /metrics before and after"
  out[#out + 1] = string.format("\nserver side (%s, %d instance%s): %s requests finished%s, %s generation tokens, %s preemptions",
    src, s.instances or 0, (s.instances or 0) == 1 and "" or "s", num(s.requests, 0),
    client and string.format(" (client: %d ok)", client.successes) or "", num(s.generation_tokens, 0), num(s.preemptions, 0))
  local rows = server_rows(s, "ms")
  if #rows > 1 then
    out[#out + 1] = M.columns(rows)
    out[#out + 1] = "(server quantiles are interpolated within vLLM's histogram buckets; <=X: inside the first bucket)"
  end
  return table.concat(out, "\n")
end

-- Loading ------------------------------------------------------------------------

--- Loads result files (a folder means every *.json in it), in order.
---@return table[]? records
---@return table? err
function M.load(paths)
  local results = require("aibench.results")
  local fs = require("aibench.fs")
  local out = {}
  if #paths == 0 then
    return nil, { kind = "usage", message = "give one or more result files (or a results folder)" }
  end
  for _, p in ipairs(paths) do
    if fs.is_dir(p) then
      local files = results.list(p)
      if #files == 0 then
        return nil, { kind = "empty", message = string.format("%s: no result files (*.json) in this folder; run a benchmark first (aibench client run --recipe ...)", p) }
      end
      for _, f in ipairs(files) do
        local rec, err = results.load(f)
        if not rec then
          return nil, err
        end
        out[#out + 1] = rec
      end
    else
      local rec, err = results.load(p)
      if not rec then
        return nil, err
      end
      out[#out + 1] = rec
    end
  end
  return out
end

local function title_of(rec)
  local r = rec.recipe or {}
  return string.format("%s  (%s)", r.name or "result", rec.created_at or rec.bench.started_at or "?")
end

-- Comparison -------------------------------------------------------------------------

local function get(t, ...)
  for _, k in ipairs({ ... }) do
    if not present(t) then
      return nil
    end
    t = t[k]
  end
  return present(t) and t or nil
end

--- Metrics compared between runs: {label, unit, getter, better, min_abs, tail}.
--- Tail percentiles move more between identical runs: they are flagged at
--- twice the threshold and a larger absolute change, and only when both runs
--- have enough samples for a p99 to mean something (TAIL_MIN_SAMPLES).
M.TAIL_MIN_SAMPLES = 500

M.COMPARED = {
  { "throughput", "req/s", function(b) return b.throughput_req_per_sec end, "higher", 0 },
  { "output tokens", "tok/s", function(b) return get(b, "tokens", "output_per_s") end, "higher", 0 },
  { "goodput", "req/s", function(b) return get(b, "goodput", "goodput_req_per_sec") end, "higher", 0 },
  { "error rate", "%", function(b) return b.total_requests > 0 and 100 * b.errors / b.total_requests or 0 end, "lower", 1 },
  { "E2E mean", "ms", function(b) return get(b, "latency_ms", "mean") end, "lower", 0.5 },
  { "E2E p99", "ms", function(b) return get(b, "latency_ms", "p99") end, "lower", 2, "latency_ms" },
  { "TTFT p50", "ms", function(b) return get(b, "ttft_ms", "p50") end, "lower", 0.5 },
  { "TTFT p99", "ms", function(b) return get(b, "ttft_ms", "p99") end, "lower", 2, "ttft_ms" },
  { "ITL p50", "ms", function(b) return get(b, "itl_ms", "p50") end, "lower", 0.2 },
  { "ITL p99", "ms", function(b) return get(b, "itl_ms", "p99") end, "lower", 1, "itl_ms" },
  { "TPOT p50", "ms", function(b) return get(b, "tpot_ms", "p50") end, "lower", 0.2 },
}

--- Compares runs against the first (the baseline). A metric is flagged when
--- it is worse by more than `threshold` (relative) and `min_abs` (absolute).
---@return {rows: table[], regressions: integer, threshold: number}
function M.compare(records, opts)
  local threshold = (opts and opts.threshold) or 0.10
  local base = records[1].bench
  local rows, regressions = {}, 0
  for _, m in ipairs(M.COMPARED) do
    local b = m[3](base)
    if b then
      local row = { label = m[1], unit = m[2], base = b, others = {} }
      for i = 2, #records do
        local v = m[3](records[i].bench)
        local cell = { value = v }
        if v then
          local delta = v - b
          cell.delta_pct = b ~= 0 and 100 * delta / math.abs(b) or nil
          local worse = (m[4] == "lower") and delta or -delta
          local rel = b ~= 0 and worse / math.abs(b) or (worse > 0 and math.huge or 0)
          local limit = m[6] and 2 * threshold or threshold
          local enough = true
          if m[6] then
            local n = math.min(get(base, m[6], "count") or 0, get(records[i].bench, m[6], "count") or 0)
            enough = n >= M.TAIL_MIN_SAMPLES
            cell.few_samples = not enough
          end
          if not enough then
            cell.flag = nil
          elseif worse > m[5] and rel > limit then
            cell.flag = "REGRESSION"
            regressions = regressions + 1
          elseif -worse > m[5] and -rel > limit then
            cell.flag = "improved"
          end
        end
        row.others[#row.others + 1] = cell
      end
      rows[#rows + 1] = row
    end
  end
  return { rows = rows, regressions = regressions, threshold = threshold }
end

local function delta_text(c)
  if not c.value then
    return "-"
  end
  local d = c.delta_pct and string.format("%+.1f%%", c.delta_pct) or ""
  return d .. (c.flag and ("  " .. c.flag) or "") .. (c.few_samples and "  (few samples)" or "")
end

--- The comparison as table rows (header first), for every output format.
local function compare_rows(records, cmp)
  local head = { "metric", "unit", "#1" }
  for i = 2, #records do
    head[#head + 1] = "#" .. i
    head[#head + 1] = "delta"
  end
  local rows = { head }
  for _, r in ipairs(cmp.rows) do
    local row = { r.label, r.unit, num(r.base, 2) }
    for _, c in ipairs(r.others) do
      row[#row + 1] = num(c.value, 2)
      row[#row + 1] = delta_text(c)
    end
    rows[#rows + 1] = row
  end
  return rows
end

function M.compare_text(records, cmp)
  local rows = compare_rows(records, cmp)
  local out = { "comparison against #1 (flag: worse by more than " .. string.format("%.0f%%", 100 * cmp.threshold) .. ")" }
  for i, rec in ipairs(records) do
    out[#out + 1] = string.format("  #%d %s  %s", i, title_of(rec), rec.path or "")
  end
  out[#out + 1] = ""
  out[#out + 1] = M.columns(rows)
  out[#out + 1] = ""
  out[#out + 1] = cmp.regressions == 0 and "no regression" or string.format("%d regression(s) flagged", cmp.regressions)
  return table.concat(out, "\n")
end

-- Terminal and Markdown ------------------------------------------------------------------

function M.definitions_text()
  local defs = {}
  for _, d in ipairs(M.definitions) do
    defs[#defs + 1] = "  " .. d[1] .. ": " .. d[2]
  end
  return "definitions (vLLM's benchmark):\n" .. table.concat(defs, "\n")
end

--- The terminal report of several results.
function M.terminal(records, opts)
  opts = opts or {}
  local out = {}
  for i, rec in ipairs(records) do
    out[#out + 1] = string.format("== #%d %s%s", i, title_of(rec), rec.path and ("  " .. rec.path) or "")
    out[#out + 1] = M.summary(rec.bench, { definitions = false })
    if present(rec.server) then
      out[#out + 1] = M.server_summary(rec.server, rec.bench)
    end
    out[#out + 1] = ""
  end
  if opts.compare and #records > 1 then
    out[#out + 1] = M.compare_text(records, M.compare(records, opts))
    out[#out + 1] = ""
  end
  out[#out + 1] = M.definitions_text()
  return table.concat(out, "\n")
end

local function md_table(rows)
  local out = { "| " .. table.concat(rows[1], " | ") .. " |", "|" .. string.rep(" --- |", #rows[1]) }
  for i = 2, #rows do
    local cells = {}
    for j, c in ipairs(rows[i]) do
      cells[j] = tostring(c):gsub("|", "\\|")
    end
    out[#out + 1] = "| " .. table.concat(cells, " | ") .. " |"
  end
  return table.concat(out, "\n")
end

local function dist_rows(b)
  local rows = { { "metric (ms)", "mean", "p50", "p90", "p99", "p99.9", "max", "count" } }
  for _, d in ipairs(DIST) do
    local s = b[d[1]]
    if present(s) then
      rows[#rows + 1] = { d[2], num(s.mean, 2), num(s.p50, 2), num(s.p90, 2), num(s.p99, 2), num(s.p999, 2), num(s.max, 2), tostring(s.count) }
    end
  end
  return rows
end

local function headline_rows(b)
  local rows = {
    { "metric", "value" },
    { "total requests", tostring(b.total_requests) },
    { "successes", tostring(b.successes) },
    { "errors", tostring(b.errors) },
    { "throughput", num(b.throughput_req_per_sec, 2) .. " req/s" },
    { "avg latency", num(b.avg_latency_ms, 2) .. " ms" },
    { "min latency", num(b.min_latency_ms, 2) .. " ms" },
    { "max latency", num(b.max_latency_ms, 2) .. " ms" },
  }
  if b.tokens and (b.tokens.output_total or 0) > 0 then
    rows[#rows + 1] = { "output tokens", num(b.tokens.output_total, 0) .. " (" .. num(b.tokens.output_per_s, 1) .. " tok/s, " .. b.tokens.output_source .. ")" }
    rows[#rows + 1] = { "input tokens", num(b.tokens.input_total, 0) .. " (" .. num(b.tokens.input_per_s, 1) .. " tok/s)" }
  end
  if present(b.goodput) then
    rows[#rows + 1] = { "goodput", num(b.goodput.goodput_req_per_sec, 2) .. " req/s (" .. string.format("%.1f%%", 100 * b.goodput.attainment) .. " meet SLO)" }
  end
  if present(b.littles_law) then
    rows[#rows + 1] = { "Little's law", string.format("expected %s req/s, measured %s req/s (ratio %.3f)", num(b.littles_law.expected_req_per_sec, 2), num(b.littles_law.measured_req_per_sec, 2), b.littles_law.ratio) }
  end
  if present(b.rate) then
    rows[#rows + 1] = { "open-loop rate", string.format("asked %s req/s, sent %s req/s", num(b.rate.requested_req_per_sec, 1), num(b.rate.achieved_req_per_sec, 1)) }
  end
  if (b.short_outputs or 0) > 0 then
    rows[#rows + 1] = { "short outputs", string.format("%d successes got fewer output tokens than asked (not in TPOT)", b.short_outputs) }
  end
  if b.backoff and (b.backoff.count or 0) > 0 then
    rows[#rows + 1] = { "backoff", string.format("%d pauses after refused requests, %s s", b.backoff.count, num(b.backoff.total_s, 2)) }
  end
  if b.interrupted then
    rows[#rows + 1] = { "interrupted", present(b.interrupted_by) and b.interrupted_by or "yes" }
  end
  if present(b.stopped_early) then
    rows[#rows + 1] = { "stopped early", b.stopped_early.message }
  end
  rows[#rows + 1] = { "duration", num(b.duration_s, 1) .. " s" }
  return rows
end

--- The Markdown report.
function M.markdown(records, opts)
  opts = opts or {}
  local out = { "# aibench report", "" }
  for i, rec in ipairs(records) do
    local b = rec.bench
    out[#out + 1] = string.format("## #%d %s", i, title_of(rec))
    out[#out + 1] = ""
    out[#out + 1] = string.format("Target: %s (%s, model %s); %s", table.concat(b.target.urls or {}, ", "), b.target.api, present(b.target.model) and b.target.model or "-", workload_line(b.workload))
    out[#out + 1] = ""
    out[#out + 1] = md_table(headline_rows(b))
    out[#out + 1] = ""
    out[#out + 1] = md_table(dist_rows(b))
    out[#out + 1] = ""
    local s = rec.server
    if present(s) then
      out[#out + 1] = string.format("Server side: %s requests finished, %s generation tokens, %s preemptions.", num(s.requests, 0), num(s.generation_tokens, 0), num(s.preemptions, 0))
      out[#out + 1] = ""
    end
  end
  if opts.compare and #records > 1 then
    local cmp = M.compare(records, opts)
    out[#out + 1] = "## Comparison against #1"
    out[#out + 1] = ""
    out[#out + 1] = md_table(compare_rows(records, cmp))
    out[#out + 1] = ""
    out[#out + 1] = cmp.regressions == 0 and "No regression." or string.format("**%d regression(s) flagged** (worse by more than %.0f%%).", cmp.regressions, 100 * cmp.threshold)
    out[#out + 1] = ""
  end
  out[#out + 1] = "## Definitions"
  out[#out + 1] = ""
  for _, d in ipairs(M.definitions) do
    out[#out + 1] = "- **" .. d[1] .. "**: " .. d[2]
  end
  return table.concat(out, "\n") .. "\n"
end

-- HTML ------------------------------------------------------------------------------------

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
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
]]

local function figure(svg, caption)
  return "<figure>" .. svg .. "<figcaption>" .. esc(caption) .. "</figcaption></figure>"
end

local PCT = { 0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100 }

local function percentile_series(b, metric, name)
  local bench = require("aibench.bench")
  local plot = require("aibench.plot")
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
  local ts = b.timeseries or {}
  local completed, errors, tokens, inflight = {}, {}, {}, {}
  for i, t in ipairs(ts.t_s or {}) do
    completed[i] = { t, ts.completed[i] }
    errors[i] = { t, ts.errors[i] }
    tokens[i] = { t, ts.output_tokens[i] }
    inflight[i] = { t, ts.in_flight[i] }
  end
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
        s1[#s1 + 1] = { name = k:gsub("_", " "), points = sts[k].points }
      end
    end
    figs[#figs + 1] = figure(plot.lines({ id = "chart-server-queue-" .. idx, title = "Server: running and waiting requests", x_label = "seconds", y_label = "requests", series = s1 }), "from the monitor's Prometheus, same timeline")
    local s2 = {}
    for _, k in ipairs({ "ttft_p50_s", "ttft_p99_s", "queue_time_p50_s" }) do
      if sts[k] then
        local pts = {}
        for i, p in ipairs(sts[k].points) do
          pts[i] = { p[1], p[2] * 1000 }
        end
        s2[#s2 + 1] = { name = "server " .. k:gsub("_s$", ""):gsub("_", " ") .. " ms", points = pts }
      end
    end
    if #s2 > 0 then
      figs[#figs + 1] = figure(plot.lines({ id = "chart-server-latency-" .. idx, title = "Server: TTFT and queue time", x_label = "seconds", y_label = "ms", series = s2 }), "server-side quantiles over the run (rate over a short window)")
    end
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
    local b = rec.bench
    out[#out + 1] = string.format('<section class="run" id="run-%d"><h2>#%d %s</h2>', i, i, esc(title_of(rec)))
    local env = rec.environment or {}
    out[#out + 1] = html_table({
      { "field", "value" },
      { "target", table.concat(b.target.urls or {}, ", ") .. " (" .. b.target.api .. ")" },
      { "model", present(b.target.model) and b.target.model or "-" },
      { "workload", workload_line(b.workload) },
      { "executor", tostring(env.executor or "-") .. ((env.slurm_job_ids and #env.slurm_job_ids > 0) and (" (SLURM jobs " .. table.concat(env.slurm_job_ids, ", ") .. ")") or "") },
      { "host", tostring(env.host or b.client and b.client.host or "-") },
      { "result file", tostring(rec.path or "-") },
    }, "meta")
    out[#out + 1] = html_table(headline_rows(b), "summary")
    out[#out + 1] = html_table(dist_rows(b), "dist")
    local s = rec.server
    if present(s) then
      local rows = server_rows(s, "server-side (ms)")
      out[#out + 1] = string.format("<p>Server side: %s requests finished (client: %d ok), %s generation tokens, %s preemptions.</p>", num(s.requests, 0), b.successes, num(s.generation_tokens, 0), num(s.preemptions, 0))
      if #rows > 1 then
        out[#out + 1] = html_table(rows, "server")
      end
    end
    out[#out + 1] = charts_for(b, rec.server, i)
    out[#out + 1] = "</section>"
  end
  if opts.compare and #records > 1 then
    local plot = require("aibench.plot")
    local cmp = M.compare(records, opts)
    out[#out + 1] = '<section id="compare"><h2>Comparison against #1</h2>'
    out[#out + 1] = html_table(compare_rows(records, cmp), "compare")
    out[#out + 1] = string.format("<p>%s</p>", cmp.regressions == 0 and "No regression." or string.format('<span class="bad">%d regression(s) flagged</span> (worse by more than %.0f%%).', cmp.regressions, 100 * cmp.threshold))
    local figs = {}
    for _, m in ipairs({ { "ttft", "TTFT" }, { "itl", "ITL" }, { "latency", "E2E latency" } }) do
      local series = {}
      for i, rec in ipairs(records) do
        local sr = percentile_series(rec.bench, m[1], "#" .. i)
        if sr then
          series[#series + 1] = sr
        end
      end
      figs[#figs + 1] = figure(plot.lines({ id = "chart-compare-" .. m[1], title = m[2] .. " by percentile", x_label = "percentile", y_label = "ms", x_scale = "nines", series = series, width = 480 }), m[2] .. ": all runs")
    end
    out[#out + 1] = '<div class="charts">' .. table.concat(figs) .. "</div></section>"
  end
  out[#out + 1] = '<section id="definitions"><h2>Definitions</h2><dl>'
  for _, d in ipairs(M.definitions) do
    out[#out + 1] = "<dt>" .. esc(d[1]) .. "</dt><dd>" .. esc(d[2]) .. "</dd>"
  end
  out[#out + 1] = "</dl></section></body></html>\n"
  return table.concat(out, "\n")
end

return M
