-- needs: prometheus
-- Monitors with the real Prometheus and the simulator on the local executor.
local monitor = require("aibench.monitor")
local server = require("aibench.server")
local client = require("aibench.client")
local registry = require("aibench.registry")
local prom = require("aibench.prom")
local sim = require("aibench.sim")
local proc = require("aibench.proc")
local time = require("aibench.time")
local fs = require("aibench.fs")
local aibench = require("aibench")
local t = require("aibench.testing")

local dir = assert(fs.tmpdir())
local SCRAPE = 5 -- seconds (Prometheus batches discovery updates every 5 s)

local wait_for = dofile("tests/lua/support/flows.lua").wait_for

local function up_targets(m)
  local n, urls = 0, {}
  for _, tg in ipairs(m.client:targets() or {}) do
    -- The servers themselves (their agents' endpoints are the vllm-node job).
    if tg.health == "up" and tg.labels and tg.labels.job == "vllm" then
      n = n + 1
      urls[#urls + 1] = tg.scrapeUrl
    end
  end
  return n, urls
end

local function write_recipe(name, text)
  local p = fs.join(dir, name .. ".yaml")
  assert(fs.write(p, text))
  return p
end

t.case("start, targets follow the registry, export, server section, stop", function()
  local first = assert(server.run({ recipe = "vllm-sim", executor = "local", quiet = true }))
  local started = time.monotonic()
  local m = assert(monitor.start({ recipe = "vllm-monitor", set = { "prometheus.scrape_interval=" .. SCRAPE .. "s", "prometheus.refresh_interval=1s" }, executor = "local" }))
  t.ok(m.url:match("^http://"), m.url)
  t.eq(#registry.list("vllm-monitor-prometheus"), 1, "the monitor registers itself")
  m = assert(monitor.get(m.instance_id))
  wait_for("the first target to be up within two scrape intervals", 2 * SCRAPE, function()
    return up_targets(m) == 1
  end)
  io.stderr:write(string.format("    first target up %.1f s after start\n", time.monotonic() - started))
  -- A server registered after the monitor: scraped without a restart.
  local second = assert(server.run({ recipe = "vllm-sim", executor = "local", quiet = true }))
  wait_for("the second target", 30, function()
    return up_targets(m) == 2
  end)
  -- A benchmark against both: the result carries the server section.
  local saved = assert(client.run({ recipe = "vllm-simple-test", set = { "workload.duration_seconds=2" }, out_dir = fs.join(dir, "results"), progress = false }))
  local rec = saved[1]
  t.eq(rec.server.requests, rec.bench.successes)
  t.eq(rec.server.prometheus, m.client.url)
  t.ok(rec.server.timeseries.series.requests_running, "server time series from Prometheus")
  -- Instant queries agree with scraping the same endpoint (once scraped after the run).
  local url = first[1].instance.url
  local target = url:gsub("^http://", "")
  local scraped = assert(prom.scrape(url .. "/metrics"))
  local want = scraped["vllm:generation_tokens_total"].samples[1].value
  wait_for("Prometheus to scrape the final counter", 4 * SCRAPE, function()
    local r = assert(m.client:query(string.format('vllm:generation_tokens_total{instance="%s"}', target)))
    return r[1] and r[1].value == want
  end)
  local running = assert(m.client:query(string.format('vllm:num_requests_running{instance="%s"}', target)))
  t.eq(running[1].value, scraped["vllm:num_requests_running"].samples[1].value)
  -- Export: range as CSV with a metadata header, instant as JSON. A rate
  -- needs two scrapes inside its window, and the range is evaluated on a
  -- 1 s grid from the monitor's start: under load everything above can fall
  -- between a target's first and second scrape, or the second scrape just
  -- after the last grid point. So export until the rates are there.
  local csv
  wait_for("rates in the range export", 4 * SCRAPE, function()
    csv = assert(monitor.export({ id = m.instance_id, format = "csv", type = "range", step = 1 }))
    return csv:find("vllm,generation_tokens_per_s,tokens/s,", 1, true) ~= nil
  end)
  t.contains(csv, "# prometheus: " .. m.client.url)
  t.contains(csv, "# step_s: 1")
  t.contains(csv, "service,metric,unit,instance,timestamp,value")
  t.contains(csv, "vllm,requests_running,requests,")
  local j = require("aibench.json").decode(assert(monitor.export({ id = m.instance_id, format = "json", type = "instant" })))
  t.eq(j.type, "instant")
  t.ok(#j.queries >= 10)
  -- The CLI export writes a file.
  local out = fs.join(dir, "export.csv")
  local r = assert(proc.run({ aibench.exe(), "monitor", "export", "--id", m.instance_id, "--format", "csv", "--type", "range", "--out", out }))
  t.eq(r.code, 0, r.stderr)
  t.contains(assert(fs.read(out)), "kv_cache_usage")
  -- Stop: job ends, registry entry gone.
  local stopped = assert(monitor.stop(m.instance_id))
  t.eq(stopped[1].state, "CANCELED")
  t.eq(#registry.list("vllm-monitor-prometheus"), 0)
  t.fails("not_running", monitor.get(m.instance_id))
  server.stop_all()
  local _ = second
end)

t.case("alert rules go into the config and firing alerts show in status", function()
  local p = write_recipe("alerting", string.format([[
name: alerting
service_name: vllm
targets: [{service: vllm}]
prometheus: {scrape_interval: %ds, evaluation_interval: 1s, port: auto, refresh_interval: 1s}
alerts:
  - {name: AlwaysOn, expr: vector(1) > 0, for: 0s, summary: fires at once}
]], SCRAPE))
  local m = assert(monitor.start({ recipe = p, executor = "local" }))
  local st = wait_for("the alert to fire", 20, function()
    local s = assert(monitor.status(m.instance_id))
    for _, a in ipairs(s.alerts) do
      if a.state == "firing" and a.labels.alertname == "AlwaysOn" then
        return s
      end
    end
  end)
  t.ok(st)
  local r = assert(proc.run({ aibench.exe(), "monitor", "status", m.instance_id }))
  t.contains(r.stdout, "ALERT FIRING  AlwaysOn  fires at once")
  -- Before any server exists, export has no data: a clear message.
  local v, err = monitor.export({ id = m.instance_id, type = "range" })
  t.fails("no_data", v, err)
  t.contains(err.message, "no data yet")
  -- Bad PromQL: Prometheus' own message.
  local q, qerr = assert(monitor.get(m.instance_id)).client:query("sum(")
  t.fails("prometheus", q, qerr)
  t.contains(qerr.message, "parse error")
  assert(monitor.stop(m.instance_id))
end)

t.case("bad input: missing binary, taken port, unknown id, bad intervals", function()
  local p = write_recipe("nobin", "name: nobin\ntargets: [{service: vllm}]\nprometheus: {port: auto}\n")
  local empty = fs.join(dir, "emptybin")
  assert(fs.mkdir(empty))
  local r = assert(proc.run({ aibench.exe(), "monitor", "start", "--recipe", p }, { env = { PATH = empty } }))
  t.eq(r.code, 1)
  t.contains(r.stderr, "install the Debian package 'prometheus'")
  local s = assert(sim.start({ profile = "instant" }))
  local taken = write_recipe("taken", string.format("name: taken\ntargets: [{service: vllm}]\nprometheus: {port: %d}\n", s.port))
  local v, err = monitor.start({ recipe = taken, executor = "local" })
  t.fails("failed", v, err)
  t.contains(err.message, string.format("port %d is not free", s.port))
  t.contains(err.message, "choose another")
  t.eq(#registry.list("taken-prometheus"), 0)
  s:stop()
  t.fails("not_found", monitor.get("nope"))
  t.raises("prometheus.scrape_interval: expected a Prometheus duration", monitor.start, { recipe = "vllm-monitor", set = { "prometheus.scrape_interval=fast" } })
  local bad = write_recipe("bad", "name: bad\ntargets: [{service: vllm, port: 99999}]\n")
  t.raises("targets[1].port: expected an integer from 1 to 65535", monitor.start, { recipe = bad })
end)

t.case("the parser on Prometheus' own /metrics", function()
  local m = assert(monitor.start({ recipe = "vllm-monitor", set = { "prometheus.scrape_interval=" .. SCRAPE .. "s" }, executor = "local" }))
  local fams = assert(prom.scrape(m.url .. "/metrics"))
  t.eq(fams["prometheus_build_info"].kind, "gauge")
  local h = fams["prometheus_http_request_duration_seconds"]
  t.eq(h.kind, "histogram")
  local inf = h.histograms[1].buckets[#h.histograms[1].buckets]
  t.eq(inf[1], math.huge, "+Inf bucket")
  t.eq(inf[2], h.histograms[1].count)
  assert(monitor.stop(m.instance_id))
end)

t.run()
fs.remove(dir, { recursive = true })
