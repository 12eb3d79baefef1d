-- aibench.util (the helpers the library shares), the aibench.deploy facade
-- over its parts, and the scenario's recipe overrides as tables.
local util = require("aibench.util")
local json = require("aibench.json")
local time = require("aibench.time")
local registry = require("aibench.registry")
local t = require("aibench.testing")

t.case("sorted keys, copies and merges", function()
  t.eq(util.sorted_keys({ b = 1, a = 2, c = 3 }), { "a", "b", "c" })
  t.eq(util.sorted_keys({ [10] = 1, [2] = 1, [1.5] = 1 }), { 1.5, 2, 10 })
  -- Mixed key types: by type name first (number < string).
  t.eq(util.sorted_keys({ x = 1, [3] = 1 }), { 3, "x" })
  t.eq(util.sorted_keys({}), {})

  local src = setmetatable({ a = 1, t = { 1 } }, { __index = function() return "meta" end })
  local c = util.copy(src)
  t.eq(c, { a = 1, t = { 1 } })
  t.ok(c ~= src and c.t == src.t, "shallow: a new table, the same inner tables")
  t.eq(getmetatable(c), nil)
  t.eq(util.copy(nil), {})
  t.eq(util.copy({ 1, 2, 3 }), { 1, 2, 3 })

  local dst = { a = 1, b = 2 }
  t.ok(util.merge(dst, { b = 3, c = 4 }) == dst, "merge returns its first argument")
  t.eq(dst, { a = 1, b = 3, c = 4 })
  t.eq(util.merge({ a = 1 }, nil), { a = 1 })
end)

t.case("present, did-you-mean, host:port, age", function()
  t.eq(util.present(nil), false)
  t.eq(util.present(json.null), false)
  t.eq(util.present(false), true)
  t.eq(util.present(0), true)
  t.ok(require("aibench.report.format").present == util.present, "report.format.present is util.present")

  t.eq(util.suggest("slurn", { "local", "slurm" }), "slurm")
  t.eq(util.did_you_mean("slurn", { "local", "slurm" }), " (did you mean 'slurm'?)")
  t.eq(util.did_you_mean("zzzzzz", { "local", "slurm" }), "")
  t.eq(util.did_you_mean(nil, { "local" }), "")
  t.eq(util.did_you_mean(42, { "local" }), "")
  t.eq(util.did_you_mean("duraton", { "duration", "users" }, " (did you mean --%s?)"), " (did you mean --duration?)")

  t.eq(util.host_port("http://node1:8000"), "node1:8000")
  t.eq(util.host_port("http://node1:8000/v1/x"), "node1:8000")
  t.eq(util.host_port("https://node1:8443/"), "node1:8443")
  t.eq(util.host_port("node1:8000"), "node1:8000")

  t.eq(util.age(nil), "-")
  t.eq(util.age("not a time"), "-")
  local now = time.now()
  t.ok(util.age(time.format(now - 30)):match("^3[01]s$"), "seconds")
  t.eq(util.age(time.format(now - 600)), "10m")
  t.eq(util.age(time.format(now - 5 * 3600)), "5.0h")
end)

t.case("aibench.deploy gathers its parts, each function once", function()
  local deploy = require("aibench.deploy")
  local n = 0
  for _, part in ipairs({ "executors", "store", "lifecycle", "spec" }) do
    for k, v in pairs(require("aibench.deploy." .. part)) do
      t.ok(deploy[k] == v, "deploy." .. k .. " is aibench.deploy." .. part .. "." .. k)
      n = n + 1
    end
  end
  t.ok(n > 25, "the parts have their functions")
  for _, k in ipairs({ "executors", "executor", "executor_name", "ready_executor", "is_final", "jobs_dir", "new_job_dir",
    "write_meta", "read_meta", "write_files", "all", "find", "submit", "cancel_all", "refresh", "refresh_known",
    "registered", "wait", "abandon", "interrupted", "list", "stop_metas", "stop", "stop_all", "job", "log_tail",
    "check_input_files", "check_job_spec", "agent_command", "site_defaults", "job_spec", "time_limit_s", "age" }) do
    t.ok(deploy[k] ~= nil, "deploy." .. k)
  end
  t.raises("unknown executor 'slurn' (did you mean 'slurm'?); expected local or slurm", deploy.executor, "slurn")
end)

