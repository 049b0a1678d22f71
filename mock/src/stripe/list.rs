//! List endpoints' common params (`limit`, `starting_after`, `ending_before`,
//! `created[gt|gte|lt|lte]`) and the list envelope.
//!
//! The list is newest first. `starting_after=X` walks toward older items,
//! `ending_before=X` returns the `limit` items just newer than X (still newest
//! first), and `has_more` tells whether more exist in the direction walked.

use serde_json::{json, Value};

use super::errors::ApiError;
use super::params::{self, Params};
use super::store::{order_key, Direction, Filter, Object, OrderKey, Store, Window};

const COMMON: [&str; 5] = [
    "limit",
    "starting_after",
    "ending_before",
    "created",
    "expand",
];

#[derive(Debug, Clone, PartialEq)]
pub enum Cursor {
    None,
    StartingAfter(String),
    EndingBefore(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListParams {
    pub limit: usize,
    pub cursor: Cursor,
    /// Inclusive bounds on `created`.
    pub created_min: Option<i64>,
    pub created_max: Option<i64>,
}

impl ListParams {
    /// Reads the common params; `extra` names the endpoint's own filters.
    pub fn parse(q: &Params, extra: &[&str]) -> Result<ListParams, ApiError> {
        let allowed: Vec<&str> = COMMON.iter().chain(extra).copied().collect();
        params::check_known(q, &allowed, None)?;

        let limit = match q.get("limit") {
            None => 10,
            Some(v) if v == "" => 10,
            Some(v) => {
                let n = params::integer(v, "limit")?;
                if n < 1 {
                    return Err(ApiError::invalid(
                        "This value must be greater than or equal to 1.",
                    )
                    .param("limit"));
                }
                if n > 100 {
                    return Err(
                        ApiError::invalid("This value must be less than or equal to 100.")
                            .param("limit"),
                    );
                }
                n as usize
            }
        };

        let cursor_param = |name: &str| -> Result<Option<String>, ApiError> {
            match q.get(name) {
                None => Ok(None),
                Some(v) => params::string(v, name, 5000),
            }
        };
        let cursor =
            match (
                cursor_param("starting_after")?,
                cursor_param("ending_before")?,
            ) {
                (Some(_), Some(_)) => return Err(ApiError::invalid(
                    "You may only specify one of these parameters: ending_before, starting_after.",
                )
                .code("parameters_exclusive")
                .param("ending_before")),
                (Some(id), None) => Cursor::StartingAfter(id),
                (None, Some(id)) => Cursor::EndingBefore(id),
                (None, None) => Cursor::None,
            };

        let (mut created_min, mut created_max) = (None, None);
        match q.get("created") {
            None => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(Value::Object(range)) => {
                params::check_known(range, &["gt", "gte", "lt", "lte"], Some("created"))?;
                for (op, v) in range {
                    let param = format!("created[{op}]");
                    if v == "" {
                        continue;
                    }
                    let t = params::integer(v, &param)?;
                    let (min, max) = match op.as_str() {
                        "gt" => (Some(t.saturating_add(1)), None),
                        "gte" => (Some(t), None),
                        "lt" => (None, Some(t.saturating_sub(1))),
                        _ => (None, Some(t)),
                    };
                    if let Some(m) = min {
                        created_min = Some(created_min.map_or(m, |c: i64| c.max(m)));
                    }
                    if let Some(m) = max {
                        created_max = Some(created_max.map_or(m, |c: i64| c.min(m)));
                    }
                }
            }
            Some(v) => {
                let t = params::integer(v, "created")?;
                created_min = Some(t);
                created_max = Some(t);
            }
        }

        Ok(ListParams {
            limit,
            cursor,
            created_min,
            created_max,
        })
    }

    /// The window into `store` these params select. `object` names the type in
    /// the error for an unknown cursor id.
    pub fn window(&self, store: &Store, object: &str) -> Result<Window, ApiError> {
        let mut window = Window {
            lo: self.created_min.map_or(OrderKey::MIN, |c| order_key(c, 0)),
            hi: self
                .created_max
                .map_or(OrderKey::MAX, |c| order_key(c, u32::MAX)),
            direction: Direction::Older,
        };
        let position = |id: &str, param: &str| {
            store
                .order_key_of(id)
                .ok_or_else(|| ApiError::no_such(object, id, param).status(400))
        };
        match &self.cursor {
            Cursor::None => {}
            Cursor::StartingAfter(id) => {
                window.hi = window.hi.min(position(id, "starting_after")? - 1);
            }
            Cursor::EndingBefore(id) => {
                window.lo = window.lo.max(position(id, "ending_before")? + 1);
                window.direction = Direction::Newer;
            }
        }
        Ok(window)
    }

    /// Runs the list against a store.
    pub fn run(
        &self,
        store: &Store,
        object: &str,
        filter: &Filter,
    ) -> Result<(Vec<Object>, bool), ApiError> {
        let window = self.window(store, object)?;
        Ok(store.page(window, self.limit, filter))
    }
}

/// `{"object":"list","url":…,"has_more":…,"data":[…]}`
pub fn envelope(url: &str, data: Vec<Object>, has_more: bool) -> Value {
    json!({ "object": "list", "url": url, "has_more": has_more, "data": data })
}

/// `envelope` as the JSON text a reply writes for it, around objects
/// already written.
pub fn envelope_text(url: &str, data: &[String], has_more: bool) -> String {
    format!(
        r#"{{"object":"list","data":[{}],"has_more":{has_more},"url":{}}}"#,
        data.join(","),
        serde_json::to_string(url).expect("strings serialize")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<ListParams, ApiError> {
        ListParams::parse(v.as_object().unwrap(), &["email"])
    }

    #[test]
    fn defaults_and_limits() {
        let p = parse(json!({})).unwrap();
        assert_eq!((p.limit, p.cursor), (10, Cursor::None));
        assert_eq!(parse(json!({"limit":"100"})).unwrap().limit, 100);
        for bad in ["0", "101", "-1"] {
            let e = parse(json!({ "limit": bad })).unwrap_err();
            assert_eq!((e.status, e.param.as_deref()), (400, Some("limit")));
        }
        let e = parse(json!({"limit":"ten"})).unwrap_err();
        assert_eq!(e.code, Some("parameter_invalid_integer"));
    }

    #[test]
    fn created_ranges_combine() {
        let p = parse(json!({"created":{"gt":"10","lte":"20","gte":"5"}})).unwrap();
        assert_eq!((p.created_min, p.created_max), (Some(11), Some(20)));
        let p = parse(json!({"created":"7"})).unwrap();
        assert_eq!((p.created_min, p.created_max), (Some(7), Some(7)));
        let e = parse(json!({"created":{"after":"1"}})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("created[after]"));
        let e = parse(json!({"created":{"gt":"x"}})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("created[gt]"));
    }

    #[test]
    fn cursors_and_unknown_params() {
        assert!(parse(json!({"starting_after":"a","ending_before":"b"})).is_err());
        let e = parse(json!({"foo":"1"})).unwrap_err();
        assert_eq!(e.code, Some("parameter_unknown"));
        assert!(parse(json!({"email":"a@b.co","expand":["data.x"]})).is_ok());
    }

    #[test]
    fn unknown_cursor_is_400_resource_missing() {
        let store = Store::new("cus", 1, Object::new());
        let p = parse(json!({"ending_before":"cus_nope"})).unwrap();
        let e = p.window(&store, "customer").unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.code, Some("resource_missing"));
        assert_eq!(e.param.as_deref(), Some("ending_before"));
        assert_eq!(e.message, "No such customer: 'cus_nope'");
    }
}
