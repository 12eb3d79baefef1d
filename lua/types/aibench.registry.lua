---@meta aibench.registry

---The discovery registry: `$AIBENCH_HOME/discover/<service>.json` lists every
---instance of a service. Writes are atomic and locked; folder 0700, files 0600.
---@class aibench.registry
local registry = {}

---@class aibench.Instance
---@field job_id string
---@field recipe_name string
---@field instance_id string
---@field node string
---@field host string
---@field ports integer[]
---@field url string
---@field executor string
---@field status string RUNNING, ...
---@field registered_at string ISO-8601
---@field extra? table

---Adds (or replaces, by instance_id) an instance.
---@param service string
---@param instance aibench.Instance `registered_at` and `status` are filled in when absent
---@return true? ok
---@return aibench.Error? err `invalid` (service name), `io`, `corrupt`
function registry.register(service, instance) end

---Removes an instance; true when it was registered.
---@param service string
---@param instance_id string
---@return boolean? removed
---@return aibench.Error? err
function registry.deregister(service, instance_id) end

---Sets an instance's status.
---@param service string
---@param instance_id string
---@param status string
---@return boolean? found
---@return aibench.Error? err
function registry.set_status(service, instance_id, status) end

---The instances of a service (empty when none).
---@param service string
---@return aibench.Instance[]? instances
---@return aibench.Error? err
function registry.list(service) end

---Names of the services with a registry file.
---@return string[]? names
---@return aibench.Error? err
function registry.services() end

---Removes the file of a service (or of every service), also one that is not
---a registry file; returns how many entries it held and the files removed.
---@param service? string
---@return integer? removed entries
---@return {path: string, corrupt: boolean, entries: integer}[]|aibench.Error files removed, or err
function registry.clear(service) end

---Every service's instances, reading past files that are not registry files
---(they are listed in `corrupt` with the parse error).
---@return {services: table<string, aibench.Instance[]>, corrupt: {service: string, path: string, message: string}[]}? scan
---@return aibench.Error? err
function registry.scan() end

---Moves a service file that is not a registry file aside, to
---`<service>.json.corrupt-<UTC time>`; returns the new path (nil when the
---file reads fine or does not exist).
---@param service string
---@return string? moved_to
---@return aibench.Error? err
function registry.quarantine(service) end

---The registry folder.
---@return string
function registry.dir() end

return registry
