--- What the server, monitor and client managers share: executor choice, job
--- folders under $AIBENCH_HOME/jobs, their metadata, and batched status.
local aibench = require("aibench")
local fs = require("aibench.fs")
local json = require("aibench.json")
local time = require("aibench.time")
local uuid = require("aibench.uuid")
local recipe = require("aibench.recipe")

local M = {}

M.executors = { ["local"] = require("aibench.local"), slurm = require("aibench.slurm") }

--- The executor module by name; raises on an unknown name.
function M.executor(name)
  local ex = M.executors[name]
  if not ex then
    local hint = recipe.suggest(tostring(name), { "local", "slurm" })
    error(string.format("unknown executor '%s'%s; expected local or slurm", tostring(name), hint and (" (did you mean '" .. hint .. "'?)") or ""), 0)
  end
  return ex
end

--- The executor a command uses: the --executor flag, else the recipe's
--- orchestration.executor, else local.
function M.executor_name(r, flag)
  return flag or (r.orchestration and r.orchestration.executor) or "local"
end

--- The executor module, checked usable (SLURM answers); nil, err otherwise.
function M.ready_executor(name)
  local ex = M.executor(name)
  local ok, err = ex.available()
  if not ok then
    return nil, err
  end
  return ex
end

function M.jobs_dir()
  return fs.join(aibench.home(), "jobs")
end

--- A new job folder (not created yet) and its instance id.
function M.new_job_dir(name)
  local id = uuid.short()
  return fs.join(M.jobs_dir(), name .. "-" .. id), id
end

local META = "meta.json"

function M.write_meta(dir, meta)
  meta.updated_at = time.format()
  assert(fs.write(fs.join(dir, META), json.encode(meta, { pretty = true }) .. "\n", { mkdir = true, mode = tonumber("600", 8) }))
end

function M.read_meta(dir)
  local text = fs.read(fs.join(dir, META))
  if not text then
    return nil
  end
  local m = json.decode(text)
  if type(m) ~= "table" then
    return nil
  end
  m.dir = dir
  return m
end

--- Writes a job's files ({path = text}) with the given mode; nil, err on the
--- first that fails.
function M.write_files(files, mode)
  for path, text in pairs(files) do
    local ok, err = fs.write(path, text, { mkdir = true, mode = mode })
    if not ok then
      return nil, err
    end
  end
  return true
end

--- Submits a job spec on the meta's executor, then stamps the meta with the
--- job id and submission time and writes it. `stamp(meta)`, if given, adds
--- fields just before the write. On failure the job folder is removed and
--- nil, err returned.
function M.submit(spec, meta, stamp)
  local job, err = M.executor(meta.executor).submit(spec)
  if not job then
    fs.remove(meta.dir, { recursive = true })
    return nil, err
  end
  meta.job_id = job.id
  meta.submitted_at = time.format()
  if stamp then
    stamp(meta)
  end
  M.write_meta(meta.dir, meta)
  return meta
end

--- Cancels the jobs of these metas (what a command already submitted when a
--- later submission failed).
function M.cancel_all(metas)
  for _, m in ipairs(metas) do
    M.job(m):cancel()
  end
end

