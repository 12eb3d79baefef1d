-- Multi-turn chat sessions: each session resends its whole conversation with every turn,
-- so the server's prefix cache decides the later turns' TTFT. Prints TTFT by turn and the
-- server's prefix-cache hit rate. Synthetic conversations by default; --sharegpt PATH
-- replays a ShareGPT file's conversations instead.
--
--   aibench run examples/chat-sessions.lua [--users 8] [--duration 60] [--turns 5] [--sharegpt FILE]
--       [--recipe vllm-server --executor slurm]
local scenario = require("aibench.scenario")

-- Which recipe depends on a flag: read them once here, then again by scenario.run.
local peek = scenario.args(arg, { sharegpt = "string", turns = "number" })
scenario.run(peek.sharegpt and "vllm-chat-sessions-sharegpt" or "vllm-chat-sessions", arg, {
  flags = { sharegpt = "string", turns = "number" },
  sets = function(o)
    if o.requests then
      error("--requests: sessions run for --duration", 0)
    end
    -- Sessions have users, not concurrent_users: the common flags by hand.
    local sets = {}
    for _, kv in ipairs({
      { o.duration, "workload.duration_seconds=" },
      { o.users and math.floor(o.users), "workload.users=" },
      { o.turns and math.floor(o.turns), "workload.turns=" },
      { o.sharegpt, "dataset.path=" },
    }) do
      if kv[1] then
        sets[#sets + 1] = kv[2] .. kv[1]
      end
    end
    return sets
  end,
})
