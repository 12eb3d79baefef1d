---@meta aibench.accounting

---SLURM accounting of jobs, what a run cost and how efficiently it served,
---and who else is on a node. `aibench.hpc` puts these into a result.
---@class aibench.accounting
local accounting = {}

---@class aibench.accounting.Job
---@field job_id string
---@field name string
---@field state string
---@field submit_unix number?
---@field eligible_unix number?
---@field start_unix number?
---@field end_unix number?
---@field elapsed_s integer wall time (so far, for a running job)
---@field nodes integer
---@field cpus integer
---@field gpus integer
---@field mem_mb number
---@field billing number SLURM's billing TRES
---@field total_cpu_s number CPU time used (TotalCPU)
---@field max_rss_mb number the largest MaxRSS of its steps
---@field energy_j number? ConsumedEnergyRaw, where the site measures it
---@field node_list string

---@class aibench.accounting.Totals
---@field jobs aibench.accounting.Job[]
---@field node_hours number
---@field gpu_hours number
---@field cpu_hours number allocated CPUs x wall time
---@field cpu_used_hours number TotalCPU
---@field billing_hours number
---@field energy_j number? when every job was measured
---@field peak_rss_mb number
---@field warnings string[]? what in sacct's answer could not be used and was left out (lines that are not sacct's, NaN or negative numbers), and jobs it has no record of

---`sacct --parsable2` for these job ids, with their totals. sacct gets
---`AIBENCH_SLURM_TIMEOUT_S` seconds (20 by default) and is then stopped.
---@async
---@param ids string[]
---@return aibench.accounting.Totals? totals
---@return aibench.Error? err `kind = "unavailable"` (no sacct, no slurmdbd, no answer in time)
function accounting.sacct(ids) end

---The totals of a list of jobs (as `sacct` returns them).
---@param jobs aibench.accounting.Job[]
---@return aibench.accounting.Totals
function accounting.totals(jobs) end

---@class aibench.accounting.Efficiency
---@field per "gpu"|"node" per GPU-hour, or per node-hour on CPU-only runs
---@field hours number GPU- or node-hours held over the window
---@field output_tokens_per_hour number
---@field requests_per_hour number
---@field joules_per_output_token number?
---@field energy_source string?
---@field cost_per_million_output_tokens number?
---@field cost_unit string? the prices' currency, or "billing units"

---Efficiency over a benchmark window; nil when there is nothing to divide.
---Raises on a price that is not a finite number above 0.
---@param inputs {output_tokens: integer, requests: integer, window_s: number, gpus?: integer, nodes?: integer, billing?: number, energy_j?: number, energy_source?: string, pricing?: {gpu_hour?: number, node_hour?: number, currency?: string}}
---@return aibench.accounting.Efficiency?
function accounting.efficiency(inputs) end

---@class aibench.accounting.NodeShare
---@field node string
---@field other_jobs {job_id: string, user: string, name: string, state: string}[] users other than `me` anonymised
---@field cpu_load number? SLURM's CPULoad
---@field cpus_allocated integer?
---@field cpus_total integer?
---@field warnings string[]? why the load is missing (scontrol failed or did not answer in time)

---The other jobs on a node (leaving out `own` job ids) and its load, now.
---squeue and scontrol each get `AIBENCH_SLURM_TIMEOUT_S` seconds (20 by default).
---@async
---@param node string
---@param own string[]
---@param me string the current user (shown by name; others anonymised)
---@return aibench.accounting.NodeShare? share
---@return aibench.Error? err
function accounting.node_share(node, own, me) end

---Reads a config file's `pricing:` value, keeping what is valid: the
---prices, and one message per problem naming `file` and the field (an
---unknown field with the one it was probably meant to be; a price that is
---not a finite number above 0; `pricing:` that is not a table). nil gives
---no prices and no problems.
---@param value any the decoded `pricing:` value
---@param file string the config file, for the messages
---@return {gpu_hour?: number, node_hour?: number, currency?: string} pricing
---@return string[] problems
function accounting.pricing(value, file) end

return accounting
