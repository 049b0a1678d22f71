//! SQL functions of the extension (schema `sequin`).

use crate::catalog;
use crate::error::{ErrorKind, OrRaise, Result, SequinError};
use crate::privilege::{catalog_owner, run_as};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

/// Creates the shadow table and sync state of a sequin_fdw foreign table.
/// Called by the DDL event trigger; idempotent for users who call it.
#[pg_extern]
fn register_foreign_table(foreign_table: pg_sys::Oid) {
    let registered = Spi::get_one_with_args::<String>(
        "SELECT shadow_table FROM sequin.collections WHERE foreign_table = $1",
        &[foreign_table.into()],
    );
    if let Ok(Some(shadow)) = registered {
        // Registered by 0.1.0: what a dump and restore need is added.
        catalog::make_restorable(foreign_table, &shadow).or_raise();
    } else {
        catalog::register(foreign_table).or_raise();
        crate::sync::databases::want_worker_at_commit();
        if let Some(warning) = crate::sync::databases::not_synced_warning() {
            warning!("{warning}");
        }
    }
}

/// True while registration writes the catalog: the catalog's insert
/// trigger lets those rows be, and takes any other (a restore's) as a
/// restored row.
#[pg_extern]
fn registering() -> bool {
    catalog::is_registering()
}

/// Every server's shared request budget (behind `sequin.rate_limit_status`).
#[pg_extern]
#[allow(clippy::type_complexity)]
fn rate_limits() -> TableIterator<
    'static,
    (
        name!(server_oid, pg_sys::Oid),
        name!(rate_limit, Option<f64>),
        name!(burst, f64),
        name!(writes_last_minute, i64),
        name!(sync_last_minute, i64),
        name!(waited_ms, i64),
        name!(paused_until_epoch, Option<f64>),
    ),
> {
    let rows: Vec<_> = crate::rate_limit::status()
        .into_iter()
        .map(|s| {
            (
                s.server,
                s.rate,
                s.burst,
                s.writes_last_minute,
                s.sync_last_minute,
                s.waited_ms,
                s.paused_until_us.map(|us| us as f64 / 1e6),
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// Polls the table's collection now instead of at its next poll.
#[pg_extern(sql = "
    CREATE FUNCTION sequin.sync_now(foreign_table regclass) RETURNS void
        STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'sync_now_wrapper';
")]
fn sync_now(foreign_table: pg_sys::Oid) {
    refuse_in_recovery("sequin.sync_now()").or_raise();
    owned_collection(foreign_table).or_raise();
    run_as(catalog_owner(), || catalog::poll_now(foreign_table)).or_raise();
    crate::sync::databases::wake_or_start_worker();
}

/// Starts the table's backfill over without dropping its rows: every
/// record is read again, and rows of records the API no longer has are
/// marked deleted when the backfill ends.
#[pg_extern(sql = "
    CREATE FUNCTION sequin.resync(foreign_table regclass) RETURNS void
        STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'resync_wrapper';
")]
fn resync(foreign_table: pg_sys::Oid) {
    refuse_in_recovery("sequin.resync()").or_raise();
    owned_collection(foreign_table).or_raise();
    run_as(catalog_owner(), || catalog::restart_backfill(foreign_table, None)).or_raise();
    crate::sync::databases::wake_or_start_worker();
}

/// Asks the API for the table's fields now and adds a column (filled from
/// `raw`, no API calls) for each field no column holds; returns their
/// names. What it would add shows in sync_status.schema_drift.
#[pg_extern(sql = "
    CREATE FUNCTION sequin.refresh_schema(foreign_table regclass) RETURNS text[]
        STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'refresh_schema_wrapper';
")]
fn refresh_schema(foreign_table: pg_sys::Oid) -> Vec<String> {
    refuse_in_recovery("sequin.refresh_schema()").or_raise();
    owned_collection(foreign_table).or_raise();
    crate::discovery::refresh(foreign_table).or_raise()
}

/// Stops syncing every table of the server (writes still work).
#[pg_extern]
fn pause(server: &str) {
    refuse_in_recovery("sequin.pause()").or_raise();
    let server = owned_server(server).or_raise();
    run_as(catalog_owner(), || catalog::set_paused(server, true)).or_raise();
}

/// Syncs the server's tables again, at once, and lifts a pause the API
/// asked for (429 Retry-After, a daily limit).
#[pg_extern]
fn resume(server: &str) {
    refuse_in_recovery("sequin.resume()").or_raise();
    let server = owned_server(server).or_raise();
    run_as(catalog_owner(), || catalog::set_paused(server, false)).or_raise();
    crate::rate_limit::clear_pause(server);
    crate::sync::databases::wake_or_start_worker();
}

/// Sends any request to a server's API with the caller's user mapping (else
/// PUBLIC's), within the server's timeout and request budget (as a write),
/// and returns the API's reply: status, headers and body. On a 2xx, every
/// record of a synced collection in the reply is applied to its tables, in
/// the caller's transaction. A refusal (non-2xx) is a row like any other,
/// or, with `raise_error`, the error a write gets for it. See
/// `request.rs`.
#[pg_extern]
#[allow(clippy::type_complexity)]
fn request(
    server: Option<&str>,
    method: Option<&str>,
    path: Option<&str>,
    body: default!(Option<pgrx::JsonB>, "NULL"),
    headers: default!(Option<pgrx::JsonB>, "NULL"),
    raise_error: default!(Option<bool>, false),
) -> TableIterator<'static, (name!(status, i32), name!(headers, pgrx::JsonB), name!(body, Option<pgrx::JsonB>))> {
    fn required<'a>(value: Option<&'a str>, name: &str) -> &'a str {
        value.unwrap_or_else(|| {
            SequinError::new(ErrorKind::InvalidArgument, format!("sequin.request(): {name} must not be null")).raise()
        })
    }
    let call = crate::request::Call {
        server: required(server, "server"),
        method: required(method, "method"),
        path: required(path, "path"),
        body: body.as_ref().map(|b| &b.0),
        headers: headers.as_ref().map(|h| &h.0),
    };
    let row = crate::request::request(&call, raise_error.unwrap_or(false)).or_raise();
    TableIterator::once((row.status, pgrx::JsonB(row.headers), row.body.map(pgrx::JsonB)))
}

/// The HTTP proxy's call (`proxy/`): the request its client sent, run as
/// the role whose user mapping holds the presented credential (`api_key`
/// or `proxy_token`); the API's reply as it came (headers as `[name,
/// value]` pairs, the body's bytes), its records applied before it
/// returns, and `database_behind` saying why when that apply failed. No
/// role may call it until granted: it acts as whoever's key it is given.
/// See `proxy.rs`.
#[pg_extern(sql = "
    CREATE FUNCTION sequin.proxy_request(server text, credential text, method text, path text,
                                         headers jsonb DEFAULT NULL, body bytea DEFAULT NULL)
        RETURNS TABLE (status int, headers jsonb, body bytea, database_behind text)
        LANGUAGE c AS 'MODULE_PATHNAME', 'proxy_request_wrapper';
    REVOKE ALL ON FUNCTION sequin.proxy_request(text, text, text, text, jsonb, bytea) FROM PUBLIC;
")]
#[allow(clippy::type_complexity)]
fn proxy_request(
    server: Option<&str>,
    credential: Option<&str>,
    method: Option<&str>,
    path: Option<&str>,
    headers: Option<pgrx::JsonB>,
    body: Option<Vec<u8>>,
) -> TableIterator<
    'static,
    (name!(status, i32), name!(headers, pgrx::JsonB), name!(body, Option<Vec<u8>>), name!(database_behind, Option<String>)),
> {
    fn required<'a>(value: Option<&'a str>, name: &str) -> &'a str {
        value.unwrap_or_else(|| {
            SequinError::new(ErrorKind::InvalidArgument, format!("sequin.proxy_request(): {name} must not be null")).raise()
        })
    }
    let received = crate::proxy::Received {
        server: required(server, "server"),
        credential: credential.unwrap_or(""),
        method: required(method, "method"),
        path: required(path, "path"),
        headers: headers.as_ref().map(|h| &h.0),
        body,
    };
    let reply = crate::proxy::proxy_request(received).or_raise();
    TableIterator::once((reply.status, pgrx::JsonB(reply.headers), reply.body, reply.database_behind))
}

