//! A load generator spec as a Lua value: userdata around the engine's
//! [`ValidSpec`], validated once when it is made (`bench.spec`). `bench.run`
//! and the job client take it as it is; nothing validates it again.
//!
//! Fields read as in the spec (`s.workload.rate`), converted on first read;
//! `s:to_json()` writes it for a job folder, `s:to_table()` gives a copy to
//! change (and make a spec of again). `json.encode(s)` writes the spec.

use aibench_core::loadgen::ValidSpec;
use aibench_core::typed::FieldError;
use mlua::prelude::*;
use serde_json::Value as Json;

use crate::binding::Opts;
use crate::convert;

/// Keys of a spec table that are not data but run options.
pub const HOOKS: &[&str] = &["progress", "on_progress"];

pub struct Spec(pub ValidSpec);

impl serde::Serialize for Spec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// A spec table's data as JSON (the run options left out).
fn table_json(lua: &Lua, t: &LuaTable) -> Result<Json, FieldError> {
    let copy = lua.create_table().map_err(|e| FieldError::new("", e.to_string()))?;
    for kv in t.pairs::<LuaValue, LuaValue>() {
        let (k, v) = kv.map_err(|e| FieldError::new("", e.to_string()))?;
        if let LuaValue::String(s) = &k
            && HOOKS.iter().any(|h| s.as_bytes().as_ref() == h.as_bytes())
        {
            continue;
        }
        copy.raw_set(k, v).map_err(|e| FieldError::new("", e.to_string()))?;
    }
    convert::to_json(lua, &LuaValue::Table(copy)).map_err(|e| FieldError::new("", crate::binding::error_text(&e)))
}

/// Parses and validates a spec from a table or JSON text: the one validation.
pub fn parse(lua: &Lua, v: &LuaValue) -> Result<ValidSpec, FieldError> {
    let json = match v {
        LuaValue::Table(t) => table_json(lua, t)?,
        LuaValue::String(s) => {
            let mut j: Json = serde_json::from_slice(&s.as_bytes())
                .map_err(|e| FieldError::new("", format!("the spec is not JSON: {e}")))?;
            if let Some(m) = j.as_object_mut() {
                for h in HOOKS {
                    m.remove(*h);
                }
            }
            j
        }
        other => return Err(FieldError::new("", format!("expected a spec table, got {}", other.type_name()))),
    };
    let spec = ValidSpec::from_json(json)?;
    // The recipe's mistakes first: a dataset file that cannot be read is
    // found here, before anything is submitted (the run checks it again).
    spec.spec().dataset.check_file()?;
    Ok(spec)
}

/// The spec inside `v`: a spec userdata's (cloned) or one parsed from a table;
/// a bad one raises naming the field.
pub fn spec_of(lua: &Lua, v: &LuaValue) -> LuaResult<ValidSpec> {
    if let LuaValue::UserData(ud) = v
        && let Ok(s) = ud.borrow::<Spec>()
    {
        return Ok(s.0.clone());
    }
    parse(lua, v).map_err(crate::binding::raise_field)
}

pub fn create(lua: &Lua, spec: ValidSpec) -> LuaResult<LuaAnyUserData> {
    let ud = lua.create_ser_userdata(Spec(spec))?;
    ud.set_user_value(lua.create_table()?)?;
    Ok(ud)
}

fn to_value(s: &Spec) -> LuaResult<Json> {
    serde_json::to_value(&s.0).map_err(LuaError::external)
}

impl LuaUserData for Spec {
    fn add_methods<M: LuaUserDataMethods<Self>>(m: &mut M) {
        m.add_method("to_json", |lua, this, opts: Option<LuaTable>| {
            let mut o = Opts::new(lua, "spec:to_json", opts);
            let pretty: bool = o.get("pretty")?.unwrap_or(true);
            o.finish()?;
            let s = if pretty { serde_json::to_string_pretty(&this.0) } else { serde_json::to_string(&this.0) };
            s.map_err(LuaError::external)
        });
        m.add_method("to_table", |lua, this, ()| convert::to_lua(lua, &to_value(this)?));
        m.add_meta_function(LuaMetaMethod::Index, |lua, (ud, key): (LuaAnyUserData, LuaValue)| {
            super::cached_field(lua, &ud, &key, |k| {
                let this = ud.borrow::<Spec>()?;
                let v = to_value(&this)?;
                Ok(v.get(k).cloned())
            })
        });
        m.add_meta_function(LuaMetaMethod::NewIndex, |_, (_ud, key): (LuaAnyUserData, LuaValue)| -> LuaResult<()> {
            Err(super::read_only(
                "bench spec",
                &key,
                "a spec is validated once; change s:to_table() and make a spec of it",
            ))
        });
        m.add_meta_function(LuaMetaMethod::Pairs, |lua, ud: LuaAnyUserData| {
            let v = {
                let this = ud.borrow::<Spec>()?;
                to_value(&this)?
            };
            super::pairs_of(lua, &v)
        });
        m.add_meta_method(LuaMetaMethod::ToString, |_, this, ()| {
            let s = this.0.spec();
            Ok(format!(
                "bench spec{} for {}",
                s.label.as_deref().map(|l| format!(" '{l}'")).unwrap_or_default(),
                s.target.url.list().join(", ")
            ))
        });
    }
}

/// `bench.spec(t)`: the spec, or `nil, err` with `err.field`.
pub fn make(lua: &Lua, v: LuaValue) -> LuaResult<crate::binding::Fallible<LuaAnyUserData>> {
    if let LuaValue::UserData(ud) = &v
        && ud.borrow::<Spec>().is_ok()
    {
        return Ok(Ok(ud.clone()));
    }
    match parse(lua, &v) {
        Ok(s) => Ok(Ok(create(lua, s)?)),
        Err(e) => Ok(Err(crate::binding::field_error(e))),
    }
}
