//! Reading decoded params (see form.rs) into typed values, with Stripe's
//! validation errors. Shared by every object type's "apply params" function.

use serde_json::{Map, Value};

use super::errors::ApiError;

pub type Params = Map<String, Value>;

/// The spec's `maxLength` for most free-text params.
pub const TEXT_MAX: usize = 5000;

/// `parent[child]`, or `child` at the top level.
pub fn nested(parent: Option<&str>, child: &str) -> String {
    match parent {
        Some(p) => format!("{p}[{child}]"),
        None => child.to_string(),
    }
}

/// Fails on the first key not in `allowed` with Stripe's parameter_unknown.
pub fn check_known(
    params: &Params,
    allowed: &[&str],
    parent: Option<&str>,
) -> Result<(), ApiError> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::unknown_param(&nested(parent, k))),
        None => Ok(()),
    }
}

fn preview(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

/// A string param; `Ok(None)` for "" (unset).
pub fn string(v: &Value, param: &str, max_chars: usize) -> Result<Option<String>, ApiError> {
    match v {
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) if s.chars().count() > max_chars => Err(ApiError::invalid(format!(
            "Invalid string: {}; must be at most {max_chars} characters",
            preview(v)
        ))
        .param(param)),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(ApiError::invalid(format!("Invalid string: {}", preview(other))).param(param)),
    }
}

pub fn integer(v: &Value, param: &str) -> Result<i64, ApiError> {
    match v {
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| ApiError::invalid_integer(param, s)),
        other => Err(ApiError::invalid_integer(param, &preview(other))),
    }
}

/// A string that cannot be unset: "" is refused.
pub fn required_string(v: &Value, param: &str, max_chars: usize) -> Result<String, ApiError> {
    string(v, param, max_chars)?.ok_or_else(|| ApiError::cannot_unset(param))
}

/// `true` or `false`; "" is refused (a boolean cannot be unset).
pub fn boolean(v: &Value, param: &str) -> Result<bool, ApiError> {
    match v.as_str() {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some("") => Err(ApiError::cannot_unset(param)),
        _ => Err(ApiError::invalid(format!("Invalid boolean: {}", preview(v))).param(param)),
    }
}

/// An integer of at least `min`.
pub fn integer_at_least(v: &Value, param: &str, min: i64) -> Result<i64, ApiError> {
    let n = integer(v, param)?;
    if n < min {
        return Err(ApiError::invalid(format!(
            "This value must be greater than or equal to {min}."
        ))
        .param(param));
    }
    Ok(n)
}

/// A hash param; `Ok(None)` for "" (unset).
pub fn hash<'a>(v: &'a Value, param: &str) -> Result<Option<&'a Params>, ApiError> {
    match v {
        Value::String(s) if s.is_empty() => Ok(None),
        Value::Object(m) => Ok(Some(m)),
        other => Err(ApiError::invalid(format!("Invalid hash: {}", preview(other))).param(param)),
    }
}

/// An array param: `x[]=…`, `x[0]=…&x[1]=…` (in index order), or "" for empty.
pub fn list<'a>(v: &'a Value, param: &str) -> Result<Vec<&'a Value>, ApiError> {
    let invalid = || ApiError::invalid(format!("Invalid array: {}", preview(v))).param(param);
    match v {
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::Array(items) => Ok(items.iter().collect()),
        Value::Object(m) => {
            let mut indexed = m
                .iter()
                .map(|(k, v)| k.parse::<usize>().map(|i| (i, v)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| invalid())?;
            indexed.sort_by_key(|(i, _)| *i);
            Ok(indexed.into_iter().map(|(_, v)| v).collect())
        }
        _ => Err(invalid()),
    }
}

/// One of the allowed strings; `Ok(None)` for "".
pub fn one_of(v: &Value, param: &str, allowed: &[&str]) -> Result<Option<String>, ApiError> {
    match string(v, param, 5000)? {
        None => Ok(None),
        Some(s) if allowed.contains(&s.as_str()) => Ok(Some(s)),
        Some(s) => Err(ApiError::invalid(format!(
            "Invalid {param}: must be one of {} (got '{s}')",
            allowed.join(", ")
        ))
        .param(param)),
    }
}

const METADATA_MAX_KEYS: usize = 50;
const METADATA_KEY_MAX: usize = 40;
const METADATA_VALUE_MAX: usize = 500;

