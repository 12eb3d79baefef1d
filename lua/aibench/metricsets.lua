--- What aibench asks of a served model's metrics: vLLM's metric names (with
--- the names older versions used) and the PromQL query sets per service
--- kind, shared by the monitor's export and a result's server section.
local M = {}

-- vLLM's names, with the names older versions used.
M.HISTOGRAMS = {
  ttft_ms = { "vllm:time_to_first_token_seconds" },
  itl_ms = { "vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds" },
  e2e_ms = { "vllm:e2e_request_latency_seconds" },
  queue_ms = { "vllm:request_queue_time_seconds" },
  prefill_ms = { "vllm:request_prefill_time_seconds" },
  decode_ms = { "vllm:request_decode_time_seconds" },
}
M.COUNTERS = {
  prompt_tokens = { "vllm:prompt_tokens_total" },
  generation_tokens = { "vllm:generation_tokens_total" },
  preemptions = { "vllm:num_preemptions_total" },
  prefix_cache_queries = { "vllm:prefix_cache_queries_total" },
  prefix_cache_hits = { "vllm:prefix_cache_hits_total" },
  prompt_tokens_cached = { "vllm:prompt_tokens_cached_total" },
}
--- PromQL for a histogram quantile, trying each metric name in turn (vLLM
--- renamed some between versions; `or` keeps whichever exists).
local function hq(q, names, window)
  local parts = {}
  for i, n in ipairs(names) do
    parts[i] = string.format("histogram_quantile(%s, sum by (le) (rate(%s_bucket[%s])))", q, n, window)
  end
  return table.concat(parts, " or ")
end

local function alias(names, fn)
  local parts = {}
  for i, n in ipairs(names) do
    parts[i] = fn(n)
  end
  return table.concat(parts, " or ")
end

--- The window (seconds) that rates and histogram quantiles are taken over,
--- from a range's step and the monitor's scrape interval: at least two
--- steps, so that a point covers the step before it, and at least four
--- scrapes, so that `rate` has samples to work with even when one is late.
--- A fixed 1m would smear a 15 s run into a quarter of its true rate.
---@param step_s number
---@param scrape_s number
---@return integer seconds
function M.rate_window_s(step_s, scrape_s)
  return math.ceil(math.max(2 * step_s, 4 * scrape_s, 1))
end

--- Queries exported per service kind: {name, promql, unit}. `window` is a
--- Prometheus duration (see `rate_window_s`).
function M.queries(kind, window)
  assert(type(window) == "string", "metricsets.queries: a rate window (e.g. \"4s\") is required")
  local H = M.HISTOGRAMS
  local process = {
    { "process_cpu_seconds_rate", "sum by (instance) (rate(process_cpu_seconds_total[" .. window .. "]))", "cores" },
    { "process_resident_memory_bytes", "sum by (instance) (process_resident_memory_bytes)", "bytes" },
  }
  local sets = {
    vllm = {
      { "requests_running", "sum by (instance) (vllm:num_requests_running)", "requests" },
      { "requests_waiting", "sum by (instance) (vllm:num_requests_waiting)", "requests" },
      { "kv_cache_usage", alias({ "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc" }, function(n)
        return "avg by (instance) (" .. n .. ")"
      end), "fraction" },
      { "generation_tokens_per_s", "sum by (instance) (rate(vllm:generation_tokens_total[" .. window .. "]))", "tokens/s" },
      { "prefix_cache_hit_rate", "sum by (instance) (rate(vllm:prefix_cache_hits_total[" .. window .. "])) / sum by (instance) (rate(vllm:prefix_cache_queries_total[" .. window .. "]))", "fraction" },
      { "prompt_tokens_per_s", "sum by (instance) (rate(vllm:prompt_tokens_total[" .. window .. "]))", "tokens/s" },
      { "requests_finished_per_s", "sum by (instance) (rate(vllm:request_success_total[" .. window .. "]))", "requests/s" },
      { "preemptions_per_s", "sum by (instance) (rate(vllm:num_preemptions_total[" .. window .. "]))", "1/s" },
      { "ttft_p50_s", hq(0.5, H.ttft_ms, window), "s" },
      { "ttft_p99_s", hq(0.99, H.ttft_ms, window), "s" },
      { "itl_p50_s", hq(0.5, H.itl_ms, window), "s" },
      { "itl_p99_s", hq(0.99, H.itl_ms, window), "s" },
      { "e2e_p50_s", hq(0.5, H.e2e_ms, window), "s" },
      { "e2e_p99_s", hq(0.99, H.e2e_ms, window), "s" },
      { "queue_time_p50_s", hq(0.5, H.queue_ms, window), "s" },
    },
    ollama = {
      { "requests_per_s", "sum by (instance) (rate(http_requests_total[" .. window .. "]))", "requests/s" },
      { "up", "up", "bool" },
    },
  }
  -- Beside every instance: its GPUs (dcgm-exporter's names, from the agent's
  -- NVML reader or a site's dcgm-exporter) and its process group.
  local node = {
    { "gpu_util_pct", "avg by (instance) (DCGM_FI_DEV_GPU_UTIL)", "%" },
    { "gpu_mem_copy_util_pct", "avg by (instance) (DCGM_FI_DEV_MEM_COPY_UTIL)", "%" },
    { "gpu_fb_used_mib", "sum by (instance) (DCGM_FI_DEV_FB_USED)", "MiB" },
    { "gpu_power_w", "sum by (instance) (DCGM_FI_DEV_POWER_USAGE)", "W" },
    { "service_cpu_cores", "sum by (instance) (rate(aibench_service_cpu_seconds_total[" .. window .. "]))", "cores" },
    { "service_memory_bytes", "sum by (instance) (aibench_service_resident_memory_bytes)", "bytes" },
  }
  local out = {}
  for _, q in ipairs(sets[kind] or { { "up", "up", "bool" } }) do
    out[#out + 1] = q
  end
  for _, list in ipairs({ process, node }) do
    for _, q in ipairs(list) do
      out[#out + 1] = q
    end
  end
  return out
end

--- Which query set a service uses (by name: vllm*, ollama*, else generic).
function M.kind_of(service)
  service = service or ""
  if service:match("vllm") then
    return "vllm"
  elseif service:match("ollama") then
    return "ollama"
  end
  return "generic"
end

return M
