--- Recipes: YAML files under recipes/{servers,monitors,clients}/ (the MeluXina
--- report's schema, plus ports: [auto], health, container, modules). Found in
--- ./recipes, then $AIBENCH_RECIPES (colon-separated), then the stock recipes
--- inside the binary. Every error names the file and the field path.
local yaml = require("aibench.yaml")
local fs = require("aibench.fs")
local env = require("aibench.env")
local aibench = require("aibench")
local schema = require("aibench.recipe.schema")
local check = require("aibench.recipe.check")
local find = require("aibench.recipe.find")
local set = require("aibench.recipe.set")
local util = require("aibench.util")

local M = {}

M.KINDS = find.KINDS
M.schemas = schema.kinds
M.validate = check.validate
M.list, M.find = find.list, find.find
M.parse_set, M.apply_sets, M.set_field = set.parse_set, set.apply_sets, set.set_field

--- The closest name in `names` to `s`, if close enough (aibench.util.suggest).
M.suggest = util.suggest

-- Loading ----------------------------------------------------------------------

--- SLURM defaults: ./config/slurm.yml, then $AIBENCH_HOME/config/slurm.yml,
--- then SLURM_ACCOUNT / SLURM_PARTITION / SLURM_QOS.
function M.slurm_defaults()
  local d = {}
  for _, p in ipairs({ fs.join(aibench.home(), "config", "slurm.yml"), fs.join("config", "slurm.yml") }) do
    local text = fs.read(p)
    if text then
      local v, err = yaml.decode(text, { name = p })
      if not v then
        error(err.message, 0)
      end
      local errs = {}
      check.check(v, schema.SITE_DEFAULTS, "", errs)
      if #errs > 0 then
        error(p .. ": " .. table.concat(errs, "\n" .. p .. ": "), 0)
      end
      util.merge(d, v)
    end
  end
  for k, var in pairs({ account = "SLURM_ACCOUNT", partition = "SLURM_PARTITION", qos = "SLURM_QOS" }) do
    local x = env.get(var)
    if x and x ~= "" then
      d[k] = x
    end
  end
  return d
end

--- Loads, overrides (--set) and validates a recipe. Returns the recipe table
--- and the file it came from.
---@param kind "server"|"client"|"monitor"
---@param name string recipe name or path to a YAML file
---@param opts? {set?: string[]}
function M.load(kind, name, opts)
  assert(M.KINDS[kind], "recipe kind must be server, client or monitor")
  opts = opts or {}
  local text, file = M.find(kind, name)
  local doc, err = yaml.decode(text, { name = file })
  if doc == nil then
    error(err and err.message or (file .. ": empty recipe"), 0)
  end
  if type(doc) == "table" then
    M.apply_sets(kind, doc, opts.set)
  end
  M.validate(kind, doc, file)
  doc.service_name = doc.service_name or (doc.target and doc.target.service_name)
  return doc, file
end

-- Listing -----------------------------------------------------------------------

--- Every recipe of a kind, each loaded once for what a listing shows:
--- `{name, source = "stock"|"file", file (nil for a stock one), doc (the
--- loaded recipe) | error (why it does not load: its first line)}`.
---@param kind "server"|"client"|"monitor"
---@return table[]
function M.catalog(kind)
  local out = {}
  for _, r in ipairs(M.list(kind)) do
    local ok, doc = pcall(M.load, kind, r.source == "stock" and r.name or r.file)
    out[#out + 1] = {
      name = r.name,
      source = r.source,
      file = r.source ~= "stock" and r.file or nil,
      doc = ok and doc or nil,
      error = not ok and (aibench.error_message(doc):match("[^\n]*")) or nil,
    }
  end
  return out
end

--- A description on one line: its runs of white space (YAML folds) as one space.
---@param desc? string
---@return string
function M.one_line(desc)
  return (tostring(desc or ""):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end

--- How long a client recipe runs: `{pattern, duration_s, total_requests,
--- total_sessions}` where the recipe fixes them (requests_per_user x users
--- counts as total_requests), and `text`, the same in a few words ("120 s",
--- "5000 requests", "the trace (at most 60 s)"; "-" when nothing is fixed).
---@param doc? table a loaded client recipe
---@return {pattern?: string, duration_s?: number, total_requests?: number, total_sessions?: number, text: string}
function M.length(doc)
  local w = type(doc) == "table" and type(doc.workload) == "table" and doc.workload or {}
  local d = w.duration_s or w.duration_seconds
  local out = { pattern = w.pattern, duration_s = d, total_sessions = w.total_sessions }
  if w.pattern == "trace" then
    out.total_requests = w.total_requests
    out.text = "the trace" .. (d and string.format(" (at most %s s)", d) or "")
    return out
  end
  local users = w.users or w.concurrent_users
  out.total_requests = w.total_requests or (w.requests_per_user and users and w.requests_per_user * users) or nil
  local parts = {}
  if d then
    parts[#parts + 1] = d .. " s"
  end
  if out.total_requests or out.total_sessions then
    parts[#parts + 1] = out.total_sessions and (out.total_sessions .. " sessions") or (out.total_requests .. " requests")
  elseif w.requests_per_user then
    parts[#parts + 1] = w.requests_per_user .. " per user"
  end
  out.text = #parts > 0 and table.concat(parts, ", ") or "-"
  return out
end

--- A starter recipe (YAML text) to copy and edit.
function M.template(kind, name)
  name = name or ("my-" .. kind)
  if kind == "server" then
    return ([[
name: %s
service_name: %s
description: What this server is and where it runs

service:
  # Runs with bash on the node. {port} (or $PORT) is the port aibench chose.
  command: |
    {aibench} sim --host 0.0.0.0 --port {port} --profile opt-125m-cpu
  working_dir: .
  env: {}
  ports: [auto]            # or fixed numbers; auto avoids clashes on shared nodes
  health:
    path: /health
    timeout_s: 300
  # container: {image: /scratch/images/vllm-openai.sif, runtime: apptainer, gpu: true, binds: [/scratch]}
  # modules: [Apptainer/1.3.6-GCCcore-13.3.0]

orchestration:
  executor: local          # or slurm
  resources:
    partition: cpu
    cpu_cores: 2
    memory_gb: 4
    gpu_count: 0
    time_limit: "01:00:00"
]]):format(name, name:gsub("%-server$", ""))
  elseif kind == "client" then
    return ([[
name: %s
service_name: vllm
description: What this benchmark measures

target:
  api: openai-completions
  stream: true
workload:
  pattern: closed-loop
  concurrent_users: 10
  think_time_ms: 500
  duration_seconds: 60
dataset:
  type: synthetic
  prompt_tokens: 128
  output_tokens: 64
slo:
  ttft_ms: 500
orchestration:
  executor: local
  instances: 1
  resources: {cpu_cores: 2, memory_gb: 2, time_limit: "00:30:00"}
output:
  dir: results
]]):format(name)
  end
  return ([[
name: %s
service_name: vllm
targets:
  - service: vllm
    metrics_path: /metrics
prometheus:
  scrape_interval: 15s
  retention_time: 24h
  port: auto
alerts:
  - name: QueueBacklog
    expr: sum(vllm:num_requests_waiting) > 10
    for: 1m
    summary: requests are queueing
orchestration:
  executor: local
  resources: {cpu_cores: 2, memory_gb: 4}
]]):format(name)
end

return M
