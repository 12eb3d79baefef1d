-- needs: slurm
-- `client run --executor slurm` says what its job is doing while it waits
-- (issue 23): PENDING with SLURM's reason, RUNNING on its node, then live
-- counts from the progress.json the client job writes once a second.
local sim = require("aibench.sim")
local client = require("aibench.client")
local fs = require("aibench.fs")
local proc = require("aibench.proc")
local time = require("aibench.time")
local aibench = require("aibench")
local t = require("aibench.testing")
local flows = dofile("tests/lua/support/flows.lua")

local dir = assert(fs.tmpdir())

--- The job folders under $AIBENCH_HOME/jobs.
local function job_dirs()
  local root = fs.join(aibench.home(), "jobs")
  local out = {}
  for _, name in ipairs(fs.list(root) or {}) do
    out[#out + 1] = fs.join(root, name)
  end
  return out
end

t.case("a SLURM client run shows PENDING with its reason, RUNNING on its node, and live counts", function()
  local s = assert(sim.start({ profile = "instant", host = "0.0.0.0" }))
  -- --begin holds the job PENDING (reason BeginTime) for two seconds.
  local h = assert(proc.spawn({
    aibench.exe(), "client", "run", "--recipe", "vllm-simple-test", "--executor", "slurm", "--url", flows.from_nodes(s.url),
    "--out-dir", fs.join(dir, "results"),
    "--set", "workload.duration_seconds=6", "--set", "workload.think_time_ms=50",
    "--set", "orchestration.sbatch_args=[--begin=now+2]",
  }, { stdout = "capture", stderr = "capture" }))
  -- While it runs, the job's progress file, each time it changes.
  local seen = {}
  local deadline = time.monotonic() + 120
  while h:running() and time.monotonic() < deadline do
    for _, d in ipairs(job_dirs()) do
      local p = client.read_progress(d)
      if p and (#seen == 0 or seen[#seen].updated_at ~= p.updated_at or seen[#seen].done ~= p.done) then
        seen[#seen + 1] = p
      end
    end
    time.sleep(0.25)
  end
  local res = assert(h:wait(30))
  s:stop()
  t.ok(res.ok, res.stdout .. "\n" .. res.stderr)

  -- The file: written during the run, its counts growing, then final.
  t.ok(#seen >= 3, "progress.json was written during the run: " .. #seen .. " versions seen")
  local running = 0
  for i, p in ipairs(seen) do
    t.eq(p.schema, "aibench.progress/1")
    t.eq(type(p.done), "number")
    t.eq(p.done, p.completed + p.errors)
    if i > 1 then
      t.ok(p.done >= seen[i - 1].done, "done never goes back: " .. seen[i - 1].done .. " then " .. p.done)
    end
    if not p.finished then
      running = running + 1
      t.eq(p.planned_s, 6)
    end
  end
  t.ok(running >= 2, "at least two snapshots while it ran")
  t.ok(seen[#seen].done > seen[1].done, "done grew: " .. seen[1].done .. " to " .. seen[#seen].done)
  local final = assert(client.read_progress(job_dirs()[1]))
  t.eq(final.finished, true)
  t.ok(final.done > 0)

  -- The waiting side: the state with its reason, the node, the counts, the end.
  local err = res.stderr
  t.contains(err, "submitted client vllm-simple-test")
  t.contains(err, "PENDING (BeginTime")
  t.ok(err:find("client job %d+ RUNNING on %S+"), err)
  t.ok(err:find("client job %d+: %d+ done, %d+ errors, [%d.]+ req/s"), err)
  t.ok(err:find("client job %d+ COMPLETED: " .. final.done .. " done"), err)
  -- Not a terminal: lines, never a carriage return.
  t.ok(not err:find("\r", 1, true), "no in-place updates when stderr is not a terminal")
end)

t.case("on a terminal: one line, updated in place", function()
  local s = assert(sim.start({ profile = "instant", host = "0.0.0.0" }))
  local args = { aibench.exe(), "client", "run", "--recipe", "vllm-simple-test", "--executor", "slurm", "--url", flows.from_nodes(s.url),
    "--out-dir", fs.join(dir, "results"), "--set", "workload.duration_seconds=3", "--set", "workload.think_time_ms=50" }
  local quoted = {}
  for i, a in ipairs(args) do
    quoted[i] = "'" .. a:gsub("'", "'\\''") .. "'"
  end
  -- script(1) runs it on a pseudo-terminal.
  local res = assert(proc.run({ "script", "-qec", table.concat(quoted, " "), "/dev/null" }, { timeout_s = 120, env = { TERM = "xterm" } }))
  s:stop()
  t.ok(res.ok, res.stdout)
  -- The state, then the counts, each drawn over the last with a carriage return.
  t.ok(res.stdout:find("\rclient job %d+ RUNNING on %S+"), res.stdout)
  t.ok(res.stdout:find("\rclient job %d+ RUNNING on %S+: %d+ done"), res.stdout)
  t.ok(res.stdout:find("\rclient job %d+ COMPLETED: %d+ done[^\r]*\r?\n"), res.stdout)
end)

t.run()
fs.remove(dir, { recursive = true })
