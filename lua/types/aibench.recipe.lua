---@meta aibench.recipe

---Recipes: YAML files under recipes/{servers,monitors,clients}/ (the
---MeluXina report's schema). Found in ./recipes, then $AIBENCH_RECIPES
---(colon-separated), then the stock recipes inside the binary. Every error
---names the file and the field path.
---@class aibench.recipe
---@field KINDS table<"server"|"client"|"monitor", string> each kind's folder
---@field schemas table the recipe schemas, by kind
local recipe = {}

---Loads, overrides (`set`) and validates a recipe; raises naming the file
---and field. Returns the recipe and the file it came from.
---@param kind "server"|"client"|"monitor"
---@param name string a recipe name or the path of a YAML file
---@param opts? {set?: string[]|table}
---@return table recipe
---@return string file
function recipe.load(kind, name, opts) end

---Every recipe of a kind: `{name, file, source}`, the first found winning.
---@param kind "server"|"client"|"monitor"
---@return {name: string, file: string, source: string}[]
function recipe.list(kind) end

---Finds a recipe by name (or path); returns its text and a display name.
---@param kind "server"|"client"|"monitor"
---@param name string
---@return string text
---@return string file
function recipe.find(kind, name) end

---Every recipe of a kind, each loaded once: `{name, source, file, doc |
---error}` (error: why it does not load, its first line).
---@param kind "server"|"client"|"monitor"
---@return table[]
function recipe.catalog(kind) end

---Validates a decoded recipe; raises one error listing every problem, each
---as "FILE: field.path: message".
---@param kind "server"|"client"|"monitor"
---@param doc table
---@param file string
function recipe.validate(kind, doc, file) end

---A starter recipe (YAML text) to copy and edit.
---@param kind "server"|"client"|"monitor"
---@param name? string
---@return string
function recipe.template(kind, name) end

---How long a client recipe runs: `{pattern, duration_s, total_requests,
---total_sessions, text}` ("120 s", "5000 requests"; "-" when nothing is fixed).
---@param doc? table a loaded client recipe
---@return {pattern?: string, duration_s?: number, total_requests?: number, total_sessions?: number, text: string}
function recipe.length(doc) end

---A description on one line (runs of white space as one space).
---@param desc? string
---@return string
function recipe.one_line(desc) end

---SLURM defaults: ./config/slurm.yml, then $AIBENCH_HOME/config/slurm.yml,
---then SLURM_ACCOUNT / SLURM_PARTITION / SLURM_QOS.
---@return table
function recipe.slurm_defaults() end

---Parses "a.b=value" (the value read as YAML: 10, true, [1, 2], text).
---@param s string
---@return string[] path
---@return any value
function recipe.parse_set(s) end

---Applies overrides to a decoded recipe, checking each path exists in the
---schema: `{["workload.duration_seconds"] = 20}` entries and/or "k=v" strings.
---@param kind "server"|"client"|"monitor"
---@param doc table
---@param sets? table
function recipe.apply_sets(kind, doc, sets) end

---The field a "a.b.1=value" string sets, as errors name fields (`a.b[1]`);
---nil when it is not key.path=value.
---@param s string
---@return string?
function recipe.set_field(s) end

---The closest name in `names` to `s`, if close enough.
---@param s string
---@param names string[]
---@return string?
function recipe.suggest(s, names) end

return recipe
