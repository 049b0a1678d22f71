//! One request budget per foreign server, in shared memory, used by every
//! backend's writes and by the sync worker: a token bucket (`rate_limit`
//! requests per second, `burst` at most in reserve), writes first (while a
//! write waits the worker takes no token), and pauses an API asked for (429
//! with Retry-After) that hold everyone back until the stated time.

use crate::gucs;
use crate::time::now_us;
use pgrx::pg_sys;
use std::time::Duration;

/// How often a waiting request looks at the bucket again.
const TICK: Duration = Duration::from_millis(5);
/// Seconds of request counts kept per server, for the status view.
const WINDOW: usize = 60;
/// The longest an API's word (Retry-After, a reset time) holds every
/// request to a server back: a longer or absurd value (`1e19`) would stop a
/// server for good, and `sequin.resume` lifts a pause sooner.
pub const MAX_UPSTREAM_PAUSE: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Write,
    Sync,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Bucket {
    /// The foreign server's database (server oids are per database).
    database: u32,
    /// The foreign server's oid; 0 for a free slot.
    server: u32,
    rate: f64,
    burst: f64,
    tokens: f64,
    refilled_us: i64,
    paused_until_us: i64,
    /// When the last writing request of a provider that spaces them
    /// (`Provider::write_spacing`) was let through, or got its reply.
    last_write_us: i64,
    writers_waiting: u32,
    /// Per second (index = unix second % WINDOW): the second, writes, syncs.
    seconds: [(i64, u32, u32); WINDOW],
    waited_us: u64,
}

#[repr(C)]
struct Header {
    lock: *mut pg_sys::LWLock,
    capacity: usize,
    full_warned: bool,
}

const TRANCHE: &std::ffi::CStr = c"sequin_fdw rate limits";
static mut SHARED: *mut Header = std::ptr::null_mut();
static mut PREVIOUS_REQUEST_HOOK: pg_sys::shmem_request_hook_type = None;
static mut PREVIOUS_STARTUP_HOOK: pg_sys::shmem_startup_hook_type = None;

fn size_for(capacity: usize) -> usize {
    std::mem::size_of::<Header>() + capacity * std::mem::size_of::<Bucket>()
}

