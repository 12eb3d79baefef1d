--- The results store: every client run writes
--- results/<recipe>-<UTC time>-<id>.json (schema aibench.result/1) with the
--- benchmark result, the server-side metrics, the resolved recipe and the
--- environment, so a run can be repeated and compared later.
local aibench = require("aibench")
local fs = require("aibench.fs")
local json = require("aibench.json")
local time = require("aibench.time")
local uuid = require("aibench.uuid")
local env = require("aibench.env")
local util = require("aibench.util")

local M = {}

M.SCHEMA = "aibench.result/1"
-- The bench schemas live in Rust (the type that writes them): the current
-- one, and every one this build still reads (later versions only add fields).
M.BENCH_SCHEMA = require("aibench.bench").schema
M.BENCH_SCHEMAS = {}
for _, s in ipairs(require("aibench.bench").schemas) do
  M.BENCH_SCHEMAS[s] = true
end

--- A result record from a finished run.
function M.record(o)
  local r = o.recipe or {}
  return {
    schema = M.SCHEMA,
    id = o.id or uuid.short(),
    created_at = time.format(),
    recipe = { name = r.name, file = o.recipe_file, service_name = r.service_name, resolved = r },
    environment = {
      aibench_version = aibench.version,
      host = aibench.hostname(),
      user = env.get("USER") or env.get("LOGNAME"),
      cwd = fs.cwd(),
      executor = o.executor,
      slurm_job_ids = (o.executor == "slurm" and o.job_ids) or json.array(),
      job_ids = o.job_ids or json.array(),
      run = o.run,
      runs = o.runs,
    },
    target = { service = r.service_name, urls = o.urls },
    bench = o.bench,
    server = o.server or json.null,
    hpc = o.hpc or json.null,
  }
end

local function stamp()
  return time.format(nil, "%Y%m%dT%H%M%SZ")
end

--- Writes `text` to `path`; when that fails (a full disk at the end of a
--- long run), to a rescue place (`$AIBENCH_HOME/rescued/`, else the
--- temporary folder) rather than losing it. Returns the path written and,
--- when it is the rescue place, the error that sent it there; nil, err
--- only when no place took it.
function M.write(path, text, opts)
  local ok, err = fs.write(path, text, opts or { mkdir = true })
  if ok then
    return path
  end
  local rescued = fs.rescue(fs.basename(path), text)
  if rescued then
    io.stderr:write(string.format("aibench: cannot write %s (%s); the result was written to %s instead\n", path, err.message, rescued))
    return rescued, err
  end
  return nil, err
end

--- The file name of a record in `dir`: its recipe, the time and its id.
function M.path_for(record, dir)
  local name = string.format("%s-%s-%s.json", (record.recipe.name or "run"):gsub("[^%w_.-]", "_"), stamp(), record.id)
  return fs.join(dir or "results", name)
end

