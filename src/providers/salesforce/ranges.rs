//! A backfill in ranges of `SystemModstamp` queried at once (the
//! `backfill_ranges` option). One SOQL query is one chain of pages (each
//! page's `nextRecordsUrl` leads to the next), so a backfill is cut, after
//! its first page, into queries of their own:
//!
//! `{"phase":"backfill","started":…,"next_range":3,
//!   "ranges":[{"id":0,"gte":…,"lt":…,"last":…,"next":"/services/…","next_at":…}, …]}`
//!
//! A range lists the records whose SystemModstamp is in `[gte, lt)`, oldest
//! first, through its query's locator (`next`, fetched at `next_at`), or,
//! without one or once it is too old, by querying again from `last` (the
//! highest SystemModstamp it listed, inclusive: what remains of it is in
//! `[last, lt)`). The ranges tile `[last of the first page, started)`:
//! records changed after the backfill began are the incremental query's,
//! as without ranges. While there are fewer ranges than allowed, a range
//! whose page comes back is cut in two at the middle of its remainder: it
//! keeps the older half, and queries it afresh (its locator was for the
//! whole); a new range takes the newer half. A range with a page in flight
//! is never cut (that page was asked for with the bounds it had).

use super::sync::{cursor_str, fitted_query, iso_ms, modstamp, parse_datetime, query_page, record_from_sobject, LOCATOR_MAX_AGE_US};
use crate::providers::ranges::{self, Span};
use crate::providers::*;
use serde_json::{json, Value};

/// One range of the cursor, times in microseconds (stored as ISO 8601).
#[derive(Debug, Clone, PartialEq)]
struct Range {
    id: u64,
    gte: i64,
    lt: i64,
    last: Option<i64>,
    /// The query's locator and when it came.
    next: Option<(String, i64)>,
}

impl Range {
    /// Where what remains of the range begins.
    fn from(&self) -> i64 {
        self.last.unwrap_or(self.gte).max(self.gte)
    }
}

impl Span for Range {
    fn from_json(value: &Value) -> Option<Range> {
        let time = |key: &str| value.get(key).and_then(Value::as_str).and_then(parse_datetime);
        let next = match (value.get("next").and_then(Value::as_str), time("next_at")) {
            (Some(next), Some(at)) => Some((next.to_string(), at)),
            _ => None,
        };
        Some(Range { id: value.get("id")?.as_u64()?, gte: time("gte")?, lt: time("lt")?, last: time("last"), next })
    }

    fn to_json(&self) -> Value {
        let mut value = json!({"id": self.id, "gte": iso_ms(self.gte), "lt": iso_ms(self.lt)});
        if let Some(last) = self.last {
            value["last"] = json!(iso_ms(last));
        }
        if let Some((next, at)) = &self.next {
            value["next"] = json!(next);
            value["next_at"] = json!(iso_ms(*at));
        }
        value
    }

    fn id(&self) -> u64 {
        self.id
    }

    /// Milliseconds of SystemModstamp still to list.
    fn remaining(&self) -> i64 {
        (self.lt - self.from()) / 1000
    }

    const MIN_CUT: i64 = 2;

    /// The older half [from, mid) stays with the range, queried afresh (its
    /// locator was for the whole); the newer half [mid, lt) is the new
    /// range. Whole milliseconds: the queries name times to the millisecond.
    fn cut(&mut self, id: u64) -> Range {
        let mid = self.from() + self.remaining() / 2 * 1000;
        let newer = Range { id, gte: mid, lt: self.lt, last: None, next: None };
        self.lt = mid;
        self.next = None;
        newer
    }
}

fn ranges_of(cursor: &Value) -> Option<Vec<Range>> {
    ranges::ranges_of(cursor)
}

/// The ids of the ranges a split backfill cursor holds.
pub(super) fn backfill_ranges(cursor: &Value) -> Option<Vec<u64>> {
    ranges::ids::<Range>(cursor)
}

/// A backfill cursor after its first page, cut into up to `ranges` ranges
/// over what it has still to list; None for any other cursor.
pub(super) fn split_backfill(cursor: &Value, ranges: usize) -> Option<Value> {
    if cursor_str(cursor, "phase") != Some("backfill") || cursor.get("ranges").is_some() || ranges < 2 {
        return None;
    }
    let time = |key: &str| cursor_str(cursor, key).and_then(parse_datetime);
    let (last, started) = (time("last")?, time("started")?);
    if last >= started {
        return None;
    }
    let whole = Range { id: 0, gte: last, lt: started, last: None, next: None };
    Some(ranges::split(json!({"phase": "backfill", "started": iso_ms(started)}), whole, ranges))
}

