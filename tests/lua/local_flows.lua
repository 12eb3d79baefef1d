-- Deploy, discover, benchmark and stop on the local executor.
local server = require("aibench.server")
local client = require("aibench.client")
local registry = require("aibench.registry")
local http = require("aibench.http")
local fs = require("aibench.fs")
local json = require("aibench.json")
local flows = dofile("tests/lua/support/flows.lua")
local t = require("aibench.testing")

local dir = assert(fs.tmpdir())

t.case("server run --count 3, client run, stop-all", function()
  local ready = assert(server.run({ recipe = "vllm-sim", count = 3, executor = "local", quiet = true }))
  t.eq(#ready, 3)
  local ports = {}
  for _, m in ipairs(ready) do
    t.eq(m.state, "RUNNING")
    t.eq(m.instance.node, require("aibench").hostname())
    ports[m.instance.ports[1]] = true
    t.eq(assert(http.get(m.instance.url .. "/health")).status, 200)
  end
  local n = 0
  for _ in pairs(ports) do
    n = n + 1
  end
  t.eq(n, 3, "three distinct ports")
  t.eq(#registry.list("vllm"), 3)
  local saved = assert(client.run({ recipe = "vllm-simple-test", set = { "workload.duration_seconds=2" }, out_dir = fs.join(dir, "results"), progress = false }))
  local rec = saved[1]
  t.ok(fs.exists(rec.path))
  t.ok(rec.path:match("vllm%-simple%-test%-%d+T%d+Z%-%x+%.json$"), rec.path)
  t.ok(rec.bench.successes > 0)
  t.eq(rec.bench.errors, 0)
  t.eq(rec.server.requests, rec.bench.successes, "server-side count for the window = client successes")
  t.eq(#rec.target.urls, 3)
  local stored = json.decode(assert(fs.read(rec.path)))
  t.eq(stored.schema, "aibench.result/1")
  t.eq(stored.recipe.resolved.workload.duration_seconds, 2)
  t.eq(stored.environment.executor, "local")
  -- instances: 2 -> two client jobs whose results are merged exactly.
  local multi = assert(client.run({
    recipe = "vllm-simple-test",
    set = { "orchestration.instances=2", "workload.requests_per_user=4", "workload.think_time_ms=50" },
    out_dir = fs.join(dir, "results"),
  }))[1]
  t.eq(#multi.environment.job_ids, 2)
  t.eq(multi.bench.total_requests, 2 * 3 * 4)
  t.eq(multi.bench.latency_ms.count, 24)
  t.eq(multi.server.requests, 24)
  -- A trace workload has no seed: two instances of it are two jobs, not a
  -- spec refused for a field the recipe never set.
  local trace = assert(client.run({
    recipe = "vllm-trace-replay",
    set = { "orchestration.instances=2", "workload.total_requests=5", "workload.time_scale=0.01" },
    out_dir = fs.join(dir, "results"),
    progress = false,
  }))[1]
  t.eq(#trace.environment.job_ids, 2)
  t.eq(trace.bench.total_requests, 10)
  local stopped = assert(server.stop_all())
  t.eq(#stopped, 3)
  for _, m in ipairs(stopped) do
    t.eq(m.state, "CANCELED")
  end
  flows.nothing_left(ready)
  t.eq(#registry.list("vllm"), 0)
end)

t.case("a gang task that dies before the start is told at the barrier by its agent: the other stops at once", function()
  local ready = assert(server.run({ recipe = "vllm-sim", executor = "local", quiet = true }))
  local env = require("aibench.env")
  local time = require("aibench.time")
  -- Rank 1 exits at once before the barrier and says nothing (a test hook,
  -- as a task the OOM killer took); without its agent, rank 0 would wait
  -- out the barrier's 600 s.
  env.set("AIBENCH_TEST_GANG_CRASH", "1")
  local t0 = time.monotonic()
  local saved, err = client.run({ recipe = "vllm-simple-test", url = ready[1].instance.url, out_dir = fs.join(dir, "results"), progress = false,
    set = { "orchestration.instances=2", "workload.duration_seconds=5" } })
  env.set("AIBENCH_TEST_GANG_CRASH", nil)
  local took = time.monotonic() - t0
  t.ok(took < 60, "the run ended after " .. took .. " s")
  t.eq(saved, nil)
  t.contains(err.message, "rank 1 failed before the start: the task on ")
  t.contains(err.message, "ended with exit status 137 before the start")
  assert(server.stop(ready[1].instance_id))
end)

t.case("a command that exits 1 ends FAILED with its log tail, unregistered", function()
  local p = flows.recipe(dir, "broken", "echo boom-from-the-service >&2\nexit 1", "  health: {path: /health, timeout_s: 30}")
  local v, err = server.run({ recipe = p, executor = "local", quiet = true })
  t.fails("failed", v, err)
  t.contains(err.message, "ended FAILED")
  t.contains(err.message, "boom-from-the-service")
  t.eq(#registry.list("broken"), 0)
  t.eq(err.failed[1].state, "FAILED")
end)

t.case("never healthy: the job is stopped and nothing survives", function()
  local p = flows.recipe(dir, "deaf", "exec sleep 300", "  health: {path: /health, timeout_s: 1}")
  local v, err = server.run({ recipe = p, executor = "local", quiet = true })
  t.fails("failed", v, err)
  t.contains(err.message, "did not answer 2xx within 1 s")
  flows.final(err.failed[1])
  flows.nothing_left(err.failed)
end)

t.case("time limit: the agent stops the service, state TIMEOUT", function()
  local p = flows.recipe(dir, "short", "exec {aibench} sim --host 127.0.0.1 --port {port} --profile instant", "  health: {path: /health, timeout_s: 30}\norchestration:\n  resources: {time_limit: \"00:00:02\"}")
  local ready = assert(server.run({ recipe = p, executor = "local", quiet = true }))
  t.eq(#registry.list("short"), 1)
  t.eq(flows.final(ready[1], 30), "TIMEOUT")
  flows.nothing_left(ready)
end)

t.case("a service that leaves a child behind is cleaned up on stop", function()
  local p = flows.recipe(dir, "forky", "sleep 300 &\nexec {aibench} sim --host 127.0.0.1 --port {port} --profile instant", "  health: {path: /health, timeout_s: 30}")
  local ready = assert(server.run({ recipe = p, executor = "local", quiet = true }))
  t.ok(flows.group_alive(ready[1]))
  assert(server.stop(ready[1].instance_id))
  flows.nothing_left(ready)
end)

t.case("stop by unknown id and client without a server are clear errors", function()
  t.fails("not_found", server.stop("nope"))
  local v, err = client.run({ recipe = "vllm-simple-test", out_dir = fs.join(dir, "r2"), progress = false })
  t.fails("not_found", v, err)
  t.contains(err.message, "no running instance of service 'vllm' is registered")
end)

t.case("dry run renders without submitting", function()
  local before = #require("aibench.deploy").all("server")
  local res = assert(server.run({ recipe = "vllm-sim", dry_run = true, executor = "slurm" }))
  t.contains(res.scripts[1].script, "#SBATCH --partition=cpu")
  t.contains(res.scripts[1].script, "job-agent")
  t.eq(#require("aibench.deploy").all("server"), before)
end)

t.run()
fs.remove(dir, { recursive = true })
