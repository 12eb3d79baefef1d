--- The client manager (the seed's Client module): run a client recipe against
--- its service, found in the discovery registry; in this process (local) or
--- as K jobs on compute nodes (SLURM) whose results are merged exactly.
local aibench = require("aibench")
local bench = require("aibench.bench")
local fs = require("aibench.fs")
local json = require("aibench.json")
local registry = require("aibench.registry")
local time = require("aibench.time")
local recipe = require("aibench.recipe")
local deploy = require("aibench.deploy")
local results = require("aibench.results")

local M = {}

--- URLs to benchmark: an explicit URL, the recipe's target.url, or every
--- running instance of the recipe's service.
function M.targets(r, url)
  if url then
    return { url }, nil
  end
  if r.target and r.target.url then
    local u = r.target.url
    return type(u) == "table" and u or { u }, nil
  end
  local service = r.service_name
  if not service then
    error("the recipe names no service_name and no target.url: nothing to benchmark", 0)
  end
  local list, err = registry.list(service)
  if not list then
    return nil, err
  end
  local urls = {}
  for _, i in ipairs(list) do
    if i.status == "RUNNING" and i.url ~= "" then
      urls[#urls + 1] = i.url
    end
  end
  if #urls == 0 then
    return nil, {
      kind = "not_found",
      message = string.format("no running instance of service '%s' is registered; start one first: aibench server run --recipe vllm-sim", service),
    }
  end
  return urls, service
end

--- The load generator spec for a recipe.
function M.spec(r, urls)
  -- The recipe's target settings pass through; discovery decides the URLs.
  local target = {}
  for k, v in pairs(r.target or {}) do
    if k ~= "service_name" and k ~= "url" then
      target[k] = v
    end
  end
  target.url = #urls == 1 and urls[1] or urls
  return {
    target = target,
    workload = r.workload,
    dataset = r.dataset,
    slo = r.slo,
    label = (r.output and r.output.label) or r.name,
  }
end

--- Checks a spec, naming the recipe file in errors.
local function validate(spec, file)
  local ok, err = pcall(bench.validate, spec)
  if not ok then
    error(file .. ": " .. tostring(err):gsub("^bench%.run: ", ""):gsub("^bench%.validate: ", ""), 0)
  end
end

local function run_local(spec, opts)
  local s = {}
  for k, v in pairs(spec) do
    s[k] = v
  end
  s.progress = opts.progress ~= false
  s.on_progress = opts.on_progress
  s.per_request_log = opts.per_request_log
  return bench.run(s)
end

--- Runs K client jobs on an executor and merges their results. `cache`
--- keeps what one command reads once (the SLURM site defaults).
local function run_jobs(r, file, executor, spec, opts, cache)
  local k = (r.orchestration and r.orchestration.instances) or 1
  local metas = {}
  for i = 1, k do
    local dir, instance_id = deploy.new_job_dir(r.name)
    local s = {}
    for key, v in pairs(spec) do
      s[key] = v
    end
    s.progress = false
    -- Each instance draws its own arrivals and prompts: identical seeds would
    -- send K-wide bursts of the same prompts instead of K independent clients.
    for _, part in ipairs({ "workload", "dataset" }) do
      if type(spec[part]) == "table" then
        local copy = {}
        for key, v in pairs(spec[part]) do
          copy[key] = v
        end
        copy.seed = (tonumber(copy.seed) or 0) + i - 1
        s[part] = copy
      end
    end
    local files = {
      [fs.join(dir, "spec.json")] = json.encode(s, { pretty = true }) .. "\n",
      [fs.join(dir, "agent.json")] = json.encode({
        instance_id = instance_id,
        recipe_name = r.name,
        executor = executor,
        home = aibench.home(),
        time_limit_s = executor == "local" and deploy.time_limit_s(r) or json.null,
      }, { pretty = true }) .. "\n",
    }
    assert(deploy.write_files(files, tonumber("600", 8)))
    local command = deploy.agent_command(dir, nil)
    for _, a in ipairs({ aibench.exe(), "job-client", fs.join(dir, "spec.json"), fs.join(dir, "result.json") }) do
      command[#command + 1] = a
    end
    cache.defaults = cache.defaults or deploy.site_defaults(executor)
    local jspec = deploy.job_spec(r, executor, "aibench-" .. r.name, dir, command, string.format("client recipe %s (%s), instance %d of %d", r.name, file, i, k), cache.defaults)
    jspec.workdir = fs.cwd()
    local meta = { kind = "client", recipe = r.name, recipe_file = file, instance_id = instance_id, executor = executor, dir = dir }
    local ok, err = deploy.submit(jspec, meta)
    if not ok then
      deploy.cancel_all(metas)
      return nil, err
    end
    metas[#metas + 1] = meta
    io.stderr:write(string.format("submitted client %s (%d/%d) as %s job %s\n", r.name, i, k, executor, meta.job_id))
  end
  local parts, job_ids = {}, {}
  for _, m in ipairs(metas) do
    local state = deploy.job(m):wait({ timeout_s = opts.timeout_s or 86400, poll_s = 1 })
    job_ids[#job_ids + 1] = m.job_id
    local text = fs.read(fs.join(m.dir, "result.json"))
    if not text then
      return nil, { kind = "failed", message = string.format("client job %s ended %s without a result\n%s", m.job_id, tostring(state), deploy.log_tail(m)) }
    end
    parts[#parts + 1] = json.decode(text)
  end
  local merged = #parts == 1 and parts[1] or bench.merge(parts)
  return merged, nil, job_ids
end

--- `client run`: discovers the service, runs the workload (`runs` times),
--- saves each result and returns the list of saved records.
---@param o {recipe: string, runs?: integer, executor?: string, set?: string[], url?: string, out_dir?: string, progress?: boolean}
function M.run(o)
  local r, file = recipe.load("client", o.recipe, { set = o.set })
  local executor = deploy.executor_name(r, o.executor)
  local _, xerr = deploy.ready_executor(executor)
  if xerr then
    return nil, xerr
  end
  local urls, err = M.targets(r, o.url)
  if not urls then
    return nil, err
  end
  local spec = M.spec(r, urls)
  validate(spec, file)
  local out_dir = o.out_dir or (r.output and r.output.dir) or "results"
  local saved = {}
  local cache = {}
  for run = 1, o.runs or 1 do
    local before = require("aibench.servermetrics").before(urls)
    local started = time.now()
    local res, rerr, job_ids
    local instances = (r.orchestration and r.orchestration.instances) or 1
    if executor == "local" and instances == 1 then
      res, rerr = run_local(spec, { progress = o.progress, per_request_log = (r.output and r.output.per_request_log) and results.log_path(out_dir, r.name) or nil })
    else
      res, rerr, job_ids = run_jobs(r, file, executor, spec, o, cache)
    end
    if not res then
      return nil, rerr
    end
    local server = require("aibench.servermetrics").after(before, urls, started, time.now(), res)
    local record = results.record({
      recipe = r,
      recipe_file = file,
      executor = executor,
      job_ids = job_ids,
      urls = urls,
      bench = res,
      server = server,
      run = run,
      runs = o.runs or 1,
    })
    local path, werr = results.save(record, out_dir)
    if not path then
      return nil, werr
    end
    record.path = path
    saved[#saved + 1] = record
  end
  return saved
end

--- Inside a client job: run the spec, write the result.
function M.exec(spec_path, out_path)
  local text = assert(fs.read(spec_path))
  local spec = json.decode(text)
  spec.progress = false
  local res, err = bench.run(spec)
  if not res then
    error(err.message, 0)
  end
  assert(fs.write(out_path, bench.to_json(res) .. "\n"))
  return res
end

return M
