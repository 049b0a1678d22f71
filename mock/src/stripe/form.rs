//! `application/x-www-form-urlencoded` with Stripe's bracket nesting:
//! `metadata[order_id]=42` → `{"metadata":{"order_id":"42"}}`,
//! `x[]=1&x[]=2` → `{"x":["1","2"]}`, `a[0][b]=c` → `{"a":{"0":{"b":"c"}}}`.
//! Every leaf is a string; an empty string means "unset". Numbered keys stay
//! an object: `params::list` reads them as an array where one is expected.

use serde_json::{Map, Value};

use super::errors::ApiError;

/// `%XX` and `+` decoded; invalid UTF-8 becomes U+FFFD.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: Option<&u8>) -> Option<u8> {
    let b = *b?;
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The decoded `name=value` pairs in order; empty pairs are skipped.
pub fn pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

#[derive(Debug, PartialEq)]
enum Segment {
    Key(String),
    /// `[]`
    Push,
}

/// `a[b][]` → [Key a, Key b, Push]; a name that isn't well-formed brackets is one key.
fn segments(name: &str) -> Vec<Segment> {
    let Some(open) = name.find('[') else {
        return vec![Segment::Key(name.to_string())];
    };
    if open == 0 || !name.ends_with(']') {
        return vec![Segment::Key(name.to_string())];
    }
    let mut segs = vec![Segment::Key(name[..open].to_string())];
    let mut rest = &name[open..];
    while !rest.is_empty() {
        let Some(inner_end) = rest.find(']') else {
            return vec![Segment::Key(name.to_string())];
        };
        if !rest.starts_with('[') {
            return vec![Segment::Key(name.to_string())];
        }
        let inner = &rest[1..inner_end];
        if inner.contains('[') {
            return vec![Segment::Key(name.to_string())];
        }
        segs.push(if inner.is_empty() {
            Segment::Push
        } else {
            Segment::Key(inner.to_string())
        });
        rest = &rest[inner_end + 1..];
    }
    segs
}

/// Decodes a form body (or query string) into nested params.
pub fn decode(s: &str) -> Result<Map<String, Value>, ApiError> {
    let mut root = Value::Object(Map::new());
    for (name, value) in pairs(s) {
        let segs = segments(&name);
        let base = match &segs[0] {
            Segment::Key(k) => k.clone(),
            Segment::Push => unreachable!("segments() always starts with a key"),
        };
        insert(&mut root, &segs, value).map_err(|()| {
            ApiError::invalid(format!(
                "Invalid request: the parameter {base} was given both as a value and with nested fields"
            ))
            .param(base)
        })?;
    }
    match root {
        Value::Object(map) => Ok(map),
        _ => unreachable!("root stays an object"),
    }
}

fn empty_container(next: &Segment) -> Value {
    match next {
        Segment::Key(_) => Value::Object(Map::new()),
        Segment::Push => Value::Array(Vec::new()),
    }
}

fn insert(node: &mut Value, segs: &[Segment], value: String) -> Result<(), ()> {
    let (first, rest) = segs.split_first().expect("at least one segment");
    match first {
        Segment::Key(k) => {
            let Value::Object(map) = node else {
                return Err(());
            };
            if rest.is_empty() {
                // A repeated plain value: the last one wins.
                if matches!(map.get(k), Some(Value::Object(_) | Value::Array(_))) {
                    return Err(());
                }
                map.insert(k.clone(), Value::String(value));
                return Ok(());
            }
            let child = map
                .entry(k.clone())
                .or_insert_with(|| empty_container(&rest[0]));
            insert(child, rest, value)
        }
        Segment::Push => {
            let Value::Array(items) = node else {
                return Err(());
            };
            if rest.is_empty() {
                items.push(Value::String(value));
                return Ok(());
            }
            // Rails' rule for `x[][a]=1&x[][b]=2`: fill the last element until a key repeats.
            let reuse = match (&rest[0], items.last()) {
                (Segment::Key(k), Some(Value::Object(last))) => {
                    rest.len() > 1 || !last.contains_key(k)
                }
                _ => false,
            };
            if !reuse {
                items.push(empty_container(&rest[0]));
            }
            insert(items.last_mut().expect("just ensured"), rest, value)
        }
    }
}

/// JSON from the admin interface in the shape of form params: null → "" (unset),
/// numbers and booleans → strings.
pub fn from_json(value: &Value) -> Value {
    match value {
        Value::Null => Value::String(String::new()),
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Number(n) => Value::String(n.to_string()),
        Value::String(s) => Value::String(s.clone()),
        Value::Array(items) => Value::Array(items.iter().map(from_json).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(s: &str) -> Value {
        Value::Object(decode(s).unwrap())
    }

    #[test]
    fn flat_and_percent_decoding() {
        assert_eq!(
            d("email=a%40b.co&name=Jane+Doe&x=%E2%9C%93&y=100%25&z=%zz"),
            json!({"email":"a@b.co","name":"Jane Doe","x":"✓","y":"100%","z":"%zz"})
        );
        assert_eq!(d("a=1&&b&a=2"), json!({"a":"2","b":""}));
    }

    #[test]
    fn brackets() {
        assert_eq!(
            d("metadata[order_id]=42&metadata[k]="),
            json!({"metadata":{"order_id":"42","k":""}})
        );
        assert_eq!(
            d("a[0][b]=c&a[1][b]=d"),
            json!({"a":{"0":{"b":"c"},"1":{"b":"d"}}})
        );
        assert_eq!(d("x[]=1&x[]=2"), json!({"x":["1","2"]}));
        assert_eq!(
            d("shipping[address][city]=Paris&shipping[name]=Jo"),
            json!({"shipping":{"address":{"city":"Paris"},"name":"Jo"}})
        );
        // Encoded brackets decode the same way.
        assert_eq!(d("metadata%5Bk%5D=v"), json!({"metadata":{"k":"v"}}));
    }

    #[test]
    fn rails_style_arrays_of_objects() {
        assert_eq!(
            d("x[][a]=1&x[][b]=2&x[][a]=3"),
            json!({"x":[{"a":"1","b":"2"},{"a":"3"}]})
        );
    }

    #[test]
    fn malformed_names_are_plain_keys() {
        assert_eq!(d("a[b=1"), json!({"a[b":"1"}));
        assert_eq!(d("[x]=1"), json!({"[x]":"1"}));
        assert_eq!(d("a[b]c=1"), json!({"a[b]c":"1"}));
    }

    #[test]
    fn conflicts_are_errors() {
        assert!(decode("a=1&a[b]=2").is_err());
        assert!(decode("a[b]=2&a=1").is_err());
        assert_eq!(
            decode("a[b]=2&a=1").unwrap_err().param.as_deref(),
            Some("a")
        );
    }

    #[test]
    fn json_becomes_form_shaped() {
        assert_eq!(
            from_json(&json!({"email":null,"balance":5,"metadata":{"k":null,"n":1.5},"l":["en"]})),
            json!({"email":"","balance":"5","metadata":{"k":"","n":"1.5"},"l":["en"]})
        );
    }
}
