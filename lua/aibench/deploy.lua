--- What the server, monitor and client managers share, in one module: the
--- executor choice (aibench.deploy.executors), job folders and their
--- metadata (aibench.deploy.store), the deployment lifecycle: submit,
--- batched status, wait until registered, give up, stop, list
--- (aibench.deploy.lifecycle), and job specs from recipes
--- (aibench.deploy.spec). Each part is its own module; this one gathers
--- their functions under one name.
local util = require("aibench.util")

local M = {}

for _, part in ipairs({ "executors", "store", "lifecycle", "spec" }) do
  for k, v in pairs(require("aibench.deploy." .. part)) do
    assert(M[k] == nil or M[k] == v, "aibench.deploy." .. part .. ": " .. k .. " is defined twice")
    M[k] = v
  end
end

--- Human-readable age since an ISO time (aibench.util.age).
M.age = util.age

return M
