//! The documentation of the Lua API, read from the LuaLS stubs in
//! `lua/types/` (embedded in the binary): the REPL's `help()`, the
//! signatures functions print with, and nothing else. The stubs are the one
//! copy of the docs; this reads their `---` comments, `---@class`,
//! `---@field`, `---@param`, `---@return`, `---@type` and `function X.name(...)`
//! lines, once, on first use.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use mlua::prelude::*;

/// A parameter of a documented function.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub ty: String,
    pub optional: bool,
    pub desc: String,
}

/// A return value of a documented function.
#[derive(Debug, Clone, PartialEq)]
pub struct Ret {
    pub ty: String,
    pub name: String,
    pub desc: String,
}

/// A field of a class (or a module's value, like `json.null`).
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub ty: String,
    pub desc: String,
}

/// A documented function or method.
#[derive(Debug, Clone, PartialEq)]
pub struct FnDoc {
    pub name: String,
    /// Declared with `:` (a method of a handle), not `.`.
    pub method: bool,
    pub params: Vec<Param>,
    pub returns: Vec<Ret>,
    pub doc: String,
    pub is_async: bool,
}

/// A `---@class`: a module (named as in `require`) or a type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassDoc {
    pub name: String,
    /// The module whose stub declares it (`aibench.bench` for `aibench.bench.Result`).
    pub module: Option<String>,
    pub parent: Option<String>,
    pub doc: String,
    pub fields: Vec<Field>,
    pub functions: Vec<FnDoc>,
}

/// Everything the stubs document.
#[derive(Debug, Default)]
pub struct Docs {
    /// Module names (`aibench.bench`), sorted; each has a class of that name.
    pub modules: Vec<String>,
    pub classes: BTreeMap<String, ClassDoc>,
}

/// The docs of the embedded stubs, parsed on first use.
pub fn docs() -> &'static Docs {
    static DOCS: OnceLock<Docs> = OnceLock::new();
    DOCS.get_or_init(|| {
        let mut files = Vec::new();
        for rel in crate::assets::lua_paths() {
            if rel.starts_with("types/")
                && rel.ends_with(".lua")
                && let Some(data) = crate::assets::lua_file(&rel)
            {
                files.push(String::from_utf8_lossy(&data).into_owned());
            }
        }
        Docs::parse(files.iter().map(String::as_str))
    })
}

impl Docs {
    /// Reads stub files (their text).
    pub fn parse<'a>(files: impl IntoIterator<Item = &'a str>) -> Docs {
        let mut docs = Docs::default();
        for text in files {
            parse_file(text, &mut docs);
        }
        docs.modules.sort();
        docs.modules.dedup();
        docs
    }

    pub fn class(&self, name: &str) -> Option<&ClassDoc> {
        self.classes.get(name)
    }

    /// A class's functions with those of the classes it inherits from
    /// (`aibench.local: aibench.Executor`), its own first.
    pub fn functions_of(&self, class: &str) -> Vec<&FnDoc> {
        let mut out: Vec<&FnDoc> = Vec::new();
        let mut seen = Vec::new();
        let mut cur = self.class(class);
        while let Some(c) = cur {
            if seen.contains(&c.name) {
                break;
            }
            seen.push(c.name.clone());
            for f in &c.functions {
                if !out.iter().any(|o| o.name == f.name) {
                    out.push(f);
                }
            }
            cur = c.parent.as_deref().and_then(|p| self.class(p));
        }
        out
    }

    /// One function of a class (or of what it inherits).
    pub fn function(&self, class: &str, name: &str) -> Option<&FnDoc> {
        self.functions_of(class).into_iter().find(|f| f.name == name)
    }

    /// Fields of a class and of what it inherits.
    pub fn fields_of(&self, class: &str) -> Vec<&Field> {
        let mut out: Vec<&Field> = Vec::new();
        let mut cur = self.class(class);
        let mut depth = 0;
        while let Some(c) = cur
            && depth < 8
        {
            out.extend(c.fields.iter().filter(|f| !out.iter().any(|o| o.name == f.name)).collect::<Vec<_>>());
            cur = c.parent.as_deref().and_then(|p| self.class(p));
            depth += 1;
        }
        out
    }
}