/// A hot standby can neither change the catalog nor write to an API on
/// behalf of its primary: what would is refused as Postgres refuses any
/// write there (25006).
pub fn refuse_in_recovery(what: &str) -> Result<()> {
    if unsafe { pg_sys::RecoveryInProgress() } {
        return Err(SequinError::new(ErrorKind::ReadOnly, format!("cannot run {what} during recovery"))
            .with_detail("This server is a hot standby: the sync runs on the primary, and writes go through the primary.")
            .with_hint("Connect to the primary server."));
    }
    Ok(())
}

/// Checks that the table is a synced foreign table the caller owns.
fn owned_collection(foreign_table: pg_sys::Oid) -> Result<()> {
    let args: [DatumWithOid; 1] = [foreign_table.into()];
    let found = Spi::get_two_with_args::<String, bool>(
        "SELECT c.oid::regclass::text, pg_has_role(c.relowner, 'USAGE')
           FROM pg_class c
           JOIN pg_foreign_table ft ON ft.ftrelid = c.oid
           JOIN pg_foreign_server s ON s.oid = ft.ftserver
           JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw AND w.fdwname = 'sequin_fdw'
          WHERE c.oid = $1",
        &args,
    );
    match found {
        Ok((Some(_), Some(true))) => Ok(()),
        Ok((Some(name), _)) => Err(SequinError::new(ErrorKind::NotOwner, format!("must be owner of foreign table {name}"))),
        _ => Err(SequinError::new(
            ErrorKind::UndefinedObject,
            format!("relation with OID {} is not a sequin_fdw foreign table", u32::from(foreign_table)),
        )),
    }
}

/// The oid of a sequin_fdw server the caller owns.
fn owned_server(name: &str) -> Result<pg_sys::Oid> {
    let args: [DatumWithOid; 1] = [name.into()];
    let found = Spi::get_two_with_args::<pg_sys::Oid, bool>(
        "SELECT s.oid, pg_has_role(s.srvowner, 'USAGE')
           FROM pg_foreign_server s
           JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw AND w.fdwname = 'sequin_fdw'
          WHERE s.srvname = $1",
        &args,
    );
    match found {
        Ok((Some(oid), Some(true))) => Ok(oid),
        Ok((Some(_), _)) => Err(SequinError::new(ErrorKind::NotOwner, format!("must be owner of foreign server {name}"))),
        _ => Err(SequinError::new(ErrorKind::UndefinedObject, format!("server \"{name}\" is not a sequin_fdw server"))
            .with_hint("SELECT srvname FROM pg_foreign_server lists the servers.")),
    }
}

/// This database's sync worker: `running`, `starting`, `standby` (the
/// primary syncs), or why it does not run (`over limit`, `no process`,
/// `other version`, `failed`, `no launcher`); its pid, and a sentence for
/// a person.
#[pg_extern]
fn sync_worker() -> TableIterator<'static, (name!(state, String), name!(pid, Option<i32>), name!(detail, String))> {
    let (state, pid, detail) = crate::sync::databases::status();
    TableIterator::new(std::iter::once((state.to_string(), pid, detail)))
}
