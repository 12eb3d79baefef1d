--- The HPC side of a result (its `hpc` section): SLURM accounting of the
--- run's jobs (the serving instances' and the client's own), efficiency and
--- cost over the benchmark window, and who else was on the server nodes at
--- the run's start and end. Only SLURM jobs have any of it: a run on the
--- local executor gets `hpc = null`.
local accounting = require("aibench.accounting")
local registry = require("aibench.registry")
local json = require("aibench.json")
local env = require("aibench.env")
local fs = require("aibench.fs")
local util = require("aibench.util")
local num = require("aibench.report.format").num

local M = {}

--- t[k], with JSON null as nil.
local function field(t, k)
  local v = t[k]
  return util.present(v) and v or nil
end

local my_name
--- This user's name ($USER, $LOGNAME, else `id -un`: a batch job's
--- environment may have neither), so their own jobs are named, not
--- pseudonymised.
local function me()
  if not my_name then
    my_name = env.get("USER") or env.get("LOGNAME")
    if not my_name or my_name == "" then
      local ok, r = pcall(require("aibench.proc").run, { "id", "-un" }, { timeout_s = 5 })
      my_name = ok and r and r.code == 0 and (r.stdout or ""):match("^%s*(%S+)") or ""
    end
  end
  return my_name
end

--- The steps of a deployment as a timeline: the agent's record (in the
--- registry entry's `extra.timeline`) cut into parts that add up to the
--- time from submission (SLURM's SubmitTime; the agent's start on the local
--- executor) to registration. nil without a record.
local MARKS = {
  { "submit_unix" },
  { "eligible_unix", "held" }, -- dependencies, --begin, holds
  { "start_unix", "queue_wait" }, -- waiting for resources
  { "service_start_unix", "node_setup" }, -- prolog, agent, environment
  { "healthy_unix", "service_startup" }, -- model load until /health answers
  { "registered_unix", "registration" },
}

