//! Typed values from JSON (specs from Lua tables and recipes), with errors
//! that name the failing field: `workload.users: invalid type ...`.

/// Deserialises with the failing field path in the message.
pub fn from_json<T: serde::de::DeserializeOwned>(json: serde_json::Value, what: &str) -> Result<T, String> {
    serde_path_to_error::deserialize::<_, T>(json)
        .map_err(|e| located(what, &e.path().to_string(), &e.inner().to_string()))
}

/// `what.path: message` (either part may be empty), with serde's
/// unknown-field and unknown-variant messages given a suggestion.
pub fn located(what: &str, path: &str, msg: &str) -> String {
    let msg = with_suggestion(msg);
    match (what.is_empty(), path == "." || path.is_empty()) {
        (true, true) => msg,
        (true, false) => format!("{path}: {msg}"),
        (false, true) => format!("{what}: {msg}"),
        (false, false) => format!("{what}.{path}: {msg}"),
    }
}

/// serde's "unknown field `x`, expected one of `a`, `b`" (or variant) with
/// the closest candidate suggested, as every other aibench message does.
fn with_suggestion(msg: &str) -> String {
    // mlua's deserializer puts its own words first.
    let msg = msg.strip_prefix("deserialize error: ").unwrap_or(msg);
    let Some(kind) = ["unknown field", "unknown variant"].into_iter().find(|k| msg.starts_with(k)) else {
        return msg.to_string();
    };
    let ticks: Vec<&str> = msg.split('`').skip(1).step_by(2).collect();
    let Some((given, candidates)) = ticks.split_first() else { return msg.to_string() };
    let hint = crate::util::did_you_mean(given, candidates.iter().copied())
        .map(|c| format!(" (did you mean '{c}'?)"))
        .unwrap_or_default();
    let expected =
        if candidates.is_empty() { String::new() } else { format!("; expected one of: {}", candidates.join(", ")) };
    format!("{kind} '{given}'{hint}{expected}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_get_a_suggestion() {
        let m = with_suggestion("unknown field `concurent_users`, expected one of `concurrent_users`, `users`, `seed`");
        assert_eq!(
            m,
            "unknown field 'concurent_users' (did you mean 'concurrent_users'?); expected one of: concurrent_users, users, seed"
        );
        let m = with_suggestion("unknown variant `posson`, expected one of `constant`, `poisson`, `gamma`");
        assert!(m.contains("did you mean 'poisson'"), "{m}");
        assert_eq!(
            with_suggestion("invalid type: string \"x\", expected u64"),
            "invalid type: string \"x\", expected u64"
        );
    }
}
