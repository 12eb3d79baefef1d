-- needs: slurm
-- Many nodes for real (the 3-node dev cluster): the simulator as a server job
-- on node1, a client of 2 instances as ONE job whose 2 tasks run on node2 and
-- node3, meet at a barrier and start together; a monitor on node2 scrapes
-- node1; a held-back task is flagged;
-- a lost task's part is named and the rest kept.
local server = require("aibench.server")
local client = require("aibench.client")
local bench = require("aibench.bench")
local http = require("aibench.http")
local proc = require("aibench.proc")
local fs = require("aibench.fs")
local env = require("aibench.env")
local json = require("aibench.json")
local t = require("aibench.testing")
local flows = dofile("tests/lua/support/flows.lua")

local dir = assert(fs.tmpdir())

flows.need_three_nodes()

local function client_run(extra)
  local set = {
    "workload.duration_seconds=4",
    "workload.concurrent_users=2",
    "workload.think_time_ms=50",
    "orchestration.instances=2",
    "orchestration.resources.nodes=2",
    'orchestration.sbatch_args=["--nodelist=node[2-3]"]',
  }
  for _, s in ipairs(extra or {}) do
    set[#set + 1] = s
  end
  return client.run({ recipe = "vllm-simple-test", executor = "slurm", set = set, out_dir = fs.join(dir, "results"), progress = false })
end

local function job_dir_of(rec)
  local id = rec.environment.slurm_job_ids[1]
  for _, m in ipairs(assert(client.list({ all = true }))) do
    if m.job_id == id then
      return m.dir, m
    end
  end
end

t.case("a server on node1 answers a 2-node client job on node2 and node3, started together", function()
  local ready = assert(server.run({ recipe = "vllm-sim", executor = "slurm", quiet = true, set = { 'orchestration.sbatch_args=["--nodelist=node1"]' } }))
  local inst = ready[1].instance
  t.eq(inst.node, "node1")
  -- Registered by the node's name, which every node resolves to its bridge address.
  t.ok(inst.url:find("node1", 1, true), inst.url)
  t.eq(assert(http.get(inst.url .. "/v1/models")).status, 200)

  local saved = assert(client_run())
  local rec = saved[1]
  t.eq(#rec.environment.slurm_job_ids, 1, "K instances are one job")
  local b = rec.bench
  local o = assert(b.overlap, "a merged result states its overlap")
  t.eq(o.parts, 2)
  t.eq(o.gang_started, true)
  t.ok(o.start_spread_s < 0.05, "start spread " .. o.start_spread_s .. " s")
  t.ok(o.clock_offset_bound_s and o.clock_offset_bound_s < 0.05, "offset bound " .. tostring(o.clock_offset_bound_s))
  t.ok(o.share > 0.9 and not o.partial, "share " .. o.share)
  -- Each task ran on its own node, and the parts add up to the whole.
  local jdir, meta = job_dir_of(rec)
  t.eq(meta.tasks, 2)
  local hosts, total, successes = {}, 0, 0
  for rank = 0, 1 do
    local part = bench.result(assert(fs.read(fs.join(jdir, string.format("result-%d.json", rank)))))
    hosts[part.gang.host] = true
    t.eq(part.gang.rank, rank)
    t.ok(part.gang.method:find("TCP round trips", 1, true), part.gang.method)
    total = total + part.total_requests
    successes = successes + part.successes
    t.ok(part.total_requests > 0)
  end
  t.ok(hosts.node2 and hosts.node3, "tasks on node2 and node3: " .. json.encode(hosts))
  t.eq(b.total_requests, total)
  t.eq(b.successes + b.errors, b.total_requests)
  -- The server's own counters saw exactly what the two clients sent.
  t.eq(rec.server.requests, successes)
end)

t.case("a monitor on node2 scrapes the server on node1 by its registered address", function()
  local monitor = require("aibench.monitor")
  local time = require("aibench.time")
  local inst = assert(server.list())[1].instance
  local m = assert(monitor.start({ recipe = "vllm-monitor", executor = "slurm", set = { 'orchestration.sbatch_args=["--nodelist=node2"]', "prometheus.refresh_interval=1s" } }))
  local mm = assert(monitor.get(m.instance_id))
  t.eq(m.node or mm.node, "node2")
  local deadline = time.monotonic() + 30
  local up, series = false, 0
  while (not up or series == 0) and time.monotonic() < deadline do
    for _, tg in ipairs(mm.client:targets() or {}) do
      up = up or (tg.health == "up" and tg.scrapeUrl == inst.url .. "/metrics")
    end
    -- vLLM's own metric names, from the server on the other node.
    series = #(mm.client:query('vllm:num_requests_running{instance="' .. inst.url:gsub("^https?://", "") .. '"}') or {})
    time.sleep(0.5)
  end
  t.ok(up, "the target on node1 is up, scraped from node2")
  t.ok(series > 0, "vllm:num_requests_running arrives from node1")
  assert(monitor.stop(m.instance_id))
end)

t.case("a task held back after the barrier is flagged, not hidden", function()
  env.set("AIBENCH_TEST_GANG_HOLD", "1:3")
  local saved, err = client_run()
  env.set("AIBENCH_TEST_GANG_HOLD", nil)
  assert(saved, err and err.message)
  local b = saved[1].bench
  t.ok(b.overlap.partial, "partial overlap flagged")
  t.ok(b.overlap.start_spread_s > 2.5, "spread " .. b.overlap.start_spread_s)
  local warned = false
  for _, w in ipairs(b.warnings) do
    warned = warned or w:find("partial overlap", 1, true) ~= nil
  end
  t.ok(warned, "a warning says so")
  -- An explicit merge of the same parts is refused unless asked for.
  local jdir = job_dir_of(saved[1])
  local parts = {}
  for rank = 0, 1 do
    parts[#parts + 1] = bench.result(assert(fs.read(fs.join(jdir, string.format("result-%d.json", rank)))))
  end
  t.raises("allow_partial_overlap", bench.merge, parts)
end)

t.case("Ctrl-C during a gang client run: every task saves its part, merged and marked interrupted", function()
  local out = fs.join(dir, "interrupted")
  -- Earlier cases' jobs left progress files too: only this run's job counts.
  local before = {}
  for _, m in ipairs(assert(client.list({ all = true }))) do
    before[m.instance_id] = true
  end
  local h = assert(proc.spawn({ require("aibench").exe(), "client", "run", "--recipe", "vllm-simple-test", "--executor", "slurm",
    "--set", "workload.duration_seconds=300", "--set", "orchestration.instances=2", "--set", "orchestration.resources.nodes=2",
    "--set", 'orchestration.sbatch_args=["--nodelist=node[2-3]"]', "--out-dir", out }))
  -- Both tasks are sending: each has written its progress.
  local time = require("aibench.time")
  local deadline = time.monotonic() + 60
  local sending = false
  while not sending and time.monotonic() < deadline do
    local n = 0
    for _, m in ipairs(assert(client.list({ all = true }))) do
      for rank = 0, (not before[m.instance_id] and m.tasks or 0) - 1 do
        local p = m.tasks and fs.read(fs.join(m.dir, string.format("progress-%d.json", rank)))
        if p and (json.decode(p).done or 0) > 0 then
          n = n + 1
        end
      end
    end
    sending = n >= 2
    time.sleep(0.3)
  end
  t.ok(sending, "both tasks sending")
  t.ok(h:kill("INT"))
  local r = assert(h:wait(120))
  t.eq(r.code, 130, r.stderr)
  local files = assert(fs.list(out))
  t.eq(#files, 1, "one saved result")
  local rec = json.decode(assert(fs.read(fs.join(out, files[1]))))
  t.eq(rec.bench.interrupted, true)
  t.eq(rec.bench.overlap.parts, 2, "both tasks saved their part")
  t.eq(rec.bench.successes + rec.bench.errors, rec.bench.total_requests)
end)

t.case("a task lost mid-run: the survivor's part is kept, marked incomplete, the lost one named", function()
  -- Task 1's client process is killed once it runs (as when its node dies).
  env.set("AIBENCH_TEST_GANG_HOLD", nil)
  local killer = proc.spawn({ "bash", "-c", [[
    for i in $(seq 200); do
      p=$(pgrep -f '^[^ ]*aibench job-client --gang .*spec-\{rank\}' | while read -r q; do
            tr '\0' '\n' < /proc/$q/environ 2>/dev/null | grep -qx 'SLURM_PROCID=1' && echo "$q"; done | head -1)
      if [ -n "$p" ]; then
        # After the common start (the barrier passed), a second into the run.
        g=$(tr '\0' '\n' < /proc/$p/cmdline | grep -A1 -x -- --gang | tail -1)
        for j in $(seq 300); do [ -e "$g/start" ] && break; sleep 0.1; done
        sleep 1; kill -9 "$p"; exit 0
      fi
      sleep 0.1
    done
    exit 1
  ]] })
  local saved, err = client_run({ "workload.duration_seconds=6" })
  killer:wait()
  assert(saved, err and err.message)
  local b = saved[1].bench
  t.ok(b.incomplete and b.incomplete:find("task 1 of job", 1, true), tostring(b.incomplete))
  -- The node the barrier saw task 1 on is the one named.
  local jdir = job_dir_of(saved[1])
  local ready = json.decode(assert(fs.read(fs.join(jdir, "gang", "ready-1"))))
  t.ok(b.incomplete:find("on " .. ready.host, 1, true), b.incomplete)
  t.ok(b.total_requests > 0)
  t.eq(b.successes + b.errors, b.total_requests)
  assert(server.stop_all())
end)
t.run()