--- Every job folder's metadata, optionally of one kind ("server", ...).
function M.all(kind)
  local out = {}
  for _, name in ipairs(fs.list(M.jobs_dir()) or {}) do
    if name:sub(1, 1) ~= "." then
      local m = M.read_meta(fs.join(M.jobs_dir(), name))
      if m and m.job_id and (not kind or m.kind == kind) then
        out[#out + 1] = m
      end
    end
  end
  table.sort(out, function(a, b)
    return (a.submitted_at or "") < (b.submitted_at or "")
  end)
  return out
end

--- Current state of many jobs: one call per executor. Adds `state`, `node`,
--- `exit_code`, `reason` to each meta. Returns nil, err when an executor cannot answer.
function M.refresh(metas)
  local by_exec = {}
  for _, m in ipairs(metas) do
    by_exec[m.executor] = by_exec[m.executor] or {}
    table.insert(by_exec[m.executor], m)
  end
  for name, list in pairs(by_exec) do
    local ids = {}
    for i, m in ipairs(list) do
      ids[i] = m.job_id
    end
    local states, err = M.executor(name).statuses(ids)
    if not states then
      return nil, err
    end
    for _, m in ipairs(list) do
      local s = states[m.job_id] or {}
      m.state, m.node, m.exit_code, m.reason = s.state or "UNKNOWN", s.node, s.exit_code, s.reason
    end
  end
  return metas
end

function M.is_final(state)
  return state == "COMPLETED" or state == "FAILED" or state == "CANCELED" or state == "TIMEOUT"
end

--- The job handle for a meta.
function M.job(m)
  return M.executor(m.executor).job(m.job_id, m.dir)
end

--- Finds one job by instance id, job id or folder name (unique prefix ok).
function M.find(kind, id)
  local hits = {}
  for _, m in ipairs(M.all(kind)) do
    local base = fs.basename(m.dir)
    if m.instance_id == id or m.job_id == id or base == id then
      return m
    end
    if (m.instance_id or ""):sub(1, #id) == id or base:sub(1, #id) == id then
      hits[#hits + 1] = m
    end
  end
  if #hits == 1 then
    return hits[1]
  end
  if #hits > 1 then
    return nil, { kind = "ambiguous", message = string.format("'%s' matches %d %s jobs; give more of the id", id, #hits, kind) }
  end
  return nil, { kind = "not_found", message = string.format("no %s with id '%s' (see `aibench %s list`)", kind, id, kind) }
end

--- The command that runs a service under the job agent, in its container if any.
function M.agent_command(dir, service)
  local cmd = { aibench.exe(), "job-agent", fs.join(dir, "agent.json"), "--" }
  local c = service and service.container
  if c then
    cmd[#cmd + 1] = c.runtime or "apptainer"
    cmd[#cmd + 1] = "exec"
    if c.gpu then
      cmd[#cmd + 1] = "--nv"
    end
    for _, b in ipairs(c.binds or {}) do
      cmd[#cmd + 1] = "--bind"
      cmd[#cmd + 1] = b
    end
    for _, a in ipairs(c.args or {}) do
      cmd[#cmd + 1] = a
    end
    cmd[#cmd + 1] = c.image
  end
  return cmd
end

--- The SLURM site defaults (recipe.slurm_defaults) when the executor is
--- slurm, else nil: read once per command and handed to job_spec.
function M.site_defaults(executor)
  if executor == "slurm" then
    return recipe.slurm_defaults()
  end
end

--- The job spec (for aibench.slurm/local) from a recipe's orchestration.
--- `defaults`: the site defaults from site_defaults (read here when nil).
function M.job_spec(r, executor, name, dir, command, comment, defaults)
  local o = r.orchestration or {}
  local res = {}
  for k, v in pairs(o.resources or {}) do
    res[k] = v
  end
  local sbatch_args = {}
  for _, a in ipairs(o.sbatch_args or {}) do
    sbatch_args[#sbatch_args + 1] = a
  end
  local modules = {}
  for _, m in ipairs((r.service and r.service.modules) or {}) do
    modules[#modules + 1] = m
  end
  if executor == "slurm" then
    local d = defaults or recipe.slurm_defaults()
    for _, k in ipairs({ "partition", "account", "qos", "time_limit", "cpu_cores", "memory_gb" }) do
      if res[k] == nil then
        res[k] = d[k]
      end
    end
    for _, a in ipairs(d.sbatch_args or {}) do
      sbatch_args[#sbatch_args + 1] = a
    end
    -- Site modules first, in their order (Lmod hierarchies depend on it).
    for i, m in ipairs(d.modules or {}) do
      table.insert(modules, i, m)
    end
  end
  local env = {}
  for k, v in pairs((r.service and r.service.env) or {}) do
    env[k] = tostring(v)
  end
  return {
    name = name,
    dir = dir,
    command = command,
    resources = res,
    modules = modules,
    env = env,
    workdir = r.service and r.service.working_dir and fs.abspath(r.service.working_dir) or nil,
    sbatch_args = sbatch_args,
    comment = comment,
  }
end

--- Seconds of the recipe's time limit (for the local executor's agent).
function M.time_limit_s(r)
  local t = r.orchestration and r.orchestration.resources and r.orchestration.resources.time_limit
  if not t then
    return nil
  end
  return (require("aibench.local").time_limit_seconds(t))
end

--- The last lines of a job's log, indented, for error messages.
function M.log_tail(m, n)
  local text = M.job(m):logs({ tail = n or 15 }) or ""
  if text == "" then
    return "  (the job log is empty: " .. fs.join(m.dir, "job.log") .. ")"
  end
  return "  | " .. text:gsub("\n", "\n  | ")
end

--- Human-readable age since an ISO time.
function M.age(iso)
  local t = iso and time.parse(iso)
  if not t then
    return "-"
  end
  local s = math.max(0, time.now() - t)
  if s < 120 then
    return string.format("%ds", math.floor(s))
  elseif s < 7200 then
    return string.format("%dm", math.floor(s / 60))
  end
  return string.format("%.1fh", s / 3600)
end

return M