function M.timeline(t)
  if t == nil or t == json.null then
    return nil
  end
  local function at(k)
    return field(t, k)
  end
  local first = at("submit_unix") or at("eligible_unix") or at("start_unix") or at("agent_start_unix")
  if not first or not at("registered_unix") then
    return nil
  end
  local parts, prev = {}, first
  for i = 2, #MARKS do
    local v = at(MARKS[i][1])
    if v and v >= prev - 1 then
      parts[#parts + 1] = { name = MARKS[i][2], seconds = math.max(0, v - prev) }
      prev = math.max(prev, v)
    end
  end
  local marks = {}
  for _, m in ipairs(MARKS) do
    marks[m[1]] = at(m[1]) or json.null
  end
  marks.agent_start_unix = at("agent_start_unix") or json.null
  return { from = at("submit_unix") and "submit" or "agent start", total_s = prev - first, parts = parts, marks = marks }
end

--- A SLURM job's own timeline from its accounting (a client job, which
--- has no agent): held, queue wait and run, adding up to submit -> end.
function M.job_timeline(j)
  local function at(k)
    return field(j, k)
  end
  local submit, eligible, start, stop = at("submit_unix"), at("eligible_unix"), at("start_unix"), at("end_unix")
  if not submit or not start then
    return nil
  end
  local parts = {}
  eligible = eligible and math.max(submit, math.min(eligible, start)) or submit
  parts[#parts + 1] = { name = "held", seconds = eligible - submit }
  parts[#parts + 1] = { name = "queue_wait", seconds = start - eligible }
  if stop then
    parts[#parts + 1] = { name = "run", seconds = stop - start }
  end
  return { job_id = j.job_id, from = "submit", total_s = (stop or start) - submit, parts = parts }
end

--- The instances of `service` that serve these URLs.
function M.instances(service, urls)
  local out = {}
  if not service then
    return out
  end
  for _, i in ipairs(registry.list(service) or {}) do
    for _, u in ipairs(urls or {}) do
      if i.url == u then
        out[#out + 1] = i
        break
      end
    end
  end
  return out
end

--- An error value's message (an `{kind, message}` table, a Lua error).
local function message(e)
  if type(e) == "table" and e.message then
    return tostring(e.message)
  end
  return require("aibench").error_message(e)
end

--- The other jobs on the instances' nodes, now: {nodes = {...}, other_jobs = n}.
--- A node that cannot be asked (squeue missing, failing or not answering
--- in time) is left out, with a line in `warnings` when given.
function M.node_sharing(instances, own, warnings)
  local nodes, seen, n = {}, {}, 0
  local function warn(w)
    if warnings then
      warnings[#warnings + 1] = w
    end
  end
  for _, i in ipairs(instances) do
    if i.node and i.node ~= "" and not seen[i.node] then
      seen[i.node] = true
      local ok, s, err = pcall(accounting.node_share, i.node, own, me())
      if not ok then
        warn(string.format("node sharing on %s: %s", i.node, message(s)))
      elseif not s then
        warn(string.format("node sharing on %s: %s", i.node, message(err)))
      else
        for _, w in ipairs(field(s, "warnings") or {}) do
          warn("node sharing on " .. w)
        end
        s.warnings = nil
        nodes[#nodes + 1] = s
        n = n + #s.other_jobs
      end
    end
  end
  return { nodes = nodes, other_jobs = n }
end

--- The SLURM job ids of these instances.
local function ids_of(instances)
  local ids = {}
  for _, i in ipairs(instances) do
    if i.executor == "slurm" and i.job_id ~= "" then
      ids[#ids + 1] = i.job_id
    end
  end
  return ids
end

--- `ids` and every other SLURM job this user runs through aibench: the jobs
--- in aibench's job folders (servers, monitors, clients) and the registry's
--- instances. Those are the user's own doing, not another job sharing the
--- node: only jobs outside them count as sharing.
function M.own_jobs(ids)
  local own, seen = {}, {}
  local function add(id)
    if type(id) == "string" and id ~= "" and not seen[id] then
      seen[id] = true
      own[#own + 1] = id
    end
  end
  for _, id in ipairs(ids or {}) do
    add(id)
  end
  local ok, metas = pcall(require("aibench.deploy.store").all)
  for _, m in ipairs(ok and metas or {}) do
    if m.executor == "slurm" then
      add(m.job_id)
    end
  end
  for _, service in ipairs(registry.services() or {}) do
    for _, i in ipairs(registry.list(service) or {}) do
      if i.executor == "slurm" then
        add(i.job_id)
      end
    end
  end
  return own
end

local function slurm_only(instances)
  local out = {}
  for _, i in ipairs(instances) do
    if i.executor == "slurm" then
      out[#out + 1] = i
    end
  end
  return out
end

--- Before a run: the instances serving it and their nodes' other jobs.
--- Never raises: what could not be found out becomes `warnings`, which
--- M.collect carries into the result.
function M.start(service, urls, client_job_ids)
  local warnings = {}
  local ok, instances = pcall(M.instances, service, urls)
  if not ok then
    return { instances = {}, node_start = { nodes = {}, other_jobs = 0 }, warnings = { "the serving instances: " .. message(instances) } }
  end
  if #instances == 0 then
    return nil
  end
  local own = ids_of(instances)
  for _, j in ipairs(client_job_ids or {}) do
    own[#own + 1] = j
  end
  local okn, node_start = pcall(M.node_sharing, slurm_only(instances), M.own_jobs(own), warnings)
  if not okn then
    warnings[#warnings + 1] = "node sharing at the start: " .. message(node_start)
    node_start = { nodes = {}, other_jobs = 0 }
  end
  return { instances = instances, node_start = node_start, warnings = warnings }
end

--- The config files `pricing:` is read from: those recipe.slurm_defaults
--- reads, in its order (a later file's `pricing:` replaces an earlier one's).
function M.config_files()
  return { fs.join(require("aibench").home(), "config", "slurm.yml"), fs.join("config", "slurm.yml") }
end

--- The prices of config/slurm.yml, if any, keeping what is valid. Every
--- problem (the file not YAML, `pricing:` not a table, an unknown field,
--- a price that is not a finite number above 0) goes to `warnings`, naming
--- the file and the field: a cost worked out without the price that was
--- meant must never look like one worked out with it.
function M.pricing(warnings)
  local yaml = require("aibench.yaml")
  local found
  for _, p in ipairs(M.config_files()) do
    local text = fs.read(p)
    if text then
      local v, err = yaml.decode(text, { name = p })
      if v == nil and err then
        warnings[#warnings + 1] = message(err) .. " (its prices are not used; any cost is in SLURM billing units)"
      elseif type(v) == "table" and not json.is_array(v) and v.pricing ~= nil then
        local prices, problems = accounting.pricing(v.pricing, p)
        for _, m in ipairs(problems) do
          warnings[#warnings + 1] = m .. " (left out of the cost)"
        end
        found = prices
      end
    end
  end
  return found
end

--- A number from accounting a sum can use (finite, not negative), else 0
--- with a warning. The engine range-checks sacct's numbers already; this
--- keeps a hand-made or future field from raising in the middle of a sum.
local function usable(v, what, warnings)
  if type(v) == "number" and v == v and v >= 0 and v < math.huge then
    return v
  end
  if util.present(v) then
    warnings[#warnings + 1] = string.format("%s: %s is not a usable number; left out", what, tostring(v))
  end
  return 0
end

--- The `hpc` section into `out`; "none" when the run has no SLURM side.
local function collect(o, out, warnings)
  local st = o.started
  for _, w in ipairs(st and st.warnings or {}) do
    warnings[#warnings + 1] = w
  end
  local instances = st and st.instances or {}
  local bench = o.bench or {}
  local server_ids = ids_of(instances)
  local ids = {}
  for _, j in ipairs(server_ids) do
    ids[#ids + 1] = j
  end
  for _, j in ipairs(o.job_ids or {}) do
    ids[#ids + 1] = j
  end
  -- The slowest instance's way to its first serve.
  local timeline
  for _, i in ipairs(instances) do
    local extra = field(i, "extra")
    local ok, tl = pcall(M.timeline, type(extra) == "table" and extra.timeline or nil)
    if not ok then
      warnings[#warnings + 1] = string.format("the timeline of %s: %s", tostring(i.instance_id), message(tl))
    elseif tl and (not timeline or tl.total_s > timeline.total_s) then
      timeline = tl
      timeline.instance_id = i.instance_id
    end
  end
  if #ids == 0 then
    if not timeline then
      return "none"
    end
    out.timeline = timeline
    return
  end
  out.job_ids, out.server_job_ids, out.timeline = ids, server_ids, timeline or json.null
  out.accounting = json.null
  local okc, acc, err = pcall(accounting.sacct, ids)
  if not okc then
    acc, err = nil, { message = message(acc) }
  end
  if acc then
    out.accounting = acc
    for _, w in ipairs(field(acc, "warnings") or {}) do
      warnings[#warnings + 1] = w
    end
  else
    out.accounting_error = message(err)
    warnings[#warnings + 1] = "accounting: " .. out.accounting_error
  end
  -- What the serving jobs hold during the window.
  local is_server = {}
  for _, j in ipairs(server_ids) do
    is_server[j] = true
  end
  local window = usable(bench.duration_s or 0, "the benchmark's duration_s", warnings)
  local gpus, nodes, billing, slurm_j, covered = 0, 0, 0, 0, true
  for _, j in ipairs(acc and acc.jobs or {}) do
    if is_server[j.job_id] then
      local what = "job " .. tostring(j.job_id)
      gpus = gpus + usable(j.gpus, what .. ": gpus", warnings)
      nodes = nodes + usable(j.nodes, what .. ": nodes", warnings)
      billing = billing + usable(j.billing, what .. ": billing", warnings)
      local energy, elapsed = field(j, "energy_j"), usable(j.elapsed_s, what .. ": elapsed_s", warnings)
      if energy ~= nil and elapsed > 0 then
        slurm_j = slurm_j + usable(energy, what .. ": energy_j", warnings) * math.min(1, window / elapsed)
      else
        covered = false
      end
    end
  end
  local energy, source
  local gpu = util.present(o.server) and o.server.gpu or nil
  if gpu and gpu ~= json.null and gpu.energy_j and gpu.energy_j ~= json.null then
    energy, source = gpu.energy_j, "gpu exporter (DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION over the window)"
  elseif covered and slurm_j > 0 then
    energy, source = slurm_j, "slurm ConsumedEnergyRaw, pro-rated to the window"
  end
  if acc then
    local tokens = field(bench, "tokens")
    local oke, eff = pcall(accounting.efficiency, {
      output_tokens = math.tointeger(usable(tokens and tokens.output_total or 0, "output tokens", warnings)) or 0,
      requests = math.tointeger(usable(bench.successes or 0, "requests", warnings)) or 0,
      window_s = window,
      gpus = math.tointeger(gpus) or 0,
      nodes = math.tointeger(nodes) or 0,
      billing = billing,
      energy_j = energy,
      energy_source = source,
      pricing = M.pricing(warnings),
    })
    if oke then
      out.efficiency = eff
    else
      out.efficiency = json.null
      warnings[#warnings + 1] = "efficiency: " .. message(eff)
    end
  end
  -- The client's own SLURM jobs, from their accounting.
  local client_tl = json.array()
  for _, j in ipairs(acc and acc.jobs or {}) do
    if not is_server[j.job_id] then
      local ok, tl = pcall(M.job_timeline, j)
      if ok then
        client_tl[#client_tl + 1] = tl
      else
        warnings[#warnings + 1] = string.format("the timeline of job %s: %s", tostring(j.job_id), message(tl))
      end
    end
  end
  out.client_timelines = client_tl
  local node_end = M.node_sharing(slurm_only(instances), M.own_jobs(ids), warnings)
  local node_start = st and st.node_start or { nodes = {}, other_jobs = 0 }
  out.node_sharing = { start = node_start, ["end"] = node_end }
  out.other_jobs = math.max(node_start.other_jobs or 0, node_end.other_jobs)
  out.shared_node = out.other_jobs > 0
end

--- After a run: the `hpc` section. `o`: {started (from M.start), job_ids
--- (the client's SLURM jobs), bench, server}. Never raises: a failure
--- anywhere in it (sacct missing, hung past AIBENCH_SLURM_TIMEOUT_S,
--- printing garbage or NaN; a bad config/slurm.yml) becomes a line in the
--- section's `warnings`, and what was gathered before it is kept. JSON
--- null for a run with no SLURM side and nothing to warn about.
function M.collect(o)
  local out, warnings = {}, json.array()
  local ok, r = pcall(collect, type(o) == "table" and o or {}, out, warnings)
  if not ok then
    warnings[#warnings + 1] = "the hpc section is incomplete: " .. message(r)
  elseif r == "none" and #warnings == 0 then
    return json.null
  end
  out.warnings = warnings
  return out
end

--- What SLURM accounted for stopped server jobs: kept as accounting.json in
--- each job's folder, and returned as lines to print (one per job, or the
--- one line that says why there is no accounting).
---@param stopped table[] the stopped deployments' metas
---@return string[]
function M.stopped_accounting(stopped)
  local lines = {}
  local ids, by_id = {}, {}
  for _, m in ipairs(stopped) do
    if m.executor == "slurm" and m.job_id then
      ids[#ids + 1] = m.job_id
      by_id[m.job_id] = m
    end
  end
  if #ids == 0 then
    return lines
  end
  local acc, err = accounting.sacct(ids)
  if not acc then
    lines[#lines + 1] = "accounting: " .. err.message
    return lines
  end
  for _, j in ipairs(acc.jobs) do
    local one = accounting.totals({ j })
    lines[#lines + 1] = string.format("job %s (%s): %d s, %s node-hours, %s GPU-hours, %s CPU-hours used%s", j.job_id, j.state, j.elapsed_s,
      num(one.node_hours, 4), num(one.gpu_hours, 4), num(one.cpu_used_hours, 4), j.energy_j and j.energy_j ~= json.null and string.format(", %s kJ", num(j.energy_j / 1000, 2)) or "")
    local m = by_id[j.job_id]
    if m and m.dir then
      fs.write(fs.join(m.dir, "accounting.json"), json.encode(one, { pretty = true }) .. "\n")
    end
  end
  return lines
end

return M
