--- What the server, monitor and client managers share: executor choice, job
--- folders under $AIBENCH_HOME/jobs, their metadata, batched status, and
--- the deployment lifecycle (wait until registered, give up, stop, list),
--- with Ctrl-C and SIGTERM cancelling what a command submitted.
local aibench = require("aibench")
local fs = require("aibench.fs")
local json = require("aibench.json")
local time = require("aibench.time")
local uuid = require("aibench.uuid")
local recipe = require("aibench.recipe")
local registry = require("aibench.registry")

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

--- A new job folder (not created yet) and its instance id. `name` must be a
--- valid name (recipe validation checks it, naming the file): a path in
--- it would put the folder elsewhere.
function M.new_job_dir(name)
  assert(aibench.check_name(name))
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

--- Writes a job's files ({path = text}), private (0600, in 0700 folders);
--- nil, err on the first that fails.
function M.write_files(files)
  for path, text in pairs(files) do
    local ok, err = fs.write(path, text, { mkdir = true, mode = tonumber("600", 8) })
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
      m.expected_start = s.expected_start
    end
  end
  return metas
end

--- True for a final state; the states are the executors' (Rust's) rule.
function M.is_final(state)
  return state ~= nil and M.executors["local"].is_final(state)
end

-- Job specs ----------------------------------------------------------------------

-- Where a job-spec field comes from in a recipe, for error messages.
local RECIPE_FIELDS = {
  { "^resources%.", "orchestration.resources." },
  { "^sbatch_args", "orchestration.sbatch_args" },
  { "^env", "service.env" },
  { "^working_dir", "service.working_dir" },
  { "^modules", "service.modules" },
  { "^name", "name" },
}

-- Files a recipe names for its job to read (server: a recorded GPU scrape;
-- client: its dataset), as {section, field}.
local INPUT_FILES = {
  { "monitoring", "gpu_from_file" },
  { "dataset", "path" },
}

--- Checks, before anything is submitted, that each file a recipe names for
--- its job to read is an existing regular file (not a device such as
--- /dev/zero, a FIFO or a folder, which the job would refuse or wait on);
--- raises one line naming the recipe file and field. Relative paths are the
--- submitting folder's, as the job sees them.
function M.check_input_files(file, r)
  for _, f in ipairs(INPUT_FILES) do
    local section = type(r) == "table" and r[f[1]] or nil
    local path = type(section) == "table" and section[f[2]] or nil
    if type(path) == "string" and path ~= "" then
      local st, err = fs.stat(fs.abspath(path))
      local why
      if not st then
        why = (err and err.kind == "not_found") and "does not exist"
          or ("cannot be read (" .. tostring(err and err.message or err) .. ")")
      elseif st.is_dir then
        why = "is a directory; expected a regular file"
      elseif not st.is_file then
        why = "is not a regular file (a device, FIFO or socket); expected a regular file"
      end
      if why then
        error(string.format("%s: %s.%s: '%s' %s", file, f[1], f[2], path, why), 0)
      end
    end
  end
end

--- Checks a job spec before anything is written, raising one line that
--- names the recipe file and field (a value from the site defaults in
--- config/slurm.yml is named as such); the files the recipe names for the
--- job to read are checked first (M.check_input_files).
function M.check_job_spec(spec, file, r)
  M.check_input_files(file, r)
  local ok, err = pcall(M.executor("local").render, spec)
  if ok then
    return
  end
  local msg = aibench.error_message(err):gsub("^render: ", "")
  for _, f in ipairs(RECIPE_FIELDS) do
    if msg:match(f[1]) then
      msg = msg:gsub(f[1], f[2], 1)
      break
    end
  end
  local key = msg:match("^orchestration%.resources%.([%w_]+)")
  local res = r and r.orchestration and r.orchestration.resources or {}
  if key and res[key] == nil then
    msg = msg .. " (from the SLURM site defaults, config/slurm.yml)"
  end
  error(file .. ": " .. msg, 0)
end

-- Lifecycle ------------------------------------------------------------------------

--- The registry entry of an instance of a service, if it is registered.
function M.registered(service, instance_id)
  for _, i in ipairs(registry.list(service) or {}) do
    if i.instance_id == instance_id then
      return i
    end
  end
end

