--- Job folders under $AIBENCH_HOME/jobs: a new one per deployment, the
--- files written into it, its metadata (meta.json), and finding and listing
--- them.
local aibench = require("aibench")
local fs = require("aibench.fs")
local json = require("aibench.json")
local time = require("aibench.time")
local uuid = require("aibench.uuid")

local M = {}

function M.jobs_dir()
  return fs.join(aibench.home(), "jobs")
end

--- A new job folder (not created yet) and its instance id. `name` must be a
--- valid name (recipe validation checks it, naming the file): a path in
--- it would put the folder elsewhere.
function M.new_job_dir(name)
  assert(aibench.check_name(name))
  local id = uuid.short()
  return fs.join(M.jobs_dir(), name .. "-" .. id), id
end

local META = "meta.json"

function M.write_meta(dir, meta)
  meta.updated_at = time.format()
  assert(fs.write(fs.join(dir, META), json.encode(meta, { pretty = true }) .. "\n", { mkdir = true, mode = tonumber("600", 8) }))
end

function M.read_meta(dir)
  local text = fs.read(fs.join(dir, META))
  if not text then
    return nil
  end
  local m = json.decode(text)
  if type(m) ~= "table" then
    return nil
  end
  m.dir = dir
  return m
end

--- Writes a job's files ({path = text}), private (0600, in 0700 folders);
--- nil, err on the first that fails.
function M.write_files(files)
  for path, text in pairs(files) do
    local ok, err = fs.write(path, text, { mkdir = true, mode = tonumber("600", 8) })
    if not ok then
      return nil, err
    end
  end
  return true
end

--- Every job folder's metadata, optionally of one kind ("server", ...).
function M.all(kind)
  local out = {}
  for _, name in ipairs(fs.list(M.jobs_dir()) or {}) do
    if name:sub(1, 1) ~= "." then
      local m = M.read_meta(fs.join(M.jobs_dir(), name))
      if m and m.job_id and (not kind or m.kind == kind) then
        out[#out + 1] = m
      end
    end
  end
  table.sort(out, function(a, b)
    return (a.submitted_at or "") < (b.submitted_at or "")
  end)
  return out
end

--- Finds one job by instance id, job id or folder name (unique prefix ok).
function M.find(kind, id)
  local hits = {}
  for _, m in ipairs(M.all(kind)) do
    local base = fs.basename(m.dir)
    if m.instance_id == id or m.job_id == id or base == id then
      return m
    end
    if (m.instance_id or ""):sub(1, #id) == id or base:sub(1, #id) == id then
      hits[#hits + 1] = m
    end
  end
  if #hits == 1 then
    return hits[1]
  end
  if #hits > 1 then
    return nil, { kind = "ambiguous", message = string.format("'%s' matches %d %s jobs; give more of the id", id, #hits, kind) }
  end
  return nil, { kind = "not_found", message = string.format("no %s with id '%s' (see `aibench %s list`)", kind, id, kind) }
end

return M