/// How a function is shown: `bench` for a module's functions, `Result` for
/// a class's methods (its last name part).
pub fn owner_name(class: &str) -> &str {
    match class.strip_prefix("aibench.") {
        Some(rest) if !rest.contains('.') => rest,
        _ => class.rsplit('.').next().unwrap_or(class),
    }
}

impl FnDoc {
    /// `bench.run(spec, opts?) -> Result?, Error?`
    pub fn signature(&self, owner: &str) -> String {
        let params: Vec<String> =
            self.params.iter().map(|p| if p.optional { format!("{}?", p.name) } else { p.name.clone() }).collect();
        let sep = if self.method { ':' } else { '.' };
        let mut s = format!("{owner}{sep}{}({})", self.name, params.join(", "));
        if !self.returns.is_empty() {
            let rets: Vec<String> = self.returns.iter().map(|r| short_type(&r.ty)).collect();
            s.push_str(" -> ");
            s.push_str(&rets.join(", "));
        }
        s
    }

    /// The first sentence of the doc (a line in listings).
    pub fn summary(&self) -> String {
        first_sentence(&self.doc)
    }
}

/// A type as listings show it: `aibench.bench.Result?` as `Result?`; a long
/// table shape as `table`.
pub fn short_type(ty: &str) -> String {
    if ty.len() > 40 && ty.starts_with('{') {
        return if ty.ends_with('?') { "table?".into() } else { "table".into() };
    }
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(word.rsplit('.').next().unwrap_or(word));
        word.clear();
    };
    for c in ty.chars() {
        if c.is_alphanumeric() || c == '_' || c == '.' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The first sentence of a text, on one line (at most the first paragraph).
pub fn first_sentence(text: &str) -> String {
    let para = text.split("\n\n").next().unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" ");
    let mut end = para.len();
    for (i, _) in para.match_indices(". ") {
        // Not after "e.g" or "i.e".
        if !para[..i].ends_with("e.g") && !para[..i].ends_with("i.e") {
            end = i + 1;
            break;
        }
    }
    para[..end].to_string()
}

/// One `---` comment block, as read so far.
#[derive(Default)]
struct Block {
    text: Vec<String>,
    class: Option<(String, Option<String>)>,
    fields: Vec<Field>,
    params: Vec<Param>,
    returns: Vec<Ret>,
    ty: Option<String>,
    is_async: bool,
}

impl Block {
    fn doc(&self) -> String {
        let mut s = self.text.join("\n");
        s.truncate(s.trim_end().len());
        s
    }
}

fn parse_file(text: &str, docs: &mut Docs) {
    // Table variables to classes: `local Handle = {}` after `---@class aibench.sim.Handle`.
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut block = Block::default();
    let mut in_block = false;
    let meta = text.lines().find_map(|l| l.strip_prefix("---@meta ")).map(|m| m.trim().to_string());
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("---") {
            in_block = true;
            read_comment(rest, &mut block, docs);
            continue;
        }
        if in_block {
            finish_block(std::mem::take(&mut block), line, meta.as_deref(), &mut vars, docs);
            in_block = false;
        }
    }
    if in_block {
        finish_block(block, "", meta.as_deref(), &mut vars, docs);
    }
}

