-- The hpc section of a result survives a broken SLURM side, with no cluster:
-- fake sacct / squeue / scontrol first on PATH print NaN, garbage or
-- nothing ever, and config/slurm.yml holds bad prices. Each becomes a
-- warning in hpc.warnings that names what is wrong (the file and the
-- field, with a did-you-mean for a typo), never an error that loses the
-- result; a hung command is stopped at AIBENCH_SLURM_TIMEOUT_S.
local hpc = require("aibench.hpc")
local accounting = require("aibench.accounting")
local fs = require("aibench.fs")
local env = require("aibench.env")
local time = require("aibench.time")
local json = require("aibench.json")
local aibench = require("aibench")
local t = require("aibench.testing")

local dir = assert(fs.tmpdir())
local bin = fs.join(dir, "bin")
local CONFIG = fs.join(aibench.home(), "config", "slurm.yml")

-- One script per command, written once (before any is run); what it does
-- is $FAKE_SLURM, set by each case.
local L = "2026-12-01T10:00:00|2026-12-01T10:00:00|2026-12-01T10:00:03|Unknown"
local FAKES = {
  sacct = [[
case "$FAKE_SLURM" in
  nan)
    echo "41|srv|RUNNING|]] .. L .. [[|120|billing=NaN,cpu=4,mem=8G,node=1|00:12.250||inf|node1"
    echo "42|cli|COMPLETED|]] .. L .. [[|30|billing=1,cpu=1,mem=1G,node=1|00:05.000||-5|node1"
    ;;
  garbage)
    echo "sacct: error: something odd happened"
    echo "not|sacct|output"
    ;;
  hang)
    sleep 60
    ;;
  *)
    echo "41|srv|RUNNING|]] .. L .. [[|120|billing=4,cpu=4,mem=8G,node=1|00:12.250||0|node1"
    echo "42|cli|COMPLETED|]] .. L .. [[|30|billing=1,cpu=1,mem=1G,node=1|00:05.000||0|node1"
    ;;
esac
]],
  squeue = [[
case "$FAKE_SLURM" in
  hang) sleep 60 ;;
  *) echo "77|someone|train|RUNNING" ;;
esac
]],
  scontrol = [[
echo "NodeName=n1 Arch=x86_64 CPUAlloc=6 CPUTot=16 CPULoad=3.25"
]],
}
for name, body in pairs(FAKES) do
  assert(fs.write(fs.join(bin, name), "#!/bin/sh\n" .. body, { mkdir = true, mode = tonumber("755", 8) }))
end
env.set("PATH", bin .. ":" .. (env.get("PATH") or "/usr/bin:/bin"))
env.set("AIBENCH_SLURM_TIMEOUT_S", "2")

local BENCH = { duration_s = 60, successes = 100, tokens = { output_total = 6000 } }

--- hpc.collect for a run served by SLURM job 41 (on `node`, "" for none)
--- with client job 42, as the client manager calls it.
local function collect(mode, node)
  env.set("FAKE_SLURM", mode)
  local started = {
    instances = { { executor = "slurm", job_id = "41", node = node or "", instance_id = "srv-1", extra = json.null } },
    node_start = { nodes = {}, other_jobs = 0 },
  }
  local ok, h = pcall(hpc.collect, { started = started, job_ids = { "42" }, bench = BENCH })
  t.ok(ok, "hpc.collect raised: " .. tostring(h))
  t.ok(type(h) == "table", "an hpc section")
  t.ok(type(h.warnings) == "table", "hpc.warnings")
  return h, table.concat(h.warnings, "\n")
end

local function config(text)
  assert(fs.write(CONFIG, text, { mkdir = true }))
end

