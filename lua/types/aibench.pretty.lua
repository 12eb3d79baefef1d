---@meta aibench.pretty

---Pretty-printing of Lua values for the REPL, `aibench eval` and scripts.
---Tables print nested and sorted, cycles print as <cycle>, depth is limited.
---@class aibench.pretty
local pretty = {}

---Renders a value as text (a userdata with `:to_table()` as its fields).
---@param v any
---@param opts? {depth?: integer, indent?: string}
---@return string
function pretty.render(v, opts) end

---Prints values like `print`, with tables rendered.
---@param ... any
function pretty.print(...) end

---A bench result in a few lines, as the REPL prints one: requests and
---errors, duration, request and token rates, TTFT and TPOT at p50 and p99.
---@param r aibench.bench.Result
---@return string
function pretty.result_summary(r) end

return pretty