/// One `---` line into the block (`---@meta NAME` registers a module).
fn read_comment(rest: &str, b: &mut Block, docs: &mut Docs) {
    let Some(tag) = rest.strip_prefix('@') else {
        b.text.push(rest.strip_prefix(' ').unwrap_or(rest).to_string());
        return;
    };
    let (kind, args) = tag.split_once(char::is_whitespace).unwrap_or((tag, ""));
    let args = args.trim();
    match kind {
        "meta" if !args.is_empty() => docs.modules.push(args.to_string()),
        "class" => {
            let (name, parent) = match args.split_once(':') {
                Some((n, p)) => (n.trim().to_string(), Some(p.trim().to_string())),
                None => (args.to_string(), None),
            };
            // The text so far describes this class; a class starts its own block.
            b.class = Some((name, parent));
        }
        "field" => {
            let (name, rest) = split_word(args);
            let (ty, desc) = split_type(&rest);
            let name = name.trim_end_matches('?').to_string();
            b.fields.push(Field { name, ty, desc });
        }
        "param" => {
            let (name, rest) = split_word(args);
            let (ty, desc) = split_type(&rest);
            let optional = name.ends_with('?') || ty.ends_with('?');
            b.params.push(Param { name: name.trim_end_matches('?').to_string(), ty, optional, desc });
        }
        "return" => {
            let (ty, rest) = split_type(args);
            let (name, desc) = match split_word(&rest) {
                (n, d) if !n.is_empty() && n.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                    (n.to_string(), d.to_string())
                }
                _ => (String::new(), rest.clone()),
            };
            b.returns.push(Ret { ty, name, desc });
        }
        "type" => b.ty = Some(split_type(args).0),
        "async" => b.is_async = true,
        _ => {}
    }
}

/// The line after a comment block says what the block documents.
fn finish_block(b: Block, line: &str, meta: Option<&str>, vars: &mut BTreeMap<String, String>, docs: &mut Docs) {
    let line = line.trim();
    if let Some((name, parent)) = b.class.clone() {
        let doc = b.doc();
        let class =
            docs.classes.entry(name.clone()).or_insert_with(|| ClassDoc { name: name.clone(), ..Default::default() });
        class.module = meta.map(str::to_string);
        class.parent = parent;
        class.doc = doc;
        class.fields.extend(b.fields);
        if let Some(var) =
            line.strip_prefix("local ").and_then(|r| r.split_once('=')).map(|(v, _)| v.trim().to_string())
        {
            vars.insert(var, name);
        }
        return;
    }
    if let Some(decl) = line.strip_prefix("function ") {
        let Some((head, args)) = decl.split_once('(') else { return };
        let (var, name, method) = match head.split_once(':') {
            Some((v, n)) => (v, n, true),
            None => match head.rsplit_once('.') {
                Some((v, n)) => (v, n, false),
                None => return,
            },
        };
        let Some(class) = vars.get(var.trim()).and_then(|c| docs.classes.get_mut(c)) else { return };
        let declared: Vec<&str> =
            args.split(')').next().unwrap_or("").split(',').map(str::trim).filter(|a| !a.is_empty()).collect();
        // The declaration gives the order; `---@param` the types.
        let params = declared
            .iter()
            .map(|a| {
                b.params.iter().find(|p| p.name == *a).cloned().unwrap_or(Param {
                    name: a.to_string(),
                    ty: "any".into(),
                    optional: false,
                    desc: String::new(),
                })
            })
            .collect();
        let doc = b.doc();
        class.functions.push(FnDoc {
            name: name.trim().to_string(),
            method,
            params,
            returns: b.returns,
            doc,
            is_async: b.is_async,
        });
        return;
    }
    // `json.null = nil` after `---@type lightuserdata`: a value of the module.
    if let (Some(ty), Some((lhs, _))) = (b.ty.clone(), line.split_once('='))
        && let Some((var, name)) = lhs.trim().split_once('.')
        && let Some(class) = vars.get(var).and_then(|c| docs.classes.get_mut(c))
    {
        class.fields.push(Field { name: name.trim().to_string(), ty, desc: b.doc() });
    }
}

/// The first word and the rest (trimmed).
fn split_word(s: &str) -> (&str, String) {
    let s = s.trim();
    match s.split_once(char::is_whitespace) {
        Some((w, rest)) => (w, rest.trim().to_string()),
        None => (s, String::new()),
    }
}

