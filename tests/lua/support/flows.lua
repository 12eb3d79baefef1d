-- Helpers shared by the deployment flow tests (local and SLURM).
local fs = require("aibench.fs")
local proc = require("aibench.proc")
local registry = require("aibench.registry")
local deploy = require("aibench.deploy")
local t = require("aibench.testing")

local M = {}

--- Writes a server recipe into a temp folder and returns its path.
function M.recipe(dir, name, command, extra)
  local text = string.format([[
name: %s
service_name: %s
service:
  command: |
%s
  ports: [auto]
%s
]], name, name, ("    " .. command:gsub("\n", "\n    ")), extra or "")
  local path = fs.join(dir, name .. ".yaml")
  assert(fs.write(path, text))
  return path
end

--- True while any process of the job's service process group exists.
function M.group_alive(m)
  local pgid = fs.read(fs.join(m.dir, "service.pgid"))
  if not pgid then
    return false
  end
  local r = assert(proc.run({ "bash", "-c", "kill -0 -- -" .. pgid:gsub("%s", "") .. " 2>/dev/null" }))
  return r.code == 0
end

--- Asserts nothing of the deployments survives and nothing stays registered.
function M.nothing_left(metas)
  for _, m in ipairs(metas) do
    t.ok(not M.group_alive(m), "a process of instance " .. m.instance_id .. " survived")
    for _, i in ipairs(registry.list(m.service) or {}) do
      t.ok(i.instance_id ~= m.instance_id, "instance " .. m.instance_id .. " is still registered")
    end
  end
end

--- Waits until a job reaches a final state.
function M.final(m, timeout)
  return deploy.job(m):wait({ timeout_s = timeout or 60, poll_s = 0.2 })
end

return M
