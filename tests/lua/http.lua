-- aibench.http against a real server (the in-process simulator).
local http = require("aibench.http")
local sim = require("aibench.sim")
local json = require("aibench.json")
local t = require("aibench.testing")

local s = assert(sim.start({ profile = "instant" }))

t.case("get with status, headers, json", function()
  local r = assert(http.get(s.url .. "/v1/models"))
  t.eq(r.status, 200)
  t.eq(r.ok, true)
  t.contains(r.headers["content-type"], "application/json")
  t.eq(r.json.data[1].id, s.model)
  t.eq(json.decode(r.body).object, "list")
  t.ok(r.elapsed_s >= 0)
end)

t.case("post json body", function()
  local r = assert(http.post(s.url .. "/v1/completions", { json = { prompt = "a b c", max_tokens = 3, ignore_eos = true } }))
  t.eq(r.status, 200)
  t.eq(r.json.usage.completion_tokens, 3)
  t.eq(r.json.usage.prompt_tokens, 3)
end)

t.case("request with method, headers, raw body", function()
  local r = assert(http.request({
    url = s.url .. "/v1/completions",
    method = "POST",
    headers = { ["content-type"] = "application/json" },
    body = '{"prompt": "x", "model": "nope"}',
  }))
  t.eq(r.status, 404)
  t.eq(r.ok, false)
  t.eq(r.json.error.type, "NotFoundError")
end)

t.case("connection refused and timeout are nil, err", function()
  local v, err = http.get("http://127.0.0.1:1/health", { timeout_s = 2 })
  t.fails("connect", v, err)
  t.contains(err.message, "127.0.0.1:1")
  local slow = assert(sim.start({ profile = "opt-125m-cpu" }))
  local v2, err2 = http.post(slow.url .. "/v1/completions", { json = { prompt = "x", max_tokens = 500, ignore_eos = true }, timeout_s = 0.2 })
  t.fails("timeout", v2, err2)
  slow:stop()
end)

t.case("misuse raises", function()
  t.raises("invalid URL", http.get, "not a url")
  t.raises("unknown option 'timeout'", http.get, s.url, { timeout = 1 })
  t.raises("give 'body' or 'json', not both", http.post, s.url, { body = "x", json = {} })
end)

t.run()
s:stop()
