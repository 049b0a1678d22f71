//! What backfills in ranges (the `backfill_ranges` option) share, whatever
//! the API: the cursor's list of ranges, a range's progress taken in, and
//! the cutting that keeps as many ranges busy as allowed. A provider says
//! what a range is (`Span`: Stripe's of creation time, Salesforce's of
//! SystemModstamp) and how its progress reads.
//!
//! The cursor: `{"phase":"backfill", …, "next_range":N, "ranges":[…]}`. A
//! range's page that comes back with `{"done": true}` ends the range;
//! otherwise the provider moves the range on. While there are fewer ranges
//! than allowed, the range whose page just came back (and the ranges cut
//! from it) is cut in two at the middle of its remainder. A range with a
//! page in flight is never cut: that page was asked for with the bounds it
//! had, and the cut-off part would be listed twice.

use serde_json::{json, Value};

/// One range of a provider's split backfill.
pub(crate) trait Span: Sized {
    fn from_json(value: &Value) -> Option<Self>;
    fn to_json(&self) -> Value;
    fn id(&self) -> u64;
    /// How much of it is still to list, in the provider's unit of time.
    fn remaining(&self) -> i64;
    /// The least remainder that is cut in two.
    const MIN_CUT: i64;
    /// Cuts what remains in two: this range keeps one half, and the other
    /// is returned as range `id`.
    fn cut(&mut self, id: u64) -> Self;
}

pub(crate) fn ranges_of<S: Span>(cursor: &Value) -> Option<Vec<S>> {
    cursor.get("ranges")?.as_array()?.iter().map(S::from_json).collect()
}

/// The ids of the ranges a split backfill cursor holds; None when the
/// cursor is not one.
pub(crate) fn ids<S: Span>(cursor: &Value) -> Option<Vec<u64>> {
    if cursor.get("phase").and_then(Value::as_str) != Some("backfill") {
        return None;
    }
    ranges_of::<S>(cursor).map(|ranges| ranges.iter().map(Span::id).collect())
}

/// `cursor` (a backfill not split yet) holding `whole`, cut into up to
/// `ranges` ranges.
pub(crate) fn split<S: Span>(mut cursor: Value, whole: S, ranges: usize) -> Value {
    cursor["ranges"] = json!([whole.to_json()]);
    cursor["next_range"] = json!(whole.id() + 1);
    // Nothing is being listed yet: any range may be cut.
    cut::<S>(cursor, ranges, None)
}

/// The cursor now with range `id`'s progress taken in (`{"done": true}`
/// ends it, else `advance` moves it on), the ranges cut again up to
/// `ranges`; `finished` once no range is left. Progress of a range the
/// cursor no longer holds changes nothing.
pub(crate) fn merge<S: Span>(
    cursor: &Value,
    id: u64,
    progress: &Value,
    ranges: usize,
    advance: impl FnOnce(&mut S, &Value),
    finished: impl FnOnce(&Value) -> Value,
) -> Value {
    let Some(mut list) = ranges_of::<S>(cursor) else { return cursor.clone() };
    let Some(at) = list.iter().position(|r| r.id() == id) else { return cursor.clone() };
    if progress.get("done").and_then(Value::as_bool) == Some(true) {
        list.remove(at);
    } else {
        advance(&mut list[at], progress);
    }
    if list.is_empty() {
        return finished(cursor);
    }
    let mut next = cursor.clone();
    next["ranges"] = Value::Array(list.iter().map(Span::to_json).collect());
    cut::<S>(next, ranges, Some(id))
}

/// Cuts the widest remainders in two until there are `ranges` ranges or
/// none is wide enough to cut. With `only`, just that range and the ranges
/// cut from it are cut.
fn cut<S: Span>(mut cursor: Value, ranges: usize, only: Option<u64>) -> Value {
    let Some(mut list) = ranges_of::<S>(&cursor) else { return cursor };
    let mut next_id = cursor.get("next_range").and_then(Value::as_u64).unwrap_or(0);
    next_id = next_id.max(list.iter().map(|r| r.id() + 1).max().unwrap_or(0));
    let first_new = next_id;
    let may_cut = |r: &S| only.is_none_or(|id| r.id() == id || r.id() >= first_new);
    while list.len() < ranges {
        let widest = (0..list.len())
            .filter(|&i| may_cut(&list[i]) && list[i].remaining() >= S::MIN_CUT)
            .max_by_key(|&i| list[i].remaining());
        let Some(at) = widest else { break };
        let other = list[at].cut(next_id);
        next_id += 1;
        list.push(other);
    }
    cursor["ranges"] = Value::Array(list.iter().map(Span::to_json).collect());
    cursor["next_range"] = json!(next_id);
    cursor
}
