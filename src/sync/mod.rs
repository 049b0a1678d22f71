//! The sync path: a background worker per database that keeps every shadow
//! table equal to its API collection (backfill, then incremental changes,
//! and sweeps that compare the whole collection), started by a launcher.

pub mod credentials;
pub mod databases;
pub mod engine;
pub mod launcher;
pub mod poll;
pub mod reread;
pub mod statements;
pub mod sweep;
pub mod worker;
