-- Replays a Mooncake-style trace at its own timestamps (times --time-scale): the trace's
-- lengths, its burstiness and its prefix sharing. Prints how closely the schedule was kept
-- (inter-arrival times, send lag, offered against sent) and the server's prefix-cache hit rate.
--
--   aibench run examples/trace-replay.lua [--trace FILE] [--time-scale 0.5]
--       [--recipe vllm-server --executor slurm]
local scenario = require("aibench.scenario")

scenario.run("vllm-trace-replay", arg, {
  flags = { trace = "string", ["time-scale"] = "number", ["block-size"] = "number" },
  sets = function(o)
    if o.users or o.requests then
      error("--users and --requests: a trace sets its own load (use --time-scale)", 0)
    end
    local sets = scenario.sets(o)
    if o.trace then
      sets[#sets + 1] = "dataset.path=" .. o.trace
    end
    if o.time_scale then
      sets[#sets + 1] = "workload.time_scale=" .. o.time_scale
    end
    if o.block_size then
      sets[#sets + 1] = "dataset.block_size=" .. math.floor(o.block_size)
    end
    return sets
  end,
})
