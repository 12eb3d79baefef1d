---@meta aibench.sim

---The simulated vLLM server, run inside the script's process.
---@class aibench.sim
local sim = {}

---@class aibench.sim.Options
---@field port? integer 0 (default) picks a free port
---@field host? string default 127.0.0.1
---@field profile? string stock profile (`instant`, `opt-125m-cpu`, `llama-8b-a100`) or a YAML file; default opt-125m-cpu
---@field model? string served model name (default: the profile's)
---@field seed? integer text, output lengths and fault draws
---@field max_num_seqs? integer override the profile
---@field kv_cache_tokens? integer override the profile
---@field max_model_len? integer override the profile
---@field fail_rate? number fraction of requests answered with HTTP 500
---@field body_budget_mib? integer request bodies held at once, all connections together, MiB (default 256)
---@field disconnect_rate? number fraction whose connection drops mid-stream
---@field stall_rate? number fraction whose stream pauses for `stall_s`
---@field stall_s? number default 1
---@field startup_delay_s? number /health answers 503 this long
---@field enable_prefix_caching? boolean vLLM's prefix caching (default: the profile's, on)
---@field block_size? integer tokens per KV block, the prefix cache's unit (default: the profile's, 128)
---@field tokenizer? string count prompt tokens with this model folder (or tokenizer.json), as vLLM does; default: the profile's, else words

---A running simulator.
---@class aibench.sim.Handle
---@field url string base URL, e.g. http://127.0.0.1:40123
---@field port integer
---@field model string served model name
local Handle = {}

---Stops it: in-flight streams end with finish reason `abort` and `[DONE]`.
---@async
function Handle:stop() end

---The current `/metrics` text.
---@async
---@return string
function Handle:metrics() end

---Starts a simulator.
---@async
---@param opts? aibench.sim.Options
---@return aibench.sim.Handle? handle
---@return aibench.Error? err `kind = "bind"` when the port cannot be used
function sim.start(opts) end

---Names of the stock profiles.
---@return string[]
function sim.profiles() end

---A profile's parameters (stock name or YAML file).
---@param name string
---@return table? profile
---@return aibench.Error? err
function sim.profile(name) end

---Prompt tokens of a text as the simulator counts them without a tokenizer (whitespace-separated words).
---@param text string
---@return integer
function sim.count_tokens(text) end

return sim
