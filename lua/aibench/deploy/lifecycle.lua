--- The deployment lifecycle: submit a job, ask the executors for the state
--- of many jobs at once, wait until deployments are registered (healthy),
--- give up on them, stop them, list them; Ctrl-C and SIGTERM cancel what a
--- command submitted.
local aibench = require("aibench")
local fs = require("aibench.fs")
local json = require("aibench.json")
local time = require("aibench.time")
local registry = require("aibench.registry")
local executors = require("aibench.deploy.executors")
local store = require("aibench.deploy.store")
local util = require("aibench.util")

local executor, is_final = executors.executor, executors.is_final

local M = {}

--- The job handle for a meta.
function M.job(m)
  return executor(m.executor).job(m.job_id, m.dir)
end

-- The methods of a deployment (a meta that server.run, monitor.start and
-- client.run with detach return, and that the lists give): `d:stop()`.
local Deployment = {}
Deployment.__index = Deployment

--- Stops this deployment's job and removes its registry entry.
Deployment.stop = util.method("stop", function(self, opts)
  M.refresh({ self })
  return M.stop_metas({ self }, opts)
end)

--- Gives a meta the deployment methods (a metatable: its fields, and so
--- its meta.json, stay as they are); returns it.
function M.handle(m)
  if getmetatable(m) == nil then
    setmetatable(m, Deployment)
  end
  return m
end

--- Submits a job spec on the meta's executor, then stamps the meta with the
--- job id and submission time and writes it. `stamp(meta)`, if given, adds
--- fields just before the write. On failure the job folder is removed and
--- nil, err returned.
function M.submit(spec, meta, stamp)
  local job, err = executor(meta.executor).submit(spec)
  if not job then
    fs.remove(meta.dir, { recursive = true })
    return nil, err
  end
  meta.job_id = job.id
  meta.submitted_at = time.format()
  if stamp then
    stamp(meta)
  end
  store.write_meta(meta.dir, meta)
  return M.handle(meta)
end

--- Cancels the jobs of these metas (what a command already submitted when a
--- later submission failed).
function M.cancel_all(metas)
  for _, m in ipairs(metas) do
    M.job(m):cancel()
  end
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
    local states, err = executor(name).statuses(ids)
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

--- Refreshes the entries ({executor, job_id}, as in the registry) whose
--- executor this aibench knows; the others cannot be asked, and get
--- `unknown_state` as their state when it is given (else they are left as
--- they are). Returns the entries refreshed, or nil, err as M.refresh.
function M.refresh_known(entries, unknown_state)
  local known = {}
  for _, e in ipairs(entries) do
    if executors.executors[e.executor] then
      known[#known + 1] = e
    elseif unknown_state then
      e.state = unknown_state
    end
  end
  local _, err = M.refresh(known)
  if err then
    return nil, err
  end
  return known
end

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
  local pending = util.copy(metas)
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
      elseif is_final(m.state) then
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
  if not is_final(m.state) then
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
    store.write_meta(m.dir, m)
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
  local metas = store.all(kind)
  local _, err = M.refresh(metas)
  if err then
    return nil, err
  end
  local out = {}
  for _, m in ipairs(metas) do
    if opts.all or not is_final(m.state) then
      m.instance = m.service and M.registered(m.service, m.instance_id) or nil
      out[#out + 1] = M.handle(m)
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
    if not is_final(m.state) or m.executor == "local" then
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
    store.write_meta(m.dir, m)
  end
  M.refresh(stopped)
  return stopped
end

--- Stops one deployment of a kind (by instance id, job id or folder).
function M.stop(kind, id, opts)
  local m, err = store.find(kind, id)
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

--- The parts of a multi-node deployment that failed (their agents' own
--- `nodes/failed-<rank>.json`), first failure first: {rank, node,
--- exit_code, why, at}.
function M.failed_parts(m)
  local out = {}
  if not m.nodes then
    return out
  end
  for rank = 0, m.nodes - 1 do
    local text = fs.read(fs.join(m.dir, "nodes", "failed-" .. rank .. ".json"))
    local ok, v = pcall(json.decode, text or "")
    if text and ok and type(v) == "table" then
      out[#out + 1] = v
    end
  end
  table.sort(out, function(a, b)
    return tostring(a.at) < tostring(b.at)
  end)
  return out
end

local function indent(text)
  return "  | " .. text:gsub("\n", "\n  | ")
end

--- The last lines of a job's log, indented, for error messages. For a
--- deployment on several nodes: each failed part (node, exit status, why)
--- with the last lines of its own output (srun labels them by rank).
function M.log_tail(m, n)
  n = n or 15
  local failed = M.failed_parts(m)
  if #failed > 0 then
    local text = M.job(m):logs({ tail = 4000 }) or ""
    local out = {}
    for _, f in ipairs(failed) do
      local mine = {}
      local label = "^%s*" .. tostring(f.rank) .. ": "
      for line in text:gmatch("[^\n]+") do
        if line:find(label) then
          mine[#mine + 1] = line
        end
      end
      local tail = table.concat(mine, "\n", math.max(1, #mine - n + 1))
      out[#out + 1] = string.format("  node %s (rank %s of %d) failed%s: %s\n%s", tostring(f.node), tostring(f.rank), m.nodes,
        f.exit_code ~= nil and f.exit_code ~= json.null and (" with exit status " .. tostring(f.exit_code)) or "",
        tostring(f.why), tail ~= "" and indent(tail) or "  (no output from this node in " .. fs.join(m.dir, "job.log") .. ")")
    end
    return table.concat(out, "\n")
  end
  local text = M.job(m):logs({ tail = n }) or ""
  if text == "" then
    return "  (the job log is empty: " .. fs.join(m.dir, "job.log") .. ")"
  end
  return indent(text)
end

return M
