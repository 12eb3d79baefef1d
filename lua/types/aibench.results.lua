---@meta aibench.results

---The results store: every client run writes
---results/<recipe>-<UTC time>-<id>.json (schema aibench.result/1) with the
---benchmark result, the server-side metrics, the resolved recipe and the
---environment, so a run can be repeated and compared later.
---@class aibench.results
---@field SCHEMA string "aibench.result/1"
---@field BENCH_SCHEMA string the bench result schema this build writes
---@field BENCH_SCHEMAS table<string, true> every bench schema this build reads
---@field RECORD_FIELDS table the record fields reports read, with their types
---@field BENCH_FIELDS table the bench fields reports read, with their types
local results = {}

---Reads a result file (a stored record, or a bare bench result as written
---by `aibench bench --json`). Errors name the file and what is wrong.
---@param path string
---@return aibench.Record? record
---@return aibench.Error? err
function results.load(path) end

---Result files (*.json) in a folder, oldest first.
---@param dir string
---@return string[]
function results.list(dir) end

---Every result file of a folder, each read once and kept as its brief
---(results.brief), sorted by start time; files that cannot be read come
---last, with the reason.
---@param dir string
---@return table[]? briefs
---@return aibench.Error? err
function results.browse(dir) end

---The line `results list` shows for a result file: id, recipe, start time
---and key figures under the result's own field names; `error` when the file
---could not be read.
---@param path string
---@param rec? aibench.Record a loaded record (results.load)
---@param err? string why it could not be loaded
---@return table
function results.brief(path, rec, err) end

---A result record from a finished run.
---@param o {id?: string, recipe?: table, recipe_file?: string, executor?: string, job_ids?: string[], urls?: string[], bench: aibench.bench.Result, run?: integer, runs?: integer, server?: table, hpc?: table}
---@return aibench.Record
function results.record(o) end

---Writes a record (to `record.path` when it was saved before); returns its
---path, and the error when it had to go to the rescue place instead.
---@param record aibench.Record
---@param dir? string default "results"
---@return string? path
---@return aibench.Error? err
function results.save(record, dir) end

---Writes text to `path`; when that fails, to a rescue place
---(`$AIBENCH_HOME/rescued/`, else the temporary folder) rather than losing it.
---@param path string
---@param text string
---@param opts? table fs.write's options (default {mkdir = true})
---@return string? path written
---@return aibench.Error? err why `path` itself was not written
function results.write(path, text, opts) end

---The file name of a record in `dir`: its recipe, the time and its id.
---@param record aibench.Record
---@param dir? string default "results"
---@return string
function results.path_for(record, dir) end

---The per-request log file of a run whose result will have id `id`.
---@param dir string
---@param name string the recipe's name
---@param id? string
---@return string
function results.log_path(dir, name, id) end

---A new result id (to name a run's files before it starts).
---@return string
function results.new_id() end

---Checks the types of the fields reports read (nulls read as absent): nil
---when fine, else a message naming the first bad field.
---@param v table a decoded record, or a bare bench result when `bare`
---@param bare? boolean
---@return string?
function results.check_fields(v, bare) end

return results
