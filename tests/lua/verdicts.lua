-- The client check's three verdicts in every report (a figure just over its
-- limit is borderline, yellow, not a red CLIENT-LIMITED; issue 23), and
-- colour: on a terminal only, never with NO_COLOR, always when asked.
local bench = require("aibench.bench")
local sim = require("aibench.sim")
local report = require("aibench.report")
local format = require("aibench.report.format")
local results = require("aibench.results")
local fs = require("aibench.fs")
local json = require("aibench.json")
local proc = require("aibench.proc")
local env = require("aibench.env")
local aibench = require("aibench")
local t = require("aibench.testing")

local dir = assert(fs.tmpdir())
local ESC = "\27"

local s = assert(sim.start({ profile = "instant" }))
local r = assert(bench.run({
  target = { url = s.url },
  workload = { pattern = "closed-loop", users = 1, requests_per_user = 20 },
  dataset = { prompt_tokens = 16, output_tokens = 4 },
  progress = false,
}))
s:stop()
local base = results.record({ recipe = { name = "verdicts", service_name = "vllm" }, executor = "local", urls = { s.url }, bench = r })

--- The run as a result with this validity (merged over the measured one),
--- saved as `name`.json; returns the record.
local function as(name, validity, warnings)
  local rec = json.decode(json.encode(base))
  for k, v in pairs(validity) do
    rec.bench.validity[k] = v
  end
  rec.bench.warnings = json.array(warnings)
  rec.path = fs.join(dir, name .. ".json")
  assert(fs.write(rec.path, json.encode(rec)))
  return rec
end

local borderline = as("borderline", {
  client_limited = false,
  client_limited_borderline = true,
  loop_delay_p99_ms = 5.1,
  reasons = json.array(),
  borderline = { "loop delay p99 5.1 ms vs 5 ms limit" },
})
local limited = as("limited", {
  client_limited = true,
  client_limited_borderline = false,
  loop_delay_p99_ms = 12,
  reasons = { "its event loop ran late" },
  borderline = json.array(),
}, { "the client may have been the bottleneck, not the server: its event loop ran late" })
local calm = as("calm", { client_limited = false, client_limited_borderline = false, reasons = json.array(), borderline = json.array() })

t.case("the engine's result carries the verdict's fields", function()
  local v = r.validity
  t.eq(type(v.client_limited_borderline), "boolean")
  t.eq(type(v.borderline), "table")
  -- The engine reads them back (bench.result), and so does an old file without them.
  local back = bench.result(json.encode(borderline.bench))
  t.eq(back.validity.client_limited_borderline, true)
  t.eq(back.validity.borderline[1], "loop delay p99 5.1 ms vs 5 ms limit")
  local old = json.decode(json.encode(limited.bench))
  old.validity.client_limited_borderline, old.validity.borderline = nil, nil
  t.eq(bench.result(json.encode(old)).validity.client_limited_borderline, false)
end)

t.case("borderline: the figure and the limit, not CLIENT-LIMITED, an amber banner", function()
  local text = report.terminal({ borderline })
  t.contains(text, "-> borderline: loop delay p99 5.1 ms vs 5 ms limit")
  t.ok(not text:find("CLIENT-LIMITED", 1, true), text)
  t.contains(report.markdown({ borderline }), "-> borderline: loop delay p99 5.1 ms vs 5 ms limit")
  local html = report.html({ borderline })
  t.contains(html, '<p class="warning borderline">Borderline: loop delay p99 5.1 ms vs 5 ms limit')
  t.ok(not html:find('class="warning client-limited"', 1, true), "no red banner for a borderline run")
  -- A clear case keeps the red banner and CLIENT-LIMITED.
  t.contains(report.terminal({ limited }), "-> CLIENT-LIMITED")
  t.contains(report.html({ limited }), '<p class="warning client-limited">CLIENT-LIMITED: ')
  t.ok(not report.html({ limited }):find("warning borderline", 1, true))
  t.contains(report.terminal({ calm }), "-> not limiting")
end)

