//! A backfill in ranges fetched at once (the `backfill_ranges` option).
//! Stripe's list pages are chained — each names the last object of the one
//! before — so one list has one request in flight; a list filtered to a
//! `created` range is a chain of its own. The backfill cursor then holds
//! every range still to list:
//!
//! `{"phase":"backfill","anchor":…,"since":…,"next_range":3,
//!   "ranges":[{"id":0,"gte":…,"lte":…,"after":"cus_…","at":…}, …]}`
//!
//! A range lists the objects created in `[gte, lte]`, newest first, after
//! `after` (whose `created` is `at`; without `after`, `at` is `lte`): what
//! remains of it was created in `[gte, at]`. While there are fewer ranges
//! than allowed, a range whose page comes back is cut in two at the middle
//! of its remainder: it keeps the newer half and goes on from where it
//! was; a new range takes the older half. (A range with a page in flight
//! is never cut: that page was asked for with the bounds it had.) No time is in two
//! ranges and none is left out, however the ranges progress. Where the
//! account's objects were created is not known beforehand: halves with
//! none are done with one request, and the cutting goes on in the part
//! that has objects.

use super::schema::stripe_collection;
use super::sync::{owned_record_at, second_of};
use crate::providers::ranges::{self, Span};
use crate::providers::*;
use serde_json::{json, Value};

const PAGE_SIZE: u32 = 100;

/// One range of the cursor, as stored.
#[derive(Debug, Clone, PartialEq)]
struct Range {
    id: u64,
    gte: i64,
    lte: i64,
    after: Option<String>,
    at: i64,
}

impl Span for Range {
    fn from_json(value: &Value) -> Option<Range> {
        Some(Range {
            id: value.get("id")?.as_u64()?,
            gte: value.get("gte")?.as_i64()?,
            lte: value.get("lte")?.as_i64()?,
            after: value.get("after").and_then(Value::as_str).map(str::to_string),
            at: value.get("at")?.as_i64()?,
        })
    }

    fn to_json(&self) -> Value {
        json!({"id": self.id, "gte": self.gte, "lte": self.lte, "after": self.after, "at": self.at})
    }

    fn id(&self) -> u64 {
        self.id
    }

    /// Seconds of creation time still to list.
    fn remaining(&self) -> i64 {
        self.at.saturating_sub(self.gte)
    }

    const MIN_CUT: i64 = 1;

    /// The newer half [mid, at] stays with the range (it goes on after
    /// `after`); the older half [gte, mid - 1] is the new range.
    fn cut(&mut self, id: u64) -> Range {
        let mid = self.gte + (self.remaining() + 1) / 2;
        let older = Range { id, gte: self.gte, lte: mid - 1, after: None, at: mid - 1 };
        self.gte = mid;
        older
    }
}

fn ranges_of(cursor: &Value) -> Option<Vec<Range>> {
    ranges::ranges_of(cursor)
}

/// The ids of the ranges a split backfill cursor holds; None when the
/// cursor is not one.
pub(super) fn backfill_ranges(cursor: &Value) -> Option<Vec<u64>> {
    ranges::ids::<Range>(cursor)
}

/// A backfill cursor that has not listed anything yet, split into up to
/// `ranges` ranges; None when it is not such a cursor or one range is
/// asked for.
pub(super) fn split_backfill(cursor: &Value, ranges: usize) -> Option<Value> {
    let fresh = cursor.get("phase").and_then(Value::as_str) == Some("backfill")
        && cursor.get("starting_after").is_none()
        && cursor.get("ranges").is_none();
    if !fresh || ranges < 2 {
        return None;
    }
    let since = cursor.get("since").and_then(Value::as_i64)?;
    Some(ranges::split(cursor.clone(), Range { id: 0, gte: 0, lte: since, after: None, at: since }, ranges))
}

