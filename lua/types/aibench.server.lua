---@meta aibench.server

---The server manager (the MeluXina report's Server module): deploys server
---recipes as jobs on the local or SLURM executor, waits until each instance
---is healthy and registered, lists and stops them.
---@class aibench.server
local server = {}

---A deployment: one job of a server, monitor or client recipe, as its job
---folder's meta.json records it (and as `server.run` and `monitor.start` return it).
---@class aibench.Deployment
---@field kind "server"|"monitor"|"client"
---@field recipe string the recipe's name
---@field recipe_file string where the recipe came from
---@field service? string the service it registers as
---@field instance_id string
---@field executor "local"|"slurm"
---@field dir string its job folder
---@field job_id string the executor's job id
---@field submitted_at string ISO time
---@field state? string PENDING, RUNNING, COMPLETED, ... (when refreshed)
---@field node? string the node it runs on
---@field instance? aibench.Instance its registry entry, once registered
local Deployment = {}

---Stops this deployment's job and removes its registry entry (as `aibench server stop ID`).
---@param opts? {wait_s?: number}
---@return aibench.Deployment[]? stopped
---@return aibench.Error? err
function Deployment:stop(opts) end

---Deploys `count` instances of a server recipe and waits until each is
---registered. A recipe name alone is taken as `{recipe = name}`. SIGINT or
---SIGTERM while it submits or waits cancels what it submitted (nil, err with
---kind "interrupted"); `detach` returns right after submitting; `dry_run`
---returns the job scripts without submitting.
---@param o string|{recipe: string, count?: integer, executor?: "local"|"slurm", set?: string[]|table, dry_run?: boolean, timeout_s?: number, quiet?: boolean, detach?: boolean}
---@return aibench.Deployment[]|{dry_run: true, scripts: table[]}? deployments
---@return aibench.Error? err
function server.run(o) end

---Active (non-final) server deployments with their state and registry entry; all with `opts.all`.
---@param opts? {all?: boolean}
---@return aibench.Deployment[]? deployments
---@return aibench.Error? err
function server.list(opts) end

---Stops one deployment (by instance id, job id or folder) and removes its registry entry.
---@param id string
---@param opts? {wait_s?: number}
---@return aibench.Deployment[]? stopped
---@return aibench.Error? err
function server.stop(id, opts) end

---Stops every active server deployment.
---@param opts? {wait_s?: number}
---@return aibench.Deployment[]? stopped
---@return aibench.Error? err
function server.stop_all(opts) end

---Cancels the jobs of deployments (their states current), waits for them to
---end and removes their registry entries.
---@param metas aibench.Deployment[]
---@param opts? {wait_s?: number}
---@return aibench.Deployment[]? stopped
---@return aibench.Error? err
function server.stop_metas(metas, opts) end

---Where GPU metrics come from for a server recipe: "off" unless it asks for
---GPUs, else monitoring.gpu (default "auto": dcgm-exporter where installed, else NVML).
---@param r table a loaded server recipe
---@return "off"|"auto"|"dcgm"|"nvml"
function server.gpu_mode(r) end

---Builds everything one deployment needs without submitting it; raises on a
---job spec the executor would refuse (naming the recipe file and field).
---@param r table a loaded server recipe
---@param file string the recipe's file (for messages)
---@param executor "local"|"slurm"
---@param opts {defaults?: table, kind?: string} defaults: the SLURM site defaults, if read already
---@return aibench.JobSpec spec
---@return table<string, string> files path -> text
---@return aibench.Deployment meta
function server.prepare(r, file, executor, opts) end

---Writes the files of a prepared deployment and submits its job.
---@param spec aibench.JobSpec
---@param files table<string, string>
---@param meta aibench.Deployment
---@return aibench.Deployment? meta with job_id
---@return aibench.Error? err
function server.submit(spec, files, meta) end

return server
