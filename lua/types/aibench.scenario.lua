---@meta aibench.scenario

---Shared by the example scripts: argument parsing, and running a benchmark
---the MeluXina report's way (deploy the server from a recipe, start a
---monitor when Prometheus is available, run the client recipe, save,
---summarize, clean up).
---@class aibench.scenario
local scenario = {}

---@class aibench.scenario.Args
---@field duration? number seconds, shortens the scenario
---@field requests? number requests per user (closed loop)
---@field users? number
---@field recipe? string server recipe (default vllm-sim)
---@field executor? "local"|"slurm"
---@field url? string benchmark this URL, deploy nothing
---@field out_dir? string
---@field no_monitor? boolean
---@field keep? boolean leave the server running
---@field scrape_interval? string

---A scenario's environment: what with_environment started.
---@class aibench.scenario.Env
---@field urls? string[] the URL given (--url), when nothing was deployed
---@field server? aibench.Deployment[] the server deployed
---@field monitor? aibench.Monitor the monitor, when one started
---@field started aibench.Deployment[] everything to stop afterwards

---Parses `--flag value` / `--flag` arguments (the common flags and the
---script's own); raises on unknown flags, with a did-you-mean.
---@param argv table the script's `arg`
---@param extra? table<string, "number"|"string"|"boolean"> script-specific flags
---@return aibench.scenario.Args
function scenario.args(argv, extra) end

---Recipe overrides from the parsed arguments, as
---`{["workload.duration_seconds"] = 20, ...}` (what client.run's `set` takes).
---@param o aibench.scenario.Args
---@return table<string, any>
function scenario.sets(o) end

---Deploys a server (and a monitor when Prometheus is here), runs `f(env)`,
---and always cleans up what it started (unless `o.keep`).
---@param o aibench.scenario.Args
---@param f fun(env: aibench.scenario.Env): any
---@return any result what `f` returned
function scenario.with_environment(o, f) end

---Runs one client recipe in an environment and returns the saved record.
---@param env aibench.scenario.Env
---@param client_recipe string
---@param o aibench.scenario.Args
---@param sets? table overrides (default: scenario.sets(o))
---@return aibench.Record
function scenario.bench(env, client_recipe, o, sets) end

---Prints a saved record: the client's summary, the server's side, the HPC
---section, and where the result is.
---@param rec aibench.Record
---@param opts? {definitions?: boolean} as for report.summary
function scenario.print(rec, opts) end

---A whole scenario: environment, one client recipe, summary.
---@param client_recipe string
---@param argv table the script's `arg`
---@param opts? {flags?: table<string, string>, sets?: fun(o: aibench.scenario.Args): table}
---@return aibench.Record
function scenario.run(client_recipe, argv, opts) end

return scenario