/// Stripe's metadata rules: keys merge into what is there, `metadata[k]=`
/// removes k, `metadata=` removes all.
pub fn apply_metadata(object: &mut Params, v: &Value) -> Result<(), ApiError> {
    let current = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(changes) = hash(v, "metadata")? else {
        *current = Value::Object(Map::new());
        return Ok(());
    };
    let Value::Object(current) = current else {
        unreachable!("metadata is always an object");
    };
    for (key, value) in changes {
        let param = format!("metadata[{key}]");
        if key.chars().count() > METADATA_KEY_MAX {
            return Err(ApiError::invalid(format!(
                "Metadata keys can have a maximum length of {METADATA_KEY_MAX} characters: {key}"
            ))
            .param(param));
        }
        match string(value, &param, METADATA_VALUE_MAX)? {
            None => {
                current.remove(key);
            }
            Some(s) => {
                current.insert(key.clone(), Value::String(s));
            }
        }
    }
    if current.len() > METADATA_MAX_KEYS {
        return Err(ApiError::invalid(format!(
            "You can have up to {METADATA_MAX_KEYS} keys in metadata"
        ))
        .param("metadata"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Params {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn strings_and_unset() {
        assert_eq!(string(&json!(""), "name", 5).unwrap(), None);
        assert_eq!(
            string(&json!("abc"), "name", 5).unwrap().as_deref(),
            Some("abc")
        );
        let e = string(&json!("abcdef"), "name", 5).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("name"));
        assert!(string(&json!({"a":"b"}), "name", 5).is_err());
    }

    #[test]
    fn booleans_and_values_that_cannot_be_unset() {
        assert!(boolean(&json!("true"), "active").unwrap());
        assert!(!boolean(&json!("false"), "active").unwrap());
        assert_eq!(
            boolean(&json!("yes"), "active").unwrap_err().message,
            "Invalid boolean: yes"
        );
        let e = boolean(&json!(""), "active").unwrap_err();
        assert_eq!(
            (e.code, e.param.as_deref()),
            (Some("parameter_invalid_empty"), Some("active"))
        );
        assert_eq!(required_string(&json!("x"), "name", 5).unwrap(), "x");
        assert!(required_string(&json!(""), "name", 5).is_err());
        assert_eq!(integer_at_least(&json!("0"), "n", 0).unwrap(), 0);
        assert_eq!(
            integer_at_least(&json!("-1"), "n", 0).unwrap_err().message,
            "This value must be greater than or equal to 0."
        );
    }

    #[test]
    fn integers() {
        assert_eq!(integer(&json!("-42"), "balance").unwrap(), -42);
        let e = integer(&json!("4.5"), "balance").unwrap_err();
        assert_eq!(e.code, Some("parameter_invalid_integer"));
        assert_eq!(e.message, "Invalid integer: 4.5");
    }

    #[test]
    fn lists_from_brackets_or_indices() {
        let indexed = json!({"1":"b","0":"a","10":"c"});
        let l = list(&indexed, "x").unwrap();
        assert_eq!(l, vec![&json!("a"), &json!("b"), &json!("c")]);
        assert!(list(&json!({"a":"b"}), "x").is_err());
        assert!(list(&json!(""), "x").unwrap().is_empty());
    }

    #[test]
    fn metadata_merges_removes_and_clears() {
        let mut o = obj(json!({"metadata":{"a":"1","b":"2"}}));
        apply_metadata(&mut o, &json!({"a":"","c":"3"})).unwrap();
        assert_eq!(o["metadata"], json!({"b":"2","c":"3"}));
        apply_metadata(&mut o, &json!("")).unwrap();
        assert_eq!(o["metadata"], json!({}));
        assert!(apply_metadata(&mut o, &json!("x")).is_err());
        let long_key = "k".repeat(41);
        assert!(apply_metadata(&mut o, &json!({ long_key: "v" })).is_err());
    }

    #[test]
    fn unknown_keys_name_the_full_param() {
        let e = check_known(
            &obj(json!({"city":"x","foo":"y"})),
            &["city"],
            Some("address"),
        )
        .unwrap_err();
        assert_eq!(e.message, "Received unknown parameter: address[foo]");
        assert_eq!(e.param.as_deref(), Some("address[foo]"));
    }
}
