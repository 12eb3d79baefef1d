--- Reports of benchmark results: terminal summaries, Markdown, one
--- self-contained HTML file, and comparisons between runs. The formats live
--- in aibench.report.* (format, terminal, compare, markdown, html); this
--- module is what scripts use.
local f = require("aibench.report.format")
local compare = require("aibench.report.compare")

local M = {}

M.definitions = f.definitions
M.definitions_text = f.definitions_text
M.num, M.pad, M.columns = f.num, f.pad, f.columns
M.TAIL_MIN_SAMPLES, M.COMPARED = compare.TAIL_MIN_SAMPLES, compare.COMPARED
M.compare, M.compare_text = compare.compare, compare.compare_text
M.summary = require("aibench.report.terminal").summary
M.server_summary = require("aibench.report.terminal").server_summary
M.hpc_summary = require("aibench.report.terminal").hpc_summary
M.terminal = require("aibench.report.terminal").terminal
M.markdown = require("aibench.report.markdown").markdown
M.html = require("aibench.report.html").html

-- Loading ------------------------------------------------------------------------

--- Loads result files (a folder means every *.json in it), in order.
---@return table[]? records
---@return table? err
function M.load(paths)
  local results = require("aibench.results")
  local fs = require("aibench.fs")
  local out = {}
  if #paths == 0 then
    return nil, { kind = "usage", message = "give one or more result files (or a results folder)" }
  end
  for _, p in ipairs(paths) do
    if fs.is_dir(p) then
      local files = results.list(p)
      if #files == 0 then
        return nil, { kind = "empty", message = string.format("%s: no result files (*.json) in this folder; run a benchmark first (aibench client run --recipe ...)", p) }
      end
      for _, f in ipairs(files) do
        local rec, err = results.load(f)
        if not rec then
          return nil, err
        end
        out[#out + 1] = rec
      end
    else
      local rec, err = results.load(p)
      if not rec then
        return nil, err
      end
      out[#out + 1] = rec
    end
  end
  return out
end

return M
