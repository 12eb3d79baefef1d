--- Reports of benchmark results: terminal summaries, Markdown, one
--- self-contained HTML file, and comparisons between runs. The formats live
--- in aibench.report.* (format, terminal, compare, markdown, html); this
--- module is what scripts use.
local f = require("aibench.report.format")
local compare = require("aibench.report.compare")

local M = {}

M.definitions = f.definitions
M.definitions_text = f.definitions_text
M.num, M.pad, M.columns, M.clean = f.num, f.pad, f.columns, f.clean
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
--- A file in a folder that cannot be read (truncated, not a result, a
--- field of the wrong type) is skipped: it is returned in `skipped`
--- ({path, message}) for the caller to warn about, and the rest load. A
--- file named explicitly that cannot be read is an error, as is nothing
--- read at all (the error names every file skipped).
---@return table[]? records
---@return table? err
---@return {path: string, message: string}[] skipped
function M.load(paths)
  local results = require("aibench.results")
  local fs = require("aibench.fs")
  local out, skipped = {}, {}
  if #paths == 0 then
    return nil, { kind = "usage", message = "give one or more result files (or a results folder)" }, skipped
  end
  for _, p in ipairs(paths) do
    if fs.is_dir(p) then
      local files = results.list(p)
      if #files == 0 then
        return nil, { kind = "empty", message = string.format("%s: no result files (*.json) in this folder; run a benchmark first (aibench client run --recipe ...)", p) }, skipped
      end
      for _, file in ipairs(files) do
        local rec, err = results.load(file)
        if rec then
          out[#out + 1] = rec
        else
          local msg = tostring(err and err.message or err)
          if msg:sub(1, #file) ~= file then
            msg = file .. ": " .. msg
          end
          skipped[#skipped + 1] = { path = file, message = msg }
        end
      end
    else
      local rec, err = results.load(p)
      if not rec then
        return nil, err, skipped
      end
      out[#out + 1] = rec
    end
  end
  if #out == 0 then
    local lines = {}
    for _, s in ipairs(skipped) do
      lines[#lines + 1] = "  " .. s.message
    end
    return nil, { kind = "invalid", message = string.format("no result could be read (%d file%s skipped):\n%s", #skipped, #skipped == 1 and "" or "s", table.concat(lines, "\n")) }, skipped
  end
  return out, nil, skipped
end

return M
