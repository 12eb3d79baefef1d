---@meta aibench.plot

---SVG charts for reports (plotters' SVG backend: no fonts, no files).
---@class aibench.plot
local plot = {}

---@class aibench.plot.Series
---@field name string
---@field points number[][] {{x, y}, ...}; non-finite points are skipped

---A line chart.
---@param spec {series: aibench.plot.Series[], title?: string, x_label?: string, y_label?: string, width?: integer, height?: integer, x_scale?: "linear"|"nines", id?: string}
---@return string svg
function plot.lines(spec) end

---A bar chart.
---@param spec {bars: {[1]: string, [2]: number}[], title?: string, y_label?: string, width?: integer, height?: integer, id?: string}
---@return string svg
function plot.bars(spec) end

---A percentile (0-100) on the "nines" axis: log10(1 / (1 - p/100)).
---@param p number
---@return number
function plot.nines(p) end

return plot
