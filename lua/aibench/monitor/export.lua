--- `monitor export`: the service's query set from a monitor's Prometheus,
--- instant or over a range, as JSON or CSV (with a metadata header).
local json = require("aibench.json")
local time = require("aibench.time")
local prom = require("aibench.prom")
local metricsets = require("aibench.metricsets")

local M = {}

local function parse_time(s, what)
  if s == nil then
    return nil
  end
  if type(s) == "number" then
    return s
  end
  local n = tonumber(s)
  if n then
    return n
  end
  local t, err = time.parse(s)
  if not t then
    error(string.format("--%s: %s", what, err.message), 0)
  end
  return t
end

--- Seconds from a number or a Prometheus duration (15s, 1m30s); nil when
--- it is neither.
local function duration_s(s)
  return tonumber(s) or (prom.duration_s(tostring(s)))
end

--- The export of monitor `m` (its meta, with its Prometheus client).
---@param o {format?: "json"|"csv", type?: "instant"|"range", start?: string|number, ["end"]?: string|number, step?: string|number}
---@return string? text
---@return table? err
function M.export(m, o)
  local kind = o.type or "instant"
  if kind ~= "instant" and kind ~= "range" then
    error(string.format('--type: expected "instant" or "range", got "%s"', kind), 0)
  end
  local fmt = o.format or "json"
  if fmt ~= "json" and fmt ~= "csv" then
    error(string.format('--format: expected "json" or "csv", got "%s"', fmt), 0)
  end
  local now = time.now()
  local t_end = parse_time(o["end"], "end") or now
  local t_start = parse_time(o.start, "start") or m.started_unix or (t_end - 3600)
  local scrape = require("aibench.servermetrics").scrape_s(m)
  local step
  if o.step then
    step = duration_s(tostring(o.step))
    if not step or step <= 0 then
      error("--step: expected seconds or a duration like 15s, got " .. tostring(o.step), 0)
    end
  else
    step = scrape
  end
  -- Rates and quantiles over a few steps (see metricsets.rate_window_s), not
  -- a fixed minute: a short run's rate is its own, not a minute's average.
  local window = metricsets.rate_window_s(step, scrape)
  if kind == "range" and t_end <= t_start then
    error(string.format("--end (%s) is not after --start (%s)", time.format(t_end), time.format(t_start)), 0)
  end
  local out = { prometheus = m.client.url, monitor = m.instance_id, type = kind, rate_window_s = window, scrape_interval_s = scrape, queries = {} }
  if kind == "range" then
    out.start, out["end"], out.step = time.format(t_start), time.format(t_end), step
  else
    out.time = time.format(t_end)
  end
  local services = {}
  for _, tg in ipairs(m.targets or {}) do
    services[#services + 1] = tg.service
  end
  local total_series = 0
  for _, service in ipairs(services) do
    for _, q in ipairs(metricsets.queries(metricsets.kind_of(service), window .. "s")) do
      local res, qerr
      if kind == "range" then
        res, qerr = m.client:query_range(q[2], t_start, t_end, step)
      else
        res, qerr = m.client:query(q[2], t_end)
      end
      if not res then
        return nil, qerr
      end
      total_series = total_series + #res
      out.queries[#out.queries + 1] = { service = service, name = q[1], unit = q[3], query = q[2], series = res }
    end
  end
  if total_series == 0 then
    return nil, {
      kind = "no_data",
      message = string.format("no data yet: Prometheus at %s has no samples for %s %s (it scrapes every %s; wait for a scrape, or check `aibench monitor status %s`)",
        m.client.url, table.concat(services, ", "), kind == "range" and ("between " .. time.format(t_start) .. " and " .. time.format(t_end)) or ("at " .. time.format(t_end)), m.scrape_interval or (scrape .. "s"), m.instance_id),
    }
  end
  if fmt == "json" then
    return json.encode(out, { pretty = true }) .. "\n"
  end
  -- CSV with a metadata header.
  local lines = {
    "# aibench monitor export",
    "# prometheus: " .. out.prometheus,
    "# monitor: " .. out.monitor,
    "# type: " .. kind,
  }
  if kind == "range" then
    lines[#lines + 1] = "# start: " .. out.start
    lines[#lines + 1] = "# end: " .. out["end"]
    lines[#lines + 1] = "# step_s: " .. tostring(step)
  else
    lines[#lines + 1] = "# time: " .. out.time
  end
  lines[#lines + 1] = string.format("# rate_window: %ds (rates and quantiles over max(2 x step, 4 x scrape interval %gs))", window, scrape)
  lines[#lines + 1] = "service,metric,unit,instance,timestamp,value"
  local function csv(s)
    s = tostring(s)
    if s:find('[,"\n]') then
      return '"' .. s:gsub('"', '""') .. '"'
    end
    return s
  end
  for _, q in ipairs(out.queries) do
    for _, s in ipairs(q.series) do
      local inst = s.metric.instance or ""
      if s.values then
        for _, pt in ipairs(s.values) do
          lines[#lines + 1] = table.concat({ csv(q.service), csv(q.name), csv(q.unit), csv(inst), time.format(pt[1]), tostring(pt[2]) }, ",")
        end
      else
        lines[#lines + 1] = table.concat({ csv(q.service), csv(q.name), csv(q.unit), csv(inst), time.format(s.time), tostring(s.value) }, ",")
      end
    end
  end
  return table.concat(lines, "\n") .. "\n"
end

M.duration_s = duration_s

return M
