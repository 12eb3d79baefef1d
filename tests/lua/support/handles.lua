-- One constructor per handle type a native module returns (for stubs.lua).
local proc = require("aibench.proc")
local sim = require("aibench.sim")

local bench = require("aibench.bench")

--- A small spec: one request to a port nothing listens on (it fails fast).
local function small_spec()
  return { target = { url = "http://127.0.0.1:9", model = "m" }, workload = { pattern = "closed-loop", users = 1, total_requests = 1 } }
end

return {
  {
    module = "aibench.bench",
    class = "Spec",
    make = function()
      return bench.validate(small_spec())
    end,
  },
  {
    module = "aibench.bench",
    class = "Result",
    make = function()
      return assert(bench.run(small_spec(), { progress = false }))
    end,
  },
  {
    module = "aibench.local",
    class = "Job", -- documented with aibench.Executor
    make = function()
      return require("aibench.local").job("local-none")
    end,
  },
  {
    module = "aibench.slurm",
    class = "Job", -- documented with aibench.Executor
    make = function()
      return require("aibench.slurm").job("1")
    end,
  },
  {
    module = "aibench.prom",
    class = "Client",
    make = function()
      return require("aibench.prom").client("http://127.0.0.1:9")
    end,
  },
  {
    module = "aibench.proc",
    class = "Handle",
    make = function()
      return assert(proc.spawn({ "true" }))
    end,
    cleanup = function(h)
      h:wait()
    end,
  },
  {
    module = "aibench.sim",
    class = "Handle",
    make = function()
      return assert(sim.start({ profile = "instant" }))
    end,
    cleanup = function(h)
      h:stop()
    end,
  },
}
