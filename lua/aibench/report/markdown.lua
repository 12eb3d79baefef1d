--- The Markdown report.
local f = require("aibench.report.format")
local compare = require("aibench.report.compare")
local num, present, workload_line, title_of = f.num, f.present, f.workload_line, f.title_of

local M = {}

local function md_table(rows)
  local out = { "| " .. table.concat(rows[1], " | ") .. " |", "|" .. string.rep(" --- |", #rows[1]) }
  for i = 2, #rows do
    local cells = {}
    for j, c in ipairs(rows[i]) do
      cells[j] = tostring(c):gsub("|", "\\|")
    end
    out[#out + 1] = "| " .. table.concat(cells, " | ") .. " |"
  end
  return table.concat(out, "\n")
end

--- The Markdown report (its text passed through format.clean: no control
--- character from a result reaches the reader raw).
function M.markdown(records, opts)
  opts = opts or {}
  local out = { "# aibench report", "" }
  for i, rec in ipairs(records) do
    f.guard(rec, M.section, out, i, rec)
  end
  if opts.compare and #records > 1 then
    local cmp = compare.compare(records, opts)
    out[#out + 1] = "## Comparison against #1"
    out[#out + 1] = ""
    if cmp.note then
      out[#out + 1] = "> **Note:** " .. cmp.note
      out[#out + 1] = ""
    end
    out[#out + 1] = md_table(compare.compare_rows(records, cmp))
    out[#out + 1] = ""
    out[#out + 1] = cmp.regressions == 0 and "No regression." or string.format("**%d regression(s) flagged** (worse by more than %.0f%%).", cmp.regressions, 100 * cmp.threshold)
    out[#out + 1] = ""
  end
  out[#out + 1] = "## Definitions"
  out[#out + 1] = ""
  for _, d in ipairs(f.definitions) do
    out[#out + 1] = "- **" .. d[1] .. "**: " .. d[2]
  end
  return f.clean(table.concat(out, "\n") .. "\n")
end

--- One record's section of the Markdown report, appended to `out`.
function M.section(out, i, rec)
  local b = rec.bench
  out[#out + 1] = string.format("## #%d %s", i, title_of(rec))
  out[#out + 1] = ""
  out[#out + 1] = string.format("Target: %s (%s, model %s); %s", table.concat(b.target.urls or {}, ", "), tostring(b.target.api or "?"), present(b.target.model) and b.target.model or "-", workload_line(b.workload))
  out[#out + 1] = ""
  for _, w in ipairs(f.warnings(b)) do
    out[#out + 1] = "> **Warning:** " .. w
    out[#out + 1] = ""
  end
  out[#out + 1] = md_table(f.headline_rows(b))
  out[#out + 1] = ""
  out[#out + 1] = md_table(f.dist_rows(b))
  out[#out + 1] = ""
  for _, line in ipairs({ { "Dataset", f.dataset_line(b) }, { "Trace", f.trace_line(b) }, { "Sessions", f.sessions_line(b) } }) do
    if line[2] then
      out[#out + 1] = string.format("%s: %s.", line[1], line[2])
      out[#out + 1] = ""
    end
  end
  local turns = f.turn_rows(b)
  if turns then
    out[#out + 1] = md_table(turns)
    out[#out + 1] = ""
  end
  local urls = f.url_rows(b)
  if urls then
    out[#out + 1] = "Per instance: " .. f.balance_line(b) .. "."
    out[#out + 1] = ""
    out[#out + 1] = md_table(urls)
    out[#out + 1] = ""
  end
  local hpc = f.hpc_lines(rec)
  if #hpc > 0 then
    out[#out + 1] = "### HPC"
    out[#out + 1] = ""
    local rows = { { "what", "" } }
    for _, l in ipairs(hpc) do
      rows[#rows + 1] = { l[1], l[2] }
    end
    out[#out + 1] = md_table(rows)
    out[#out + 1] = ""
    for _, w in ipairs(f.hpc_warnings(rec)) do
      out[#out + 1] = "> **Warning:** " .. w
      out[#out + 1] = ""
    end
  end
  local s = rec.server
  if present(s) then
    local pc = f.prefix_cache_text(s)
    out[#out + 1] = string.format("Server side: %s requests finished, %s generation tokens, %s preemptions%s.", num(s.requests, 0), num(s.generation_tokens, 0), num(s.preemptions, 0), pc and (", " .. pc) or "")
    out[#out + 1] = ""
    local gpu = f.gpu_text(s)
    if gpu then
      out[#out + 1] = gpu .. "."
      out[#out + 1] = ""
    end
  end
end

return M
