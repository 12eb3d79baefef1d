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

local M = {}

M.SCHEMA = "aibench.result/1"
M.BENCH_SCHEMA = "aibench.bench/2"
--- Bench results of earlier versions that still load (/2 only added fields).
M.BENCH_SCHEMAS = { ["aibench.bench/2"] = true, ["aibench.bench/1"] = true }

--- A result record from a finished run.
function M.record(o)
  local r = o.recipe or {}
  return {
    schema = M.SCHEMA,
    id = uuid.short(),
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

--- Writes a record; returns its path.
function M.save(record, dir)
  local name = string.format("%s-%s-%s.json", (record.recipe.name or "run"):gsub("[^%w_.-]", "_"), stamp(), record.id)
  local path = fs.join(dir or "results", name)
  local ok, err = fs.write(path, json.encode(record, { pretty = true }) .. "\n", { mkdir = true })
  if not ok then
    return nil, err
  end
  return path
end

function M.log_path(dir, name)
  fs.mkdir(dir)
  return fs.join(dir, string.format("%s-%s-requests.jsonl", name, stamp()))
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
    v.path = path
    return v
  end
  if M.BENCH_SCHEMAS[v.schema] then
    return { schema = M.SCHEMA, id = fs.basename(path), recipe = { name = v.label ~= json.null and v.label or fs.basename(path) }, environment = {}, bench = v, server = json.null, path = path }
  end
  if v.schema == nil then
    return nil, { kind = "invalid", message = path .. ": not an aibench result (no 'schema' field)" }
  end
  return nil, {
    kind = "schema",
    message = string.format("%s: schema '%s' is not supported (this aibench %s reads %s, %s and aibench.bench/1)", path, tostring(v.schema), aibench.version, M.SCHEMA, M.BENCH_SCHEMA),
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

return M
