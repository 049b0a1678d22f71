//! The worker's scheduler: every due collection gets its own task, so many
//! collections (and servers) are fetched at once and a slow or failing API
//! delays only its own collections. All tasks run on the worker's one
//! thread (a `LocalSet`), which is also where each page is applied, in one
//! transaction with its cursor. A collection has at most one page in
//! flight per lane (its change feed, and its sweep while one runs); while a
//! page is applied, the next one is already being fetched.

use super::poll::{self, apply_page, apply_range_page, fetch_page, fetch_range, in_transaction, load_target, Fetched, RangeApplied, RangePage, Target};
use super::reread;
use super::sweep;
use super::worker::stop_requested;
use crate::catalog;
use crate::offload;
use crate::error::Result;
use crate::providers::Phase;
use pgrx::bgworkers::BackgroundWorker;
use pgrx::prelude::*;
use serde_json::Value;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::task::{AbortHandle, JoinSet};

/// How long one collection keeps fetching page after page before its
/// options and credentials are read again.
const TURN: Duration = Duration::from_secs(2);
/// While requests are in flight, how often the catalog is asked for
/// collections that came due (and the signals are looked at).
const SCAN: Duration = Duration::from_millis(100);
/// How often tables restored from a dump are looked at (`finish_restores`).
const RESTORE_CHECK: Duration = Duration::from_secs(1);
/// Fetches in flight at most; the rest wait for their turn.
const MAX_IN_FLIGHT: usize = 64;

/// What a fetch follows: the collection's change feed (its backfill, then
/// its changes), its reconciliation sweep (`sweep.rs`), or one range of a
/// backfill split into ranges listed at once (`backfill_ranges`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Lane {
    Feed,
    Sweep,
    Range(u64),
}

enum Done {
    Fetched {
        foreign_table: pg_sys::Oid,
        lane: Lane,
        target: Option<Rc<Target>>,
        /// The cursor the page was fetched at.
        from: Value,
        result: Result<Fetched>,
    },
    /// The feed's cursor is a split backfill: its ranges are listed in
    /// lanes of their own.
    Ranged { foreign_table: pg_sys::Oid, target: Rc<Target> },
    RangePage { foreign_table: pg_sys::Oid, range: u64, target: Rc<Target>, result: Result<RangePage> },
    Reread,
}

/// What `start_due` found.
enum Looked {
    /// It did not look: it did a moment ago and fetches are in flight.
    Skipped,
    /// How long until the next collection is due (None: none is).
    Next(Option<Duration>),
    /// DROP EXTENSION.
    ExtensionGone,
    /// The catalog could not be read.
    Failed,
}

type Busy = HashMap<(pg_sys::Oid, Lane), (Instant, AbortHandle)>;

struct Engine {
    tasks: JoinSet<Done>,
    /// Lanes with a fetch in flight: when their turn started, and the
    /// fetch (aborted when the page before it fails to apply).
    busy: Busy,
    rereading: bool,
    last_scan: Option<Instant>,
    last_restore_check: Option<Instant>,
}

/// Runs until SIGTERM, the postmaster's death, a request to stop, or
/// DROP EXTENSION.
pub fn run(naptime: &dyn Fn() -> Duration, on_wake: &dyn Fn()) {
    crate::http::run_local(async {
        let mut engine = Engine {
            tasks: JoinSet::new(),
            busy: HashMap::new(),
            rereading: false,
            last_scan: None,
            last_restore_check: None,
        };
        while !stop_requested() {
            on_wake();
            engine.start_rereads();
            let looked = engine.start_due();
            if engine.tasks.is_empty() {
                // Nothing in flight: sleep until the next collection is due
                // or the latch is set (sync_now, a write to re-read, a signal).
                // (With nothing in flight, start_due has just looked.)
                let next = match looked {
                    Looked::Next(next_in) => next_in,
                    // DROP EXTENSION: the worker's work here is done.
                    Looked::ExtensionGone => break,
                    Looked::Failed | Looked::Skipped => None,
                };
                let wait = next.map_or(naptime(), |next| next.min(naptime()));
                if !BackgroundWorker::wait_latch(Some(wait.max(Duration::from_millis(10)))) {
                    break;
                }
                continue;
            }
            let done = tokio::select! {
                Some(done) = engine.tasks.join_next() => Some(done),
                _ = tokio::time::sleep(SCAN) => None,
            };
            match done {
                Some(Ok(done)) => engine.finish(done).await,
                Some(Err(error)) if !error.is_cancelled() => engine.task_failed(error),
                _ => {}
            }
        }
        // Dropping the tasks abandons their requests: no transaction is
        // ever open across an await.
        engine.tasks.shutdown().await;
    });
}

