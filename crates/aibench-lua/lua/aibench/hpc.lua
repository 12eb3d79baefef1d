--- The HPC side of a result (its `hpc` section): SLURM accounting of the
--- run's jobs (the serving instances' and the client's own), efficiency and
--- cost over the benchmark window, and who else was on the server nodes at
--- the run's start and end. Only SLURM jobs have any of it: a run on the
--- local executor gets `hpc = null`.
local accounting = require("aibench.accounting")
local registry = require("aibench.registry")
local json = require("aibench.json")
local env = require("aibench.env")

local M = {}

--- t[k], with JSON null as nil.
local function field(t, k)
  local v = t[k]
  return v ~= nil and v ~= json.null and v or nil
end

local function me()
  return env.get("USER") or env.get("LOGNAME") or ""
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

--- The other jobs on the instances' nodes, now: {nodes = {...}, other_jobs = n}.
function M.node_sharing(instances, own)
  local nodes, seen, n = {}, {}, 0
  for _, i in ipairs(instances) do
    if i.node and i.node ~= "" and not seen[i.node] then
      seen[i.node] = true
      local s = accounting.node_share(i.node, own, me())
      if s then
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
function M.start(service, urls, client_job_ids)
  local instances = M.instances(service, urls)
  if #instances == 0 then
    return nil
  end
  local own = ids_of(instances)
  for _, j in ipairs(client_job_ids or {}) do
    own[#own + 1] = j
  end
  return { instances = instances, node_start = M.node_sharing(slurm_only(instances), own) }
end

--- The pricing of config/slurm.yml, if any.
local function pricing()
  local ok, d = pcall(require("aibench.recipe").slurm_defaults)
  return ok and d.pricing or nil
end

--- After a run: the `hpc` section. `o`: {started (from M.start), job_ids
--- (the client's SLURM jobs), bench, server}.
function M.collect(o)
  local st = o.started
  local instances = st and st.instances or {}
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
    local tl = M.timeline(i.extra and i.extra.timeline)
    if tl and (not timeline or tl.total_s > timeline.total_s) then
      timeline = tl
      timeline.instance_id = i.instance_id
    end
  end
  if #ids == 0 then
    return timeline and { timeline = timeline } or json.null
  end
  local out = { job_ids = ids, server_job_ids = server_ids, timeline = timeline or json.null }
  local acc, err = accounting.sacct(ids)
  if acc then
    out.accounting = acc
  else
    out.accounting = json.null
    out.accounting_error = err.message
  end
  -- What the serving jobs hold during the window.
  local is_server = {}
  for _, j in ipairs(server_ids) do
    is_server[j] = true
  end
  local gpus, nodes, billing, slurm_j, covered = 0, 0, 0, 0, true
  for _, j in ipairs(acc and acc.jobs or {}) do
    if is_server[j.job_id] then
      gpus, nodes, billing = gpus + j.gpus, nodes + j.nodes, billing + j.billing
      if j.energy_j ~= nil and j.energy_j ~= json.null and j.elapsed_s > 0 then
        slurm_j = slurm_j + j.energy_j * math.min(1, (o.bench.duration_s or 0) / j.elapsed_s)
      else
        covered = false
      end
    end
  end
  local energy, source
  local gpu = o.server ~= nil and o.server ~= json.null and o.server.gpu or nil
  if gpu and gpu ~= json.null and gpu.energy_j and gpu.energy_j ~= json.null then
    energy, source = gpu.energy_j, "gpu exporter (DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION over the window)"
  elseif covered and slurm_j > 0 then
    energy, source = slurm_j, "slurm ConsumedEnergyRaw, pro-rated to the window"
  end
  if acc then
    out.efficiency = accounting.efficiency({
      output_tokens = o.bench.tokens and o.bench.tokens.output_total or 0,
      requests = o.bench.successes or 0,
      window_s = o.bench.duration_s or 0,
      gpus = gpus,
      nodes = nodes,
      billing = billing,
      energy_j = energy,
      energy_source = source,
      pricing = pricing(),
    })
  end
  -- The client's own SLURM jobs, from their accounting.
  local client_tl = json.array()
  for _, j in ipairs(acc and acc.jobs or {}) do
    if not is_server[j.job_id] then
      client_tl[#client_tl + 1] = M.job_timeline(j)
    end
  end
  out.client_timelines = client_tl
  local node_end = M.node_sharing(slurm_only(instances), ids)
  local node_start = st and st.node_start or { nodes = {}, other_jobs = 0 }
  out.node_sharing = { start = node_start, ["end"] = node_end }
  out.other_jobs = math.max(node_start.other_jobs, node_end.other_jobs)
  out.shared_node = out.other_jobs > 0
  return out
end

return M
