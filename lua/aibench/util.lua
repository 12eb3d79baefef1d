--- Small helpers the rest of the library shares: table keys and copies,
--- absent values (nil or JSON null), did-you-mean hints, a URL's
--- host:port and an age for listings. Each is written once, here.
local aibench = require("aibench")
local json = require("aibench.json")
local time = require("aibench.time")

local M = {}

-- Tables ---------------------------------------------------------------------------

--- Orders keys of mixed types: by type name first, then by value
--- (numbers and strings), or by their text (anything else).
local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then
    return ta < tb
  end
  if ta == "number" or ta == "string" then
    return a < b
  end
  return tostring(a) < tostring(b)
end

--- The keys of `t`, sorted (numbers and strings by value; mixed types by
--- type name first).
---@param t table
---@return any[]
function M.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  table.sort(keys, key_less)
  return keys
end

--- Copies the fields of `src` (when given) into `dst`, shallowly; returns `dst`.
---@param dst table
---@param src? table
---@return table
function M.merge(dst, src)
  for k, v in pairs(src or {}) do
    dst[k] = v
  end
  return dst
end

--- A shallow copy of `t` (a new table with the same fields; no metatable).
---@param t? table nil gives an empty table
---@return table
function M.copy(t)
  return M.merge({}, t)
end

-- Values ---------------------------------------------------------------------------

--- True unless `v` is nil or JSON null (a field a result or recipe left out).
function M.present(v)
  return v ~= nil and v ~= json.null
end

-- Did you mean ---------------------------------------------------------------------

--- The closest name in `names` to `s`, if close enough (the rule the Rust
--- side uses too, so every did-you-mean agrees).
---@param s string
---@param names string[]
---@return string?
function M.suggest(s, names)
  return aibench.suggest(s, names)
end

--- The did-you-mean part of an error message: `fmt` (default
--- " (did you mean '%s'?)") with the closest name in `names` to `s`, or ""
--- when none is close enough or `s` is not a string.
---@param s any
---@param names string[]
---@param fmt? string
---@return string
function M.did_you_mean(s, names, fmt)
  local hint = type(s) == "string" and M.suggest(s, names) or nil
  if not hint then
    return ""
  end
  return string.format(fmt or " (did you mean '%s'?)", hint)
end

-- URLs and times -------------------------------------------------------------------

--- Quotes a word for bash (as jobs::script::quote): plain words as they
--- are, anything else in single quotes.
function M.shell_quote(s)
  s = tostring(s)
  if s ~= "" and not s:find("[^%w_%-%./:=@%%+,]") then
    return s
  end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- A registry entry's node-side endpoints, each once: the agent's (the
--- service's process group, NVML GPUs) and a dcgm-exporter's, on every
--- node of a deployment that spans nodes (`extra.nodes`).
function M.node_endpoints(entry)
  local e = entry.extra or {}
  local out, seen = {}, {}
  local function add(u)
    if type(u) == "string" and not seen[u] then
      seen[u] = true
      out[#out + 1] = u
    end
  end
  add(e.agent_metrics_url)
  add(e.gpu_exporter_url)
  for _, n in ipairs(type(e.nodes) == "table" and e.nodes or {}) do
    if type(n) == "table" then
      add(n.agent_metrics_url)
      add(n.gpu_exporter_url)
    end
  end
  return out
end

--- The host:port of an http(s) URL ("http://node1:8000/v1" gives "node1:8000").
---@param url string
---@return string
function M.host_port(url)
  return (url:gsub("^https?://", ""):gsub("/.*$", ""))
end

--- Human-readable age since an ISO time ("42s", "17m", "3.5h"; "-" without one).
---@param iso? string
---@return string
function M.age(iso)
  local t = iso and time.parse(iso)
  if not t then
    return "-"
  end
  local s = math.max(0, time.now() - t)
  if s < 120 then
    return string.format("%ds", math.floor(s))
  elseif s < 7200 then
    return string.format("%dm", math.floor(s / 60))
  end
  return string.format("%.1fh", s / 3600)
end

--- The options table of a manager call (`server.run`, `client.run`,
--- `monitor.start`): a table as it is, or a recipe name given alone as
--- `{recipe = name}`; anything else raises saying what is expected.
---@param o any
---@param func string the call, for the message
---@return table
function M.recipe_options(o, func)
  if type(o) == "string" then
    return { recipe = o }
  end
  if type(o) ~= "table" then
    error(string.format('%s: expected a recipe name or an options table like {recipe = "vllm-sim"}, got %s', func, o == nil and "nothing" or type(o)), 2)
  end
  if type(o.recipe) ~= "string" then
    error(string.format('%s: expected a recipe name in the options (recipe = "vllm-sim"), got %s', func, o.recipe == nil and "none" or type(o.recipe)), 2)
  end
  return o
end

-- Handles ---------------------------------------------------------------------------

--- A method of a handle table (`s:stop()`). Called with a dot (`s.stop()`,
--- so that `self` is missing or not the handle) it raises
--- "stop: call it as s:stop() (with a colon)" instead of failing somewhere
--- inside on a nil `self`.
---@param name string the method's name, for the message
---@param fn fun(self: table, ...): ...
---@return fun(self: table, ...): ...
function M.method(name, fn)
  local method
  method = function(self, ...)
    if type(self) ~= "table" or self[name] ~= method then
      error(string.format("%s: call it as s:%s() (with a colon), not s.%s()", name, name, name), 2)
    end
    return fn(self, ...)
  end
  return method
end

local UsageError = {
  __tostring = function(e)
    return e.message
  end,
}

--- Raises a usage error: a bad flag or flag value (an unknown executor, a
--- `--set` that does not parse or names no field). The command line exits 2
--- with `message`; a script sees an error whose text is the message.
---@param message string
function M.usage_error(message)
  error(setmetatable({ kind = "usage", message = message, code = 2 }, UsageError), 0)
end

--- True for an error raised by M.usage_error.
function M.is_usage_error(e)
  return getmetatable(e) == UsageError
end

return M