impl Engine {
    /// Starts what is due, and says what it found (it looks whenever
    /// nothing is in flight).
    fn start_due(&mut self) -> Looked {
        if self.last_scan.is_some_and(|at| at.elapsed() < SCAN) && !self.tasks.is_empty() {
            return Looked::Skipped;
        }
        self.last_scan = Some(Instant::now());
        let check_restores = self.last_restore_check.is_none_or(|at| at.elapsed() >= RESTORE_CHECK);
        if check_restores {
            self.last_restore_check = Some(Instant::now());
        }
        let work = in_transaction(|| {
            if !catalog::extension_installed() {
                return Ok(None);
            }
            if check_restores {
                catalog::finish_restores()?;
            }
            catalog::due_work().map(Some)
        });
        let work = match work {
            Ok(Some(work)) => work,
            Ok(None) => return Looked::ExtensionGone,
            Err(_) => return Looked::Failed,
        };
        for (foreign_table, sweep) in work.due {
            if self.busy.len() >= MAX_IN_FLIGHT {
                break;
            }
            let lane = if sweep { Lane::Sweep } else { Lane::Feed };
            if !self.busy.contains_key(&(foreign_table, lane)) {
                self.fetch(foreign_table, lane, None, Instant::now());
            }
        }
        Looked::Next(work.next_in)
    }

    /// Fetches a lane's next page: after `from` (the target and the cursor
    /// of the page just fetched), or after its stored cursor.
    fn fetch(&mut self, foreign_table: pg_sys::Oid, lane: Lane, from: Option<(Rc<Target>, Value)>, turn_started: Instant) {
        let task = self.tasks.spawn_local(async move {
            let continued = from.is_some();
            let (target, cursor) = match from {
                Some(from) => from,
                None => {
                    let loaded = match lane {
                        // A range lane is started with its target (start_ranges).
                        Lane::Feed | Lane::Range(_) => in_transaction(|| load_target(foreign_table)),
                        Lane::Sweep => in_transaction(|| sweep::load_sweep(foreign_table)),
                    };
                    match loaded {
                        Ok(loaded) => loaded,
                        Err(error) => {
                            return Done::Fetched { foreign_table, lane, target: None, from: Value::Null, result: Err(error) }
                        }
                    }
                }
            };
            let target = match poll::with_current_schema(target).await {
                Ok(target) => target,
                Err(error) => return Done::Fetched { foreign_table, lane, target: None, from: cursor, result: Err(error) },
            };
            if lane == Lane::Feed && target.collection.config.server.provider.backfill_ranges(&cursor).is_some() {
                return Done::Ranged { foreign_table, target };
            }
            let result = fetch_page(&target, &cursor, continued).await;
            Done::Fetched { foreign_table, lane, target: Some(target), from: cursor, result }
        });
        self.busy.insert((foreign_table, lane), (turn_started, task));
    }