/// The next page of a range: its locator while fresh, else its query from
/// where it is. A range the cursor no longer holds is asked as an empty one;
/// the reply then changes nothing (`merge`).
pub(super) fn range_request(spec: &CollectionSpec, cursor: &Value, id: u64, now_us: i64) -> ApiRequest {
    let range = ranges_of(cursor).and_then(|ranges| ranges.into_iter().find(|r| r.id == id));
    let range = range.unwrap_or(Range { id, gte: 0, lt: 0, last: None, next: None });
    if let Some((next, at)) = &range.next {
        if now_us - at <= LOCATOR_MAX_AGE_US {
            return ApiRequest::get(next.clone());
        }
    }
    let template = format!(
        "SELECT {{}} FROM {} WHERE SystemModstamp >= {} AND SystemModstamp < {} ORDER BY SystemModstamp, Id",
        spec.name,
        iso_ms(range.from()),
        iso_ms(range.lt)
    );
    fitted_query(spec, &template).0
}

/// The records of a range's page, and where the range stands after it:
/// `{"last", "next", "next_at"}`, or `{"done": true}`.
pub(super) fn range_response(spec: &CollectionSpec, response: &ApiResponse, now_us: i64) -> Result<(Vec<Record>, Value), ApiError> {
    let malformed = || unparseable(response, "record without Id or SystemModstamp");
    let (objects, next) = query_page(response)?;
    let mut last = None;
    let mut records = Vec::with_capacity(objects.len());
    for object in &objects {
        let stamp = modstamp(object).ok_or_else(malformed)?;
        last = Some(last.map_or(stamp, |l: i64| l.max(stamp)));
        records.push(record_from_sobject(spec, object, stamp).ok_or_else(malformed)?);
    }
    let progress = match (next, last) {
        (Some(next), Some(last)) => json!({"last": iso_ms(last), "next": next, "next_at": iso_ms(now_us)}),
        (Some(_), None) => return Err(unparseable(response, "an empty page with more to come")),
        (None, _) => json!({"done": true}),
    };
    Ok((records, progress))
}

