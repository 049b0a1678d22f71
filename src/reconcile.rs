//! Records to re-read from the API, in shared memory: backends queue the ids
//! whose shadow rows may differ from the API (a rolled-back transaction that
//! had already written upstream, a write with an unknown outcome) and wake
//! the sync worker, which fetches each record and applies it. A queue that
//! overflows makes the worker poll every collection at once instead.

use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PGRXSharedMemory, PgAtomic, PgLwLock};
use std::sync::atomic::{AtomicUsize, Ordering};

const CAPACITY: usize = 512;
/// Longer ids (none of the providers has one) go the overflow way.
const MAX_ID_LEN: usize = 64;

#[derive(Clone, Copy)]
struct Entry {
    foreign_table: u32,
    id_len: u8,
    id: [u8; MAX_ID_LEN],
}

#[derive(Clone, Copy)]
pub struct Queue {
    len: usize,
    overflowed: bool,
    entries: [Entry; CAPACITY],
}

unsafe impl PGRXSharedMemory for Queue {}

impl Queue {
    const EMPTY: Queue = Queue {
        len: 0,
        overflowed: false,
        entries: [Entry { foreign_table: 0, id_len: 0, id: [0; MAX_ID_LEN] }; CAPACITY],
    };
}

static QUEUE: PgLwLock<Queue> = unsafe { PgLwLock::new(c"sequin_fdw reconcile queue") };
/// The sync worker's latch (an address in shared memory), 0 when none runs.
static WORKER_LATCH: PgAtomic<AtomicUsize> = unsafe { PgAtomic::new(c"sequin_fdw worker latch") };

/// Reserves the shared memory; called from `_PG_init` while preloading.
pub fn init() {
    pg_shmem_init!(QUEUE = Queue::EMPTY);
    pg_shmem_init!(WORKER_LATCH);
}

/// Queues records for a re-read and wakes the worker.
pub fn request(records: &[(pg_sys::Oid, String)]) {
    if records.is_empty() {
        return;
    }
    {
        let mut queue = QUEUE.exclusive();
        for (foreign_table, id) in records {
            let duplicate = queue.entries[..queue.len].iter().any(|e| {
                e.foreign_table == u32::from(*foreign_table) && &e.id[..e.id_len as usize] == id.as_bytes()
            });
            if duplicate {
                continue;
            }
            if queue.len == CAPACITY || id.len() > MAX_ID_LEN {
                queue.overflowed = true;
                continue;
            }
            let mut entry = Entry { foreign_table: u32::from(*foreign_table), id_len: id.len() as u8, id: [0; MAX_ID_LEN] };
            entry.id[..id.len()].copy_from_slice(id.as_bytes());
            let at = queue.len;
            queue.entries[at] = entry;
            queue.len += 1;
        }
    }
    wake_worker();
}

/// Asks the worker to poll every collection at once: a write whose record
/// id is not known (an INSERT whose outcome is unknown) is found that way.
pub fn poll_all_soon() {
    QUEUE.exclusive().overflowed = true;
    wake_worker();
}

/// Takes everything queued: the records, and whether some did not fit.
pub fn take() -> (Vec<(pg_sys::Oid, String)>, bool) {
    let mut queue = QUEUE.exclusive();
    let records = queue.entries[..queue.len]
        .iter()
        .map(|e| {
            (pg_sys::Oid::from(e.foreign_table), String::from_utf8_lossy(&e.id[..e.id_len as usize]).into_owned())
        })
        .collect();
    let overflowed = queue.overflowed;
    queue.len = 0;
    queue.overflowed = false;
    (records, overflowed)
}

/// Called by the worker when it starts (with its latch) and stops (null).
pub fn set_worker_latch(latch: *mut pg_sys::Latch) {
    WORKER_LATCH.get().store(latch as usize, Ordering::SeqCst);
}

pub fn wake_worker() {
    let latch = WORKER_LATCH.get().load(Ordering::SeqCst);
    if latch != 0 {
        // The latch lives in the worker's PGPROC, in shared memory; setting a
        // latch that has since been reused only causes a spurious wake-up.
        unsafe { pg_sys::SetLatch(latch as *mut pg_sys::Latch) };
    }
}
