--- Comparing runs against the first (the baseline): which metrics moved,
--- and which moved far enough to be a regression.
local f = require("aibench.report.format")
local num, get, title_of = f.num, f.get, f.title_of

local M = {}

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
  { "ITL p99", "ms", function(b) return get(b, "itl_ms", "p99") end, "lower", 2, "itl_ms" },
  { "TPOT p50", "ms", function(b) return get(b, "tpot_ms", "p50") end, "lower", 0.2 },
  -- Efficiency (SLURM runs: the record's hpc section).
  { "output tokens per GPU- or node-hour", "tok/h", function(_, rec) return get(rec, "hpc", "efficiency", "output_tokens_per_hour") end, "higher", 0 },
  { "energy per output token", "J", function(_, rec) return get(rec, "hpc", "efficiency", "joules_per_output_token") end, "lower", 0 },
  { "cost per million output tokens", "", function(_, rec) return get(rec, "hpc", "efficiency", "cost_per_million_output_tokens") end, "lower", 0 },
}

-- What each run asked for -----------------------------------------------------------

local present = f.present

--- A value of a spec as short text (numbers as %g, tables as sorted k=v).
local function show(v)
  if not present(v) then
    return "-"
  elseif type(v) == "number" then
    return string.format("%g", v)
  elseif type(v) == "table" then
    local keys = {}
    for k in pairs(v) do
      keys[#keys + 1] = tostring(k)
    end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do
      local x = v[k]
      if x == nil then
        x = v[tonumber(k)]
      end
      parts[#parts + 1] = k .. "=" .. show(x)
    end
    return "{" .. table.concat(parts, " ") .. "}"
  end
  return tostring(v)
end

--- The load shape of a workload spec, as short text (not how long it ran).
function M.workload_key(w)
  if type(w) ~= "table" then
    return "-"
  end
  local p = w.pattern
  local parts = { show(p) }
  if p == "closed-loop" then
    parts[#parts + 1] = show(w.users) .. " users"
    if present(w.think_time_ms) and w.think_time_ms ~= 0 then
      parts[#parts + 1] = "think " .. show(w.think_time_ms) .. " ms"
    end
  elseif p == "open-loop" then
    parts[#parts + 1] = show(w.rate) .. "/s " .. (present(w.arrival) and show(w.arrival) or "poisson")
    if present(w.burstiness) then
      parts[#parts + 1] = "burstiness " .. show(w.burstiness)
    end
  elseif p == "sessions" then
    parts[#parts + 1] = present(w.users) and (show(w.users) .. " users") or (show(w.session_rate) .. " sessions/s")
    parts[#parts + 1] = show(w.turns) .. " turns"
    if present(w.think_time_ms) and w.think_time_ms ~= 0 then
      parts[#parts + 1] = "think " .. show(w.think_time_ms) .. " ms"
    end
  elseif p == "trace" then
    parts[#parts + 1] = "time scale " .. show(w.time_scale or 1)
  end
  if present(w.max_concurrency) then
    parts[#parts + 1] = "at most " .. show(w.max_concurrency) .. " at once"
  end
  return table.concat(parts, " ")
end

--- The prompts a dataset spec makes, as short text.
function M.dataset_key(d)
  if type(d) ~= "table" then
    return "-"
  end
  local parts = { show(d.type or "synthetic") }
  if present(d.path) then
    parts[#parts + 1] = tostring(d.path):match("[^/]*$")
  end
  for _, k in ipairs({ { "prompt_tokens", "prompt" }, { "output_tokens", "output" }, { "prefix_tokens", "prefix" } }) do
    local v = d[k[1]]
    if present(v) and v ~= 0 then
      parts[#parts + 1] = k[2] .. " " .. show(v)
    end
  end
  if #parts > 1 and (present(d.prompt_tokens) or present(d.output_tokens)) then
    parts[#parts + 1] = "tokens"
  end
  return table.concat(parts, " ")
end

--- What a comparison holds constant: {name, getter} over a bench result.
M.SPEC = {
  { "model", function(b) return present(b.target) and show(b.target.model) or "-" end },
  { "API", function(b) return present(b.target) and show(b.target.api) or "-" end },
  { "instances", function(b) return present(b.target) and type(b.target.urls) == "table" and tostring(#b.target.urls) or "-" end },
  { "streaming", function(b) return present(b.target) and show(b.target.stream) or "-" end },
  { "workload", function(b) return M.workload_key(b.workload) end },
  { "dataset", function(b) return M.dataset_key(b.dataset) end },
}

--- How the runs' recorded specs differ: {name, values} per aspect whose
--- value is not the same in every run (values in run order).
function M.differences(records)
  local out = {}
  for _, a in ipairs(M.SPEC) do
    local values, differ = {}, false
    for i, rec in ipairs(records) do
      values[i] = a[2](rec.bench or {})
      differ = differ or values[i] ~= values[1]
    end
    if differ then
      out[#out + 1] = { name = a[1], values = values }
    end
  end
  return out
end

--- The differences as one line for the reader, before the deltas (nil when
--- the runs asked for the same thing).
function M.difference_note(diffs)
  if #diffs == 0 then
    return nil
  end
  local parts = {}
  for _, d in ipairs(diffs) do
    local shown = {}
    for i, v in ipairs(d.values) do
      shown[i] = #d.values == 2 and v or ("#" .. i .. " " .. v)
    end
    parts[#parts + 1] = string.format("%s (%s)", d.name, table.concat(shown, #d.values == 2 and " vs " or ", "))
  end
  return "these runs differ in " .. table.concat(parts, ", ") .. ": a change below may come from that, not from the server"
end

-- Comparing -----------------------------------------------------------------------

--- Compares runs against the first (the baseline). A metric is flagged when
--- it is worse by more than `threshold` (relative) and `min_abs` (absolute).
--- `differences` and `note` say how the runs' recorded specs differ (model,
--- API, instances, workload, dataset): flags between unlike runs are not
--- like-for-like.
---@return {rows: table[], regressions: integer, threshold: number, differences: table[], note: string?}
function M.compare(records, opts)
  local threshold = (opts and opts.threshold) or 0.10
  local base = records[1].bench
  local rows, regressions = {}, 0
  for _, m in ipairs(M.COMPARED) do
    local b = m[3](base, records[1])
    if b then
      local row = { label = m[1], unit = m[2], base = b, others = {} }
      for i = 2, #records do
        local v = m[3](records[i].bench, records[i])
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
  local diffs = M.differences(records)
  return { rows = rows, regressions = regressions, threshold = threshold, differences = diffs, note = M.difference_note(diffs) }
end

local function delta_text(c)
  if not c.value then
    return "-"
  end
  local d = c.delta_pct and string.format("%+.1f%%", c.delta_pct) or ""
  return d .. (c.flag and ("  " .. c.flag) or "") .. (c.few_samples and "  (few samples)" or "")
end

--- The comparison as table rows (header first), for every output format.
function M.compare_rows(records, cmp)
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
  local rows = M.compare_rows(records, cmp)
  local out = { "comparison against #1 (flag: worse by more than " .. string.format("%.0f%%", 100 * cmp.threshold) .. ")" }
  for i, rec in ipairs(records) do
    out[#out + 1] = string.format("  #%d %s  %s", i, title_of(rec), rec.path or "")
  end
  out[#out + 1] = ""
  if cmp.note then
    out[#out + 1] = "note: " .. cmp.note
    out[#out + 1] = ""
  end
  out[#out + 1] = f.columns(rows)
  out[#out + 1] = ""
  out[#out + 1] = cmp.regressions == 0 and "no regression" or string.format("%d regression(s) flagged", cmp.regressions)
  return f.clean(table.concat(out, "\n"))
end

return M
