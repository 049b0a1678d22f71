//! One sObject type's records. Records are immutable once stored (`Arc`):
//! an update stores a new version, so a query snapshot (a list of `Arc`s)
//! keeps seeing the records as they were. Live records are indexed by id and
//! by (SystemModstamp, Id), the order incremental queries walk; deleted ones
//! go to the recycle bin and the delete log. Every change returns an `Undo`
//! so an allOrNone request can take back what it did.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::schema::{FieldType, SObject, Source};
use super::{sfid, time};

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    /// One per stored field of the type, by slot (see schema::Source).
    pub values: Vec<Value>,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub modstamp_ms: i64,
}

impl Record {
    /// A field's value as the API shows it (`version` for a base64 field's
    /// URL).
    pub fn get(&self, t: &SObject, field: usize, version: &str) -> Value {
        let f = &t.fields[field];
        match &f.source {
            Source::Id => Value::String(self.id.clone()),
            Source::CreatedDate => time::format_datetime(self.created_ms).into(),
            Source::LastModifiedDate => time::format_datetime(self.modified_ms).into(),
            Source::SystemModstamp => time::format_datetime(self.modstamp_ms).into(),
            Source::IsDeleted => Value::Bool(false),
            Source::FullName => {
                let part = |name: &str| {
                    t.field_index(name)
                        .map(|i| self.get(t, i, version))
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                };
                let full = format!("{} {}", part("FirstName"), part("LastName"));
                Value::String(full.trim().to_string())
            }
            Source::Product(a, b) => {
                let number = |name: &str| {
                    t.field_index(name)
                        .and_then(|i| self.get(t, i, version).as_f64())
                };
                match (number(a), number(b)) {
                    (Some(a), Some(b)) => Value::from(a * b),
                    _ => Value::Null,
                }
            }
            Source::Compound => self.compound(t, f.ftype, &f.name, version),
            Source::Stored(slot) => {
                let v = self.values.get(*slot).cloned().unwrap_or(Value::Null);
                // As in a query's results: where to fetch the blob, not the blob.
                if f.ftype == FieldType::Base64 && !v.is_null() {
                    format!(
                        "/services/data/{version}/sobjects/{}/{}/{}",
                        t.name, self.id, f.name
                    )
                    .into()
                } else {
                    v
                }
            }
        }
    }

    /// An address (`{"city",…,"street"}`, every key present) or a location
    /// (`{"latitude","longitude"}`) from its components.
    fn compound(&self, t: &SObject, ftype: FieldType, name: &str, version: &str) -> Value {
        let keys: &[&str] = if ftype == FieldType::Address {
            &[
                "city",
                "country",
                "geocodeAccuracy",
                "latitude",
                "longitude",
                "postalCode",
                "state",
                "street",
            ]
        } else {
            &["latitude", "longitude"]
        };
        let mut out: Map<String, Value> =
            keys.iter().map(|k| (k.to_string(), Value::Null)).collect();
        for (i, c) in t.components(name) {
            let bare = c.name.trim_end_matches("__s").to_ascii_lowercase();
            if let Some(key) = keys
                .iter()
                .find(|k| bare.ends_with(&k.to_ascii_lowercase()))
            {
                out.insert(key.to_string(), self.get(t, i, version));
            }
        }
        if out.values().all(Value::is_null) {
            Value::Null
        } else {
            Value::Object(out)
        }
    }

    /// Milliseconds of a system datetime field.
    pub fn datetime(&self, source: &Source) -> Option<i64> {
        match source {
            Source::CreatedDate => Some(self.created_ms),
            Source::LastModifiedDate => Some(self.modified_ms),
            Source::SystemModstamp => Some(self.modstamp_ms),
            _ => None,
        }
    }

    /// The lowercased value of the slot duplicates are checked on.
    pub fn email(&self, email_slot: Option<usize>) -> Option<String> {
        self.values
            .get(email_slot?)?
            .as_str()
            .map(str::to_ascii_lowercase)
    }
}

/// How to take back one change.
#[derive(Debug)]
pub enum Undo {
    Created { id: String, minted_before: u64 },
    Updated(Arc<Record>),
    Deleted(Arc<Record>),
}

/// Where an id stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Live(Arc<Record>),
    /// In the recycle bin: deleted, its deletion still in the log.
    Deleted,
    Missing,
}

