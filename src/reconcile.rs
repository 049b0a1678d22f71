//! Records to re-read from the API, in shared memory: backends queue the ids
//! whose shadow rows may differ from the API (a rolled-back transaction that
//! had already written upstream, a write with an unknown outcome) and wake
//! their database's sync worker, which fetches each record and applies it.
//! A queue that overflows makes the workers poll every collection at once
//! instead.

use crate::sync::databases;
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PGRXSharedMemory, PgLwLock};
use std::cell::Cell;

const CAPACITY: usize = 512;
/// Longer ids (none of the providers has one) go the overflow way.
const MAX_ID_LEN: usize = 64;

#[derive(Clone, Copy)]
struct Entry {
    database: u32,
    foreign_table: u32,
    id_len: u8,
    id: [u8; MAX_ID_LEN],
}

#[derive(Clone, Copy)]
pub struct Queue {
    len: usize,
    /// Bumped by every overflow: each worker polls everything when it sees
    /// a number it has not seen (an overflow may have lost its records).
    overflows: u64,
    entries: [Entry; CAPACITY],
}

unsafe impl PGRXSharedMemory for Queue {}

impl Queue {
    const EMPTY: Queue = Queue {
        len: 0,
        overflows: 0,
        entries: [Entry { database: 0, foreign_table: 0, id_len: 0, id: [0; MAX_ID_LEN] }; CAPACITY],
    };
}

static QUEUE: PgLwLock<Queue> = unsafe { PgLwLock::new(c"sequin_fdw reconcile queue") };

thread_local! {
    /// The overflow count this worker has acted on.
    static SEEN_OVERFLOWS: Cell<u64> = const { Cell::new(0) };
}

/// Reserves the shared memory; called from `_PG_init` while preloading.
pub fn init() {
    pg_shmem_init!(QUEUE = Queue::EMPTY);
}

fn my_database() -> u32 {
    u32::from(unsafe { pg_sys::MyDatabaseId })
}

/// Queues records for a re-read and wakes the worker.
pub fn request(records: &[(pg_sys::Oid, String)]) {
    if records.is_empty() {
        return;
    }
    let database = my_database();
    {
        let mut queue = QUEUE.exclusive();
        for (foreign_table, id) in records {
            let duplicate = queue.entries[..queue.len].iter().any(|e| {
                e.database == database
                    && e.foreign_table == u32::from(*foreign_table)
                    && &e.id[..e.id_len as usize] == id.as_bytes()
            });
            if duplicate {
                continue;
            }
            if queue.len == CAPACITY || id.len() > MAX_ID_LEN {
                queue.overflows += 1;
                continue;
            }
            let mut entry = Entry {
                database,
                foreign_table: u32::from(*foreign_table),
                id_len: id.len() as u8,
                id: [0; MAX_ID_LEN],
            };
            entry.id[..id.len()].copy_from_slice(id.as_bytes());
            let at = queue.len;
            queue.entries[at] = entry;
            queue.len += 1;
        }
    }
    databases::wake_worker();
}

/// Asks the worker to poll every collection at once: a write whose record
/// id is not known (an INSERT whose outcome is unknown) is found that way.
pub fn poll_all_soon() {
    QUEUE.exclusive().overflows += 1;
    databases::wake_worker();
}

/// Takes what is queued for this database: the records, and whether some
/// did not fit since the last look (then everything is polled).
pub fn take() -> (Vec<(pg_sys::Oid, String)>, bool) {
    let database = my_database();
    let mut queue = QUEUE.exclusive();
    let len = queue.len;
    let (mine, others): (Vec<Entry>, Vec<Entry>) = queue.entries[..len].iter().partition(|e| e.database == database);
    for (i, entry) in others.iter().enumerate() {
        queue.entries[i] = *entry;
    }
    queue.len = others.len();
    let records = mine
        .iter()
        .map(|e| {
            (pg_sys::Oid::from(e.foreign_table), String::from_utf8_lossy(&e.id[..e.id_len as usize]).into_owned())
        })
        .collect();
    let overflows = queue.overflows;
    let overflowed = SEEN_OVERFLOWS.with(|seen| seen.replace(overflows)) != overflows;
    (records, overflowed)
}
