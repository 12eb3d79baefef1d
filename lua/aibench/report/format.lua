--- What every report format shares: the metric definitions, number and
--- column formatting, and the rows of a result's headline and distributions.
local util = require("aibench.util")

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
  { "connect", "opening a new connection, for a request that found none free" },
  { "asked / served", "prompt and output tokens each request asked against the server's usage for it" },
}

--- Shows a value from outside (a server's model id, a result file's field)
--- safely: control characters (C0 but newline and tab, DEL, and the C1
--- controls U+0080-U+009F) become visible escapes (`\x1b`, `\u{9b}`), so a
--- value can never retitle, clear or otherwise drive the reader's terminal.
--- Bytes that are not part of valid UTF-8 are escaped too (a lone 0x9b is
--- CSI to an 8-bit terminal). Every report's text goes through this before
--- it is printed or written; it is idempotent.
---@param s any
---@return string
function M.clean(s)
  s = tostring(s)
  if not s:find("[\0-\8\11-\31\127-\255]") then
    return s
  end
  local function hex(c)
    return string.format("\\x%02x", c:byte())
  end
  local function valid(t)
    t = t:gsub("[\0-\8\11-\31\127]", hex)
    return (t:gsub("\xC2([\x80-\x9F])", function(c)
      return string.format("\\u{%x}", c:byte())
    end))
  end
  if utf8.len(s) then
    return valid(s)
  end
  -- Not valid UTF-8: keep the valid sequences, escape every other byte.
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:byte(i)
    local len = c < 0x80 and 1 or (c >= 0xC2 and c <= 0xDF) and 2 or (c >= 0xE0 and c <= 0xEF) and 3 or (c >= 0xF0 and c <= 0xF4) and 4 or 0
    local seq = len > 0 and s:sub(i, i + len - 1) or nil
    if seq and #seq == len and utf8.len(seq) == 1 then
      out[#out + 1] = valid(seq)
      i = i + len
    else
      out[#out + 1] = hex(s:sub(i, i))
      i = i + 1
    end
  end
  return table.concat(out)
end

--- Runs `fn(...)` to render one record; an error names the record's file
--- (a hand-edited result that slipped past the loader's checks), never a
--- bare Lua error from inside a report.
---@param rec table a result record
function M.guard(rec, fn, ...)
  local ok, res = pcall(fn, ...)
  if ok then
    return res
  end
  local msg = type(res) == "table" and res.message and tostring(res.message) or require("aibench").error_message(res)
  msg = msg:gsub("^[^\n]-%.lua:%d+: ", "")
  local where = rec and rec.path or ("result " .. tostring(rec and rec.id or "?"))
  error(string.format("%s: cannot report this result (a field of the wrong type?): %s", M.clean(where), M.clean(msg)), 0)
end

local function num(v, digits)
  if type(v) ~= "number" or v ~= v then
    return v == nil and "-" or (type(v) == "string" and v or "-")
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

M.DIST = {
  { "latency_ms", "E2E latency" },
  { "ttft_ms", "TTFT" },
  { "tpot_ms", "TPOT" },
  { "itl_ms", "ITL" },
  { "queue_ms", "queue" },
  { "send_lag_ms", "send lag" },
  { "latency_from_intended_ms", "from intended" },
  { "connect_ms", "connect" },
}

--- What a reader must know before trusting a result: its own warnings
--- (results before they existed: the client's CPU alone).
---@param b table a bench result
---@return string[]
function M.warnings(b)
  if M.present(b.warnings) then
    return b.warnings
  end
  if b.client and (b.client.cpu_util or 0) > 0.85 then
    return { string.format("the client used %.0f%% of %d cores: it may be the bottleneck", 100 * b.client.cpu_util, b.client.cores or 0) }
  end
  return {}
end

--- Prompt and output tokens asked against served, as text (nil without usage).
---@param b table a bench result
---@return string?, string?
function M.asked_served(b)
  local a = M.present(b.asked_vs_served) and b.asked_vs_served or nil
  if not a then
    return nil
  end
  local function dev(d)
    local worst = (d.worst_abs or 0) == 0 and "every request exact"
      or string.format("worst request %d off (asked %d, %.1f%%)", d.worst_abs, d.worst_asked or 0, d.worst_pct or 0)
    return string.format("mean asked %s, served %s (%+.1f%%), %s", num(d.asked_mean, 1), num(d.served_mean, 1), d.mean_deviation_pct or 0, worst)
  end
  local prompt = dev(a.prompt)
  local l = M.present(a.served_prompt_tokens) and a.served_prompt_tokens or nil
  if l then
    prompt = prompt .. string.format("; served min %s p50 %s p90 %s p99 %s max %s", num(l.min, 0), num(l.p50, 0), num(l.p90, 0), num(l.p99, 0), num(l.max, 0))
  end
  local output = (a.output and (a.output.requests or 0) > 0) and dev(a.output) or nil
  return prompt, output
end

--- The client's own measurements and verdict, as text (nil for old results).
function M.client_check(b)
  local v = M.present(b.validity) and b.validity or nil
  if not v then
    return nil
  end
  local parts = { string.format("cpu %.0f%% of %d core%s", 100 * (v.cpu_util or 0), v.cores or 0, v.cores == 1 and "" or "s") }
  if M.present(v.loop_delay_p99_ms) then
    parts[#parts + 1] = "loop delay p99 " .. num(v.loop_delay_p99_ms, 1) .. " ms"
  end
  if M.present(v.send_lag_p99_ms) then
    parts[#parts + 1] = "send lag p99 " .. num(v.send_lag_p99_ms, 2) .. " ms"
  end
  if M.present(v.connect_p99_ms) then
    parts[#parts + 1] = "connect p99 " .. num(v.connect_p99_ms, 1) .. " ms"
  end
  local verdict = M.verdict(v)
  if verdict == "limited" then
    return table.concat(parts, ", ") .. " -> CLIENT-LIMITED"
  elseif verdict == "borderline" then
    return table.concat(parts, ", ") .. " -> borderline: " .. table.concat(v.borderline, "; ")
  end
  return table.concat(parts, ", ") .. " -> not limiting"
end

--- The client check's verdict: "limited" (clearly: a figure past its
--- limit by more than the noise margin), "borderline" (over a limit within
--- the margin: `validity.borderline` has each figure against its limit) or
--- "ok". Results from before borderline verdicts read as they were.
---@param v table a result's `validity`
---@return "limited"|"borderline"|"ok"
function M.verdict(v)
  if not M.present(v) then
    return "ok"
  end
  if v.client_limited then
    return "limited"
  end
  if v.client_limited_borderline and M.present(v.borderline) and #v.borderline > 0 then
    return "borderline"
  end
  return "ok"
end

-- Colour -------------------------------------------------------------------------

local SGR = { red = "1;31", yellow = "33", green = "32" }

local warned_color = false

--- Whether text written to `stream` ("stdout" or "stderr") gets colour.
--- The one place that decides: `AIBENCH_COLOR=always|never` when set (a
--- command line's own choice wins over the environment's), else none with
--- `NO_COLOR` set to anything non-empty (no-color.org) or `TERM=dumb`,
--- else only when the stream is a terminal.
---@param stream "stdout"|"stderr"
---@return boolean
function M.color_on(stream)
  local env = require("aibench.env")
  local choice = env.get("AIBENCH_COLOR", "")
  if choice == "always" then
    return true
  elseif choice == "never" then
    return false
  elseif choice ~= "" and choice ~= "auto" and not warned_color then
    warned_color = true
    io.stderr:write(string.format("aibench: warning: AIBENCH_COLOR: expected auto, always or never, got '%s'; using auto\n", M.clean(choice)))
  end
  if env.get("NO_COLOR", "") ~= "" or env.get("TERM", "") == "dumb" then
    return false
  end
  return env.is_terminal(stream)
end

--- `text` in a colour ("red", "yellow", "green").
function M.colored(text, color)
  return "\27[" .. SGR[color] .. "m" .. text .. "\27[0m"
end

--- The colour of one line of a report, by what it says: a clear
--- CLIENT-LIMITED verdict or warning red, a borderline verdict and other
--- warnings yellow, a client that did not limit green. Returns the line.
local function paint_line(line)
  local head, verdict = line:match("^(.- %-> )(.*)$")
  if head and verdict == "CLIENT-LIMITED" then
    return head .. M.colored(verdict, "red")
  elseif head and verdict:sub(1, 11) == "borderline:" then
    return head .. M.colored(verdict, "yellow")
  elseif head and verdict == "not limiting" then
    return head .. M.colored(verdict, "green")
  end
  local warning = line:match("^warning: ") or line:match("^aibench[%w %-]*: warning: ")
  if warning then
    return M.colored(line, line:find("bottleneck", 1, true) and "red" or "yellow")
  end
  line = line:gsub("%[INTERRUPTED[^%]]*%]", function(tag)
    return M.colored(tag, "yellow")
  end)
  return (line:gsub("%[STOPPED EARLY[^%]]*%]", function(tag)
    return M.colored(tag, "yellow")
  end))
end

--- A report's text as written to `stream`: verdicts and warnings in colour
--- when M.color_on(stream), else unchanged. The text has been through
--- M.clean (no control character of its own); the colours are added after.
---@param text string
---@param stream "stdout"|"stderr"
---@return string
function M.paint(text, stream)
  if not M.color_on(stream) then
    return text
  end
  local out = {}
  for line in (text .. "\n"):gmatch("(.-)\n") do
    out[#out + 1] = paint_line(line)
  end
  return table.concat(out, "\n")
end

M.present = util.present

function M.workload_line(w)
  if not w then
    return "workload: -"
  end
  if w.pattern == "closed-loop" then
    local parts = { string.format("closed loop: %d users", w.users or 0) }
    parts[#parts + 1] = string.format("think %s ms", num(w.think_time_ms or 0, 0))
    if M.present(w.duration_s) then
      parts[#parts + 1] = string.format("%s s", num(w.duration_s, 0))
    end
    if M.present(w.requests_per_user) then
      parts[#parts + 1] = string.format("%d requests/user", w.requests_per_user)
    end
    return table.concat(parts, ", ")
  end
  if w.pattern == "trace" then
    return string.format("trace replay at time scale %s%s", num(w.time_scale or 1, 2),
      M.present(w.max_concurrency) and string.format(", at most %d at once", w.max_concurrency) or "")
  end
  if w.pattern == "sessions" then
    local who = M.present(w.users) and string.format("%d users", w.users) or string.format("%s sessions/s", num(w.session_rate, 2))
    local turns = w.turns == "dataset" and "the dataset's turns" or string.format("%s turns", tostring(w.turns))
    return string.format("sessions: %s, %s, think %s ms, history %s", who, turns, num(w.think_time_ms or 0, 0), w.history or "generated")
  end
  return string.format("open loop: %s req/s %s arrivals", num(w.rate, 1), w.arrival or "poisson")
end

--- What reading the dataset file found, as one line (nil for none).
function M.dataset_line(b)
  local d = b.dataset_stats
  if not M.present(d) then
    return nil
  end
  local skipped = {}
  for k, v in pairs(d.skipped or {}) do
    skipped[#skipped + 1] = string.format("%d %s", v, k:gsub("_", " "))
  end
  table.sort(skipped)
  return string.format("%s: %d records read, %d used%s", d.path or "dataset", d.read or 0, d.used or 0,
    #skipped > 0 and (", skipped " .. table.concat(skipped, ", ")) or "")
end

--- Sessions: one line, and per-turn rows (turn, requests, errors, TTFT
--- mean/p50/p99, E2E p50, prompt tokens).
function M.sessions_line(b)
  local s = b.sessions
  if not M.present(s) then
    return nil
  end
  local d = M.present(s.duration_ms) and string.format(", duration p50 %s s", num(s.duration_ms.p50 / 1000, 2)) or ""
  return string.format("%d started, %d completed, %d failed, %d cut short by the end of the run%s", s.started, s.completed, s.failed, s.cut, d)
end

function M.turn_rows(b)
  local s = b.sessions
  if not M.present(s) or #(s.per_turn or {}) == 0 then
    return nil
  end
  local rows = { { "turn", "requests", "errors", "TTFT mean", "TTFT p50", "TTFT p99", "E2E p50", "prompt tokens" } }
  for _, t in ipairs(s.per_turn) do
    local tt, e = t.ttft_ms, t.e2e_ms
    rows[#rows + 1] = { tostring(t.turn), tostring(t.requests), tostring(t.errors),
      M.present(tt) and num(tt.mean, 2) or "-", M.present(tt) and num(tt.p50, 2) or "-", M.present(tt) and num(tt.p99, 2) or "-",
      M.present(e) and num(e.p50, 2) or "-", num(t.mean_prompt_tokens, 0) }
  end
  return rows
end

--- How requests were spread over several URLs, in words (nil with one URL).
function M.balance_line(b)
  local per = b.per_url
  if not M.present(per) or #per < 2 then
    return nil
  end
  local how = ({ round_robin = "round robin", least_outstanding = "least outstanding requests" })[b.balance] or tostring(b.balance or "round_robin")
  local sessions = M.get(b, "workload", "pattern") == "sessions" and " (each session on one instance)" or ""
  return string.format("%d instances, %s%s", #per, how, sessions)
end

--- Each URL's share (url, requests, ok, errors, TTFT p50/p99, E2E p50/p99),
--- only where there are several URLs.
function M.url_rows(b)
  local per = b.per_url
  if not M.present(per) or #per < 2 then
    return nil
  end
  local rows = { { "instance", "requests", "ok", "errors", "TTFT p50", "TTFT p99", "E2E p50", "E2E p99", "error classes" } }
  for _, u in ipairs(per) do
    local tt, e = u.ttft_ms, u.latency_ms
    local pick = function(s, k)
      return M.present(s) and num(s[k], 2) or "-"
    end
    local classes = {}
    for _, k in ipairs(util.sorted_keys(M.present(u.errors_by_class) and u.errors_by_class or {})) do
      classes[#classes + 1] = k .. " " .. tostring(u.errors_by_class[k])
    end
    rows[#rows + 1] = { tostring(u.url), tostring(u.requests), tostring(u.ok), tostring(u.errors),
      pick(tt, "p50"), pick(tt, "p99"), pick(e, "p50"), pick(e, "p99"), table.concat(classes, ", ") }
  end
  return rows
end

--- A trace replay's schedule fidelity, as one line.
function M.trace_line(b)
  local t = b.trace
  if not M.present(t) then
    return nil
  end
  local gap = function(g)
    return M.present(g) and string.format("mean %s / p99 %s ms", num(g.mean, 2), num(g.p99, 2)) or "-"
  end
  return string.format("%d of %d offered requests sent; gaps in the trace %s, as sent %s; worst send offset %s ms",
    t.sent, t.offered, gap(t.trace_gap_ms), gap(t.achieved_gap_ms), num(t.worst_send_offset_ms, 2))
end

--- A deployment's timeline (aibench.hpc.timeline) as one line.
function M.timeline_text(tl)
  local parts = {}
  for _, p in ipairs(tl.parts or {}) do
    parts[#parts + 1] = string.format("%s %s s", p.name:gsub("_", " "), num(p.seconds, 1))
  end
  return string.format("first serve %s s after %s: %s", num(tl.total_s, 1), tl.from or "submit", table.concat(parts, ", "))
end

--- The HPC section of a record as {label, text} lines (empty without one):
--- time to first serve, accounting, efficiency and cost, node sharing.
function M.hpc_lines(rec)
  local h = rec and rec.hpc
  if not M.present(h) then
    return {}
  end
  local out = {}
  local tl = M.present(h.timeline) and h.timeline or nil
  if tl and M.present(tl.total_s) then
    out[#out + 1] = { "time to first serve", M.timeline_text(tl) }
  end
  for _, ct in ipairs(M.present(h.client_timelines) and h.client_timelines or {}) do
    out[#out + 1] = { "client job " .. ct.job_id, M.timeline_text(ct):gsub("^first serve", "done") }
  end
  local a = M.present(h.accounting) and h.accounting or nil
  local running = {}
  for _, j in ipairs(a and M.present(a.jobs) and a.jobs or {}) do
    if type(j) == "table" and type(j.state) == "string" and not require("aibench.deploy.executors").is_final(j.state) then
      running[#running + 1] = j.job_id
    end
  end
  if a and #running > 0 then
    -- sacct's usage of a job still running is not its usage: no figures.
    out[#out + 1] = { "accounting", string.format("running: not final (job%s %s still %s when the result was saved)",
      #running == 1 and "" or "s", table.concat(running, ", "), #running == 1 and "runs" or "run") }
  elseif a then
    out[#out + 1] = { "accounting", string.format("%d SLURM job%s: %s node-hours, %s GPU-hours, %s CPU-hours allocated (%s used), peak memory %s MiB%s",
      #a.jobs, #a.jobs == 1 and "" or "s", num(a.node_hours, 4), num(a.gpu_hours, 4), num(a.cpu_hours, 4), num(a.cpu_used_hours, 4), num(a.peak_rss_mb, 0),
      M.present(a.energy_j) and string.format(", energy %s kJ", num(a.energy_j / 1000, 2)) or "") }
  elseif M.present(h.accounting_error) then
    out[#out + 1] = { "accounting", "not available: " .. h.accounting_error }
  end
  local e = M.present(h.efficiency) and h.efficiency or nil
  if e then
    local per = e.per == "gpu" and "GPU-hour" or "node-hour"
    local parts = { string.format("%s output tokens and %s requests per %s (%s %ss over the window)", num(e.output_tokens_per_hour, 0), num(e.requests_per_hour, 0), per, num(e.hours, 4), per) }
    if M.present(e.joules_per_output_token) then
      parts[#parts + 1] = string.format("%s J per output token (%s)", num(e.joules_per_output_token, 3), e.energy_source or "?")
    end
    if M.present(e.cost_per_million_output_tokens) then
      parts[#parts + 1] = string.format("%s %s per million output tokens", num(e.cost_per_million_output_tokens, 4), e.cost_unit or "")
    end
    out[#out + 1] = { "efficiency", table.concat(parts, "; ") }
  end
  if h.shared_node then
    out[#out + 1] = { "shared node", string.format("%d other job(s) on the server node(s) during the run", h.other_jobs or 0) }
  end
  return out
end

--- Warnings from the HPC section (a shared node).
function M.hpc_warnings(rec)
  local h = rec and rec.hpc
  if not M.present(h) or not h.shared_node then
    return {}
  end
  local nodes = {}
  for _, when in ipairs({ "start", "end" }) do
    for _, n in ipairs((h.node_sharing and h.node_sharing[when] and h.node_sharing[when].nodes) or {}) do
      if #n.other_jobs > 0 then
        nodes[n.node] = true
      end
    end
  end
  local names = util.sorted_keys(nodes)
  return { string.format("shared node: %d other job(s) ran on %s during the run; their load may have interfered with these numbers", h.other_jobs or 0, table.concat(names, ", ")) }
end

--- The server nodes' GPUs and the service's own process group, as text
--- (nil without them).
function M.gpu_text(s)
  if not M.present(s) then
    return nil
  end
  local parts = {}
  local g = s.gpu
  if M.present(g) then
    parts[#parts + 1] = string.format("GPUs %d: utilization %s%%, memory bandwidth %s%%, memory used %s MiB, power %s W at the end%s",
      g.gpus, num(g.util_pct, 0), num(g.mem_copy_util_pct, 0), num(g.fb_used_mib, 0), num(g.power_w, 0),
      M.present(g.energy_j) and string.format("; %s kJ over the window (mean %s W)", num(g.energy_j / 1000, 2), num(g.mean_power_w, 0)) or "")
  end
  local p = s.service_process
  if M.present(p) then
    parts[#parts + 1] = string.format("service processes: %s CPU-s (%s cores), %s MiB resident", num(p.cpu_s, 1), num(p.cpu_cores, 2), num(p.resident_memory_bytes / 1048576, 0))
  end
  return #parts > 0 and table.concat(parts, "; ") or nil
end

--- The server's prefix-cache hit rate over the run, as text (nil without one).
function M.prefix_cache_text(s)
  if not M.present(s) or not M.present(s.prefix_cache_hit_rate) then
    return nil
  end
  return string.format("prefix cache hit %.1f%% (%s of %s prompt tokens)", 100 * s.prefix_cache_hit_rate, num(s.prefix_cache_hits, 0), num(s.prefix_cache_queries, 0))
end

M.SERVER_DIST = {
  { "ttft_ms", "TTFT" },
  { "queue_ms", "queue" },
  { "prefill_ms", "prefill" },
  { "decode_ms", "decode" },
  { "itl_ms", "ITL" },
  { "e2e_ms", "E2E latency" },
}

--- The server's latency distributions as table rows under `header` (just
--- the header when it measured none).
function M.server_rows(s, header)
  local rows = { { header, "mean", "p50", "p90", "p99", "count" } }
  for _, d in ipairs(M.SERVER_DIST) do
    local h = s[d[1]]
    if M.present(h) then
      local function q(k)
        if M.present(h[k]) then
          return num(h[k], 2)
        elseif M.present(h[k .. "_le"]) then
          return "<=" .. num(h[k .. "_le"], 0)
        end
        return "-"
      end
      rows[#rows + 1] = { d[2], num(h.mean, 2), q("p50"), q("p90"), q("p99"), num(h.count, 0) }
    end
  end
  return rows
end

function M.title_of(rec)
  local r = rec.recipe or {}
  return string.format("%s  (%s)", r.name or "result", rec.created_at or rec.bench.started_at or "?")
end

function M.get(t, ...)
  for _, k in ipairs({ ... }) do
    if not M.present(t) then
      return nil
    end
    t = t[k]
  end
  return M.present(t) and t or nil
end

function M.dist_rows(b)
  local rows = { { "metric (ms)", "mean", "p50", "p90", "p99", "p99.9", "max", "count" } }
  for _, d in ipairs(M.DIST) do
    local s = b[d[1]]
    if M.present(s) then
      rows[#rows + 1] = { d[2], num(s.mean, 2), num(s.p50, 2), num(s.p90, 2), num(s.p99, 2), num(s.p999, 2), num(s.max, 2), tostring(s.count) }
    end
  end
  return rows
end

function M.headline_rows(b)
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
    rows[#rows + 1] = { "output tokens", num(b.tokens.output_total, 0) .. " (" .. num(b.tokens.output_per_s, 1) .. " tok/s, " .. tostring(b.tokens.output_source or "?") .. ")" }
    rows[#rows + 1] = { "input tokens", num(b.tokens.input_total, 0) .. " (" .. num(b.tokens.input_per_s, 1) .. " tok/s)" }
  end
  if M.present(b.prompt_tokens_source) and b.prompt_tokens_source ~= "none" and b.prompt_tokens_source ~= "" then
    rows[#rows + 1] = { "prompt lengths", b.prompt_tokens_source }
  end
  local prompt, output = M.asked_served(b)
  if prompt then
    rows[#rows + 1] = { "prompt tokens", prompt }
  end
  if output then
    rows[#rows + 1] = { "output tokens asked", output }
  end
  local client = M.client_check(b)
  if client then
    rows[#rows + 1] = { "client", client }
  end
  if M.present(b.goodput) then
    rows[#rows + 1] = { "goodput", num(b.goodput.goodput_req_per_sec, 2) .. " req/s (" .. string.format("%.1f%%", 100 * b.goodput.attainment) .. " meet SLO)" }
  end
  if M.present(b.littles_law) then
    rows[#rows + 1] = { "Little's law", string.format("expected %s req/s, measured %s req/s (ratio %.3f)", num(b.littles_law.expected_req_per_sec, 2), num(b.littles_law.measured_req_per_sec, 2), b.littles_law.ratio) }
  end
  if M.present(b.rate) then
    rows[#rows + 1] = { "open-loop rate", string.format("asked %s req/s, sent %s req/s", num(b.rate.requested_req_per_sec, 1), num(b.rate.achieved_req_per_sec, 1)) }
  end
  if (b.short_outputs or 0) > 0 then
    rows[#rows + 1] = { "short outputs", string.format("%d successes got fewer output tokens than asked (not in TPOT)", b.short_outputs) }
  end
  if b.backoff and (b.backoff.count or 0) > 0 then
    rows[#rows + 1] = { "backoff", string.format("%d pauses after refused requests, %s s", b.backoff.count, num(b.backoff.total_s, 2)) }
  end
  if b.interrupted then
    rows[#rows + 1] = { "interrupted", M.present(b.interrupted_by) and b.interrupted_by or "yes" }
  end
  if M.present(b.stopped_early) then
    rows[#rows + 1] = { "stopped early", b.stopped_early.message }
  end
  rows[#rows + 1] = { "duration", num(b.duration_s, 1) .. " s" }
  return rows
end

--- The one line that stands for the definitions where they are not printed.
M.definitions_pointer = "TTFT, TPOT, ITL and E2E as vLLM's benchmark defines them: --explain prints the definitions (the HTML report has them too)"

function M.definitions_text()
  local defs = {}
  for _, d in ipairs(M.definitions) do
    defs[#defs + 1] = "  " .. d[1] .. ": " .. d[2]
  end
  return "definitions (vLLM's benchmark):\n" .. table.concat(defs, "\n")
end


return M
