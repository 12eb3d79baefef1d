--- The `server` section of a benchmark result: what the server itself measured
--- over the run's window. From a running monitor's Prometheus when there is
--- one (range queries), otherwise from scraping each instance's /metrics
--- before and after the run and taking the difference of counters and
--- histograms.
local prom = require("aibench.prom")
local json = require("aibench.json")
local metricsets = require("aibench.metricsets")
local deploy = require("aibench.deploy")
local registry = require("aibench.registry")
local util = require("aibench.util")

local M = {}

local HISTOGRAMS, COUNTERS = metricsets.HISTOGRAMS, metricsets.COUNTERS
-- The key of the node-side scrapes in a `before` snapshot.
local NODES = "\0nodes"


local function metrics_url(u)
  return u:gsub("/+$", "") .. "/metrics"
end

--- The node-side endpoints of the registered instances serving `urls`:
--- the agent's (the service's process group; NVML GPUs) and a
--- dcgm-exporter's, each once.
function M.node_urls(urls)
  local want, out, seen = {}, {}, {}
  for _, u in ipairs(urls) do
    want[(u:gsub("/+$", ""))] = true
  end
  local scan = registry.scan()
  for _, list in pairs(scan and scan.services or {}) do
    for _, i in ipairs(list) do
      if want[(i.url or ""):gsub("/+$", "")] then
        for _, nu in ipairs(util.node_endpoints(i)) do
          if not seen[nu] then
            seen[nu] = true
            out[#out + 1] = nu
          end
        end
      end
    end
  end
  table.sort(out)
  return out
end

--- Scrapes every instance before the run (failures are remembered, not
--- fatal), and the node-side endpoints beside them.
function M.before(urls)
  local snap = {}
  for _, u in ipairs(urls) do
    snap[u] = prom.scrape(metrics_url(u), 5) or false
  end
  local nodes = {}
  for _, nu in ipairs(M.node_urls(urls)) do
    nodes[nu] = prom.scrape(metrics_url(nu), 5) or false
  end
  snap[NODES] = nodes
  return snap
end


local function family(fams, names)
  for _, n in ipairs(names) do
    if fams[n] then
      return fams[n], n
    end
  end
end

local function sum_samples(f)
  local s = 0
  for _, x in ipairs(f and f.samples or {}) do
    if not x.name:match("_created$") then
      s = s + x.value
    end
  end
  return s
end

local function label_key(labels)
  local keys = {}
  for k, v in pairs(labels) do
    keys[#keys + 1] = k .. "=" .. v
  end
  table.sort(keys)
  return table.concat(keys, ",")
end

--- after - before of a histogram family, summed over label sets and instances.
local function hist_delta(acc, before, after)
  local prev = {}
  for _, h in ipairs(before and before.histograms or {}) do
    prev[label_key(h.labels)] = h
  end
  for _, h in ipairs(after and after.histograms or {}) do
    local p = prev[label_key(h.labels)]
    acc.count = acc.count + h.count - (p and p.count or 0)
    acc.sum = acc.sum + h.sum - (p and p.sum or 0)
    for i, b in ipairs(h.buckets) do
      local pb = p and p.buckets[i] and p.buckets[i][2] or 0
      acc.buckets[i] = acc.buckets[i] or { b[1], 0 }
      acc.buckets[i][2] = acc.buckets[i][2] + b[2] - pb
    end
  end
end

local function summarize(h)
  if h.count <= 0 then
    return json.null
  end
  local out = { count = h.count, mean = h.sum / h.count * 1000 }
  for _, p in ipairs({ { "p50", 0.5 }, { "p90", 0.9 }, { "p99", 0.99 } }) do
    local v, le, first = prom.quantile(p[2], h)
    if v and not first then
      out[p[1]] = v * 1000
    else
      -- Inside the first bucket (0 to le): only the bound is known.
      out[p[1]] = json.null
      out[p[1] .. "_le"] = le and le * 1000 or json.null
    end
  end
  return out
end

--- Rates over the run's own window from the counters' deltas: what the
--- server did per second between t0 and t1, not a rate over a minute of
--- Prometheus samples.
local function add_rates(out, window_s)
  local function per_s(v)
    return (type(v) == "number" and window_s > 0) and v / window_s or json.null
  end
  out.window.seconds = window_s
  out.generation_tokens_per_s = per_s(out.generation_tokens)
  out.prompt_tokens_per_s = per_s(out.prompt_tokens)
  out.requests_per_s = per_s(out.requests)
end

--- The section: exact counts and distributions from the scrape difference,
--- plus the monitor's time series over the window when a monitor scrapes
--- these servers.
function M.after(before, urls, t0, t1)
  local out = M.diff(before, urls, t0, t1)
  local ok, ts = pcall(M.timeseries, urls, t0, t1)
  if ok and ts then
    if out == json.null then
      out = { source = "prometheus", window = { start_unix = t0, end_unix = t1 } }
      -- No scrape difference: the counters' deltas from Prometheus instead.
      local m = M.for_urls(urls)
      local dok, deltas = pcall(M.prometheus_deltas, m and m.client, t0, t1)
      if dok then
        for k, v in pairs(deltas) do
          out[k] = v
        end
        add_rates(out, t1 - t0)
      end
    end
    out.prometheus = ts.prometheus
    out.timeseries = ts
  end
  return out
end

--- The GPUs and the services' process groups over the window, from the
--- node-side endpoints' scrapes before and after (nil without any).
local function node_section(before, window_s)
  local nodes = before and before[NODES]
  if not nodes or next(nodes) == nil then
    return nil, nil
  end
  local gpus, energy_mj, util, copy, fb, power = 0, 0, {}, {}, 0, 0
  local energy_known, cpu_s, rss, services = true, 0, 0, 0
  local function samples(fams, name)
    local f = fams and fams[name]
    return f and f.samples or {}
  end
  for u, b in pairs(nodes) do
    local a = prom.scrape(metrics_url(u), 5)
    if a then
      local prev = {}
      for _, s in ipairs(samples(b or {}, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")) do
        prev[label_key(s.labels)] = s.value
      end
      for _, s in ipairs(samples(a, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")) do
        local p = prev[label_key(s.labels)]
        if p then
          energy_mj = energy_mj + (s.value - p)
        else
          energy_known = false
        end
      end
      for _, s in ipairs(samples(a, "DCGM_FI_DEV_GPU_UTIL")) do
        gpus = gpus + 1
        util[#util + 1] = s.value
      end
      for _, s in ipairs(samples(a, "DCGM_FI_DEV_MEM_COPY_UTIL")) do
        copy[#copy + 1] = s.value
      end
      fb = fb + sum_samples(a["DCGM_FI_DEV_FB_USED"])
      power = power + sum_samples(a["DCGM_FI_DEV_POWER_USAGE"])
      if a["aibench_service_cpu_seconds_total"] then
        services = services + 1
        cpu_s = cpu_s + sum_samples(a["aibench_service_cpu_seconds_total"]) - sum_samples((b or {})["aibench_service_cpu_seconds_total"])
        rss = rss + sum_samples(a["aibench_service_resident_memory_bytes"])
      end
    end
  end
  local function mean(xs)
    local t = 0
    for _, x in ipairs(xs) do
      t = t + x
    end
    return #xs > 0 and t / #xs or json.null
  end
  local gpu = json.null
  if gpus > 0 then
    local e = energy_known and energy_mj / 1000 or nil
    gpu = {
      gpus = gpus,
      energy_j = e or json.null,
      mean_power_w = (e and window_s > 0) and e / window_s or json.null,
      util_pct = mean(util),
      mem_copy_util_pct = mean(copy),
      fb_used_mib = fb,
      power_w = power,
      note = "utilization, memory and power at the end of the window; energy over it",
    }
  end
  local svc = json.null
  if services > 0 then
    svc = { instances = services, cpu_s = cpu_s, cpu_cores = window_s > 0 and cpu_s / window_s or json.null, resident_memory_bytes = rss }
  end
  return gpu, svc
end

--- after - before of every instance's /metrics.
function M.diff(before, urls, t0, t1)
  local out = {
    source = "scrape-diff",
    window = { start_unix = t0, end_unix = t1 },
    instances = 0,
    requests = 0,
    aborted = 0,
    errored = 0,
    requests_by_reason = {},
  }
  local hists = {}
  for k in pairs(HISTOGRAMS) do
    hists[k] = { count = 0, sum = 0, buckets = {} }
  end
  local counters = {}
  for k in pairs(COUNTERS) do
    counters[k] = 0
  end
  local missing = {}
  out.gpu, out.service_process = node_section(before, t1 - t0)
  for _, u in ipairs(urls) do
    local a = prom.scrape(metrics_url(u), 5)
    local b = before[u]
    if not a or not b then
      missing[#missing + 1] = u
    else
      out.instances = out.instances + 1
      local succ_a, succ_b = a["vllm:request_success_total"], b["vllm:request_success_total"]
      -- `_created` samples (OpenMetrics) carry timestamps, not counts.
      local prev = {}
      for _, s in ipairs(succ_b and succ_b.samples or {}) do
        if not s.name:match("_created$") then
          prev[s.name .. "{" .. label_key(s.labels)] = s.value
        end
      end
      for _, s in ipairs(succ_a and succ_a.samples or {}) do
        if not s.name:match("_created$") then
          local d = s.value - (prev[s.name .. "{" .. label_key(s.labels)] or 0)
          local reason = s.labels.finished_reason or "unknown"
          out.requests_by_reason[reason] = (out.requests_by_reason[reason] or 0) + d
          if reason == "abort" then
            out.aborted = out.aborted + d
          elseif reason == "error" then
            out.errored = out.errored + d
          else
            out.requests = out.requests + d
          end
        end
      end
      for k, names in pairs(COUNTERS) do
        counters[k] = counters[k] + sum_samples(family(a, names)) - sum_samples(family(b, names))
      end
      for k, names in pairs(HISTOGRAMS) do
        hist_delta(hists[k], family(b, names), family(a, names))
      end
    end
  end
  if out.instances == 0 then
    return json.null
  end
  out.gpu = out.gpu or json.null
  out.service_process = out.service_process or json.null
  for k, v in pairs(counters) do
    out[k] = v
  end
  add_rates(out, t1 - t0)
  -- The prefix cache's hit rate over the run: hit tokens over queried tokens.
  out.prefix_cache_hit_rate = counters.prefix_cache_queries > 0 and counters.prefix_cache_hits / counters.prefix_cache_queries or json.null
  for k, h in pairs(hists) do
    out[k] = summarize(h)
  end
  if #missing > 0 then
    out.unreachable = missing
  end
  return out
end

-- The monitor's view ------------------------------------------------------------

--- A running monitor that scrapes any of these URLs, if there is one.
function M.for_urls(urls)
  local want = {}
  for _, u in ipairs(urls) do
    want[util.host_port(u)] = true
  end
  local list = deploy.list("monitor") or {}
  for _, m in ipairs(list) do
    if m.instance then
      local client = prom.client(m.instance.url)
      for _, tg in ipairs(client:targets() or {}) do
        if want[tg.labels and tg.labels.instance or ""] then
          m.client = client
          return m
        end
      end
    end
  end
end

--- A monitor's scrape interval in seconds (the monitor's own, else the
--- default a recipe gets when it names none).
function M.scrape_s(m)
  local d = require("aibench.monitor.config").DEFAULTS.scrape_interval
  return prom.duration_s(m.scrape_interval or d) or prom.duration_s(d)
end

--- Server-side time series from a monitor over a benchmark's window, to put
--- next to the client's (nil when no monitor scrapes these URLs). One point
--- per scrape interval, from t0 to t1 only (x is seconds since t0): a point
--- outside the run would draw the idle server before and after it. Rates
--- and quantiles are over `metricsets.rate_window_s` (a few scrapes), not a
--- fixed minute that would average the run with the idle time before it.
function M.timeseries(urls, t0, t1)
  local m = M.for_urls(urls)
  if not m then
    return nil
  end
  local scrape = M.scrape_s(m)
  local step = math.max(1, scrape)
  local window = metricsets.rate_window_s(step, scrape)
  local span = t1 - t0
  local out = { prometheus = m.client.url, monitor = m.instance_id, step_s = step, scrape_interval_s = scrape, rate_window_s = window, series = {} }
  for _, q in ipairs(metricsets.queries("vllm", window .. "s")) do
    local res = m.client:query_range(q[2], t0, t1, step)
    if res and #res > 0 then
      local points = json.array()
      -- Counts and rates add up over instances; fractions (KV-cache use) average.
      local by_t, n_t = {}, {}
      for _, s in ipairs(res) do
        for _, pt in ipairs(s.values or {}) do
          if pt[2] == pt[2] then
            by_t[pt[1]] = (by_t[pt[1]] or 0) + pt[2]
            n_t[pt[1]] = (n_t[pt[1]] or 0) + 1
          end
        end
      end
      for _, t in ipairs(util.sorted_keys(by_t)) do
        local mean = q[3] == "fraction" or q[3] == "%"
        local x = t - t0
        if x >= 0 and x <= span then
          points[#points + 1] = { x, mean and by_t[t] / n_t[t] or by_t[t] }
        end
      end
      out.series[q[1]] = { unit = q[3], points = points }
    end
  end
  return out
end

--- The vLLM counters' increase over [t0, t1] from a monitor's Prometheus:
--- the sum over instances at t1 minus the sum at t0 (the last scrape before
--- each; no extrapolation). For a result whose /metrics scrapes failed.
function M.prometheus_deltas(client, t0, t1)
  local out = {}
  for k, names in pairs(COUNTERS) do
    local q = "sum(" .. table.concat(names, " or ") .. ")"
    local a, b = client:query(q, t0), client:query(q, t1)
    if a and b and a[1] and b[1] then
      out[k] = b[1].value - a[1].value
    end
  end
  local q = 'sum(vllm:request_success_total{finished_reason!~"abort|error"})'
  local a, b = client:query(q, t0), client:query(q, t1)
  if a and b and a[1] and b[1] then
    out.requests = b[1].value - a[1].value
  end
  return out
end

return M
