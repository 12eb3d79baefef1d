//! `help()` at the REPL: the modules, a module's functions, one function in
//! full, a type's fields and methods. The text is the LuaLS stubs' (read by
//! `aibench_lua::types::docs`): there is no second copy of the docs.

use mlua::prelude::*;

use aibench_lua::types::docs::{self, ClassDoc, Docs, FnDoc, first_sentence, owner_name};

/// Sets the global `help`.
pub fn install(lua: &Lua) -> LuaResult<()> {
    let f = lua.create_function(|lua, args: LuaMultiValue| {
        let text = text(lua, args.iter().next().unwrap_or(&LuaValue::Nil));
        aibench_core::print_line(&text);
        Ok(())
    })?;
    lua.globals().set("help", f)
}

/// The help text for a value (or a name given as a string).
pub fn text(lua: &Lua, v: &LuaValue) -> String {
    let d = docs::docs();
    match v {
        LuaValue::Nil => overview(d),
        LuaValue::String(s) => by_name(d, &s.to_string_lossy()),
        LuaValue::Table(t) => match module_of_table(lua, t) {
            Some(m) if d.class(&m).is_some() => module_help(d, &m),
            Some(m) => format!("{m} has no documentation (no stub in lua/types/); help() lists the documented modules"),
            None => {
                "a table: help() documents aibench's modules and their functions (help(bench), help(bench.run))".into()
            }
        },
        LuaValue::Function(f) => match docs::locate_function(lua, f) {
            Some((m, name)) if d.function(&m, &name).is_some() => {
                function_help(d.function(&m, &name).unwrap(), owner_name(&m))
            }
            _ => {
                format!("{}\n(no documentation: not a function of an aibench module)", docs::describe_function(lua, f))
            }
        },
        LuaValue::UserData(_) => match class_of_value(lua, d, v) {
            Some(c) => class_help(d, c),
            None => "a userdata without documentation; help() lists the modules".into(),
        },
        other => format!("a {}: help() documents aibench's modules and their functions", other.type_name()),
    }
}

/// `help()`: how to use help, then each documented module on one line.
fn overview(d: &Docs) -> String {
    let mut out = vec![
        "aibench's modules are loaded as globals (bench, server, client, monitor, report, json, ...).".to_string(),
        "  help(bench)  or help(\"bench\")   a module: its functions, fields and types".into(),
        "  help(bench.run)                  a function: signature and full description".into(),
        "  help(\"Result\")  or help(r)       a type, or a handle's fields and methods".into(),
        "Tab completes names, fields (bench.r<Tab>) and methods (s:<Tab>). A function prints as its".into(),
        "signature, a bench result as its summary. Ctrl-C cancels a running call; Ctrl-D exits.".into(),
        String::new(),
        "modules:".into(),
    ];
    let width = d.modules.iter().map(|m| owner_name(m).len()).max().unwrap_or(8);
    for m in &d.modules {
        let summary = d.class(m).map(|c| first_sentence(&c.doc)).unwrap_or_default();
        out.push(format!("  {:width$}  {}", owner_name(m), clip(&summary, 96)));
    }
    let undocumented: Vec<String> = aibench_lua::api::module_names(true, true)
        .into_iter()
        .filter(|n| n.strip_prefix("aibench.").is_some_and(|s| !s.contains('.')) && !d.modules.contains(n))
        .map(|n| owner_name(&n).to_string())
        .collect();
    if !undocumented.is_empty() {
        out.push(format!("also loaded, internal (no stub): {}", undocumented.join(", ")));
    }
    out.join("\n")
}

/// `help("bench")`, `help("bench.run")`, `help("Result")`, `help("Result:percentile")`.
fn by_name(d: &Docs, name: &str) -> String {
    let name = name.trim();
    let classes = find_classes(d, name);
    if !classes.is_empty() {
        let mut parts: Vec<String> = Vec::new();
        if classes.len() > 1 {
            let names: Vec<&str> = classes.iter().map(|c| c.name.as_str()).collect();
            parts.push(format!("{} types are called {name}: {}", names.len(), names.join(", ")));
        }
        for c in classes {
            parts.push(if d.modules.contains(&c.name) { module_help(d, &c.name) } else { class_help(d, c) });
        }
        return parts.join("\n\n");
    }
    if let Some(i) = name.rfind(['.', ':']) {
        for c in find_classes(d, &name[..i]) {
            if let Some(f) = d.function(&c.name, &name[i + 1..]) {
                let owner = if d.modules.contains(&c.name) { owner_name(&c.name) } else { short(&c.name) };
                return function_help(f, owner);
            }
        }
    }
    let mut known: Vec<String> = d.modules.iter().map(|m| owner_name(m).to_string()).collect();
    known.extend(d.classes.keys().map(|c| short(c).to_string()));
    let hint = aibench_core::util::did_you_mean(name, known.iter().map(String::as_str))
        .map(|s| format!(" (did you mean '{s}'?)"))
        .unwrap_or_default();
    format!("help: nothing is documented as '{name}'{hint}; help() lists the modules")
}