t.case("results saved before borderline verdicts read as they were", function()
  local old = json.decode(json.encode(limited))
  old.bench.validity.client_limited_borderline, old.bench.validity.borderline = nil, nil
  t.eq(format.verdict(old.bench.validity), "limited")
  t.contains(report.terminal({ old }), "-> CLIENT-LIMITED")
  old.bench.validity.client_limited = false
  t.eq(format.verdict(old.bench.validity), "ok")
  t.contains(report.terminal({ old }), "-> not limiting")
end)

t.case("colour: decided in one place, from the environment and the stream", function()
  local saved = { env.get("AIBENCH_COLOR"), env.get("NO_COLOR") }
  local text = report.terminal({ limited, borderline })
  -- This test's output is captured (a pipe): no colour by default.
  env.set("AIBENCH_COLOR", nil)
  env.set("NO_COLOR", nil)
  t.eq(env.is_terminal("stdout"), false)
  t.eq(format.paint(text, "stdout"), text)
  env.set("AIBENCH_COLOR", "always")
  local painted = format.paint(text, "stdout")
  t.contains(painted, ESC .. "[1;31mCLIENT-LIMITED" .. ESC .. "[0m")
  t.contains(painted, ESC .. "[33mborderline: loop delay p99 5.1 ms vs 5 ms limit" .. ESC .. "[0m")
  t.contains(painted, ESC .. "[1;31mwarning: the client may have been the bottleneck")
  -- Only colour is added: without the escapes it is the text.
  t.eq((painted:gsub(ESC .. "%[[%d;]*m", "")), text)
  env.set("AIBENCH_COLOR", "never")
  t.eq(format.paint(text, "stdout"), text)
  env.set("AIBENCH_COLOR", nil)
  env.set("NO_COLOR", "1")
  t.eq(format.color_on("stdout"), false)
  local ok, err = pcall(env.is_terminal, "stdlog")
  t.ok(not ok)
  t.contains(tostring(err), 'expected "stdin", "stdout" or "stderr", got "stdlog"')
  env.set("AIBENCH_COLOR", saved[1])
  env.set("NO_COLOR", saved[2])
end)

--- `aibench report` on the two runs: piped, or on a real terminal
--- (script(1) gives it a pseudo-terminal), with `vars` in its environment.
local function report_output(vars, terminal)
  local cmd = { aibench.exe(), "report", limited.path, borderline.path }
  if terminal then
    local quoted = {}
    for i, a in ipairs(cmd) do
      quoted[i] = "'" .. a:gsub("'", "'\\''") .. "'"
    end
    cmd = { "script", "-qec", table.concat(quoted, " "), "/dev/null" }
  end
  local all = { AIBENCH_COLOR = "", NO_COLOR = "", TERM = "xterm" }
  for k, v in pairs(vars) do
    all[k] = v
  end
  local res = assert(proc.run(cmd, { env = all, timeout_s = 60 }))
  t.ok(res.ok, res.stdout .. res.stderr)
  t.contains(res.stdout, "CLIENT-LIMITED")
  return res.stdout
end

t.case("colour on the command line: a terminal has it, a pipe and NO_COLOR do not", function()
  t.ok(not report_output({}, false):find(ESC, 1, true), "piped output has no escape")
  t.contains(report_output({}, true), ESC .. "[1;31mCLIENT-LIMITED")
  t.contains(report_output({}, true), ESC .. "[33mborderline: ")
  t.ok(not report_output({ NO_COLOR = "1" }, true):find(ESC, 1, true), "NO_COLOR: no escape on a terminal")
  t.ok(not report_output({ AIBENCH_COLOR = "never" }, true):find(ESC, 1, true))
  t.contains(report_output({ AIBENCH_COLOR = "always" }, false), ESC .. "[1;31mCLIENT-LIMITED")
  -- A bad value says what it takes, and colours as auto would.
  local cmd = { aibench.exe(), "report", limited.path }
  local res = assert(proc.run(cmd, { env = { AIBENCH_COLOR = "sometimes", NO_COLOR = "" } }))
  t.contains(res.stderr, "AIBENCH_COLOR: expected auto, always or never, got 'sometimes'")
  t.ok(not res.stdout:find(ESC, 1, true))
end)

t.run()
fs.remove(dir, { recursive = true })
