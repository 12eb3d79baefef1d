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

--- True while any process of the job's service process group exists (of
--- any node's part, for a server on several nodes: service.pgid.node<K>).
function M.group_alive(m)
  for _, name in ipairs({ "service.pgid", "service.pgid.node0", "service.pgid.node1", "service.pgid.node2", "service.pgid.node3" }) do
    local pgid = fs.read(fs.join(m.dir, name))
    if pgid then
      local r = assert(proc.run({ "bash", "-c", "kill -0 -- -" .. pgid:gsub("%s", "") .. " 2>/dev/null" }))
      if r.code == 0 then
        return true
      end
    end
  end
  return false
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

--- A SLURM job's state as squeue shows it ("" when it is gone).
function M.squeue_state(id)
  local r = assert(proc.run({ "squeue", "-h", "-t", "all", "-j", id, "-o", "%T" }))
  return (r.stdout:gsub("%s+$", ""))
end

--- Polls `f` until it returns a true value (returned), or raises after
--- `timeout` seconds naming `what`.
function M.wait_for(what, timeout, f)
  local time = require("aibench.time")
  local deadline = time.monotonic() + timeout
  while true do
    local v = f()
    if v then
      return v
    end
    if time.monotonic() > deadline then
      error("timed out after " .. timeout .. " s waiting for " .. what, 2)
    end
    time.sleep(0.25)
  end
end

--- Asserts the dev cluster has node1..node3 (the multi-node tests' layout).
function M.need_three_nodes()
  local have = {}
  for n in proc.run({ "sinfo", "-h", "-N", "-o", "%N" }).stdout:gmatch("%S+") do
    have[n] = true
  end
  t.ok(have.node1 and have.node2 and have.node3, "the dev cluster has node1..node3 (scripts/slurm-dev-cluster.sh up --nodes 3)")
end

--- This machine's address as the cluster's nodes reach it: the controller's
--- (SlurmctldHost=name(ADDR)), 127.0.0.1 in the single-node layout. A server
--- the test starts here must listen on it (or 0.0.0.0) for client jobs.
function M.controller_addr()
  local out = require("aibench.proc").run({ "scontrol", "show", "config" }).stdout or ""
  return out:match("SlurmctldHost[^=]*=%s*[^(%s]+%(([%d.]+)%)") or "127.0.0.1"
end

--- A URL on this machine (http://127.0.0.1:PORT) as a compute node reaches it.
function M.from_nodes(url)
  return (url:gsub("^(https?://)[^:/]+", "%1" .. M.controller_addr()))
end

return M