/// The classes a name means: its full name, its name without `aibench.`
/// (`bench.Result`), or its last part (`Result`, which may be several).
fn find_classes<'a>(d: &'a Docs, name: &str) -> Vec<&'a ClassDoc> {
    if let Some(c) = d.class(name).or_else(|| d.class(&format!("aibench.{name}"))) {
        return vec![c];
    }
    if name.is_empty() || name.contains('.') {
        return Vec::new();
    }
    d.classes.values().filter(|c| short(&c.name) == name).collect()
}

fn short(class: &str) -> &str {
    class.rsplit('.').next().unwrap_or(class)
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let cut: String = s.chars().take(n - 1).collect();
    format!("{}…", cut.trim_end())
}

fn indent(text: &str, pad: &str) -> String {
    text.lines().map(|l| format!("{pad}{l}")).collect::<Vec<_>>().join("\n")
}

/// A module: its description, functions (signature and first sentence),
/// values, and the types it declares.
fn module_help(d: &Docs, module: &str) -> String {
    let c = d.class(module).expect("a documented module");
    let owner = owner_name(module);
    let mut out = vec![format!("{module}"), indent(&c.doc, "  ")];
    let fns = d.functions_of(module);
    if !fns.is_empty() {
        out.push(String::new());
        out.push("functions:".into());
        for f in fns {
            out.push(format!("  {}{}", f.signature(owner), if f.is_async { "  [async]" } else { "" }));
            let s = f.summary();
            if !s.is_empty() {
                out.push(format!("      {}", clip(&s, 100)));
            }
        }
    }
    let fields = d.fields_of(module);
    if !fields.is_empty() {
        out.push(String::new());
        out.push("values:".into());
        for f in fields {
            out.push(format!("  {owner}.{}: {}{}", f.name, f.ty, dash(&first_sentence(&f.desc))));
        }
    }
    let types: Vec<&str> = d
        .classes
        .values()
        .filter(|t| t.module.as_deref() == Some(module) && t.name != module)
        .map(|t| short(&t.name))
        .collect();
    if !types.is_empty() {
        out.push(String::new());
        out.push(format!("types: {}  (help(\"{}\") shows one)", types.join(", "), types[0]));
    }
    out.push(format!("help({owner}.NAME) shows a function in full."));
    out.join("\n")
}

fn dash(s: &str) -> String {
    if s.is_empty() { String::new() } else { format!("  {s}") }
}

/// A type: its description, fields and methods.
fn class_help(d: &Docs, c: &ClassDoc) -> String {
    let mut out = vec![c.name.clone()];
    if !c.doc.is_empty() {
        out.push(indent(&c.doc, "  "));
    }
    let fields = d.fields_of(&c.name);
    if !fields.is_empty() {
        out.push(String::new());
        out.push("fields:".into());
        let width = fields.iter().map(|f| f.name.len()).max().unwrap_or(4);
        for f in fields {
            out.push(format!("  {:width$}  {}{}", f.name, docs::short_type(&f.ty), dash(&f.desc)));
        }
    }
    let fns = d.functions_of(&c.name);
    if !fns.is_empty() {
        out.push(String::new());
        out.push("methods:".into());
        for f in fns {
            out.push(format!("  {}{}", f.signature(short(&c.name)), if f.is_async { "  [async]" } else { "" }));
            let s = f.summary();
            if !s.is_empty() {
                out.push(format!("      {}", clip(&s, 100)));
            }
        }
    }
    out.join("\n")
}

/// One function in full: signature, description, parameters, returns.
pub fn function_help(f: &FnDoc, owner: &str) -> String {
    let mut out =
        vec![format!("{}{}", f.signature(owner), if f.is_async { "  [async: waits without blocking]" } else { "" })];
    if !f.doc.is_empty() {
        out.push(indent(&f.doc, "  "));
    }
    if !f.params.is_empty() {
        out.push("parameters:".into());
        let width = f.params.iter().map(|p| p.name.len() + usize::from(p.optional)).max().unwrap_or(4);
        for p in &f.params {
            let name = if p.optional { format!("{}?", p.name) } else { p.name.clone() };
            out.push(format!("  {name:width$}  {}{}", p.ty, dash(&p.desc)));
        }
    }
    if !f.returns.is_empty() {
        out.push("returns:".into());
        let width = f.returns.iter().map(|r| r.name.len()).max().unwrap_or(0);
        for r in &f.returns {
            out.push(if width == 0 {
                format!("  {}{}", r.ty, dash(&r.desc))
            } else {
                format!("  {:width$}  {}{}", r.name, r.ty, dash(&r.desc))
            });
        }
    }
    out.join("\n")
}

