--- The server manager (the seed's Server module): deploy recipes as jobs on
--- the local or SLURM executor, wait until each instance is healthy and
--- registered, list, stop.
local aibench = require("aibench")
local fs = require("aibench.fs")
local json = require("aibench.json")
local time = require("aibench.time")
local registry = require("aibench.registry")
local recipe = require("aibench.recipe")
local deploy = require("aibench.deploy")

local M = {}

local function ports_of(service)
  if service.ports then
    return service.ports
  end
  if service.port ~= nil then
    return { service.port == 0 and "auto" or service.port }
  end
  return { "auto" }
end

--- Builds everything a deployment needs without submitting it.
--- `opts.defaults`: the SLURM site defaults (deploy.site_defaults), if read already.
---@return table spec job spec, table files {path = text}, table meta
function M.prepare(r, file, executor, opts)
  local dir, instance_id = deploy.new_job_dir(r.name)
  local service = r.service
  local agent = {
    service = r.service_name,
    recipe_name = r.name,
    instance_id = instance_id,
    executor = executor,
    ports = ports_of(service),
    health = service.health and { path = service.health.path or "/health", timeout_s = service.health.timeout_s or 300 } or json.null,
    time_limit_s = executor == "local" and deploy.time_limit_s(r) or json.null,
    home = aibench.home(),
    script = fs.join(dir, "service.sh"),
    aibench = aibench.exe(),
    extra = { metrics_path = service.metrics_path or "/metrics", recipe_file = file },
  }
  local command = deploy.agent_command(dir, service)
  command[#command + 1] = "bash"
  command[#command + 1] = fs.join(dir, "service.sh")
  local spec = deploy.job_spec(r, executor, "aibench-" .. r.name, dir, command, "server recipe " .. r.name .. " (" .. file .. ")", opts.defaults)
  local files = {
    [fs.join(dir, "service.sh")] = "#!/bin/bash\n# service.command of " .. file .. "\n" .. service.command,
    [fs.join(dir, "agent.json")] = json.encode(agent, { pretty = true }) .. "\n",
  }
  local meta = {
    kind = opts.kind or "server",
    recipe = r.name,
    recipe_file = file,
    service = r.service_name,
    instance_id = instance_id,
    executor = executor,
    dir = dir,
  }
  return spec, files, meta
end

--- Submits one deployment; returns its meta (with job_id) or nil, err.
function M.submit(spec, files, meta)
  local ok, err = deploy.write_files(files, tonumber("700", 8))
  if not ok then
    return nil, err
  end
  return deploy.submit(spec, meta)
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
--- Returns ok list and failed list (meta with `why`).
function M.wait(metas, timeout_s, on_event)
  local deadline = time.monotonic() + (timeout_s or 600)
  local pending = {}
  for _, m in ipairs(metas) do
    pending[#pending + 1] = m
  end
  local ready, failed = {}, {}
  while #pending > 0 do
    local _, err = deploy.refresh(pending)
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
        if on_event then
          on_event("ready", m)
        end
      elseif deploy.is_final(m.state) then
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
      time.sleep(0.3)
    end
  end
  return ready, failed
end

--- Gives up on a deployment that failed to come up: its job is stopped if
--- it still runs, and nothing of it stays registered.
function M.abandon(m)
  if not deploy.is_final(m.state) then
    deploy.job(m):cancel()
  end
  registry.deregister(m.service, m.instance_id)
end

--- `server run`: deploys `count` instances of a recipe.
---@param o {recipe: string, count?: integer, executor?: string, set?: string[], dry_run?: boolean, timeout_s?: number, quiet?: boolean}
---@return table? deployments
---@return table? err
function M.run(o)
  local r, file = recipe.load("server", o.recipe, { set = o.set })
  local executor = deploy.executor_name(r, o.executor)
  local ex = deploy.executor(executor)
  local count = o.count or 1
  if count < 1 then
    error("--count: expected a positive number, got " .. tostring(count), 0)
  end
  local defaults = deploy.site_defaults(executor)
  local prepared = {}
  for i = 1, count do
    local spec, files, meta = M.prepare(r, file, executor, { defaults = defaults })
    prepared[i] = { spec = spec, files = files, meta = meta }
  end
  if o.dry_run then
    local scripts = {}
    for i, p in ipairs(prepared) do
      scripts[i] = { script = ex.render(p.spec), files = p.files, meta = p.meta }
    end
    return { dry_run = true, scripts = scripts }
  end
  local _, xerr = deploy.ready_executor(executor)
  if xerr then
    return nil, xerr
  end
  local metas = {}
  for _, p in ipairs(prepared) do
    local m, err = M.submit(p.spec, p.files, p.meta)
    if not m then
      -- Nothing half-registered: cancel what this call already started.
      deploy.cancel_all(metas)
      return nil, err
    end
    metas[#metas + 1] = m
    if not o.quiet then
      io.stderr:write(string.format("submitted %s instance %s as %s job %s\n", r.name, m.instance_id, executor, m.job_id))
    end
  end
  local ready, failed = M.wait(metas, o.timeout_s or 600)
  if #failed > 0 then
    local lines = {}
    for _, m in ipairs(failed) do
      lines[#lines + 1] = string.format("instance %s: %s\n%s", m.instance_id, m.why, deploy.log_tail(m))
      M.abandon(m)
    end
    return nil, { kind = "failed", message = table.concat(lines, "\n"), ready = ready, failed = failed }
  end
  return ready
end

--- Active (non-final) server deployments with their state and registry entry.
function M.list(opts)
  opts = opts or {}
  local metas = deploy.all(opts.kind or "server")
  local _, err = deploy.refresh(metas)
  if err then
    return nil, err
  end
  local out = {}
  for _, m in ipairs(metas) do
    if opts.all or not deploy.is_final(m.state) then
      m.instance = M.registered(m.service, m.instance_id)
      out[#out + 1] = m
    end
  end
  return out
end

--- Stops one deployment (by instance id, job id or folder) and removes its registry entry.
function M.stop(id, opts)
  opts = opts or {}
  local m, err = deploy.find(opts.kind or "server", id)
  if not m then
    return nil, err
  end
  deploy.refresh({ m })
  return M.stop_metas({ m }, opts)
end

--- Cancels jobs, waits for them to end, removes their registry entries.
--- The metas' states must be current (deploy.refresh): jobs in a final
--- state are not cancelled.
function M.stop_metas(metas, opts)
  opts = opts or {}
  local stopped = {}
  for _, m in ipairs(metas) do
    if not deploy.is_final(m.state) then
      local ok, err = deploy.job(m):cancel()
      if not ok then
        return nil, err
      end
    end
    stopped[#stopped + 1] = m
  end
  for _, m in ipairs(stopped) do
    deploy.job(m):wait({ timeout_s = opts.wait_s or 45, poll_s = 0.3 })
    if m.service then
      registry.deregister(m.service, m.instance_id)
    end
    m.stopped_at = time.format()
    deploy.write_meta(m.dir, m)
  end
  deploy.refresh(stopped)
  return stopped
end

--- Stops every active deployment of a kind.
function M.stop_all(opts)
  opts = opts or {}
  -- M.list has just refreshed their states.
  local active, err = M.list({ kind = opts.kind or "server" })
  if not active then
    return nil, err
  end
  return M.stop_metas(active, opts)
end

return M
