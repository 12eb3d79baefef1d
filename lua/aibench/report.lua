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

local function workload_line(w)
  if not w then
    return "workload: -"
  end
  if w.pattern == "closed-loop" then
    local parts = { string.format("closed loop: %d users", w.users or 0) }
    parts[#parts + 1] = string.format("think %s ms", num(w.think_time_ms or 0, 0))
    if w.duration_s and w.duration_s ~= require("aibench.json").null then
      parts[#parts + 1] = string.format("%s s", num(w.duration_s, 0))
    end
    if w.requests_per_user and w.requests_per_user ~= require("aibench.json").null then
      parts[#parts + 1] = string.format("%d requests/user", w.requests_per_user)
    end
    return table.concat(parts, ", ")
  end
  return string.format("open loop: %s req/s %s arrivals", num(w.rate, 1), w.arrival or "poisson")
end

local function present(v)
  return v ~= nil and v ~= require("aibench.json").null
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
    .. (r.interrupted and "  [INTERRUPTED: partial results]" or ""))
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
  end
  if has_tokens then
    rows[#rows + 1] = { "tokens", num(r.tokens.output_total, 0) .. " out", num(r.tokens.input_total, 0) .. " in", "(" .. (r.tokens.output_source or "?") .. ")", "" }
  end
  if present(r.goodput) then
    rows[#rows + 1] = { "goodput", num(r.goodput.goodput_req_per_sec, 2) .. " req/s", string.format("%.1f%% meet SLO", 100 * r.goodput.attainment), "", "" }
  end
  if present(r.rate) then
    rows[#rows + 1] = { "rate", "asked " .. num(r.rate.requested_req_per_sec, 1) .. " req/s", "sent " .. num(r.rate.achieved_req_per_sec, 1) .. " req/s", "", "" }
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
  if r.client and (r.client.cpu_util or 0) > 0.85 then
    add(string.format("warning: the client used %.0f%% of %d cores: it may be the bottleneck", 100 * r.client.cpu_util, r.client.cores))
  end
  if opts.definitions ~= false then
    add("")
    local defs = {}
    for _, d in ipairs(M.definitions) do
      defs[#defs + 1] = "  " .. d[1] .. ": " .. d[2]
    end
    add("definitions (vLLM's benchmark):\n" .. table.concat(defs, "\n"))
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
  local rows = { { "ms", "mean", "p50", "p90", "p99", "count" } }
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
  if #rows > 1 then
    out[#out + 1] = M.columns(rows)
    out[#out + 1] = "(server quantiles are interpolated within vLLM's histogram buckets; <=X: inside the first bucket)"
  end
  return table.concat(out, "\n")
end

return M
