--- The client manager (the MeluXina report's Client module): run a client recipe against
--- its service, found in the discovery registry; in this process (local) or
--- as K jobs on compute nodes (SLURM) whose results are merged exactly.
local aibench = require("aibench")
local bench = require("aibench.bench")
local fs = require("aibench.fs")
local http = require("aibench.http")
local json = require("aibench.json")
local registry = require("aibench.registry")
local time = require("aibench.time")
local recipe = require("aibench.recipe")
local deploy = require("aibench.deploy")
local results = require("aibench.results")
local util = require("aibench.util")

local M = {}

--- Why a registered instance cannot be benchmarked (its job has ended, or
--- it does not answer), or nil when it is alive. `state` is its job's state.
local function dead_reason(i, state)
  if state and deploy.is_final(state) then
    return "its job has ended (" .. state .. ")"
  end
  if state == "UNKNOWN" then
    return "its job is unknown to the " .. tostring(i.executor) .. " executor"
  end
  local path = (i.extra and i.extra.health_path) or ""
  local res, err = http.get(i.url .. path, { timeout_s = 5 })
  if not res then
    return string.format("%s does not answer (%s)", i.url .. path, err.message)
  end
  if path ~= "" and not res.ok then
    return string.format("its health check %s answers HTTP %d", i.url .. path, res.status)
  end
end

--- Checks that every instance is alive (job running, answering); raises
--- nothing, returns nil, err naming the first dead one.
local function check_alive(service, list)
  -- Copies: the registry's entries are not given job states. Instances of
  -- an executor this aibench does not know are only asked over HTTP.
  local jobs = {}
  for _, i in ipairs(list) do
    jobs[#jobs + 1] = { executor = i.executor, job_id = i.job_id }
  end
  local known, rerr = deploy.refresh_known(jobs)
  if not known then
    return nil, rerr
  end
  local state_of = {}
  for _, j in ipairs(known) do
    state_of[j.executor .. ":" .. j.job_id] = j.state
  end
  for _, i in ipairs(list) do
    local why = dead_reason(i, state_of[tostring(i.executor) .. ":" .. tostring(i.job_id)])
    if why then
      return nil, {
        kind = "dead",
        message = string.format(
          "service '%s' instance %s (%s job %s on %s, %s) is not alive: %s; remove stale entries with `aibench services prune`, then start a server (aibench server run --recipe ...)",
          service, i.instance_id, tostring(i.executor), tostring(i.job_id), tostring(i.node), i.url, why),
      }
    end
  end
  return true
end

--- URLs to benchmark: an explicit URL, the recipe's target.url, or every
--- running instance of the recipe's service (each checked alive first).
function M.targets(r, url)
  if url then
    return { url }, nil
  end
  if r.target and r.target.url then
    local u = r.target.url
    return type(u) == "table" and u or { u }, nil
  end
  local service = r.service_name
  if not service then
    error("the recipe names no service_name and no target.url: nothing to benchmark", 0)
  end
  local list, err = registry.list(service)
  if not list then
    return nil, err
  end
  local urls, running = {}, {}
  for _, i in ipairs(list) do
    if i.status == "RUNNING" and i.url ~= "" then
      urls[#urls + 1] = i.url
      running[#running + 1] = i
    end
  end
  local alive, aerr = check_alive(service, running)
  if not alive then
    return nil, aerr
  end
  if #urls == 0 then
    return nil, {
      kind = "not_found",
      message = string.format("no running instance of service '%s' is registered; start one first: aibench server run --recipe vllm-sim", service),
    }
  end
  return urls, service
end

--- The load generator spec for a recipe.
function M.spec(r, urls)
  -- The recipe's target settings pass through; discovery decides the URLs.
  local target = {}
  for k, v in pairs(r.target or {}) do
    if k ~= "service_name" and k ~= "url" then
      target[k] = v
    end
  end
  target.url = #urls == 1 and urls[1] or urls
  return {
    target = target,
    workload = r.workload,
    dataset = r.dataset,
    slo = r.slo,
    label = (r.output and r.output.label) or r.name,
  }
end

--- The `--set key.path=value` argument that set a spec field (a spec's
--- workload, dataset, target and slo fields are the recipe's), if any.
local function set_for(field, sets)
  for _, s in ipairs(sets or {}) do
    local path = recipe.set_field(s)
    if path and (field == path or field:sub(1, #path + 1) == path .. "." or field:sub(1, #path + 1) == path .. "[") then
      return s
    end
  end
end

--- A spec (table or JSON text) as a validated spec (bench.spec), or an
--- error naming the file (the recipe, the job's spec.json) and the field;
--- a field a `--set` gave is that flag's error (usage, exit 2).
local function validate(spec, file, sets)
  local s, err = bench.spec(spec)
  if not s then
    local set = set_for(err.field or "", sets)
    if set then
      util.usage_error("--set " .. set .. ": " .. err.field .. ": " .. err.message)
    end
    error(file .. ": " .. (err.field and (err.field .. ": ") or "") .. err.message, 0)
  end
  return s
end

local function run_local(spec, file, opts)
  local s = spec
  if opts.per_request_log then
    s = util.copy(spec)
    s.per_request_log = opts.per_request_log
  end
  return bench.run(validate(s, file), { progress = opts.progress ~= false, on_progress = opts.on_progress })
end

--- Seconds before a client job's time limit at which SLURM warns it
--- (SIGTERM), so it saves its partial result before the kill.
local function warn_lead_s(r)
  local limit = deploy.time_limit_s(r)
  if not limit then
    return 60
  end
  return math.max(10, math.min(120, limit // 10))
end

--- The K instances' specs as JSON, each checked before any is submitted.
--- Each instance draws its own arrivals and prompts: identical seeds would
--- send K-wide bursts of the same prompts instead of K independent clients.
--- Only parts whose type has a seed get one (a trace or a list of prompts
--- has none).
local function instance_specs(spec, file, k)
  local base = validate(spec, file)
  local out = {}
  for i = 1, k do
    local s = util.copy(spec)
    for _, part in ipairs({ "workload", "dataset" }) do
      if type(spec[part]) == "table" and base[part].seed ~= nil then
        local copy = util.copy(spec[part])
        copy.seed = (tonumber(copy.seed) or 0) + i - 1
        s[part] = copy
      end
    end
    out[i] = (i == 1 and base or validate(s, file)):to_json() .. "\n"
  end
  return out
end

--- The agent description a client job runs under; `gang` ({dir, rank?})
--- for a task of a gang (its agent tells the barrier if the task dies
--- before the start).
local function agent_json(r, executor, instance_id, gang)
  return require("aibench.agent").encode({
    instance_id = instance_id,
    recipe_name = r.name,
    executor = executor,
    home = aibench.home(),
    time_limit_s = executor == "local" and deploy.time_limit_s(r) or nil,
    gang = gang,
  })
end

--- A client job's spec for an executor, checked.
local function client_job_spec(r, file, executor, dir, command, comment, cache)
  cache.defaults = cache.defaults or deploy.site_defaults(executor)
  local jspec = deploy.job_spec(r, executor, "aibench-" .. r.name, dir, command, comment, cache.defaults)
  jspec.workdir = fs.cwd()
  if executor == "slurm" then
    jspec.warn_before_end_s = warn_lead_s(r)
  end
  return jspec
end

--- K instances on SLURM as one job: one allocation, one `srun` step of K
--- tasks over `orchestration.resources.nodes` nodes (default: one per
--- instance), which meet at a barrier and start sending together. The
--- specs are spec-<rank>.json and the results result-<rank>.json in the
--- one job folder.
local function submit_gang(r, file, executor, specs, cache)
  local k = #specs
  local dir, instance_id = deploy.new_job_dir(r.name)
  local command = deploy.agent_command(dir, nil)
  for _, a in ipairs({ aibench.exe(), "job-client", "--gang", fs.join(dir, "gang"), fs.join(dir, "spec-{rank}.json"), fs.join(dir, "result-{rank}.json") }) do
    command[#command + 1] = a
  end
  local jspec = client_job_spec(r, file, executor, dir, command, string.format("client recipe %s (%s), %d instances started together", r.name, file, k), cache)
  jspec.resources.nodes = jspec.resources.nodes or k
  jspec.tasks = k
  deploy.check_job_spec(jspec, file, r)
  local files = { [fs.join(dir, "agent.json")] = agent_json(r, executor, instance_id, { dir = fs.join(dir, "gang") }) }
  for i = 1, k do
    files[fs.join(dir, string.format("spec-%d.json", i - 1))] = specs[i]
  end
  assert(deploy.write_files(files))
  local meta = { kind = "client", recipe = r.name, recipe_file = file, instance_id = instance_id, executor = executor, dir = dir, tasks = k }
  local ok, err = deploy.submit(jspec, meta)
  if not ok then
    return nil, err
  end
  io.stderr:write(string.format("submitted client %s as %s job %s: %d tasks on %d node(s), starting together\n", r.name, executor, meta.job_id, k, jspec.resources.nodes))
  return { meta }
end

--- Submits a client recipe's K instances: on SLURM (K > 1) one gang job;
--- elsewhere K jobs, which still meet at a barrier (in the first job's
--- folder) and start together. Returns their metas.
local function submit_jobs(r, file, executor, spec, cache, guard)
  local k = (r.orchestration and r.orchestration.instances) or 1
  local specs = instance_specs(spec, file, k)
  if executor == "slurm" and k > 1 then
    return submit_gang(r, file, executor, specs, cache)
  end
  local metas = {}
  local gang_dir
  for i = 1, k do
    local dir, instance_id = deploy.new_job_dir(r.name)
    local command = deploy.agent_command(dir, nil)
    local args = { aibench.exe(), "job-client" }
    if k > 1 then
      gang_dir = gang_dir or fs.join(dir, "gang")
      for _, a in ipairs({ "--gang", gang_dir, "--rank", tostring(i - 1), "--size", tostring(k) }) do
        args[#args + 1] = a
      end
    end
    args[#args + 1] = fs.join(dir, "spec.json")
    args[#args + 1] = fs.join(dir, "result.json")
    for _, a in ipairs(args) do
      command[#command + 1] = a
    end
    local jspec = client_job_spec(r, file, executor, dir, command, string.format("client recipe %s (%s), instance %d of %d", r.name, file, i, k), cache)
    deploy.check_job_spec(jspec, file, r)
    assert(deploy.write_files({
      [fs.join(dir, "spec.json")] = specs[i],
      [fs.join(dir, "agent.json")] = agent_json(r, executor, instance_id, k > 1 and { dir = gang_dir, rank = i - 1 } or nil),
    }))
    local meta = { kind = "client", recipe = r.name, recipe_file = file, instance_id = instance_id, executor = executor, dir = dir }
    local ok, err = deploy.submit(jspec, meta)
    if not ok then
      deploy.cancel_all(metas)
      return nil, err
    end
    metas[#metas + 1] = meta
    io.stderr:write(string.format("submitted client %s (%d/%d) as %s job %s\n", r.name, i, k, executor, meta.job_id))
    if guard:signal() then
      break
    end
  end
  return metas
end

-- Progress of client jobs --------------------------------------------------------

--- The file a client job writes its progress to, in its job folder,
--- about once a second (atomically: a reader never sees half of it).
M.PROGRESS_FILE = "progress.json"
--- Seconds between the lines of counts while waiting, when stderr is not
--- a terminal (a log); on a terminal one line is updated in place.
M.PROGRESS_EVERY_S = 10

--- Writes a client job's progress (`fields` plus the schema, host and
--- time) to `dir`/progress.json. Never raises: a progress file that cannot
--- be written must not stop a measurement.
local function write_progress(path, fields)
  pcall(function()
    local doc = util.merge({ schema = "aibench.progress/1", host = aibench.hostname(), updated_at = time.format() }, fields)
    fs.write(path, json.encode(doc) .. "\n")
  end)
end

--- Where task `rank` of a gang job writes its progress (progress-<rank>.json).
local function task_progress_path(dir, rank)
  return fs.join(dir, string.format("progress-%d.json", rank))
end

local function read_json(path)
  local text = fs.read(path)
  if not text then
    return nil
  end
  local ok, doc = pcall(json.decode, text)
  return ok and type(doc) == "table" and doc or nil
end

--- A gang job's tasks' progress files as one: counts and rates summed, the
--- slowest task's TTFT p50, finished when every task has finished.
local function gang_progress(dir, tasks)
  local sum = { done = 0, errors = 0, completed = 0, in_flight = 0, req_per_s = 0, finished = true, tasks = 0 }
  for rank = 0, tasks - 1 do
    local p = read_json(task_progress_path(dir, rank))
    if p then
      sum.tasks = sum.tasks + 1
      for _, k in ipairs({ "done", "errors", "completed", "in_flight", "req_per_s" }) do
        sum[k] = sum[k] + (tonumber(p[k]) or 0)
      end
      for _, k in ipairs({ "ttft_p50_ms", "latency_p50_ms", "elapsed_s", "planned_s" }) do
        if util.present(p[k]) then
          sum[k] = math.max(sum[k] or 0, p[k])
        end
      end
      sum.finished = sum.finished and p.finished == true
    else
      sum.finished = false
    end
  end
  return sum.tasks > 0 and sum or nil
end

--- A progress snapshot (bench.run's on_progress) as the file's fields.
local function progress_fields(p)
  return {
    finished = false,
    elapsed_s = p.elapsed_s,
    planned_s = p.planned_s,
    planned_requests = p.planned_requests,
    done = (p.completed or 0) + (p.errors or 0),
    completed = p.completed,
    errors = p.errors,
    in_flight = p.in_flight,
    req_per_s = p.req_per_s,
    output_tokens_per_s = p.output_tokens_per_s,
    ttft_p50_ms = p.p50_ttft_ms,
    latency_p50_ms = p.p50_latency_ms,
  }
end

--- A client job's last progress (its job folder's progress.json), or nil
--- before it has written one (or when it cannot be read).
---@param dir string the job folder
---@return table?
function M.read_progress(dir, tasks)
  if tasks then
    return gang_progress(dir, tasks)
  end
  return read_json(fs.join(dir, M.PROGRESS_FILE))
end

--- A progress file's counts as text: "120 done, 0 errors, 20.0 req/s,
--- TTFT p50 45.2 ms, 6/30 s".
local function counts_text(p)
  local present = util.present
  local parts = { string.format("%d done", p.done or 0), string.format("%d errors", p.errors or 0), string.format("%.1f req/s", p.req_per_s or 0) }
  if present(p.ttft_p50_ms) then
    parts[#parts + 1] = string.format("TTFT p50 %.1f ms", p.ttft_p50_ms)
  elseif present(p.latency_p50_ms) then
    parts[#parts + 1] = string.format("E2E p50 %.1f ms", p.latency_p50_ms)
  end
  if p.finished then
    parts[#parts + 1] = "finished"
  elseif present(p.planned_s) then
    parts[#parts + 1] = string.format("%.0f/%.0f s", p.elapsed_s or 0, p.planned_s)
  elseif present(p.planned_requests) then
    parts[#parts + 1] = string.format("%d/%d requests", p.done or 0, p.planned_requests)
  end
  return table.concat(parts, ", ")
end

--- A client job's state in words: PENDING with SLURM's reason (and its
--- expected start, unless `short`: SLURM gives it some polls and not
--- others), RUNNING with its nodes, else the state.
local function state_text(m, short)
  if m.state == "PENDING" then
    return string.format("PENDING (%s%s)", m.reason or "no reason given", (m.expected_start and not short) and (", expected to start " .. m.expected_start) or "")
  elseif m.state == "RUNNING" then
    return "RUNNING on " .. (m.node or "?")
  end
  return tostring(m.state or "?")
end

--- Several jobs on one line: their states counted, their counts summed
--- (the TTFT p50 is the slowest instance's).
local function merged_line(metas, progress)
  local states, order = {}, {}
  local sum = { done = 0, errors = 0, req_per_s = 0 }
  local any, ttft = false, nil
  for _, m in ipairs(metas) do
    local st = m.state == "PENDING" and state_text(m, true) or tostring(m.state or "?")
    if not states[st] then
      order[#order + 1] = st
    end
    states[st] = (states[st] or 0) + 1
    local p = progress[m]
    if p then
      any = true
      sum.done, sum.errors, sum.req_per_s = sum.done + (p.done or 0), sum.errors + (p.errors or 0), sum.req_per_s + (p.req_per_s or 0)
      if util.present(p.ttft_p50_ms) then
        ttft = math.max(ttft or 0, p.ttft_p50_ms)
      end
    end
  end
  local parts = {}
  for _, st in ipairs(order) do
    parts[#parts + 1] = states[st] .. " " .. st
  end
  local line = string.format("%d client jobs: %s", #metas, table.concat(parts, ", "))
  if any then
    sum.ttft_p50_ms = ttft
    line = line .. ": " .. counts_text(sum)
  end
  return line
end

--- What `client run` shows while it waits for its client jobs, on stderr:
--- on a terminal one line updated in place (the job's state, then its live
--- counts; several jobs merged); else one line per job when its state
--- changes, and its counts every M.PROGRESS_EVERY_S seconds (the first as
--- soon as there are any).
local function watcher(metas, quiet)
  local env = require("aibench.env")
  local tty = env.is_terminal("stderr")
  local width = math.max(40, (env.terminal_columns("stderr") or tonumber(env.get("COLUMNS", "")) or 80) - 1)
  local shown_state, shown_counts_at, last_len = {}, {}, 0
  local w = {}
  local function progress_of()
    local progress = {}
    for _, m in ipairs(metas) do
      if m.state ~= "PENDING" then
        progress[m] = M.read_progress(m.dir, m.tasks)
      end
    end
    return progress
  end
  function w.show()
    if quiet then
      return
    end
    local progress = progress_of()
    if tty then
      local line
      if #metas == 1 then
        local m, p = metas[1], progress[metas[1]]
        line = string.format("client job %s %s%s", m.job_id, state_text(m), p and (": " .. counts_text(p)) or "")
      else
        line = merged_line(metas, progress)
      end
      line = require("aibench.report").clean(line)
      if utf8.len(line) and utf8.len(line) > width then
        line = line:sub(1, utf8.offset(line, width - 2) - 1) .. "..."
      end
      local n = utf8.len(line) or #line
      io.stderr:write("\r", line, string.rep(" ", math.max(0, last_len - n)))
      io.stderr:flush()
      last_len = n
      return
    end
    local now = time.monotonic()
    for i, m in ipairs(metas) do
      local who = string.format("client job %s%s", m.job_id, #metas > 1 and string.format(" (%d/%d)", i, #metas) or "")
      local st, p = state_text(m), progress[m]
      if shown_state[m] ~= state_text(m, true) then
        shown_state[m] = state_text(m, true)
        local final = p and deploy.is_final(m.state)
        io.stderr:write(who, " ", st, final and (": " .. counts_text(p)) or "", "\n")
        if final then
          shown_counts_at[m] = now
        end
      end
      if p and not deploy.is_final(m.state) and (not shown_counts_at[m] or now - shown_counts_at[m] >= M.PROGRESS_EVERY_S) then
        shown_counts_at[m] = now
        io.stderr:write(who, ": ", counts_text(p), "\n")
      end
    end
  end
  --- Ends the line drawn in place.
  function w.finish()
    if tty and last_len > 0 then
      io.stderr:write("\n")
      last_len = 0
    end
  end
  return w
end

--- Where a client job's results are: result.json, or one per task of a
--- gang job (result-<rank>.json).
local function result_pieces(m)
  if not m.tasks then
    return { { meta = m, path = fs.join(m.dir, "result.json") } }
  end
  local out = {}
  for rank = 0, m.tasks - 1 do
    out[#out + 1] = { meta = m, rank = rank, path = fs.join(m.dir, string.format("result-%d.json", rank)) }
  end
  return out
end

--- SLURM's word on a node ("down*", "idle"), or nil.
local function node_state(node)
  local ok, r = pcall(require("aibench.proc").run, { "sinfo", "-h", "-n", node, "-o", "%T" })
  local st = ok and r and r.stdout and r.stdout:match("^%s*(%S+)")
  return st
end

--- The lost parts of a run in words: which task, on which node (from the
--- barrier, where it got that far), the job's state and SLURM's view of the node.
local function lost_text(missing, total)
  local items = {}
  for _, piece in ipairs(missing) do
    local m = piece.meta
    local st = deploy.job(m):status()
    if piece.rank then
      local ready = read_json(fs.join(m.dir, "gang", string.format("ready-%d", piece.rank)))
      local node = ready and ready.host
      local nst = node and m.executor == "slurm" and node_state(node)
      items[#items + 1] = string.format("task %d of job %s (%s%s) left no result, job %s", piece.rank, m.job_id, node and ("on " .. node) or "its node unknown: it never reached the barrier", nst and (", node " .. nst) or "", tostring(st))
    else
      items[#items + 1] = string.format("client job %s left no result (%s)", m.job_id, tostring(st))
    end
  end
  return string.format("%d of %d client part(s) lost: %s; the figures cover the %d that reported", #missing, total, table.concat(items, "; "), total - #missing)
end

--- A gang job's tasks are told SIGTERM themselves (scancel --signal=TERM
--- reaches the steps, not the batch shell): a plain cancel would also reach
--- srun, which then SIGKILLs its tasks before they save. Waits (up to 60 s)
--- for those jobs to end on their own; what is left is cancelled after.
local function stop_gangs(metas)
  local gangs = {}
  for _, m in ipairs(metas) do
    if m.tasks and m.executor == "slurm" and not deploy.is_final(m.state or "") then
      gangs[#gangs + 1] = m
      pcall(require("aibench.proc").run, { "scancel", "--signal=TERM", m.job_id })
    end
  end
  local deadline = time.monotonic() + 60
  while #gangs > 0 and time.monotonic() < deadline do
    deploy.refresh(gangs)
    local left = {}
    for _, m in ipairs(gangs) do
      if not deploy.is_final(m.state or "") then
        left[#left + 1] = m
      end
    end
    gangs = left
    if #gangs > 0 then
      time.sleep(0.5)
    end
  end
end

--- Waits for client jobs and merges their results exactly, showing their
--- progress while it waits (`opts.progress == false`: quietly). On SIGINT or
--- SIGTERM (guard) the jobs are cancelled: each saves its partial result
--- on SIGTERM, and what they saved is merged and marked interrupted.
local function collect_jobs(metas, opts, guard)
  local deadline = time.monotonic() + (opts.timeout_s or 86400)
  local sig
  local watch = watcher(metas, opts.progress == false)
  while not sig do
    -- One query for every job (squeue once a second, not once per job);
    -- an executor that does not answer this time is asked again.
    local ok = deploy.refresh(metas)
    local running
    for _, m in ipairs(metas) do
      if not m.state or not deploy.is_final(m.state) then
        running = running or m
      end
    end
    if ok then
      watch.show()
    end
    if ok and not running then
      break
    end
    if time.monotonic() > deadline then
      watch.finish()
      local m = running or metas[1]
      return nil, { kind = "timeout", message = string.format("client job %s still %s after %d s", m.job_id, tostring(m.state), opts.timeout_s or 86400) }
    end
    sig = guard:sleep(1)
  end
  watch.finish()
  if sig then
    io.stderr:write(string.format("%s: cancelling %d client job(s); each saves its partial result\n", sig, #metas))
    deploy.refresh(metas)
    stop_gangs(metas)
    deploy.stop_metas(metas, { wait_s = 60 })
  end
  local parts, job_ids, missing = {}, {}, {}
  for _, m in ipairs(metas) do
    job_ids[#job_ids + 1] = m.job_id
    for _, piece in ipairs(result_pieces(m)) do
      local text = fs.read(piece.path)
      -- Read once into a result; one that cannot be read counts as missing.
      local ok, part = pcall(bench.result, text or "")
      if text and ok then
        parts[#parts + 1] = part
      else
        missing[#missing + 1] = piece
      end
    end
  end
  if #parts == 0 then
    local m = missing[1].meta
    local st = deploy.job(m):status()
    return nil, { kind = "failed", message = string.format("client job %s ended %s without a result\n%s", m.job_id, tostring(st), deploy.log_tail(m)) }
  end
  -- Flagged, not refused: the measurement is done and must be kept.
  local merged = #parts == 1 and parts[1] or bench.merge(parts, { allow_partial_overlap = true })
  if #missing > 0 then
    -- What survived is kept, and what was lost is named (also after a
    -- signal: a task stopped before it measured anything left no part).
    local why = lost_text(missing, #parts + #missing)
    merged:mark_incomplete(why)
    io.stderr:write("aibench: warning: incomplete: ", why, "\n")
  end
  if sig then
    -- The jobs stopped on their own SIGTERM; the run was interrupted by this one.
    merged:mark_interrupted(sig)
  end
  return merged, nil, job_ids
end

--- When a run was sending, on the server's side: from its first send
--- (warm-up included: the server counts those too) to its last completion;
--- for merged clients, from the first start to the last end. Falls back to
--- the command's own times where the result has no window.
local function server_window(res, started, finished)
  local o = res.overlap
  if util.present(o) and util.present(o.union_start_unix) and o.union_start_unix > 0 then
    return o.union_start_unix, o.union_end_unix
  end
  local t0, t1 = res.window_start_unix, res.window_end_unix
  if not (util.present(t0) and util.present(t1) and t1 > t0) then
    return started, finished
  end
  local origin = util.present(res.timeseries) and res.timeseries.origin_unix
  if util.present(origin) and origin > 0 and origin < t0 then
    t0 = origin
  end
  return t0, t1
end

local function is_loopback(host)
  return host == "localhost" or host:match("^127%.") ~= nil or host == "::1"
end

--- Warns when a URL is a loopback address and the cluster's nodes are not
--- this machine's loopback (a compute node's 127.0.0.1 is its own). Where
--- every node's address is a loopback one (a single-node cluster on a
--- laptop) the URL is right and nothing is said.
local function warn_loopback(urls)
  for _, u in ipairs(urls) do
    local host = u:match("^%a+://%[([^%]]+)%]") or u:match("^%a+://([^:/]+)") or ""
    if is_loopback(host) then
      local ok, r = pcall(require("aibench.proc").run, { "sinfo", "-h", "-N", "-o", "%o" })
      local remote = false
      for addr in (ok and r and r.stdout or ""):gmatch("%S+") do
        remote = remote or not is_loopback(addr)
      end
      if remote then
        io.stderr:write(string.format("aibench: warning: %s is a loopback address: a client job on a compute node reaches its own node there, not this one; give an address the nodes reach\n", u))
      end
      return
    end
  end
end

--- `client run`: discovers the service (checking its instances are alive),
--- runs the workload (`runs` times), saves each result and returns the list
--- of saved records. SIGINT or SIGTERM ends the run with its partial result
--- saved and marked interrupted. `detach` submits the client as jobs and
--- returns their metas at once (their results stay in their job folders).
---@param o {recipe: string, runs?: integer, executor?: string, set?: string[], url?: string, out_dir?: string, progress?: boolean, detach?: boolean}
function M.run(o)
  o = util.recipe_options(o, "client.run")
  local r, file = recipe.load("client", o.recipe, { set = o.set })
  local executor = deploy.executor_name(r, o.executor)
  local _, xerr = deploy.ready_executor(executor)
  if xerr then
    return nil, xerr
  end
  -- The recipe's mistakes first, before looking for a server.
  validate(M.spec(r, { o.url or "http://localhost:1" }), file, o.set)
  local urls, err = M.targets(r, o.url)
  if not urls then
    return nil, err
  end
  local spec = M.spec(r, urls)
  if executor == "slurm" then
    warn_loopback(urls)
  end
  local out_dir = o.out_dir or (r.output and r.output.dir) or "results"
  -- Found now, not after an hour of benchmarking.
  local okw, werr = fs.writable(fs.join(out_dir, ".aibench-results"))
  if not okw then
    return nil, { kind = "io", message = string.format("results folder '%s' cannot be written: %s", out_dir, werr.message) }
  end
  local instances = (r.orchestration and r.orchestration.instances) or 1
  local in_process = executor == "local" and instances == 1 and not o.detach
  local cache = {}
  if o.detach then
    local guard = aibench.guard()
    local metas, serr = submit_jobs(r, file, executor, spec, cache, guard)
    guard:release()
    return metas, serr
  end
  local saved = {}
  local hpc = require("aibench.hpc")
  local servermetrics = require("aibench.servermetrics")
  for run = 1, o.runs or 1 do
    local warnings = {}
    -- Enrichment (server metrics, accounting) never costs a measurement:
    -- its failures become warnings in the result.
    local function enrich(what, f, ...)
      local ok, v = pcall(f, ...)
      if ok then
        return v
      end
      warnings[#warnings + 1] = string.format("%s failed: %s", what, aibench.error_message(v))
      return nil
    end
    local hpc_start = enrich("HPC accounting (start)", hpc.start, r.service_name, urls)
    local before = enrich("server metrics (before the run)", servermetrics.before, urls)
    local started = time.now()
    local res, rerr, job_ids
    local id = results.new_id()
    if in_process then
      res, rerr = run_local(spec, file, { progress = o.progress, per_request_log = (r.output and r.output.per_request_log) and results.log_path(out_dir, r.name, id) or nil })
    else
      local guard = aibench.guard()
      local metas, serr = submit_jobs(r, file, executor, spec, cache, guard)
      if not metas then
        guard:release()
        return nil, serr
      end
      res, rerr, job_ids = collect_jobs(metas, o, guard)
      guard:release()
    end
    if not res then
      return nil, rerr
    end
    local finished = time.now()
    -- The measurement is written first, as it is; enrichment rewrites it.
    local record = results.record({
      id = id,
      recipe = r,
      recipe_file = file,
      executor = executor,
      job_ids = job_ids,
      urls = urls,
      bench = res,
      run = run,
      runs = o.runs or 1,
    })
    local path, perr = results.save(record, out_dir)
    if not path then
      return nil, perr
    end
    record.path = path
    -- Saved, but in the rescue place (its own folder could not take it).
    record.rescued = perr and perr.message or nil
    -- The server's rates and charts over the run's own sending window, not
    -- the command's (queue time, start-up, the barrier are not load).
    local w0, w1 = server_window(res, started, finished)
    local server = before and enrich("server metrics", servermetrics.after, before, urls, w0, w1)
    record.server = server or json.null
    record.hpc = enrich("HPC accounting", hpc.collect, { started = hpc_start, job_ids = executor == "slurm" and job_ids or nil, bench = res, server = server }) or json.null
    if #warnings > 0 then
      record.warnings = warnings
      local clean, paint = require("aibench.report").clean, require("aibench.report.format").paint
      for _, w in ipairs(warnings) do
        io.stderr:write(paint("aibench: warning: " .. clean(w), "stderr"), "\n")
      end
    end
    local epath, eerr = results.save(record, out_dir)
    if not epath then
      io.stderr:write(string.format("aibench: warning: the enriched result could not be written (%s); %s holds the measurement\n", eerr.message, path))
    elseif epath ~= path then
      record.path = epath
    end
    saved[#saved + 1] = record
    if res.interrupted then
      break
    end
  end
  return saved
end

--- Client jobs (submitted by `client run --detach` or on an executor):
--- active ones, or all with `opts.all`, with their state.
---@param opts? {all?: boolean}
function M.list(opts)
  return deploy.list("client", opts)
end

--- Test hook: AIBENCH_TEST_GANG_HOLD="RANK:SECONDS" holds one task of a
--- gang back after the barrier (a staggered start, to see it flagged).
local function hold_for(rank)
  local v = require("aibench.env").get("AIBENCH_TEST_GANG_HOLD", "")
  local r, secs = v:match("^(%d+):([%d.]+)$")
  return (r and tonumber(r) == rank) and tonumber(secs) or nil
end

--- Test hook: AIBENCH_TEST_GANG_CRASH="RANK" makes that task of a gang exit
--- at once before the barrier, saying nothing (as a task the OOM killer
--- took would), to see its agent tell the others.
local function crash_now(rank)
  if require("aibench.env").get("AIBENCH_TEST_GANG_CRASH", "") == tostring(rank) then
    os.exit(137)
  end
end

--- This task's place in a gang: --rank/--size, else SLURM's task id and count.
local function gang_place(g)
  local env = require("aibench.env")
  local rank = g.rank or tonumber(env.get("SLURM_PROCID", ""))
  local size = g.size or tonumber(env.get("SLURM_NTASKS", ""))
  if not rank or not size then
    error("job-client --gang: no rank or size: pass --rank and --size, or run under srun (SLURM_PROCID, SLURM_NTASKS)", 0)
  end
  return rank, size
end

--- Inside a client job: run the spec, write the result (also a partial one
--- after SIGTERM: the early warning before the time limit, or scancel).
--- With `g` (`{dir, rank?, size?}`), one task of a gang: `{rank}` in the
--- paths is this task's rank, and it starts with the others (bench.run's
--- `gang`). Returns the result.
function M.exec(spec_path, out_path, g)
  local gang, progress_path
  if g and g.dir then
    local rank, size = gang_place(g)
    -- One folder for all tasks (a SLURM gang job: paths with {rank}) or a
    -- folder each (local jobs): the progress file's name follows.
    local shared = out_path:find("{rank}", 1, true) ~= nil
    spec_path = spec_path:gsub("{rank}", tostring(rank))
    out_path = out_path:gsub("{rank}", tostring(rank))
    gang = { dir = g.dir, rank = rank, size = size, hold_s = hold_for(rank) }
    progress_path = shared and task_progress_path(fs.dirname(out_path), rank) or fs.join(fs.dirname(out_path), M.PROGRESS_FILE)
  else
    progress_path = fs.join(fs.dirname(out_path), M.PROGRESS_FILE)
  end
  -- The job folder's spec, validated here once (the submitting side wrote
  -- it from a validated spec; the file may have been edited since). A task
  -- of a gang that cannot start says so at the barrier, so the others do
  -- not wait for it (bench.run does the same for what fails in the run).
  local ok, spec = pcall(function()
    return validate(assert(fs.read(spec_path)), spec_path)
  end)
  if not ok then
    if gang then
      pcall(fs.mkdir, gang.dir)
      pcall(fs.write, fs.join(gang.dir, string.format("failed-%d", gang.rank)), aibench.error_message(spec))
    end
    error(spec, 0)
  end
  if gang then
    crash_now(gang.rank)
  end
  -- Progress for the submitting side: progress.json beside the result.
  local last = {}
  local res, err = bench.run(spec, {
    progress = false,
    gang = gang,
    on_progress = function(p)
      last = progress_fields(p)
      write_progress(progress_path, last)
    end,
  })
  if not res then
    error(err.message, 0)
  end
  -- The measurement first; the progress file's last word after it.
  local where, werr = results.write(out_path, bench.to_json(res) .. "\n", { mode = tonumber("600", 8) })
  -- The last word: every field of a snapshot (the plan from the last one),
  -- the figures from the result.
  write_progress(progress_path, util.merge(last, {
    finished = true,
    elapsed_s = res.duration_s,
    done = res.total_requests,
    completed = res.successes,
    errors = res.errors,
    in_flight = 0,
    req_per_s = res.throughput_req_per_sec,
    output_tokens_per_s = util.present(res.tokens) and res.tokens.output_per_s or nil,
    ttft_p50_ms = util.present(res.ttft_ms) and res.ttft_ms.p50 or nil,
    latency_p50_ms = util.present(res.latency_ms) and res.latency_ms.p50 or nil,
  }))
  if not where then
    error(string.format("cannot write the result to %s: %s", out_path, werr.message), 0)
  end
  if werr then
    -- The caller looks for it at out_path: say where it is instead.
    error(string.format("cannot write the result to %s (%s); it was saved at %s", out_path, werr.message, where), 0)
  end
  return res
end

return M
