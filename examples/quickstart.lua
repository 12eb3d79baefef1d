-- The whole pipeline in under a minute, on this machine: deploy the
-- simulated vLLM server (local executor), start a Prometheus monitor if
-- Prometheus is installed, run a benchmark, write the report (terminal and
-- HTML) and clean up.
--
--   cargo run --release -- run examples/quickstart.lua      (or: aibench run examples/quickstart.lua)
local scenario = require("aibench.scenario")
local report = require("aibench.report")
local fs = require("aibench.fs")
local json = require("aibench.json")

local o = scenario.args(arg)
o.duration = o.duration or 15
o.executor = o.executor or "local"
local out_dir = o.out_dir or "results"

local rec = scenario.with_environment(o, function(env)
  return scenario.bench(env, "vllm-simple-test", o)
end)

print(report.terminal({ rec }))
local html = fs.join(out_dir, "quickstart-report.html")
assert(fs.write(html, report.html({ rec }), { mkdir = true }))
print("\nresult: " .. rec.path)
print("report: " .. html)
if rec.bench.successes == 0 or rec.server == json.null then
  os.exit(1)
end