pub struct TypeStore {
    key_prefix: String,
    /// Where the Email of types with unique emails is kept.
    email_slot: Option<usize>,
    salt: u64,
    minted: u64,
    live: HashMap<String, Arc<Record>>,
    order: BTreeSet<(i64, String)>,
    bin: HashMap<String, Arc<Record>>,
    /// (deleted at, id), in deletion order.
    delete_log: Vec<(i64, String)>,
    /// Lowercased Email → live records having it (types with unique_email).
    emails: HashMap<String, u32>,
}

impl TypeStore {
    pub fn new(t: &SObject, salt: u64) -> TypeStore {
        TypeStore {
            key_prefix: t.key_prefix.clone().unwrap_or_default(),
            email_slot: t.unique_email_slot(),
            salt,
            minted: 0,
            live: HashMap::new(),
            order: BTreeSet::new(),
            bin: HashMap::new(),
            delete_log: Vec::new(),
            emails: HashMap::new(),
        }
    }

    pub fn next_id(&self) -> String {
        sfid::make(&self.key_prefix, self.salt, self.minted)
    }

    /// How many ids have been handed out (seeded names count from here).
    pub fn minted(&self) -> u64 {
        self.minted
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    pub fn lookup(&self, id: &str) -> Lookup {
        if let Some(r) = self.live.get(id) {
            Lookup::Live(r.clone())
        } else if self.bin.contains_key(id) {
            Lookup::Deleted
        } else {
            Lookup::Missing
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<Record>> {
        self.live.get(id).cloned()
    }

    /// Another live record than `except` has this (lowercased) email.
    pub fn email_taken(&self, email: &str, except: Option<&Record>) -> bool {
        let mine = except.and_then(|r| r.email(self.email_slot)).as_deref() == Some(email);
        let n = self.emails.get(email).copied().unwrap_or(0);
        n > u32::from(mine)
    }

    fn index(&mut self, r: &Arc<Record>) {
        self.order.insert((r.modstamp_ms, r.id.clone()));
        if let Some(e) = r.email(self.email_slot) {
            *self.emails.entry(e).or_insert(0) += 1;
        }
        self.live.insert(r.id.clone(), r.clone());
    }

    fn unindex(&mut self, id: &str) -> Option<Arc<Record>> {
        let r = self.live.remove(id)?;
        self.order.remove(&(r.modstamp_ms, r.id.clone()));
        if let Some(e) = r.email(self.email_slot) {
            if let Some(n) = self.emails.get_mut(&e) {
                *n -= 1;
                if *n == 0 {
                    self.emails.remove(&e);
                }
            }
        }
        Some(r)
    }

    /// Stores a new record; its id must be `next_id()`.
    pub fn insert(&mut self, record: Record) -> Undo {
        debug_assert_eq!(record.id, self.next_id());
        let undo = Undo::Created {
            id: record.id.clone(),
            minted_before: self.minted,
        };
        self.minted += 1;
        self.index(&Arc::new(record));
        undo
    }

    /// Replaces a live record by a new version (same id).
    pub fn replace(&mut self, record: Record) -> Undo {
        let old = self.unindex(&record.id).expect("replacing a live record");
        self.index(&Arc::new(record));
        Undo::Updated(old)
    }

    /// Moves a live record to the recycle bin and logs its deletion.
    pub fn delete(&mut self, id: &str, now_ms: i64) -> Option<Undo> {
        let old = self.unindex(id)?;
        self.bin.insert(id.to_string(), old.clone());
        self.delete_log.push((now_ms, id.to_string()));
        Some(Undo::Deleted(old))
    }

    /// Takes back one change; undos must come newest first.
    pub fn undo(&mut self, undo: Undo) {
        match undo {
            Undo::Created { id, minted_before } => {
                self.unindex(&id);
                self.minted = minted_before;
            }
            Undo::Updated(old) => {
                self.unindex(&old.id);
                self.index(&old);
            }
            Undo::Deleted(old) => {
                self.bin.remove(&old.id);
                if let Some(i) = self.delete_log.iter().rposition(|(_, id)| *id == old.id) {
                    self.delete_log.remove(i);
                }
                self.index(&old);
            }
        }
    }

    /// Live records in (SystemModstamp, Id) order, from `after` (exclusive) or
    /// `from` (inclusive) on.
    pub fn by_modstamp(
        &self,
        from: Option<(i64, bool)>,
    ) -> impl Iterator<Item = &Arc<Record>> + '_ {
        use std::ops::Bound;
        let lo = match from {
            None => Bound::Unbounded,
            Some((ms, true)) => Bound::Included((ms, String::new())),
            // Ids are never empty, so (ms + 1, "") is just past every record of ms.
            Some((ms, false)) => Bound::Included((ms.saturating_add(1), String::new())),
        };
        self.order
            .range((lo, Bound::Unbounded))
            .map(|(_, id)| &self.live[id])
    }

    /// Deletions logged in [from, to), oldest first.
    pub fn deleted_between(&self, from: i64, to: i64) -> Vec<(i64, String)> {
        self.delete_log
            .iter()
            .filter(|(at, _)| (from..to).contains(at))
            .cloned()
            .collect()
    }

    /// Every logged deletion, oldest first.
    pub fn delete_log(&self) -> &[(i64, String)] {
        &self.delete_log
    }

    /// Physically deletes what was deleted before `before`: gone from the
    /// log and the bin. Returns how many.
    pub fn purge_deleted_before(&mut self, before: i64) -> usize {
        let keep = self.delete_log.partition_point(|(at, _)| *at < before);
        let purged: Vec<(i64, String)> = self.delete_log.drain(..keep).collect();
        for (_, id) in &purged {
            self.bin.remove(id);
        }
        purged.len()
    }

    /// Sets one slot of every live record (a field added with its default, or
    /// removed); records stay as they were otherwise, SystemModstamp too.
    pub fn set_slot_everywhere(&mut self, slot: usize, value: &Value) {
        for r in self.live.values_mut() {
            let mut changed = (**r).clone();
            if changed.values.len() <= slot {
                changed.values.resize(slot + 1, Value::Null);
            }
            changed.values[slot] = value.clone();
            *r = Arc::new(changed);
        }
    }

    /// Every live record, by id.
    pub fn all(&self) -> Vec<Arc<Record>> {
        let mut v: Vec<Arc<Record>> = self.live.values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::super::default_org;
    use super::*;
    use serde_json::json;

    fn contact_type() -> SObject {
        default_org::types(0)
            .into_iter()
            .find(|t| t.name == "Contact")
            .unwrap()
    }

    fn slot(name: &str) -> usize {
        let t = contact_type();
        t.fields[t.field_index(name).unwrap()].slot().unwrap()
    }

    fn contact(s: &TypeStore, email: &str, ms: i64) -> Record {
        let mut values = vec![Value::Null; contact_type().slots()];
        values[slot("LastName")] = json!("X");
        values[slot("Email")] = json!(email);
        Record {
            id: s.next_id(),
            values,
            created_ms: ms,
            modified_ms: ms,
            modstamp_ms: ms,
        }
    }

    #[test]
    fn index_order_emails_and_undo() {
        let mut s = TypeStore::new(&contact_type(), 7);
        let a = contact(&s, "a@x.io", 5);
        let a_id = a.id.clone();
        s.insert(a);
        let b = contact(&s, "b@x.io", 5);
        let b_id = b.id.clone();
        s.insert(b);
        let c = contact(&s, "c@x.io", 6);
        s.insert(c);
        let order: Vec<&str> = s.by_modstamp(None).map(|r| r.id.as_str()).collect();
        assert_eq!(order.len(), 3);
        assert_eq!(order[..2], [a_id.as_str(), b_id.as_str()]);
        assert_eq!(s.by_modstamp(Some((5, false))).count(), 1);
        assert_eq!(s.by_modstamp(Some((5, true))).count(), 3);
        assert!(s.email_taken("a@x.io", None));
        let a_rec = s.get(&a_id).unwrap();
        assert!(!s.email_taken("a@x.io", Some(&a_rec)));

        // Update, then delete, then take both back.
        let mut a2 = (*a_rec).clone();
        a2.values[slot("Email")] = json!("z@x.io");
        a2.modstamp_ms = 9;
        let u1 = s.replace(a2);
        assert!(!s.email_taken("a@x.io", None));
        let u2 = s.delete(&a_id, 10).unwrap();
        assert_eq!(s.lookup(&a_id), Lookup::Deleted);
        assert_eq!(s.deleted_between(0, 11).len(), 1);
        s.undo(u2);
        s.undo(u1);
        assert_eq!(s.get(&a_id).unwrap(), a_rec);
        assert!(s.email_taken("a@x.io", None));
        assert!(s.delete_log().is_empty());
        // Undoing the newest create gives its id out again.
        let d = contact(&s, "d@x.io", 7);
        let d_id = d.id.clone();
        let undo_d = s.insert(d);
        s.undo(undo_d);
        assert_eq!(s.lookup(&d_id), Lookup::Missing);
        assert_eq!(s.next_id(), d_id);
        assert_eq!(s.len(), 3);

        s.delete(&a_id, 20);
        assert_eq!(s.purge_deleted_before(21), 1);
        assert_eq!(s.lookup(&a_id), Lookup::Missing);
    }
}
