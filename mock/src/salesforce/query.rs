//! `GET …/query?q=<SOQL>` and `GET …/query/<locator>-<offset>`. A query's
//! result is fixed when it runs (a list of record versions, see store.rs):
//! later changes don't shift its pages. Pages hold 2,000 records (or the
//! `Sforce-Query-Options: batchSize=N` asked for, 200–2,000); a result with
//! more gets a query locator, and each page names the next in
//! `nextRecordsUrl` until `done`.

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::sync::Arc;

use super::errors::SfError;
use super::records::render;
use super::schema::{SObject, Source};
use super::soql::{self, Op, Query};
use super::store::Record;
use super::{sfid, SalesforceState};
use crate::http::{Reply, Req};
use crate::ids;
use crate::stripe::form;

pub const MAX_BATCH: usize = 2000;
const MIN_BATCH: usize = 200;

struct Cursor {
    /// The schema the records were read with: a field removed since then
    /// still renders on the remaining pages.
    sobject: Arc<SObject>,
    fields: Vec<usize>,
    records: Vec<Arc<Record>>,
    batch: usize,
}

/// One account's open query locators, oldest first.
pub struct Cursors {
    salt: u64,
    minted: u64,
    open: VecDeque<(String, Cursor)>,
}

impl Cursors {
    pub fn new(key: &str) -> Cursors {
        Cursors {
            salt: ids::salt(key, "01g"),
            minted: 0,
            open: VecDeque::new(),
        }
    }

    fn open(&mut self, cursor: Cursor, max: usize) -> String {
        let id = sfid::make("01g", self.salt, self.minted);
        self.minted += 1;
        self.open.push_back((id.clone(), cursor));
        while self.open.len() > max.max(1) {
            self.open.pop_front();
        }
        id
    }