/// A LuaLS type at the start of `s` and the rest: brackets may hold spaces
/// (`table<string, string>`, `{pretty?: boolean}`, `fun(p: X)`).
fn split_type(s: &str) -> (String, String) {
    let s = s.trim();
    let mut depth = 0i32;
    let mut end = s.len();
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    for (k, &(i, c)) in chars.iter().enumerate() {
        match c {
            '(' | '{' | '[' | '<' => depth += 1,
            ')' | '}' | ']' | '>' => depth -= 1,
            // `fun(x): integer`: the return type follows.
            ':' if depth == 0 && k > 0 && chars[k - 1].1 == ')' => {}
            c if c.is_whitespace() && depth <= 0 => {
                // `a | b` and `fun(): x` keep going.
                let prev = s[..i].trim_end();
                let next = s[i..].trim_start();
                if prev.ends_with('|') || prev.ends_with(':') || next.starts_with('|') {
                    continue;
                }
                end = i;
                break;
            }
            _ => {}
        }
    }
    (s[..end].to_string(), s[end..].trim().to_string())
}

// Finding what a value is -----------------------------------------------------------

/// The module and field a function is found under in `package.loaded`
/// (`aibench.bench`, `run`), looking only at aibench's modules; raw reads,
/// nothing is called.
pub fn locate_function(lua: &Lua, f: &LuaFunction) -> Option<(String, String)> {
    let loaded: LuaTable = lua.named_registry_value::<LuaTable>("_LOADED").ok()?;
    let mut found: Option<(String, String)> = None;
    for (k, v) in loaded.pairs::<LuaValue, LuaValue>().flatten() {
        let (Some(module), LuaValue::Table(t)) = (k.as_string().map(|s| s.to_string_lossy()), v) else { continue };
        if module != "aibench" && !module.starts_with("aibench.") {
            continue;
        }
        for (fk, fv) in t.pairs::<LuaValue, LuaValue>().flatten() {
            if let (LuaValue::Function(g), Some(name)) = (fv, fk.as_string().map(|s| s.to_string_lossy()))
                && g == *f
            {
                // A documented module wins over one that re-exports the function.
                let documented = docs().function(&module, &name).is_some();
                if found.is_none() || documented {
                    found = Some((module.clone(), name));
                }
                if documented {
                    return found;
                }
            }
        }
    }
    found
}

/// How the REPL prints a function: its signature from the stubs
/// (`bench.run(spec, opts?) -> Result?, Error?`), else its name and
/// parameters as Lua knows them (`f(a, b)  -- stdin:1`), else Lua's own
/// `function: 0x…`.
pub fn describe_function(lua: &Lua, f: &LuaFunction) -> String {
    if let Some((module, name)) = locate_function(lua, f) {
        if let Some(doc) = docs().function(&module, &name) {
            return doc.signature(owner_name(&module));
        }
        return format!("{}.{name}(...)", owner_name(&module));
    }
    let info = f.info();
    let global = global_name(lua, f);
    if info.what == "Lua" || info.what == "main" {
        let params = lua_params(lua, f).unwrap_or_default();
        let name = global.unwrap_or_else(|| "function".into());
        let source = info.short_src.map(|s| format!("  -- {s}:{}", info.line_defined.unwrap_or(0))).unwrap_or_default();
        return format!("{name}({params}){source}");
    }
    match global {
        Some(n) => format!("{n}(...)  -- built in"),
        None => format!("function: {:p}", f.to_pointer()),
    }
}

/// The global a function is stored under, if any (raw reads).
fn global_name(lua: &Lua, f: &LuaFunction) -> Option<String> {
    lua.globals().pairs::<LuaValue, LuaValue>().flatten().find_map(|(k, v)| match (k, v) {
        (LuaValue::String(s), LuaValue::Function(g)) if g == *f => Some(s.to_string_lossy()),
        _ => None,
    })
}

