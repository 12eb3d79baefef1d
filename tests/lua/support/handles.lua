-- One constructor per handle type a native module returns (for stubs.lua).
local proc = require("aibench.proc")

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
}
