---@meta

---What `aibench.slurm` and `aibench.local` both offer: submit a job spec,
---follow and cancel the job.
---@class aibench.Executor
local Executor = {}

---A submitted job.
---@class aibench.Job
---@field id string the executor's job id
---@field executor "slurm"|"local"
---@field dir string? the job's folder (script, job.log)
local Job = {}

---The job's state: PENDING, STARTING, RUNNING, COMPLETED, FAILED, CANCELED, TIMEOUT or UNKNOWN.
---@async
---@return string? state
---@return aibench.Error? err
function Job:status() end

---State, node, exit code and the scheduler's reason.
---@async
---@return {id: string, state: string, node: string?, exit_code: integer?, reason: string?}? info
---@return aibench.Error? err
function Job:info() end

---The node the job runs on (nil while pending).
---@async
---@return string? node
---@return aibench.Error? err
function Job:node() end

---Cancels the job: SIGTERM to its processes, SIGKILL after `grace_s` (default 10).
---@async
---@param grace_s? number
---@return true? ok
---@return aibench.Error? err
function Job:cancel(grace_s) end

---Waits until the job reaches `until_state` (default: any final state).
---@async
---@param opts? {until_state?: string, timeout_s?: number, poll_s?: number}
---@return string? state the state reached
---@return aibench.Error? err `kind = "timeout"` (with `state`)
function Job:wait(opts) end

---The job's log (`<dir>/job.log`), or its last `tail` lines.
---@param opts? {tail?: integer}
---@return string? text
---@return aibench.Error? err
function Job:logs(opts) end

---@class aibench.JobSpec
---@field name string job name (letters, digits, _ . -)
---@field dir string folder for the script and job.log
---@field command string[] the program and arguments the job runs
---@field resources? {partition?: string, nodes?: integer, cpu_cores?: integer, memory_gb?: number, gpu_count?: integer, time_limit?: string, account?: string, qos?: string}
---@field modules? string[] `module load` lines
---@field env? table<string, string> exported (quoted, literal)
---@field workdir? string
---@field sbatch_args? string[] extra `#SBATCH --option[=value]` lines (checked; options aibench sets itself are refused)
---@field comment? string
---@field warn_before_end_s? integer SIGTERM this many seconds before the time limit (SLURM `--signal=B:TERM@N`)

---The executor's name.
---@type "slurm"|"local"
Executor.name = "slurm"

---Submits a job (the script is rendered and validated first; bad values raise).
---@async
---@param spec aibench.JobSpec
---@return aibench.Job? job
---@return aibench.Error? err `unavailable` (scheduler down/missing), `rejected` (sbatch's message), `io`
function Executor.submit(spec) end

---The job script for a spec, without submitting (`--dry-run`).
---@param spec aibench.JobSpec
---@return string
function Executor.render(spec) end

---A handle on an existing job.
---@param id string
---@param dir? string its folder (for logs)
---@return aibench.Job
function Executor.job(id, dir) end

---States of many jobs in one call.
---@async
---@param ids string[]
---@return table<string, {state: string, node: string?, exit_code: integer?, reason: string?}>? states
---@return aibench.Error? err
function Executor.statuses(ids) end

---Whether the executor can be used here.
---@async
---@return true? ok
---@return aibench.Error? err
function Executor.available() end

---Checks a job spec without rendering it: true, or nil and an error whose
---`field` names the job-spec field (`resources.nodes`, `env.X`, `command[2]`).
---@param spec aibench.JobSpec
---@return boolean? ok
---@return aibench.Error? err {kind = "invalid", field?, message}
function Executor.check(spec) end

---Seconds of a SLURM time limit (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS).
---@param s string
---@return integer? seconds
---@return aibench.Error? err
function Executor.time_limit_seconds(s) end

---True for a final state (COMPLETED, FAILED, CANCELED, TIMEOUT): the job will not run any more.
---@param state string
---@return boolean
function Executor.is_final(state) end