--- Waits until each deployment is registered (healthy) or its job ends.
--- A signal on `guard` (aibench.guard) stops the wait. Returns the ready
--- list, the failed list (metas with `why`) and the signal's name, if any.
function M.wait(metas, timeout_s, guard)
  local deadline = time.monotonic() + (timeout_s or 600)
  local pending = {}
  for _, m in ipairs(metas) do
    pending[#pending + 1] = m
  end
  local ready, failed = {}, {}
  while #pending > 0 do
    local sig = guard and guard:signal()
    if sig then
      return ready, failed, sig
    end
    local _, err = M.refresh(pending)
    if err then
      for _, m in ipairs(pending) do
        m.why = err.message
        failed[#failed + 1] = m
      end
      break
    end
    local still = {}
    for _, m in ipairs(pending) do
      local inst = M.registered(m.service, m.instance_id)
      if inst then
        m.instance = inst
        ready[#ready + 1] = m
      elseif M.is_final(m.state) then
        m.why = string.format("job %s ended %s%s before registering", m.job_id, m.state, m.reason and (" (" .. m.reason .. ")") or "")
        failed[#failed + 1] = m
      else
        still[#still + 1] = m
      end
    end
    pending = still
    if #pending > 0 then
      if time.monotonic() > deadline then
        for _, m in ipairs(pending) do
          m.why = string.format("not registered after %d s (job %s is %s)", timeout_s, m.job_id, m.state)
          failed[#failed + 1] = m
        end
        break
      end
      if guard then
        sig = guard:sleep(0.3)
      else
        time.sleep(0.3)
      end
      if sig then
        return ready, failed, sig
      end
    end
  end
  return ready, failed, nil
end

--- Gives up on a deployment: its job is stopped if it may still run, and
--- nothing of it stays registered (a job cancelled before it registered
--- cannot register any more).
function M.abandon(m)
  if not M.is_final(m.state) then
    M.job(m):cancel()
  end
  if m.service then
    registry.deregister(m.service, m.instance_id)
  end
end

--- After SIGINT/SIGTERM in a command that submitted `metas`: cancels them
--- all, removes their registrations, and returns the `interrupted` error
--- that says what was cancelled (its `code` is the exit status).
function M.interrupted(sig, metas)
  local lines = {}
  for _, m in ipairs(metas) do
    m.state = m.state or "PENDING"
    M.abandon(m)
    m.state = "CANCELED"
    m.stopped_at = time.format()
    M.write_meta(m.dir, m)
    lines[#lines + 1] = string.format("cancelled %s %s instance %s (%s job %s)", m.kind, m.recipe, m.instance_id, m.executor, m.job_id)
  end
  if #lines == 0 then
    lines[1] = "nothing had been submitted"
  end
  return {
    kind = "interrupted",
    signal = sig,
    code = aibench.exit_code(sig),
    cancelled = metas,
    message = "interrupted (" .. sig .. "): " .. table.concat(lines, "; "),
  }
end

--- Deployments of a kind (not finished ones unless `opts.all`) with their
--- state and registry entry.
function M.list(kind, opts)
  opts = opts or {}
  local metas = M.all(kind)
  local _, err = M.refresh(metas)
  if err then
    return nil, err
  end
  local out = {}
  for _, m in ipairs(metas) do
    if opts.all or not M.is_final(m.state) then
      m.instance = m.service and M.registered(m.service, m.instance_id) or nil
      out[#out + 1] = m
    end
  end
  return out
end

--- Cancels jobs, waits for them to end, removes their registry entries.
--- The metas' states must be current (refresh): jobs in a final state are
--- not cancelled.
function M.stop_metas(metas, opts)
  opts = opts or {}
  local stopped = {}
  for _, m in ipairs(metas) do
    -- A local job that has ended may still have left its service running
    -- (its agent killed outright): cancelling it stops the recorded group.
    if not M.is_final(m.state) or m.executor == "local" then
      local ok, err = M.job(m):cancel()
      if not ok then
        return nil, err
      end
    end
    stopped[#stopped + 1] = m
  end
  for _, m in ipairs(stopped) do
    M.job(m):wait({ timeout_s = opts.wait_s or 45, poll_s = 0.3 })
    if m.service then
      registry.deregister(m.service, m.instance_id)
    end
    m.stopped_at = time.format()
    M.write_meta(m.dir, m)
  end
  M.refresh(stopped)
  return stopped
end

--- Stops one deployment of a kind (by instance id, job id or folder).
function M.stop(kind, id, opts)
  local m, err = M.find(kind, id)
  if not m then
    return nil, err
  end
  M.refresh({ m })
  return M.stop_metas({ m }, opts)
end

--- Stops every active deployment of a kind.
function M.stop_all(kind, opts)
  -- M.list has just refreshed their states.
  local active, err = M.list(kind)
  if not active then
    return nil, err
  end
  return M.stop_metas(active, opts)
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
  if res.time_limit then
    -- A bare number is minutes (as for sbatch --time).
    res.time_limit = tostring(res.time_limit)
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
  return (require("aibench.local").time_limit_seconds(tostring(t)))
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
