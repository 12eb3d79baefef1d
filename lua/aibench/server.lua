--- The server manager (the MeluXina report's Server module): deploy recipes as jobs on
--- the local or SLURM executor, wait until each instance is healthy and
--- registered, list, stop. The lifecycle itself is aibench.deploy's.
local aibench = require("aibench")
local fs = require("aibench.fs")
local json = require("aibench.json")
local recipe = require("aibench.recipe")
local deploy = require("aibench.deploy")
local launchers = require("aibench.launchers")

local util = require("aibench.util")
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

--- Builds everything a deployment needs without submitting it; raises on a
--- job spec the executor would refuse (naming the recipe file and field).
--- `opts.defaults`: the SLURM site defaults (deploy.site_defaults), if read already.
---@return table spec job spec, table files {path = text}, table meta
--- Where GPU metrics come from for a server recipe: "off" unless it asks
--- for GPUs, else monitoring.gpu (default "auto": dcgm-exporter where
--- installed, else NVML).
function M.gpu_mode(r)
  local res = (r.orchestration and r.orchestration.resources) or {}
  if (res.gpu_count or 0) <= 0 then
    return "off"
  end
  return (r.monitoring and r.monitoring.gpu) or "auto"
end

function M.prepare(r, file, executor, opts)
  local nodes = launchers.check(r, file, executor)
  local dir, instance_id = deploy.new_job_dir(r.name)
  local service = r.service
  local node_script, cluster = launchers.node_script(r, file, dir, nodes)
  local health = service.health and { path = service.health.path or "/health", timeout_s = service.health.timeout_s or 300 }
  local agent = {
    service = r.service_name,
    recipe_name = r.name,
    instance_id = instance_id,
    executor = executor,
    ports = ports_of(service),
    health = health or json.null,
    time_limit_s = executor == "local" and deploy.time_limit_s(r) or json.null,
    home = aibench.home(),
    script = fs.join(dir, "service.sh"),
    aibench = aibench.exe(),
    extra = { metrics_path = service.metrics_path or "/metrics", health_path = health and health.path or nil, recipe_file = file },
    -- The agent's endpoint: the service's process group, and its GPUs when
    -- the recipe asks for any (monitoring.gpu: auto, dcgm, nvml or off).
    metrics = { gpu = M.gpu_mode(r), gpu_from_file = r.monitoring and r.monitoring.gpu_from_file and fs.abspath(r.monitoring.gpu_from_file) or nil },
    cluster = cluster,
  }
  local command = deploy.agent_command(dir, service)
  command[#command + 1] = "bash"
  command[#command + 1] = fs.join(dir, "service.sh")
  local comment = "server recipe " .. r.name .. " (" .. file .. ")"
  if nodes > 1 then
    comment = comment .. string.format(", %d nodes (launcher %s)", nodes, service.launcher)
  end
  local spec = deploy.job_spec(r, executor, "aibench-" .. r.name, dir, command, comment, opts.defaults)
  if nodes > 1 then
    -- One srun step of one agent per node; a part that ends ends the rest.
    spec.resources.nodes = nodes
    spec.tasks = nodes
    spec.whole = true
  end
  deploy.check_job_spec(spec, file, r)
  local files = {
    [fs.join(dir, "service.sh")] = node_script or ("#!/bin/bash\n# service.command of " .. file .. "\n" .. service.command),
    [fs.join(dir, "agent.json")] = require("aibench.agent").encode(agent),
  }
  local meta = {
    kind = opts.kind or "server",
    recipe = r.name,
    recipe_file = file,
    service = r.service_name,
    instance_id = instance_id,
    executor = executor,
    dir = dir,
    nodes = nodes > 1 and nodes or nil,
    launcher = nodes > 1 and service.launcher or nil,
  }
  return spec, files, meta
end

--- Submits one deployment; returns its meta (with job_id) or nil, err.
function M.submit(spec, files, meta)
  local ok, err = deploy.write_files(files)
  if not ok then
    return nil, err
  end
  return deploy.submit(spec, meta)
end

--- `server run`: deploys `count` instances of a recipe and waits until each
--- is registered. SIGINT or SIGTERM while it submits or waits cancels what
--- it submitted (nil, err with kind "interrupted"); `detach` returns right
--- after submitting.
---@param o {recipe: string, count?: integer, executor?: string, set?: string[], dry_run?: boolean, timeout_s?: number, quiet?: boolean, detach?: boolean}
---@return table? deployments
---@return table? err
function M.run(o)
  o = util.recipe_options(o, "server.run")
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
  local guard = aibench.guard()
  local metas = {}
  for _, p in ipairs(prepared) do
    local m, err = M.submit(p.spec, p.files, p.meta)
    if not m then
      -- Nothing half-registered: cancel what this call already started.
      deploy.cancel_all(metas)
      guard:release()
      return nil, err
    end
    metas[#metas + 1] = m
    if not o.quiet then
      io.stderr:write(string.format("submitted %s instance %s as %s job %s\n", r.name, m.instance_id, executor, m.job_id))
    end
    if guard:signal() then
      break
    end
  end
  if o.detach and not guard:signal() then
    guard:release()
    deploy.refresh(metas)
    return metas
  end
  local ready, failed, sig = deploy.wait(metas, o.timeout_s or 600, guard)
  guard:release()
  if sig then
    return nil, deploy.interrupted(sig, metas)
  end
  if #failed > 0 then
    local lines = {}
    for _, m in ipairs(failed) do
      lines[#lines + 1] = string.format("instance %s: %s\n%s", m.instance_id, m.why, deploy.log_tail(m))
      deploy.abandon(m)
    end
    return nil, { kind = "failed", message = table.concat(lines, "\n"), ready = ready, failed = failed }
  end
  return ready
end

--- Active (non-final) server deployments with their state and registry entry.
function M.list(opts)
  return deploy.list("server", opts)
end

--- Stops one deployment (by instance id, job id or folder) and removes its registry entry.
function M.stop(id, opts)
  return deploy.stop("server", id, opts)
end

--- Stops every active server deployment.
function M.stop_all(opts)
  return deploy.stop_all("server", opts)
end

M.stop_metas = deploy.stop_metas

return M
