--- Pretty-printing of Lua values for the REPL, `aibench eval` and scripts.
-- Tables print nested and sorted, cycles print as <cycle>, depth is limited.
local M = {}

local NULL = require("aibench.json").null

local keywords = {}
for w in ([[and break do else elseif end false for function goto if in
  local nil not or repeat return then true until while]]):gmatch("%a+") do
  keywords[w] = true
end

local function key_repr(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") and not keywords[k] then
    return k
  end
  if type(k) == "string" then
    return "[" .. string.format("%q", k) .. "]"
  end
  return "[" .. tostring(k) .. "]"
end

local function scalar(v)
  local t = type(v)
  if t == "string" then
    return string.format("%q", v):gsub("\\\n", "\\n")
  elseif v == NULL then
    return "null"
  elseif t == "number" or t == "boolean" or t == "nil" then
    return tostring(v)
  end
  return "<" .. tostring(v) .. ">"
end

local sorted_keys = require("aibench.util").sorted_keys

--- A userdata's fields as a table when it offers them (a bench result or
--- spec: `:to_table()`), else nil.
local function fields_of(x)
  if type(x) ~= "userdata" or x == NULL then
    return nil
  end
  local ok, f = pcall(function()
    return x.to_table
  end)
  if not ok or type(f) ~= "function" then
    return nil
  end
  local ok2, t = pcall(f, x)
  return ok2 and type(t) == "table" and t or nil
end

local function is_sequence(t)
  local n = #t
  local count = 0
  for _ in pairs(t) do
    count = count + 1
  end
  return count == n, n
end

--- Renders a value as text.
---@param v any
---@param opts? {depth?: integer, indent?: string}
---@return string
function M.render(v, opts)
  opts = opts or {}
  local max_depth = opts.depth or 8
  local unit = opts.indent or "  "
  local visiting = {}

  local function go(x, depth)
    x = fields_of(x) or x
    if type(x) ~= "table" then
      return scalar(x)
    end
    if visiting[x] then
      return "<cycle>"
    end
    if next(x) == nil then
      return "{}"
    end
    if depth >= max_depth then
      return "{...}"
    end
    visiting[x] = true
    local seq, n = is_sequence(x)
    local parts = {}
    local simple = true
    if seq then
      for i = 1, n do
        local s = go(x[i], depth + 1)
        if type(x[i]) == "table" then
          simple = false
        end
        parts[#parts + 1] = s
      end
    else
      simple = false
      for _, k in ipairs(sorted_keys(x)) do
        parts[#parts + 1] = key_repr(k) .. " = " .. go(x[k], depth + 1)
      end
    end
    visiting[x] = nil
    local one_line = "{ " .. table.concat(parts, ", ") .. " }"
    if simple and #one_line <= 72 then
      return one_line
    end
    local pad = string.rep(unit, depth + 1)
    local lines = {}
    for i, p in ipairs(parts) do
      lines[i] = pad .. p
    end
    return "{\n" .. table.concat(lines, ",\n") .. "\n" .. string.rep(unit, depth) .. "}"
  end

  return go(v, 0)
end

--- A bench result in a few lines, as the REPL and `aibench eval` print one:
--- requests and errors, duration, request and token rates, TTFT and TPOT
--- at p50 and p99. `report.summary(r)` is the full summary.
---@param r aibench.bench.Result
---@return string
function M.result_summary(r)
  local num = require("aibench.report.format").num
  local present = require("aibench.util").present
  local errs = {}
  for _, k in ipairs(sorted_keys(present(r.errors_by_class) and r.errors_by_class or {})) do
    if (r.errors_by_class[k] or 0) > 0 then
      errs[#errs + 1] = k .. " " .. r.errors_by_class[k]
    end
  end
  local lines = {
    string.format("bench result%s: %d requests, %d ok, %d errors%s in %s s%s",
      present(r.label) and (" '" .. tostring(r.label) .. "'") or "",
      r.total_requests or 0, r.successes or 0, r.errors or 0,
      #errs > 0 and (" (" .. table.concat(errs, ", ") .. ")") or "",
      num(r.duration_s, 1),
      r.interrupted and (" [interrupted" .. (present(r.interrupted_by) and (" by " .. r.interrupted_by) or "") .. "]") or ""),
  }
  local rates = { num(r.throughput_req_per_sec, 2) .. " req/s" }
  local tokens = present(r.tokens) and r.tokens or {}
  if (tokens.output_total or 0) > 0 then
    rates[#rates + 1] = num(tokens.output_per_s, 1) .. " output tok/s"
  end
  lines[#lines + 1] = "  " .. table.concat(rates, ", ")
  local lat = {}
  for _, m in ipairs({ { "ttft_ms", "TTFT" }, { "tpot_ms", "TPOT" }, { "latency_ms", "E2E" } }) do
    local d = r[m[1]]
    if present(d) and (#lat < 2 or m[1] ~= "latency_ms") then
      lat[#lat + 1] = string.format("%s p50 %s ms, p99 %s ms", m[2], num(d.p50, 2), num(d.p99, 2))
    end
  end
  if #lat > 0 then
    lines[#lines + 1] = "  " .. table.concat(lat, "; ")
  end
  local spread = require("aibench.report.format").balance_line(r)
  if spread then
    lines[#lines + 1] = "  " .. spread .. "; report.summary(r) breaks it down per instance"
  end
  lines[#lines + 1] = "  (report.summary(r) for the full summary, r:to_table() for every field)"
  -- The label comes from outside: no control character reaches the terminal.
  return require("aibench.report.format").clean(table.concat(lines, "\n"))
end

--- Prints values like `print`, with tables rendered.
function M.print(...)
  local n = select("#", ...)
  local out = {}
  for i = 1, n do
    local v = select(i, ...)
    out[i] = type(v) == "string" and v or M.render(v)
  end
  print(table.concat(out, "\t"))
end

return M