/// A Lua function's parameter names (`a, b, ...`), from the debug library.
fn lua_params(lua: &Lua, f: &LuaFunction) -> Option<String> {
    let getlocal: LuaFunction = lua.globals().get::<LuaTable>("debug").ok()?.raw_get("getlocal").ok()?;
    let mut names = Vec::new();
    for i in 1..=64 {
        match getlocal.call::<Option<String>>((f.clone(), i)).ok()? {
            Some(n) => names.push(n),
            None => break,
        }
    }
    Some(names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STUB: &str = r#"---@meta aibench.demo

---A demo module. It does things.
---@class aibench.demo
---@field version string the version
local demo = {}

---@class aibench.demo.Handle
---@field url string base URL
local Handle = {}

---Stops it.
---@async
---@param grace_s? number seconds
---@return true? ok
---@return aibench.Error? err why not
function Handle:stop(grace_s) end

---Runs a thing. Second sentence.
---More text.
---@param spec aibench.demo.Spec|table the spec
---@param opts? {progress?: boolean, on_progress?: fun(p: table)} options
---@return aibench.demo.Handle? handle
---@return aibench.Error? err
function demo.run(spec, opts) end

---The null value.
---@type lightuserdata
demo.null = nil

return demo
"#;

    #[test]
    fn reads_modules_classes_functions_and_fields() {
        let d = Docs::parse([STUB]);
        assert_eq!(d.modules, vec!["aibench.demo"]);
        let m = d.class("aibench.demo").unwrap();
        assert_eq!(m.doc, "A demo module. It does things.");
        assert_eq!(m.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["version", "null"]);
        let run = d.function("aibench.demo", "run").unwrap();
        assert_eq!(run.signature("demo"), "demo.run(spec, opts?) -> Handle?, Error?");
        assert_eq!(run.params[1].ty, "{progress?: boolean, on_progress?: fun(p: table)}");
        assert_eq!(run.params[1].desc, "options");
        assert_eq!(run.summary(), "Runs a thing.");
        assert_eq!(run.doc, "Runs a thing. Second sentence.\nMore text.");
        let stop = d.function("aibench.demo.Handle", "stop").unwrap();
        assert!(stop.method && stop.is_async);
        assert_eq!(stop.signature("Handle"), "Handle:stop(grace_s?) -> true?, Error?");
        assert_eq!(stop.returns[1].name, "err");
        assert_eq!(stop.returns[1].desc, "why not");
    }

    #[test]
    fn inherited_functions_count() {
        let parent = "---@meta\n---@class aibench.Base\nlocal Base = {}\n\n---Submits.\n---@param spec table\nfunction Base.submit(spec) end\n";
        let child =
            "---@meta aibench.kid\n---A kid.\n---@class aibench.kid: aibench.Base\nlocal kid = {}\nreturn kid\n";
        let d = Docs::parse([parent, child]);
        assert_eq!(d.modules, vec!["aibench.kid"]);
        assert_eq!(d.functions_of("aibench.kid").len(), 1);
        assert_eq!(d.function("aibench.kid", "submit").unwrap().signature("kid"), "kid.submit(spec)");
    }

    #[test]
    fn short_types() {
        assert_eq!(short_type("aibench.bench.Result?"), "Result?");
        assert_eq!(short_type("(aibench.bench.Result|table)[]"), "(Result|table)[]");
        assert_eq!(short_type("table<string, aibench.prom.Family>?"), "table<string, Family>?");
    }

    #[test]
    fn first_sentences() {
        assert_eq!(first_sentence("Stops it, e.g. now. Then more."), "Stops it, e.g. now.");
        assert_eq!(first_sentence("No full stop\nhere"), "No full stop here");
    }

    #[test]
    fn every_embedded_stub_parses_into_a_module() {
        let d = docs();
        for m in ["aibench", "aibench.bench", "aibench.sim", "aibench.json"] {
            assert!(d.modules.iter().any(|x| x == m), "{m} missing from {:?}", d.modules);
        }
        assert!(d.function("aibench.bench", "run").is_some());
        assert!(d.function("aibench.sim.Handle", "stop").unwrap().method);
        // aibench.local documents its functions through aibench.Executor.
        assert!(d.function("aibench.local", "submit").is_some());
    }
}
