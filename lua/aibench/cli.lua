--- The workflow commands of the `aibench` binary. Rust parses the flags (clap)
--- and calls `main(command, opts)`; each command returns an exit code.
-- Every module is required here, once: nothing requires this module (no
-- cycle), and loading them all costs a few milliseconds per command.
local aibench = require("aibench")
local bench = require("aibench.bench")
local fs = require("aibench.fs")
local json = require("aibench.json")
local yaml = require("aibench.yaml")
local registry = require("aibench.registry")
local util = require("aibench.util")
local recipe = require("aibench.recipe")
local report = require("aibench.report")
local format = require("aibench.report.format")
local results = require("aibench.results")
local deploy = require("aibench.deploy")
local hpc = require("aibench.hpc")
local server = require("aibench.server")
local client = require("aibench.client")
local monitor = require("aibench.monitor")
local services = require("aibench.services")
local scenario = require("aibench.scenario")
local shapes = require("aibench.shapes")

local M = {}

local CliError = {}
CliError.__index = CliError
CliError.__tostring = function(e)
  return e.message
end

--- Raises a user-facing error: printed without a traceback, exits with `code`.
---@param message string
---@param code? integer default 1
function M.fail(message, code)
  error(setmetatable({ message = message, code = code or 1 }, CliError), 0)
end

--- Unwraps `value, err` results: raises a clean CLI error on failure, with
--- the error's own exit code when it has one (130 for an interrupted wait).
function M.check(v, err, what)
  if v == nil and err ~= nil then
    M.fail((what and (what .. ": ") or "") .. tostring(err.message or err), type(err) == "table" and err.code or 1)
  end
  return v
end

local present = util.present

