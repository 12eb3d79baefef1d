---@meta aibench

---An expected failure: functions that can fail return `nil, err`.
---@class aibench.Error
---@field kind string    short machine-readable class (`not_found`, `timeout`, `parse`, `connect`, ...)
---@field message string what went wrong, for a person
---@field field? string the field an "invalid" error is about (`workload.rate`, `resources.nodes`), when there is one

---Facts about the running aibench binary.
---@class aibench
---@field version string
local aibench = {}

---Absolute path of the running aibench binary (job scripts call it back).
---@return string
function aibench.exe() end

---`$AIBENCH_HOME` (default `~/.aibenchmark`).
---@return string
function aibench.home() end

---This node's short host name.
---@return string
function aibench.hostname() end

---Names of modules `require` can load: `"native"`, `"lua"` or all.
---@param kind? "native"|"lua"
---@return string[]
function aibench.modules(kind) end

---Text of a stock recipe shipped in the binary (`servers/vllm-sim.yaml`), or nil.
---@param path string
---@return string?
function aibench.stock_recipe(path) end

---Paths of all stock recipes shipped in the binary.
---@return string[]
function aibench.stock_recipes() end

---Checks a name that becomes part of paths (recipe and service names, ids):
---letters, digits, `.`, `_`, `-`, not starting with `.`, at most 64 characters.
---@param name string
---@return true? ok
---@return aibench.Error? err `kind = "invalid"`, the message says what was expected
function aibench.check_name(name) end

---The closest of `names` to `s` when it looks like a typo of it (the rule
---every did-you-mean of aibench uses, in Rust and in Lua), else nil.
---@param s string
---@param names string[]
---@return string?
function aibench.suggest(s, names) end

---The description of a recipe section a Rust type owns (`target`, `slo`,
---`resources`), in the recipe checker's terms: `{kind = "table", fields = {...}}`.
---@param name "target"|"slo"|"resources"
---@return table
function aibench.schema(name) end

---An error value's message for a person: the innermost cause of an error a
---native function raised, or the string itself, without tracebacks.
---@param err any
---@return string
function aibench.error_message(err) end

---An error value as data. A field error raised by a native function (a bad
---spec, recipe or job field) gives `{kind = "invalid", field = "workload.rate",
---message = "expected ..."}`, the message without the field, so a caller can
---name the field in its own terms (a recipe field, a flag). Any other error
---gives `{kind = "error", message = aibench.error_message(err)}`; an error
---table is returned as it is.
---@param err any
---@return aibench.Error
function aibench.error_info(err) end

---While held, SIGINT (Ctrl-C) and SIGTERM do not end the process: they are
---reported to the holder, which stops cleanly. A second Ctrl-C still quits.
---@class aibench.Guard
local Guard = {}

---The stop request waiting, if any.
---@return "SIGINT"|"SIGTERM"|nil
function Guard:signal() end

---Sleeps, returning early with the signal's name when one arrives.
---@async
---@param s number seconds
---@return "SIGINT"|"SIGTERM"|nil
function Guard:sleep(s) end

---Lets signals act as usual again (also when the guard is collected).
function Guard:release() end

---Takes a guard over SIGINT and SIGTERM.
---@return aibench.Guard
function aibench.guard() end

---The exit status for a run ended by a signal: 130 for SIGINT, 143 for SIGTERM.
---@param signal string
---@return integer
function aibench.exit_code(signal) end

return aibench
