//! A generic store for one object type: JSON objects kept compactly (only the
//! fields that differ from the type's defaults, serialized), in creation order,
//! with an id index and an ordered index on (created, sequence) so a page of a
//! list costs O(log n + page) even with millions of objects.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::http::{json_text, FIRST_KEYS};
use crate::ids;

pub type Object = Map<String, Value>;

/// (created << 32) | sequence: the list order, newest = largest.
pub type OrderKey = i128;

pub fn order_key(created: i64, seq: u32) -> OrderKey {
    (i128::from(created) << 32) | i128::from(seq)
}

/// Which way a page walks from its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Newest first from `hi` down (no cursor, or starting_after).
    Older,
    /// From `lo` up, the closest to `lo` (ending_before); still returned newest first.
    Newer,
}

/// An inclusive range of order keys and a direction.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub lo: OrderKey,
    pub hi: OrderKey,
    pub direction: Direction,
}

impl Window {
    pub fn all(direction: Direction) -> Window {
        Window {
            lo: OrderKey::MIN,
            hi: OrderKey::MAX,
            direction,
        }
    }
}

pub type Predicate = Box<dyn Fn(&Object) -> bool>;

/// A list filter: `needle` is a cheap necessary condition on the stored text
/// (checked before parsing), `predicate` the real test.
#[derive(Default)]
pub struct Filter {
    pub needle: Option<String>,
    pub predicate: Option<Predicate>,
}

impl Filter {
    fn matches(&self, object: &Object) -> bool {
        self.predicate.as_ref().is_none_or(|p| p(object))
    }
}

struct Slot {
    created: i64,
    /// The sparse JSON; None once deleted.
    json: Option<Box<str>>,
}

pub struct Store {
    prefix: &'static str,
    salt: u64,
    /// Fields every object has; an object stores only where it differs.
    /// Invariant: stored objects have every key the defaults have.
    defaults: Object,
    /// The defaults' keys and values as replies write them, in key order.
    defaults_text: Vec<(String, String)>,
    slots: Vec<Slot>,
    /// id → sequence; deleted ids stay (their place still works as a cursor)
    /// unless forgotten (expired events).
    by_id: HashMap<Box<str>, u32>,
    order: BTreeSet<OrderKey>,
    minted: u64,
}

impl Store {
    pub fn new(prefix: &'static str, salt: u64, defaults: Object) -> Store {
        let defaults_text = defaults
            .iter()
            .map(|(k, v)| (k.clone(), json_text(v)))
            .collect();
        Store {
            prefix,
            salt,
            defaults,
            defaults_text,
            slots: Vec::new(),
            by_id: HashMap::new(),
            order: BTreeSet::new(),
            minted: 0,
        }
    }

    /// The id the next inserted object should get.
    pub fn next_id(&self) -> String {
        ids::object_id(self.prefix, self.salt, self.minted)
    }

    /// How many ids have been handed out (seeding numbers from here).
    pub fn minted(&self) -> u64 {
        self.minted
    }

