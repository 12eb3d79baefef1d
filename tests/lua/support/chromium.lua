-- Headless Chromium for tests of what a person looks at: runs it on one
-- file with a throw-away profile under `dir`, returns proc.run's result.
local fs = require("aibench.fs")
local proc = require("aibench.proc")

local M = {}

--- chromium --headless [extra...] file://PATH (within 120 s).
---@param dir string a folder for the profile
---@param path string the HTML file
---@param extra string[] e.g. {"--dump-dom"} or {"--screenshot=x.png"}
function M.run(dir, path, extra)
  local args = {
    "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--user-data-dir=" .. fs.join(dir, "profile"), "--enable-logging=stderr", "--v=0",
  }
  for _, a in ipairs(extra) do
    args[#args + 1] = a
  end
  args[#args + 1] = "file://" .. path
  return assert(proc.run(args, { timeout_s = 120 }))
end

return M
