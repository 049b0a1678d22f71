// `#[pg_test]`s: each runs in a real cluster with the library preloaded (so
// the sync worker runs), against the sequin-mock that `make pg-test` starts
// and whose URL it leaves in MOCK_URL_FILE. Each test uses its own mock
// account (API key), so tests do not see each other's records.

use crate::http;
use crate::providers::{ApiRequest, Body, Method};
use pgrx::prelude::*;
use serde_json::Value;
use std::time::Duration;

#[cfg(feature = "pg15")]
const MOCK_URL_FILE: &str = "/tmp/sequin_fdw_pgtest_mock.url";
// A file of its own: `make test PG=18` may run beside a PG 15 one.
#[cfg(feature = "pg18")]
const MOCK_URL_FILE: &str = "/tmp/sequin_fdw_pgtest18_mock.url";

fn mock_url() -> String {
    std::fs::read_to_string(MOCK_URL_FILE).expect("make pg-test starts sequin-mock first").trim().to_string()
}

/// Calls the mock's admin interface and returns its JSON reply.
fn admin(method: Method, path: &str, body: Option<Value>) -> Value {
    let request = ApiRequest { method, path: path.to_string(), body: body.map(Body::Json), idempotency_key: None, headers: Vec::new() };
    let response = http::block_on(http::send(&mock_url(), &[], &request, Duration::from_secs(10)), &|| false)
        .expect("not interrupted")
        .expect("mock reachable");
    response.json().unwrap_or(Value::Null)
}

fn mock_customer(account: &str, id: &str) -> Value {
    admin(Method::Get, &format!("/_admin/stripe/customers/{id}?account={account}"), None)
}

fn mock_request_total(account: &str) -> i64 {
    admin(Method::Get, &format!("/_admin/requests?account={account}"), None)["total"].as_i64().unwrap_or(-1)
}

/// A Stripe server, user mapping and imported `customers` table in schema `name`.
fn stripe_server(name: &str, account: &str) {
    admin(Method::Post, &format!("/_admin/reset?account={account}"), None);
    Spi::run(&format!(
        "CREATE SERVER {name} FOREIGN DATA WRAPPER sequin_fdw
           OPTIONS (provider 'stripe', base_url '{}', poll_interval '1h');
         CREATE USER MAPPING FOR PUBLIC SERVER {name} OPTIONS (api_key '{account}');
         CREATE SCHEMA {name};
         IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER {name} INTO {name};",
        mock_url()
    ))
    .unwrap();
}

/// Runs `sql` and returns `SQLSTATE: message | detail | hint` of its error,
/// or "ok". The error is caught in a subtransaction (a plpgsql block).
fn error_of(sql: &str) -> String {
    Spi::run(
        "CREATE OR REPLACE FUNCTION pg_temp.error_of(sql text) RETURNS text LANGUAGE plpgsql AS $$
         DECLARE state text; message text; detail text; hint text;
         BEGIN
             EXECUTE sql;
             RETURN 'ok';
         EXCEPTION WHEN OTHERS THEN
             GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                                     detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
             RETURN state || ': ' || message || ' | ' || detail || ' | ' || hint;
         END $$",
    )
    .unwrap();
    Spi::get_one_with_args::<String>("SELECT pg_temp.error_of($1)", &[sql.into()]).unwrap().unwrap()
}

fn text(sql: &str) -> Option<String> {
    Spi::get_one::<String>(sql).unwrap()
}

/// Every thread of this backend but its own blocks the signals Postgres
/// handles (its threads' ids and what they leave unblocked).
fn threads_taking_signals() -> Vec<(String, u64)> {
    const HANDLED: [i32; 6] = [libc::SIGHUP, libc::SIGINT, libc::SIGUSR1, libc::SIGALRM, libc::SIGTERM, libc::SIGURG];
    let own = std::process::id().to_string();
    let mut taking = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("Linux's /proc").flatten() {
        let tid = task.file_name().to_string_lossy().into_owned();
        // (A thread may end meanwhile.)
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else { continue };
        let blocked = status.lines().find_map(|l| l.strip_prefix("SigBlk:")).map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap());
        let unblocked = HANDLED.iter().map(|&s| 1u64 << (s - 1)).filter(|bit| blocked.unwrap_or(0) & bit == 0).fold(0, |a, b| a | b);
        if tid != own && unblocked != 0 {
            taking.push((tid, unblocked));
        }
    }
    taking
}

