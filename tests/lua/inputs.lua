-- Files a recipe names for its job to read are checked before anything is
-- submitted: a device (/dev/zero), a FIFO, a folder or a missing file is an
-- error naming the recipe file and field, not a job that reads it for ever.
local server = require("aibench.server")
local deploy = require("aibench.deploy")
local proc = require("aibench.proc")
local fs = require("aibench.fs")
local t = require("aibench.testing")

local dir = assert(fs.tmpdir())
local SCRAPE = fs.abspath("tests/fixtures/dcgm-exporter-sample.txt")

local function recipe(gpu_file)
  local p = fs.join(dir, "gpu-sim.yaml")
  assert(fs.write(p, string.format([[
name: gpu-sim
service_name: vllm-gpu
service:
  command: exec {aibench} sim --port {port}
  ports: [auto]
monitoring:
  gpu_from_file: "%s"
orchestration:
  executor: local
]], gpu_file)))
  return p
end

local function dry(gpu_file)
  return server.run({ recipe = recipe(gpu_file), executor = "local", dry_run = true, quiet = true })
end

t.case("monitoring.gpu_from_file must be a regular file when the server is submitted", function()
  local e = t.raises("monitoring.gpu_from_file: '/dev/zero' is not a regular file", dry, "/dev/zero")
  t.contains(e, "gpu-sim.yaml")
  t.raises("monitoring.gpu_from_file: '" .. dir .. "' is a directory", dry, dir)
  t.raises("monitoring.gpu_from_file: '/no/such/scrape.txt' does not exist", dry, "/no/such/scrape.txt")
  local fifo = fs.join(dir, "scrape.fifo")
  assert(proc.run({ "mkfifo", fifo }))
  t.raises("monitoring.gpu_from_file: '" .. fifo .. "' is not a regular file", dry, fifo)
  local res = assert(dry(SCRAPE))
  t.eq(res.dry_run, true)
end)

t.case("a client recipe's dataset.path is checked the same way", function()
  t.raises("c.yaml: dataset.path: '/dev/zero' is not a regular file", deploy.check_input_files, "c.yaml", { dataset = { type = "jsonl", path = "/dev/zero" } })
  t.raises("c.yaml: dataset.path: '/no/such.jsonl' does not exist", deploy.check_input_files, "c.yaml", { dataset = { path = "/no/such.jsonl" } })
  deploy.check_input_files("c.yaml", { dataset = { path = "tests/fixtures/mooncake-200.jsonl" } })
  deploy.check_input_files("c.yaml", { dataset = { prompt_tokens = 8 } })
end)

t.run()
fs.remove(dir, { recursive = true })