t.case("refresh_known asks only the executors it knows", function()
  local deploy = require("aibench.deploy")
  local entries = {
    { executor = "local", job_id = "local-deadbeef01" },
    { executor = "nomad", job_id = "x1" },
  }
  local known = assert(deploy.refresh_known(entries))
  t.eq(#known, 1)
  t.ok(known[1] == entries[1])
  t.eq(entries[1].state, "UNKNOWN") -- the local executor has no such job
  t.eq(entries[2].state, nil)
  deploy.refresh_known(entries, "GONE")
  t.eq(entries[2].state, "GONE")
end)

t.case("a registered instance of an unknown executor is asked over HTTP, and pruned", function()
  assert(registry.register("ghost-exec", { job_id = "x1", recipe_name = "r", instance_id = "gx", node = "n", host = "n", ports = { 1 }, url = "http://127.0.0.1:1", executor = "nomad" }))
  local urls, err = require("aibench.client").targets({ service_name = "ghost-exec" })
  t.eq(urls, nil)
  t.contains(err.message, "instance gx (nomad job x1 on n, http://127.0.0.1:1) is not alive: http://127.0.0.1:1 does not answer")
  local removed = assert(require("aibench.services").prune())
  local found
  for _, r in ipairs(removed) do
    if r.instance_id == "gx" then
      found = r
    end
  end
  t.ok(found, "gx pruned")
  t.eq(found.state, "UNKNOWN")
  t.eq(#registry.list("ghost-exec"), 0)
end)

t.case("scenario overrides are path = value tables, applied as they are", function()
  local scenario = require("aibench.scenario")
  local recipe = require("aibench.recipe")
  local o = scenario.args({ "--duration", "2.5", "--users", "3.7", "--requests", "4" })
  local sets = scenario.sets(o)
  t.eq(sets, { ["workload.duration_seconds"] = 2.5, ["workload.concurrent_users"] = 3, ["workload.requests_per_user"] = 4 })
  t.eq(math.type(sets["workload.concurrent_users"]), "integer")
  t.eq(scenario.sets(scenario.args({})), {})
  local r = recipe.load("client", "vllm-simple-test", { set = sets })
  t.eq(r.workload.duration_seconds, 2.5)
  t.eq(r.workload.concurrent_users, 3)
  t.eq(r.workload.requests_per_user, 4)
  -- A script may add "k=v" strings to the table (examples/trace-replay.lua):
  -- they apply after the entries.
  sets[#sets + 1] = "workload.duration_seconds=9"
  sets[#sets + 1] = "output.label=from a string"
  r = recipe.load("client", "vllm-simple-test", { set = sets })
  t.eq(r.workload.duration_seconds, 9)
  t.eq(r.output.label, "from a string")
  t.eq(r.workload.concurrent_users, 3)
end)

t.case("table overrides: values are not read as YAML; paths are checked", function()
  local recipe = require("aibench.recipe")
  local r = recipe.load("client", "vllm-simple-test", { set = { ["output.label"] = "10", ["dataset.prompt_tokens"] = 64 } })
  t.eq(r.output.label, "10")
  t.eq(r.dataset.prompt_tokens, 64)
  -- A parent entry first, then its fields (entries apply by path).
  r = recipe.load("server", "vllm-sim", { set = { ["orchestration.resources"] = { cpu_cores = 3 }, ["orchestration.resources.memory_gb"] = 5 } })
  t.eq(r.orchestration.resources, { cpu_cores = 3, memory_gb = 5 })
  t.raises("override targt.api: unknown field 'targt' (did you mean 'target'?)", recipe.load, "client", "vllm-simple-test", { set = { ["targt.api"] = "x" } })
  t.raises("override orchestration.resources.cpus: unknown field 'cpus' in orchestration.resources", recipe.load, "server", "vllm-sim", { set = { ["orchestration.resources.cpus"] = 4 } })
  t.raises("override : expected a key.path", recipe.load, "server", "vllm-sim", { set = { [""] = 4 } })
  t.raises("recipe overrides: expected", recipe.load, "server", "vllm-sim", { set = { [2.5] = 4 } })
  t.raises("recipe overrides: expected \"key.path=value\" strings in the list, got", recipe.load, "server", "vllm-sim", { set = { 4 } })
end)

t.case("issue 23: a target not yet scraped says so; a running job's accounting is not final", function()
  local monitor = require("aibench.monitor")
  t.eq(monitor.scrape_time({ lastScrape = "0001-01-01T00:00:00Z" }), "not scraped yet")
  t.eq(monitor.scrape_time({}), "not scraped yet")
  t.eq(monitor.scrape_time({ lastScrape = "2026-12-07T18:00:01.5Z" }), "2026-12-07T18:00:01.5Z")
  local format = require("aibench.report.format")
  local function accounting_line(states)
    local jobs = {}
    for i, st in ipairs(states) do
      jobs[i] = { job_id = tostring(40 + i), state = st }
    end
    local rec = { hpc = { accounting = { jobs = jobs, node_hours = 0.1, gpu_hours = 0, cpu_hours = 0.2, cpu_used_hours = 0, peak_rss_mb = 0 } } }
    for _, row in ipairs(format.hpc_lines(rec)) do
      if row[1] == "accounting" then
        return row[2]
      end
    end
  end
  t.eq(accounting_line({ "COMPLETED", "RUNNING" }), "running: not final (job 42 still runs when the result was saved)")
  t.contains(accounting_line({ "COMPLETED", "CANCELLED" }), "peak memory 0 MiB")
end)

t.case("issue 23: a manager call with a recipe name alone, or with nothing, says what it expects", function()
  local server = require("aibench.server")
  local client = require("aibench.client")
  local monitor = require("aibench.monitor")
  t.raises('server.run: expected a recipe name or an options table like {recipe = "vllm-sim"}, got nothing', server.run)
  t.raises("client.run: expected a recipe name or an options table", client.run, 42)
  t.raises("monitor.start: expected a recipe name in the options", monitor.start, { executor = "local" })
  -- A name alone is the recipe: the error is the recipe's, not a Lua index error.
  local _, err = pcall(server.run, "no-such-recipe-here")
  t.contains(tostring(err), "no-such-recipe-here")
  t.ok(not tostring(err):find("attempt to index", 1, true), tostring(err))
end)

t.run()
