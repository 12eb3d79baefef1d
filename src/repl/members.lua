-- What the REPL's completion and help() see of a value: its field and
-- method names. Reads are raw (no Lua __index or __pairs runs); the only
-- code that runs is a C (Rust) accessor of a userdata: a field getter, an
-- __index or __pairs of the aibench types. No Lua function is called, so
-- pressing Tab never runs the user's code. The debug functions are taken
-- now, so a script that replaces `debug` does not change this.
local getmetatable, getupvalue, getinfo = debug.getmetatable, debug.getupvalue, debug.getinfo
local rawget, next, type, pcall = rawget, next, type, pcall

local M = {}

local function is_c(f)
  return type(f) == "function" and getinfo(f, "S").what == "C"
end

--- The parts of a metatable's __index: a table, a C function, or the
--- closure mlua generates for userdata (`=__mlua_index`), whose upvalues
--- hold its field getters, its methods and the original __index.
local function index_parts(mt)
  local parts = {}
  if type(mt) ~= "table" then
    return parts
  end
  local index = rawget(mt, "__index")
  if type(index) == "table" then
    parts.index = index
  elseif type(index) == "function" and getinfo(index, "S").source == "=__mlua_index" then
    for i = 1, 16 do
      local n, v = getupvalue(index, i)
      if n == nil then
        break
      end
      if n == "field_getters" or n == "methods" then
        parts[n] = v
      elseif n == "__index" then
        if type(v) == "table" then
          parts.index = v
        elseif is_c(v) then
          parts.fn = v
        end
      end
    end
  elseif is_c(index) then
    parts.fn = index
  end
  return parts
end

--- Adds the string keys of `t` whose value `want` accepts.
local function add_keys(t, out, want)
  if type(t) ~= "table" then
    return
  end
  local k, v = next(t)
  while k ~= nil do
    if type(k) == "string" and want(v) then
      out[k] = true
    end
    k, v = next(t, k)
  end
end

local function any()
  return true
end

local function is_function(v)
  return type(v) == "function"
end

--- `x[k]` without running Lua code: raw, then through __index tables, then
--- a userdata's C accessors.
function M.get(x, k)
  local depth = 0
  while depth < 8 do
    depth = depth + 1
    if type(x) == "table" then
      local v = rawget(x, k)
      if v ~= nil then
        return v
      end
    end
    local p = index_parts(getmetatable(x))
    if p.methods and rawget(p.methods, k) ~= nil then
      return rawget(p.methods, k)
    end
    local getter = p.field_getters and rawget(p.field_getters, k)
    if is_c(getter) then
      local ok, v = pcall(getter, x)
      return ok and v or nil
    end
    if p.fn then
      local ok, v = pcall(p.fn, x, k)
      return ok and v or nil
    end
    if not p.index then
      return nil
    end
    x = p.index
  end
end

--- The names `x` offers: after `.` everything, after `:` (methods_only)
--- its functions. A set: {name = true}.
function M.names(x, methods_only)
  local out = {}
  local want = methods_only and is_function or any
  local depth = 0
  while x ~= nil and depth < 8 do
    depth = depth + 1
    if type(x) == "table" then
      add_keys(x, out, want)
    end
    local mt = getmetatable(x)
    local p = index_parts(mt)
    add_keys(p.methods, out, any)
    if not methods_only then
      add_keys(p.field_getters, out, any)
      local pairs_mm = type(mt) == "table" and rawget(mt, "__pairs")
      if type(x) == "userdata" and is_c(pairs_mm) then
        local ok, f, s, c = pcall(pairs_mm, x)
        if ok and is_c(f) then
          local k = f(s, c)
          while k ~= nil do
            if type(k) == "string" then
              out[k] = true
            end
            k = f(s, k)
          end
        end
      end
    end
    x = p.index
  end
  return out
end

return M
