--- The JSON documents that `--json` prints for scripts, one builder per
--- listing and status command. Each shape is a contract (README, "Output
--- for scripts"): a top-level `schema` ("aibench.<thing>.v1", a new version
--- only when a field changes meaning or goes away; new fields may appear),
--- the list under a named key, field names as the registry, the job
--- metadata and the result files spell them, times as RFC 3339 text and
--- durations in seconds. Every field a shape documents is always there: a
--- value that is not known is null, never left out, so a script can read
--- any field of any entry without testing for it first.
local json = require("aibench.json")
local util = require("aibench.util")

local M = {}

--- `v`, or JSON null when it is absent (nil or null already).
function M.null(v)
  if util.present(v) then
    return v
  end
  return json.null
end
local null = M.null

--- A document: `{schema = "aibench.<thing>.v1", [key] = list}` and the
--- fields of `extra`. The list is an array even when empty.
---@param thing string
---@param key string
---@param list table[]
---@param extra? table
---@return table
function M.document(thing, key, list, extra)
  local doc = util.merge({}, extra)
  doc.schema = "aibench." .. thing .. ".v1"
  doc[key] = json.array(list)
  return doc
end

--- Prints a document on stdout, pretty, with a trailing newline: the only
--- thing a `--json` command prints there (warnings go to stderr).
---@param doc table
---@return integer exit code 0
function M.print(doc)
  io.write(json.encode(doc, { pretty = true }), "\n")
  return 0
end

--- A registry entry as stored (`services show` prints the same), with
--- `extra` always an object.
function M.instance(i)
  local out = util.copy(i)
  for _, k in ipairs({ "job_id", "recipe_name", "instance_id", "node", "host", "url", "executor", "status", "registered_at" }) do
    out[k] = null(out[k])
  end
  out.ports = json.array(util.copy(util.present(i.ports) and i.ports or nil))
  out.extra = util.present(i.extra) and i.extra or {}
  return out
end

