-- Multi-turn chat sessions: each session resends its whole conversation with every turn,
-- so the server's prefix cache decides the later turns' TTFT. Prints TTFT by turn and the
-- server's prefix-cache hit rate. Synthetic conversations by default; --sharegpt PATH
-- replays a ShareGPT file's conversations instead.
--
--   aibench run examples/chat-sessions.lua [--users 8] [--duration 60] [--sharegpt FILE]
--       [--recipe vllm-server --executor slurm]
local scenario = require("aibench.scenario")
local report = require("aibench.report")
local json = require("aibench.json")

local o = scenario.args(arg, { sharegpt = "string", turns = "number" })
local client = o.sharegpt and "vllm-chat-sessions-sharegpt" or "vllm-chat-sessions"
if o.requests then
  error("--requests: sessions run for --duration", 0)
end
-- Sessions have users, not concurrent_users: the common flags by hand.
local sets = {}
if o.duration then
  sets[#sets + 1] = "workload.duration_seconds=" .. o.duration
end
if o.users then
  sets[#sets + 1] = "workload.users=" .. math.floor(o.users)
end
if o.sharegpt then
  sets[#sets + 1] = "dataset.path=" .. o.sharegpt
end
if o.turns then
  sets[#sets + 1] = "workload.turns=" .. math.floor(o.turns)
end
scenario.with_environment(o, function(env)
  local rec = scenario.bench(env, client, o, sets)
  print(report.summary(rec.bench))
  if rec.server ~= json.null then
    print(report.server_summary(rec.server, rec.bench))
  end
  local hpc = report.hpc_summary(rec)
  if hpc ~= "" then
    print(hpc)
  end
  print("\nresult: " .. rec.path)
  return rec
end)