    /// Live objects.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn sparse(&self, object: &Object) -> String {
        let differing: BTreeMap<&str, &Value> = object
            .iter()
            .filter(|(k, v)| self.defaults.get(k.as_str()) != Some(v))
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        serde_json::to_string(&differing).expect("JSON values serialize")
    }

    fn render(&self, json: &str) -> Object {
        let stored: Object = serde_json::from_str(json).expect("the store wrote valid JSON");
        let mut object = self.defaults.clone();
        object.extend(stored);
        object
    }

    /// `render`'s object as the JSON text a reply writes for it
    /// (`http::json_text`), merged from the stored text and the defaults'
    /// without building the object: building and writing the objects of
    /// list pages made the mock's CPU, on the cores the bench shares with
    /// the sync, a sixth of a backfill's.
    fn render_text(&self, json: &str) -> String {
        let Ok(stored) = serde_json::from_str::<BTreeMap<&str, &RawValue>>(json) else {
            // (Keys with escapes cannot be borrowed.)
            return json_text(&Value::Object(self.render(json)));
        };
        // A nested object is written anew, for the order of its keys.
        let stored_text = |raw: &RawValue| match raw.get().starts_with(['{', '[']) {
            true => {
                json_text(&serde_json::from_str(raw.get()).expect("the store wrote valid JSON"))
            }
            false => raw.get().to_string(),
        };
        // In key order; the stored value stands in for the default of its key.
        let mut fields: Vec<(&str, Cow<str>)> = self
            .defaults_text
            .iter()
            .map(|(key, text)| (key.as_str(), Cow::Borrowed(text.as_str())))
            .collect();
        for (key, raw) in stored {
            let text = Cow::Owned(stored_text(raw));
            match fields.binary_search_by_key(&key, |(k, _)| *k) {
                Ok(at) => fields[at].1 = text,
                Err(at) => fields.insert(at, (key, text)),
            }
        }
        let first = FIRST_KEYS
            .iter()
            .filter_map(|key| fields.iter().find(|(k, _)| k == key));
        let rest = fields.iter().filter(|(k, _)| !FIRST_KEYS.contains(k));
        let mut out = String::with_capacity(json.len() * 2 + 64 * fields.len());
        out.push('{');
        for (i, (key, text)) in first.chain(rest).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(key).expect("strings serialize"));
            out.push(':');
            out.push_str(text);
        }
        out.push('}');
        out
    }

    /// Adds an object with `id` and `created`; false if the id exists.
    pub fn insert(&mut self, object: &Object) -> bool {
        let id = object["id"].as_str().expect("objects have a string id");
        let created = object["created"].as_i64().expect("objects have created");
        let json = self.sparse(object);
        self.insert_sparse(id, created, json.into_boxed_str())
    }

    /// Adds an object given as its sparse JSON (the seeding fast path).
    pub fn insert_sparse(&mut self, id: &str, created: i64, json: Box<str>) -> bool {
        if self.by_id.contains_key(id) {
            return false;
        }
        let seq = u32::try_from(self.slots.len()).expect("fewer than 4 billion objects");
        self.slots.push(Slot {
            created,
            json: Some(json),
        });
        self.by_id.insert(id.into(), seq);
        self.order.insert(order_key(created, seq));
        self.minted += 1;
        true
    }

    pub fn get(&self, id: &str) -> Option<Object> {
        let seq = *self.by_id.get(id)?;
        self.slots[seq as usize]
            .json
            .as_deref()
            .map(|j| self.render(j))
    }

    /// Replaces a live object (same id; `created` must not change).
    pub fn replace(&mut self, object: &Object) -> bool {
        let id = object["id"].as_str().expect("objects have a string id");
        let Some(&seq) = self.by_id.get(id) else {
            return false;
        };
        if self.slots[seq as usize].json.is_none() {
            return false;
        }
        let json = self.sparse(object).into_boxed_str();
        self.slots[seq as usize].json = Some(json);
        true
    }

    /// Deletes an object, returning it. Its id keeps its place for cursors.
    pub fn remove(&mut self, id: &str) -> Option<Object> {
        let seq = *self.by_id.get(id)?;
        let slot = &mut self.slots[seq as usize];
        let json = slot.json.take()?;
        self.order.remove(&order_key(slot.created, seq));
        Some(self.render(&json))
    }

    /// Where an id sits in the list order, live or deleted.
    pub fn order_key_of(&self, id: &str) -> Option<OrderKey> {
        let seq = *self.by_id.get(id)?;
        Some(order_key(self.slots[seq as usize].created, seq))
    }

    /// Up to `limit` matching objects in the window, newest first, and whether
    /// more match beyond them in the walking direction.
    pub fn page(&self, window: Window, limit: usize, filter: &Filter) -> (Vec<Object>, bool) {
        let (stored, has_more) = self.page_stored(window, limit, filter);
        (
            stored.into_iter().map(|json| self.render(json)).collect(),
            has_more,
        )
    }

    /// `page`, each object as the JSON text a reply writes for it.
    pub fn page_text(&self, window: Window, limit: usize, filter: &Filter) -> (Vec<String>, bool) {
        let (stored, has_more) = self.page_stored(window, limit, filter);
        (
            stored
                .into_iter()
                .map(|json| self.render_text(json))
                .collect(),
            has_more,
        )
    }

    /// `page`'s objects as stored.
    fn page_stored(&self, window: Window, limit: usize, filter: &Filter) -> (Vec<&str>, bool) {
        let mut out = Vec::new();
        let mut has_more = false;
        if window.lo > window.hi {
            return (out, false);
        }
        let range = self.order.range(window.lo..=window.hi);
        let keys: Box<dyn Iterator<Item = &OrderKey>> = match window.direction {
            Direction::Older => Box::new(range.rev()),
            Direction::Newer => Box::new(range),
        };
        for key in keys {
            let seq = (key & 0xffff_ffff) as usize;
            let json = self.slots[seq]
                .json
                .as_deref()
                .expect("ordered objects are live");
            if filter
                .needle
                .as_ref()
                .is_some_and(|n| !json.contains(n.as_str()))
            {
                continue;
            }
            if filter.predicate.is_some() && !filter.matches(&self.render(json)) {
                continue;
            }
            if out.len() == limit {
                has_more = true;
                break;
            }
            out.push(json);
        }
        if window.direction == Direction::Newer {
            out.reverse();
        }
        (out, has_more)
    }

    /// Every live object, oldest first.
    pub fn all(&self) -> Vec<Object> {
        self.order
            .iter()
            .map(|key| {
                let seq = (key & 0xffff_ffff) as usize;
                self.render(
                    self.slots[seq]
                        .json
                        .as_deref()
                        .expect("ordered objects are live"),
                )
            })
            .collect()
    }

    /// Deletes and forgets every object created before `created` (event
    /// retention); returns how many. Costs O(expired), so applying the
    /// retention before every read stays cheap.
    pub fn forget_created_before(&mut self, created: i64) -> usize {
        let expired: Vec<OrderKey> = self.order.range(..order_key(created, 0)).copied().collect();
        for key in &expired {
            self.order.remove(key);
            let seq = (key & 0xffff_ffff) as usize;
            let json = self.slots[seq]
                .json
                .take()
                .expect("ordered objects are live");
            let id = self.render(&json)["id"].as_str().map(str::to_string);
            if let Some(id) = id {
                self.by_id.remove(id.as_str());
            }
        }
        expired.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store() -> Store {
        let defaults = json!({"object":"thing","name":null,"metadata":{}});
        Store::new("thg", 7, defaults.as_object().unwrap().clone())
    }

    fn thing(store: &Store, created: i64, name: &str) -> Object {
        json!({"id": store.next_id(), "object":"thing","created":created,"name":name,"metadata":{}})
            .as_object()
            .unwrap()
            .clone()
    }

    fn ids(objects: &[Object]) -> Vec<String> {
        objects
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn stores_sparse_and_renders_full() {
        let mut s = store();
        let t = thing(&s, 5, "a");
        assert!(s.insert(&t));
        assert!(!s.insert(&t), "duplicate id");
        assert_eq!(s.get(t["id"].as_str().unwrap()).unwrap(), t);
        let stored = s.slots[0].json.as_deref().unwrap();
        assert!(
            !stored.contains("metadata"),
            "defaults are not stored: {stored}"
        );
    }

    #[test]
    fn pages_walk_both_ways_with_ties_by_creation_order() {
        let mut s = store();
        // created: a=1, b=2, c=2, d=2, e=3 → list order e d c b a
        for (c, n) in [(1, "a"), (2, "b"), (2, "c"), (2, "d"), (3, "e")] {
            let t = thing(&s, c, n);
            s.insert(&t);
        }
        let f = Filter::default();
        let (p, more) = s.page(Window::all(Direction::Older), 2, &f);
        assert_eq!((ids(&p), more), (vec!["e".into(), "d".into()], true));
        let key_c = s.order_key_of(p[1]["id"].as_str().unwrap()).unwrap();
        let older = Window {
            lo: OrderKey::MIN,
            hi: key_c - 1,
            direction: Direction::Older,
        };
        let (p2, more2) = s.page(older, 10, &f);
        assert_eq!(
            (ids(&p2), more2),
            (vec!["c".into(), "b".into(), "a".into()], false)
        );
        // ending_before b: the 2 items right before b in list order are d, c.
        let key_b = s.order_key_of(p2[1]["id"].as_str().unwrap()).unwrap();
        let newer = Window {
            lo: key_b + 1,
            hi: OrderKey::MAX,
            direction: Direction::Newer,
        };
        let (p3, more3) = s.page(newer, 2, &f);
        assert_eq!((ids(&p3), more3), (vec!["d".into(), "c".into()], true));
    }

    #[test]
    fn removed_objects_leave_lists_but_keep_their_place() {
        let mut s = store();
        let a = thing(&s, 1, "a");
        s.insert(&a);
        let b = thing(&s, 2, "b");
        s.insert(&b);
        let id_b = b["id"].as_str().unwrap();
        assert_eq!(s.remove(id_b).unwrap(), b);
        assert!(s.get(id_b).is_none());
        assert!(s.remove(id_b).is_none());
        assert_eq!(s.len(), 1);
        assert!(s.order_key_of(id_b).is_some());
        // Forgetting (event expiry) removes the place too.
        assert_eq!(s.forget_created_before(2), 1);
        assert!(s.is_empty());
        assert!(s.order_key_of(a["id"].as_str().unwrap()).is_none());
        assert!(s.order_key_of(id_b).is_some());
    }

    #[test]
    fn filters_use_needle_then_predicate() {
        let mut s = store();
        for n in ["x1", "y1", "x2"] {
            let t = thing(&s, 1, n);
            s.insert(&t);
        }
        let f = Filter {
            needle: Some("\"x".into()),
            predicate: Some(Box::new(|o: &Object| o["name"] != "x1")),
        };
        let (p, more) = s.page(Window::all(Direction::Older), 10, &f);
        assert_eq!((ids(&p), more), (vec!["x2".into()], false));
    }
}
