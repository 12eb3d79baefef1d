---@meta aibench.http

---A small async HTTP client for health checks and APIs (not for load).
---Transport failures return `nil, err` with kind `connect`, `timeout` or `http`;
---any HTTP status is a response (check `res.ok`).
---@class aibench.http
local http = {}

---@class aibench.http.Options
---@field headers? table<string, string>
---@field body? string
---@field json? any encoded as the body, with content-type application/json
---@field timeout_s? number default 30

---@class aibench.http.Request: aibench.http.Options
---@field url string
---@field method? string default GET

---@class aibench.http.Response
---@field status integer
---@field ok boolean status is 2xx
---@field headers table<string, string> lower-case names
---@field body string
---@field json any? decoded body when the server says it is JSON
---@field elapsed_s number

---@async
---@param req aibench.http.Request
---@return aibench.http.Response? res
---@return aibench.Error? err
function http.request(req) end

---@async
---@param url string
---@param opts? aibench.http.Options
---@return aibench.http.Response? res
---@return aibench.Error? err
function http.get(url, opts) end

---@async
---@param url string
---@param opts? aibench.http.Options
---@return aibench.http.Response? res
---@return aibench.Error? err
function http.post(url, opts) end

return http
