-- exclusive
-- The load sent is the load asked: synthetic prompts of exact lengths with a
-- real byte-level BPE tokenizer (local, or the server's /tokenize), chat
-- prompts counted with the template, token-id prompts, and the simulator
-- counting with the same tokenizer (usage and vllm:prompt_tokens_total).
-- Asked versus served and the client check in every result.
local bench = require("aibench.bench")
local sim = require("aibench.sim")
local prom = require("aibench.prom")
local t = require("aibench.testing")

local TOK = "tests/fixtures/tokenizer-en-bpe-8k"
local s = assert(sim.start({ profile = "instant", tokenizer = TOK }))

local function prompt_tokens_total()
  local fams = assert(prom.parse(s:metrics()))
  local n = 0
  for _, smp in ipairs(fams["vllm:prompt_tokens_total"].samples) do
    n = n + smp.value
  end
  return n
end

local function run(target, dataset, requests, workload)
  local tg = { url = s.url }
  for k, v in pairs(target) do
    tg[k] = v
  end
  local before = prompt_tokens_total()
  local r = assert(bench.run({
    target = tg,
    workload = workload or { pattern = "closed-loop", users = 4, total_requests = requests or 12 },
    dataset = dataset,
    progress = false,
  }))
  return r, prompt_tokens_total() - before
end

local function exact(r, asked, counted, what)
  t.eq(r.errors, 0, what .. ": errors")
  local p = r.asked_vs_served.prompt
  t.eq(p.requests, r.successes, what .. ": every success has usage")
  t.eq(p.asked_mean, asked, what .. ": asked")
  t.eq(p.served_mean, asked, what .. ": served (usage)")
  t.eq(p.worst_abs, 0, what .. ": worst request")
  t.eq(r.asked_vs_served.served_prompt_tokens.max, asked, what .. ": served lengths")
  t.eq(counted, asked * r.successes, what .. ": vllm:prompt_tokens_total")
  for _, w in ipairs(r.warnings) do
    t.ok(not w:find("prompt", 1, true), what .. ": no warning on prompts: " .. w)
  end
end

t.case("local tokenizer: 32, 128, 1000 and 4000 tokens arrive exactly", function()
  for _, n in ipairs({ 32, 128, 1000, 4000 }) do
    local r, counted = run({ tokenizer = TOK }, { prompt_tokens = n, output_tokens = 4 })
    t.contains(r.prompt_tokens_source, "tokenizer " .. TOK)
    exact(r, n, counted, "local " .. n)
    t.eq(r.asked_vs_served.output.served_mean, 4)
  end
end)

t.case("server mode counts as the local tokenizer does (default when /tokenize answers)", function()
  for _, n in ipairs({ 32, 1000 }) do
    local r, counted = run({ tokenizer = "server" }, { prompt_tokens = n, output_tokens = 4 })
    t.eq(r.prompt_tokens_source, "server /tokenize")
    exact(r, n, counted, "server " .. n)
  end
  local r, counted = run({}, { prompt_tokens = 128, output_tokens = 4 })
  t.eq(r.prompt_tokens_source, "server /tokenize")
  exact(r, 128, counted, "default")
end)

t.case("dataset.tokenizer is an alias; the two may not disagree", function()
  local r, counted = run({}, { prompt_tokens = 64, output_tokens = 4, tokenizer = TOK })
  t.contains(r.prompt_tokens_source, TOK)
  exact(r, 64, counted, "alias")
  t.raises("dataset.tokenizer: target.tokenizer says otherwise", bench.run, {
    target = { url = s.url, tokenizer = "server" },
    workload = { pattern = "closed-loop", users = 1, total_requests = 1 },
    dataset = { prompt_tokens = 8, tokenizer = TOK },
    progress = false,
  })
end)

t.case("chat prompts count the template, as vLLM's usage does", function()
  for _, tk in ipairs({ TOK, "server" }) do
    local r, counted = run({ api = "openai-chat", tokenizer = tk }, { prompt_tokens = 64, output_tokens = 4 })
    exact(r, 64, counted, "chat " .. tk)
  end
end)

t.case("token-id prompts are accepted and counted", function()
  local r, counted = run({ tokenizer = TOK, prompt_format = "ids" }, { prompt_tokens = 100, output_tokens = 4 })
  exact(r, 100, counted, "ids")
  t.raises("target.prompt_format: token-id prompts are for api = \"openai-completions\"", bench.run, {
    target = { url = s.url, api = "openai-chat", prompt_format = "ids" },
    workload = { pattern = "closed-loop", users = 1, total_requests = 1 },
    progress = false,
  })
end)

t.case("varied spread lengths are each exact", function()
  local r, counted = run({ tokenizer = TOK }, { prompt_tokens = 200, spread = 0.5, output_tokens = 4 }, 40)
  local p = r.asked_vs_served.prompt
  t.eq(p.worst_abs, 0)
  t.eq(p.asked_total, p.served_total)
  t.eq(counted, p.served_total)
  local l = r.asked_vs_served.served_prompt_tokens
  t.ok(l.min < 200 and l.max > 200, "lengths vary: " .. l.min .. ".." .. l.max)
end)

t.case("words are approximate: the result says so and warns when served differs", function()
  local r = run({ tokenizer = "words" }, { prompt_tokens = 128, output_tokens = 4 })
  t.eq(r.prompt_tokens_source, "words (approximate)")
  t.contains(r.warnings[1], "prompt lengths are approximate")
  local p = r.asked_vs_served.prompt
  t.ok(p.served_mean > 128 * 1.02, "BPE splits some words: " .. p.served_mean)
  t.contains(r.warnings[2], "the load sent is not the load asked")
  t.contains(r.warnings[2], string.format("%.1f prompt tokens", p.served_mean))
end)

t.case("a calm run is not client-limited, and says what it measured", function()
  local r = run({ tokenizer = TOK }, { prompt_tokens = 16, output_tokens = 4 }, nil,
    { pattern = "closed-loop", users = 4, think_time_ms = 20, duration_s = 1.5 })
  local v = r.validity
  t.eq(v.client_limited, false, table.concat(v.reasons, "; "))
  t.eq(#v.reasons, 0)
  t.ok(v.loop_delay_p99_ms ~= nil and v.loop_delay_p99_ms < 5, "probe timer measured")
  t.ok(v.connect_p99_ms ~= nil and v.connects == 4, "four users, four connections")
  t.ok(v.cores >= 1)
end)

t.case("a prompt the server cannot hold is refused before the run", function()
  local small = assert(sim.start({ profile = "instant", tokenizer = TOK, max_model_len = 256 }))
  t.raises("does not fit the server's max_model_len of 256", bench.run, {
    target = { url = small.url, tokenizer = TOK },
    workload = { pattern = "closed-loop", users = 1, total_requests = 1 },
    dataset = { prompt_tokens = 300, output_tokens = 4 },
    progress = false,
  })
  small:stop()
end)

t.run()
s:stop()
