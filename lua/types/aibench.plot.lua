---@meta aibench.plot

---SVG charts for reports (plotters' SVG backend: no fonts, no files, no scripts).
---The `<svg>` says what it drew: `data-plot="left top right bottom"` (the plot
---area in pixels), `data-x-min`/`data-x-max`/`data-y-min`/`data-y-max` (the
---axes' domains), `data-x-scale`/`data-y-scale`, and `data-legend="left top
---right bottom"` (the legend's box, always below the plot area, never over
---the data). Each run of a series' points without a gap is one
---`<polyline class="series" data-series="NAME" points="x,y x,y ...">`; a lone
---point between gaps is a `<circle class="point" data-series="NAME">`; a bar
---is a `<rect class="bar" data-value="V">`; tick labels are `<text
---class="x-tick">`/`<text class="y-tick">`. Ticks are round numbers; whole
---ones have no `.0`.
---@class aibench.plot
local plot = {}

---@class aibench.plot.Series
---@field name string shown in the legend (one unnamed series: no legend)
---@field points number[][] {{x, y}, ...} in x order; a non-finite point (0/0), or a y at or below 0 on a log axis, is left out and breaks the line there
---@field gap? number the widest x step drawn as a line (e.g. 1.5 × a monitor's scrape interval): points further apart start a new segment, so a missed scrape is a gap, not a ramp

---A line chart. `x_min`/`x_max` fix the x domain (a run's window: points
---outside it are left out); `y_min`/`y_max` fix the y domain (0 and 1 for a
---fraction; data beyond them widens it, so nothing is hidden). With nothing
---to draw, the chart says "no data".
---@param spec {series: aibench.plot.Series[], title?: string, x_label?: string, y_label?: string, width?: integer, height?: integer, x_scale?: "linear"|"nines", y_scale?: "linear"|"log", x_min?: number, x_max?: number, y_min?: number, y_max?: number, id?: string}
---@return string svg
function plot.lines(spec) end

---A bar chart.
---@param spec {bars: {[1]: string, [2]: number}[], title?: string, y_label?: string, width?: integer, height?: integer, id?: string}
---@return string svg
function plot.bars(spec) end

---A percentile (0-100) on the "nines" axis: log10(1 / (1 - p/100)). Its
---ticks read 0%, 50%, 90%, 99%, 99.9%...
---@param p number
---@return number
function plot.nines(p) end

return plot