t.case("a good sacct answer gives no warnings", function()
  local h, all = collect("ok")
  t.eq(all, "")
  t.eq(#h.accounting.jobs, 2)
  t.eq(h.efficiency.per, "node")
  t.eq(h.efficiency.cost_unit, "billing units")
end)

t.case("sacct printing billing=NaN, inf and negative energy: warnings, usable numbers", function()
  local h, all = collect("nan")
  t.contains(all, "sacct: job 41: billing=NaN is not a usable value; left out")
  t.contains(all, "sacct: job 41: ConsumedEnergyRaw=inf is not a usable value")
  t.contains(all, "sacct: job 42: ConsumedEnergyRaw=-5 is not a usable value")
  local j = h.accounting.jobs[1]
  t.eq(j.job_id, "41")
  t.eq(j.billing, 0)
  t.eq(h.accounting.energy_j, json.null)
  t.ok(type(h.accounting.billing_hours) == "number" and h.accounting.billing_hours == h.accounting.billing_hours)
  t.eq(h.efficiency.per, "node")
  t.near(h.efficiency.hours, 60 / 3600, 1e-9)
  -- No billing and no prices: no cost, rather than a NaN one.
  t.eq(h.efficiency.cost_per_million_output_tokens, json.null)
end)

t.case("garbage from sacct: a warning, never a silent 0 jobs or -0.0000", function()
  local h, all = collect("garbage")
  t.eq(#h.accounting.jobs, 0)
  t.contains(all, "sacct: 2 lines of its output could not be read")
  t.contains(all, 'e.g. "sacct: error: something odd happened"')
  t.contains(all, "sacct has no record of jobs 41, 42")
  t.eq(string.format("%.4f", h.accounting.node_hours), "0.0000")
  local text = {}
  for _, l in ipairs(require("aibench.report.format").hpc_lines({ hpc = h })) do
    text[#text + 1] = table.concat(l, ": ")
  end
  text = table.concat(text, "\n")
  t.contains(text, "0 SLURM jobs: 0.0000 node-hours")
  t.ok(not text:find("-0.0", 1, true), text)
end)

t.case("a hung sacct and squeue are stopped at AIBENCH_SLURM_TIMEOUT_S", function()
  local t0 = time.monotonic()
  local h, all = collect("hang", "n1")
  local took = time.monotonic() - t0
  t.contains(all, "accounting: sacct did not answer within 2 s and was stopped")
  t.contains(all, "node sharing on n1: squeue did not answer within 2 s and was stopped")
  t.contains(h.accounting_error, "sacct did not answer within 2 s")
  t.eq(h.accounting, json.null)
  -- Two commands at 2 s each, not sleep's 60 s.
  t.ok(took >= 3.5 and took < 20, string.format("took %.1f s", took))
  -- The same calls answer again once the commands do.
  local h2, all2 = collect("ok", "n1")
  t.eq(all2, "")
  t.eq(h2.node_sharing["end"].nodes[1].cpu_load, 3.25)
  t.eq(h2.other_jobs, 1)
end)

t.case("issue 23: the user's own aibench jobs on the node (a monitor) do not make it shared", function()
  local deploy = require("aibench.deploy")
  -- Job 77 (the fake squeue's only other job) is, here, this user's monitor.
  local dir = deploy.new_job_dir("mon")
  deploy.write_meta(dir, { kind = "monitor", recipe = "vllm-monitor", executor = "slurm", job_id = "77", dir = dir, instance_id = "m1" })
  local h = collect("ok", "n1")
  t.eq(h.other_jobs, 0)
  t.eq(h.shared_node, false)
  t.eq(#h.node_sharing["end"].nodes[1].other_jobs, 0)
  fs.remove(dir, { recursive = true })
  -- Without it, job 77 is another job: the node is shared.
  local h2 = collect("ok", "n1")
  t.eq(h2.other_jobs, 1)
  t.eq(h2.shared_node, true)
end)

t.case("a failure inside the hpc section is a warning, never an error", function()
  local h = hpc.collect({ started = { instances = 5 }, job_ids = { "42" }, bench = BENCH })
  t.ok(type(h) == "table")
  t.contains(table.concat(h.warnings, "\n"), "the hpc section is incomplete: ")
  t.eq(hpc.collect({ bench = BENCH }), json.null)
end)

t.case("bad pricing in config/slurm.yml: warnings naming the file and the field", function()
  -- The typo: named with what was meant; the valid node_hour is still used.
  config("pricing:\n  node_hour: 10\n  currencyy: EUR\n")
  local h, all = collect("ok")
  t.contains(all, CONFIG .. ": pricing.currencyy: unknown field (did you mean 'currency'?)")
  t.eq(h.efficiency.cost_unit, "currency units")
  -- 10 per node-hour, 1 node for 60 s, 6000 output tokens.
  t.near(h.efficiency.cost_per_million_output_tokens, 10 / 60 / 6000 * 1e6, 1e-6)

  config("pricing:\n  nodehour: 10\n")
  local _, all = collect("ok")
  t.contains(all, CONFIG .. ": pricing.nodehour: unknown field (did you mean 'node_hour'?)")

  -- Not YAML: the file named, its prices not used, the cost in billing units.
  config("pricing: {\n")
  h, all = collect("ok")
  t.contains(all, CONFIG .. ": line ")
  t.contains(all, "its prices are not used")
  t.eq(h.efficiency.cost_unit, "billing units")

  -- The wrong type.
  config("pricing: [1, 2, 3]\n")
  h, all = collect("ok")
  t.contains(all, CONFIG .. ": pricing: expected a table of gpu_hour, node_hour and currency, got a list")
  t.eq(h.efficiency.cost_unit, "billing units")

  -- Negative and non-finite prices.
  config("pricing:\n  node_hour: -2\n  currency: EUR\n")
  h, all = collect("ok")
  t.contains(all, CONFIG .. ": pricing.node_hour: expected a finite price above 0, got -2")
  t.eq(h.efficiency.cost_unit, "billing units")
  config("pricing:\n  node_hour: .inf\n")
  _, all = collect("ok")
  t.contains(all, CONFIG)
  t.contains(all, "not finite")

  -- A valid file: no warnings, its prices used.
  config("pricing:\n  node_hour: 10\n  currency: EUR\n")
  h, all = collect("ok")
  t.eq(all, "")
  t.eq(h.efficiency.cost_unit, "EUR")
  fs.remove(fs.join(aibench.home(), "config"), { recursive = true })
end)

t.case("accounting.pricing and accounting.efficiency check prices", function()
  local p, problems = accounting.pricing({ gpu_hour = 0 / 0, node_hour = 3, currency = "EUR" }, "x.yml")
  t.eq(p, { node_hour = 3, currency = "EUR" })
  t.eq(problems, { "x.yml: pricing.gpu_hour: expected a finite price above 0, got NaN" })
  p, problems = accounting.pricing(nil, "x.yml")
  t.eq(p, {})
  t.eq(#problems, 0)
  p, problems = accounting.pricing("cheap", "x.yml")
  t.eq(p, {})
  t.eq(problems, { 'x.yml: pricing: expected a table of gpu_hour, node_hour and currency, got "cheap"' })
  t.raises("accounting.efficiency: pricing.gpu_hour: expected a finite price above 0, got -1", accounting.efficiency,
    { output_tokens = 10, requests = 1, window_s = 60, gpus = 1, pricing = { gpu_hour = -1 } })
end)

t.case("stopped server jobs: accounting lines, and accounting.json in each SLURM job's folder", function()
  local d41, dlocal = fs.join(dir, "job-41"), fs.join(dir, "job-local")
  assert(fs.write(fs.join(d41, ".keep"), "", { mkdir = true }))
  assert(fs.write(fs.join(dlocal, ".keep"), "", { mkdir = true }))
  t.eq(hpc.stopped_accounting({}), {})
  t.eq(hpc.stopped_accounting({ { executor = "local", job_id = "local-1", dir = dlocal } }), {})
  env.set("FAKE_SLURM", "ok")
  local lines = hpc.stopped_accounting({ { executor = "slurm", job_id = "41", dir = d41 }, { executor = "local", job_id = "local-1", dir = dlocal } })
  t.ok(#lines >= 1, "a line per job sacct knows")
  t.contains(lines[1], "job 41 (RUNNING): ")
  t.contains(lines[1], "node-hours")
  local one = json.decode(assert(fs.read(fs.join(d41, "accounting.json"))))
  t.ok(type(one.node_hours) == "number", "accounting.json holds the job's totals")
  t.ok(not fs.exists(fs.join(dlocal, "accounting.json")), "nothing for a local job")
  env.set("FAKE_SLURM", "hang")
  lines = hpc.stopped_accounting({ { executor = "slurm", job_id = "41", dir = d41 } })
  t.eq(#lines, 1)
  t.contains(lines[1], "accounting: sacct did not answer within 2 s")
end)

t.run()
env.set("FAKE_SLURM", nil)
fs.remove(dir, { recursive = true })