pub(super) fn range_request(spec: &CollectionSpec, cursor: &Value, id: u64) -> ApiRequest {
    let collection = stripe_collection(spec);
    let range = ranges_of(cursor).and_then(|ranges| ranges.into_iter().find(|r| r.id == id));
    // A range the cursor no longer holds is asked as an empty one; the
    // reply then changes nothing (`merge`).
    let range = range.unwrap_or(Range { id, gte: 1, lte: 0, after: None, at: 0 });
    let mut path = format!(
        "{}?{}limit={PAGE_SIZE}&created[gte]={}&created[lte]={}",
        collection.path, collection.list_query, range.gte, range.lte
    );
    if let Some(after) = &range.after {
        path.push_str(&format!("&starting_after={}", encode_query_value(after)));
    }
    ApiRequest::get(path)
}

/// The records of a range's page, and where the range stands after it:
/// `{"after", "at"}` to go on from, or `{"done": true}`.
pub(super) fn range_response(
    spec: &CollectionSpec,
    response: &ApiResponse,
    now_us: i64,
) -> Result<(Vec<Record>, Value), ApiError> {
    let (data, has_more) = super::sync::list_data(response)?;
    let version = second_of(now_us);
    let mut last = None;
    let mut records = Vec::with_capacity(data.len());
    for object in data {
        let created = object.get("created").and_then(Value::as_i64);
        let record = owned_record_at(spec, object, version).ok_or_else(|| unparseable(response, "object without id"))?;
        last = Some((record.id.clone(), created));
        records.push(record);
    }
    let progress = match (has_more, last) {
        (true, Some((id, Some(created)))) => json!({"after": id, "at": created}),
        (true, Some((_, None))) => return Err(unparseable(response, "object without created")),
        _ => json!({"done": true}),
    };
    Ok((records, progress))
}

