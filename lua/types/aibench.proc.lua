---@meta aibench.proc

---Child processes. Commands are argument lists; a shell only with `shell = true`.
---@class aibench.proc
local proc = {}

---@class aibench.proc.Options
---@field env? table<string, string|number|boolean> extra environment
---@field clear_env? boolean start from an empty environment
---@field cwd? string
---@field stdin? string data written to the child's stdin
---@field timeout_s? number kill the child after this long (`run` returns nil, err kind "timeout")
---@field shell? boolean run a string through /bin/sh -c
---@field group? boolean own process group (kill reaches its children)
---@field stdout? "capture"|"inherit"|"null"
---@field stderr? "capture"|"inherit"|"null"
---@field stdout_file? string append stdout to this file
---@field stderr_file? string append stderr to this file

---@class aibench.proc.Result
---@field code integer? exit code (nil when killed by a signal)
---@field signal integer?
---@field ok boolean code == 0
---@field stdout string
---@field stderr string
---@field timed_out boolean
---@field duration_s number

---Runs a program to completion.
---@async
---@param cmd string[]|string
---@param opts? aibench.proc.Options
---@return aibench.proc.Result? result
---@return aibench.Error? err `not_found`, `permission`, `timeout`, `spawn`
function proc.run(cmd, opts) end

---A background process.
---@class aibench.proc.Handle
---@field pid integer
local Handle = {}

---Waits for exit (optionally at most `timeout_s`, then kills it).
---@async
---@param timeout_s? number
---@return aibench.proc.Result? result
---@return aibench.Error? err
function Handle:wait(timeout_s) end

---Sends a signal (default TERM) to the process, or its group.
---@param sig? "TERM"|"KILL"|"INT"|"HUP"|"USR1"|"USR2"|"QUIT"|"STOP"|"CONT"
---@return boolean sent
function Handle:kill(sig) end

---@async
---@return boolean
function Handle:running() end

---Output collected so far.
---@async
---@return string stdout
---@return string stderr
function Handle:output() end

---Starts a program in the background.
---@param cmd string[]|string
---@param opts? aibench.proc.Options
---@return aibench.proc.Handle? handle
---@return aibench.Error? err
function proc.spawn(cmd, opts) end

---Full path of a program on PATH, or nil.
---@param name string
---@return string?
function proc.which(name) end

---This process's id.
---@return integer
function proc.pid() end

return proc
