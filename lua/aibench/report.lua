--- Reports of benchmark results: terminal summaries, Markdown, one
--- self-contained HTML file, and comparisons between runs. The formats live
--- in aibench.report.* (format, terminal, compare, markdown, html); this
--- module is what scripts use.
local f = require("aibench.report.format")
local compare = require("aibench.report.compare")
local json = require("aibench.json")
local util = require("aibench.util")

local M = {}

M.definitions = f.definitions
M.definitions_text = f.definitions_text
M.num, M.pad, M.columns, M.clean = f.num, f.pad, f.columns, f.clean
M.TAIL_MIN_SAMPLES, M.COMPARED = compare.TAIL_MIN_SAMPLES, compare.COMPARED
M.compare, M.compare_text = compare.compare, compare.compare_text
M.summary = require("aibench.report.terminal").summary
M.server_summary = require("aibench.report.terminal").server_summary
M.hpc_summary = require("aibench.report.terminal").hpc_summary
M.terminal = require("aibench.report.terminal").terminal
M.markdown = require("aibench.report.markdown").markdown
M.html = require("aibench.report.html").html

-- Loading ------------------------------------------------------------------------

--- Loads result files (a folder means every *.json in it), in order.
--- A file in a folder that cannot be read (truncated, not a result, a
--- field of the wrong type) is skipped: it is returned in `skipped`
--- ({path, message}) for the caller to warn about, and the rest load. A
--- file named explicitly that cannot be read is an error, as is nothing
--- read at all (the error names every file skipped).
---@return table[]? records
---@return table? err
---@return {path: string, message: string}[] skipped
function M.load(paths)
  local results = require("aibench.results")
  local fs = require("aibench.fs")
  local out, skipped = {}, {}
  if #paths == 0 then
    return nil, { kind = "usage", message = "give one or more result files (or a results folder)" }, skipped
  end
  for _, p in ipairs(paths) do
    if fs.is_dir(p) then
      local files = results.list(p)
      if #files == 0 then
        return nil, { kind = "empty", message = string.format("%s: no result files (*.json) in this folder; run a benchmark first (aibench client run --recipe ...)", p) }, skipped
      end
      for _, file in ipairs(files) do
        local rec, err = results.load(file)
        if rec then
          out[#out + 1] = rec
        else
          local msg = tostring(err and err.message or err)
          if msg:sub(1, #file) ~= file then
            msg = file .. ": " .. msg
          end
          skipped[#skipped + 1] = { path = file, message = msg }
        end
      end
    else
      local rec, err = results.load(p)
      if not rec then
        return nil, err, skipped
      end
      out[#out + 1] = rec
    end
  end
  if #out == 0 then
    local lines = {}
    for _, s in ipairs(skipped) do
      lines[#lines + 1] = "  " .. s.message
    end
    return nil, { kind = "invalid", message = string.format("no result could be read (%d file%s skipped):\n%s", #skipped, #skipped == 1 and "" or "s", table.concat(lines, "\n")) }, skipped
  end
  return out, nil, skipped
end

-- For scripts (`report --json`) -------------------------------------------------------

--- The fields of a bench result that the terminal report shows, copied
--- under their own names (a script reads `bench.ttft_ms.p50` here as in the
--- result file), with every latency distribution of format.DIST. The
--- per-second series and the histograms stay in the result file.
M.FIGURES = {
  "label", "started_at", "finished_at", "duration_s", "warmup_excluded", "interrupted", "interrupted_by", "stopped_early",
  "target", "workload", "dataset", "slo", "total_requests", "successes", "errors", "not_sent", "errors_by_class", "error_samples",
  "throughput_req_per_sec", "avg_latency_ms", "min_latency_ms", "max_latency_ms", "balance", "per_url", "tokens", "goodput", "rate", "littles_law",
  "short_outputs", "backoff", "prompt_tokens_source", "asked_vs_served", "validity", "warnings", "dataset_stats", "sessions",
  "trace", "client",
}
for _, d in ipairs(f.DIST) do
  M.FIGURES[#M.FIGURES + 1] = d[1]
end

--- A record's `server` or `hpc` section for scripts (null without one):
--- copied without the fields in `leave_out`, and with every field the
--- reports read (results.RECORD_FIELDS) there, null when the run has none
--- (loading a result drops its nulls).
local function section(t, name, leave_out)
  if not f.present(t) then
    return json.null
  end
  local out = util.copy(t)
  for k in pairs(require("aibench.results").RECORD_FIELDS.fields[name].fields) do
    if out[k] == nil then
      out[k] = json.null
    end
  end
  for k in pairs(leave_out) do
    out[k] = nil
  end
  return out
end

--- One result's figures (see M.FIGURES): `{path, id, recipe, created_at,
--- bench, server, hpc}`; `server` without its time series, null when the
--- run had no server section, as `hpc` (SLURM runs only).
---@param rec table a loaded record (results.load)
---@return table
function M.figures(rec)
  local shapes = require("aibench.shapes")
  local null = shapes.null
  local b = rec.bench
  local bench = {}
  for _, k in ipairs(M.FIGURES) do
    bench[k] = null(b[k])
  end
  if f.present(bench.trace) then
    bench.trace = util.copy(bench.trace)
    bench.trace.offered_per_s, bench.trace.sent_per_s = nil, nil
  end
  if f.present(bench.per_url) then
    local per = {}
    for i, u in ipairs(bench.per_url) do
      per[i] = util.copy(u)
      per[i].ttft_hist, per[i].latency_hist = nil, nil
    end
    bench.per_url = per
  end
  return {
    path = null(rec.path),
    id = null(rec.id),
    recipe = null(f.get(rec, "recipe", "name")),
    created_at = null(rec.created_at),
    bench = bench,
    server = section(rec.server, "server", { timeseries = true }),
    hpc = section(rec.hpc, "hpc", {}),
  }
end

--- A comparison (compare.compare) for scripts: each metric's `runs` lines
--- up with the report's `results` (the first is the baseline, with no
--- change of its own).
local function comparison_data(records, cmp)
  local null = require("aibench.shapes").null
  local metrics = {}
  for _, r in ipairs(cmp.rows) do
    local runs = { { value = r.base, delta_pct = json.null, flag = json.null, few_samples = false } }
    for _, c in ipairs(r.others) do
      runs[#runs + 1] = { value = null(c.value), delta_pct = null(c.delta_pct), flag = null(c.flag), few_samples = c.few_samples or false }
    end
    metrics[#metrics + 1] = { metric = r.label, unit = r.unit, runs = json.array(runs) }
  end
  local diffs = {}
  for _, d in ipairs(cmp.differences) do
    diffs[#diffs + 1] = { name = d.name, values = json.array(util.copy(d.values)) }
  end
  return {
    baseline = null(records[1].path),
    threshold = cmp.threshold,
    regressions = cmp.regressions,
    note = null(cmp.note),
    differences = json.array(diffs),
    metrics = json.array(metrics),
  }
end

--- `report --json`: aibench.report.v1, `results` (M.figures of each, in
--- order), `comparison` (with `--compare`; else null) and `skipped` (files
--- of a folder that could not be read: {path, message}).
---@param records table[]
---@param opts? {compare?: boolean, threshold?: number}
---@param skipped? {path: string, message: string}[]
---@return table
function M.data(records, opts, skipped)
  opts = opts or {}
  local list = {}
  for i, rec in ipairs(records) do
    list[i] = M.figures(rec)
  end
  local skip = {}
  for _, s in ipairs(skipped or {}) do
    skip[#skip + 1] = { path = s.path, message = s.message }
  end
  local cmp = json.null
  if opts.compare and #records > 1 then
    cmp = comparison_data(records, compare.compare(records, opts))
  end
  return require("aibench.shapes").document("report", "results", list, { comparison = cmp, skipped = json.array(skip) })
end

return M
