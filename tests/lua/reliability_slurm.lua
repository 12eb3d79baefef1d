-- needs: slurm
-- Faults on the real SLURM cluster: Ctrl-C while `server run` waits, a
-- client job that runs out of time, private job files.
local aibench = require("aibench")
local client = require("aibench.client")
local deploy = require("aibench.deploy")
local registry = require("aibench.registry")
local proc = require("aibench.proc")
local fs = require("aibench.fs")
local time = require("aibench.time")
local flows = dofile("tests/lua/support/flows.lua")
local t = require("aibench.testing")

local dir = assert(fs.tmpdir())

local squeue_state = flows.squeue_state

local function mode(path)
  return assert(fs.stat(path)).mode
end

t.case("Ctrl-C while server run waits: the SLURM job is cancelled and never registers", function()
  local p = flows.recipe(dir, "slowstart", "exec {aibench} sim --host 0.0.0.0 --port {port} --profile instant --startup-delay 60", "  health: {path: /health, timeout_s: 100}")
  local h = assert(proc.spawn({ aibench.exe(), "server", "run", "--recipe", p, "--executor", "slurm" }))
  -- Wait until the job is submitted (its folder's meta has the job id).
  local deadline = time.monotonic() + 30
  local meta
  while not meta and time.monotonic() < deadline do
    meta = deploy.all("server")[1]
    time.sleep(0.2)
  end
  t.ok(meta, "the job was submitted")
  time.sleep(2)
  t.ok(h:kill("INT"))
  local r = assert(h:wait(60))
  t.eq(r.code, 130, r.stderr)
  t.contains(r.stderr, "interrupted (SIGINT): cancelled server slowstart instance " .. meta.instance_id .. " (slurm job " .. meta.job_id .. ")")
  t.eq(flows.final(meta, 60), "CANCELED")
  t.eq(squeue_state(meta.job_id), "CANCELLED")
  flows.nothing_left({ meta })
  t.eq(#registry.list("slowstart"), 0)
  t.eq(deploy.read_meta(meta.dir).state, "CANCELED")
end)

t.case("server run --detach on SLURM returns at once; stop-all cancels", function()
  local p = flows.recipe(dir, "detached", "exec {aibench} sim --host 0.0.0.0 --port {port} --profile instant --startup-delay 30", "  health: {path: /health, timeout_s: 100}")
  local started = time.monotonic()
  local r = assert(proc.run({ aibench.exe(), "server", "run", "--recipe", p, "--executor", "slurm", "--detach" }))
  t.eq(r.code, 0, r.stderr)
  t.ok(time.monotonic() - started < 20, "did not wait for the 30 s start-up")
  local metas = deploy.all("server")
  local m
  for _, x in ipairs(metas) do
    if x.recipe == "detached" then
      m = x
    end
  end
  t.ok(m and m.job_id:match("^%d+$"))
  local s = assert(proc.run({ aibench.exe(), "server", "stop-all" }))
  t.eq(s.code, 0, s.stderr)
  t.eq(flows.final(m, 60), "CANCELED")
end)

t.case("a client job that runs out of time saves an interrupted result", function()
  local sim = assert(require("aibench.sim").start({ profile = "instant", host = "0.0.0.0" }))
  local saved, err = client.run({
    recipe = "vllm-simple-test",
    executor = "slurm",
    url = flows.from_nodes(sim.url),
    -- Five minutes of work in a one-minute job: SLURM warns it with SIGTERM.
    set = { "workload.duration_seconds=300", "orchestration.resources.time_limit=1" },
    out_dir = fs.join(dir, "results"),
    progress = false,
  })
  sim:stop()
  t.ok(saved, err and err.message)
  local rec = saved[1]
  t.ok(fs.exists(rec.path))
  t.eq(rec.bench.interrupted, true)
  t.eq(rec.bench.interrupted_by, "SIGTERM")
  t.ok(rec.bench.successes > 0, "it measured before it was stopped")
  t.eq(rec.bench.successes + rec.bench.errors, rec.bench.total_requests)
  t.ok(rec.bench.duration_s < 70, "stopped by the time limit, not after 300 s")
  local job = rec.environment.slurm_job_ids[1]
  local m
  for _, x in ipairs(deploy.all("client")) do
    if x.job_id == job then
      m = x
    end
  end
  t.ok(m, "the client job's folder")
  t.contains(assert(fs.read(fs.join(m.dir, "job.sbatch"))), "#SBATCH --signal=B:TERM@10")
  t.contains(assert(fs.read(fs.join(m.dir, "job.log"))), "SIGTERM: finishing in-flight requests")
end)

t.case("Ctrl-C during client run on SLURM cancels the job and keeps its partial result", function()
  local sim = assert(require("aibench.sim").start({ profile = "instant", host = "0.0.0.0" }))
  local out = fs.join(dir, "ctrlc-results")
  local h = assert(proc.spawn({ aibench.exe(), "client", "run", "--recipe", "vllm-simple-test", "--executor", "slurm", "--url", flows.from_nodes(sim.url), "--set", "workload.duration_seconds=300", "--out-dir", out }))
  local deadline = time.monotonic() + 60
  local m
  while time.monotonic() < deadline do
    m = deploy.all("client")[#deploy.all("client")]
    if m and m.job_id and squeue_state(m.job_id) == "RUNNING" and fs.exists(fs.join(m.dir, "job.log")) and (fs.read(fs.join(m.dir, "job.log")) or ""):find("starting") then
      break
    end
    time.sleep(0.5)
  end
  time.sleep(3)
  t.ok(h:kill("INT"))
  local r = assert(h:wait(120))
  sim:stop()
  t.eq(r.code, 130, r.stderr)
  t.contains(r.stderr, "SIGINT: cancelling 1 client job(s)")
  local files = assert(fs.list(out))
  t.eq(#files, 1, "one result saved")
  local rec = require("aibench.json").decode(assert(fs.read(fs.join(out, files[1]))))
  t.eq(rec.bench.interrupted, true)
  t.eq(rec.bench.interrupted_by, "SIGINT")
  t.ok(rec.bench.successes > 0)
  t.eq(squeue_state(m.job_id):match("CANCELLED") and "CANCELLED" or squeue_state(m.job_id), "CANCELLED")
end)

t.case("a SLURM job's folder and files are private", function()
  local ready = assert(require("aibench.server").run({ recipe = "vllm-sim", executor = "slurm", quiet = true }))
  local m = ready[1]
  t.eq(mode(fs.join(aibench.home(), "jobs")), tonumber("700", 8))
  t.eq(mode(m.dir), tonumber("700", 8))
  for _, f in ipairs({ "job.log", "job.sbatch", "agent.json", "service.sh", "meta.json", "service.pgid" }) do
    t.eq(mode(fs.join(m.dir, f)), tonumber("600", 8), f)
  end
  assert(require("aibench.server").stop_all())
  flows.nothing_left(ready)
end)

t.run()
fs.remove(dir, { recursive = true })
