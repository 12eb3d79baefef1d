---@meta aibench.prom

---Prometheus: the text exposition format, scraping any /metrics endpoint
---without a server, the HTTP API client, prometheus.yml rendering.
---@class aibench.prom
local prom = {}

---@class aibench.prom.Sample
---@field name string
---@field labels table<string, string>
---@field value number may be NaN or ±inf
---@field timestamp_ms integer?

---@class aibench.prom.Histogram
---@field labels table<string, string> without `le`
---@field buckets number[][] {{upper_bound, cumulative_count}, ...} ending with +inf
---@field sum number
---@field count number

---@class aibench.prom.Family
---@field name string
---@field kind "counter"|"gauge"|"histogram"|"summary"|"untyped"
---@field help string
---@field samples aibench.prom.Sample[]
---@field histograms aibench.prom.Histogram[]? for histogram families

---Parses exposition text into families by name.
---@param text string
---@return table<string, aibench.prom.Family>? families
---@return aibench.Error? err `kind = "parse"` with `line`
function prom.parse(text) end

---Fetches and parses a /metrics endpoint.
---@async
---@param url string
---@param timeout_s? number default 10
---@return table<string, aibench.prom.Family>? families
---@return aibench.Error? err
function prom.scrape(url, timeout_s) end

---A client for a Prometheus server.
---@param url string e.g. http://node:9090
---@return aibench.prom.Client
function prom.client(url) end

---@class aibench.prom.Series
---@field metric table<string, string>
---@field value number? instant queries
---@field time number? instant queries
---@field values number[][]? range queries: {{t, v}, ...}

---@class aibench.prom.Client
---@field url string
local Client = {}

---An instant query. Errors from Prometheus (bad PromQL) come back with its own message.
---@async
---@param q string PromQL
---@param time? number evaluation time (Unix seconds)
---@return aibench.prom.Series[]? result
---@return aibench.Error? err `prometheus`, `connect`, `timeout`
function Client:query(q, time) end

---A range query.
---@async
---@param q string
---@param start number Unix seconds
---@param finish number Unix seconds
---@param step number seconds
---@return aibench.prom.Series[]? result
---@return aibench.Error? err
function Client:query_range(q, start, finish, step) end

---Active scrape targets (Prometheus' own objects: labels, scrapeUrl, health, lastError).
---@async
---@return table[]? targets
---@return aibench.Error? err
function Client:targets() end

---Alerts Prometheus is evaluating (state pending or firing).
---@async
---@return table[]? alerts
---@return aibench.Error? err
function Client:alerts() end

---Whether `/-/ready` answers 200.
---@async
---@return boolean? ready
---@return aibench.Error? err
function Client:ready() end

---Renders prometheus.yml.
---@param spec {scrape_interval?: string, evaluation_interval?: string, rule_files?: string[], external_labels?: table<string,string>, jobs: {job_name: string, metrics_path?: string, files?: string[], static_targets?: string[], refresh_interval?: string, scrape_interval?: string}[]}
---@return string
function prom.render_config(spec) end

---A quantile of a histogram, interpolated within buckets as PromQL does.
---@param q number 0..1
---@param h aibench.prom.Histogram
---@return number? value
---@return number? upper_bound of the bucket it falls in
---@return boolean in_first_bucket interpolation inside the first bucket says little
function prom.quantile(q, h) end

---Whether a string is a Prometheus duration (15s, 1m, 24h, 1h30m).
---@param s string
---@return boolean
function prom.valid_duration(s) end

---A Prometheus duration in seconds (`1h30m` is 5400).
---@param s string
---@return number? seconds
---@return aibench.Error? err `kind = "invalid"`, saying what was expected
function prom.duration_s(s) end

return prom
