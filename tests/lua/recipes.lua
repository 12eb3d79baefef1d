-- Recipes: search path, validation errors naming file and field, --set,
-- stock recipes, templates.
local recipe = require("aibench.recipe")
local fs = require("aibench.fs")
local env = require("aibench.env")
local yaml = require("aibench.yaml")
local t = require("aibench.testing")

local dir = assert(fs.tmpdir())

local function write(name, text)
  local p = fs.join(dir, name)
  assert(fs.write(p, text, { mkdir = true }))
  return p
end

t.case("stock recipes load and validate", function()
  for kind in pairs(recipe.KINDS) do
    for _, r in ipairs(recipe.list(kind)) do
      local doc = recipe.load(kind, r.name)
      t.ok(doc.name, r.name)
    end
  end
  local sim = recipe.load("server", "vllm-sim")
  t.eq(sim.service_name, "vllm")
  t.eq(sim.service.ports, { "auto" })
  local simple = recipe.load("client", "vllm-simple-test")
  t.eq(simple.workload.concurrent_users, 3)
  t.eq(simple.workload.think_time_ms, 500)
  t.eq(simple.dataset.prompt_tokens, 50)
  t.eq(simple.dataset.output_tokens, 20)
  t.eq(recipe.load("client", "vllm-stress-test").workload.concurrent_users, 20)
  t.eq(recipe.load("client", "vllm-high-throughput-test").dataset.prompt_tokens, 20)
  t.eq(recipe.load("client", "vllm-long-context-test").dataset.prompt_tokens, 2048)
end)

t.case("search path: ./recipes, then AIBENCH_RECIPES, then stock", function()
  write("extra/servers/my-server.yaml", "name: my-server\nservice_name: mine\nservice:\n  command: echo hi\n")
  write("extra/servers/vllm-sim.yaml", "name: vllm-sim\nservice_name: shadowed\nservice:\n  command: echo hi\n")
  write("work/recipes/servers/vllm-sim.yaml", "name: vllm-sim\nservice_name: local-copy\nservice:\n  command: echo hi\n")
  local proc = require("aibench.proc")
  local exe = require("aibench").exe()
  local function service_of(cwd, extra)
    local code = "return require('aibench.recipe').load('server', 'vllm-sim').service_name"
    local r = assert(proc.run({ exe, "eval", code }, { cwd = cwd, env = { AIBENCH_RECIPES = extra or "" } }))
    t.eq(r.code, 0, r.stderr)
    return (r.stdout:gsub("%s+$", ""))
  end
  t.eq(service_of(dir, nil), "vllm", "stock recipe when nothing shadows it")
  t.eq(service_of(dir, fs.join(dir, "extra")), "shadowed", "AIBENCH_RECIPES before the stock recipes")
  t.eq(service_of(fs.join(dir, "work"), fs.join(dir, "extra")), "local-copy", "./recipes first")
  env.set("AIBENCH_RECIPES", fs.join(dir, "extra"))
  t.eq(recipe.load("server", "my-server").service_name, "mine")
  env.set("AIBENCH_RECIPES", nil)
end)

t.case("unknown recipe suggests the closest names", function()
  t.raises("unknown server recipe 'vllm-sm' (did you mean 'vllm-sim'?)", recipe.load, "server", "vllm-sm")
  t.raises("available: ", recipe.load, "client", "nothing-like-it")
end)

t.case("malformed YAML names file, line and column", function()
  local p = write("bad.yaml", "name: x\nservice:\n  command: [unclosed\n")
  local msg = t.raises("bad.yaml: line ", recipe.load, "server", p)
  t.ok(msg:match("line %d+ column %d+"), msg)
end)

t.case("wrong types, ranges and unknown fields name the field", function()
  local p = write("types.yaml", [[
name: x
service_name: x
service:
  command: run
  ports: [80000, auto, "nine"]
  health: {path: /health, timout_s: 5}
orchestration:
  executor: slrum
  resources:
    cpu_cores: ten
    memory_gb: -4
    time_limit: "4 hours"
]])
  local msg = t.raises("types.yaml: ", recipe.load, "server", p)
  t.contains(msg, 'types.yaml: service.ports[1]: expected a port number (0-65535) or "auto", got 80000')
  t.contains(msg, 'service.ports[3]: expected a port number (0-65535) or "auto", got "nine"')
  t.contains(msg, "service.health.timout_s: unknown field (did you mean 'timeout_s'?)")
  t.contains(msg, 'orchestration.executor: expected one of "local", "slurm", got "slrum" (did you mean "slurm"?)')
  t.contains(msg, 'orchestration.resources.cpu_cores: expected an integer')
  t.contains(msg, "orchestration.resources.memory_gb: expected a number above 0, got -4")
  t.contains(msg, 'orchestration.resources.time_limit: expected MM, MM:SS, HH:MM:SS')
  t.raises("service: missing (required)", recipe.load, "server", write("noservice.yaml", "name: a\nservice_name: a\n"))
end)

t.case("--set overrides, with did-you-mean on unknown keys", function()
  local r = recipe.load("client", "vllm-simple-test", { set = { "workload.duration_seconds=10", "dataset.prompt_tokens=64", "target.stream=false", "output.label=hello world" } })
  t.eq(r.workload.duration_seconds, 10)
  t.eq(r.dataset.prompt_tokens, 64)
  t.eq(r.target.stream, false)
  t.eq(r.output.label, "hello world")
  t.raises("--set targt.api=x: unknown field 'targt' (did you mean 'target'?)", recipe.load, "client", "vllm-simple-test", { set = { "targt.api=x" } })
  t.raises("--set orchestration.resources.cpus=4: unknown field 'cpus' in orchestration.resources", recipe.load, "server", "vllm-sim", { set = { "orchestration.resources.cpus=4" } })
  t.raises("expected key.path=value", recipe.load, "server", "vllm-sim", { set = { "nonsense" } })
  local s = recipe.load("server", "vllm-sim", { set = { "orchestration.resources.cpu_cores=4" } })
  t.eq(s.orchestration.resources.cpu_cores, 4)
end)

t.case("templates are valid recipes", function()
  for kind in pairs(recipe.KINDS) do
    local text = recipe.template(kind, "my-" .. kind)
    local p = write("tpl-" .. kind .. ".yaml", text)
    local r = recipe.load(kind, p)
    t.eq(r.name, "my-" .. kind)
    t.ok(yaml.decode(text))
  end
end)

t.case("SLURM defaults from config/slurm.yml and the environment", function()
  local home = require("aibench").home()
  assert(fs.write(fs.join(home, "config", "slurm.yml"), "partition: batch\naccount: p1\ntime_limit: \"01:00:00\"\n", { mkdir = true }))
  env.set("SLURM_ACCOUNT", "p2")
  local d = recipe.slurm_defaults()
  t.eq(d.partition, "batch")
  t.eq(d.account, "p2")
  env.set("SLURM_ACCOUNT", nil)
  assert(fs.write(fs.join(home, "config", "slurm.yml"), "partition: [x]\n"))
  t.raises("slurm.yml: partition: expected a string", recipe.slurm_defaults)
  fs.remove(fs.join(home, "config"), { recursive = true })
end)

t.run()
fs.remove(dir, { recursive = true })