    fn get(&self, id: &str) -> Option<&Cursor> {
        self.open.iter().find(|(c, _)| c == id).map(|(_, c)| c)
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

fn invalid_locator() -> SfError {
    SfError::new(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
}

/// `Sforce-Query-Options: batchSize=N`, clamped to 200–2,000.
fn batch_size(req: &Req) -> usize {
    req.header("Sforce-Query-Options")
        .into_iter()
        .flat_map(|v| v.split(','))
        .filter_map(|opt| opt.trim().strip_prefix("batchSize="))
        .filter_map(|n| n.trim().parse::<usize>().ok())
        .next_back()
        .map_or(MAX_BATCH, |n| n.clamp(MIN_BATCH, MAX_BATCH))
}

/// The records a query selects, in its order.
pub fn execute(sf: &SalesforceState, q: &Query) -> Vec<Arc<Record>> {
    let t = &q.sobject;
    let store = sf.store(t);
    let modstamp = t.index_of(&Source::SystemModstamp).expect("system field");
    let id = t.index_of(&Source::Id).expect("system field");
    let natural = q.order.is_empty()
        || q.order == [(modstamp, false)]
        || q.order == [(modstamp, false), (id, false)];
    // Where the SystemModstamp index is entered (the highest lower bound),
    // and where it is left (the lowest upper bound).
    let from = q
        .filter
        .iter()
        .filter_map(|(source, op, ms)| match (source, op) {
            (Source::SystemModstamp, Op::Gt) => Some((*ms, false)),
            (Source::SystemModstamp, Op::Ge | Op::Eq) => Some((*ms, true)),
            _ => None,
        })
        .max_by_key(|&(ms, inclusive)| (ms, !inclusive));
    let until = q
        .filter
        .iter()
        .filter_map(|(source, op, ms)| match (source, op) {
            (Source::SystemModstamp, Op::Lt) => Some((*ms, false)),
            (Source::SystemModstamp, Op::Le | Op::Eq) => Some((*ms, true)),
            _ => None,
        })
        .min_by_key(|&(ms, inclusive)| (ms, inclusive));
    let before_end = |r: &Record| {
        until.is_none_or(|(ms, inclusive)| {
            let stamp = r.datetime(&Source::SystemModstamp).expect("a datetime field");
            stamp < ms || (inclusive && stamp == ms)
        })
    };
    let matches = |r: &Record| {
        q.filter
            .iter()
            .all(|(source, op, ms)| op.test(r.datetime(source).expect("a datetime field"), *ms))
    };
    let asked = |r: &Record| {
        q.ids
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|id| sfid_matches(id, &r.id)))
    };
    let candidates = store
        .by_modstamp(from)
        .take_while(|r| before_end(r))
        .filter(|r| matches(r) && asked(r))
        .cloned();
    if natural {
        return candidates.take(q.limit.unwrap_or(usize::MAX)).collect();
    }
    let mut rows: Vec<Arc<Record>> = candidates.collect();
    rows.sort_by(|a, b| {
        for &(i, desc) in &q.order {
            let ord = match &t.fields[i].source {
                Source::Id => a.id.cmp(&b.id),
                s => a.datetime(s).cmp(&b.datetime(s)),
            };
            let ord = if desc { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    });
    rows.truncate(q.limit.unwrap_or(usize::MAX));
    rows
}

fn page(cursor: &Cursor, offset: usize, locator: Option<&str>, version: &str) -> Reply {
    let total = cursor.records.len();
    let end = (offset + cursor.batch).min(total);
    let done = end >= total;
    let mut body = format!("{{\"totalSize\":{total},\"done\":{done},");
    if let (false, Some(locator)) = (done, locator) {
        body.push_str(&format!(
            "\"nextRecordsUrl\":\"/services/data/{version}/query/{locator}-{end}\","
        ));
    }
    body.push_str("\"records\":[");
    for (n, r) in cursor.records[offset..end].iter().enumerate() {
        if n > 0 {
            body.push(',');
        }
        body.push_str(&render(&cursor.sobject, r, &cursor.fields, version));
    }
    body.push_str("]}");
    Reply::raw(200, body)
}

/// `GET …/query?q=…`
pub fn run(
    sf: &mut SalesforceState,
    req: &Req,
    version: &str,
    _now: i64,
) -> Result<Reply, SfError> {
    let q = form::pairs(&req.query)
        .into_iter()
        .rev()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| SfError::malformed_query("A query string has to be specified"))?;
    let query = soql::parse(&q, sf.types())?;
    let cursor = Cursor {
        sobject: query.sobject.clone(),
        fields: query.fields.clone(),
        records: execute(sf, &query),
        batch: batch_size(req),
    };
    if cursor.records.len() <= cursor.batch {
        return Ok(page(&cursor, 0, None, version));
    }
    let max = sf.settings.max_cursors;
    let locator = sf.cursors.open(cursor, max);
    let cursor = sf.cursors.get(&locator).expect("just opened");
    Ok(page(cursor, 0, Some(&locator), version))
}

/// `GET …/query/<locator>-<offset>`
pub fn more(sf: &mut SalesforceState, locator: &str, version: &str) -> Result<Reply, SfError> {
    let (id, offset) = locator.rsplit_once('-').ok_or_else(invalid_locator)?;
    let offset: usize = offset.parse().map_err(|_| invalid_locator())?;
    let cursor = sf.cursors.get(id).ok_or_else(invalid_locator)?;
    if offset > cursor.records.len() {
        return Err(invalid_locator());
    }
    Ok(page(cursor, offset, Some(id), version))
}

/// An id as a query names it (15 or 18 characters) against a record's.
fn sfid_matches(asked: &str, id: &str) -> bool {
    asked == id || (asked.len() == 15 && id.starts_with(asked))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::{admin, ops};
    use serde_json::{json, Value};

    fn get(sf: &mut SalesforceState, q: &str, batch: Option<&str>) -> Result<Value, SfError> {
        let mut req = Req {
            method: "GET".into(),
            query: format!(
                "q={}",
                q.replace('+', "%2B").replace(' ', "+").replace('>', "%3E")
            ),
            ..Req::default()
        };
        if let Some(b) = batch {
            req.headers
                .insert("sforce-query-options", b.parse().unwrap());
        }
        let reply = run(sf, &req, "v60.0", 0)?;
        Ok(serde_json::from_slice(&reply.body).unwrap())
    }

    fn next(sf: &mut SalesforceState, url: &Value) -> Value {
        let url = url.as_str().unwrap();
        let locator = url.rsplit('/').next().unwrap();
        serde_json::from_slice(&more(sf, locator, "v60.0").unwrap().body).unwrap()
    }

    #[test]
    fn pages_are_a_snapshot() {
        let mut sf = SalesforceState::new("sk_test_q");
        let contact = sf.sobject("Contact").unwrap();
        admin::seed(&mut sf, &contact, 4500, 1_000_000, 0);
        let first = get(
            &mut sf,
            "SELECT Id, LastName FROM Contact ORDER BY SystemModstamp, Id",
            None,
        )
        .unwrap();
        assert_eq!(
            (first["totalSize"].as_u64(), first["done"].as_bool()),
            (Some(4500), Some(false))
        );
        assert_eq!(first["records"].as_array().unwrap().len(), 2000);
        let url = first["nextRecordsUrl"].as_str().unwrap();
        assert!(
            url.starts_with("/services/data/v60.0/query/01g") && url.ends_with("-2000"),
            "{url}"
        );
        assert_eq!(first["records"][0]["attributes"]["type"], "Contact");
        assert_eq!(first["records"][0]["LastName"], "Contact 0");
        // A change now doesn't move the rest of the pages.
        let victim = first["records"][1999]["Id"].as_str().unwrap().to_string();
        ops::delete(&mut sf, &contact, &victim, 2_000_000, true).unwrap();
        let second = next(&mut sf, &first["nextRecordsUrl"]);
        assert_eq!(second["records"][0]["LastName"], "Contact 2000");
        assert_eq!(second["totalSize"], 4500);
        let third = next(&mut sf, &second["nextRecordsUrl"]);
        assert_eq!(
            (
                third["done"].as_bool(),
                third["records"].as_array().unwrap().len()
            ),
            (Some(true), 500)
        );
        assert!(third.get("nextRecordsUrl").is_none());
        // A new query sees the deletion.
        let again = get(&mut sf, "SELECT Id FROM Contact", Some("batchSize=200")).unwrap();
        assert_eq!(
            (
                again["totalSize"].as_u64(),
                again["records"].as_array().unwrap().len()
            ),
            (Some(4499), 200)
        );
        assert_eq!(
            more(&mut sf, "01gnope-2000", "v60.0").unwrap_err().code,
            "INVALID_QUERY_LOCATOR"
        );
    }

    #[test]
    fn filters_ties_order_and_limit() {
        let mut sf = SalesforceState::new("sk_test_f");
        let contact = sf.sobject("Contact").unwrap();
        // Ten records, two per millisecond: 1000,1000,1001,1001,…
        for i in 0..10 {
            let body = json!({"LastName": format!("L{i}")});
            ops::create(&mut sf, &contact, body.as_object().unwrap(), 1000 + i / 2).unwrap();
        }
        let t = crate::salesforce::time::format_datetime;
        let names = |v: &Value| -> Vec<String> {
            v["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["LastName"].as_str().unwrap().to_string())
                .collect()
        };
        let q = format!(
            "SELECT LastName FROM Contact WHERE SystemModstamp > {} ORDER BY SystemModstamp, Id",
            t(1002)
        );
        assert_eq!(
            names(&get(&mut sf, &q, None).unwrap()),
            ["L6", "L7", "L8", "L9"]
        );
        let q = format!("SELECT LastName FROM Contact WHERE SystemModstamp >= {} ORDER BY SystemModstamp LIMIT 3", t(1002));
        assert_eq!(names(&get(&mut sf, &q, None).unwrap()), ["L4", "L5", "L6"]);
        let q = format!("SELECT LastName FROM Contact WHERE CreatedDate < {} ORDER BY SystemModstamp DESC, Id DESC", t(1001));
        assert_eq!(names(&get(&mut sf, &q, None).unwrap()), ["L1", "L0"]);
        let r = get(
            &mut sf,
            "SELECT Id, SystemModstamp, IsDeleted, Name FROM Contact LIMIT 1",
            None,
        )
        .unwrap();
        assert_eq!(
            r["records"][0]["SystemModstamp"],
            "1970-01-01T00:00:01.000+0000"
        );
        assert_eq!(
            (
                r["records"][0]["IsDeleted"].clone(),
                r["records"][0]["Name"].clone()
            ),
            (json!(false), json!("L0"))
        );
        assert_eq!(
            get(&mut sf, "SELECT Nope FROM Contact", None)
                .unwrap_err()
                .code,
            "INVALID_FIELD"
        );
    }
}
