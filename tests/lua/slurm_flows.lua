-- needs: slurm, prometheus
-- Deploy, discover, benchmark and stop on the real single-node SLURM cluster.
local server = require("aibench.server")
local client = require("aibench.client")
local registry = require("aibench.registry")
local deploy = require("aibench.deploy")
local http = require("aibench.http")
local proc = require("aibench.proc")
local fs = require("aibench.fs")
local env = require("aibench.env")
local flows = dofile("tests/lua/support/flows.lua")
local t = require("aibench.testing")

local dir = assert(fs.tmpdir())

local squeue_state = flows.squeue_state

t.case("server run on SLURM: RUNNING in squeue, registered, answering", function()
  local ready = assert(server.run({ recipe = "vllm-sim", count = 3, executor = "slurm", quiet = true }))
  t.eq(#ready, 3)
  local ports = {}
  for _, m in ipairs(ready) do
    t.ok(m.job_id:match("^%d+$"), m.job_id)
    t.eq(squeue_state(m.job_id), "RUNNING")
    t.eq(m.instance.executor, "slurm")
    t.eq(m.instance.job_id, m.job_id)
    -- On a node of the cluster (a namespace node of the dev cluster, not
    -- this machine), registered under the node's own name.
    local nodes = proc.run({ "sinfo", "-h", "-N", "-o", "%N" }).stdout
    t.ok((("\n" .. nodes):find("\n" .. m.instance.node .. "\n", 1, true)), m.instance.node .. " is one of " .. nodes)
    t.ok(m.instance.url:find(m.instance.host, 1, true), m.instance.url)
    ports[m.instance.ports[1]] = true
    t.eq(assert(http.get(m.instance.url .. "/v1/models")).status, 200)
  end
  local n = 0
  for _ in pairs(ports) do
    n = n + 1
  end
  t.eq(n, 3, "distinct ports")

  -- The client as a SLURM job on a compute node, writing a result.
  local saved = assert(client.run({ recipe = "vllm-simple-test", executor = "slurm", set = { "workload.duration_seconds=3" }, out_dir = fs.join(dir, "results"), progress = false }))
  local rec = saved[1]
  t.ok(fs.exists(rec.path))
  t.ok(rec.bench.successes > 0)
  t.eq(rec.server.requests, rec.bench.successes)
  t.eq(rec.environment.executor, "slurm")
  t.ok(rec.environment.slurm_job_ids[1]:match("^%d+$"))
  t.eq(#rec.target.urls, 3)
  -- Its own timeline and the servers' accounting, from sacct.
  local ct = rec.hpc.client_timelines[1]
  t.eq(ct.job_id, rec.environment.slurm_job_ids[1])
  local sum = 0
  for _, p in ipairs(ct.parts) do
    t.ok(p.seconds >= 0, p.name)
    sum = sum + p.seconds
  end
  t.ok(math.abs(sum - ct.total_s) < 1e-6, "the client's timeline adds up")
  t.eq(#rec.hpc.server_job_ids, 3)

  local stopped = assert(server.stop_all())
  t.eq(#stopped, 3)
  for _, m in ipairs(stopped) do
    t.eq(m.state, "CANCELED")
    t.eq(squeue_state(m.job_id), "CANCELLED")
  end
  flows.nothing_left(ready)
  t.eq(#registry.list("vllm"), 0)
end)

t.case("a monitor as a SLURM job scrapes a SLURM server", function()
  local monitor = require("aibench.monitor")
  local ready = assert(server.run({ recipe = "vllm-sim", executor = "slurm", quiet = true }))
  local m = assert(monitor.start({ recipe = "vllm-monitor", executor = "slurm", set = { "prometheus.scrape_interval=5s", "prometheus.refresh_interval=1s" } }))
  t.ok(m.job_id:match("^%d+$"))
  t.eq(squeue_state(m.job_id), "RUNNING")
  local mm = assert(monitor.get(m.instance_id))
  local deadline = require("aibench.time").monotonic() + 20
  local up = false
  while not up and require("aibench.time").monotonic() < deadline do
    for _, tg in ipairs(mm.client:targets() or {}) do
      up = up or (tg.health == "up" and tg.scrapeUrl == ready[1].instance.url .. "/metrics")
    end
    require("aibench.time").sleep(0.5)
  end
  t.ok(up, "the server's target is up")
  assert(monitor.stop(m.instance_id))
  assert(server.stop_all())
  flows.nothing_left(ready)
  t.eq(#registry.list("vllm-monitor-prometheus"), 0)
end)

t.case("scancel from outside: the agent deregisters, nothing survives", function()
  local ready = assert(server.run({ recipe = "vllm-sim", executor = "slurm", quiet = true }))
  local m = ready[1]
  assert(proc.run({ "scancel", m.job_id }))
  t.eq(flows.final(m, 60), "CANCELED")
  local deadline = require("aibench.time").monotonic() + 20
  while #registry.list("vllm") > 0 and require("aibench.time").monotonic() < deadline do
    require("aibench.time").sleep(0.2)
  end
  flows.nothing_left(ready)
  t.contains(fs.read(fs.join(m.dir, "job.log")), "deregistered from vllm")
end)

t.case("a command that exits 1 ends FAILED with its log tail, unregistered", function()
  local p = flows.recipe(dir, "broken", "echo boom-on-the-node >&2\nexit 1", "  health: {path: /health, timeout_s: 30}")
  local v, err = server.run({ recipe = p, executor = "slurm", quiet = true })
  t.fails("failed", v, err)
  t.contains(err.message, "FAILED")
  t.contains(err.message, "boom-on-the-node")
  t.eq(#registry.list("broken"), 0)
end)

t.case("sbatch rejection shows sbatch's message, nothing left behind", function()
  local before = #deploy.all()
  local v, err = server.run({ recipe = "vllm-sim", executor = "slurm", set = { "orchestration.resources.partition=nosuch" }, quiet = true })
  t.fails("rejected", v, err)
  t.contains(err.message, "sbatch rejected")
  t.contains(err.message:lower(), "invalid partition")
  t.eq(#deploy.all(), before)
  t.eq(#registry.list("vllm"), 0)
end)

t.case("slurmctld unreachable is a clear error", function()
  local conf = assert(fs.read("/etc/slurm/slurm.conf"))
  local bad = fs.join(dir, "slurm.conf")
  local text = conf:gsub("SlurmctldHost=([%w%-_.]+)", "SlurmctldHost=%1(127.0.0.1)\nSlurmctldPort=1")
  assert(fs.write(bad, text))
  env.set("SLURM_CONF", bad)
  local v, err = server.run({ recipe = "vllm-sim", executor = "slurm", quiet = true })
  env.set("SLURM_CONF", nil)
  t.fails("unavailable", v, err)
  t.contains(err.message, "SLURM is not reachable")
end)

t.case("the time limit ends the job, TIMEOUT, nothing survives", function()
  local p = flows.recipe(dir, "brief", "exec {aibench} sim --host 0.0.0.0 --port {port} --profile instant", "  health: {path: /health, timeout_s: 30}\norchestration:\n  resources: {time_limit: \"1\"}")
  local ready = assert(server.run({ recipe = p, executor = "slurm", quiet = true }))
  t.eq(#registry.list("brief"), 1)
  t.eq(flows.final(ready[1], 180), "TIMEOUT")
  local deadline = require("aibench.time").monotonic() + 30
  while #registry.list("brief") > 0 and require("aibench.time").monotonic() < deadline do
    require("aibench.time").sleep(0.5)
  end
  flows.nothing_left(ready)
end)

t.run()
fs.remove(dir, { recursive = true })