    async fn finish(&mut self, done: Done) {
        let (foreign_table, lane, target, from, result) = match done {
            Done::Fetched { foreign_table, lane, target, from, result } => (foreign_table, lane, target, from, result),
            Done::Ranged { foreign_table, target } => {
                self.busy.remove(&(foreign_table, Lane::Feed));
                // The cursor as the last range's page left it.
                match in_transaction(|| catalog::cursor(foreign_table)) {
                    Ok((cursor, _)) => self.start_ranges(foreign_table, &target, &cursor),
                    Err(error) => poll::fail(foreign_table, &error, target.collection.config.server.poll_interval),
                }
                return;
            }
            Done::RangePage { foreign_table, range, target, result } => {
                return self.finish_range(foreign_table, range, target, result);
            }
            Done::Reread => {
                self.rereading = false;
                return;
            }
        };
        let Some((turn_started, _)) = self.busy.remove(&(foreign_table, lane)) else { return };
        if lane == Lane::Sweep {
            return self.finish_sweep(foreign_table, target, from, result, turn_started).await;
        }
        let (target, fetched) = match (target, result) {
            (Some(target), Ok(fetched)) => (target, fetched),
            (target, Err(error)) => {
                let retry_base = target.map_or(Duration::from_secs(5), |t| t.collection.config.server.poll_interval);
                poll::fail(foreign_table, &error, retry_base);
                return;
            }
            (None, Ok(_)) => return,
        };
        let (mut page, rows) = match fetched {
            Fetched::Page(page, rows) => (page, rows),
            Fetched::CursorExpired(reason) => {
                warning!("sequin sync of {}: {reason}", target.collection.shadow.feed_name);
                if let Err(error) = in_transaction(|| catalog::restart_backfill(foreign_table, Some(&reason))) {
                    poll::fail(foreign_table, &error, target.collection.config.server.poll_interval);
                }
                return;
            }
            Fetched::FeedRefused { reason, cursor } => {
                warning!(
                    "sequin sync of {}: {reason}; the table is kept current by full sweeps at its poll interval instead",
                    target.collection.shadow.feed_name
                );
                if let Err(error) = in_transaction(|| catalog::refuse_feed(foreign_table, &reason, &cursor)) {
                    poll::fail(foreign_table, &error, target.collection.config.server.poll_interval);
                }
                return;
            }
        };
        // A backfill that may be listed in ranges is split as it starts.
        let provider = target.collection.config.server.provider;
        let ranges = target.collection.config.table.backfill_ranges;
        let split = match page.phase == Phase::Backfill && ranges > 1 {
            true => provider.split_backfill(&target.collection.spec, &page.cursor, ranges),
            false => None,
        };
        let split = split.is_some_and(|cursor| {
            page.cursor = cursor;
            true
        });
        // The next page is on its way while this one is applied: the task
        // gets to send its request before the apply holds the thread.
        // A refused feed is not asked again once the backfill is done.
        let feed_next = !(target.feed_refused && page.phase == Phase::Incremental);
        if page.more && feed_next && !split && !stop_requested() && turn_started.elapsed() < TURN {
            self.prefetch(foreign_table, Lane::Feed, &target, &page.cursor, turn_started).await;
        }
        // The page's rows, encoded meanwhile.
        let encoded = match rows.ready().await {
            Ok((records, encoded)) => {
                page.records = records;
                encoded
            }
            Err(error) => {
                self.abort(foreign_table, Lane::Feed);
                return poll::fail(foreign_table, &error, target.collection.config.server.poll_interval);
            }
        };
        let applied = apply_page(&target, &page, encoded.as_ref());
        match applied {
            Ok(()) if split => self.start_ranges(foreign_table, &target, &page.cursor),
            Ok(()) => {}
            Err(error) => {
                self.abort(foreign_table, Lane::Feed);
                poll::fail(foreign_table, &error, target.collection.config.server.poll_interval);
            }
        }
        // (An idle poll's empty page is not worth waking the helper for.)
        if !page.records.is_empty() {
            offload::discard((page.records, encoded));
        }
    }

    /// Starts listing every range of a split backfill cursor that is not
    /// being listed already.
    fn start_ranges(&mut self, foreign_table: pg_sys::Oid, target: &Rc<Target>, cursor: &Value) {
        let provider = target.collection.config.server.provider;
        for range in provider.backfill_ranges(cursor).unwrap_or_default() {
            let lane = Lane::Range(range);
            if self.busy.len() >= MAX_IN_FLIGHT || stop_requested() {
                break;
            }
            if self.busy.contains_key(&(foreign_table, lane)) {
                continue;
            }
            let (target, cursor) = (target.clone(), cursor.clone());
            let task = self.tasks.spawn_local(async move {
                let result = fetch_range(&target, &cursor, range).await;
                Done::RangePage { foreign_table, range, target, result }
            });
            self.busy.insert((foreign_table, lane), (Instant::now(), task));
        }
    }

    /// A range's page: applied with the range's progress, and the ranges
    /// of the cursor it leaves listed on (unless the server was paused
    /// meanwhile: its feed starts them again when it is resumed).
    fn finish_range(&mut self, foreign_table: pg_sys::Oid, range: u64, target: Rc<Target>, result: Result<RangePage>) {
        self.busy.remove(&(foreign_table, Lane::Range(range)));
        let poll_interval = target.collection.config.server.poll_interval;
        let applied = result.and_then(|fetched| apply_range_page(&target, range, fetched));
        match applied {
            Ok(RangeApplied::Stored { cursor, paused: false }) => self.start_ranges(foreign_table, &target, &cursor),
            Ok(_) => {}
            Err(error) => poll::fail(foreign_table, &error, poll_interval),
        }
    }

