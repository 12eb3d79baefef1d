---@meta aibench.fs

---Files and folders. Failures return `nil, err` with `kind` one of
---`not_found`, `permission`, `exists`, `is_dir`, `not_dir`, `not_empty`, `io`.
---@class aibench.fs
local fs = {}

---Reads a whole file (at most 256 MiB: a larger file, or a device that never ends, is an error).
---@param path string
---@return string? data
---@return aibench.Error? err
function fs.read(path) end

---Writes an output file. `-` is standard output; a symlink is followed; an
---existing character device or FIFO is written into, never replaced; a
---folder, block device or socket is refused; a regular (or new) file is
---written atomically (temporary file in the same folder, then rename).
---@param path string
---@param data string
---@param opts? {mode?: integer, mkdir?: boolean} `mode` e.g. tonumber("600", 8) (default: 0600 under `$AIBENCH_HOME`, elsewhere the umask's, never group- or world-writable); `mkdir` creates parent folders (0700 under `$AIBENCH_HOME`)
---@return true? ok
---@return aibench.Error? err
function fs.write(path, data, opts) end

---Writes `data` where a result goes when its own path cannot take it (a
---full disk): `$AIBENCH_HOME/rescued/`, else the temporary folder. Returns
---the path written.
---@param name string file name (made safe)
---@param data string
---@return string? path
---@return aibench.Error? err
function fs.rescue(name, data) end

---Appends to a file, creating it if needed.
---@param path string
---@param data string
---@return true? ok
---@return aibench.Error? err
function fs.append(path, data) end

---@param path string
---@return boolean
function fs.exists(path) end

---Whether two paths name the same existing file (symlinks followed).
---@param a string
---@param b string
---@return boolean
function fs.same_file(a, b) end

---@param path string
---@return boolean
function fs.is_dir(path) end

---Creates a folder and its parents (0700 under `$AIBENCH_HOME`, where an
---existing folder wider than that is narrowed).
---@param path string
---@return true? ok
---@return aibench.Error? err
function fs.mkdir(path) end

---Checks, before long work, that `path` can be written when it ends, by
---`fs.write`'s rules: the file is writable if it exists, else its folder
---exists (created if need be), is writable and has 16 MiB free.
---@param path string
---@return true? ok
---@return aibench.Error? err
function fs.writable(path) end

---Entry names of a folder, sorted.
---@param path string
---@return string[]? names
---@return aibench.Error? err
function fs.list(path) end

---Removes a file or an (empty, or with `recursive`) folder.
---@param path string
---@param opts? {recursive?: boolean}
---@return true? ok
---@return aibench.Error? err
function fs.remove(path, opts) end

---Creates a new temporary folder and returns its path (the caller removes it).
---@param prefix? string
---@return string? path
---@return aibench.Error? err
function fs.tmpdir(prefix) end

---@class aibench.fs.Stat
---@field size integer
---@field is_dir boolean
---@field is_file boolean
---@field mtime number seconds since the epoch
---@field mode integer permission bits

---@param path string
---@return aibench.fs.Stat? stat
---@return aibench.Error? err
function fs.stat(path) end

---Joins path parts.
---@param ... string
---@return string
function fs.join(...) end

---@param path string
---@return string
function fs.dirname(path) end

---@param path string
---@return string
function fs.basename(path) end

---@param path string
---@return string
function fs.abspath(path) end

---The current working folder.
---@return string
function fs.cwd() end

return fs