#[pg_test]
fn a_backend_looks_up_host_names_on_threads_that_block_every_signal() {
    // localhost, not 127.0.0.1: a name to look up.
    let url = mock_url().replace("127.0.0.1", "localhost");
    assert!(url.contains("localhost"), "{url}");
    let request = ApiRequest {
        method: Method::Get,
        path: "/_admin/requests?account=sk_test_pg_lookup".into(),
        body: None,
        idempotency_key: None,
        headers: Vec::new(),
    };
    let response = http::block_on(http::send(&url, &[], &request, Duration::from_secs(10)), &|| false)
        .expect("not interrupted")
        .expect("the mock, reached by its name");
    assert!(response.is_success());
    // reqwest's own resolver left a tokio thread with the backend's mask
    // (SIGALRM, SIGINT, … unblocked) for 10 s after the lookup.
    assert_eq!(threads_taking_signals(), Vec::<(String, u64)>::new());
}

#[pg_test]
fn worker_runs_when_preloaded() {
    // The worker may have started before the test database existed; the
    // postmaster restarts it within 5 s.
    let running = || {
        Spi::run("SELECT pg_stat_clear_snapshot()").unwrap();
        Spi::get_one::<bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                             WHERE backend_type = 'sequin sync' AND datname = current_database())",
        )
        .unwrap()
            == Some(true)
    };
    let started = (0..150).any(|_| running() || { std::thread::sleep(Duration::from_millis(100)); false });
    assert!(started, "no sequin sync worker in this database after 15 s");
}

#[pg_test]
fn import_creates_foreign_table_and_shadow_with_standard_fields() {
    stripe_server("imp", "sk_test_pg_import");
    assert_eq!(text("SELECT shadow_table::regclass::text FROM sequin.collections WHERE foreign_table = 'imp.customers'::regclass").as_deref(), Some("sequin_shadow.imp_customers"));
    let columns = text(
        "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
          WHERE attrelid = 'sequin_shadow.imp_customers'::regclass AND attnum > 0",
    )
    .unwrap();
    for column in ["id", "email", "metadata", "created", "deleted", "updated_idx", "upstream_updated_at", "sync_id", "sync_external_id", "sync_metadata", "raw"] {
        assert!(columns.split(',').any(|c| c == column), "{column} missing from {columns}");
    }
    assert_eq!(text("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'imp.customers'::regclass AND attname = 'created'").as_deref(), Some("timestamp with time zone"));
}

#[pg_test]
fn insert_returns_the_api_id_and_applies_the_reply_locally() {
    stripe_server("ins", "sk_test_pg_insert");
    let id = text("INSERT INTO ins.customers (email, name, metadata) VALUES ('ada@example.com', 'Ada', '{\"tier\":\"gold\"}') RETURNING id").unwrap();
    assert!(id.starts_with("cus_"), "{id}");
    let upstream = mock_customer("sk_test_pg_insert", &id);
    assert_eq!(upstream["email"], "ada@example.com");
    assert_eq!(upstream["metadata"]["tier"], "gold");
    let local = text(&format!("SELECT name || ' ' || (raw->>'object') || ' ' || sync_id FROM sequin_shadow.ins_customers WHERE id = '{id}'"));
    assert_eq!(local.as_deref(), Some("Ada customer ins"));
    let created = Spi::get_one::<bool>(&format!("SELECT created IS NOT NULL AND updated_idx > 0 FROM ins.customers WHERE id = '{id}'"));
    assert_eq!(created.unwrap(), Some(true));
}