--- The exit status a finished run earns, saying why on stderr when it is
--- not 0: 130 (SIGINT) or 143 (SIGTERM) when interrupted, 1 when the server
--- was unreachable or no request succeeded.
---@param command string for messages
---@param r table a bench result
function M.outcome(command, r)
  local code = 0
  local log = r.per_request_log
  if present(log) and present(log.error) then
    io.stderr:write("aibench ", command, ": ", report.clean(log.error), "\n")
    code = 1
  end
  if (r.not_sent or 0) > 0 then
    io.stderr:write(string.format("aibench %s: %d scheduled requests were not sent (client overloaded: workload.max_in_flight was reached, or they waited for a slot past the run's end); the run is marked client-limited\n", command, r.not_sent))
  end
  if r.interrupted then
    return aibench.exit_code(present(r.interrupted_by) and r.interrupted_by or "SIGINT")
  end
  if present(r.stopped_early) then
    io.stderr:write("aibench ", command, ": ", report.clean(r.stopped_early.message), "\n")
    code = 1
  end
  if (r.successes or 0) == 0 then
    local firsts = {}
    local classes = {}
    for class, n in pairs(r.errors_by_class or {}) do
      if n > 0 then
        classes[#classes + 1] = class
      end
    end
    table.sort(classes)
    for _, class in ipairs(classes) do
      local samples = r.error_samples and r.error_samples[class]
      firsts[#firsts + 1] = string.format("%s %d: %s", class, r.errors_by_class[class], report.clean(samples and samples[1] or "?"))
    end
    io.stderr:write(string.format("aibench %s: no request succeeded (%d sent)%s\n", command, r.total_requests or 0,
      #firsts > 0 and ("; " .. table.concat(firsts, "; ")) or ""))
    code = 1
  end
  return code
end

-- The flag that sets each spec field `aibench bench` fills in: an error
-- about the field names the flag (`target.url[2]` is --url's second value).
local BENCH_FLAGS = {
  ["workload.users"] = "--users",
  ["workload.rate"] = "--rate",
  ["workload.duration_s"] = "--duration",
  ["workload.total_requests"] = "--requests",
  ["workload.think_time_ms"] = "--think-ms",
  ["workload.warmup_s"] = "--warmup",
  ["workload.max_concurrency"] = "--max-concurrency",
  ["workload.max_in_flight"] = "--max-in-flight",
  ["workload.arrival"] = "--arrival",
  ["dataset.prompt_tokens"] = "--prompt-tokens",
  ["dataset.output_tokens"] = "--output-tokens",
  ["target.url"] = "--url",
  ["target.timeout_s"] = "--timeout",
  ["target.method"] = "--method",
  ["target.api"] = "--api",
  ["per_request_log"] = "--log",
  ["target.tokenizer"] = "--tokenizer",
  ["target.prompt_format"] = "--prompt-format",
}

--- A field error (`aibench.error_info`) in the command line's words: the
--- flag that set the field, else the field.
local function flag_message(e)
  local field = e.field or ""
  if BENCH_FLAGS[field] then
    return BENCH_FLAGS[field] .. ": " .. e.message
  end
  -- One of a repeated flag's values: `target.url[2]` is the second --url.
  local base, n = field:match("^(.-)%[(%d+)%]$")
  if base and BENCH_FLAGS[base] then
    return string.format("%s (value %s): %s", BENCH_FLAGS[base], n, e.message)
  end
  return field ~= "" and (field .. ": " .. e.message) or e.message
end

--- Runs `bench.run(spec)`; what it raises (a spec it refuses at run time: a
--- tokenizer that cannot be loaded, prompts over the server's limit) is a
--- bad flag: exit 2 with one line naming the flag.
local function run_flags(spec)
  local ok, res, err = pcall(bench.run, spec)
  if ok then
    return res, err
  end
  M.fail(flag_message(aibench.error_info(res)), 2)
end

local commands = {}

function commands.bench(o)
  local workload
  if o.rate then
    if o.users then
      M.fail("give --users (closed loop) or --rate (open loop), not both", 2)
    end
    workload = { pattern = "open-loop", rate = o.rate, arrival = o.arrival, max_concurrency = o.max_concurrency, max_in_flight = o.max_in_flight, duration_s = o.duration, total_requests = o.requests, warmup_s = o.warmup, seed = o.seed }
  else
    if o.max_in_flight or o.max_concurrency then
      M.fail(string.format("%s is for an open loop (--rate); a closed loop is bounded by --users", o.max_in_flight and "--max-in-flight" or "--max-concurrency"), 2)
    end
    workload = { pattern = "closed-loop", users = o.users or 1, think_time_ms = o.think_ms, duration_s = o.duration, warmup_s = o.warmup, seed = o.seed }
    workload.total_requests = o.requests
    if not o.duration and not o.requests then
      workload.duration_s = 10
    end
  end
  workload.keep_going = o.keep_going or nil
  local spec = {
    target = { url = #o.url == 1 and o.url[1] or o.url, api = o.api, model = o.model, timeout_s = o.timeout, stream = not o.no_stream, tokenizer = o.tokenizer, prompt_format = o.prompt_format },
    workload = workload,
    dataset = { type = "synthetic", prompt_tokens = o.prompt_tokens, output_tokens = o.output_tokens, seed = o.seed },
    per_request_log = o.log,
  }
  if o.body or o.method then
    spec.target.body = o.body
    spec.target.method = o.method
  end
  local valid, verr = bench.spec(spec)
  if not valid then
    M.fail(flag_message(verr), 2)
  end
  -- Found before the run, not after it: the result would be lost.
  for _, f in ipairs({ { "--json", o.json }, { "--log", o.log } }) do
    if f[2] then
      local ok, err = fs.writable(f[2])
      if not ok then
        M.fail(string.format("%s: cannot write '%s': %s", f[1], f[2], err.message), 2)
      end
    end
  end
  local r = M.check(run_flags(valid))
  -- The measurement is written before anything else runs on it: a summary
  -- that fails cannot lose it, and a full disk sends it to a rescue place.
  local code = 0
  local written
  if o.json then
    local where, werr = results.write(o.json, bench.to_json(r) .. "\n")
    M.check(where, werr, "writing " .. o.json)
    written = where
    if werr then
      code = 1
    end
  end
  local ok, summary = pcall(report.summary, r, { definitions = o.explain or nil })
  if ok and o.json == "-" then
    -- Standard output holds the JSON for a script; the summary goes aside.
    io.stderr:write(format.paint(summary, "stderr"), "\n")
    written = nil
  elseif ok then
    print(format.paint(summary, "stdout"))
  else
    io.stderr:write("aibench bench: warning: the summary could not be printed: ", aibench.error_message(summary), "\n")
    code = 1
  end
  if written then
    print("\nresult written to " .. written)
  end
  return math.max(M.outcome("bench", r), code)
end

local columns = report.columns

--- A recipe description for one line of a table: its first sentence, cut
--- at a word (with "...") only past `width` characters.
local function short_description(desc, width)
  desc = (desc or ""):gsub("%s+", " "):gsub("^ ", "")
  local first = desc:match("^(.-%.) ") or desc
  if #first <= width then
    return first
  end
  local cut = first:sub(1, width - 3):match("^(.*) ") or first:sub(1, width - 3)
  return cut .. "..."
end

--- `recipes`: a table, or aibench.recipes.v1 with --json (client recipes
--- with how long each runs: recipe.length).
local function recipes_table(kind, o)
  local catalog = recipe.catalog(kind)
  if o.json then
    return shapes.print(shapes.recipes(kind, catalog))
  end
  local head = { "NAME", "SERVICE", "SOURCE", "DESCRIPTION" }
  if kind == "client" then
    table.insert(head, 4, "LENGTH")
  end
  local rows = { head }
  for _, c in ipairs(catalog) do
    local doc = c.doc
    local desc = doc and short_description(doc.description, 200) or ("(invalid: " .. c.error .. ")")
    local row = { c.name, doc and (doc.service_name or "-") or "-", c.file or "stock", desc }
    if kind == "client" then
      table.insert(row, 4, doc and recipe.length(doc).text or "-")
    end
    rows[#rows + 1] = row
  end
  print(columns(rows))
  return 0
end

local function recipe_info(kind, name)
  local r, file = recipe.load(kind, name)
  print("# " .. file)
  io.write(yaml.encode(r))
  return 0
end

--- `recipes`, `info NAME`, `template [NAME]`: the same for every recipe kind.
local function recipe_action(kind, o)
  if o.action == "recipes" then
    return recipes_table(kind, o)
  elseif o.action == "info" then
    return recipe_info(kind, o.name)
  elseif o.action == "template" then
    io.write(recipe.template(kind, o.name))
    return 0
  end
end

--- Prints what SLURM accounted for stopped server jobs (hpc.stopped_accounting
--- also keeps it as accounting.json in each job's folder).
local function print_accounting(stopped)
  for _, line in ipairs(hpc.stopped_accounting(stopped)) do
    print(line)
  end
end

local function deployments_table(list)
  local rows = { { "INSTANCE", "RECIPE", "SERVICE", "EXECUTOR", "JOB", "STATE", "NODE", "URL", "AGE" } }
  for _, m in ipairs(list) do
    rows[#rows + 1] = {
      m.instance_id or "-", m.recipe or "-", m.service or "-", m.executor, m.job_id, m.state or "?",
      m.node or "-", m.instance and m.instance.url or "-", util.age(m.submitted_at),
    }
  end
  print(columns(rows))
end

function commands.server(o)
  local a = o.action
  local done = recipe_action("server", o)
  if done then
    return done
  end
  if a == "run" then
    local res = M.check(server.run({ recipe = o.recipe, count = o.count, executor = o.executor, set = o.set, dry_run = o.dry_run, timeout_s = o.timeout, detach = o.detach }))
    if res.dry_run then
      for i, s in ipairs(res.scripts) do
        if #res.scripts > 1 then
          print(string.format("# ---- instance %d of %d", i, #res.scripts))
        end
        io.write(s.script)
        -- What the job agent runs on each node (after `exit`, so commented:
        -- the output stays a job script that sbatch takes as it is).
        local node_script = s.files[s.meta.dir .. "/service.sh"]
        if node_script then
          print("# ---- service.sh, run by the job agent" .. (s.meta.nodes and (" on each of the " .. s.meta.nodes .. " nodes") or "")
            .. "; {placeholders} are filled on the node")
          for line in (node_script:gsub("\n$", "") .. "\n"):gmatch("(.-)\n") do
            print(line == "" and "#" or ("# " .. line))
          end
        end
      end
      return 0
    end
    deployments_table(res)
    return 0
  elseif a == "list" then
    local list = M.check(server.list({ all = o.all }))
    if o.json then
      return shapes.print(shapes.deployments("server", list))
    end
    deployments_table(list)
    return 0
  elseif a == "status" then
    local list = {}
    for _, m in ipairs(M.check(server.list({ all = true }))) do
      if not o.id or m.instance_id == o.id or m.job_id == o.id or (m.instance_id or ""):sub(1, #o.id) == o.id then
        list[#list + 1] = m
      end
    end
    if o.id and #list == 0 then
      M.fail(string.format("no server with id '%s' (see `aibench server list --all`)", o.id), 1)
    end
    if o.json then
      return shapes.print(shapes.server_status(list))
    end
    for _, m in ipairs(list) do
      print(string.format("%s  %s  job %s (%s) %s%s", m.instance_id, m.recipe, m.job_id, m.executor, m.state, m.reason and (" - " .. m.reason) or ""))
      if m.state == "PENDING" then
        print("  pending: " .. (m.reason or "no reason given") .. (m.expected_start and ("; expected to start " .. m.expected_start) or "; SLURM gives no expected start"))
      end
      print("  node " .. tostring(m.node or "-") .. "  url " .. (m.instance and m.instance.url or "-") .. "  folder " .. m.dir)
      if m.instance then
        print("  registered " .. m.instance.registered_at .. " as " .. m.service .. ": " .. json.encode(m.instance.ports) .. " ports")
        local tl = hpc.timeline(m.instance.extra and m.instance.extra.timeline)
        if tl then
          print("  " .. format.timeline_text(tl))
        end
      end
      if deploy.is_final(m.state) then
        print(deploy.log_tail(m, 5))
      end
    end
    return 0
  elseif a == "stop" then
    local stopped = M.check(server.stop(o.id))
    deployments_table(stopped)
    print_accounting(stopped)
    return 0
  elseif a == "stop-all" then
    local stopped = M.check(server.stop_all())
    print(string.format("stopped %d server deployment(s)", #stopped))
    print_accounting(stopped)
    return 0
  end
  M.fail("unknown server action " .. tostring(a), 2)
end

function commands.client(o)
  local a = o.action
  local done = recipe_action("client", o)
  if done then
    return done
  end
  if a == "run" then
    local saved = M.check(client.run({ recipe = o.recipe, runs = o.runs, executor = o.executor, set = o.set, url = o.url, out_dir = o.out_dir, detach = o.detach }))
    if o.detach then
      deployments_table(saved)
      for _, m in ipairs(saved) do
        print(string.format("result of job %s: %s", m.job_id, fs.join(m.dir, "result.json")))
      end
      return 0
    end
    local code = 0
    for i, rec in ipairs(saved) do
      if #saved > 1 then
        print(string.format("== run %d of %d", i, #saved))
      end
      -- After the last run: the definitions when asked (--explain), else a
      -- one-line pointer; nothing after the others.
      local definitions = false
      if i == #saved then
        definitions = o.explain and true or nil
      end
      scenario.print(rec, { definitions = definitions })
      local c = M.outcome("client run", rec.bench)
      if c == 0 and rec.rescued then
        c = 1
      end
      if c ~= 0 and (code == 0 or rec.bench.interrupted) then
        code = c
      end
    end
    return code
  elseif a == "list" then
    local list = M.check(client.list({ all = o.all }))
    if o.json then
      return shapes.print(shapes.deployments("client", list))
    end
    deployments_table(list)
    return 0
  elseif a == "stop-all" then
    local stopped = M.check(deploy.stop_all("client"))
    print(string.format("stopped %d client job(s)", #stopped))
    return 0
  end
  M.fail("unknown client action " .. tostring(a), 2)
end

function commands.monitor(o)
  local a = o.action
  local done = recipe_action("monitor", o)
  if done then
    return done
  end
  if a == "start" then
    local m = M.check(monitor.start({ recipe = o.recipe, executor = o.executor, set = o.set, detach = o.detach }))
    if o.detach then
      deployments_table({ m })
      return 0
    end
    print(string.format("monitor %s: Prometheus %s (job %s on %s)", m.instance_id, m.url, m.job_id, m.node or "?"))
    print("UI from a laptop: " .. monitor.ssh_line(m) .. "   then open http://localhost:" .. m.instance.ports[1])
    return 0
  elseif a == "list" then
    local list = M.check(monitor.list({ all = o.all }))
    if o.json then
      return shapes.print(shapes.deployments("monitor", list))
    end
    deployments_table(list)
    return 0
  elseif a == "status" then
    -- An id, or the metas list just refreshed (not looked up again).
    local which = { o.id }
    if not o.id then
      which = M.check(monitor.list())
    end
    local statuses = {}
    for i, id in ipairs(which) do
      local st, err = monitor.status(id)
      if not st and o.id then
        M.check(st, err)
      end
      -- One monitor that does not answer (still PENDING, its Prometheus
      -- gone) does not hide the others: it is listed with why.
      statuses[i] = st or { monitor = id, targets = {}, alerts = {}, error = err and err.message or "no answer" }
    end
    if o.json then
      return shapes.print(shapes.monitor_status(statuses))
    end
    if #statuses == 0 then
      print("no monitor is running")
      return 0
    end
    for _, st in ipairs(statuses) do
      if st.error then
        print(string.format("monitor %s  job %s %s: %s", st.monitor.instance_id, st.monitor.job_id or "-", st.monitor.state or "?", report.clean(st.error)))
        goto next_monitor
      end
      print(string.format("monitor %s  %s  job %s %s", st.monitor.instance_id, st.monitor.client.url, st.monitor.job_id, st.monitor.state))
      local rows = { { "TARGET", "JOB", "HEALTH", "LAST SCRAPE", "ERROR" } }
      for _, tg in ipairs(st.targets) do
        rows[#rows + 1] = { tg.scrapeUrl, tg.labels.job or "-", tg.health, monitor.scrape_time(tg), tg.lastError ~= "" and tg.lastError or "-" }
      end
      print(columns(rows))
      local firing = 0
      for _, al in ipairs(st.alerts) do
        if al.state == "firing" then
          firing = firing + 1
          print(string.format("ALERT FIRING  %s  %s  (since %s)", al.labels.alertname, al.annotations and al.annotations.summary or "", al.activeAt or "?"))
        elseif al.state == "pending" then
          print(string.format("alert pending %s", al.labels.alertname))
        end
      end
      if firing == 0 then
        print("no alert firing")
      end
      ::next_monitor::
    end
    return 0
  elseif a == "stop" then
    deployments_table(M.check(monitor.stop(o.id)))
    return 0
  elseif a == "stop-all" then
    local stopped = M.check(monitor.stop_all())
    print(string.format("stopped %d monitor(s)", #stopped))
    return 0
  elseif a == "export" then
    local text = M.check(monitor.export({ id = o.id, format = o.format, type = o.kind, start = o.start, ["end"] = o["end"], step = o.step }))
    if o.out then
      local ok, err = fs.write(o.out, text, { mkdir = true })
      M.check(ok, err, "writing " .. o.out)
      io.stderr:write("exported to " .. o.out .. "\n")
    else
      io.write(text)
    end
    return 0
  end
  M.fail("unknown monitor action " .. tostring(a), 2)
end

--- `report --threshold`: a relative change, as a fraction of the baseline
--- (0.1 flags a metric worse by more than 10%; p99s at twice that). It
--- must be a finite number above 0 and below 10; at 1 or more, throughput
--- and goodput (which cannot fall by more than 100%) are never flagged, so
--- that gets a warning (a percentage typed as a fraction?). Non-finite
--- values (nan, inf) reach Lua as nil: JSON has no such numbers.
local function report_threshold(v)
  if type(v) ~= "number" or v ~= v or v - v ~= 0 then
    M.fail(string.format("--threshold: expected a finite number > 0, a fraction of the baseline like 0.1 (flags what got worse by more than 10%%), got %s",
      v == nil and "a value that is not a finite number (nan or inf)" or tostring(v)), 2)
  end
  if not (v > 0 and v < 10) then
    M.fail(string.format("--threshold: expected a number > 0 and < 10, a fraction of the baseline like 0.1 (flags what got worse by more than 10%%), got %g", v), 2)
  end
  if v >= 1 then
    io.stderr:write(string.format("aibench report: warning: --threshold %g flags only what got worse by more than %.0f%% (throughput and goodput can never drop that far); for %g%% give --threshold %g\n",
      v, 100 * v, v, v / 100))
  end
  return v
end

function commands.report(o)
  local clean = report.clean
  local threshold = report_threshold(o.threshold)
  -- A file in a folder that cannot be read is skipped with a warning; one
  -- named on the command line is an error (report.load).
  local records, err, skipped = report.load(o.files)
  if not records then
    M.fail(clean(tostring(err and err.message or err)), 1)
  end
  for _, s in ipairs(skipped or {}) do
    io.stderr:write("aibench report: warning: skipped ", clean(s.message), "\n")
  end
  -- An output that is one of the inputs (by any name, read or skipped)
  -- would destroy it; so would --out and --html naming one file.
  local inputs = {}
  for _, rec in ipairs(records) do
    inputs[#inputs + 1] = rec.path
  end
  for _, s in ipairs(skipped or {}) do
    inputs[#inputs + 1] = s.path
  end
  if o.out and o.html and (o.out == o.html or fs.same_file(o.out, o.html)) then
    M.fail(string.format("--out and --html name the same file '%s'", clean(o.out)), 2)
  end
  for _, f in ipairs({ { "--out", o.out }, { "--html", o.html } }) do
    if f[2] then
      for _, p in ipairs(inputs) do
        if fs.same_file(f[2], p) then
          M.fail(string.format("%s: '%s' is one of the inputs (%s); choose another file", f[1], clean(f[2]), clean(p)), 2)
        end
      end
      local okw, werr = fs.writable(f[2])
      if not okw then
        M.fail(string.format("%s: cannot write '%s': %s", f[1], clean(f[2]), werr.message), 2)
      end
    end
  end
  local opts = { compare = o.compare, threshold = threshold, explain = o.explain }
  if o.compare and #records < 2 then
    M.fail("--compare needs two or more results", 2)
  end
  local text
  if o.json then
    -- The summary figures for scripts (report.data); skipped files are in it too.
    text = json.encode(report.data(records, opts, skipped), { pretty = true }) .. "\n"
  else
    text = o.md and report.markdown(records, opts) or report.terminal(records, opts)
  end
  if o.out then
    local ok, err = fs.write(o.out, text, { mkdir = true })
    M.check(ok, err, "writing " .. o.out)
    io.stderr:write("report written to " .. o.out .. "\n")
  else
    -- Verdicts and warnings in colour on a terminal (the terminal report only).
    local shown = (o.json or o.md) and text or format.paint(text, "stdout")
    io.write(shown, text:sub(-1) == "\n" and "" or "\n")
  end
  if o.html then
    local ok, err = fs.write(o.html, report.html(records, opts), { mkdir = true })
    M.check(ok, err, "writing " .. o.html)
    io.stderr:write("HTML report written to " .. o.html .. "\n")
  end
  if o.compare and report.compare(records, opts).regressions > 0 then
    return 3
  end
  return 0
end

--- `results list [DIR]`: one line per result file, oldest first, with its
--- key figures (results.browse); unreadable files after, with the reason.
function commands.results(o)
  local list = M.check(results.browse(o.dir))
  if o.json then
    return shapes.print(shapes.document("results", "results", list, { dir = o.dir }))
  end
  local rows = { { "ID", "RECIPE", "STARTED", "REQUESTS", "ERRORS", "REQ/S", "OUT TOK/S", "TTFT P50", "TTFT P99", "TPOT P50" } }
  local bad = {}
  local num = format.num
  for _, e in ipairs(list) do
    if e.error ~= json.null then
      bad[#bad + 1] = string.format("  %s: %s", e.path, e.error)
    else
      rows[#rows + 1] = {
        e.id, report.clean(tostring(present(e.recipe) and e.recipe or "-")), present(e.started_at) and tostring(e.started_at) or "-",
        num(e.total_requests, 0), num(e.errors, 0), num(e.throughput_req_per_sec, 2), num(e.tokens.output_per_s, 1),
        num(e.ttft_ms.p50, 2), num(e.ttft_ms.p99, 2), num(e.tpot_ms.p50, 2),
      }
    end
  end
  if #list == 0 then
    print(string.format("no result files (*.json) in %s", o.dir))
    return 0
  end
  if #rows > 1 then
    print(columns(rows))
    print("(times in ms; the full report of one: aibench report " .. fs.join(o.dir, "ID.json") .. ")")
  end
  if #bad > 0 then
    print(string.format("%d file%s could not be read:", #bad, #bad == 1 and "" or "s"))
    print(report.clean(table.concat(bad, "\n")))
  end
  return 0
end

commands["job-monitor"] = function(o)
  return monitor.job_main(o.spec)
end

commands["job-client"] = function(o)
  -- JSON nulls (absent flags) are not values.
  local function opt(v)
    return present(v) and v or nil
  end
  local gang = opt(o.gang) and { dir = o.gang, rank = opt(o.rank), size = opt(o.size) } or nil
  local r = client.exec(o.spec, o.out, gang)
  return r.interrupted and aibench.exit_code(present(r.interrupted_by) and r.interrupted_by or "SIGINT") or 0
end

function commands.services(o)
  local a = o.action
  if a == "list" then
    local rows = { { "SERVICE", "INSTANCE", "URL", "NODE", "JOB", "EXECUTOR", "STATUS", "REGISTERED" } }
    local scan = M.check(services.scan())
    if o.json then
      return shapes.print(shapes.services(scan, registry.dir()))
    end
    for _, s in ipairs(scan.names) do
      for _, i in ipairs(scan.services[s]) do
        rows[#rows + 1] = { s, i.instance_id, i.url, i.node, i.job_id, i.executor, i.status, util.age(i.registered_at) .. " ago" }
      end
    end
    if #rows == 1 then
      print("no service is registered (" .. registry.dir() .. ")")
    else
      print(columns(rows))
    end
    return 0
  elseif a == "show" then
    local list = M.check(registry.list(o.name))
    if #list == 0 then
      local names = M.check(registry.services())
      M.fail(string.format("no instance of service '%s' is registered%s", o.name, util.did_you_mean(o.name, names)), 1)
    end
    print(json.encode(list, { pretty = true }))
    return 0
  elseif a == "clear" then
    local n, files = registry.clear(o.name)
    M.check(n, files)
    for _, f in ipairs(files) do
      print(string.format("removed %s (%s)", f.path, f.corrupt and "it was not a registry file" or string.format("%d entr%s", f.entries, f.entries == 1 and "y" or "ies")))
    end
    print(string.format("removed %d registry entr%s%s", n, n == 1 and "y" or "ies", o.name and (" of " .. o.name) or ""))
    return 0
  elseif a == "prune" then
    local removed, moved = services.prune()
    M.check(removed, moved)
    for _, c in ipairs(moved) do
      print(string.format("moved %s aside to %s (not a registry file: %s)", c.path, c.moved_to, c.message))
    end
    for _, r in ipairs(removed) do
      print(string.format("removed %s instance %s (job %s is %s)", r.service, r.instance_id, r.job_id, r.state))
    end
    print(string.format("pruned %d stale entr%s%s", #removed, #removed == 1 and "y" or "ies",
      #moved > 0 and string.format(", moved %d corrupt file%s aside", #moved, #moved == 1 and "" or "s") or ""))
    return 0
  end
  M.fail("unknown services action " .. tostring(a), 2)
end

--- Entry point from Rust.
---@param command string
---@param opts table
---@return integer exit code
function M.main(command, opts)
  local f = commands[command]
  if not f then
    io.stderr:write("aibench: no such command: ", command, "\n")
    return 2
  end
  local ok, res = xpcall(f, function(e)
    if getmetatable(e) == CliError then
      return e
    end
    if util.is_usage_error(e) then
      return setmetatable({ message = e.message, code = 2 }, CliError)
    end
    -- Errors raised without a source position are messages for the user
    -- (bad recipe, bad flag, a spec a native function refused, which comes
    -- as an error object); the others are bugs and get a traceback.
    local msg = aibench.error_message(e)
    if not msg:match("^[^\n]-%.lua:%d+:") then
      return setmetatable({ message = msg, code = 1 }, CliError)
    end
    return debug.traceback(msg, 2)
  end, opts)
  if ok then
    return res or 0
  end
  -- Messages may quote what a server sent: control characters are shown,
  -- never sent to the terminal.
  local clean = report.clean
  if getmetatable(res) == CliError then
    io.stderr:write("aibench ", command, ": ", clean(tostring(res.message)), "\n")
    return res.code
  end
  io.stderr:write("aibench ", command, ": ", clean(tostring(res)), "\n")
  return 1
end

M.commands = commands
return M