/// The cursor now, with a range's progress taken in and the ranges cut
/// again up to `ranges`; once no range is left, the incremental cursor
/// from the backfill's start.
pub(super) fn merge(cursor: &Value, id: u64, progress: &Value, ranges: usize) -> Value {
    let advance = |range: &mut Range, progress: &Value| {
        let time = |key: &str| progress.get(key).and_then(Value::as_str).and_then(parse_datetime);
        if let (Some(last), Some(next), Some(next_at)) = (time("last"), progress.get("next").and_then(Value::as_str), time("next_at")) {
            range.last = Some(range.last.map_or(last, |l| l.max(last)));
            range.next = Some((next.to_string(), next_at));
        }
    };
    let finished = |cursor: &Value| {
        let started = cursor.get("started").cloned().unwrap_or(Value::Null);
        json!({"phase": "incremental", "since": started, "deleted_from": started})
    };
    ranges::merge(cursor, id, progress, ranges, advance, finished)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const START: i64 = 1_700_000_000_000_000;

    fn first_page(last_ms: i64, started_ms: i64) -> Value {
        json!({"phase": "backfill", "started": iso_ms(START + started_ms * 1000), "last": iso_ms(START + last_ms * 1000),
               "next": "/services/data/v60.0/query/01g-2000", "next_at": iso_ms(START)})
    }

    /// The ranges and the spans already listed together hold every
    /// millisecond of [from, to) exactly once.
    fn tiled(cursor: &Value, done: &[(i64, i64)], from: i64, to: i64) -> bool {
        let mut spans: Vec<(i64, i64)> =
            ranges_of(cursor).unwrap().iter().map(|r| (r.gte, r.lt)).chain(done.iter().copied()).collect();
        spans.sort();
        let mut expect = from;
        for (gte, lt) in spans {
            if gte != expect || lt <= gte {
                return false;
            }
            expect = lt;
        }
        expect == to
    }

    fn spec() -> CollectionSpec {
        CollectionSpec {
            name: "Contact".into(),
            fields: Vec::new(),
            columns: Vec::new(),
            writes: Vec::new(),
            writes_hint: None,
            settings: Vec::new(),
        }
    }

    #[test]
    fn the_backfill_is_cut_after_its_first_page_into_halves_of_what_is_left() {
        let cursor = split_backfill(&first_page(1_000, 9_000), 4).unwrap();
        assert_eq!(backfill_ranges(&cursor).unwrap().len(), 4);
        assert!(tiled(&cursor, &[], START + 1_000_000, START + 9_000_000), "{cursor}");
        // The first page's locator is for the whole query: no range keeps it.
        assert!(ranges_of(&cursor).unwrap().iter().all(|r| r.next.is_none()));
        // One range, a cursor already split, an incremental one, or one with
        // nothing left: not split.
        assert!(split_backfill(&first_page(1_000, 9_000), 1).is_none());
        assert!(split_backfill(&cursor, 4).is_none());
        assert!(split_backfill(&json!({"phase": "incremental", "since": iso_ms(START)}), 4).is_none());
        assert!(split_backfill(&first_page(9_000, 9_000), 4).is_none());
    }

    #[test]
    fn a_range_follows_its_locator_then_is_cut_and_queries_its_older_half_afresh() {
        let cursor = split_backfill(&first_page(0, 8_000), 2).unwrap();
        let ids = backfill_ranges(&cursor).unwrap();
        let older = ids[0];
        let request = range_request(&spec(), &cursor, older, START);
        assert!(request.path.contains("SystemModstamp+%3E%3D+2023-11-14T22%3A13%3A20.000Z+AND+SystemModstamp+%3C+2023-11-14T22%3A13%3A24.000Z"), "{}", request.path);
        let progress = json!({"last": iso_ms(START + 1_000_000), "next": "/services/data/v60.0/query/01g-x", "next_at": iso_ms(START)});
        // Two ranges already: no cut; the range follows its locator.
        let cursor = merge(&cursor, older, &progress, 2);
        assert_eq!(range_request(&spec(), &cursor, older, START + 1).path, "/services/data/v60.0/query/01g-x");
        // A stale locator is not followed.
        assert!(range_request(&spec(), &cursor, older, START + LOCATOR_MAX_AGE_US + 1).path.contains("query?q="));
        // The newer range ends: the older one is cut when its page comes
        // back, drops its locator and queries [last, mid).
        let cursor = merge(&cursor, ids[1], &json!({"done": true}), 2);
        let cursor = merge(&cursor, older, &progress, 2);
        let ranges = ranges_of(&cursor).unwrap();
        assert_eq!(ranges.len(), 2);
        let kept = ranges.iter().find(|r| r.id == older).unwrap();
        assert_eq!((kept.from(), kept.lt, kept.next.is_none()), (START + 1_000_000, START + 2_500_000, true));
    }

    #[test]
    fn the_last_range_done_ends_the_backfill_where_it_began() {
        let mut cursor = split_backfill(&first_page(0, 100), 3).unwrap();
        while let Some(ids) = backfill_ranges(&cursor) {
            cursor = merge(&cursor, ids[0], &json!({"done": true}), 3);
        }
        let started = iso_ms(START + 100_000);
        assert_eq!(cursor, json!({"phase": "incremental", "since": started, "deleted_from": started}));
        // Progress of a range the cursor no longer has changes nothing.
        let cursor = split_backfill(&first_page(0, 100), 2).unwrap();
        assert_eq!(merge(&cursor, 99, &json!({"done": true}), 2), cursor);
    }

    proptest! {
        #[test]
        fn ranges_always_tile_what_is_left_once(
            span_ms in 2i64..5_000_000_000,
            ranges in 2usize..16,
            steps in proptest::collection::vec((0usize..16, any::<bool>(), 0.0f64..1.0), 0..60),
        ) {
            let mut cursor = split_backfill(&first_page(0, span_ms), ranges).unwrap();
            let mut listed = Vec::new();
            for (pick, done, fraction) in steps {
                let Some(ids) = backfill_ranges(&cursor) else { break };
                prop_assert!(tiled(&cursor, &listed, START, START + span_ms * 1000), "{}", cursor);
                prop_assert!(ids.len() <= ranges);
                let id = ids[pick % ids.len()];
                let range = ranges_of(&cursor).unwrap().into_iter().find(|r| r.id == id).unwrap();
                let progress = if done || range.remaining() == 0 {
                    listed.push((range.gte, range.lt));
                    json!({"done": true})
                } else {
                    let last = range.from() + (range.remaining() as f64 * fraction) as i64 * 1000;
                    json!({"last": iso_ms(last), "next": "/q/x", "next_at": iso_ms(START)})
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
            let _ = range_request(&spec(), &value, id, START);
        }
    }
}
