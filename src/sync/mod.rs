//! The sync path: a background worker that keeps every shadow table equal to
//! its API collection (backfill, then incremental changes).

pub mod credentials;
pub mod engine;
pub mod poll;
pub mod reread;
pub mod worker;
