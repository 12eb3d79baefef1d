//! `aibench.yaml`: decode / encode. Parse errors carry line and column.

use mlua::prelude::*;

use crate::binding::{Fallible, OpError, Opts};
use crate::convert;

/// YAML text -> JSON model. Map keys that are not strings become strings.
pub fn parse(text: &str) -> Result<serde_json::Value, OpError> {
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let (line, col) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
        OpError::new("parse", format!("line {line} column {col}: {}", strip_location(&e.to_string())))
            .with("line", line)
            .with("column", col)
    })?;
    yaml_to_json(v).map_err(|m| OpError::new("parse", m))
}

fn strip_location(msg: &str) -> String {
    // serde_yaml appends " at line L column C"; we put the location first.
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn yaml_to_json(v: serde_yaml_ng::Value) -> Result<serde_json::Value, String> {
    use serde_yaml_ng::Value as Y;
    Ok(match v {
        Y::Null => serde_json::Value::Null,
        Y::Bool(b) => b.into(),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into()
            } else if let Some(f) = n.as_f64() {
                serde_json::Number::from_f64(f)
                    .map(serde_json::Value::Number)
                    .ok_or_else(|| format!("number {f} is not finite"))?
            } else {
                return Err(format!("unsupported number {n}"));
            }
        }
        Y::String(s) => s.into(),
        Y::Sequence(seq) => serde_json::Value::Array(seq.into_iter().map(yaml_to_json).collect::<Result<_, _>>()?),
        Y::Mapping(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => return Err(format!("unsupported map key {other:?}")),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            serde_json::Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(t.value)?,
    })
}

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    t.set(
        "decode",
        lua.create_function(|lua, (s, opts): (LuaString, Option<LuaTable>)| -> LuaResult<Fallible<LuaValue>> {
            let mut o = Opts::new(lua, "yaml.decode", opts);
            let name: Option<String> = o.get("name")?;
            o.finish()?;
            let text = s.to_str()?.to_string();
            match parse(&text) {
                Ok(j) => Ok(Ok(convert::to_lua_plain(lua, &j)?)),
                Err(mut e) => {
                    if let Some(n) = name {
                        e.message = format!("{n}: {}", e.message);
                    }
                    Ok(Err(e))
                }
            }
        })?,
    )?;
    t.set(
        "encode",
        lua.create_function(|lua, v: LuaValue| {
            let j = convert::to_json(lua, &v)
                .map_err(|e| LuaError::runtime(format!("yaml.encode: {}", crate::binding::error_text(&e))))?;
            serde_yaml_ng::to_string(&j).map_err(|e| LuaError::runtime(format!("yaml.encode: {e}")))
        })?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_location() {
        let e = parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(e.message.starts_with("line "), "{}", e.message);
        assert!(e.extra.iter().any(|(k, v)| k == "line" && v.as_u64().unwrap() >= 2));
    }

    #[test]
    fn keys_become_strings() {
        let v = parse("1: a\ntrue: b\n").unwrap();
        assert_eq!(v["1"], "a");
        assert_eq!(v["true"], "b");
    }
}
