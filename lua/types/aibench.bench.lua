---@meta aibench.bench

---The native load generator. `bench.spec(t)` validates a spec once and returns
---it as a `Spec` (userdata); `bench.run(spec)` runs entirely in Rust (the hot
---loop never calls Lua) and returns a `Result` (userdata around the report:
---fields read as in the file, schema `aibench.bench/2`; `/1` results still load).
---Metric definitions follow vLLM's benchmark: TTFT = request sent -> first
---streamed chunk with content; ITL = gaps between content chunks, pooled;
---TPOT = (E2E - TTFT) / (output tokens - 1); E2E = sent -> last content chunk.
---@class aibench.bench
---@field schema string the result schema, "aibench.bench/2"
---@field schemas string[] every result schema this build reads, the current one first
local bench = {}

---@class aibench.bench.Target
---@field url string|string[] base URL(s): several (a service's instances) share the requests as `balance` says
---@field balance? "round_robin"|"least_outstanding" several URLs: each request to the next in turn (default), or to the one with the fewest requests in flight; a session keeps the URL it started on (its prefix cache)
---@field api? "openai-completions"|"openai-chat"|"ollama-generate"|"ollama-chat"|"http"
---@field model? string default: asked from /v1/models (or /api/tags)
---@field headers? table<string, string>
---@field timeout_s? number per request, default 600
---@field stream? boolean default true
---@field ignore_eos? boolean send ignore_eos (vLLM) so outputs have the asked length; default true
---@field path? string override the API's path
---@field method? string `http` API: method (default GET, or POST with a body)
---@field body? string `http` API: body; `{{seq}}` becomes the request number
---@field tokenizer? string prompt lengths counted by: a model folder (or its tokenizer.json), "server" (vLLM's /tokenize) or "words"; default: the server's /tokenize when it answers, else words (approximate). `dataset.tokenizer` is an alias
---@field prompt_format? "text"|"ids" openai-completions: send prompts as text (default) or token ids (exact by construction)

---@class aibench.bench.ClosedLoop
---@field pattern "closed-loop"
---@field users integer (alias concurrent_users)
---@field think_time_ms? number
---@field requests_per_user? integer
---@field total_requests? integer stop after this many requests in all
---@field duration_s? number (alias duration_seconds)
---@field ramp_up_s? number users start evenly spread over this
---@field warmup_s? number requests sent before this are excluded
---@field warmup_requests? integer the first N requests are excluded
---@field seed? integer

---@class aibench.bench.OpenLoop
---@field pattern "open-loop"
---@field rate number requests per second (alias requests_per_second)
---@field arrival? "constant"|"poisson"|"gamma" default poisson
---@field burstiness? number gamma shape (1 = Poisson, < 1 burstier)
---@field max_concurrency? integer requests beyond this wait (client queue time)
---@field duration_s? number
---@field total_requests? integer
---@field warmup_s? number
---@field warmup_requests? integer
---@field seed? integer

---@class aibench.bench.TraceReplay
---@field pattern "trace"
---@field time_scale? number send at timestamp × this (default 1; 0.5 = twice as fast)
---@field max_concurrency? integer
---@field total_requests? integer the trace's first N requests
---@field duration_s? number stop at this point of the replay
---@field warmup_requests? integer

---@class aibench.bench.Sessions
---@field pattern "sessions"
---@field users? integer sessions at once (each user starts a new one when one ends)
---@field session_rate? number or: new sessions per second (Poisson)
---@field max_concurrency? integer with session_rate: sessions at once at the most
---@field think_time_ms? number between a reply and the next turn
---@field turns? "dataset"|integer the dataset's turns (default), or at most N (synthetic: exactly N)
---@field history? "generated"|"dataset" the assistant turns kept: the streamed reply (default) or the dataset's answer
---@field duration_s? number
---@field total_sessions? integer
---@field ramp_up_s? number
---@field seed? integer

---A length: a token count, or a seeded distribution.
---@alias aibench.bench.Length integer|{dist: "fixed"|"uniform"|"normal"|"lognormal", mean?: number, stdev?: number, min?: integer, max?: integer}

---@class aibench.bench.Dataset
---@field type? "synthetic"|"jsonl"|"csv"|"list"|"sharegpt"|"messages"|"trace" (inferred from the fields when absent: prompts -> list, path -> jsonl or csv, else synthetic)
---@field prompt_tokens? aibench.bench.Length synthetic: prompt length in the model's tokens as the server counts them (BOS and, for chat, the template included); exact with a tokenizer
---@field tokenizer? string alias of target.tokenizer
---@field output_tokens? aibench.bench.Length tokens to generate (max_tokens + ignore_eos); sharegpt/messages: unset = the answer's token count
---@field spread? number synthetic: fixed lengths vary by ± this fraction
---@field prefix_tokens? integer synthetic: a shared prefix (a system prompt) of this many tokens before each prompt
---@field prefix_groups? integer synthetic: distinct shared prefixes; request i has prefix i mod groups
---@field seed? integer
---@field path? string jsonl, csv, sharegpt, messages, trace: the file (nothing is downloaded)
---@field field? string jsonl, csv: the prompt's field or column, default "prompt"
---@field output_field? string jsonl, csv: the output length's field or column
---@field delimiter? string csv: one character, default ","
---@field as_request? boolean jsonl: each line is a whole request body
---@field block_size? integer trace: tokens per hash id, default 512
---@field max_prompt_tokens? integer files: longer prompts are skipped (and counted)
---@field max_output_tokens? integer files: outputs are capped at this
---@field sample? integer files: use this many records
---@field shuffle? boolean files: shuffle first (seeded with seed); not for traces
---@field on_bad_line? "error"|"skip" files: a bad line stops with file:line (default) or is skipped and counted
---@field prompts? string[] list: the prompts

---@class aibench.bench.Slo
---@field ttft_ms? number
---@field tpot_ms? number
---@field itl_ms? number every gap of a request must meet it
---@field e2e_ms? number

---@class aibench.bench.Progress
---@field elapsed_s number
---@field completed integer
---@field errors integer
---@field in_flight integer
---@field req_per_s number over the last second
---@field output_tokens_per_s number
---@field p50_ttft_ms number?
---@field p50_latency_ms number?

---A spec as a table, before it is validated (`bench.spec` makes a Spec of it).
---@class aibench.bench.SpecTable
---@field target aibench.bench.Target
---@field workload aibench.bench.ClosedLoop|aibench.bench.OpenLoop|aibench.bench.TraceReplay|aibench.bench.Sessions
---@field dataset? aibench.bench.Dataset
---@field slo? aibench.bench.Slo
---@field per_request_log? string JSON lines, one per request, streamed to disk
---@field label? string
---@field progress? boolean progress bar on a terminal (default true; silent when not a TTY)
---@field on_progress? fun(p: aibench.bench.Progress) called about once a second

---A validated spec (userdata): fields read as in the table, with defaults
---filled in; read-only. `json.encode(spec)` writes it.
---@class aibench.bench.Spec
---@field target aibench.bench.Target
---@field workload aibench.bench.ClosedLoop|aibench.bench.OpenLoop|aibench.bench.TraceReplay|aibench.bench.Sessions
---@field dataset aibench.bench.Dataset
---@field slo? aibench.bench.Slo
---@field per_request_log? string
---@field label? string
local Spec = {}

---The spec as JSON text (what a job folder's spec.json holds).
---@param opts? {pretty?: boolean} default pretty
---@return string
function Spec:to_json(opts) end

---A plain table copy, to change and make a new spec of.
---@return aibench.bench.SpecTable
function Spec:to_table() end

---@class aibench.bench.Summary
---@field count integer
---@field mean number
---@field min number
---@field max number
---@field stdev number
---@field p50 number
---@field p90 number
---@field p95 number
---@field p99 number
---@field p999 number

---@class aibench.bench.GangInfo
---@field rank integer
---@field size integer
---@field host string
---@field start_unix number the common start instant, on rank 0's clock
---@field started_unix number when this task really started, on rank 0's clock
---@field clock_offset_s number rank 0's clock minus this task's
---@field clock_offset_bound_s number the offset is right to within this (half the shortest round trip)
---@field waited_s number time at the barrier
---@field method string how the offset was measured

---@class aibench.bench.Overlap
---@field parts integer
---@field start_spread_s number latest minus earliest start
---@field clock_offset_bound_s number? largest offset bound (nil: not gang-started)
---@field common_start_unix number
---@field common_end_unix number
---@field common_s number every part was sending in this window; rates come from it
---@field union_s number
---@field union_start_unix number the first start
---@field union_end_unix number the last end
---@field share number common_s / union_s
---@field min_share number
---@field partial boolean below min_share, merged because allowed
---@field gang_started boolean

---One target URL's share of a run (`per_url`); over the URLs, ok and errors add up to the run's.
---@class aibench.bench.UrlShare
---@field url string
---@field requests integer
---@field ok integer
---@field errors integer
---@field errors_by_class table<string, integer> the classes that occurred
---@field ttft_ms aibench.bench.Summary?
---@field latency_ms aibench.bench.Summary? E2E
---@field ttft_hist string? HdrHistogram V2, base64, microseconds (for merging)
---@field latency_hist string?

---@class aibench.bench.Result
---@field schema string
---@field total_requests integer
---@field successes integer
---@field errors integer
---@field avg_latency_ms number
---@field min_latency_ms number
---@field max_latency_ms number
---@field throughput_req_per_sec number
---@field errors_by_class table<string, integer> connect, timeout, http_4xx, http_5xx, stream_broken, other
---@field error_samples table<string, string[]>
---@field balance "round_robin"|"least_outstanding"|"mixed" how requests were spread over the URLs ("mixed": a merge of runs that differed)
---@field per_url aibench.bench.UrlShare[] each URL's share, in target.urls order (one entry for one URL; empty in a merge with results from before it was kept)
---@field latency_ms aibench.bench.Summary?
---@field ttft_ms aibench.bench.Summary?
---@field tpot_ms aibench.bench.Summary?
---@field itl_ms aibench.bench.Summary?
---@field queue_ms aibench.bench.Summary?
---@field send_lag_ms aibench.bench.Summary? open loop: intended -> ready to send
---@field latency_from_intended_ms aibench.bench.Summary? open loop: coordinated-omission corrected
---@field tokens table input/output totals and rates, and their source
---@field goodput table? good requests, goodput_req_per_sec, attainment
---@field rate table? open loop: requested vs achieved
---@field littles_law table? closed loop: expected vs measured rate
---@field timeseries table per-second completed, errors, output_tokens, in_flight, means
---@field histograms table<string, string> HdrHistogram V2, base64, microseconds
---@field connect_ms aibench.bench.Summary? opening new connections
---@field prompt_tokens_source string "tokenizer PATH", "server /tokenize", "words (approximate)" or "none"
---@field asked_vs_served table? prompt and output: asked/served totals and means, worst request; served_prompt_tokens (a Summary in tokens)
---@field validity {client_limited: boolean, reasons: string[], cpu_util: number, cores: integer, loop_delay_p99_ms: number?, send_lag_p99_ms: number?, connect_p99_ms: number?, connects: integer, client_gap_ms: number?}
---@field warnings string[] approximate prompt lengths, served prompts off by more than 2%, a client-limited run
---@field interrupted boolean
---@field interrupted_by string?
---@field duration_s number
---@field gang aibench.bench.GangInfo? one task of a gang-started client job
---@field overlap aibench.bench.Overlap? a merge of several clients: start spread, common window
---@field incomplete string? why parts of the run are missing (a lost node's task)
---A result (userdata around the engine's report): fields read as in the result
---file and are read-only; `json.encode(r)` writes the file's form; `pairs(r)`
---walks the fields.
local Result = {}

---A metric's value at a percentile, in ms (nil when the result has no such histogram).
---@param metric "latency"|"ttft"|"tpot"|"itl"|"queue"|"send_lag"|"latency_from_intended"|"connect"
---@param p number 0-100
---@return number?
function Result:percentile(metric, p) end

---`{{percentile, ms}, ...}` for a metric (default percentiles as bench.percentiles).
---@param metric string
---@param percentiles? number[]
---@return number[][]?
function Result:percentiles(metric, percentiles) end

---This result merged with others, exactly (histograms added): a new result.
---@param ... aibench.bench.Result
---@return aibench.bench.Result
function Result:merge(...) end

---The result as JSON text (the result file format).
---@param opts? {pretty?: boolean} default pretty
---@return string
function Result:to_json(opts) end

---A plain table copy of the fields.
---@return table
function Result:to_table() end

---Marks the run as interrupted by a signal (e.g. "SIGTERM"): the one change a result takes.
---@param by string
function Result:mark_interrupted(by) end

---Marks the run as incomplete (parts missing: a lost node's client task), with why; adds a warning.
---@param why string
function Result:mark_incomplete(why) end

---Validates a spec once: the Spec, or nil and an error whose `field` names
---the spec field (`workload.rate`) and whose `message` says what was expected.
---@param spec aibench.bench.SpecTable|string a table or JSON text
---@return aibench.bench.Spec? spec
---@return aibench.Error? err {kind = "invalid", field?, message}
function bench.spec(spec) end

---Runs a benchmark. A spec given as a table is validated first; a bad one
---raises naming the field (`aibench.error_info(err).field`), as do run-time
---problems with a field (an unreadable dataset, prompts over the server's
---max_model_len). A target that cannot be used at all (model discovery
---fails) returns nil, err.
---@async
---@param spec aibench.bench.Spec|aibench.bench.SpecTable
---@param opts? {progress?: boolean, on_progress?: fun(p: aibench.bench.Progress), gang?: {dir: string, rank: integer, size: integer, timeout_s?: number, lead_s?: number, hold_s?: number}} (a table spec may carry progress/on_progress itself); `gang`: one task of K that meet at the barrier folder `dir` and start together (`lead_s` ahead of the last arrival, default 1; `timeout_s` default 600; `hold_s` holds this task back, for tests)
---@return aibench.bench.Result? result
---@return aibench.Error? err
function bench.run(spec, opts) end

---A result from a result table or JSON text (the file format), checked once.
---@param result table|string|aibench.bench.Result
---@return aibench.bench.Result
function bench.result(result) end

---Merges results (e.g. from several client nodes) exactly: histograms added,
---counts summed, rates over the common window in which every run was
---sending. Runs whose common window is under `min_overlap` (default 0.9) of
---their span are refused unless `allow_partial_overlap` (then flagged).
---@param results (aibench.bench.Result|table)[]
---@param opts? {allow_partial_overlap?: boolean, min_overlap?: number}
---@return aibench.bench.Result
function bench.merge(results, opts) end

---A result as JSON text.
---@param result aibench.bench.Result
---@param opts? {pretty?: boolean} default pretty
---@return string
function bench.to_json(result, opts) end

---Like bench.spec, but a bad spec raises naming the field.
---@param spec aibench.bench.SpecTable|aibench.bench.Spec
---@return aibench.bench.Spec
function bench.validate(spec) end

---The intended send times (seconds from start) of an open-loop workload.
---@param workload aibench.bench.OpenLoop
---@return number[]
function bench.arrivals(workload) end

---Latency at given percentiles, from a result's histogram.
---@param result aibench.bench.Result
---@param metric "latency"|"ttft"|"tpot"|"itl"|"queue"|"send_lag"|"latency_from_intended"
---@param percentiles? number[] 0-100 (default 0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100)
---@return number[][]? points {{percentile, ms}, ...}; nil when the result has no such histogram
function bench.percentiles(result, metric, percentiles) end

return bench
