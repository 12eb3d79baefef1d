--- Inside a monitor's job: run Prometheus and keep its target files
--- current from the registry (inotify does not work on network file systems).
local fs = require("aibench.fs")
local json = require("aibench.json")
local time = require("aibench.time")
local proc = require("aibench.proc")
local env = require("aibench.env")
local config = require("aibench.monitor.config")

local M = {}

--- Inside the job: run Prometheus and keep the target files current.
function M.main(spec_path)
  local spec = json.decode(assert(fs.read(spec_path)))
  local port = assert(env.get("PORT"), "the job agent sets PORT")
  local args = {
    "--config.file=" .. fs.join(spec.dir, "prometheus.yml"),
    "--storage.tsdb.path=" .. fs.join(spec.dir, "data"),
    "--storage.tsdb.retention.time=" .. spec.retention_time,
    "--web.listen-address=0.0.0.0:" .. port,
    "--web.enable-lifecycle",
  }
  local argv
  if spec.runtime.binary then
    argv = { spec.runtime.binary }
  else
    local c = spec.runtime.container
    -- ${VAR} and ${VAR:-default} from the job's environment, as for servers.
    argv = { c.runtime, "exec", "--bind", spec.dir, env.expand(c.image), "prometheus" }
  end
  for _, a in ipairs(args) do
    argv[#argv + 1] = a
  end
  io.stderr:write("[aibench-monitor] starting: ", table.concat(argv, " "), "\n")
  local h = assert(proc.spawn(argv, { stdout = "inherit", stderr = "inherit" }))
  while h:running() do
    local ok, err = pcall(config.sync_targets, spec.dir, spec.targets)
    if not ok then
      io.stderr:write("[aibench-monitor] cannot update targets: ", tostring(err), "\n")
    elseif err > 0 then
      io.stderr:write(string.format("[aibench-monitor] targets updated (%d file%s)\n", err, err == 1 and "" or "s"))
    end
    time.sleep(spec.refresh_s or 2)
  end
  local r = h:wait()
  io.stderr:write("[aibench-monitor] prometheus exited with code ", tostring(r and r.code), "\n")
  return r and r.code or 1
end

return M