--- `services list --json`: aibench.services.v1.
---@param scan table services.scan()
---@param dir string the registry folder
function M.services(scan, dir)
  local list = {}
  for _, name in ipairs(scan.names) do
    local instances = {}
    for _, i in ipairs(scan.services[name]) do
      instances[#instances + 1] = M.instance(i)
    end
    list[#list + 1] = { name = name, instances = json.array(instances) }
  end
  local skipped = {}
  for _, c in ipairs(scan.corrupt or {}) do
    skipped[#skipped + 1] = { path = c.path, message = c.message }
  end
  return M.document("services", "services", list, { registry = dir, skipped = json.array(skipped) })
end

--- One deployment (a job folder's metadata, its state just asked of the
--- executor) as every deployment shape shows it.
---@param m table a meta from deploy.list
function M.deployment(m)
  local inst = util.present(m.instance) and m.instance or nil
  return {
    instance_id = null(m.instance_id),
    recipe = null(m.recipe),
    recipe_file = null(m.recipe_file),
    service = null(m.service),
    executor = null(m.executor),
    job_id = null(m.job_id),
    state = null(m.state),
    reason = null(m.reason),
    exit_code = null(m.exit_code),
    expected_start = null(m.expected_start),
    node = null(m.node),
    -- A server on several nodes: how many (1 otherwise).
    nodes = m.nodes or 1,
    url = null(inst and inst.url or m.url),
    submitted_at = null(m.submitted_at),
    dir = null(m.dir),
    registered = inst and M.instance(inst) or json.null,
  }
end

-- The document of each kind's `list`: its schema thing and list key.
local PLURAL = { server = "servers", client = "clients", monitor = "monitors" }

--- `server list`, `client list`, `monitor list --json`: aibench.servers.v1,
--- aibench.clients.v1, aibench.monitors.v1.
---@param kind "server"|"client"|"monitor"
---@param list table[] metas from deploy.list
function M.deployments(kind, list)
  local out = {}
  for _, m in ipairs(list) do
    out[#out + 1] = M.deployment(m)
  end
  return M.document(PLURAL[kind], PLURAL[kind], out)
end

--- The last lines of a job's log, as a list (nil when it wrote none).
local function log_lines(m)
  local text = require("aibench.deploy").job(m):logs({ tail = 5 }) or ""
  if text == "" then
    return nil
  end
  local lines = {}
  for line in (text:gsub("\n$", "") .. "\n"):gmatch("(.-)\n") do
    lines[#lines + 1] = line
  end
  return json.array(lines)
end

--- `server status --json`: aibench.server_status.v1, each deployment with
--- its start-up timeline (seconds per step, once registered) and, once it
--- ended, the last lines of its log.
---@param list table[] metas from deploy.list
function M.server_status(list)
  local hpc = require("aibench.hpc")
  local deploy = require("aibench.deploy")
  local out = {}
  for _, m in ipairs(list) do
    local d = M.deployment(m)
    local tl = m.instance and hpc.timeline(m.instance.extra and m.instance.extra.timeline)
    d.timeline = tl and { from = tl.from, total_s = tl.total_s, parts = json.array(tl.parts) } or json.null
    d.log_tail = deploy.is_final(m.state) and log_lines(m) or json.null
    -- A server on several nodes: the parts that failed (node, exit status, why).
    local failed = m.nodes and deploy.failed_parts(m) or {}
    d.failed_parts = #failed > 0 and json.array(failed) or json.null
    out[#out + 1] = d
  end
  return M.document("server_status", "servers", out)
end

--- `monitor status --json`: aibench.monitor_status.v1, each monitor with
--- its scrape targets and alerts as its Prometheus reports them.
---@param statuses table[] monitor.status() results
function M.monitor_status(statuses)
  local monitor = require("aibench.monitor")
  local out = {}
  for _, st in ipairs(statuses) do
    local d = M.deployment(st.monitor)
    d.url = null(type(st.monitor) == "table" and st.monitor.client and st.monitor.client.url or d.url)
    local targets, alerts, firing = {}, {}, 0
    for _, tg in ipairs(st.targets) do
      local labels = util.present(tg.labels) and tg.labels or {}
      targets[#targets + 1] = {
        scrape_url = null(tg.scrapeUrl),
        job = null(labels.job),
        health = null(tg.health),
        last_scrape = null(monitor.last_scrape(tg)),
        last_scrape_duration_s = null(tonumber(tg.lastScrapeDuration)),
        last_error = (util.present(tg.lastError) and tg.lastError ~= "") and tg.lastError or json.null,
        labels = labels,
      }
    end
    for _, al in ipairs(st.alerts) do
      local labels = util.present(al.labels) and al.labels or {}
      if al.state == "firing" then
        firing = firing + 1
      end
      alerts[#alerts + 1] = {
        name = null(labels.alertname),
        state = null(al.state),
        summary = null(util.present(al.annotations) and al.annotations.summary or nil),
        active_at = null(al.activeAt),
        labels = labels,
      }
    end
    d.targets, d.alerts, d.firing = json.array(targets), json.array(alerts), firing
    -- Why the monitor could not be asked (its targets are then empty), or null.
    d.error = null(st.error)
    out[#out + 1] = d
  end
  return M.document("monitor_status", "monitors", out)
end

--- `server|client|monitor recipes --json`: aibench.recipes.v1. Client
--- recipes also say how long they run: `pattern`, `duration_s`,
--- `total_requests`, `total_sessions` (null when the recipe does not fix
--- it) and `length` (the listing's words).
---@param kind "server"|"client"|"monitor"
---@param catalog table[] recipe.catalog(kind)
function M.recipes(kind, catalog)
  local recipe = require("aibench.recipe")
  local out = {}
  for _, c in ipairs(catalog) do
    local doc = c.doc or {}
    local e = {
      name = c.name,
      source = c.source,
      file = null(c.file),
      service_name = null(doc.service_name),
      description = null(c.doc and recipe.one_line(doc.description) or nil),
      error = null(c.error),
    }
    if kind == "client" then
      local len = recipe.length(c.doc)
      e.pattern, e.duration_s = null(len.pattern), null(len.duration_s)
      e.total_requests, e.total_sessions, e.length = null(len.total_requests), null(len.total_sessions), null(c.doc and len.text or nil)
    end
    out[#out + 1] = e
  end
  return M.document("recipes", "recipes", out, { kind = kind })
end

return M
