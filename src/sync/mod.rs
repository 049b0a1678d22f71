//! The sync path: a background worker that keeps every shadow table equal to
//! its API collection (backfill, then incremental changes, and sweeps that
//! compare the whole collection).

pub mod credentials;
pub mod engine;
pub mod poll;
pub mod reread;
pub mod sweep;
pub mod worker;
