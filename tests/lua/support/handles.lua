-- One constructor per handle type a native module returns (for stubs.lua).
local proc = require("aibench.proc")
local sim = require("aibench.sim")

return {
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
