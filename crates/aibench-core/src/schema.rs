//! The recipe sections whose shape a Rust type owns (`target`, `slo`,
//! `orchestration.resources`), described for the recipe checker in Lua
//! (`lua/aibench/recipe.lua`), which reports every problem at once with the
//! file and field. The descriptions sit next to the types they describe; a
//! test holds each to its type's fields, so the two cannot drift apart.

use serde_json::{Value, json};

use crate::jobs::script::Resources;
use crate::loadgen::spec::{Api, Balance, Slo, Target};

fn string() -> Value {
    json!({"kind": "string"})
}

fn table(fields: Value) -> Value {
    json!({"kind": "table", "fields": fields, "required": []})
}

/// A section's description by name: `target`, `slo` or `resources`.
pub fn recipe_section(name: &str) -> Option<Value> {
    Some(match name {
        "target" => Target::schema(),
        "slo" => Slo::schema(),
        "resources" => Resources::schema(),
        _ => return None,
    })
}

impl Target {
    /// The recipe's `target` (besides `service_name`, which discovery uses).
    pub fn schema() -> Value {
        let apis: Vec<&str> = Api::ALL.iter().map(|a| a.name()).collect();
        table(json!({
            "url": {"kind": "any"},
            "api": {"kind": "oneof", "values": apis},
            "model": string(),
            "headers": {"kind": "map", "of": {"kind": "scalar"}},
            "timeout_s": {"kind": "number", "min": 0},
            "stream": {"kind": "boolean"},
            "ignore_eos": {"kind": "boolean"},
            "path": string(),
            "method": string(),
            "body": string(),
            "tokenizer": string(),
            "prompt_format": {"kind": "oneof", "values": ["text", "ids"]},
            "max_event_bytes": {"kind": "number", "min": 1024},
            "balance": {"kind": "oneof", "values": Balance::ALL.map(|b| b.name())},
        }))
    }
}

impl Slo {
    pub fn schema() -> Value {
        let ms = json!({"kind": "number", "min": 0});
        table(json!({"ttft_ms": ms, "tpot_ms": ms, "itl_ms": ms, "e2e_ms": ms}))
    }
}

impl Resources {
    pub fn schema() -> Value {
        table(json!({
            "partition": string(),
            "cpu_cores": {"kind": "integer", "min": 1, "max": 100000},
            "memory_gb": {"kind": "number", "min": 0},
            "gpu_count": {"kind": "integer", "min": 0, "max": 1024},
            "time_limit": {"kind": "time"},
            "nodes": {"kind": "integer", "min": 1, "max": 100000},
            "account": string(),
            "qos": string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field names serde accepts for `T`, from its unknown-field error.
    fn serde_fields<T: serde::de::DeserializeOwned + std::fmt::Debug>() -> Vec<String> {
        let e = serde_json::from_value::<T>(json!({"surely_not_a_field": 1})).unwrap_err().to_string();
        e.split('`').skip(1).step_by(2).skip(1).map(str::to_string).collect()
    }

    fn described(v: &Value) -> Vec<String> {
        v["fields"].as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn each_description_has_exactly_its_types_fields() {
        for (name, mut fields) in [
            ("target", serde_fields::<Target>()),
            ("slo", serde_fields::<Slo>()),
            ("resources", serde_fields::<Resources>()),
        ] {
            let mut d = described(&recipe_section(name).unwrap());
            fields.sort();
            d.sort();
            assert!(!fields.is_empty(), "{name}");
            assert_eq!(d, fields, "{name}: the recipe description and the Rust type disagree");
        }
        assert!(recipe_section("nope").is_none());
    }

    #[test]
    fn api_values_are_the_enums() {
        let v = Target::schema();
        let values: Vec<&str> =
            v["fields"]["api"]["values"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
        for a in values {
            let parsed: Api = serde_json::from_value(json!(a)).unwrap();
            assert_eq!(parsed.name(), a);
        }
    }
}
