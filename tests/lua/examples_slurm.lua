-- needs: slurm
-- The four scenario scripts, shortened, with the server and client as jobs
-- on the real single-node SLURM cluster.
local proc = require("aibench.proc")
local fs = require("aibench.fs")
local json = require("aibench.json")
local aibench = require("aibench")
local t = require("aibench.testing")

local dir = assert(fs.tmpdir())

t.case("the four scenarios on SLURM", function()
  for _, s in ipairs({ "simple-test.lua", "stress-test.lua", "high-throughput.lua", "long-context.lua" }) do
    local sub = s:gsub("%.lua$", "")
    local r = assert(proc.run({ aibench.exe(), "run", "examples/" .. s, "--duration", "3", "--executor", "slurm", "--no-monitor", "--out-dir", fs.join(dir, sub) }, { timeout_s = 300 }))
    t.eq(r.code, 0, s .. ":\n" .. r.stdout .. r.stderr)
    local files = fs.list(fs.join(dir, sub)) or {}
    t.eq(#files, 1, sub)
    local rec = json.decode(assert(fs.read(fs.join(dir, sub, files[1]))))
    t.eq(rec.environment.executor, "slurm")
    t.ok(rec.environment.slurm_job_ids[1]:match("^%d+$"), sub)
    t.ok(rec.bench.successes > 0, sub)
  end
end)

t.run()
fs.remove(dir, { recursive = true })
