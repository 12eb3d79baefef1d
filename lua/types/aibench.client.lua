---@meta aibench.client

---The client manager (the MeluXina report's Client module): runs a client
---recipe against its service, found in the discovery registry; in this
---process (local) or as K jobs on compute nodes (SLURM) whose results are
---merged exactly.
---@class aibench.client
---@field PROGRESS_FILE string the file a client job writes its progress to, in its job folder
---@field PROGRESS_EVERY_S number how often a client job writes it, seconds
local client = {}

---A saved run: the result file's record (schema aibench.result/1).
---@class aibench.Record
---@field schema string "aibench.result/1"
---@field id string
---@field created_at string ISO time
---@field recipe {name: string, file?: string, service_name?: string, resolved?: table}
---@field environment table aibench version, host, user, executor, job ids
---@field target {service?: string, urls?: string[]}
---@field bench aibench.bench.Result the measurement
---@field server table|lightuserdata the server's metrics over the run, or json.null
---@field hpc table|lightuserdata SLURM accounting and cost, or json.null
---@field path string where it was saved
---@field warnings? string[] enrichment that failed (the measurement is kept)

---Runs a client recipe: discovers the service (checking its instances are
---alive), runs the workload `runs` times, saves each result and returns the
---saved records. A recipe name alone is taken as `{recipe = name}`. SIGINT
---or SIGTERM ends the run with its partial result saved and marked
---interrupted. `detach` submits the client as jobs and returns their
---deployments at once (their results stay in their job folders).
---@param o string|{recipe: string, runs?: integer, executor?: "local"|"slurm", set?: string[]|table, url?: string, out_dir?: string, progress?: boolean, detach?: boolean, timeout_s?: number}
---@return aibench.Record[]|aibench.Deployment[]? records
---@return aibench.Error? err
function client.run(o) end

---Client jobs (submitted by `client run --detach` or on an executor):
---active ones, or all with `opts.all`, with their state.
---@param opts? {all?: boolean}
---@return aibench.Deployment[]? jobs
---@return aibench.Error? err
function client.list(opts) end

---The URLs to benchmark: an explicit URL, the recipe's target.url, or every
---running instance of the recipe's service (each checked alive first).
---@param r table a loaded client recipe
---@param url? string
---@return string[]? urls
---@return string|aibench.Error|nil service the service name, or the error
function client.targets(r, url) end

---The load generator's spec (a table for bench.spec) for a recipe and URLs.
---@param r table a loaded client recipe
---@param urls string[]
---@return aibench.bench.SpecTable
function client.spec(r, urls) end

---A client job's last progress (its job folder's progress.json), or nil
---before it has written one (or when it cannot be read).
---@param dir string the job folder
---@return table?
function client.read_progress(dir) end

---Inside a client job: runs the spec file and writes the result (also a
---partial one after SIGTERM). Returns the result.
---@param spec_path string
---@param out_path string
---@return aibench.bench.Result
function client.exec(spec_path, out_path) end

return client
