--- The recipe schemas: one table per recipe kind, in the checker's terms
--- (aibench.recipe.check). Sections whose shape a Rust type owns (target,
--- slo, resources) come from Rust (aibench.schema).
local aibench = require("aibench")
local util = require("aibench.util")

local M = {}

local function T(fields, opts)
  return { kind = "table", fields = fields, required = (opts or {}).required or {}, open = (opts or {}).open }
end
local STR = { kind = "string" }
local BOOL = { kind = "boolean" }
local function INT(min, max)
  return { kind = "integer", min = min, max = max }
end
local function NUM(min)
  return { kind = "number", min = min }
end
local function LIST(of)
  return { kind = "list", of = of }
end
local function MAP(of)
  return { kind = "map", of = of }
end
local function ONEOF(...)
  return { kind = "oneof", values = { ... } }
end
local PORT = { kind = "port" }
-- A name that becomes part of paths (job folders, registry files).
local NAME = { kind = "name" }
local TIME = { kind = "time" }
local ANY = { kind = "any" }
local SCALAR = { kind = "scalar" }

--- A section whose shape a Rust type owns (aibench.schema), with the
--- recipe's own extra fields: one source of truth for its fields and kinds.
local function rust_section(name, extra)
  local s = aibench.schema(name)
  util.merge(s.fields, extra)
  return s
end

local RESOURCES = rust_section("resources")

-- config/slurm.yml: resources a site sets for every job, its modules and
-- extra sbatch options.
M.SITE_DEFAULTS = T({
  modules = LIST(STR),
  sbatch_args = LIST(STR),
  -- What a GPU-hour and a node-hour cost, for cost per million tokens.
  pricing = T({ gpu_hour = NUM(0), node_hour = NUM(0), currency = STR }),
})
for _, k in ipairs({ "partition", "account", "qos", "time_limit", "cpu_cores", "memory_gb" }) do
  M.SITE_DEFAULTS.fields[k] = RESOURCES.fields[k]
end

local ORCHESTRATION = T({
  executor = ONEOF("local", "slurm"),
  resources = RESOURCES,
  sbatch_args = LIST(STR),
  instances = INT(1, 10000),
})

local CONTAINER = T({
  image = STR,
  runtime = ONEOF("apptainer", "singularity"),
  gpu = BOOL,
  binds = LIST(STR),
  args = LIST(STR),
}, { required = { "image" } })

M.kinds = {
  server = T({
    name = NAME,
    service_name = NAME,
    description = STR,
    service = T({
      command = STR,
      working_dir = STR,
      env = MAP(SCALAR),
      ports = LIST(PORT),
      port = INT(0, 65535),
      health = T({ path = STR, timeout_s = NUM(0) }),
      container = CONTAINER,
      modules = LIST(STR),
      metrics_path = STR,
      -- A server that spans nodes (aibench.launchers): how many, and how
      -- its parts start.
      nodes = INT(1, 4096),
      launcher = ONEOF("ray", "per-node"),
      ray = T({ timeout_s = NUM(1), args = LIST(STR), head_args = LIST(STR) }),
    }, { required = { "command" } }),
    orchestration = ORCHESTRATION,
    -- GPU telemetry beside the service when it asks for GPUs.
    monitoring = T({ gpu = ONEOF("auto", "dcgm", "nvml", "off"), gpu_from_file = STR }),
  }, { required = { "name", "service_name", "service" } }),

  client = T({
    name = NAME,
    service_name = NAME,
    description = STR,
    target = rust_section("target", { service_name = NAME }),
    -- Checked field by field by the load generator (aibench.bench.validate).
    workload = T({}, { open = true }),
    dataset = T({}, { open = true }),
    slo = rust_section("slo"),
    orchestration = ORCHESTRATION,
    output = T({ dir = STR, per_request_log = BOOL, label = STR }),
  }, { required = { "name", "workload" } }),

  monitor = T({
    name = NAME,
    service_name = NAME,
    description = STR,
    targets = LIST(T({ service = NAME, port = INT(1, 65535), metrics_path = STR, job_name = STR }, { required = { "service" } })),
    prometheus = T({
      image = STR,
      binary = STR,
      scrape_interval = STR,
      evaluation_interval = STR,
      retention_time = STR,
      port = PORT,
      refresh_interval = STR,
      resources = RESOURCES,
    }),
    alerts = LIST(T({ name = STR, expr = STR, ["for"] = STR, severity = STR, summary = STR }, { required = { "name", "expr" } })),
    orchestration = ORCHESTRATION,
  }, { required = { "name", "targets" } }),
}

return M
