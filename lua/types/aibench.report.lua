---@meta aibench.report

---Reports of benchmark results: terminal summaries, Markdown, one
---self-contained HTML file, and comparisons between runs.
---@class aibench.report
---@field definitions string[][] the metric definitions, {name, text} each (vLLM's benchmark)
---@field FIGURES string[] the bench fields report.figures copies
---@field COMPARED table[] the metrics a comparison covers
---@field TAIL_MIN_SAMPLES integer fewer samples than this make a p99 comparison a note, not a flag
local report = {}

---A readable summary of one bench result (the terminal report's part for one run).
---@param r aibench.bench.Result|table
---@param opts? {definitions?: boolean, title?: string} definitions: true prints them, false nothing, nil a one-line pointer
---@return string
function report.summary(r, opts) end

---The server's own view of a run (a record's `server` section), as text.
---@param s table the record's server section
---@param client? aibench.bench.Result the run's bench result, for comparison
---@return string
function report.server_summary(s, client) end

---A record's HPC section (SLURM runs) as text; "" without one.
---@param rec aibench.Record
---@return string
function report.hpc_summary(rec) end

---The terminal report of several records (with a comparison when `compare`).
---@param records aibench.Record[]
---@param opts? {compare?: boolean, threshold?: number, explain?: boolean}
---@return string
function report.terminal(records, opts) end

---The Markdown report.
---@param records aibench.Record[]
---@param opts? {compare?: boolean, threshold?: number}
---@return string
function report.markdown(records, opts) end

---The self-contained HTML report (inline CSS and SVG; no scripts, no network).
---@param records aibench.Record[]
---@param opts? {compare?: boolean, threshold?: number}
---@return string
function report.html(records, opts) end

---Loads result files (a folder means every *.json in it), in order. Files
---in a folder that cannot be read are skipped and returned in `skipped`.
---@param paths string[]
---@return aibench.Record[]? records
---@return aibench.Error? err
---@return {path: string, message: string}[] skipped
function report.load(paths) end

---Compares runs against the first (the baseline); a metric is flagged when
---it is worse by more than `threshold` (relative).
---@param records aibench.Record[]
---@param opts? {threshold?: number, min_abs?: number}
---@return {rows: table[], regressions: integer, threshold: number, differences: table[], note: string?}
function report.compare(records, opts) end

---A comparison (report.compare) as text.
---@param records aibench.Record[]
---@param cmp table
---@return string
function report.compare_text(records, cmp) end

---One record's figures (see report.FIGURES): `{path, id, recipe,
---created_at, bench, server, hpc}`.
---@param rec aibench.Record
---@return table
function report.figures(rec) end

---What `report --json` writes: schema aibench.report.v1, `results`,
---`comparison` (with `compare`) and `skipped`.
---@param records aibench.Record[]
---@param opts? {compare?: boolean, threshold?: number}
---@param skipped? {path: string, message: string}[]
---@return table
function report.data(records, opts, skipped) end

---The metric definitions as text (what --explain prints).
---@return string
function report.definitions_text() end

---A number for a report: `digits` decimals (default 1), large values as 12.3k or 1.20M, "-" for none.
---@param v any
---@param digits? integer
---@return string
function report.num(v, digits) end

---Pads a string to `w` columns (on the left when `right`).
---@param s any
---@param w integer
---@param right? boolean
---@return string
function report.pad(s, w, right) end

---Rows as aligned columns: numeric columns right-aligned, text left.
---@param rows string[][] the first row is the header
---@return string
function report.columns(rows) end

---Text with control characters (and bytes that are not UTF-8) escaped, so
---no value from a result can drive the reader's terminal.
---@param s any
---@return string
function report.clean(s) end

return report
