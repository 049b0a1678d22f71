//! Statements the extension runs again and again — the worker's catalog
//! reads and writes on every poll, the apply statement of every page —
//! planned once per session and kept, instead of parsed and planned on
//! every call (which was most of an idle worker's time). Postgres replans a
//! kept plan by itself when an object it names changes or `search_path`
//! differs; dynamic SQL (a table's name in the text) gets a plan per text,
//! and the cache starts over before it grows past `MAX_PLANS`.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiResult, SpiTupleTable};
use pgrx::{FromDatum, IntoDatum};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Enough for every statement and table a session uses.
const MAX_PLANS: usize = 512;

thread_local! {
    /// By statement text and argument types (the sync's apply statement
    /// takes its rows as text or as jsonb).
    static PLANS: RefCell<HashMap<(String, Vec<pg_sys::Oid>), Rc<OwnedPreparedStatement>>> = RefCell::new(HashMap::new());
}

/// Runs `sql` with `args` through its kept plan for these argument types
/// (made now if there is none). A `SELECT` runs as a read, which leaves
/// a transaction that has written nothing without a transaction id (a read
/// on a hot standby cannot have one); any other statement as a write.
pub fn execute<'conn>(
    client: &mut SpiClient<'conn>,
    sql: &str,
    limit: Option<std::ffi::c_long>,
    args: &[DatumWithOid<'_>],
) -> SpiResult<SpiTupleTable<'conn>> {
    let types: Vec<pg_sys::Oid> = args.iter().map(DatumWithOid::oid).collect();
    let read = is_read(sql);
    // The cache is not borrowed while the statement runs: a trigger it
    // fires may run a statement of its own through here.
    let key = (sql.to_string(), types);
    let cached = PLANS.with(|plans| plans.borrow().get(&key).cloned());
    let plan = match cached {
        Some(plan) => plan,
        None => {
            let oids: Vec<PgOid> = key.1.iter().map(|&oid| PgOid::from(oid)).collect();
            let plan = Rc::new(match read {
                true => client.prepare(sql, &oids)?.keep(),
                false => client.prepare_mut(sql, &oids)?.keep(),
            });
            PLANS.with(|plans| {
                let mut plans = plans.borrow_mut();
                if plans.len() >= MAX_PLANS {
                    plans.clear();
                }
                plans.insert(key, plan.clone());
            });
            plan
        }
    };
    match read {
        true => client.select(&*plan, limit, args),
        false => client.update(&*plan, limit, args),
    }
}

/// Whether a statement only reads (it starts with SELECT).
fn is_read(sql: &str) -> bool {
    sql.trim_start().get(..6).is_some_and(|verb| verb.eq_ignore_ascii_case("select"))
}

/// `Spi::get_one_with_args` through a kept plan.
pub fn get_one<A: FromDatum + IntoDatum>(sql: &str, args: &[DatumWithOid<'_>]) -> SpiResult<Option<A>> {
    Spi::connect_mut(|client| execute(client, sql, Some(1), args)?.first().get_one())
}

/// `Spi::get_two_with_args` through a kept plan.
pub fn get_two<A: FromDatum + IntoDatum, B: FromDatum + IntoDatum>(
    sql: &str,
    args: &[DatumWithOid<'_>],
) -> SpiResult<(Option<A>, Option<B>)> {
    Spi::connect_mut(|client| execute(client, sql, Some(1), args)?.first().get_two::<A, B>())
}

/// `Spi::run_with_args` through a kept plan.
pub fn run(sql: &str, args: &[DatumWithOid<'_>]) -> SpiResult<()> {
    Spi::connect_mut(|client| execute(client, sql, None, args).map(|_| ()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn selects_are_reads_and_the_rest_writes() {
        assert!(super::is_read("SELECT 1"));
        assert!(super::is_read("\n   select c.cursor FROM sequin.collections c"));
        for write in ["UPDATE sequin.collections SET x = 1", "WITH applied AS (INSERT …) SELECT 1", "INSERT INTO t VALUES (1)", "sel", ""] {
            assert!(!super::is_read(write), "{write}");
        }
    }
}
