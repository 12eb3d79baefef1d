--- Small assertion helpers for Lua tests (tests/lua/*.lua) and user checks.
-- A test fails by raising; each helper raises with both values shown.
local pretty = require("aibench.pretty")

local M = {}

local function show(v)
  return pretty.render(v, { depth = 4 })
end

local function fail(msg, level)
  error(msg, (level or 1) + 2)
end

--- Deep equality (tables compared by content, keys and values).
---@return boolean
function M.deep_equal(a, b, seen)
  if a == b then
    return true
  end
  if type(a) ~= "table" or type(b) ~= "table" then
    return false
  end
  seen = seen or {}
  if seen[a] == b then
    return true
  end
  seen[a] = b
  for k, v in pairs(a) do
    if not M.deep_equal(v, b[k], seen) then
      return false
    end
  end
  for k in pairs(b) do
    if a[k] == nil then
      return false
    end
  end
  return true
end

--- Raises unless `actual` deep-equals `expected`.
function M.eq(actual, expected, msg)
  if not M.deep_equal(actual, expected) then
    fail(string.format("%sexpected %s, got %s", msg and (msg .. ": ") or "", show(expected), show(actual)))
  end
end

--- Raises unless `v` is truthy.
function M.ok(v, msg)
  if not v then
    fail(msg or ("expected a true value, got " .. show(v)))
  end
  return v
end

--- Raises unless |actual - expected| <= tol (absolute) or tol is given as "5%".
function M.near(actual, expected, tol, msg)
  if type(actual) ~= "number" then
    fail(string.format("%sexpected a number near %s, got %s", msg and (msg .. ": ") or "", expected, show(actual)))
  end
  local limit = tol
  if type(tol) == "string" and tol:match("%%$") then
    limit = math.abs(expected) * tonumber(tol:sub(1, -2)) / 100
  end
  if math.abs(actual - expected) > limit then
    fail(string.format("%sexpected %s ± %s, got %s", msg and (msg .. ": ") or "", expected, tostring(tol), actual))
  end
end

--- Raises unless `f(...)` raises an error whose message matches `pattern` (plain find).
function M.raises(pattern, f, ...)
  local ok, err = pcall(f, ...)
  if ok then
    fail("expected an error matching '" .. pattern .. "', but the call succeeded")
  end
  local text = tostring(err)
  if not text:find(pattern, 1, true) then
    fail("expected an error matching '" .. pattern .. "', got: " .. text)
  end
  return text
end

--- Raises unless the call returned `nil, err` with `err.kind == kind`.
function M.fails(kind, v, err)
  if v ~= nil then
    fail("expected nil, err (" .. kind .. "), got " .. show(v))
  end
  if type(err) ~= "table" or err.kind ~= kind then
    fail("expected err.kind == '" .. kind .. "', got " .. show(err))
  end
  return err
end

--- Raises unless string `s` contains `sub` (plain).
function M.contains(s, sub, msg)
  if type(s) ~= "string" or not s:find(sub, 1, true) then
    fail(string.format("%sexpected text containing %q, got %s", msg and (msg .. ": ") or "", sub, show(s)))
  end
end

local cases = {}

--- Registers a named case; `run()` executes them all and reports each.
function M.case(name, f)
  cases[#cases + 1] = { name = name, f = f }
end

--- Runs registered cases in order; raises if any failed (after running all).
--- `AIBENCH_TEST_CASE=text` runs only the cases whose names contain it (while
--- working on one).
function M.run()
  local failed = {}
  local only = require("aibench.env").get("AIBENCH_TEST_CASE")
  for _, c in ipairs(cases) do
    if only and only ~= "" and not c.name:find(only, 1, true) then
      io.stderr:write("  --   ", c.name, " (not named by AIBENCH_TEST_CASE)\n")
      goto continue
    end
    -- An error value that is a table (`assert(f())` on `nil, err`) keeps
    -- its kind and message, with the traceback.
    local ok, err = xpcall(c.f, function(e)
      if type(e) == "table" then
        e = string.format("%s: %s", tostring(e.kind or "error"), tostring(e.message))
      end
      return debug.traceback(e, 2)
    end)
    if ok then
      io.stderr:write("  ok   ", c.name, "\n")
    else
      io.stderr:write("  FAIL ", c.name, "\n", tostring(err), "\n")
      failed[#failed + 1] = c.name
    end
    ::continue::
  end
  cases = {}
  if #failed > 0 then
    error(#failed .. " case(s) failed: " .. table.concat(failed, ", "), 0)
  end
end

return M
