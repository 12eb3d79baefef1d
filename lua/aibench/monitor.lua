--- The monitor manager (the MeluXina report's Monitor module): Prometheus as a
--- job whose scrape targets follow the discovery registry, its status and
--- export. The parts: aibench.monitor.config (prometheus.yml, targets,
--- alerts), aibench.monitor.job (inside the job), aibench.monitor.export.
local aibench = require("aibench")
local fs = require("aibench.fs")
local json = require("aibench.json")
local time = require("aibench.time")
local env = require("aibench.env")
local prom = require("aibench.prom")
local registry = require("aibench.registry")
local recipe = require("aibench.recipe")
local deploy = require("aibench.deploy")
local config = require("aibench.monitor.config")
local util = require("aibench.util")

local M = {}

M.DEFAULTS = config.DEFAULTS
M.targets_for, M.sync_targets, M.config, M.runtime = config.targets_for, config.sync_targets, config.config, config.runtime
M.queries, M.kind_of = require("aibench.metricsets").queries, require("aibench.metricsets").kind_of

-- Deployment ---------------------------------------------------------------------------

--- `monitor start`: deploys Prometheus for a monitor recipe and waits until
--- it is ready. SIGINT or SIGTERM meanwhile cancels it (nil, err with kind
--- "interrupted"); `detach` returns right after submitting.
---@param o {recipe: string, executor?: string, set?: string[], timeout_s?: number, quiet?: boolean, detach?: boolean}
function M.start(o)
  o = util.recipe_options(o, "monitor.start")
  local r, file = recipe.load("monitor", o.recipe, { set = o.set })
  for i, tg in ipairs(r.targets) do
    if not registry.list(tg.service) then
      error(string.format("%s: targets[%d].service: '%s' is not a valid service name", file, i, tg.service), 0)
    end
  end
  local p = r.prometheus or {}
  for _, f in ipairs({ "scrape_interval", "evaluation_interval", "refresh_interval" }) do
    if p[f] and not prom.valid_duration(p[f]) then
      error(string.format("%s: prometheus.%s: expected a Prometheus duration like 15s or 1m, got \"%s\"", file, f, p[f]), 0)
    end
  end
  if p.retention_time and not prom.valid_duration(p.retention_time) then
    error(string.format("%s: prometheus.retention_time: expected a duration like 24h, got \"%s\"", file, p.retention_time), 0)
  end
  local rt = config.runtime(r)
  local executor = deploy.executor_name(r, o.executor)
  local ok, xerr = deploy.ready_executor(executor)
  if not ok then
    return nil, xerr
  end
  local dir, instance_id = deploy.new_job_dir(r.name)
  local cfg, rules = config.config(r, dir)
  local spec = {
    recipe = r.name,
    dir = dir,
    targets = r.targets,
    refresh_s = 2,
    retention_time = p.retention_time or M.DEFAULTS.retention_time,
    runtime = rt,
  }
  local files = {
    [fs.join(dir, "prometheus.yml")] = cfg,
    [fs.join(dir, "monitor.json")] = json.encode(spec, { pretty = true }) .. "\n",
    [fs.join(dir, "agent.json")] = require("aibench.agent").encode({
      service = r.name .. "-prometheus",
      recipe_name = r.name,
      instance_id = instance_id,
      executor = executor,
      ports = { p.port or M.DEFAULTS.port },
      health = { path = "/-/ready", timeout_s = 120 },
      home = aibench.home(),
      extra = { kind = "monitor", monitor_id = instance_id, targets = r.targets },
    }),
  }
  if rules then
    files[fs.join(dir, "alerts.yml")] = rules
  end
  local command = deploy.agent_command(dir, nil)
  for _, a in ipairs({ aibench.exe(), "job-monitor", fs.join(dir, "monitor.json") }) do
    command[#command + 1] = a
  end
  local res = util.merge({ partition = nil, cpu_cores = M.DEFAULTS.cpu_cores, memory_gb = M.DEFAULTS.memory_gb }, p.resources or (r.orchestration and r.orchestration.resources))
  local jr = { orchestration = { resources = res, sbatch_args = r.orchestration and r.orchestration.sbatch_args } }
  local jspec = deploy.job_spec(jr, executor, "aibench-" .. r.name, dir, command, "monitor recipe " .. r.name .. " (" .. file .. ")")
  deploy.check_job_spec(jspec, file, jr)
  assert(deploy.write_files(files))
  config.sync_targets(dir, r.targets)
  local meta = { kind = "monitor", recipe = r.name, recipe_file = file, service = r.name .. "-prometheus", instance_id = instance_id, executor = executor, dir = dir }
  local guard = aibench.guard()
  local submitted, err = deploy.submit(jspec, meta, function(sm)
    sm.started_unix = time.now()
    sm.scrape_interval = p.scrape_interval or M.DEFAULTS.scrape_interval
    sm.targets = r.targets
  end)
  if not submitted then
    guard:release()
    return nil, err
  end
  if o.detach and not guard:signal() then
    guard:release()
    deploy.refresh({ meta })
    return meta
  end
  local ready, failed, sig = deploy.wait({ meta }, o.timeout_s or 180, guard)
  guard:release()
  if sig then
    return nil, deploy.interrupted(sig, { meta })
  end
  if #failed > 0 then
    local m = failed[1]
    deploy.abandon(m)
    return nil, { kind = "failed", message = string.format("Prometheus did not start: %s\n%s", m.why, deploy.log_tail(m)) }
  end
  local m = ready[1]
  m.url = m.instance.url
  deploy.write_meta(m.dir, m)
  return m
end

--- The line a user runs on a laptop to reach the UI.
function M.ssh_line(m)
  local user = env.get("USER") or "user"
  local port = m.instance and m.instance.ports[1] or 9090
  return string.format("ssh -L %d:%s:%d %s@%s", port, m.instance and m.instance.host or m.node or "NODE", port, user, aibench.hostname())
end

--- Inside the job: run Prometheus and keep the target files current.
function M.job_main(spec_path)
  return require("aibench.monitor.job").main(spec_path)
end

--- Running monitors (registered and not finished).
function M.list(opts)
  return deploy.list("monitor", opts)
end

--- Gives a monitor's meta (state and registry entry current) its Prometheus
--- client; not_running when it has no URL or its job ended.
local function connect(m)
  local url = m.instance and m.instance.url or m.url
  if not url or deploy.is_final(m.state) then
    return nil, { kind = "not_running", message = string.format("monitor %s is not running (job %s is %s)", m.instance_id, m.job_id, tostring(m.state)) }
  end
  m.client = prom.client(url)
  return m
end

--- One monitor by id, with its Prometheus client.
function M.get(id)
  local m, err = deploy.find("monitor", id)
  if not m then
    return nil, err
  end
  deploy.refresh({ m })
  m.instance = deploy.registered(m.service, m.instance_id) or m.instance
  return connect(m)
end

--- Targets and firing alerts of a monitor, by id or by a meta from M.list
--- (already refreshed: not looked up again).
---@param id string|table
function M.status(id)
  local m, err
  if type(id) == "table" then
    m, err = connect(id)
  else
    m, err = M.get(id)
  end
  if not m then
    return nil, err
  end
  local targets, terr = m.client:targets()
  if not targets then
    return nil, terr
  end
  local alerts = m.client:alerts() or {}
  return { monitor = m, targets = targets, alerts = alerts }
end

function M.stop(id)
  return deploy.stop("monitor", id)
end

function M.stop_all()
  return deploy.stop_all("monitor")
end

-- Export -------------------------------------------------------------------------

--- `monitor export`: the service's query set, instant or over a range.
---@param o {id: string, format?: "json"|"csv", type?: "instant"|"range", start?: string|number, ["end"]?: string|number, step?: string|number}
---@return string? text
---@return table? err
function M.export(o)
  local m, err = M.get(o.id)
  if not m then
    return nil, err
  end
  return require("aibench.monitor.export").export(m, o)
end

--- When Prometheus last scraped a target (its `lastScrape`, RFC 3339), or
--- nil before the first scrape: Prometheus gives the zero time (year 1)
--- until then.
---@param target table an entry of Prometheus's /api/v1/targets activeTargets
---@return string?
function M.last_scrape(target)
  local t = type(target) == "table" and target.lastScrape or nil
  if type(t) ~= "string" or t == "" or t:sub(1, 5) == "0001-" then
    return nil
  end
  return t
end

--- When Prometheus last scraped a target, or "not scraped yet".
---@param target table an entry of Prometheus's /api/v1/targets activeTargets
---@return string
function M.scrape_time(target)
  return M.last_scrape(target) or "not scraped yet"
end

return M
