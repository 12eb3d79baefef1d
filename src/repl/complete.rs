//! The REPL's line editor helper: Tab completes globals, module fields and
//! methods (`be` → `bench`, `bench.ru` → `bench.run`, `s:` → the handle's
//! methods), and Enter on an incomplete chunk goes on to a new line of the
//! same entry instead of submitting it.
//!
//! Completion reads values without running Lua code (`members.lua`): a
//! half-typed line never calls the user's functions.

use mlua::prelude::*;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

const MEMBERS_KEY: &str = "aibench.repl.members";

/// Loads the introspection functions into the state (once, at start-up,
/// before the user's code can replace `debug`).
pub fn install(lua: &Lua) -> LuaResult<()> {
    let t: LuaTable = lua.load(include_str!("members.lua")).set_name("=repl-members").eval()?;
    lua.set_named_registry_value(MEMBERS_KEY, t)
}

fn members(lua: &Lua) -> LuaResult<LuaTable> {
    lua.named_registry_value(MEMBERS_KEY)
}

/// The names a value offers after `.` (all) or `:` (its functions), sorted.
pub fn names_of(lua: &Lua, v: &LuaValue, methods_only: bool) -> Vec<String> {
    let Ok(f) = members(lua).and_then(|m| m.get::<LuaFunction>("names")) else { return Vec::new() };
    let Ok(set) = f.call::<LuaTable>((v.clone(), methods_only)) else { return Vec::new() };
    let mut names: Vec<String> = set.pairs::<String, LuaValue>().flatten().map(|(k, _)| k).collect();
    names.sort();
    names
}

/// The value a dotted path names (`bench`, `aibench.bench`), read as
/// completion reads it; None when any step is missing.
pub fn lookup(lua: &Lua, path: &[&str]) -> Option<LuaValue> {
    let get: LuaFunction = members(lua).ok()?.get("get").ok()?;
    let mut v = LuaValue::Table(lua.globals());
    for name in path {
        v = get.call::<LuaValue>((v, *name)).ok()?;
        if v.is_nil() {
            return None;
        }
    }
    Some(v)
}