/// The cursor now, with a range's progress taken in and the ranges cut
/// again up to `ranges`; once no range is left, the incremental cursor
/// from the backfill's anchor.
pub(super) fn merge(cursor: &Value, id: u64, progress: &Value, ranges: usize) -> Value {
    let advance = |range: &mut Range, progress: &Value| {
        if let (Some(after), Some(created)) =
            (progress.get("after").and_then(Value::as_str), progress.get("at").and_then(Value::as_i64))
        {
            range.after = Some(after.to_string());
            range.at = created;
        }
    };
    let finished = |cursor: &Value| json!({"phase": "incremental", "after": cursor["anchor"], "since": cursor["since"]});
    ranges::merge(cursor, id, progress, ranges, advance, finished)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::stripe::schema::{imported, COLLECTIONS};
    use proptest::prelude::*;

    /// The ranges and the ranges already done (whose every object was
    /// listed) together hold every second of [0, since] exactly once.
    fn covered_once(cursor: &Value, done: &[(i64, i64)], since: i64) -> bool {
        let ranges = ranges_of(cursor).unwrap();
        let mut spans: Vec<(i64, i64)> = ranges.iter().map(|r| (r.gte, r.lte)).chain(done.iter().copied()).collect();
        spans.sort();
        let mut expect = 0;
        for (gte, lte) in spans {
            if gte != expect || lte < gte {
                return false;
            }
            expect = lte + 1;
        }
        expect == since + 1
    }

    fn start(since: i64, ranges: usize) -> Value {
        split_backfill(&json!({"phase": "backfill", "anchor": "evt_1", "since": since}), ranges).unwrap()
    }

    #[test]
    fn a_fresh_backfill_is_cut_into_halves() {
        let cursor = start(1_000, 4);
        assert_eq!(backfill_ranges(&cursor).unwrap().len(), 4);
        assert!(covered_once(&cursor, &[], 1_000), "{cursor}");
        // One range: nothing to split; an ongoing or an incremental cursor is
        // never split.
        assert!(split_backfill(&json!({"phase": "backfill", "since": 5}), 1).is_none());
        assert!(split_backfill(&json!({"phase": "backfill", "since": 5, "starting_after": "cus_1"}), 4).is_none());
        assert!(split_backfill(&json!({"phase": "incremental", "after": "evt_1"}), 4).is_none());
        assert!(backfill_ranges(&json!({"phase": "backfill", "since": 5})).is_none());
    }

    #[test]
    fn a_range_goes_on_after_its_last_object_and_is_cut_when_its_page_comes_back() {
        let cursor = start(1_000, 2);
        let ids = backfill_ranges(&cursor).unwrap();
        let newer = ids[0];
        let cursor = merge(&cursor, newer, &json!({"after": "cus_9", "at": 990}), 2);
        let range = ranges_of(&cursor).unwrap().into_iter().find(|r| r.id == newer).unwrap();
        assert_eq!((range.after.as_deref(), range.at), (Some("cus_9"), 990));
        let customers = imported(COLLECTIONS.iter().find(|c| c.spec.name == "customers").unwrap());
        let request = range_request(customers, &cursor, newer);
        assert!(request.path.contains("created[gte]=500&created[lte]=1000&starting_after=cus_9"), "{}", request.path);
        // The older half ends empty. The newer one has a page in flight, so
        // it is cut when that page comes back: its remainder [500, 980].
        let cursor = merge(&cursor, ids[1], &json!({"done": true}), 2);
        assert_eq!(ranges_of(&cursor).unwrap().len(), 1);
        let cursor = merge(&cursor, newer, &json!({"after": "cus_19", "at": 980}), 2);
        let ranges = ranges_of(&cursor).unwrap();
        assert_eq!(ranges.len(), 2);
        assert!(ranges.iter().any(|r| r.id == newer && r.gte == 740 && r.after.as_deref() == Some("cus_19")));
        assert!(ranges.iter().any(|r| r.gte == 500 && r.lte == 739 && r.after.is_none()));
    }

    #[test]
    fn the_last_range_done_ends_the_backfill_at_its_anchor() {
        let mut cursor = start(10, 3);
        while let Some(ids) = backfill_ranges(&cursor) {
            cursor = merge(&cursor, ids[0], &json!({"done": true}), 3);
        }
        assert_eq!(cursor, json!({"phase": "incremental", "after": "evt_1", "since": 10}));
        // Progress of a range the cursor no longer has changes nothing.
        let cursor = start(10, 2);
        assert_eq!(merge(&cursor, 99, &json!({"done": true}), 2), cursor);
    }

    proptest! {
        #[test]
        fn ranges_always_cover_every_second_once(
            since in 1i64..5_000_000_000,
            ranges in 2usize..16,
            steps in proptest::collection::vec((0usize..16, any::<bool>(), 0.0f64..1.0), 0..60),
        ) {
            let mut cursor = start(since, ranges);
            let mut listed = Vec::new();
            for (pick, done, fraction) in steps {
                let Some(ids) = backfill_ranges(&cursor) else { break };
                prop_assert!(covered_once(&cursor, &listed, since), "{}", cursor);
                prop_assert!(ids.len() <= ranges);
                let id = ids[pick % ids.len()];
                let range = ranges_of(&cursor).unwrap().into_iter().find(|r| r.id == id).unwrap();
                let progress = if done || range.remaining() == 0 {
                    listed.push((range.gte, range.lte));
                    json!({"done": true})
                } else {
                    json!({"after": "x", "at": range.gte + (range.remaining() as f64 * fraction) as i64})
                };
                let before = ranges_of(&cursor).unwrap();
                cursor = merge(&cursor, id, &progress, ranges);
                // The other ranges have pages in flight: none of them moved.
                for after in ranges_of(&cursor).unwrap_or_default() {
                    if let Some(old) = before.iter().find(|r| r.id == after.id && r.id != id) {
                        prop_assert_eq!(old, &after);
                    }
                }
            }
        }

        #[test]
        fn any_cursor_is_merged_without_panicking(cursor in any::<String>(), id in 0u64..4) {
            let value = serde_json::from_str::<Value>(&cursor).unwrap_or(Value::String(cursor));
            let _ = merge(&value, id, &json!({"done": true}), 4);
            let _ = backfill_ranges(&value);
            let _ = split_backfill(&value, 4);
        }
    }
}
