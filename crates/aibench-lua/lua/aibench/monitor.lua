--- The monitor manager (the seed's Monitor module): Prometheus as a job whose
--- scrape targets follow the discovery registry (file_sd target files kept
--- current by the job itself), metric export, alert rules, and the server
--- section of benchmark results.
local aibench = require("aibench")
local fs = require("aibench.fs")
local json = require("aibench.json")
local yaml = require("aibench.yaml")
local time = require("aibench.time")
local proc = require("aibench.proc")
local env = require("aibench.env")
local prom = require("aibench.prom")
local registry = require("aibench.registry")
local recipe = require("aibench.recipe")
local deploy = require("aibench.deploy")
local servermetrics = require("aibench.servermetrics")

local M = {}

M.DEFAULTS = { scrape_interval = "15s", retention_time = "24h", port = "auto", refresh_interval = "5s", cpu_cores = 2, memory_gb = 4 }

-- Query sets --------------------------------------------------------------------

--- PromQL for a histogram quantile, trying each metric name in turn (vLLM
--- renamed some between versions; `or` keeps whichever exists).
local function hq(q, names, window)
  local parts = {}
  for i, n in ipairs(names) do
    parts[i] = string.format("histogram_quantile(%s, sum by (le) (rate(%s_bucket[%s])))", q, n, window)
  end
  return table.concat(parts, " or ")
end

local function alias(names, fn)
  local parts = {}
  for i, n in ipairs(names) do
    parts[i] = fn(n)
  end
  return table.concat(parts, " or ")
end

--- Queries exported per service kind: {name, promql, unit}.
function M.queries(kind, window)
  window = window or "1m"
  local H = servermetrics.HISTOGRAMS
  local process = {
    { "process_cpu_seconds_rate", "sum by (instance) (rate(process_cpu_seconds_total[" .. window .. "]))", "cores" },
    { "process_resident_memory_bytes", "sum by (instance) (process_resident_memory_bytes)", "bytes" },
  }
  local sets = {
    vllm = {
      { "requests_running", "sum by (instance) (vllm:num_requests_running)", "requests" },
      { "requests_waiting", "sum by (instance) (vllm:num_requests_waiting)", "requests" },
      { "kv_cache_usage", alias({ "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc" }, function(n)
        return "avg by (instance) (" .. n .. ")"
      end), "fraction" },
      { "generation_tokens_per_s", "sum by (instance) (rate(vllm:generation_tokens_total[" .. window .. "]))", "tokens/s" },
      { "prompt_tokens_per_s", "sum by (instance) (rate(vllm:prompt_tokens_total[" .. window .. "]))", "tokens/s" },
      { "requests_finished_per_s", "sum by (instance) (rate(vllm:request_success_total[" .. window .. "]))", "requests/s" },
      { "preemptions_per_s", "sum by (instance) (rate(vllm:num_preemptions_total[" .. window .. "]))", "1/s" },
      { "ttft_p50_s", hq(0.5, H.ttft_ms, window), "s" },
      { "ttft_p99_s", hq(0.99, H.ttft_ms, window), "s" },
      { "itl_p50_s", hq(0.5, H.itl_ms, window), "s" },
      { "itl_p99_s", hq(0.99, H.itl_ms, window), "s" },
      { "e2e_p50_s", hq(0.5, H.e2e_ms, window), "s" },
      { "e2e_p99_s", hq(0.99, H.e2e_ms, window), "s" },
      { "queue_time_p50_s", hq(0.5, H.queue_ms, window), "s" },
    },
    ollama = {
      { "requests_per_s", "sum by (instance) (rate(http_requests_total[" .. window .. "]))", "requests/s" },
      { "up", "up", "bool" },
    },
  }
  local out = {}
  for _, q in ipairs(sets[kind] or { { "up", "up", "bool" } }) do
    out[#out + 1] = q
  end
  for _, q in ipairs(process) do
    out[#out + 1] = q
  end
  return out
end

--- Which query set a service uses (by name: vllm*, ollama*, else generic).
function M.kind_of(service)
  service = service or ""
  if service:match("vllm") then
    return "vllm"
  elseif service:match("ollama") then
    return "ollama"
  end
  return "generic"
end

-- Configuration -------------------------------------------------------------------

local function targets_file(dir, service)
  return fs.join(dir, "targets-" .. service .. ".json")
end

--- The file_sd content for one target service, from the registry now.
function M.targets_for(target)
  local list = registry.list(target.service) or {}
  local groups = json.array()
  for _, i in ipairs(list) do
    if i.status == "RUNNING" then
      local port = target.port or (i.ports and i.ports[1])
      if port then
        groups[#groups + 1] = {
          targets = { string.format("%s:%d", i.host, port) },
          labels = { service = target.service, instance_id = i.instance_id, job_id = tostring(i.job_id), node = i.node },
        }
      end
    end
  end
  return groups
end

--- Writes the targets files; returns how many changed.
function M.sync_targets(dir, targets)
  local changed = 0
  for _, tg in ipairs(targets) do
    local text = json.encode(M.targets_for(tg), { pretty = true }) .. "\n"
    local path = targets_file(dir, tg.service)
    if fs.read(path) ~= text then
      assert(fs.write(path, text))
      changed = changed + 1
    end
  end
  return changed
end

local function rules_yaml(alerts)
  local rules = {}
  for i, a in ipairs(alerts) do
    rules[i] = {
      alert = a.name,
      expr = a.expr,
      ["for"] = a["for"] or "0s",
      labels = { severity = a.severity or "warning" },
      annotations = { summary = a.summary or a.name },
    }
  end
  return yaml.encode({ groups = { { name = "aibench", rules = rules } } })
end

--- prometheus.yml (and the rules file) for a monitor recipe.
function M.config(r, dir)
  local p = r.prometheus or {}
  local jobs = {}
  for i, tg in ipairs(r.targets) do
    jobs[i] = {
      job_name = tg.job_name or tg.service,
      metrics_path = tg.metrics_path or "/metrics",
      files = { targets_file(dir, tg.service) },
      refresh_interval = p.refresh_interval or M.DEFAULTS.refresh_interval,
    }
  end
  local spec = {
    scrape_interval = p.scrape_interval or M.DEFAULTS.scrape_interval,
    evaluation_interval = p.evaluation_interval,
    jobs = jobs,
    rule_files = (r.alerts and #r.alerts > 0) and { fs.join(dir, "alerts.yml") } or json.array(),
    external_labels = { monitor = r.name },
  }
  return prom.render_config(spec), (r.alerts and #r.alerts > 0) and rules_yaml(r.alerts) or nil
end

--- How Prometheus runs: its binary on PATH (the Debian package), or the
--- recipe's container image. Raises with the package to install when neither.
function M.runtime(r)
  local p = r.prometheus or {}
  local bin = p.binary or proc.which("prometheus")
  if bin and fs.exists(bin) then
    return { binary = bin }
  end
  if p.binary then
    error(string.format("prometheus.binary: '%s' does not exist", p.binary), 0)
  end
  if p.image then
    return { container = { image = p.image, runtime = proc.which("apptainer") and "apptainer" or "singularity" } }
  end
  error("Prometheus is not installed here: install the Debian package 'prometheus' (apt-get install prometheus), put a prometheus binary on PATH, or set prometheus.image to a container image", 0)
end

-- Deployment ---------------------------------------------------------------------------

--- `monitor start`: deploys Prometheus for a monitor recipe and waits until
--- it is ready. SIGINT or SIGTERM meanwhile cancels it (nil, err with kind
--- "interrupted"); `detach` returns right after submitting.
---@param o {recipe: string, executor?: string, set?: string[], timeout_s?: number, quiet?: boolean, detach?: boolean}
function M.start(o)
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
  local rt = M.runtime(r)
  local executor = deploy.executor_name(r, o.executor)
  local ok, xerr = deploy.ready_executor(executor)
  if not ok then
    return nil, xerr
  end
  local dir, instance_id = deploy.new_job_dir(r.name)
  local config, rules = M.config(r, dir)
  local spec = {
    recipe = r.name,
    dir = dir,
    targets = r.targets,
    refresh_s = 2,
    retention_time = p.retention_time or M.DEFAULTS.retention_time,
    runtime = rt,
  }
  local files = {
    [fs.join(dir, "prometheus.yml")] = config,
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
  local res = { partition = nil, cpu_cores = M.DEFAULTS.cpu_cores, memory_gb = M.DEFAULTS.memory_gb }
  for k, v in pairs(p.resources or (r.orchestration and r.orchestration.resources) or {}) do
    res[k] = v
  end
  local jr = { orchestration = { resources = res, sbatch_args = r.orchestration and r.orchestration.sbatch_args } }
  local jspec = deploy.job_spec(jr, executor, "aibench-" .. r.name, dir, command, "monitor recipe " .. r.name .. " (" .. file .. ")")
  deploy.check_job_spec(jspec, file, jr)
  assert(deploy.write_files(files))
  M.sync_targets(dir, r.targets)
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
  local spec = json.decode(assert(fs.read(spec_path)))
  local port = assert(env.get("PORT"), "the job agent sets PORT")
  local args = {
    "--config.file=" .. fs.join(spec.dir, "prometheus.yml"),
    "--storage.tsdb.path=" .. fs.join(spec.dir, "data"),
    "--storage.tsdb.retention.time=" .. spec.retention_time,
    "--web.listen-address=0.0.0.0:" .. port,
    "--web.enable-lifecycle",
  }
  local argv
  if spec.runtime.binary then
    argv = { spec.runtime.binary }
  else
    local c = spec.runtime.container
    -- ${VAR} and ${VAR:-default} from the job's environment, as for servers.
    argv = { c.runtime, "exec", "--bind", spec.dir, env.expand(c.image), "prometheus" }
  end
  for _, a in ipairs(args) do
    argv[#argv + 1] = a
  end
  io.stderr:write("[aibench-monitor] starting: ", table.concat(argv, " "), "\n")
  local h = assert(proc.spawn(argv, { stdout = "inherit", stderr = "inherit" }))
  while h:running() do
    local ok, err = pcall(M.sync_targets, spec.dir, spec.targets)
    if not ok then
      io.stderr:write("[aibench-monitor] cannot update targets: ", tostring(err), "\n")
    elseif err > 0 then
      io.stderr:write(string.format("[aibench-monitor] targets updated (%d file%s)\n", err, err == 1 and "" or "s"))
    end
    time.sleep(spec.refresh_s or 2)
  end
  local r = h:wait()
  io.stderr:write("[aibench-monitor] prometheus exited with code ", tostring(r and r.code), "\n")
  return r and r.code or 1
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

local function parse_time(s, what)
  if s == nil then
    return nil
  end
  if type(s) == "number" then
    return s
  end
  local n = tonumber(s)
  if n then
    return n
  end
  local t, err = time.parse(s)
  if not t then
    error(string.format("--%s: %s", what, err.message), 0)
  end
  return t
end

--- Seconds from a number or a Prometheus duration (15s, 1m30s); nil when
--- it is neither.
local function duration_s(s)
  return tonumber(s) or (prom.duration_s(tostring(s)))
end

--- `monitor export`: the service's query set, instant or over a range.
---@param o {id: string, format?: "json"|"csv", type?: "instant"|"range", start?: string|number, ["end"]?: string|number, step?: string|number}
---@return string? text
---@return table? err
function M.export(o)
  local m, err = M.get(o.id)
  if not m then
    return nil, err
  end
  local kind = o.type or "instant"
  if kind ~= "instant" and kind ~= "range" then
    error(string.format('--type: expected "instant" or "range", got "%s"', kind), 0)
  end
  local fmt = o.format or "json"
  if fmt ~= "json" and fmt ~= "csv" then
    error(string.format('--format: expected "json" or "csv", got "%s"', fmt), 0)
  end
  local now = time.now()
  local t_end = parse_time(o["end"], "end") or now
  local t_start = parse_time(o.start, "start") or m.started_unix or (t_end - 3600)
  local step
  if o.step then
    step = duration_s(tostring(o.step))
    if not step or step <= 0 then
      error("--step: expected seconds or a duration like 15s, got " .. tostring(o.step), 0)
    end
  else
    step = duration_s(m.scrape_interval or "15s") or 15
  end
  if kind == "range" and t_end <= t_start then
    error(string.format("--end (%s) is not after --start (%s)", time.format(t_end), time.format(t_start)), 0)
  end
  local out = { prometheus = m.client.url, monitor = m.instance_id, type = kind, queries = {} }
  if kind == "range" then
    out.start, out["end"], out.step = time.format(t_start), time.format(t_end), step
  else
    out.time = time.format(t_end)
  end
  local services = {}
  for _, tg in ipairs(m.targets or {}) do
    services[#services + 1] = tg.service
  end
  local total_series = 0
  for _, service in ipairs(services) do
    for _, q in ipairs(M.queries(M.kind_of(service), "1m")) do
      local res, qerr
      if kind == "range" then
        res, qerr = m.client:query_range(q[2], t_start, t_end, step)
      else
        res, qerr = m.client:query(q[2], t_end)
      end
      if not res then
        return nil, qerr
      end
      total_series = total_series + #res
      out.queries[#out.queries + 1] = { service = service, name = q[1], unit = q[3], query = q[2], series = res }
    end
  end
  if total_series == 0 then
    return nil, {
      kind = "no_data",
      message = string.format("no data yet: Prometheus at %s has no samples for %s %s (it scrapes every %s; wait for a scrape, or check `aibench monitor status %s`)",
        m.client.url, table.concat(services, ", "), kind == "range" and ("between " .. time.format(t_start) .. " and " .. time.format(t_end)) or ("at " .. time.format(t_end)), m.scrape_interval or "15s", m.instance_id),
    }
  end
  if fmt == "json" then
    return json.encode(out, { pretty = true }) .. "\n"
  end
  -- CSV with a metadata header.
  local lines = {
    "# aibench monitor export",
    "# prometheus: " .. out.prometheus,
    "# monitor: " .. out.monitor,
    "# type: " .. kind,
  }
  if kind == "range" then
    lines[#lines + 1] = "# start: " .. out.start
    lines[#lines + 1] = "# end: " .. out["end"]
    lines[#lines + 1] = "# step_s: " .. tostring(step)
  else
    lines[#lines + 1] = "# time: " .. out.time
  end
  lines[#lines + 1] = "service,metric,unit,instance,timestamp,value"
  local function csv(s)
    s = tostring(s)
    if s:find('[,"\n]') then
      return '"' .. s:gsub('"', '""') .. '"'
    end
    return s
  end
  for _, q in ipairs(out.queries) do
    for _, s in ipairs(q.series) do
      local inst = s.metric.instance or ""
      if s.values then
        for _, pt in ipairs(s.values) do
          lines[#lines + 1] = table.concat({ csv(q.service), csv(q.name), csv(q.unit), csv(inst), time.format(pt[1]), tostring(pt[2]) }, ",")
        end
      else
        lines[#lines + 1] = table.concat({ csv(q.service), csv(q.name), csv(q.unit), csv(inst), time.format(s.time), tostring(s.value) }, ",")
      end
    end
  end
  return table.concat(lines, "\n") .. "\n"
end

-- Benchmark results ---------------------------------------------------------------

--- A running monitor that scrapes any of these URLs, if there is one.
function M.for_urls(urls)
  local want = {}
  for _, u in ipairs(urls) do
    want[(u:gsub("^http://", ""):gsub("/.*$", ""))] = true
  end
  local list = M.list() or {}
  for _, m in ipairs(list) do
    if m.instance then
      local client = prom.client(m.instance.url)
      for _, tg in ipairs(client:targets() or {}) do
        if want[tg.labels and tg.labels.instance or ""] then
          m.client = client
          return m
        end
      end
    end
  end
end

--- Server-side time series from a monitor over a benchmark's window, to put
--- next to the client's (nil when no monitor scrapes these URLs).
function M.timeseries(urls, t0, t1)
  local m = M.for_urls(urls)
  if not m then
    return nil
  end
  local step = math.max(1, duration_s(m.scrape_interval or "15s") or 15)
  local out = { prometheus = m.client.url, monitor = m.instance_id, step_s = step, series = {} }
  local window = string.format("%ds", math.max(2 * step, 5))
  for _, q in ipairs(M.queries("vllm", window)) do
    local res = m.client:query_range(q[2], t0 - step, t1 + step, step)
    if res and #res > 0 then
      local points = json.array()
      -- Counts and rates add up over instances; fractions (KV-cache use) average.
      local by_t, n_t = {}, {}
      for _, s in ipairs(res) do
        for _, pt in ipairs(s.values or {}) do
          if pt[2] == pt[2] then
            by_t[pt[1]] = (by_t[pt[1]] or 0) + pt[2]
            n_t[pt[1]] = (n_t[pt[1]] or 0) + 1
          end
        end
      end
      local ts = {}
      for t in pairs(by_t) do
        ts[#ts + 1] = t
      end
      table.sort(ts)
      for _, t in ipairs(ts) do
        points[#points + 1] = { t - t0, q[3] == "fraction" and by_t[t] / n_t[t] or by_t[t] }
      end
      out.series[q[1]] = { unit = q[3], points = points }
    end
  end
  return out
end

return M
