-- One constructor per handle type a native module returns (for stubs.lua).
local proc = require("aibench.proc")
local sim = require("aibench.sim")

return {
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
