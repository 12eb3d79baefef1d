--- Shared by the example scripts: argument parsing, and running a benchmark
--- the MeluXina report's way (deploy the server from a recipe, start a monitor when
--- Prometheus is available, run the client recipe, save, summarize, clean up).
local proc = require("aibench.proc")
local json = require("aibench.json")
local server = require("aibench.server")
local client = require("aibench.client")
local monitor = require("aibench.monitor")
local report = require("aibench.report")
local registry = require("aibench.registry")
local deploy = require("aibench.deploy")
local util = require("aibench.util")

local M = {}

local FLAGS = {
  duration = "number", -- seconds, shortens the scenario
  requests = "number", -- requests per user (closed loop)
  users = "number",
  recipe = "string", -- server recipe (default vllm-sim)
  executor = "string", -- local or slurm
  url = "string", -- benchmark this URL, deploy nothing
  ["out-dir"] = "string",
  ["no-monitor"] = "boolean",
  keep = "boolean", -- leave the server running
  ["scrape-interval"] = "string",
}

--- Parses `--flag value` / `--flag` arguments; raises on unknown flags.
---@param argv table the script's `arg`
---@param extra? table<string, "number"|"string"|"boolean"> script-specific flags
function M.args(argv, extra)
  local spec = util.merge(util.copy(FLAGS), extra)
  local out, i = {}, 1
  while argv[i] do
    local a = argv[i]
    local name, inline = a:match("^%-%-([%w-]+)=(.*)$")
    name = name or a:match("^%-%-([%w-]+)$")
    local kind = name and spec[name]
    if not kind then
      local names = util.sorted_keys(spec)
      error(string.format("unknown argument '%s'%s; known: --%s", a, util.did_you_mean(name, names, " (did you mean --%s?)"), table.concat(names, ", --")), 0)
    end
    local key = name:gsub("-", "_")
    if kind == "boolean" then
      out[key] = true
    else
      local v = inline or argv[i + 1]
      if v == nil then
        error("--" .. name .. ": expected a value", 0)
      end
      if not inline then
        i = i + 1
      end
      if kind == "number" then
        local n = tonumber(v)
        if not n or n <= 0 then
          error(string.format("--%s: expected a positive number, got '%s'", name, v), 0)
        end
        v = n
      end
      out[key] = v
    end
    i = i + 1
  end
  return out
end

--- Overrides for a client recipe from the parsed arguments, as
--- `{["workload.duration_seconds"] = 20, ...}` (what client.run's `set`
--- takes; a script may add entries, or "k=v" strings to its list part).
function M.sets(o)
  return {
    ["workload.duration_seconds"] = o.duration,
    ["workload.requests_per_user"] = o.requests and math.floor(o.requests),
    ["workload.concurrent_users"] = o.users and math.floor(o.users),
  }
end

local function say(fmt, ...)
  io.stderr:write(string.format(fmt, ...), "\n")
end

--- Deploys a server (and a monitor when Prometheus is here), runs `f`, and
--- always cleans up what it started. `f(env)` gets {urls, server, monitor}.
function M.with_environment(o, f)
  local env = { started = {} }
  local ok, res = pcall(function()
    if o.url then
      env.urls = { o.url }
    else
      local ready, err = server.run({ recipe = o.recipe or "vllm-sim", executor = o.executor, quiet = true })
      if not ready then
        error("server: " .. err.message, 0)
      end
      env.server = ready
      for _, m in ipairs(ready) do
        env.started[#env.started + 1] = m
      end
      say("server %s ready at %s (%s job %s)", ready[1].recipe, ready[1].instance.url, ready[1].executor, ready[1].job_id)
      if not o.no_monitor and proc.which("prometheus") then
        local m, merr = monitor.start({
          recipe = "vllm-monitor",
          executor = o.executor,
          set = { ["prometheus.scrape_interval"] = o.scrape_interval or "5s", ["prometheus.refresh_interval"] = "1s" },
        })
        if m then
          env.monitor = m
          env.started[#env.started + 1] = m
          say("monitor %s: Prometheus at %s", m.instance_id, m.url)
        else
          say("monitor not started (%s); continuing without it", merr.message)
        end
      elseif not o.no_monitor then
        say("Prometheus is not installed: running without a monitor (server metrics come from /metrics scrapes)")
      end
    end
    return f(env)
  end)
  if not o.keep and #env.started > 0 then
    deploy.refresh(env.started)
    server.stop_metas(env.started)
    for _, m in ipairs(env.started) do
      registry.deregister(m.service, m.instance_id)
    end
    say("stopped %d job(s)", #env.started)
  end
  if not ok then
    error(res, 0)
  end
  return res
end

--- Runs one client recipe in an environment; prints and returns the record.
--- `sets` overrides the recipe (default: from the common flags, M.sets):
--- `path = value` entries, and/or "k=v" strings.
function M.bench(env, client_recipe, o, sets)
  local saved, err = client.run({
    recipe = client_recipe,
    executor = o.executor,
    set = sets or M.sets(o),
    -- The server this scenario deployed, not whatever else is registered.
    url = o.url or (env.server and env.server[1].instance.url) or nil,
    out_dir = o.out_dir,
    progress = true,
  })
  if not saved then
    error(client_recipe .. ": " .. err.message, 0)
  end
  local rec = saved[1]
  return rec
end

--- Prints a saved record: the client's summary, the server's side, the
--- HPC section, and where the result is. `opts.definitions`: as for
--- report.summary.
function M.print(rec, opts)
  local paint = require("aibench.report.format").paint
  print(paint(report.summary(rec.bench, opts), "stdout"))
  if rec.server and rec.server ~= json.null then
    print(report.server_summary(rec.server, rec.bench))
  end
  local hpc = report.hpc_summary(rec)
  if hpc ~= "" then
    print(paint(hpc, "stdout"))
  end
  print("\nresult: " .. rec.path)
end

--- A whole scenario: environment, one client recipe, summary. `opts`:
--- `flags` (script-specific, as for M.args) and `sets(o)` (the recipe
--- overrides, as M.bench takes them; default M.sets).
function M.run(client_recipe, argv, opts)
  opts = opts or {}
  local o = M.args(argv, opts.flags)
  local sets = (opts.sets or M.sets)(o)
  return M.with_environment(o, function(env)
    local rec = M.bench(env, client_recipe, o, sets)
    M.print(rec)
    return rec
  end)
end

return M