#[pg_test]
fn update_and_delete_go_to_the_api_first() {
    stripe_server("upd", "sk_test_pg_update");
    let id = text("INSERT INTO upd.customers (email, name) VALUES ('bo@example.com', 'Bo') RETURNING id").unwrap();
    let returned = text(&format!("UPDATE upd.customers SET name = 'Bo B.' WHERE id = '{id}' RETURNING name || ' ' || email"));
    assert_eq!(returned.as_deref(), Some("Bo B. bo@example.com"));
    assert_eq!(mock_customer("sk_test_pg_update", &id)["name"], "Bo B.");
    assert_eq!(mock_customer("sk_test_pg_update", &id)["email"], "bo@example.com");

    let deleted = Spi::get_one::<bool>(&format!("DELETE FROM upd.customers WHERE id = '{id}' RETURNING deleted"));
    assert_eq!(deleted.unwrap(), Some(true));
    assert_eq!(mock_customer("sk_test_pg_update", &id)["error"]["code"], "resource_missing");
    let local = Spi::get_one::<bool>(&format!("SELECT deleted FROM upd.customers WHERE id = '{id}'"));
    assert_eq!(local.unwrap(), Some(true));
}

#[pg_test]
fn api_validation_error_is_23514_with_the_api_message_and_changes_nothing() {
    stripe_server("val", "sk_test_pg_validation");
    let error = error_of("INSERT INTO val.customers (email) VALUES ('not-an-email')");
    assert!(error.starts_with("23514: [Stripe]: Invalid email address: not-an-email | HTTP 400 on POST /v1/customers, code email_invalid, field \"email\", request id req_"), "{error}");
    assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM val.customers").unwrap(), Some(0));
    assert_eq!(admin(Method::Get, "/_admin/stripe/customers?account=sk_test_pg_validation", None)["data"], serde_json::json!([]));
}

#[pg_test]
fn writing_a_read_only_column_is_refused_before_any_request() {
    stripe_server("ro", "sk_test_pg_readonly");
    let before = mock_request_total("sk_test_pg_readonly");
    let error = error_of("INSERT INTO ro.customers (id, email) VALUES ('cus_mine', 'x@example.com')");
    assert!(error.starts_with("428C9: column \"id\" is read-only"), "{error}");
    assert_eq!(mock_request_total("sk_test_pg_readonly"), before);
}

#[pg_test]
fn reads_are_served_locally_without_api_requests() {
    stripe_server("rd", "sk_test_pg_reads");
    Spi::run("INSERT INTO rd.customers (email) VALUES ('a@example.com'); INSERT INTO rd.customers (email) VALUES ('b@example.com')").unwrap();
    let before = mock_request_total("sk_test_pg_reads");
    assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM rd.customers WHERE email LIKE '%@example.com'").unwrap(), Some(2));
    assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM rd.customers a JOIN rd.customers b USING (id)").unwrap(), Some(2));
    assert_eq!(mock_request_total("sk_test_pg_reads"), before);
}

#[pg_test]
fn bad_options_are_refused_at_create_time_with_the_valid_ones() {
    let error = error_of("CREATE SERVER bad FOREIGN DATA WRAPPER sequin_fdw OPTIONS (provider 'stripe', colour 'blue')");
    assert!(error.starts_with("HV00D: invalid option \"colour\""), "{error}");
    assert!(error.contains("Valid options in this context are: provider, base_url"), "{error}");
    let error = error_of("CREATE SERVER bad FOREIGN DATA WRAPPER sequin_fdw OPTIONS (provider 'stripe', poll_interval 'often')");
    assert!(error.starts_with("HV00A: invalid value for option \"poll_interval\": \"often\""), "{error}");
    let error = error_of("CREATE SERVER bad FOREIGN DATA WRAPPER sequin_fdw OPTIONS (provider 'paypal')");
    assert!(error.contains("Valid providers: stripe"), "{error}");
    stripe_server("opt", "sk_test_pg_options");
    let error = error_of("CREATE FOREIGN TABLE opt.invoices (id text) SERVER opt OPTIONS (collection 'charges')");
    assert!(error.contains("Stripe has no collection \"charges\""), "{error}");
    let error = error_of("CREATE USER MAPPING FOR CURRENT_USER SERVER opt OPTIONS (password 'x')");
    assert!(error.contains("Valid options in this context are: api_key"), "{error}");
}

/// Panics, as a bug in the extension would: the test below reads its report.
#[pg_extern]
fn forced_panic() {
    panic!("forced panic in a test");
}