--- Writes a record (to `record.path` when it was saved before, so that
--- enriching it rewrites the same file); returns its path (a rescue
--- place's when its own could not be written, with the error).
function M.save(record, dir)
  local path = record.path or M.path_for(record, dir)
  local saved = record.path
  record.path = nil
  local where, err = M.write(path, json.encode(record, { pretty = true }) .. "\n")
  record.path = saved
  if not where then
    return nil, err
  end
  return where, err
end

--- The per-request log of a run whose result will have id `id`: unique per
--- run, however many start in the same second.
function M.log_path(dir, name, id)
  fs.mkdir(dir)
  return fs.join(dir, string.format("%s-%s-%s-requests.jsonl", name, stamp(), id or uuid.short()))
end

--- A new result id (for naming a run's files before it starts).
function M.new_id()
  return uuid.short()
end

-- Field types ---------------------------------------------------------------------
-- What the reports read from a result, and of which type: a hand-edited or
-- foreign file with a wrong type is refused when it is loaded, naming the file
-- and the field, rather than failing somewhere inside a report. JSON nulls in
-- these fields are read as absent. Fields not listed here are not checked.

local function kind(k, t)
  t = t or {}
  t.kind = k
  return t
end
local function req(s)
  local c = util.copy(s)
  c.required = true
  return c
end
local N, I, S, TXT, ANY = kind("number"), kind("integer"), kind("string"), kind("text"), kind("any")
local function obj(fields)
  return kind("object", { fields = fields })
end
--- An array; its elements may not be null unless `nullable`.
local function arr(of, nullable)
  return kind("array", { of = nullable and of or req(of) })
end
--- An object whose keys are free; its values may not be null.
local function map(of)
  return kind("map", { of = req(of) })
end

local SUMMARY = obj({ count = N, mean = N, min = N, max = N, stdev = N, p50 = N, p90 = N, p95 = N, p99 = N, p999 = N })
local DEVIATION = obj({ requests = N, asked_mean = N, served_mean = N, mean_deviation_pct = N, worst_abs = I, worst_asked = I, worst_pct = N })
local GAP = obj({ mean = N, p99 = N })
local SERIES = arr(N, true)

M.BENCH_FIELDS = obj({
  label = TXT,
  started_at = TXT,
  target = req(obj({ api = TXT, urls = arr(TXT), model = TXT })),
  workload = obj({
    pattern = TXT, users = I, think_time_ms = N, duration_s = N, requests_per_user = I, time_scale = N,
    max_concurrency = I, session_rate = N, turns = ANY, history = TXT, rate = N, arrival = TXT,
  }),
  duration_s = N,
  warmup_excluded = I,
  interrupted_by = TXT,
  stopped_early = obj({ message = req(TXT) }),
  total_requests = req(I),
  successes = req(I),
  errors = req(I),
  avg_latency_ms = N,
  min_latency_ms = N,
  max_latency_ms = N,
  throughput_req_per_sec = N,
  errors_by_class = map(N),
  error_samples = map(arr(TXT)),
  balance = TXT,
  per_url = arr(obj({ url = req(TXT), requests = I, ok = I, errors = I, ttft_ms = SUMMARY, latency_ms = SUMMARY })),
  short_outputs = I,
  backoff = obj({ count = I, total_s = N }),
  latency_ms = SUMMARY,
  ttft_ms = SUMMARY,
  tpot_ms = SUMMARY,
  itl_ms = SUMMARY,
  queue_ms = SUMMARY,
  send_lag_ms = SUMMARY,
  latency_from_intended_ms = SUMMARY,
  connect_ms = SUMMARY,
  tokens = obj({ input_total = N, output_total = N, input_per_s = N, output_per_s = N, output_source = TXT }),
  prompt_tokens_source = TXT,
  asked_vs_served = obj({
    prompt = req(DEVIATION),
    output = DEVIATION,
    served_prompt_tokens = obj({ count = N, min = N, p50 = N, p90 = N, p99 = N, max = N }),
  }),
  validity = obj({ cpu_util = N, cores = I, loop_delay_p99_ms = N, send_lag_p99_ms = N, connect_p99_ms = N, reasons = arr(TXT) }),
  warnings = arr(S),
  dataset_stats = obj({ path = TXT, read = I, used = I, skipped = map(I) }),
  sessions = obj({
    started = req(I), completed = req(I), failed = req(I), cut = req(I),
    duration_ms = obj({ p50 = req(N) }),
    per_turn = arr(obj({ turn = req(N), requests = N, errors = N, ttft_ms = obj({ mean = N, p50 = N, p99 = N }), e2e_ms = obj({ p50 = N }), mean_prompt_tokens = N })),
  }),
  trace = obj({
    sent = req(I), offered = req(I), trace_gap_ms = GAP, achieved_gap_ms = GAP, worst_send_offset_ms = N,
    offered_per_s = SERIES, sent_per_s = SERIES,
  }),
  goodput = obj({ goodput_req_per_sec = N, attainment = req(N) }),
  rate = obj({ requested_req_per_sec = N, achieved_req_per_sec = N }),
  littles_law = obj({ expected_req_per_sec = N, measured_req_per_sec = N, ratio = req(N), client_gap_ms = N }),
  timeseries = obj({ t_s = SERIES, completed = SERIES, errors = SERIES, output_tokens = SERIES, in_flight = SERIES }),
  histograms = map(S),
  client = obj({ cpu_util = N, cores = I, host = TXT }),
})

local SERVER_HIST = obj({ mean = N, count = N, p50 = N, p50_le = N, p90 = N, p90_le = N, p99 = N, p99_le = N })
local TIMELINE = { total_s = N, from = TXT, parts = arr(obj({ name = req(S), seconds = N })) }
local CLIENT_TIMELINE = util.merge({ job_id = req(TXT) }, TIMELINE)
local NODES = obj({ nodes = arr(obj({ node = req(S), other_jobs = req(arr(ANY)) })) })

M.RECORD_FIELDS = obj({
  created_at = TXT,
  recipe = obj({ name = TXT }),
  environment = obj({ executor = TXT, host = TXT, slurm_job_ids = arr(TXT) }),
  bench = req(M.BENCH_FIELDS),
  server = obj({
    source = TXT, prometheus = TXT, instances = I, requests = N, generation_tokens = N, preemptions = N,
    prefix_cache_hit_rate = N, prefix_cache_hits = N, prefix_cache_queries = N,
    gpu = obj({ gpus = req(I), util_pct = N, mem_copy_util_pct = N, fb_used_mib = N, power_w = N, energy_j = N, mean_power_w = N }),
    service_process = obj({ cpu_s = N, cpu_cores = N, resident_memory_bytes = req(N) }),
    ttft_ms = SERVER_HIST, queue_ms = SERVER_HIST, prefill_ms = SERVER_HIST, decode_ms = SERVER_HIST, itl_ms = SERVER_HIST, e2e_ms = SERVER_HIST,
    timeseries = obj({ series = map(obj({ points = arr(arr(N, true)) })) }),
  }),
  hpc = obj({
    timeline = obj(TIMELINE),
    client_timelines = arr(obj(CLIENT_TIMELINE)),
    accounting = obj({ jobs = req(arr(ANY)), node_hours = N, gpu_hours = N, cpu_hours = N, cpu_used_hours = N, peak_rss_mb = N, energy_j = N }),
    accounting_error = TXT,
    efficiency = obj({
      per = TXT, output_tokens_per_hour = N, requests_per_hour = N, hours = N, joules_per_output_token = N,
      energy_source = TXT, cost_per_million_output_tokens = N, cost_unit = TXT,
    }),
    other_jobs = I,
    node_sharing = obj({ start = NODES, ["end"] = NODES }),
  }),
})

local WANT = {
  number = "a number", integer = "a whole number", string = "a string", text = "a string or a number",
  object = "an object", array = "an array", map = "an object",
}

local function got(v)
  if v == json.null then
    return "null"
  elseif type(v) == "table" then
    return json.is_array(v) and "array" or "object"
  elseif type(v) == "number" then
    return "number " .. string.format("%.14g", v)
  end
  return type(v)
end

local function join(name, key)
  if type(key) == "number" then
    return string.format("%s[%d]", name, key - 1)
  end
  return name == "" and tostring(key) or (name .. "." .. tostring(key))
end

local function check(v, s, name)
  if v == nil or v == json.null then
    if s.required then
      return string.format("field %s: expected %s, got %s", name, WANT[s.kind] or s.kind, v == nil and "nothing (it is missing)" or "null")
    end
    return nil
  end
  local k, t = s.kind, type(v)
  local ok
  if k == "any" then
    return nil
  elseif k == "number" then
    ok = t == "number"
  elseif k == "integer" then
    ok = t == "number" and v == math.floor(v) and math.abs(v) < 2 ^ 53
  elseif k == "string" then
    ok = t == "string"
  elseif k == "text" then
    ok = t == "string" or t == "number"
  else
    ok = t == "table"
  end
  if not ok then
    return string.format("field %s: expected %s, got %s", name, WANT[k] or k, got(v))
  end
  if k == "object" then
    for key, fs in pairs(s.fields) do
      local fv = v[key]
      if fv == json.null then
        -- Read as absent: the reports test for presence, never for null.
        v[key] = nil
        fv = nil
      end
      local e = check(fv, fs, join(name, key))
      if e then
        return e
      end
    end
  elseif k == "array" then
    for i = 1, #v do
      local e = check(v[i], s.of, join(name, i))
      if e then
        return e
      end
    end
  elseif k == "map" then
    for key, fv in pairs(v) do
      local e = check(fv, s.of, join(name, key))
      if e then
        return e
      end
    end
  end
  return nil
end

--- Checks the types of the fields the reports read (see RECORD_FIELDS and
--- BENCH_FIELDS), reading their JSON nulls as absent. Returns nil when the
--- value is fine, else a message naming the first bad field, like
--- "field bench.latency_ms.p99: expected a number, got string".
---@param v table a decoded result record, or a bare bench result when `bare`
---@param bare? boolean
---@return string?
function M.check_fields(v, bare)
  if bare then
    return check(v, M.BENCH_FIELDS, "")
  end
  return check(v, M.RECORD_FIELDS, "")
end

--- A decoded bench part as a result (bench.result: read into the engine's
--- report once; reports, merges and comparisons use it), or nil, err
--- naming the file.
local function as_result(t, path, where)
  local ok, r = pcall(require("aibench.bench").result, t)
  if not ok then
    local e = aibench.error_info(r)
    local what = e.field and string.format("field %s%s: ", where, e.field) or ""
    return nil, { kind = "invalid", message = string.format("%s: %s%s", path, what, e.message) }
  end
  return r
end

--- Reads a result file (a stored record, or a bare bench result as written
--- by `aibench bench --json`). Errors name the file and what is wrong.
function M.load(path)
  local text, err = fs.read(path)
  if not text then
    return nil, { kind = err.kind, message = err.message }
  end
  if text:match("^%s*$") then
    return nil, { kind = "invalid", message = path .. ": the file is empty" }
  end
  local v, jerr = json.decode(text)
  if v == nil then
    return nil, { kind = "invalid", message = string.format("%s: not valid JSON (truncated?): %s", path, jerr.message) }
  end
  if type(v) ~= "table" then
    return nil, { kind = "invalid", message = path .. ": not an aibench result (expected a JSON object)" }
  end
  if v.schema == M.SCHEMA then
    if type(v.bench) ~= "table" or not M.BENCH_SCHEMAS[v.bench.schema] then
      return nil, { kind = "invalid", message = string.format("%s: its 'bench' part is missing or not %s", path, M.BENCH_SCHEMA) }
    end
    local bad = M.check_fields(v)
    if bad then
      return nil, { kind = "invalid", message = string.format("%s: %s", path, bad) }
    end
    local b, berr = as_result(v.bench, path, "bench.")
    if not b then
      return nil, berr
    end
    v.bench = b
    v.path = path
    return v
  end
  if M.BENCH_SCHEMAS[v.schema] then
    local bad = M.check_fields(v, true)
    if bad then
      return nil, { kind = "invalid", message = string.format("%s: %s", path, bad) }
    end
    local b, berr = as_result(v, path, "")
    if not b then
      return nil, berr
    end
    return { schema = M.SCHEMA, id = fs.basename(path), recipe = { name = v.label ~= json.null and v.label or fs.basename(path) }, environment = {}, bench = b, server = json.null, path = path }
  end
  if v.schema == nil then
    return nil, { kind = "invalid", message = path .. ": not an aibench result (no 'schema' field)" }
  end
  return nil, {
    kind = "schema",
    message = string.format("%s: schema '%s' is not supported (this aibench %s reads %s and %s)", path, tostring(v.schema), aibench.version, M.SCHEMA, table.concat(require("aibench.bench").schemas, ", ")),
  }
end

--- Result files in a folder, oldest first.
function M.list(dir)
  local out = {}
  for _, f in ipairs(fs.list(dir) or {}) do
    if f:match("%.json$") then
      out[#out + 1] = fs.join(dir, f)
    end
  end
  return out
end

-- Browsing (`results list`) --------------------------------------------------------

--- A value as JSON sees it: nil becomes null (the shapes' one rule).
local null = require("aibench.shapes").null

--- A field of a table that may be absent or null.
local function at(t, k)
  if not util.present(t) then
    return nil
  end
  local v = t[k]
  return util.present(v) and v or nil
end

--- The line `results list` shows for a result file: its id (the file's
--- stem), recipe (or the label of a bare bench result), when it started and
--- its key figures, under the result's own field names (so that
--- `ttft_ms.p50` means what it means in the file); `error` is why the file
--- could not be read (then everything else is null). Every field is there,
--- null when unknown.
---@param path string
---@param rec? table a loaded record (results.load)
---@param err? string why it could not be loaded
---@return table
function M.brief(path, rec, err)
  local b = rec and rec.bench or nil
  local recipe = rec and at(rec.recipe, "name") or nil
  return {
    id = (fs.basename(path):gsub("%.json$", "")),
    path = path,
    recipe = null(recipe),
    started_at = null(at(b, "started_at") or (rec and at(rec, "created_at"))),
    total_requests = null(at(b, "total_requests")),
    successes = null(at(b, "successes")),
    errors = null(at(b, "errors")),
    throughput_req_per_sec = null(at(b, "throughput_req_per_sec")),
    tokens = { output_per_s = null(at(at(b, "tokens"), "output_per_s")) },
    ttft_ms = { p50 = null(at(at(b, "ttft_ms"), "p50")), p99 = null(at(at(b, "ttft_ms"), "p99")) },
    tpot_ms = { p50 = null(at(at(b, "tpot_ms"), "p50")) },
    error = null(err),
  }
end

--- Why a result file could not be read, short: the loader's message
--- without the file name it starts with, on one line.
local function reason(path, err)
  local msg = tostring(type(err) == "table" and err.message or err)
  if msg:sub(1, #path + 2) == path .. ": " then
    msg = msg:sub(#path + 3)
  end
  msg = msg:match("[^\n]*")
  return #msg > 120 and (msg:sub(1, 117) .. "...") or msg
end

--- Every result file (*.json) of a folder, each read once and kept only as
--- its brief (M.brief), sorted by start time (then id); files that cannot
--- be read come last, with the reason. nil, err when the folder cannot be
--- listed.
---@param dir string
---@return table[]? briefs
---@return table? err
function M.browse(dir)
  if not fs.is_dir(dir) then
    local what = fs.exists(dir) and "not a folder" or "no such folder"
    return nil, { kind = "not_found", message = string.format("%s: %s (client run writes results to ./results unless the recipe's output.dir or --out-dir says otherwise)", dir, what) }
  end
  local out = {}
  for _, path in ipairs(M.list(dir)) do
    local ok, rec, err = pcall(M.load, path)
    if not ok then
      rec, err = nil, aibench.error_message(rec)
    end
    out[#out + 1] = M.brief(path, rec, rec == nil and reason(path, err) or nil)
  end
  -- RFC 3339 times in UTC sort as text; parsed, any offset sorts right.
  local function key(e)
    local t = type(e.started_at) == "string" and time.parse(e.started_at) or nil
    return t or math.huge
  end
  table.sort(out, function(a, b)
    local ka, kb = key(a), key(b)
    if ka ~= kb then
      return ka < kb
    end
    return a.id < b.id
  end)
  return out
end

return M
