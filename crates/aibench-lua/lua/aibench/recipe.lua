--- Recipes: YAML files under recipes/{servers,monitors,clients}/ (the seed's
--- schema, plus ports: [auto], health, container, modules). Found in
--- ./recipes, then $AIBENCH_RECIPES (colon-separated), then the stock recipes
--- inside the binary. Every error names the file and the field path.
local yaml = require("aibench.yaml")
local fs = require("aibench.fs")
local env = require("aibench.env")
local aibench = require("aibench")
local json = require("aibench.json")

local M = {}

M.KINDS = { server = "servers", client = "clients", monitor = "monitors" }

-- Schema ---------------------------------------------------------------------

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

local RESOURCES = T({
  partition = STR,
  cpu_cores = INT(1, 100000),
  memory_gb = NUM(0),
  gpu_count = INT(0, 1024),
  time_limit = TIME,
  nodes = INT(1, 100000),
  account = STR,
  qos = STR,
})

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

M.schemas = {
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
    }, { required = { "command" } }),
    orchestration = ORCHESTRATION,
  }, { required = { "name", "service_name", "service" } }),

  client = T({
    name = NAME,
    service_name = NAME,
    description = STR,
    target = T({
      service_name = NAME,
      url = ANY,
      api = ONEOF("openai-completions", "openai-chat", "ollama-generate", "ollama-chat", "http"),
      model = STR,
      headers = MAP(SCALAR),
      timeout_s = NUM(0),
      stream = BOOL,
      ignore_eos = BOOL,
      path = STR,
      method = STR,
      body = STR,
    }),
    -- Checked field by field by the load generator (aibench.bench.validate).
    workload = T({}, { open = true }),
    dataset = T({}, { open = true }),
    slo = T({ ttft_ms = NUM(0), tpot_ms = NUM(0), itl_ms = NUM(0), e2e_ms = NUM(0) }),
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

-- Validation -------------------------------------------------------------------

local function type_name(v)
  if v == json.null then
    return "null"
  end
  if math.type(v) == "integer" then
    return "integer"
  end
  if type(v) == "table" then
    return json.is_array(v) and "list" or "table"
  end
  return type(v)
end

local function show(v)
  if type(v) == "string" then
    return string.format("%q", v)
  end
  if type(v) == "table" then
    return type_name(v)
  end
  return tostring(v)
end

local function keys_of(t)
  local out = {}
  for k in pairs(t) do
    out[#out + 1] = k
  end
  table.sort(out)
  return out
end

--- The closest name in `names` to `s`, if close enough.
function M.suggest(s, names)
  local best, best_d
  local function dist(a, b)
    local la, lb = #a, #b
    local prev = {}
    for j = 0, lb do
      prev[j] = j
    end
    for i = 1, la do
      local cur = { [0] = i }
      for j = 1, lb do
        local cost = (a:sub(i, i) == b:sub(j, j)) and 0 or 1
        cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      end
      prev = cur
    end
    return prev[lb]
  end
  for _, n in ipairs(names) do
    local d = dist(s:lower(), n:lower())
    if d <= math.max(2, #s // 3) and (not best_d or d < best_d) then
      best, best_d = n, d
    end
  end
  return best
end

local function join(path, key)
  if path == "" then
    return tostring(key)
  end
  if type(key) == "number" then
    return path .. "[" .. key .. "]"
  end
  return path .. "." .. key
end

--- Checks `v` against `schema`; returns a list of "path: message" strings.
local function check(v, schema, path, errs)
  local k = schema.kind
  local function bad(expected)
    errs[#errs + 1] = string.format("%s: expected %s, got %s", path, expected, show(v))
  end
  if k == "any" then
    return
  elseif k == "string" then
    if type(v) ~= "string" then
      bad("a string")
    end
  elseif k == "scalar" then
    local t = type(v)
    if t ~= "string" and t ~= "number" and t ~= "boolean" then
      bad("a string, number or boolean")
    end
  elseif k == "boolean" then
    if type(v) ~= "boolean" then
      bad("true or false")
    end
  elseif k == "integer" then
    if math.type(v) ~= "integer" then
      bad("an integer")
    elseif (schema.min and v < schema.min) or (schema.max and v > schema.max) then
      bad(string.format("an integer from %s to %s", schema.min or "-inf", schema.max or "inf"))
    end
  elseif k == "number" then
    if type(v) ~= "number" then
      bad("a number")
    elseif schema.min and v <= schema.min then
      bad("a number above " .. schema.min)
    end
  elseif k == "name" then
    if type(v) ~= "string" then
      bad("a name (letters, digits, '.', '_', '-')")
    else
      local _, err = aibench.check_name(v)
      if err then
        errs[#errs + 1] = path .. ": " .. err.message
      end
    end
  elseif k == "port" then
    if not (v == "auto" or (math.type(v) == "integer" and v >= 0 and v <= 65535)) then
      bad('a port number (0-65535) or "auto"')
    end
  elseif k == "time" then
    local local_ = require("aibench.local")
    -- A bare number is minutes, as for sbatch --time.
    if type(v) ~= "string" and math.type(v) ~= "integer" then
      bad('a time limit like "04:00:00" (or minutes)')
    else
      local _, err = local_.time_limit_seconds(tostring(v))
      if err then
        errs[#errs + 1] = path .. ": " .. err.message:gsub("^time_limit: ", "")
      end
    end
  elseif k == "oneof" then
    for _, ok in ipairs(schema.values) do
      if v == ok then
        return
      end
    end
    local quoted = {}
    for i, s in ipairs(schema.values) do
      quoted[i] = string.format("%q", s)
    end
    local hint = type(v) == "string" and M.suggest(v, schema.values)
    errs[#errs + 1] = string.format("%s: expected one of %s, got %s%s", path, table.concat(quoted, ", "), show(v), hint and (" (did you mean \"" .. hint .. "\"?)") or "")
  elseif k == "list" then
    if type(v) ~= "table" or (next(v) ~= nil and #v == 0) then
      bad("a list")
      return
    end
    for i, x in ipairs(v) do
      check(x, schema.of, join(path, i), errs)
    end
  elseif k == "map" then
    if type(v) ~= "table" or (next(v) ~= nil and #v > 0) then
      bad("a table of names to values")
      return
    end
    for key, x in pairs(v) do
      check(x, schema.of, join(path, key), errs)
    end
  elseif k == "table" then
    if type(v) ~= "table" or (#v > 0) then
      bad("a table")
      return
    end
    for _, req in ipairs(schema.required) do
      if v[req] == nil then
        errs[#errs + 1] = string.format("%s: missing (required)", join(path, req))
      end
    end
    if schema.open then
      return
    end
    local known = keys_of(schema.fields)
    for key, x in pairs(v) do
      local sub = schema.fields[key]
      if sub then
        check(x, sub, join(path, key), errs)
      else
        local hint = type(key) == "string" and M.suggest(key, known)
        errs[#errs + 1] = string.format("%s: unknown field%s", join(path, key), hint and (" (did you mean '" .. hint .. "'?)") or "")
      end
    end
  end
end

--- Validates a decoded recipe; raises one error listing every problem,
--- each as "FILE: field.path: message".
function M.validate(kind, doc, file)
  local errs = {}
  if type(doc) ~= "table" then
    error(string.format("%s: expected a YAML mapping at the top, got %s", file, type_name(doc)), 0)
  end
  check(doc, M.schemas[kind], "", errs)
  table.sort(errs)
  if #errs > 0 then
    for i, e in ipairs(errs) do
      errs[i] = file .. ": " .. e
    end
    error(table.concat(errs, "\n"), 0)
  end
  return doc
end

-- Finding ----------------------------------------------------------------------

local function search_dirs(kind)
  local sub = M.KINDS[kind]
  local dirs = { fs.join("recipes", sub) }
  local extra = env.get("AIBENCH_RECIPES")
  if extra and extra ~= "" then
    for d in extra:gmatch("[^:]+") do
      dirs[#dirs + 1] = fs.join(d, sub)
    end
  end
  return dirs
end

local function stock(kind)
  local out = {}
  local prefix = M.KINDS[kind] .. "/"
  for _, p in ipairs(aibench.stock_recipes()) do
    if p:sub(1, #prefix) == prefix and (p:match("%.ya?ml$")) then
      out[#out + 1] = p
    end
  end
  return out
end

local function stem(path)
  return fs.basename(path):gsub("%.ya?ml$", "")
end

--- All recipes of a kind: {name, file, source}, first found wins.
function M.list(kind)
  assert(M.KINDS[kind], "recipe kind must be server, client or monitor")
  local seen, out = {}, {}
  local function add(name, file, source)
    if not seen[name] then
      seen[name] = true
      out[#out + 1] = { name = name, file = file, source = source }
    end
  end
  for _, d in ipairs(search_dirs(kind)) do
    for _, f in ipairs(fs.list(d) or {}) do
      if f:match("%.ya?ml$") then
        add(stem(f), fs.join(d, f), "file")
      end
    end
  end
  for _, p in ipairs(stock(kind)) do
    add(stem(p), "stock:" .. p, "stock")
  end
  table.sort(out, function(a, b)
    return a.name < b.name
  end)
  return out
end

--- Finds a recipe by name (or path); returns its text and a display name.
function M.find(kind, name)
  if name:match("%.ya?ml$") or name:find("/", 1, true) then
    local text, err = fs.read(name)
    if not text then
      error(string.format("recipe '%s': %s", name, err.message), 0)
    end
    return text, name
  end
  for _, d in ipairs(search_dirs(kind)) do
    for _, ext in ipairs({ ".yaml", ".yml" }) do
      local p = fs.join(d, name .. ext)
      local text = fs.read(p)
      if text then
        return text, p
      end
    end
  end
  for _, ext in ipairs({ ".yaml", ".yml" }) do
    local rel = M.KINDS[kind] .. "/" .. name .. ext
    local text = aibench.stock_recipe(rel)
    if text then
      return text, "stock:" .. rel
    end
  end
  local names = {}
  for _, r in ipairs(M.list(kind)) do
    names[#names + 1] = r.name
  end
  local hint = M.suggest(name, names)
  error(string.format("unknown %s recipe '%s'%s; available: %s", kind, name, hint and (" (did you mean '" .. hint .. "'?)") or "", #names > 0 and table.concat(names, ", ") or "none"), 0)
end

-- Overrides --------------------------------------------------------------------

--- Parses "a.b=value" (value as YAML: 10, true, [1, 2], text).
function M.parse_set(s)
  local path, value = s:match("^([%w_%.%-%[%]]+)=(.*)$")
  if not path then
    error(string.format("--set %s: expected key.path=value", s), 0)
  end
  local v = yaml.decode(value)
  if v == nil or (type(v) == "table" and not json.is_array(v) and next(v) == nil and value ~= "{}") then
    v = value
  end
  local parts = {}
  for p in path:gmatch("[^%.]+") do
    parts[#parts + 1] = tonumber(p) and math.tointeger(tonumber(p)) or p
  end
  return parts, v
end

--- Applies overrides, checking each path exists in the schema.
function M.apply_sets(kind, doc, sets)
  for _, s in ipairs(sets or {}) do
    local parts, v = M.parse_set(s)
    -- Check the path against the schema, down to the first open (free-form)
    -- table or non-table field: anything goes below it.
    local parent = M.schemas[kind]
    for i = 1, #parts do
      if not parent or parent.kind ~= "table" or parent.open then
        break
      end
      local field = parent.fields[parts[i]]
      if not field then
        local prefix = table.concat(parts, ".", 1, i - 1)
        local hint = M.suggest(tostring(parts[i]), keys_of(parent.fields))
        error(string.format("--set %s: unknown field '%s'%s%s", s, parts[i], prefix ~= "" and (" in " .. prefix) or "", hint and (" (did you mean '" .. hint .. "'?)") or ""), 0)
      end
      parent = field
    end
    local t = doc
    for i = 1, #parts - 1 do
      if type(t[parts[i]]) ~= "table" then
        t[parts[i]] = {}
      end
      t = t[parts[i]]
    end
    t[parts[#parts]] = v
  end
  return doc
end

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
      check(v, T({ partition = STR, account = STR, qos = STR, time_limit = TIME, cpu_cores = INT(1), memory_gb = NUM(0), modules = LIST(STR), sbatch_args = LIST(STR) }), "", errs)
      if #errs > 0 then
        error(p .. ": " .. table.concat(errs, "\n" .. p .. ": "), 0)
      end
      for k, x in pairs(v) do
        d[k] = x
      end
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
