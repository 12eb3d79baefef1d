-- needs: slurm
-- The HPC side of the numbers on the real single-node cluster with slurmdbd:
-- the deployment timeline (ordered, its parts adding up), accounting from
-- sacct against the job's own wall time, efficiency over the window, a
-- shared node flagged, and a pending job's reason and expected start.
local server = require("aibench.server")
local client = require("aibench.client")
local accounting = require("aibench.accounting")
local hpc = require("aibench.hpc")
local report = require("aibench.report")
local proc = require("aibench.proc")
local fs = require("aibench.fs")
local time = require("aibench.time")
local json = require("aibench.json")
local aibench = require("aibench")
local flows = dofile("tests/lua/support/flows.lua")
local t = require("aibench.testing")

local dir = assert(fs.tmpdir())

local squeue_state = flows.squeue_state


local function sbatch(args)
  local argv = { "sbatch", "--parsable", "-p", "cpu", "-n", "1", "-o", "/dev/null" }
  for _, a in ipairs(args) do
    argv[#argv + 1] = a
  end
  local r = assert(proc.run(argv))
  t.eq(r.code, 0, r.stderr)
  return (r.stdout:gsub("%s+$", ""):gsub(";.*", ""))
end

t.case("timeline, accounting and efficiency of a SLURM run; the neighbour's job flags a shared node", function()
  local submitted = time.now()
  local ready = assert(server.run({ recipe = "vllm-sim", executor = "slurm", quiet = true }))
  local m = ready[1]
  -- The agent's record: SLURM's times, then its own, in order.
  local tl = assert(hpc.timeline(m.instance.extra.timeline))
  t.eq(tl.from, "submit")
  local mk = tl.marks
  local order = { "submit_unix", "eligible_unix", "start_unix", "agent_start_unix", "service_start_unix", "healthy_unix", "registered_unix" }
  for i = 2, #order do
    -- SLURM's times have whole seconds (the StartTime truncated).
    t.ok(mk[order[i]] + 1 >= mk[order[i - 1]], order[i] .. " after " .. order[i - 1] .. ": " .. json.encode(mk))
  end
  t.ok(mk.submit_unix >= math.floor(submitted) - 1 and mk.registered_unix <= time.now(), json.encode(mk))
  local sum = 0
  for _, p in ipairs(tl.parts) do
    sum = sum + p.seconds
  end
  t.ok(math.abs(sum - tl.total_s) < 1e-6, "parts add up")
  t.ok(math.abs(tl.total_s - (mk.registered_unix - mk.submit_unix)) < 1e-6, "to the deployment's time to first serve")
  local st = proc.run({ aibench.exe(), "server", "status", m.instance_id })
  t.contains(st.stdout, "first serve ")

  -- Another user's work on the same node.
  local neighbour = sbatch({ "--job-name", "neighbour", "--wrap", "sleep 120" })
  flows.wait_for("the neighbour to run", 60, function()
    return squeue_state(neighbour) == "RUNNING"
  end)
  local saved = assert(client.run({ recipe = "vllm-simple-test", set = { "workload.duration_seconds=3" }, out_dir = fs.join(dir, "results"), progress = false }))
  local rec = saved[1]
  local h = rec.hpc
  t.ok(h ~= json.null, "a SLURM server gives an hpc section")
  t.eq(h.server_job_ids, { m.job_id })
  t.eq(h.shared_node, true)
  t.ok(h.other_jobs >= 1)
  local names = {}
  for _, j in ipairs(h.node_sharing["end"].nodes[1].other_jobs) do
    names[j.name] = true
  end
  t.ok(names.neighbour, json.encode(h.node_sharing))
  t.ok(h.accounting ~= json.null, "accounting: " .. json.encode({ warnings = rec.warnings, hpc = h.warnings }))
  t.eq(h.accounting.jobs[1].job_id, m.job_id)
  t.eq(h.accounting.jobs[1].state, "RUNNING")
  -- vllm-sim asks for no GPU: per node-hour, over the benchmark window.
  local e = h.efficiency
  t.eq(e.per, "node")
  t.ok(math.abs(e.hours - rec.bench.duration_s / 3600) < 1e-9, json.encode(e))
  t.ok(math.abs(e.output_tokens_per_hour - rec.bench.tokens.output_total / e.hours) < 1e-6)
  t.eq(e.cost_unit, "billing units")
  local text = report.hpc_summary(rec)
  t.contains(text, "shared node")
  t.contains(text, "accounting")
  t.contains(text, "output tokens and")
  t.contains(report.html({ rec }), 'class="warning shared-node"')
  proc.run({ "scancel", neighbour })

  -- Stopped: sacct's node-hours are the job's wall time.
  local stopped_at = time.now()
  local st2 = proc.run({ aibench.exe(), "server", "stop-all" })
  t.eq(st2.code, 0, st2.stderr)
  t.contains(st2.stdout, "job " .. m.job_id .. " (")
  t.contains(st2.stdout, "node-hours")
  t.ok(fs.exists(fs.join(m.dir, "accounting.json")))
  local j = flows.wait_for("sacct to record the end", 60, function()
    local acc = accounting.sacct({ m.job_id })
    local job = acc and acc.jobs[1]
    return job and job.end_unix and job.end_unix ~= json.null and job
  end)
  t.ok(math.abs(j.elapsed_s - (j.end_unix - j.start_unix)) <= 1, json.encode(j))
  t.ok(j.elapsed_s <= stopped_at - mk.start_unix + 2 and j.elapsed_s >= mk.registered_unix - mk.start_unix - 1, json.encode(j))
  local acc = accounting.sacct({ m.job_id })
  t.ok(math.abs(acc.node_hours * 3600 - acc.jobs[1].elapsed_s) < 1e-6)
  t.eq(acc.jobs[1].state, "CANCELLED")
  flows.nothing_left(ready)
end)

t.case("a pending server shows SLURM's reason and its expected start", function()
  local metas = assert(server.run({ recipe = "vllm-sim", executor = "slurm", quiet = true, detach = true, set = { "orchestration.sbatch_args=[\"--begin=now+120\"]" } }))
  local m = metas[1]
  flows.wait_for("the job to be pending with a reason", 60, function()
    local r = proc.run({ "squeue", "-h", "-j", m.job_id, "-o", "%T|%r" })
    return r.stdout:match("^PENDING|%w")
  end)
  local st = proc.run({ aibench.exe(), "server", "status", m.instance_id })
  t.eq(st.code, 0, st.stderr)
  t.contains(st.stdout, "PENDING")
  t.contains(st.stdout, "pending: BeginTime; expected to start ")
  assert(server.stop_all())
end)
t.run()