/// Asks for shared memory sized by `sequin.max_servers`; from `_PG_init`.
pub fn init() {
    unsafe {
        PREVIOUS_REQUEST_HOOK = pg_sys::shmem_request_hook;
        pg_sys::shmem_request_hook = Some(request_memory);
        PREVIOUS_STARTUP_HOOK = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(attach_memory);
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn request_memory() {
    if let Some(previous) = PREVIOUS_REQUEST_HOOK {
        previous();
    }
    pg_sys::RequestAddinShmemSpace(size_for(gucs::max_servers()));
    pg_sys::RequestNamedLWLockTranche(TRANCHE.as_ptr(), 1);
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn attach_memory() {
    if let Some(previous) = PREVIOUS_STARTUP_HOOK {
        previous();
    }
    let capacity = gucs::max_servers();
    let init_lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock; // AddinShmemInitLock
    pg_sys::LWLockAcquire(init_lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
    let mut found = false;
    let header = pg_sys::ShmemInitStruct(TRANCHE.as_ptr(), size_for(capacity), &mut found) as *mut Header;
    if !found {
        std::ptr::write_bytes(header.cast::<u8>(), 0, size_for(capacity));
        (*header).lock = &raw mut (*pg_sys::GetNamedLWLockTranche(TRANCHE.as_ptr())).lock;
        (*header).capacity = capacity;
    }
    SHARED = header;
    pg_sys::LWLockRelease(init_lock);
}

/// Runs `f` on the bucket of `server` (claiming a free slot for it) under
/// the lock; None when there is no shared memory or no free slot.
fn with_bucket<R>(server: pg_sys::Oid, f: impl FnOnce(&mut Bucket) -> R) -> Option<R> {
    if server == pg_sys::InvalidOid {
        return None;
    }
    let id = u32::from(server);
    let database = my_database();
    with_buckets(pg_sys::LWLockMode::LW_EXCLUSIVE, |buckets, full_warned| {
        // A slot idle for a minute (its server dropped, or quiet) may be
        // taken over: its budget is full again by then anyway.
        let idle_before = now_us() - 60_000_000;
        let index = buckets
            .iter()
            .position(|b| b.server == id && b.database == database)
            .or_else(|| buckets.iter().position(|b| b.server == 0))
            .or_else(|| {
                buckets
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| b.refilled_us < idle_before && b.paused_until_us < idle_before && b.writers_waiting == 0)
                    .min_by_key(|(_, b)| b.refilled_us)
                    .map(|(i, _)| i)
            });
        match index {
            Some(i) => {
                if buckets[i].server != id || buckets[i].database != database {
                    buckets[i] = unsafe { std::mem::zeroed() };
                    buckets[i].server = id;
                    buckets[i].database = database;
                }
                Some(f(&mut buckets[i]))
            }
            None => {
                if !*full_warned {
                    *full_warned = true;
                    pgrx::warning!("sequin.max_servers is too small: some servers' requests are not rate limited");
                }
                None
            }
        }
    })
    .flatten()
}

/// Runs `f` on all buckets under the lock (taken in `mode`; `f` only reads
/// in shared mode); None when there is no shared memory.
fn with_buckets<R>(mode: pg_sys::LWLockMode::Type, f: impl FnOnce(&mut [Bucket], &mut bool) -> R) -> Option<R> {
    struct Release(*mut pg_sys::LWLock);
    impl Drop for Release {
        fn drop(&mut self) {
            unsafe { pg_sys::LWLockRelease(self.0) };
        }
    }
    unsafe {
        let header = SHARED;
        if header.is_null() {
            return None;
        }
        pg_sys::LWLockAcquire((*header).lock, mode);
        let _release = Release((*header).lock);
        let buckets = std::slice::from_raw_parts_mut(header.add(1).cast::<Bucket>(), (*header).capacity);
        Some(f(buckets, &mut (*header).full_warned))
    }
}

impl Bucket {
    fn refill(&mut self, rate: f64, burst: f64, now: i64) {
        let capacity = burst.max(1.0);
        if self.rate != rate || self.burst != burst || self.refilled_us == 0 {
            self.rate = rate;
            self.burst = burst;
            self.tokens = self.tokens.min(capacity);
            if self.refilled_us == 0 {
                self.tokens = 1.0;
            }
        } else if rate > 0.0 {
            let elapsed = (now - self.refilled_us).max(0) as f64 / 1e6;
            self.tokens = (self.tokens + elapsed * rate).min(capacity);
        }
        self.refilled_us = now;
    }

    fn count(&mut self, priority: Priority, now: i64) {
        let second = now / 1_000_000;
        let slot = &mut self.seconds[(second as usize) % WINDOW];
        if slot.0 != second {
            *slot = (second, 0, 0);
        }
        match priority {
            Priority::Write => slot.1 += 1,
            Priority::Sync => slot.2 += 1,
        }
    }
}

/// No token before the deadline, or an upstream pause outlasts it: the
/// budget frees up again at `until_us` (unix µs).
#[derive(Debug, Clone, PartialEq)]
pub struct TooLate {
    pub until_us: i64,
}

/// Counts a write as waiting for as long as it lives, so the worker holds
/// back; dropping it (granted, refused or abandoned) ends the wait.
struct WaitingWriter {
    server: pg_sys::Oid,
    counted: bool,
}

impl Drop for WaitingWriter {
    fn drop(&mut self) {
        if self.counted {
            with_bucket(self.server, |bucket| bucket.writers_waiting = bucket.writers_waiting.saturating_sub(1));
        }
    }
}

/// Waits for a request slot on `server`'s budget until `deadline_us`.
/// `rate` None means no local limit (upstream pauses still hold). A writing
/// request with `spacing` also waits until that long after the server's
/// last one.
pub async fn acquire(
    server: pg_sys::Oid,
    rate: Option<f64>,
    burst: f64,
    priority: Priority,
    spacing: Option<Duration>,
    deadline_us: i64,
) -> Result<(), TooLate> {
    let spacing_us = spacing.map(|s| i64::try_from(s.as_micros()).unwrap_or(i64::MAX));
    let started = now_us();
    let mut waiting = WaitingWriter { server, counted: false };
    loop {
        let now = now_us();
        // Ok(None): granted; Ok(Some(t)): free again at t.
        let step = with_bucket(server, |bucket| {
            bucket.refill(rate.unwrap_or(0.0), burst, now);
            let spaced_until = spacing_us.map_or(0, |s| bucket.last_write_us.saturating_add(s));
            let free_at = if bucket.paused_until_us > now {
                Some(bucket.paused_until_us)
            } else if spaced_until > now {
                Some(spaced_until)
            } else if priority == Priority::Sync && bucket.writers_waiting > 0 {
                Some(now + TICK.as_micros() as i64)
            } else if rate.is_none() || bucket.tokens >= 1.0 {
                None
            } else {
                let rate = rate.unwrap_or(1.0);
                // f64 → i64 `as` saturates; the sum must too.
                Some(now.saturating_add(((1.0 - bucket.tokens) / rate * 1e6) as i64))
            };
            match free_at {
                None => {
                    if rate.is_some() {
                        bucket.tokens -= 1.0;
                    }
                    bucket.count(priority, now);
                    if spacing_us.is_some() {
                        bucket.last_write_us = now;
                    }
                    bucket.waited_us += (now - started).max(0) as u64;
                    if waiting.counted {
                        bucket.writers_waiting = bucket.writers_waiting.saturating_sub(1);
                        waiting.counted = false;
                    }
                }
                Some(_) if priority == Priority::Write && !waiting.counted => {
                    bucket.writers_waiting += 1;
                    waiting.counted = true;
                }
                Some(_) => {}
            }
            free_at
        });
        match step {
            None | Some(None) => return Ok(()),
            Some(Some(free_at)) if free_at > deadline_us => return Err(TooLate { until_us: free_at }),
            Some(Some(free_at)) => {
                let wait = Duration::from_micros((free_at - now).max(0) as u64);
                tokio::time::sleep(wait.min(TICK)).await;
            }
        }
    }
}

/// A writing request that `acquire` spaced has its reply (or failed):
/// the next one waits its spacing from now, not from when this one was let
/// through. The API counts the time between the writes it receives:
/// measured from the slot, a write that took longer to arrive than the
/// next one left less than a second between them there (GitHub's
/// secondary limit then refuses the second with 403, retry in 60 s).
pub fn spaced_write_done(server: pg_sys::Oid) {
    let now = now_us();
    with_bucket(server, |bucket| bucket.last_write_us = bucket.last_write_us.max(now));
}

/// Holds back every request to `server` until `until_us` (an upstream 429),
/// at most MAX_UPSTREAM_PAUSE from now.
pub fn pause(server: pg_sys::Oid, until_us: i64) {
    let until_us = capped_pause(now_us(), until_us);
    with_bucket(server, |bucket| bucket.paused_until_us = bucket.paused_until_us.max(until_us));
}

fn capped_pause(now: i64, until_us: i64) -> i64 {
    let longest = i64::try_from(MAX_UPSTREAM_PAUSE.as_micros()).unwrap_or(i64::MAX);
    until_us.min(now.saturating_add(longest))
}

/// Lifts an upstream pause of `server` (`sequin.resume`): whoever resumes
/// a server says its API may be asked again.
pub fn clear_pause(server: pg_sys::Oid) {
    // Not with_bucket: a server without a bucket has no pause, and must
    // not take a slot for it.
    let id = u32::from(server);
    let database = my_database();
    with_buckets(pg_sys::LWLockMode::LW_EXCLUSIVE, |buckets, _| {
        for bucket in buckets.iter_mut().filter(|b| id != 0 && b.server == id && b.database == database) {
            bucket.paused_until_us = 0;
        }
    });
}

/// Frees the bucket of a server that is dropped (DROP SERVER, DROP
/// EXTENSION … CASCADE): nothing of it stays in shared memory.
pub fn forget(server: pg_sys::Oid) {
    let id = u32::from(server);
    let database = my_database();
    with_buckets(pg_sys::LWLockMode::LW_EXCLUSIVE, |buckets, _| {
        for bucket in buckets.iter_mut().filter(|b| b.server == id && b.database == database) {
            *bucket = unsafe { std::mem::zeroed() };
        }
    });
}

fn my_database() -> u32 {
    u32::from(unsafe { pg_sys::MyDatabaseId })
}

/// One server's budget, for `sequin.rate_limits()`.
pub struct Status {
    pub server: pg_sys::Oid,
    pub rate: Option<f64>,
    pub burst: f64,
    pub writes_last_minute: i64,
    pub sync_last_minute: i64,
    pub waited_ms: i64,
    pub paused_until_us: Option<i64>,
}

pub fn status() -> Vec<Status> {
    with_buckets(pg_sys::LWLockMode::LW_SHARED, |buckets, _| {
        let now = now_us();
        let this_second = now / 1_000_000;
        let database = my_database();
        buckets
            .iter()
            .filter(|b| b.server != 0 && b.database == database)
            .map(|b| {
                let recent = b.seconds.iter().filter(|s| s.0 > this_second - WINDOW as i64 && s.0 <= this_second);
                let (writes, syncs) = recent.fold((0i64, 0i64), |(w, s), slot| (w + slot.1 as i64, s + slot.2 as i64));
                Status {
                    server: pg_sys::Oid::from(b.server),
                    rate: (b.rate > 0.0).then_some(b.rate),
                    burst: b.burst,
                    writes_last_minute: writes,
                    sync_last_minute: syncs,
                    waited_ms: (b.waited_us / 1000) as i64,
                    paused_until_us: (b.paused_until_us > now).then_some(b.paused_until_us),
                }
            })
            .collect()
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_never_reaches_past_the_longest() {
        let now = 1_700_000_000_000_000;
        let hour = 3_600_000_000;
        assert_eq!(capped_pause(now, now + 5_000_000), now + 5_000_000);
        assert_eq!(capped_pause(now, now + hour), now + hour);
        assert_eq!(capped_pause(now, now + hour + 1), now + hour);
        assert_eq!(capped_pause(now, i64::MAX), now + hour);
        assert_eq!(capped_pause(i64::MAX - 1, i64::MAX), i64::MAX);
    }
}