#[pg_test]
fn a_panic_is_an_error_whose_detail_has_no_backtrace() {
    // `make pg-test` starts this cluster with RUST_BACKTRACE=1, the
    // environment in which pgrx would append a backtrace to the DETAIL.
    assert_eq!(std::env::var("RUST_BACKTRACE").as_deref(), Ok("1"), "the cluster must run with RUST_BACKTRACE=1");
    let report = error_of("SELECT tests.forced_panic()");
    assert!(report.starts_with("XX000: forced panic in a test"), "{report}");
    for frame_text in ["backtrace", "  0: ", "rust_begin_unwind", "at /"] {
        assert!(!report.contains(frame_text), "the report carries a backtrace: {report}");
    }
}

/// A deterministic source of random JSON documents (xorshift).
struct RandomJson(u64);

impl RandomJson {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn text(&mut self) -> String {
        const PIECES: &[&str] = &["a", "b", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "é", "ß", "日本", "😀", "\u{7f}", "\u{ffff}", "key"];
        (0..self.below(12)).map(|_| PIECES[self.below(PIECES.len() as u64) as usize]).collect()
    }

    fn number(&mut self) -> Value {
        match self.below(7) {
            0 => Value::from(self.next() as i64),
            1 => Value::from(self.next()),
            2 => Value::from(self.below(2000) as i64 - 1000),
            3 => Value::from((self.below(2_000_000) as f64 - 1e6) / 1000.0),
            4 => Value::from(f64::from_bits(self.next())),
            5 => Value::from([0.0, -0.0, 1e20, 1e-7, 5e-324, f64::MAX, 0.1, 100.0][self.below(8) as usize]),
            _ => Value::from(self.below(10_000_000_000) as f64 * 10f64.powi(self.below(40) as i32 - 20)),
        }
    }

    fn value(&mut self, depth: u32) -> Value {
        let kinds = if depth >= 4 { 4 } else { 6 };
        match self.below(kinds) {
            0 => Value::Null,
            1 => Value::Bool(self.below(2) == 1),
            2 => Value::String(self.text()),
            3 => self.number(),
            4 => Value::Array((0..self.below(40)).map(|_| self.value(depth + 1)).collect()),
            _ => Value::Object((0..self.below(40)).map(|_| (self.text(), self.value(depth + 1))).collect()),
        }
    }
}

/// What `jsonb_in` makes of `text`: the datum's bytes.
fn jsonb_in_bytes(text: &str) -> Vec<u8> {
    let text = std::ffi::CString::new(text).unwrap();
    unsafe {
        let datum = pgrx::direct_function_call_as_datum(pg_sys::jsonb_in, &[Some(pg_sys::Datum::from(text.as_ptr()))]).unwrap();
        let varlena = datum.cast_mut_ptr::<pg_sys::varlena>();
        std::slice::from_raw_parts(varlena as *const u8, pgrx::varlena::varsize_any(varlena)).to_vec()
    }
}

#[pg_test]
fn jsonb_written_by_the_sync_is_what_jsonb_in_makes_of_the_text() {
    let mut random = RandomJson(0x9E37_79B9_7F4A_7C15);
    let mut documents: Vec<Value> = (0..3000).map(|_| random.value(0)).collect();
    documents.extend([
        serde_json::json!([]),
        serde_json::json!({}),
        serde_json::json!({"": "", "a": [1, 2.5, -0.0, "x"], "aa": {"b": null}, "b": true, "ab": false}),
        Value::Array((0..100).map(|i| Value::from(i as f64 / 7.0)).collect()),
        Value::Object((0..70).map(|i| (format!("k{i}"), Value::from(i))).collect()),
    ]);
    let mut encoded = 0;
    for document in &documents {
        let root = match document {
            Value::Array(_) | Value::Object(_) => document.clone(),
            scalar => Value::Array(vec![scalar.clone()]),
        };
        let text = serde_json::to_string(&root).unwrap();
        // Only documents jsonb_in takes are encoded (no NUL in this alphabet).
        let ours = crate::jsonb::encode(&root).unwrap_or_else(|e| panic!("{e:?} for {text}"));
        assert_eq!(ours, jsonb_in_bytes(&text), "jsonb of {text}");
        encoded += 1;
    }
    assert_eq!(encoded, 3005);
}

