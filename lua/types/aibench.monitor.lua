---@meta aibench.monitor

---The monitor manager (the MeluXina report's Monitor module): Prometheus as
---a job whose scrape targets follow the discovery registry, its status and
---its export.
---@class aibench.monitor
---@field DEFAULTS {scrape_interval: string, retention_time: string, port: string|integer, refresh_interval: string, cpu_cores: integer, memory_gb: number} what a monitor recipe leaves out
local monitor = {}

---A running monitor: its deployment, with the Prometheus URL and a client.
---@class aibench.Monitor: aibench.Deployment
---@field url? string Prometheus's base URL
---@field client? aibench.prom.Client once connected (monitor.get)
---@field scrape_interval? string

---Deploys Prometheus for a monitor recipe and waits until it is ready. A
---recipe name alone is taken as `{recipe = name}`. SIGINT or SIGTERM
---meanwhile cancels it (nil, err with kind "interrupted"); `detach` returns
---right after submitting.
---@param o string|{recipe: string, executor?: "local"|"slurm", set?: string[]|table, timeout_s?: number, quiet?: boolean, detach?: boolean}
---@return aibench.Monitor? monitor
---@return aibench.Error? err
function monitor.start(o) end

---Running monitors (registered and not finished); all with `opts.all`.
---@param opts? {all?: boolean}
---@return aibench.Monitor[]? monitors
---@return aibench.Error? err
function monitor.list(opts) end

---One monitor by id, with its Prometheus client; `not_running` when it has no URL or its job ended.
---@param id string
---@return aibench.Monitor? monitor
---@return aibench.Error? err
function monitor.get(id) end

---Targets and firing alerts of a monitor, by id or by a monitor from monitor.list.
---@param id string|aibench.Monitor
---@return {monitor: aibench.Monitor, targets: table, alerts: table}? status
---@return aibench.Error? err
function monitor.status(id) end

---Stops one monitor (by instance id, job id or folder).
---@param id string
---@return aibench.Deployment[]? stopped
---@return aibench.Error? err
function monitor.stop(id) end

---Stops every running monitor.
---@return aibench.Deployment[]? stopped
---@return aibench.Error? err
function monitor.stop_all() end

---The service's query set from a monitor, instant or over a range, as JSON or CSV text.
---@param o {id: string, format?: "json"|"csv", type?: "instant"|"range", start?: string|number, ["end"]?: string|number, step?: string|number}
---@return string? text
---@return aibench.Error? err
function monitor.export(o) end

---The line a user runs on a laptop to reach the Prometheus UI (`ssh -L ...`).
---@param m aibench.Monitor
---@return string
function monitor.ssh_line(m) end

---When Prometheus last scraped a target (its `lastScrape`, RFC 3339), or
---nil before the first scrape.
---@param target table an entry of Prometheus's /api/v1/targets activeTargets
---@return string?
function monitor.last_scrape(target) end

---When Prometheus last scraped a target, or "not scraped yet".
---@param target table an entry of Prometheus's /api/v1/targets activeTargets
---@return string
function monitor.scrape_time(target) end

---The queries exported for a kind of service: `{name, promql, unit}` each.
---@param kind "vllm"|"ollama"|"generic"
---@param window? string a Prometheus duration for rates
---@return table[]
function monitor.queries(kind, window) end

---Which query set a service uses (by name: vllm*, ollama*, else generic).
---@param service string
---@return "vllm"|"ollama"|"generic"
function monitor.kind_of(service) end

---The file_sd content for one target service, from the registry now.
---@param target {service: string, port?: integer}
---@return table[]
function monitor.targets_for(target) end

---Writes a monitor's targets files; returns how many changed.
---@param dir string the monitor's job folder
---@param targets table[] the recipe's targets
---@return integer
function monitor.sync_targets(dir, targets) end

---prometheus.yml (and the alert rules file, if any) for a monitor recipe.
---@param r table a loaded monitor recipe
---@param dir string its job folder
---@return string config
---@return string? rules
function monitor.config(r, dir) end

---How Prometheus runs: its binary on PATH, or the recipe's container
---image; raises naming the package to install when neither.
---@param r table a loaded monitor recipe
---@return {binary?: string, container?: {image: string, runtime: string}}
function monitor.runtime(r) end

---Inside the monitor job: runs Prometheus and keeps the target files current.
---@param spec_path string the job's monitor.json
function monitor.job_main(spec_path) end

return monitor
