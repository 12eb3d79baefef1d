//! Typed values from JSON (specs from Lua tables and recipes), with errors
//! that name the failing field: `workload.users: invalid type ...`.

/// An error about one field of a spec, recipe or configuration: the field's
/// path (`workload.rate`, `target.url[1]`; empty when the error is about the
/// whole) and what was wrong with it. This is what crosses to Lua as
/// `{kind, field, message}`: a caller names the field in its own terms (a
/// recipe field, a command-line flag) from `field`, without reading the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), message: message.into() }
    }

    /// The same error one level down: `under("workload")` turns `rate` into
    /// `workload.rate`.
    pub fn under(mut self, parent: &str) -> FieldError {
        self.field = join(parent, &self.field);
        self
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for FieldError {}

/// `parent.child`, either part possibly empty (serde's root path `.` is empty).
pub fn join(parent: &str, child: &str) -> String {
    match (parent.is_empty(), child.is_empty() || child == ".") {
        (_, true) => parent.to_string(),
        (true, false) => child.to_string(),
        (false, false) => format!("{parent}.{child}"),
    }
}

/// Deserialises, naming the failing field: `what.path` as the field.
pub fn from_json_at<T: serde::de::DeserializeOwned>(json: serde_json::Value, what: &str) -> Result<T, FieldError> {
    serde_path_to_error::deserialize::<_, T>(json)
        .map_err(|e| FieldError::new(join(what, &e.path().to_string()), with_suggestion(&e.inner().to_string())))
}

/// Deserialises with the failing field path in the message.
pub fn from_json<T: serde::de::DeserializeOwned>(json: serde_json::Value, what: &str) -> Result<T, String> {
    from_json_at(json, what).map_err(|e| e.to_string())
}

/// `what.path: message` (either part may be empty), with serde's
/// unknown-field and unknown-variant messages given a suggestion.
pub fn located(what: &str, path: &str, msg: &str) -> String {
    FieldError::new(join(what, path), with_suggestion(msg)).to_string()
}

/// serde's "unknown field `x`, expected one of `a`, `b`" (or variant) with
/// the closest candidate suggested, as every other aibench message does.
fn with_suggestion(msg: &str) -> String {
    // mlua's deserializer puts its own words first.
    let msg = msg.strip_prefix("deserialize error: ").unwrap_or(msg);
    if msg.starts_with("invalid type: ") {
        return plain_type(msg);
    }
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

/// serde's "invalid type: string \"4\", expected u64" in a user's words:
/// the Rust type becomes what to write ("a whole number"), and a number
/// given as a string says to drop the quotes.
fn plain_type(msg: &str) -> String {
    const WORDS: [(&str, &str); 9] = [
        ("u8", "a whole number"),
        ("u16", "a whole number"),
        ("u32", "a whole number"),
        ("u64", "a whole number"),
        ("usize", "a whole number"),
        ("i32", "an integer"),
        ("i64", "an integer"),
        ("f32", "a number"),
        ("f64", "a number"),
    ];
    let Some((given, want)) = msg.split_once(", expected ") else { return msg.to_string() };
    let Some((_, words)) = WORDS.iter().find(|(t, _)| *t == want) else { return msg.to_string() };
    let quoted = given.strip_prefix("invalid type: string \"").and_then(|r| r.strip_suffix('"'));
    match quoted {
        Some(q) if q.trim().parse::<f64>().is_ok() => format!("{given}, expected {words}: write {q} without quotes"),
        _ => format!("{given}, expected {words}"),
    }
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
            "invalid type: string \"x\", expected a whole number"
        );
        assert_eq!(
            with_suggestion("invalid type: string \"4\", expected u64"),
            "invalid type: string \"4\", expected a whole number: write 4 without quotes"
        );
        assert_eq!(
            with_suggestion("invalid type: floating point `2.5`, expected f64"),
            "invalid type: floating point `2.5`, expected a number"
        );
        assert_eq!(with_suggestion("invalid type: map, expected a string"), "invalid type: map, expected a string");
    }
}
