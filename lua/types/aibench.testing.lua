---@meta aibench.testing

---Small assertion helpers for Lua tests and user checks. A test fails by
---raising; each helper raises with both values shown.
---@class aibench.testing
local testing = {}

---Deep equality (tables compared by content, keys and values).
---@param a any
---@param b any
---@param seen? table
---@return boolean
function testing.deep_equal(a, b, seen) end

---Raises unless `actual` deep-equals `expected`.
---@param actual any
---@param expected any
---@param msg? string
function testing.eq(actual, expected, msg) end

---Raises unless `v` is truthy.
---@param v any
---@param msg? string
function testing.ok(v, msg) end

---Raises unless |actual - expected| <= tol (absolute), or within tol given as "5%".
---@param actual number
---@param expected number
---@param tol number|string
---@param msg? string
function testing.near(actual, expected, tol, msg) end

---Raises unless `f(...)` raises an error whose message contains `pattern` (plain find).
---@param pattern string
---@param f function
---@param ... any
function testing.raises(pattern, f, ...) end

---Raises unless the call returned `nil, err` with `err.kind == kind`.
---@param kind string
---@param v any
---@param err? aibench.Error
function testing.fails(kind, v, err) end

---Raises unless string `s` contains `sub` (plain).
---@param s string
---@param sub string
---@param msg? string
function testing.contains(s, sub, msg) end

---Registers a named case; `testing.run()` runs them all.
---@param name string
---@param f function
function testing.case(name, f) end

---Runs the registered cases in order; raises if any failed (after running all).
function testing.run() end

return testing