const KEYWORDS: &[&str] = &[
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in", "local", "nil",
    "not", "or", "repeat", "return", "then", "true", "until", "while",
];

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Completion of the word before `pos`: where the replaced part starts, and
/// the candidates (names, sorted).
pub fn candidates(lua: &Lua, line: &str, pos: usize) -> (usize, Vec<String>) {
    let before = &line[..pos];
    // Inside a string literal nothing is completed.
    if before.chars().filter(|&c| c == '"').count() % 2 == 1 || before.chars().filter(|&c| c == '\'').count() % 2 == 1 {
        return (pos, Vec::new());
    }
    let start = before
        .char_indices()
        .rev()
        .find(|&(_, c)| !(is_ident(c) || c == '.' || c == ':'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let expr = &before[start..];
    if expr.starts_with(|c: char| c.is_ascii_digit()) {
        return (pos, Vec::new());
    }
    let (base, sep, prefix) = match expr.rfind(['.', ':']) {
        Some(i) => (&expr[..i], expr.as_bytes()[i] as char, &expr[i + 1..]),
        None => ("", ' ', expr),
    };
    let from = pos - prefix.len();
    let mut names: Vec<String> = if sep == ' ' {
        if prefix.is_empty() {
            return (from, Vec::new());
        }
        let mut n = names_of(lua, &LuaValue::Table(lua.globals()), false);
        n.extend(KEYWORDS.iter().map(|k| k.to_string()));
        n
    } else {
        let path: Vec<&str> = base.split('.').collect();
        if base.contains(':') || path.iter().any(|p| p.is_empty() || !p.chars().all(is_ident)) {
            return (from, Vec::new());
        }
        match lookup(lua, &path) {
            Some(v) => names_of(lua, &v, sep == ':'),
            None => return (from, Vec::new()),
        }
    };
    names.retain(|n| n.starts_with(prefix) && n.chars().all(is_ident) && !n.starts_with(|c: char| c.is_ascii_digit()));
    // Private names (`_x`, `__index`) only when asked for.
    if !prefix.starts_with('_') {
        names.retain(|n| !n.starts_with('_'));
    }
    names.sort();
    names.dedup();
    (from, names)
}

/// True when `code` is a whole chunk (or cannot become one by adding lines):
/// what both the line editor and the piped reader continue on.
pub fn is_complete(lua: &Lua, code: &str) -> bool {
    lua.load(format!("return {code}")).into_function().is_ok()
        || !matches!(lua.load(code).into_function(), Err(LuaError::SyntaxError { incomplete_input: true, .. }))
}

/// rustyline's helper: completion and multi-line entry.
pub struct ReplHelper {
    pub lua: Lua,
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, names) = candidates(&self.lua, line, pos);
        Ok((start, names.into_iter().map(|n| Pair { display: n.clone(), replacement: n }).collect()))
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if is_complete(&self.lua, ctx.input()) {
            ValidationResult::Valid(None)
        } else {
            ValidationResult::Incomplete
        })
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> Lua {
        let lua = aibench_lua::host::new_state().unwrap();
        super::super::preload_globals(&lua).unwrap();
        install(&lua).unwrap();
        lua
    }

    #[test]
    fn completes_globals_modules_and_fields() {
        let lua = state();
        assert_eq!(candidates(&lua, "be", 2), (0, vec!["bench".to_string()]));
        let (start, names) = candidates(&lua, "x = bench.r", 11);
        assert_eq!(start, 10);
        assert_eq!(names, ["result", "run"]);
        assert_eq!(candidates(&lua, "aibench.bench.ru", 16).1, ["run"]);
        // Keywords too, and nothing for an empty word.
        assert!(candidates(&lua, "fun", 3).1.contains(&"function".to_string()));
        assert!(candidates(&lua, "", 0).1.is_empty());
        // Only up to the cursor.
        assert_eq!(candidates(&lua, "bench.r(1)", 7).1, ["result", "run"]);
    }

    #[test]
    fn completes_methods_of_tables_strings_and_userdata() {
        let lua = state();
        lua.load(
            r#"
            local Class = {}
            Class.__index = Class
            function Class:stop() end
            function Class:status() end
            obj = setmetatable({ name = "x" }, Class)
            s = "text"
            spec = bench.validate({ target = { url = "http://127.0.0.1:9", model = "m" }, workload = { pattern = "closed-loop", users = 1, total_requests = 1 } })
            job = require("aibench.local").job("local-none")
            "#,
        )
        .exec()
        .unwrap();
        assert_eq!(candidates(&lua, "obj:st", 6).1, ["status", "stop"]);
        // After `:` only functions; after `.` the fields too.
        assert_eq!(candidates(&lua, "obj.", 4).1, ["name", "status", "stop"]);
        assert!(candidates(&lua, "s:up", 4).1.contains(&"upper".to_string()));
        assert_eq!(candidates(&lua, "spec:to_", 8).1, ["to_json", "to_table"]);
        // A userdata's fields come from its field getters or __pairs.
        assert!(candidates(&lua, "spec.work", 9).1.contains(&"workload".to_string()));
        assert!(candidates(&lua, "spec.workload.us", 16).1.contains(&"users".to_string()));
        let job = candidates(&lua, "job:", 4).1;
        for m in ["cancel", "status", "wait"] {
            assert!(job.contains(&m.to_string()), "{m} missing from {job:?}");
        }
    }

    #[test]
    fn completion_never_calls_lua_code() {
        let lua = state();
        lua.load(
            r#"
            calls = 0
            trap = setmetatable({}, {
              __index = function() calls = calls + 1 return { x = 1 } end,
              __pairs = function() calls = calls + 1 return next, { y = 1 }, nil end,
            })
            "#,
        )
        .exec()
        .unwrap();
        assert!(candidates(&lua, "trap.", 5).1.is_empty());
        assert!(candidates(&lua, "trap.a.", 7).1.is_empty());
        assert_eq!(lua.globals().get::<i64>("calls").unwrap(), 0);
    }

    #[test]
    fn nothing_inside_strings_or_after_calls() {
        let lua = state();
        assert!(candidates(&lua, "print(\"be", 9).1.is_empty());
        assert!(candidates(&lua, "f().x", 5).1.is_empty());
        assert!(candidates(&lua, "nosuch.x", 8).1.is_empty());
    }

    #[test]
    fn incomplete_chunks_continue() {
        let lua = state();
        assert!(!is_complete(&lua, "function f(a)"));
        assert!(!is_complete(&lua, "function f(a)\n  return a * 2"));
        assert!(is_complete(&lua, "function f(a)\n  return a * 2\nend"));
        assert!(!is_complete(&lua, "local t = {"));
        assert!(is_complete(&lua, "x = = 1"), "a plain syntax error is complete (it is reported)");
    }
}
