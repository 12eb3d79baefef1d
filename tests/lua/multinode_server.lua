-- needs: slurm
-- exclusive
-- Servers that span nodes, on the 3-node dev cluster: a `per-node`
-- deployment of 3 ranks meets (a rendezvous over the head's port), the head
-- serves the simulator and is registered with every node's endpoints; a
-- part that exits takes the whole deployment down and is named; a node
-- that dies (its slurmd and every process on it killed) ends a registered
-- deployment and a multi-node client job keeps its surviving part; a
-- `ray` deployment forms a real Ray cluster of 3 nodes (PyPI ray in the
-- test set-up's virtualenv) whose head then serves the simulator.
-- Exclusive: it takes node3 away, which other files' jobs may be using.
local aibench = require("aibench")
local server = require("aibench.server")
local client = require("aibench.client")
local registry = require("aibench.registry")
local deploy = require("aibench.deploy")
local http = require("aibench.http")
local proc = require("aibench.proc")
local fs = require("aibench.fs")
local env = require("aibench.env")
local t = require("aibench.testing")
local flows = dofile("tests/lua/support/flows.lua")

local dir = assert(fs.tmpdir())

flows.need_three_nodes()

local SIM = "{aibench} sim --host 0.0.0.0 --port {port} --profile opt-125m-cpu --model facebook/opt-125m"

local function recipe(name, launcher, command, extra)
  return flows.recipe(dir, name, command, string.format([[
  nodes: 3
  launcher: %s
  health: {path: /health, timeout_s: 120}
%s
orchestration:
  executor: slurm
  resources: {partition: cpu, cpu_cores: 1, memory_gb: 2, time_limit: "00:20:00"}
]], launcher, extra or ""))
end

local function sinfo_state(node)
  return (proc.run({ "sinfo", "-h", "-n", node, "-o", "%T" }).stdout:gsub("%s+$", ""))
end

-- Brings a failed node back (its slurmd again; SLURM returns it to service).
local function restore(node)
  local r = proc.run({ "scripts/slurm-dev-cluster.sh", "up", "--nodes", "3" })
  t.eq(r.code, 0, "the dev cluster comes back: " .. tostring(r.stderr))
  flows.wait_for(node .. " idle again", 60, function()
    return sinfo_state(node):find("idle", 1, true)
  end)
end

-- Once a job is over its processes go as SLURM cleans its steps up (Ray's
-- drain on SIGTERM, then the agents' SIGKILL): nothing of it may remain.
local function gone(m)
  flows.final(m, 90)
  flows.wait_for("the parts' processes of " .. m.instance_id .. " to end", 40, function()
    return not flows.group_alive(m)
  end)
  flows.nothing_left({ m })
end

local rdv_file = fs.join(dir, "rendezvous.txt")
local PER_NODE = [[
if [ {node_rank} -eq 0 ]; then
  # The head: a rendezvous on {head_port} for the other {nnodes} - 1 ranks, then the simulator.
  python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {head_port})); s.listen(8)
seen = []
while len(seen) < {nnodes} - 1:
    c, a = s.accept(); seen.append(c.makefile().readline().strip() + " from " + a[0]); c.close()
open("RDV", "w").write("\n".join(sorted(seen)) + "\n")
'
  exec SIM
fi
python3 -c '
import socket, time
for _ in range(600):
    try:
        c = socket.create_connection(("{head_host}", {head_port}), 1); break
    except OSError:
        time.sleep(0.1)
c.sendall(("rank {node_rank} of {nnodes} on " + socket.gethostname() + "\n").encode())
'
exec sleep 100000
]]
PER_NODE = PER_NODE:gsub("RDV", rdv_file):gsub("SIM", SIM)

t.case("per-node: 3 ranks meet at the head, which serves and is registered with every node's endpoints", function()
  local file = recipe("mn-pernode", "per-node", PER_NODE)
  local ready = assert(server.run({ recipe = file, quiet = true, timeout_s = 180 }))
  local m = ready[1]
  local inst = m.instance
  t.eq(m.nodes, 3)
  t.eq(inst.node, "node1", "the head is rank 0 on the allocation's first node")
  t.ok(inst.url:find("node1", 1, true), inst.url)
  t.eq(inst.extra.nnodes, 3)
  t.eq(inst.extra.launcher, "per-node")
  local seen = {}
  for i, n in ipairs(inst.extra.nodes) do
    t.eq(n.rank, i - 1)
    seen[#seen + 1] = n.node
    t.ok(type(n.agent_metrics_url) == "string", "node " .. n.node .. " has its agent's endpoint")
    t.eq(assert(http.get(n.agent_metrics_url .. "/metrics")).status, 200)
  end
  t.eq(table.concat(seen, ","), "node1,node2,node3")
  -- The ranks met over the network: each worker reached the head's port from its own address.
  local rdv = assert(fs.read(rdv_file))
  t.contains(rdv, "rank 1 of 3 on node2 from 10.77.0.12")
  t.contains(rdv, "rank 2 of 3 on node3 from 10.77.0.13")
  -- Monitors find every node's agent through the one entry.
  local urls = require("aibench.servermetrics").node_urls({ inst.url })
  t.eq(#urls, 3, table.concat(urls, " "))
  -- Served and benchmarked like any server.
  local saved = assert(client.run({ recipe = "vllm-simple-test", executor = "local", url = inst.url, out_dir = fs.join(dir, "results"), progress = false,
    set = { "workload.duration_seconds=2", "workload.think_time_ms=20" } }))
  local b = saved[1].bench
  t.ok(b.successes > 0 and b.errors == 0, "served " .. tostring(b.successes))
  assert(server.stop(m.instance_id))
  gone(m)
  t.eq(flows.squeue_state(m.job_id):find("RUNNING") or false, false)
end)

t.case("a part that exits ends the whole deployment; the failure names its node, status and output", function()
  local file = recipe("mn-partfails", "per-node", [[
if [ {node_rank} -eq 2 ]; then echo "rank 2 gives up"; exit 7; fi
sleep 3
exec ]] .. SIM .. "\n")
  local ok, err = server.run({ recipe = file, quiet = true, timeout_s = 120 })
  t.eq(ok, nil)
  t.eq(err.kind, "failed")
  t.contains(err.message, "node node3 (rank 2 of 3) failed with exit status 7: the command exited with code 7")
  t.contains(err.message, "2: rank 2 gives up")
  local m = err.failed[1]
  gone(m)
  -- Only the part that failed is reported: the others were stopped.
  t.eq(#deploy.failed_parts(m), 1)
  -- `server status --json` names the failed part too.
  deploy.refresh({ m })
  local st = require("aibench.shapes").server_status({ m }).servers[1]
  t.eq(st.nodes, 3)
  t.eq(st.failed_parts[1].node, "node3")
  t.eq(st.failed_parts[1].exit_code, 7)
  for _, i in ipairs(registry.list("mn-partfails") or {}) do
    t.ok(false, "still registered: " .. i.instance_id)
  end
end)

-- A case that fails a node; the node comes back whatever the case's outcome.
local function node_case(name, node, f)
  t.case(name, function()
    local ok, err = pcall(f)
    restore(node)
    if not ok then
      error(err, 0)
    end
  end)
end

node_case("a node that dies ends a registered multi-node server: reported failed, nothing left registered or running", "node3", function()
  local file = recipe("mn-nodefail", "per-node", "exec " .. SIM .. "\n")
  local ready = assert(server.run({ recipe = file, quiet = true, timeout_s = 120 }))
  local m = ready[1]
  t.eq(#(registry.list("mn-nodefail") or {}), 1)
  local r = proc.run({ "scripts/slurm-dev-cluster.sh", "fail", "node3" })
  t.eq(r.code, 0, tostring(r.stderr))
  local final = flows.final(m, 120)
  t.ok(final, "the job ended after its node died")
  -- SLURM's own view: the node is down (or on its way), the job not COMPLETED.
  local state = sinfo_state("node3")
  io.stderr:write("SLURM's view after node3 failed: node3 " .. state .. ", job " .. m.job_id .. " " .. tostring(deploy.refresh({ m }) and m.state) .. "\n")
  t.ok(m.state ~= "COMPLETED" and m.state ~= "RUNNING", "job state " .. tostring(m.state))
  flows.wait_for("the head deregistered", 30, function()
    return #(registry.list("mn-nodefail") or {}) == 0
  end)
  t.eq(flows.squeue_state(m.job_id):find("RUNNING") or false, false)
  gone(m)
  -- The report names the lost node (srun's own words in the job's log).
  local tail = deploy.log_tail(m, 30)
  io.stderr:write(tail, "\n")
  t.contains(tail, "node3")
  local listed = assert(server.list({ all = true }))
  for _, d in ipairs(listed) do
    if d.instance_id == m.instance_id then
      t.ok(d.instance == nil, "a failed deployment has no registry entry")
    end
  end
end)

node_case("a node that dies during a 2-node client job: the surviving part is kept, marked incomplete, and the lost node named", "node3", function()
  local ready = assert(server.run({ recipe = "vllm-sim", executor = "slurm", quiet = true, set = { 'orchestration.sbatch_args=["--nodelist=node1"]' } }))
  local inst = ready[1].instance
  local killer = proc.spawn({ "bash", "-c", [[
    for _ in $(seq 600); do
      if ls "$HOME_DIR"/jobs/*/gang/start >/dev/null 2>&1; then sleep 2; exec scripts/slurm-dev-cluster.sh fail node3; fi
      sleep 0.1
    done ]] }, { env = { HOME_DIR = aibench.home() } })
  local saved, err = client.run({ recipe = "vllm-simple-test", executor = "slurm", url = inst.url, out_dir = fs.join(dir, "results"), progress = false,
    set = { "workload.duration_seconds=60", "workload.concurrent_users=2", "workload.think_time_ms=50", "orchestration.instances=2",
      "orchestration.resources.nodes=2", 'orchestration.sbatch_args=["--nodelist=node[2-3]"]' } })
  killer:wait()
  local rec = assert(saved, err and err.message)[1]
  local b = rec.bench
  -- The surviving part only: task 0's, from node2.
  t.ok(b.overlap == nil or b.overlap.parts == 1, "parts: " .. tostring(b.overlap and b.overlap.parts))
  t.eq(b.gang and b.gang.rank, 0)
  t.eq(b.gang and b.gang.host, "node2")
  t.ok(b.incomplete, "the merged result is marked incomplete")
  t.contains(tostring(b.incomplete), "node3")
  t.eq(b.total_requests, b.successes + b.errors, "successes + errors = total")
  assert(server.stop(ready[1].instance_id))
end)

-- Ray from PyPI, installed by the test set-up (scripts/test.sh) into a virtualenv.
local ray_bin = env.get("AIBENCH_TEST_RAY_BIN") or fs.abspath(".venv-ray/bin")
local have_ray = fs.stat(fs.join(ray_bin, "ray")) ~= nil
if not have_ray and env.get("AIBENCH_REQUIRE_SLURM") == "1" then
  t.ok(false, "Ray is not installed at " .. ray_bin .. " (scripts/test.sh installs it)")
end

t.case("ray: a 3-node Ray cluster forms across the nodes; the head's command sees it, serves, is registered and benchmarked", function()
  if not have_ray then
    io.stderr:write("skipped: no Ray at " .. ray_bin .. "\n")
    return
  end
  local seen_file = fs.join(dir, "ray-nodes.txt")
  local command = [[
python3 -c 'import ray; ray.init(logging_level="ERROR"); open("SEEN", "w").write(" ".join(sorted(n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"])) + "\n")'
exec ]] .. SIM .. "\n"
  -- Ray's own python3 and ray first on PATH, on every node. The command
  -- finds the cluster as vLLM does, by ray.init() with no address.
  local file = recipe("mn-ray", "ray", (command:gsub("SEEN", seen_file)),
    "  ray: {timeout_s: 90}\n  env: {PATH: \"" .. ray_bin .. ":/usr/local/bin:/usr/bin:/bin\"}")
  local ready = assert(server.run({ recipe = file, quiet = true, timeout_s = 240 }))
  local m = ready[1]
  t.eq(m.instance.extra.launcher, "ray")
  t.eq(assert(fs.read(seen_file)), "10.77.0.11 10.77.0.12 10.77.0.13\n")
  local log = assert(deploy.job(m):logs({ tail = 400 }))
  t.contains(log, "Ray reports 3 nodes")
  local saved = assert(client.run({ recipe = "vllm-simple-test", executor = "local", url = m.instance.url, out_dir = fs.join(dir, "results"), progress = false,
    set = { "workload.duration_seconds=2", "workload.think_time_ms=20" } }))
  t.ok(saved[1].bench.successes > 0)
  assert(server.stop(m.instance_id))
  gone(m)
  t.eq(#deploy.failed_parts(m), 0, "a stop is no part's failure")
  -- Ray's processes went with their parts' process groups.
  local left = proc.run({ "pgrep", "-f", "aibench-ray-" .. m.instance_id })
  t.eq(left.stdout, "", "Ray processes left: " .. left.stdout)
end)

t.run()