/// The `aibench.*` module a table is (by identity in `package.loaded`).
fn module_of_table(lua: &Lua, t: &LuaTable) -> Option<String> {
    let loaded: LuaTable = lua.named_registry_value("_LOADED").ok()?;
    loaded.pairs::<LuaValue, LuaValue>().flatten().find_map(|(k, v)| match (k, v) {
        (LuaValue::String(name), LuaValue::Table(m)) if m == *t => {
            let name = name.to_string_lossy();
            (name == "aibench" || name.starts_with("aibench.")).then_some(name)
        }
        _ => None,
    })
}

/// The documented class a handle (userdata) is: the one whose documented
/// methods and fields it has the most of, missing the fewest.
fn class_of_value<'a>(lua: &Lua, d: &'a Docs, v: &LuaValue) -> Option<&'a ClassDoc> {
    let names = super::complete::names_of(lua, v, false);
    let mut best: Option<(i64, &ClassDoc)> = None;
    for c in d.classes.values() {
        let fns = d.functions_of(&c.name);
        if fns.is_empty() || d.modules.contains(&c.name) {
            continue;
        }
        let have = fns.iter().filter(|f| names.contains(&f.name)).count() as i64;
        let score = 2 * have - (fns.len() as i64 - have);
        if have > 0 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> Lua {
        let lua = aibench_lua::host::new_state().unwrap();
        super::super::preload_globals(&lua).unwrap();
        lua
    }

    fn eval(lua: &Lua, code: &str) -> LuaValue {
        lua.load(code).eval().unwrap()
    }

    #[test]
    fn overview_lists_modules_with_a_line_each() {
        let t = text(&state(), &LuaValue::Nil);
        assert!(t.contains("help(bench.run)"), "{t}");
        let bench = t.lines().find(|l| l.trim_start().starts_with("bench ")).expect("a bench line");
        assert!(bench.contains("The native load generator."), "{bench}");
        for m in ["server", "client", "monitor", "report", "json"] {
            assert!(t.lines().any(|l| l.trim_start().starts_with(&format!("{m} "))), "{m} missing:\n{t}");
        }
    }

    #[test]
    fn module_by_value_or_name() {
        let lua = state();
        let by_value = text(&lua, &eval(&lua, "bench"));
        assert_eq!(by_value, text(&lua, &eval(&lua, "'bench'")));
        assert_eq!(by_value, text(&lua, &eval(&lua, "'aibench.bench'")));
        assert!(by_value.contains("bench.run(spec, opts?) -> Result?, Error?"), "{by_value}");
        assert!(by_value.contains("      Runs a benchmark."), "{by_value}");
        assert!(by_value.contains("types: "), "{by_value}");
    }

    #[test]
    fn one_function_in_full() {
        let lua = state();
        let t = text(&lua, &eval(&lua, "bench.run"));
        assert!(t.starts_with("bench.run(spec, opts?) -> Result?, Error?"), "{t}");
        assert!(t.contains("parameters:"), "{t}");
        assert!(t.contains("model discovery"), "the whole description: {t}");
        assert_eq!(t, text(&lua, &eval(&lua, "'bench.run'")));
        // Inherited from aibench.Executor.
        assert!(text(&lua, &eval(&lua, "aibench['local'].submit")).starts_with("local.submit(spec)"));
    }

    #[test]
    fn handles_and_types() {
        let lua = state();
        let spec = eval(
            &lua,
            "bench.validate({ target = { url = 'http://127.0.0.1:9', model = 'm' }, workload = { pattern = 'closed-loop', users = 1, total_requests = 1 } })",
        );
        let t = text(&lua, &spec);
        assert!(t.starts_with("aibench.bench.Spec"), "{t}");
        assert!(t.contains("Spec:to_json(opts?) -> string"), "{t}");
        // Two types are called Result: both are shown, said so first.
        let both = text(&lua, &eval(&lua, "'Result'"));
        assert!(both.starts_with("2 types are called Result: aibench.bench.Result, aibench.proc.Result"), "{both}");
        assert!(both.contains("Result:percentile(metric, p) -> number?"), "{both}");
        assert!(text(&lua, &eval(&lua, "'bench.Result'")).starts_with("aibench.bench.Result\n"));
        assert!(text(&lua, &eval(&lua, "'Result:percentile'")).starts_with("Result:percentile(metric, p)"));
    }

    #[test]
    fn unknown_names_say_so() {
        let lua = state();
        let t = text(&lua, &eval(&lua, "'bnech'"));
        assert!(t.contains("nothing is documented as 'bnech' (did you mean 'bench'?)"), "{t}");
        assert!(text(&lua, &eval(&lua, "print")).contains("no documentation"));
    }
}
