--- A monitor's Prometheus configuration: prometheus.yml with one file_sd
--- target file per target service (rewritten from the registry), alert
--- rules, and how Prometheus runs here (its binary, or a container image).
local fs = require("aibench.fs")
local json = require("aibench.json")
local yaml = require("aibench.yaml")
local proc = require("aibench.proc")
local prom = require("aibench.prom")
local registry = require("aibench.registry")
local util = require("aibench.util")

local M = {}

M.DEFAULTS = { scrape_interval = "15s", retention_time = "24h", port = "auto", refresh_interval = "5s", cpu_cores = 2, memory_gb = 4 }

local function targets_file(dir, service)
  return fs.join(dir, "targets-" .. service .. ".json")
end

local function node_targets_file(dir, service)
  return fs.join(dir, "targets-" .. service .. "-node.json")
end

--- One file_sd group: an instance's address and its labels.
local function group(target, i, address)
  return {
    targets = { address },
    labels = { service = target.service, instance_id = i.instance_id, job_id = tostring(i.job_id), node = i.node },
  }
end

--- The file_sd content for one target service, from the registry now.
function M.targets_for(target)
  local list = registry.list(target.service) or {}
  local groups = json.array()
  for _, i in ipairs(list) do
    if i.status == "RUNNING" then
      local port = target.port or (i.ports and i.ports[1])
      if port then
        groups[#groups + 1] = group(target, i, string.format("%s:%d", i.host, port))
      end
    end
  end
  return groups
end

--- The instances' node-side endpoints: the agent's (the service's process
--- group, NVML GPUs) and a dcgm-exporter's, as file_sd groups.
function M.node_targets_for(target)
  local groups = json.array()
  for _, i in ipairs(registry.list(target.service) or {}) do
    if i.status == "RUNNING" then
      for _, u in ipairs(util.node_endpoints(i)) do
        groups[#groups + 1] = group(target, i, util.host_port(u))
      end
    end
  end
  return groups
end

--- Writes the targets files; returns how many changed.
function M.sync_targets(dir, targets)
  local changed = 0
  for _, tg in ipairs(targets) do
    for _, f in ipairs({ { M.targets_for, targets_file }, { M.node_targets_for, node_targets_file } }) do
      local text = json.encode(f[1](tg), { pretty = true }) .. "\n"
      local path = f[2](dir, tg.service)
      if fs.read(path) ~= text then
        assert(fs.write(path, text))
        changed = changed + 1
      end
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
  for _, tg in ipairs(r.targets) do
    jobs[#jobs + 1] = {
      job_name = tg.job_name or tg.service,
      metrics_path = tg.metrics_path or "/metrics",
      files = { targets_file(dir, tg.service) },
      refresh_interval = p.refresh_interval or M.DEFAULTS.refresh_interval,
    }
    -- Beside each instance: the agent's endpoint and GPU exporters.
    jobs[#jobs + 1] = {
      job_name = (tg.job_name or tg.service) .. "-node",
      metrics_path = "/metrics",
      files = { node_targets_file(dir, tg.service) },
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

return M
