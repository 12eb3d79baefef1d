--- The terminal report: a readable summary of each result, the server's
--- view, comparisons, the definitions.
local f = require("aibench.report.format")
local compare = require("aibench.report.compare")
local num, present, workload_line, server_rows, title_of = f.num, f.present, f.workload_line, f.server_rows, f.title_of

local M = {}

--- A readable summary of one result. Its values come from outside (the
--- server, the result file): the text is passed through format.clean, so
--- no control character in them reaches the terminal raw.
---@param r table a bench result
---@param opts? {definitions?: boolean, title?: string} definitions: true prints them, false nothing, nil a one-line pointer
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
  add(f.columns(rows))
  local prompt, output = f.asked_served(r)
  if present(r.prompt_tokens_source) and r.prompt_tokens_source ~= "none" and r.prompt_tokens_source ~= "" then
    add("prompt lengths  " .. r.prompt_tokens_source)
  end
  if prompt then
    add("prompt tokens   " .. prompt)
  end
  if output then
    add("output tokens   " .. output)
  end
  local client = f.client_check(r)
  if client then
    add("client          " .. client)
  end
  for _, l in ipairs({ { "dataset", f.dataset_line(r) }, { "trace", f.trace_line(r) }, { "sessions", f.sessions_line(r) } }) do
    if l[2] then
      add(string.format("%-16s%s", l[1], l[2]))
    end
  end
  add("")
  local turns = f.turn_rows(r)
  if turns then
    add(f.columns(turns))
    add("")
  end
  local urls = f.url_rows(r)
  if urls then
    add("per instance: " .. f.balance_line(r))
    add(f.columns(urls))
    add("")
  end
  local dist = { { "ms", "mean", "p50", "p90", "p95", "p99", "p99.9", "max", "count" } }
  for _, d in ipairs(f.DIST) do
    local s = r[d[1]]
    if present(s) then
      dist[#dist + 1] = { d[2], num(s.mean, 2), num(s.p50, 2), num(s.p90, 2), num(s.p95, 2), num(s.p99, 2), num(s.p999, 2), num(s.max, 2), tostring(s.count) }
    end
  end
  if #dist > 1 then
    add(f.columns(dist))
  end
  for class, msgs in pairs(r.error_samples or {}) do
    for _, m in ipairs(msgs) do
      add(string.format("  %s: %s", class, m))
    end
  end
  if present(r.stopped_early) then
    add("stopped early: " .. r.stopped_early.message)
  end
  for _, w in ipairs(f.warnings(r)) do
    add("warning: " .. w)
  end
  -- The definitions once, when asked (--explain); else one line saying where.
  if opts.definitions == true then
    add("")
    add(f.definitions_text())
  elseif opts.definitions == nil then
    add(f.definitions_pointer)
  end
  return f.clean(table.concat(out, "\n"))
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
  local pc = f.prefix_cache_text(s)
  if pc then
    out[#out] = out[#out] .. ", " .. pc
  end
  local gpu = f.gpu_text(s)
  if gpu then
    out[#out + 1] = gpu
  end
  local rows = server_rows(s, "ms")
  if #rows > 1 then
    out[#out + 1] = f.columns(rows)
    out[#out + 1] = "(server quantiles are interpolated within vLLM's histogram buckets; <=X: inside the first bucket)"
  end
  return f.clean(table.concat(out, "\n"))
end

--- The record's HPC section (SLURM runs), as text ("" without one).
function M.hpc_summary(rec)
  local lines = f.hpc_lines(rec)
  if #lines == 0 then
    return ""
  end
  local out = { "\nHPC" }
  for _, l in ipairs(lines) do
    out[#out + 1] = string.format("  %-20s %s", l[1], l[2])
  end
  for _, w in ipairs(f.hpc_warnings(rec)) do
    out[#out + 1] = "warning: " .. w
  end
  return f.clean(table.concat(out, "\n"))
end

--- The terminal report of several results.
function M.terminal(records, opts)
  opts = opts or {}
  local out = {}
  for i, rec in ipairs(records) do
    f.guard(rec, function()
      out[#out + 1] = string.format("== #%d %s%s", i, title_of(rec), rec.path and ("  " .. rec.path) or "")
      out[#out + 1] = M.summary(rec.bench, { definitions = false })
      if present(rec.server) then
        out[#out + 1] = M.server_summary(rec.server, rec.bench)
      end
      local hpc = M.hpc_summary(rec)
      if hpc ~= "" then
        out[#out + 1] = hpc
      end
      out[#out + 1] = ""
    end)
  end
  if opts.compare and #records > 1 then
    out[#out + 1] = compare.compare_text(records, compare.compare(records, opts))
    out[#out + 1] = ""
  end
  out[#out + 1] = opts.explain and f.definitions_text() or f.definitions_pointer
  return f.clean(table.concat(out, "\n"))
end

return M
