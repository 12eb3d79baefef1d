-- Runs the MeluXina report's four scenarios against one server and prints its Table 4
-- (throughput, average and maximum latency, requests) with the columns the
-- seed could not measure: TTFT/ITL/TPOT p50/p99, tokens/s, goodput and the
-- Little's-law check of the client, and (SLURM runs) the efficiency: output tokens
-- per GPU-hour (node-hour on CPU-only servers), energy per token and cost per
-- million tokens.
--
--   aibench run examples/paper-table.lua [--duration 30] [--recipe vllm-server --executor slurm]
local scenario = require("aibench.scenario")
local report = require("aibench.report")
local num = report.num

local o = scenario.args(arg)
local tests = {
  { "Simple Test", "vllm-simple-test", { 1.81, 52.30, 100.97, 218 } },
  { "Stress Test", "vllm-stress-test", { 2.65, 276.59, 507.29, 1593 } },
  { "High-Throughput", "vllm-high-throughput-test", { 12.02, 33.10, 5037.83, 5000 } },
  { "Long-Context", "vllm-long-context-test", { 0.69, 945.93, 1422.34, 416 } },
}

local rows = scenario.with_environment(o, function(env)
  local out = {}
  for _, tst in ipairs(tests) do
    io.stderr:write("== ", tst[1], "\n")
    out[#out + 1] = { tst, scenario.bench(env, tst[2], o) }
  end
  return out
end)

local function pair(s, k1, k2)
  if not s or s == require("aibench.json").null then
    return "-"
  end
  return num(s[k1], 1) .. " / " .. num(s[k2], 1)
end

local t4 = { { "Test", "Throughput (req/s)", "Avg Latency (ms)", "Max Latency (ms)", "Requests", "seed: req/s", "seed: avg ms" } }
local extra = { { "Test", "TTFT p50/p99 ms", "ITL p50/p99 ms", "TPOT p50/p99 ms", "out tok/s", "goodput req/s", "Little's law exp/meas req/s" } }
for _, r in ipairs(rows) do
  local tst, rec = r[1], r[2]
  local b = rec.bench
  t4[#t4 + 1] = { tst[1], num(b.throughput_req_per_sec, 2), num(b.avg_latency_ms, 2), num(b.max_latency_ms, 2), tostring(b.total_requests), num(tst[3][1], 2), num(tst[3][2], 2) }
  local ll = b.littles_law
  extra[#extra + 1] = {
    tst[1], pair(b.ttft_ms, "p50", "p99"), pair(b.itl_ms, "p50", "p99"), pair(b.tpot_ms, "p50", "p99"),
    num(b.tokens.output_per_s, 1), b.goodput ~= require("aibench.json").null and num(b.goodput.goodput_req_per_sec, 2) or "-",
    ll ~= require("aibench.json").null and (num(ll.expected_req_per_sec, 2) .. " / " .. num(ll.measured_req_per_sec, 2)) or "-",
  }
end
print("\nTable 4 (the MeluXina report's layout; its own figures for reference)\n")
print(report.columns(t4))
print("\nWhat the MeluXina report could not measure\n")
print(report.columns(extra))
local eff = { { "Test", "out tok per GPU/node-hour", "J per out token", "cost per 1M out tokens", "time to first serve s" } }
for _, r in ipairs(rows) do
  local h = r[2].hpc
  local present = require("aibench.report.format").present
  local e = present(h) and present(h.efficiency) and h.efficiency or nil
  local tl = present(h) and present(h.timeline) and h.timeline or nil
  eff[#eff + 1] = {
    r[1][1],
    e and (num(e.output_tokens_per_hour, 0) .. " /" .. e.per .. "-h") or "-",
    e and present(e.joules_per_output_token) and num(e.joules_per_output_token, 3) or "-",
    e and present(e.cost_per_million_output_tokens) and (num(e.cost_per_million_output_tokens, 4) .. " " .. (e.cost_unit or "")) or "-",
    tl and num(tl.total_s, 1) or "-",
  }
end
print("\nEfficiency (from SLURM accounting; '-' on the local executor)\n")
print(report.columns(eff))
print("\nresults:")
for _, r in ipairs(rows) do
  print("  " .. r[2].path)
end
print("\n" .. report.definitions_text())
