-- needs: prometheus
-- GPU telemetry without a GPU: the agent serves a recorded dcgm-exporter
-- scrape (monitoring.gpu_from_file) beside a simulated server, with the
-- service's own process-group metrics; the real Prometheus of a monitor
-- scrapes it; the result's server section and the HTML report carry it.
-- On this machine NVML is absent: the exporter says so and serves on.
local server = require("aibench.server")
local client = require("aibench.client")
local monitor = require("aibench.monitor")
local report = require("aibench.report")
local http = require("aibench.http")
local proc = require("aibench.proc")
local time = require("aibench.time")
local fs = require("aibench.fs")
local aibench = require("aibench")
local t = require("aibench.testing")

local dir = assert(fs.tmpdir())
local FIXTURE = fs.abspath("tests/fixtures/dcgm-exporter-sample.txt")

local wait_for = dofile("tests/lua/support/flows.lua").wait_for

local function write(name, text)
  local p = fs.join(dir, name)
  assert(fs.write(p, text))
  return p
end

t.case("the exporter without NVML says so once and serves on", function()
  local r = assert(proc.run({ "sh", "-c", aibench.exe() .. " gpu-exporter --port 0 2>&1 & pid=$!; sleep 1; kill $pid" }, { timeout_s = 20 }))
  t.contains(r.stdout, "NVML is not available on this node")
  local bad = assert(proc.run({ aibench.exe(), "gpu-exporter", "--from-file", "/no/such/scrape.txt" }))
  t.eq(bad.code, 2)
  t.contains(bad.stderr, "--from-file: cannot read '/no/such/scrape.txt'")
end)

t.case("recorded GPU scrape: agent endpoint, Prometheus, server section, report", function()
  local srv = write("gpu-sim.yaml", string.format([[
name: gpu-sim
service_name: vllm-gpu
service:
  command: exec {aibench} sim --port {port} --profile opt-125m-cpu
  ports: [auto]
  health: {path: /health, timeout_s: 30}
monitoring:
  gpu_from_file: %s
orchestration:
  executor: local
]], FIXTURE))
  local ready = assert(server.run({ recipe = srv, executor = "local", quiet = true }))
  local e = ready[1].instance.extra
  t.eq(e.gpu_metrics, "recorded scrape")
  t.eq(e.gpu_exporter_url, e.agent_metrics_url)
  local body = assert(http.get(e.agent_metrics_url .. "/metrics")).body
  t.contains(body, 'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-8c16e996')
  t.contains(body, "aibench_gpu_metrics_available 1")
  t.contains(body, 'aibench_service_resident_memory_bytes{instance_id="' .. ready[1].instance_id .. '"')

  local mon = write("gpu-monitor.yaml", [[
name: gpu-monitor
service_name: vllm-gpu
targets:
  - service: vllm-gpu
prometheus:
  scrape_interval: 1s
  refresh_interval: 1s
orchestration:
  executor: local
]])
  local m = assert(monitor.start({ recipe = mon, executor = "local" }))
  m = assert(monitor.get(m.instance_id))
  wait_for("Prometheus to scrape the GPU metrics", 30, function()
    local r = m.client:query("DCGM_FI_DEV_GPU_UTIL")
    return r and #r == 2
  end)
  local cl = write("gpu-client.yaml", [[
name: gpu-client
service_name: vllm-gpu
workload: {pattern: closed-loop, users: 2, duration_seconds: 3}
dataset: {prompt_tokens: 16, output_tokens: 8}
]])
  local rec = assert(client.run({ recipe = cl, out_dir = fs.join(dir, "results"), progress = false }))[1]
  local g = rec.server.gpu
  t.eq(g.gpus, 2)
  t.eq(g.util_pct, 85)
  t.eq(g.fb_used_mib, 2 * 130112)
  t.eq(g.energy_j, 0, "a recorded scrape does not move its energy counter")
  local sp = rec.server.service_process
  t.ok(sp.cpu_s > 0 and sp.resident_memory_bytes > 0, "the service's own CPU and memory")
  local series = rec.server.timeseries.series
  t.ok(series.gpu_util_pct and #series.gpu_util_pct.points > 0, "GPU utilization on the run's timeline")
  t.eq(series.gpu_util_pct.points[1][2], 85)
  t.ok(series.service_cpu_cores, "the service's CPU on the timeline")
  local html = report.html({ rec })
  t.contains(html, 'id="chart-gpu-1"')
  t.contains(html, 'id="chart-gpu-power-1"')
  t.contains(html, 'id="chart-gpu-memory-1"')
  t.contains(report.server_summary(rec.server, rec.bench), "GPUs 2:")
  local csv = assert(monitor.export({ id = m.instance_id, format = "csv", type = "instant" }))
  t.contains(csv, "gpu_util_pct")
  assert(monitor.stop(m.instance_id))
  assert(server.stop_all())
end)

t.run()
fs.remove(dir, { recursive = true })