    /// A sweep's page: applied, or its failure recorded. The sweep's next
    /// page is fetched while this one is applied, as the feed's is.
    async fn finish_sweep(
        &mut self,
        foreign_table: pg_sys::Oid,
        target: Option<Rc<Target>>,
        from: Value,
        result: Result<Fetched>,
        turn_started: Instant,
    ) {
        let (target, mut page, rows) = match (target, result) {
            (Some(target), Ok(Fetched::Page(page, rows))) => (target, page, rows),
            (target, Err(error)) => return sweep::fail(target.as_deref(), foreign_table, &error, false),
            (target, Ok(_)) => {
                let error = crate::error::SequinError::internal("the provider's listing cannot be continued");
                return sweep::fail(target.as_deref(), foreign_table, &error, true);
            }
        };
        if page.phase == Phase::Backfill && !stop_requested() && turn_started.elapsed() < TURN {
            self.prefetch(foreign_table, Lane::Sweep, &target, &page.cursor, turn_started).await;
        }
        let applied = rows.ready().await.and_then(|(records, encoded)| {
            page.records = records;
            sweep::apply_sweep_page(&target, &from, &page, encoded.as_ref())
        });
        if let Err(error) = applied {
            self.abort(foreign_table, Lane::Sweep);
            sweep::fail(Some(&target), foreign_table, &error, false);
        }
        offload::discard(page.records);
    }

    /// Starts fetching the page after `cursor`, and lets its task send the
    /// request before the current page's apply holds the thread.
    async fn prefetch(&mut self, foreign_table: pg_sys::Oid, lane: Lane, target: &Rc<Target>, cursor: &Value, turn_started: Instant) {
        self.fetch(foreign_table, lane, Some((target.clone(), cursor.clone())), turn_started);
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }

    /// Drops a lane's fetch in flight (its page before failed to apply).
    fn abort(&mut self, foreign_table: pg_sys::Oid, lane: Lane) {
        if let Some((_, next)) = self.busy.remove(&(foreign_table, lane)) {
            next.abort();
        }
    }

    /// A task that panicked: its collection is not left busy forever but
    /// records the failure and is retried with backoff like any other.
    fn task_failed(&mut self, error: tokio::task::JoinError) {
        let (lane, why) = failed_task(&self.busy, error);
        match lane {
            Some((foreign_table, lane)) => {
                self.busy.remove(&(foreign_table, lane));
                let error = crate::error::SequinError::internal(why);
                match lane {
                    Lane::Feed | Lane::Range(_) => poll::fail(foreign_table, &error, Duration::from_secs(5)),
                    Lane::Sweep => sweep::fail(None, foreign_table, &error, false),
                }
            }
            None => {
                // The re-read task: its queue is taken; the sync repairs the rows.
                self.rereading = false;
                log!("sequin sync: {why}");
            }
        }
    }

    fn start_rereads(&mut self) {
        if self.rereading {
            return;
        }
        let work = reread::take_queued();
        if work.is_empty() {
            return;
        }
        self.rereading = true;
        self.tasks.spawn_local(async move {
            reread::reread(work).await;
            Done::Reread
        });
    }
}

/// Which collection's lane a failed task was fetching (none for the
/// re-read task), and what to record about it.
fn failed_task(busy: &Busy, error: tokio::task::JoinError) -> (Option<(pg_sys::Oid, Lane)>, String) {
    let task = error.id();
    let collection = busy.iter().find(|(_, (_, handle))| handle.id() == task).map(|(key, _)| *key);
    let why = if error.is_panic() {
        let payload = error.into_panic();
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_string());
        format!("internal error in the sync: {text}")
    } else {
        "internal error in the sync: a task failed".to_string()
    };
    (collection, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_fetch_is_charged_to_its_own_collection_with_its_message() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async {
            let mut tasks: JoinSet<Done> = JoinSet::new();
            let mut busy = HashMap::new();
            let healthy = tasks.spawn_local(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Done::Reread
            });
            busy.insert((pg_sys::Oid::from(16_384u32), Lane::Feed), (Instant::now(), healthy));
            let id = 16_390u32;
            let panicking = tasks.spawn_local(async move {
                let cursor: Option<u32> = (id == 0).then_some(id);
                cursor.expect("a cursor the provider promised");
                Done::Reread
            });
            busy.insert((pg_sys::Oid::from(16_390u32), Lane::Sweep), (Instant::now(), panicking));
            let error = match tasks.join_next().await {
                Some(Err(error)) => error,
                _ => panic!("the panicking task ends first, with a JoinError"),
            };
            let (collection, why) = failed_task(&busy, error);
            assert_eq!(collection, Some((pg_sys::Oid::from(16_390u32), Lane::Sweep)));
            assert_eq!(why, "internal error in the sync: a cursor the provider promised");
            // The re-read task is no collection's.
            let reread = tasks.spawn_local(async { panic!("{} rows", 3) });
            let error = loop {
                if let Some(Err(error)) = tasks.join_next().await {
                    break error;
                }
            };
            assert_eq!(error.id(), reread.id());
            assert_eq!(failed_task(&busy, error), (None, "internal error in the sync: 3 rows".to_string()));
        });
    }
}
