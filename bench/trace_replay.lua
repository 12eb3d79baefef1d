-- Replays the first N lines of a trace at time scale 1 against URL and
-- prints one JSON line of schedule fidelity (for bench/trace_replay.sh).
--   aibench run bench/trace_replay.lua URL TRACE N TOKENIZER
local bench = require("aibench.bench")
local json = require("aibench.json")
local url, trace, n, tok = arg[1], arg[2], tonumber(arg[3]), arg[4]
local r = assert(bench.run({
  target = { url = url, tokenizer = tok },
  workload = { pattern = "trace", time_scale = 1.0, total_requests = n },
  dataset = { type = "trace", path = trace },
  progress = false,
}))
print(json.encode({
  offered = r.trace.offered, sent = r.trace.sent, errors = r.errors,
  requested = r.rate.requested_req_per_sec, achieved = r.rate.achieved_req_per_sec,
  lag_p50 = r.send_lag_ms.p50, lag_p99 = r.send_lag_ms.p99, worst_offset = r.trace.worst_send_offset_ms,
  trace_gap_mean = r.trace.trace_gap_ms.mean, achieved_gap_mean = r.trace.achieved_gap_ms.mean,
  trace_gap_p99 = r.trace.trace_gap_ms.p99, achieved_gap_p99 = r.trace.achieved_gap_ms.p99,
  exact = r.asked_vs_served.prompt.worst_abs == 0, client_limited = r.validity.client_limited,
}))