/// A backend keeps a foreign table's parsed options until the options of
/// any foreign table or server change, also when such a change is rolled
/// back.
#[pg_test]
fn kept_options_go_when_options_change() {
    use crate::fdw::options::load_foreign_table;
    stripe_server("kopt", "sk_test_pg_kept_options");
    let table = Spi::get_one::<pg_sys::Oid>("SELECT 'kopt.customers'::regclass::oid").unwrap().unwrap();
    let next_command = || unsafe { pg_sys::CommandCounterIncrement() };
    let limits = || {
        let config = load_foreign_table(table).unwrap();
        (config.table.max_rows_per_statement, config.server.rate_limit, config.server_owner)
    };
    let owner = limits().2;
    assert_eq!(limits(), (None, None, owner));
    Spi::run("ALTER FOREIGN TABLE kopt.customers OPTIONS (ADD max_rows_per_statement '5')").unwrap();
    next_command();
    assert_eq!(limits(), (Some(5), None, owner), "the table's options changed");
    Spi::run("ALTER SERVER kopt OPTIONS (ADD rate_limit '3')").unwrap();
    next_command();
    assert_eq!(limits(), (Some(5), Some(3.0), owner), "the server's options changed");
    Spi::run("CREATE ROLE kopt_owner SUPERUSER; ALTER SERVER kopt OWNER TO kopt_owner").unwrap();
    next_command();
    let new_owner = Spi::get_one::<pg_sys::Oid>("SELECT 'kopt_owner'::regrole::oid").unwrap().unwrap();
    assert_eq!(limits(), (Some(5), Some(3.0), new_owner), "the server's owner changed");
    Spi::run(
        "DO $$ BEGIN
             ALTER FOREIGN TABLE kopt.customers OPTIONS (SET max_rows_per_statement '7');
             PERFORM count(*) FROM kopt.customers;
             PERFORM 1 / 0;
         EXCEPTION WHEN division_by_zero THEN NULL;
         END $$",
    )
    .unwrap();
    assert_eq!(limits(), (Some(5), Some(3.0), new_owner), "a change rolled back is gone");
}

/// A backend keeps a foreign table's catalog row (its shadow table, the
/// described schema) until Postgres invalidates the foreign table or its
/// shadow table, or the described schema changes (`forget`); not while a
/// restore may still replace it.
#[pg_test]
fn a_kept_catalog_row_goes_when_its_tables_change() {
    use crate::registered::{forget, get, Registered};
    let restoring = std::cell::Cell::new(false);
    Spi::run("CREATE TABLE kept_foreign (id int); CREATE TABLE kept_shadow (id int)").unwrap();
    let foreign = Spi::get_one::<pg_sys::Oid>("SELECT 'kept_foreign'::regclass::oid").unwrap().unwrap();
    let shadow = Spi::get_one::<pg_sys::Oid>("SELECT 'kept_shadow'::regclass::oid").unwrap().unwrap();
    let loads = std::cell::Cell::new(0);
    let read = || {
        get(foreign, || {
            loads.set(loads.get() + 1);
            Ok(Registered {
                shadow_table: "kept_shadow".into(),
                shadow_oid: shadow,
                shadow_owner: pg_sys::InvalidOid,
                described: None,
                columns: Vec::new(),
                shadow_columns: Vec::new(),
                restoring: restoring.get(),
            })
        })
        .unwrap();
        loads.get()
    };
    // Invalidations of this transaction's own changes are taken in at the
    // next command, as Postgres takes in its own.
    let next_command = || unsafe { pg_sys::CommandCounterIncrement() };
    assert_eq!((read(), read()), (1, 1), "read once, then kept");
    Spi::run("ALTER TABLE kept_shadow ADD COLUMN x int").unwrap();
    next_command();
    assert_eq!((read(), read()), (2, 2), "the shadow table changed");
    Spi::run("ALTER TABLE kept_foreign ADD COLUMN y int").unwrap();
    next_command();
    assert_eq!((read(), read()), (3, 3), "the foreign table changed");
    Spi::run("CREATE TABLE unrelated (id int); ALTER TABLE unrelated ADD COLUMN z int").unwrap();
    next_command();
    assert_eq!(read(), 3, "another table's change keeps it");
    forget(foreign);
    next_command();
    assert_eq!((read(), read()), (4, 4), "its described schema changed");
    restoring.set(true);
    forget(foreign);
    next_command();
    assert_eq!((read(), read()), (5, 6), "a row being restored is read every time");
    restoring.set(false);
    assert_eq!((read(), read()), (7, 7), "and kept once restored");
}
