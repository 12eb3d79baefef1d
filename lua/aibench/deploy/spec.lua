--- Job specs (for aibench.slurm and aibench.local) from a recipe: its
--- orchestration and service fields with the SLURM site defaults, the
--- command that runs a service under the job agent, and the checks that
--- name the recipe file and field before anything is submitted.
local aibench = require("aibench")
local fs = require("aibench.fs")
local recipe = require("aibench.recipe")
local util = require("aibench.util")
local executors = require("aibench.deploy.executors")

local M = {}

-- Checks -----------------------------------------------------------------------------

-- Where a job-spec field comes from in a recipe, by its first part, for
-- error messages (`resources.nodes` is `orchestration.resources.nodes`).
local RECIPE_FIELDS = {
  resources = "orchestration.resources",
  sbatch_args = "orchestration.sbatch_args",
  env = "service.env",
  working_dir = "service.working_dir",
  modules = "service.modules",
  name = "name",
}

-- Files a recipe names for its job to read (server: a recorded GPU scrape;
-- client: its dataset), as {section, field}.
local INPUT_FILES = {
  { "monitoring", "gpu_from_file" },
  { "dataset", "path" },
}

--- Checks, before anything is submitted, that each file a recipe names for
--- its job to read is an existing regular file (not a device such as
--- /dev/zero, a FIFO or a folder, which the job would refuse or wait on);
--- raises one line naming the recipe file and field. Relative paths are the
--- submitting folder's, as the job sees them.
function M.check_input_files(file, r)
  for _, f in ipairs(INPUT_FILES) do
    local section = type(r) == "table" and r[f[1]] or nil
    local path = type(section) == "table" and section[f[2]] or nil
    if type(path) == "string" and path ~= "" then
      local st, err = fs.stat(fs.abspath(path))
      local why
      if not st then
        why = (err and err.kind == "not_found") and "does not exist"
          or ("cannot be read (" .. tostring(err and err.message or err) .. ")")
      elseif st.is_dir then
        why = "is a directory; expected a regular file"
      elseif not st.is_file then
        why = "is not a regular file (a device, FIFO or socket); expected a regular file"
      end
      if why then
        error(string.format("%s: %s.%s: '%s' %s", file, f[1], f[2], path, why), 0)
      end
    end
  end
end

--- Checks a job spec before anything is written, raising one line that
--- names the recipe file and field (a value from the site defaults in
--- config/slurm.yml is named as such); the files the recipe names for the
--- job to read are checked first (M.check_input_files).
function M.check_job_spec(spec, file, r)
  M.check_input_files(file, r)
  local ok, err = executors.executor("local").check(spec)
  if ok then
    return
  end
  if not err.field then
    error(file .. ": " .. err.message, 0)
  end
  local head, rest = err.field:match("^([%w_]+)(.*)$")
  local field = RECIPE_FIELDS[head] and (RECIPE_FIELDS[head] .. rest) or err.field
  local msg = field .. ": " .. err.message
  local key = head == "resources" and rest:match("^%.([%w_]+)")
  local res = r and r.orchestration and r.orchestration.resources or {}
  if key and res[key] == nil then
    msg = msg .. " (from the SLURM site defaults, config/slurm.yml)"
  end
  error(file .. ": " .. msg, 0)
end

-- Assembly ---------------------------------------------------------------------------

--- The command that runs a service under the job agent, in its container if any.
function M.agent_command(dir, service)
  local cmd = { aibench.exe(), "job-agent", fs.join(dir, "agent.json"), "--" }
  local c = service and service.container
  if c then
    cmd[#cmd + 1] = c.runtime or "apptainer"
    cmd[#cmd + 1] = "exec"
    if c.gpu then
      cmd[#cmd + 1] = "--nv"
    end
    for _, b in ipairs(c.binds or {}) do
      cmd[#cmd + 1] = "--bind"
      cmd[#cmd + 1] = b
    end
    for _, a in ipairs(c.args or {}) do
      cmd[#cmd + 1] = a
    end
    cmd[#cmd + 1] = c.image
  end
  return cmd
end

--- The SLURM site defaults (recipe.slurm_defaults) when the executor is
--- slurm, else nil: read once per command and handed to job_spec.
function M.site_defaults(executor)
  if executor == "slurm" then
    return recipe.slurm_defaults()
  end
end

--- The job spec (for aibench.slurm/local) from a recipe's orchestration.
--- `defaults`: the site defaults from site_defaults (read here when nil).
function M.job_spec(r, executor, name, dir, command, comment, defaults)
  local o = r.orchestration or {}
  local res = util.copy(o.resources)
  local sbatch_args = util.copy(o.sbatch_args)
  local modules = util.copy(r.service and r.service.modules)
  if executor == "slurm" then
    local d = defaults or recipe.slurm_defaults()
    for _, k in ipairs({ "partition", "account", "qos", "time_limit", "cpu_cores", "memory_gb" }) do
      if res[k] == nil then
        res[k] = d[k]
      end
    end
    for _, a in ipairs(d.sbatch_args or {}) do
      sbatch_args[#sbatch_args + 1] = a
    end
    -- Site modules first, in their order (Lmod hierarchies depend on it).
    for i, m in ipairs(d.modules or {}) do
      table.insert(modules, i, m)
    end
  end
  if res.time_limit then
    -- A bare number is minutes (as for sbatch --time).
    res.time_limit = tostring(res.time_limit)
  end
  local env = {}
  for k, v in pairs((r.service and r.service.env) or {}) do
    env[k] = tostring(v)
  end
  return {
    name = name,
    dir = dir,
    command = command,
    resources = res,
    modules = modules,
    env = env,
    workdir = r.service and r.service.working_dir and fs.abspath(r.service.working_dir) or nil,
    sbatch_args = sbatch_args,
    comment = comment,
  }
end

--- Seconds of the recipe's time limit (for the local executor's agent).
function M.time_limit_s(r)
  local t = r.orchestration and r.orchestration.resources and r.orchestration.resources.time_limit
  if not t then
    return nil
  end
  return (executors.executors["local"].time_limit_seconds(tostring(t)))
end

return M
