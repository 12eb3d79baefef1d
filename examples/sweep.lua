-- Raises the open-loop request rate step by step until goodput stops rising,
-- and reports the knee: the highest rate the server sustains within the SLOs.
--
--   aibench run examples/sweep.lua [--start-rate 2] [--factor 1.5] [--step-duration 10]
--       [--ttft-ms 500] [--tpot-ms 100] [--max-rate 500] [--recipe ... --executor slurm]
local scenario = require("aibench.scenario")
local bench = require("aibench.bench")
local report = require("aibench.report")
local fs = require("aibench.fs")
local json = require("aibench.json")
local time = require("aibench.time")
local num = report.num

local o = scenario.args(arg, {
  ["start-rate"] = "number",
  factor = "number",
  ["step-duration"] = "number",
  ["ttft-ms"] = "number",
  ["tpot-ms"] = "number",
  ["max-rate"] = "number",
  ["prompt-tokens"] = "number",
  ["output-tokens"] = "number",
})
local rate = o.start_rate or 2
local factor = o.factor or 1.5
if factor <= 1 then
  error("--factor: expected a number above 1, got " .. factor, 0)
end

local steps = scenario.with_environment(o, function(env)
  local url = o.url or env.server[1].instance.url
  local out, best, flat = {}, nil, 0
  while rate <= (o.max_rate or 500) do
    io.stderr:write(string.format("== %.2f req/s\n", rate))
    local r = assert(bench.run({
      target = { url = url },
      workload = { pattern = "open-loop", rate = rate, arrival = "poisson", duration_s = o.step_duration or o.duration or 10, warmup_s = 1, seed = #out + 1 },
      dataset = { prompt_tokens = math.floor(o.prompt_tokens or 128), output_tokens = math.floor(o.output_tokens or 64) },
      slo = { ttft_ms = o.ttft_ms or 500, tpot_ms = o.tpot_ms or 100 },
      progress = true,
    }))
    local g = r.goodput.goodput_req_per_sec
    out[#out + 1] = { rate = rate, result = r, goodput = g }
    if not best or g > best.goodput * 1.02 then
      best, flat = out[#out], 0
    else
      flat = flat + 1
    end
    -- Two steps without a 2% gain in goodput: past the knee.
    if flat >= 2 or r.errors > 0.05 * r.total_requests then
      break
    end
    rate = rate * factor
  end
  return { steps = out, knee = best }
end)

local rows = { { "rate asked", "sent req/s", "goodput req/s", "meet SLO", "TTFT p99 ms", "E2E p99 ms", "errors" } }
for _, s in ipairs(steps.steps) do
  local r = s.result
  rows[#rows + 1] = {
    num(s.rate, 2), num(r.rate.achieved_req_per_sec, 2), num(s.goodput, 2), string.format("%.1f%%", 100 * r.goodput.attainment),
    r.ttft_ms ~= json.null and num(r.ttft_ms.p99, 1) or "-", r.latency_ms ~= json.null and num(r.latency_ms.p99, 1) or "-", tostring(r.errors),
  }
end
print(report.columns(rows))
print(string.format("\nknee: %.2f req/s offered gives the most goodput, %.2f req/s within the SLOs (TTFT <= %d ms, TPOT <= %d ms)",
  steps.knee.rate, steps.knee.goodput, o.ttft_ms or 500, o.tpot_ms or 100))
local out_dir = o.out_dir or "results"
local path = fs.join(out_dir, "sweep-" .. time.format(nil, "%Y%m%dT%H%M%SZ") .. ".json")
local summary = { schema = "aibench.sweep/1", knee_rate = steps.knee.rate, knee_goodput = steps.knee.goodput, steps = {} }
for i, s in ipairs(steps.steps) do
  summary.steps[i] = { rate = s.rate, goodput = s.goodput, result = s.result }
end
assert(fs.write(path, json.encode(summary) .. "\n", { mkdir = true }))
print("sweep saved to " .. path)
