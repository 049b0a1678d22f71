//! Shadow tables: creating one for a foreign table, and applying API records
//! to it. Every applied change takes a new `updated_idx` and is announced on
//! `NOTIFY sequin_changes`; an older version never overwrites a newer one.

use crate::error::{ErrorKind, Result, SequinError};
use crate::fdw::options::{DeleteMode, ServerConfig};
use crate::providers::Record;
use crate::time::iso8601_from_us;
use pgrx::datum::DatumWithOid;
use pgrx::spi::SpiClient;
use crate::sql::ident as quote_identifier;
use crate::subxact;
use crate::jsonb;
use pgrx::prelude::*;
use serde_json::{json, Map, Value};

/// The columns every shadow table has besides the collection's own, with
/// their types as `format_type` prints them.
pub const STANDARD_FIELDS: &[(&str, &str)] = &[
    ("deleted", "boolean"),
    ("updated_idx", "bigint"),
    ("upstream_updated_at", "timestamp with time zone"),
    ("sync_id", "text"),
    ("sync_external_id", "text"),
    ("sync_metadata", "jsonb"),
    ("raw", "jsonb"),
];

/// What a standard field holds, for its column comment (`\d+`).
pub fn standard_field_comment(name: &str) -> Option<&'static str> {
    Some(match name {
        "deleted" => "Read-only, kept by the sync: true once the record is deleted upstream.",
        "updated_idx" => "Read-only, kept by the sync: the change-feed position of the row's last change.",
        "upstream_updated_at" => "Read-only, kept by the sync: the API's version of the record.",
        "sync_id" => "Read-only, kept by the sync: the foreign server that syncs the record.",
        "sync_external_id" => "Read-only, kept by the sync: the server's external_id option.",
        "sync_metadata" => "Read-only, kept by the sync: the server's metadata option.",
        "raw" => "Read-only, kept by the sync: the API's whole object.",
        _ => return None,
    })
}

/// Columns the API owns: a statement may never set them.
pub fn is_standard_field(name: &str) -> bool {
    name == "id" || STANDARD_FIELDS.iter().any(|(n, _)| *n == name)
}

fn column_ddl(name: &str, sql_type: &str) -> String {
    let constraint = match name {
        "id" => " PRIMARY KEY",
        "deleted" => " NOT NULL DEFAULT false",
        "updated_idx" => " NOT NULL DEFAULT nextval('sequin.updated_idx_seq')",
        _ => "",
    };
    format!("{} {sql_type}{constraint}", quote_identifier(name))
}

/// `CREATE TABLE` for the shadow of a foreign table with these columns
/// (name, `format_type`), which must include `id text`.
pub fn create_table_sql(shadow_table: &str, columns: &[(String, String)]) -> Result<String> {
    match columns.iter().find(|(n, _)| n == "id") {
        Some((_, t)) if t == "text" => {}
        _ => {
            return Err(SequinError::new(
                ErrorKind::InvalidOptionValue,
                "a sequin_fdw foreign table needs a column \"id\" of type text",
            )
            .with_hint("IMPORT FOREIGN SCHEMA creates the table with every column it needs."))
        }
    }
    for (name, sql_type) in columns {
        if let Some((_, expected)) = STANDARD_FIELDS.iter().find(|(n, _)| n == name) {
            if sql_type != expected {
                return Err(SequinError::new(
                    ErrorKind::InvalidOptionValue,
                    format!("column \"{name}\" must be of type {expected}, not {sql_type}"),
                ));
            }
        }
    }
    let ddl: Vec<String> = table_columns(columns)?.iter().map(|(n, t)| column_ddl(n, t)).collect();
    Ok(format!("CREATE TABLE {shadow_table} (\n    {}\n)", ddl.join(",\n    ")))
}

/// The columns (name, `format_type`) of the shadow of a foreign table with
/// these columns: its own, then the standard fields it lacks.
pub fn table_columns(columns: &[(String, String)]) -> Result<Vec<(String, String)>> {
    let mut all = columns.to_vec();
    for (name, sql_type) in STANDARD_FIELDS {
        if !columns.iter().any(|(n, _)| n == name) {
            all.push((name.to_string(), sql_type.to_string()));
        }
    }
    Ok(all)
}

/// Where the records of one collection go, and how they are stamped.
pub struct Shadow {
    /// Quoted, schema-qualified.
    pub table: String,
    /// Every column but `updated_idx`, quoted.
    pub columns: Vec<String>,
    /// The foreign table's name, as the change feed reports it.
    pub feed_name: String,
    pub delete_mode: DeleteMode,
    pub stamp: RowStamp,
}

/// The standard fields every row of a server carries, as JSON values once
/// and for all.
#[derive(Clone)]
pub struct RowStamp {
    sync_id: Value,
    sync_external_id: Value,
    sync_metadata: Value,
}

/// A record's own standard fields.
struct RecordFields {
    id: Value,
    deleted: Value,
    upstream_updated_at: Value,
}

impl RecordFields {
    fn of(record: &Record) -> RecordFields {
        RecordFields {
            id: Value::String(record.id.clone()),
            deleted: Value::Bool(record.deleted),
            upstream_updated_at: Value::String(iso8601_from_us(record.version_us)),
        }
    }
}

/// A page's upserts as a jsonb array datum (`RowStamp::encode_upserts`).
pub struct EncodedRows(Vec<u8>);

impl RowStamp {
    /// The row `jsonb_populate_record` turns into a shadow tuple, as its
    /// pairs: the record's columns, then the standard fields, so that a
    /// column of the same name loses (the last value of a key wins).
    fn pairs<'a>(&'a self, record: &'a Record, own: &'a RecordFields) -> Vec<(&'a str, &'a Value)> {
        let mut pairs: Vec<(&str, &Value)> = Vec::with_capacity(record.columns.len() + 7);
        pairs.extend(record.columns.iter().map(|(name, value)| (name.as_str(), value)));
        pairs.extend([
            ("id", &own.id),
            ("deleted", &own.deleted),
            ("upstream_updated_at", &own.upstream_updated_at),
            ("sync_id", &self.sync_id),
            ("sync_external_id", &self.sync_external_id),
            ("sync_metadata", &self.sync_metadata),
            ("raw", &record.raw),
        ]);
        pairs
    }

    /// The row as JSON text, written straight into `out`.
    fn write_row_json(&self, out: &mut Vec<u8>, record: &Record) {
        let own = RecordFields::of(record);
        out.push(b'{');
        for (i, (key, value)) in self.pairs(record, &own).into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Writing to a Vec cannot fail, and a Value always serializes.
            let _ = serde_json::to_writer(&mut *out, key);
            out.push(b':');
            let _ = serde_json::to_writer(&mut *out, value);
        }
        out.push(b'}');
    }

    /// The rows a page upserts (the last version of each record, deleted
    /// ones aside) as one jsonb array, for a database in UTF-8; None when
    /// jsonb would not take them as they are (the page is then sent as
    /// text, and Postgres says what is wrong). Pure Rust: it runs on the
    /// sync's helper threads.
    pub fn encode_upserts(&self, records: &[Record]) -> Option<EncodedRows> {
        let upserts: Vec<&Record> = latest_versions(records).into_iter().filter(|r| !r.deleted).collect();
        let mut encoder = jsonb::Encoder::default();
        let root = encoder
            .array(&upserts, |encoder, record| {
                let own = RecordFields::of(record);
                encoder.object(self.pairs(record, &own))
            })
            .ok()?;
        encoder.finish(root).ok().map(EncodedRows)
    }
}

impl Shadow {
    pub fn new(
        table: String,
        columns: Vec<String>,
        feed_name: String,
        delete_mode: DeleteMode,
        server: &ServerConfig,
    ) -> Shadow {
        let stamp = RowStamp {
            sync_id: Value::String(server.name.clone()),
            sync_external_id: server.external_id.clone().map_or(Value::Null, Value::String),
            sync_metadata: server.metadata.clone().unwrap_or(Value::Null),
        };
        Shadow { table, columns, feed_name, delete_mode, stamp }
    }

    /// The row `jsonb_populate_record` turns into a shadow tuple.
    pub fn row_json(&self, record: &Record) -> Value {
        let own = RecordFields::of(record);
        let row: Map<String, Value> =
            self.stamp.pairs(record, &own).into_iter().map(|(key, value)| (key.to_string(), value.clone())).collect();
        Value::Object(row)
    }

    fn upsert_sql(&self, guard: Guard, rows: Count) -> String {
        let cols = self.columns.join(", ");
        let sets = self
            .columns
            .iter()
            .filter(|c| c.as_str() != "id")
            .map(|c| format!("{c} = EXCLUDED.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        // A deleted row only comes back with a strictly newer version; the
        // same version applies again only with other content (APIs that
        // stamp by the second have several versions in one second).
        let when = match guard {
            Guard::Version => {
                "t.upstream_updated_at IS NULL
                  OR t.upstream_updated_at < EXCLUDED.upstream_updated_at
                  OR (t.upstream_updated_at = EXCLUDED.upstream_updated_at AND NOT t.deleted
                      AND t.raw IS DISTINCT FROM EXCLUDED.raw)"
            }
            // A listing read in the same second as a change the feed already
            // applied may be older than it: only a strictly newer stamp
            // corrects a row, and only when it differs.
            Guard::Content => {
                "(t.upstream_updated_at IS NULL OR t.upstream_updated_at < EXCLUDED.upstream_updated_at)
                  AND (t.deleted OR t.raw IS DISTINCT FROM EXCLUDED.raw)"
            }
        };
        let upsert = format!(
            "INSERT INTO {t} AS t ({cols}, updated_idx)
             SELECT {cols}, nextval('sequin.updated_idx_seq')
               FROM jsonb_populate_recordset(NULL::{t}, $1::jsonb)
             ON CONFLICT (id) DO UPDATE SET {sets}, updated_idx = EXCLUDED.updated_idx
             WHERE {when}",
            t = self.table,
        );
        with_notify(&upsert, "t.updated_idx", rows)
    }

    fn delete_sql(&self, rows: Count) -> String {
        // One record is found by its id (the write path): a join with the
        // records, planned once while the table was small, would go on
        // scanning the whole table for each of them once it has grown.
        let (records, id, version) = match rows {
            Count::One => (None, "($1::jsonb -> 0 ->> 'id')", "($1::jsonb -> 0 ->> 'v')::timestamptz"),
            Count::Many => (Some("jsonb_to_recordset($1::jsonb) AS d(id text, v timestamptz)"), "d.id", "d.v"),
        };
        let guard = format!("t.id = {id} AND (t.upstream_updated_at IS NULL OR t.upstream_updated_at <= {version})");
        let t = &self.table;
        let (change, updated_idx) = match self.delete_mode {
            DeleteMode::Soft => (
                format!(
                    "UPDATE {t} AS t SET deleted = true, upstream_updated_at = {version},
                            updated_idx = nextval('sequin.updated_idx_seq')
                       {from}
                      WHERE {guard} AND NOT t.deleted",
                    from = records.map(|r| format!("FROM {r}")).unwrap_or_default(),
                ),
                "t.updated_idx",
            ),
            DeleteMode::Hard => (
                format!("DELETE FROM {t} AS t {using} WHERE {guard}", using = records.map(|r| format!("USING {r}")).unwrap_or_default()),
                "nextval('sequin.updated_idx_seq')",
            ),
        };
        with_notify(&change, updated_idx, rows)
    }

    /// Applies records in order (later ones win) and returns how many
    /// changed the table. Runs in the caller's transaction; any failure
    /// fails the whole call.
    pub fn apply(&self, client: &mut SpiClient<'_>, records: &[Record]) -> Result<u64> {
        let encoded = utf8_database().then(|| self.stamp.encode_upserts(records)).flatten();
        self.apply_guarded(client, records, encoded.as_ref(), Guard::Version)
    }

    /// `encoded`: the records' upserts as `encode_upserts` made them.
    fn apply_guarded(&self, client: &mut SpiClient<'_>, records: &[Record], encoded: Option<&EncodedRows>, guard: Guard) -> Result<u64> {
        let mut upserts: Vec<u8> = vec![b'['];
        let mut deletes: Vec<Value> = Vec::new();
        let latest = latest_versions(records);
        let upserted = Count::of(latest.iter().filter(|r| !r.deleted).count());
        for record in latest {
            if record.deleted {
                deletes.push(json!({"id": record.id, "v": iso8601_from_us(record.version_us)}));
            } else if encoded.is_none() {
                if upserts.len() > 1 {
                    upserts.push(b',');
                }
                self.stamp.write_row_json(&mut upserts, record);
            }
        }
        upserts.push(b']');
        let mut applied = 0;
        match encoded {
            // (An empty jsonb array is a header and a count: 8 bytes.)
            Some(rows) if rows.0.len() > 8 => applied += self.run(client, &self.upsert_sql(guard, upserted), Rows::Jsonb(rows), upserted)?,
            Some(_) => {}
            None if upserts.len() > 2 => {
                // serde_json writes UTF-8 only.
                let rows = String::from_utf8(upserts).map_err(|e| SequinError::internal(e.to_string()))?;
                applied += self.run(client, &self.upsert_sql(guard, upserted), Rows::Text(rows), upserted)?;
            }
            None => {}
        }
        if !deletes.is_empty() {
            let count = Count::of(deletes.len());
            applied += self.run(client, &self.delete_sql(count), Rows::Text(Value::Array(deletes).to_string()), count)?;
        }
        Ok(applied)
    }

    /// Applies a page from the API like `apply`, except that a record whose
    /// values do not fit the table's columns (a poisoned record) is stored
    /// with its id, standard fields and `raw` only, and a record that
    /// cannot be stored at all is quarantined (`sequin.quarantine`), both
    /// reported, instead of failing the page and stopping the collection.
    /// `encoded`: the records' upserts as `RowStamp::encode_upserts` made
    /// them, if it did (used in a database in UTF-8 only).
    pub fn apply_page(&self, foreign_table: pg_sys::Oid, records: &[Record], encoded: Option<&EncodedRows>, guard: Guard) -> Result<Applied> {
        if records.is_empty() {
            // An idle poll's page: nothing to apply, nothing to release.
            return Ok(Applied { changed: 0, poisoned: Vec::new(), quarantined: Vec::new() });
        }
        let encoded = encoded.filter(|_| utf8_database());
        let all = subxact::attempt(|| Spi::connect_mut(|client| self.apply_guarded(client, records, encoded, guard)));
        let mut applied = Applied { changed: 0, poisoned: Vec::new(), quarantined: Vec::new() };
        match all {
            Ok(changed) => {
                applied.changed = changed;
                release_quarantined(foreign_table, records)?;
                return Ok(applied);
            }
            Err(failure) if !failure.is_record_error() => return Err(apply_failed(&self.table, &failure)),
            Err(_) => {}
        }
        // One by one, to find the records at fault.
        for record in latest_versions(records) {
            let one = std::slice::from_ref(record);
            let failure = match subxact::attempt(|| Spi::connect_mut(|client| self.apply_guarded(client, one, None, guard))) {
                Ok(changed) => {
                    applied.changed += changed;
                    release_quarantined(foreign_table, one)?;
                    continue;
                }
                Err(failure) if failure.is_data_error() => failure,
                Err(failure) if failure.is_record_error() => {
                    quarantine(foreign_table, record, &failure.message)?;
                    applied.quarantined.push(Poisoned { id: record.id.clone(), why: failure.message });
                    continue;
                }
                Err(failure) => return Err(apply_failed(&self.table, &failure)),
            };
            let raw_only = Record { columns: Map::new(), ..record.clone() };
            let slice = std::slice::from_ref(&raw_only);
            match subxact::attempt(|| Spi::connect_mut(|client| self.apply_guarded(client, slice, None, guard))) {
                Ok(changed) => {
                    applied.changed += changed;
                    release_quarantined(foreign_table, one)?;
                    applied.poisoned.push(Poisoned { id: record.id.clone(), why: failure.message });
                }
                Err(again) if again.is_record_error() => {
                    quarantine(foreign_table, record, &again.message)?;
                    applied.quarantined.push(Poisoned { id: record.id.clone(), why: again.message });
                }
                Err(again) => return Err(apply_failed(&self.table, &again)),
            }
        }
        Ok(applied)
    }

    /// Marks deleted (or removes, in hard-delete mode) every live row that a
    /// backfill over existing rows did not see (`sequin.backfill_seen`) and
    /// that did not change since it began (`updated_idx` at most
    /// `from_idx`): records the API no longer has.
    pub fn sweep_unseen(&self, foreign_table: pg_sys::Oid, from_idx: i64) -> Result<u64> {
        // The statistics of backfill_seen are those of some earlier moment,
        // when this table's ids were not in it: planned with them, the
        // anti-join compared every row with every seen id (50,000 × 50,000
        // took a minute). The worker's transaction sees the ids it added.
        Spi::run("ANALYZE sequin.backfill_seen")
            .map_err(|e| SequinError::internal(format!("could not analyze sequin.backfill_seen: {e}")))?;
        let unseen = "t.updated_idx <= $1 AND NOT EXISTS (
                          SELECT 1 FROM sequin.backfill_seen s WHERE s.foreign_table = $3 AND s.id = t.id)";
        let (change, updated_idx) = match self.delete_mode {
            DeleteMode::Soft => (
                format!(
                    "UPDATE {t} AS t SET deleted = true, updated_idx = nextval('sequin.updated_idx_seq')
                      WHERE NOT t.deleted AND {unseen}",
                    t = self.table
                ),
                "t.updated_idx",
            ),
            DeleteMode::Hard => {
                (format!("DELETE FROM {t} AS t WHERE {unseen}", t = self.table), "nextval('sequin.updated_idx_seq')")
            }
        };
        let sql = with_notify(&change, updated_idx, Count::Many);
        let args: [DatumWithOid; 3] = [from_idx.into(), self.feed_name.as_str().into(), foreign_table.into()];
        let swept = Spi::connect_mut(|client| {
            crate::shadow_guard::applying(|| client.update(&sql, None, &args)).map(|table| changed_count(table, Count::Many))
        });
        swept.map_err(|e| {
            SequinError::new(ErrorKind::LocalApplyFailed, format!("could not apply changes to {}: {e}", self.table))
        })
    }

    /// Runs an apply statement over `rows`, a JSON array (the statement
    /// casts it to jsonb).
    fn run(&self, client: &mut SpiClient<'_>, sql: &str, rows: Rows<'_>, count: Count) -> Result<u64> {
        let rows = match rows {
            Rows::Text(text) => text.into(),
            // SAFETY: the datum is a copy in the statement's memory
            // context of a whole jsonb varlena, as Postgres lays it out.
            Rows::Jsonb(encoded) => unsafe {
                let datum = pg_sys::palloc(encoded.0.len()) as *mut u8;
                std::ptr::copy_nonoverlapping(encoded.0.as_ptr(), datum, encoded.0.len());
                DatumWithOid::new(pg_sys::Datum::from(datum), pg_sys::JSONBOID)
            },
        };
        let args: [DatumWithOid; 2] = [rows, self.feed_name.as_str().into()];
        let failed =
            |e| SequinError::new(ErrorKind::LocalApplyFailed, format!("could not apply changes to {}: {e}", self.table));
        let table = crate::shadow_guard::applying(|| crate::plans::execute(client, sql, None, &args));
        Ok(changed_count(table.map_err(failed)?, count))
    }
}

/// The rows of an apply statement.
enum Rows<'a> {
    Text(String),
    Jsonb(&'a EncodedRows),
}

/// Whether jsonb written by `jsonb::Encoder` (UTF-8) fits this database:
/// jsonb strings are in the database's encoding.
fn utf8_database() -> bool {
    unsafe { pg_sys::GetDatabaseEncoding() == pg_sys::pg_enc::PG_UTF8 as i32 }
}

/// When a record replaces the row of the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// A change (from the feed, a backfill, a write): a newer version wins.
    Version,
    /// A listing compared with the table (a sweep): a newer version that
    /// differs from the row corrects it; an equal one changes nothing.
    Content,
}

/// What applying a page did.
pub struct Applied {
    /// Rows inserted, updated or deleted.
    pub changed: u64,
    pub poisoned: Vec<Poisoned>,
    /// Records not stored at all (see `quarantine`).
    pub quarantined: Vec<Poisoned>,
}

impl Applied {
    /// What a person should be told about this page.
    pub fn warnings(&self) -> Vec<String> {
        self.poisoned.iter().map(Poisoned::warning).chain(self.quarantined.iter().map(Poisoned::quarantine_warning)).collect()
    }
}

/// Text Postgres can store: NUL, which no text value may hold, spelled out.
fn storable(text: &str) -> String {
    text.replace('\0', "\\u0000")
}

/// Keeps aside a record that cannot be stored: its id, why, and the API's
/// JSON as text. A later version that can be stored releases it.
fn quarantine(foreign_table: pg_sys::Oid, record: &Record, why: &str) -> Result<()> {
    let raw = serde_json::to_string(&record.raw).unwrap_or_default();
    let args: [DatumWithOid; 4] =
        [foreign_table.into(), storable(&record.id).into(), storable(why).into(), storable(&raw).into()];
    crate::plans::run(
        "INSERT INTO sequin.quarantine AS q (foreign_table, id_md5, id, reason, raw)
         VALUES ($1, md5($2), $2, $3, $4)
         ON CONFLICT (foreign_table, id_md5) DO UPDATE
            SET reason = EXCLUDED.reason, raw = EXCLUDED.raw, quarantined_at = now()",
        &args,
    )
    .map_err(|e| SequinError::internal(format!("could not quarantine record: {e}")))
}

/// Releases the quarantined versions of records that were just stored.
fn release_quarantined(foreign_table: pg_sys::Oid, records: &[Record]) -> Result<()> {
    let ids: Vec<String> = records.iter().map(|r| storable(&r.id)).collect();
    let args: [DatumWithOid; 2] = [foreign_table.into(), ids.into()];
    crate::plans::run(
        "DELETE FROM sequin.quarantine
          WHERE foreign_table = $1 AND id_md5 IN (SELECT md5(i) FROM unnest($2::text[]) AS i)
            AND EXISTS (SELECT 1 FROM sequin.quarantine WHERE foreign_table = $1)",
        &args,
    )
    .map_err(|e| SequinError::internal(format!("could not release quarantined records: {e}")))
}

/// A record stored in `raw` only, and why its columns could not be.
pub struct Poisoned {
    pub id: String,
    pub why: String,
}

/// At most this many characters of a record id in a message.
const SHOWN_ID_CHARS: usize = 100;

impl Poisoned {
    fn shown_id(&self) -> String {
        let id = storable(&self.id);
        match id.char_indices().nth(SHOWN_ID_CHARS) {
            Some((at, _)) => format!("{}…", &id[..at]),
            None => id,
        }
    }

    pub fn warning(&self) -> String {
        format!(
            "record {} does not fit the table's column types ({}); it is stored in column raw only",
            self.shown_id(),
            self.why
        )
    }

    pub fn quarantine_warning(&self) -> String {
        format!(
            "record {} cannot be stored ({}); it is quarantined: see sequin.quarantined_records",
            self.shown_id(),
            storable(&self.why)
        )
    }
}

fn apply_failed(table: &str, failure: &subxact::Failure) -> SequinError {
    SequinError::new(ErrorKind::LocalApplyFailed, format!("could not apply changes to {table}: {}", failure.message))
}

/// The last version of each record, in order: one statement cannot touch
/// a row twice.
fn latest_versions(records: &[Record]) -> Vec<&Record> {
    let mut latest: Vec<&Record> = Vec::with_capacity(records.len());
    let mut position: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for record in records {
        match position.get(record.id.as_str()) {
            Some(&at) => latest[at] = record,
            None => {
                position.insert(&record.id, latest.len());
                latest.push(record);
            }
        }
    }
    latest
}

/// How many records an apply statement takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Count {
    One,
    Many,
}

impl Count {
    fn of(records: usize) -> Count {
        match records {
            1 => Count::One,
            _ => Count::Many,
        }
    }
}

/// `change` (an INSERT, UPDATE or DELETE of the shadow table `t`) with one
/// NOTIFY on `sequin_changes` for the rows it changed, carrying the
/// highest `updated_idx` (the expression for a changed row's), and the
/// count of changed rows (`changed_count`). One record's statement
/// notifies from its RETURNING: a CTE and its subplans cost a single-row
/// write more than the change itself. The payload is a wake-up, never
/// record data: any role may LISTEN (Postgres has no privilege for it), so
/// a consumer reads the rows past its last `updated_idx` under its own
/// rights.
fn with_notify(change: &str, updated_idx: &str, rows: Count) -> String {
    let notify = |idx: &str| format!("pg_notify('sequin_changes', json_build_object('table', $2::text, 'updated_idx', {idx})::text)");
    match rows {
        Count::One => format!("{change} RETURNING {}", notify(updated_idx)),
        Count::Many => format!(
            "WITH applied AS ({change} RETURNING {updated_idx} AS updated_idx),
                  notified AS (SELECT {} FROM applied HAVING count(*) > 0)
             SELECT (SELECT count(*) FROM applied), (SELECT count(*) FROM notified)",
            notify("max(updated_idx)")
        ),
    }
}

/// The count of changed rows a `with_notify` statement returns.
fn changed_count(table: pgrx::spi::SpiTupleTable<'_>, rows: Count) -> u64 {
    match rows {
        Count::One => table.len() as u64,
        Count::Many => table.first().get::<i64>(1).ok().flatten().unwrap_or(0).max(0) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect()
    }

    #[test]
    fn shadow_ddl_adds_missing_standard_fields() {
        let sql = create_table_sql("s.t", &cols(&[("id", "text"), ("email", "text"), ("deleted", "boolean")])).unwrap();
        assert!(sql.contains("\"id\" text PRIMARY KEY"));
        assert!(sql.contains("\"deleted\" boolean NOT NULL DEFAULT false"));
        assert_eq!(sql.matches("deleted").count(), 1);
        assert!(sql.contains("\"updated_idx\" bigint NOT NULL DEFAULT nextval('sequin.updated_idx_seq')"));
        assert!(sql.contains("\"raw\" jsonb"));
    }

    fn record(id: &str, version_us: i64) -> Record {
        Record { id: id.into(), version_us, deleted: false, columns: Map::new(), raw: Value::Null }
    }

    #[test]
    fn a_page_applies_the_last_version_of_each_record_in_first_seen_order() {
        let page = [record("a", 1), record("b", 1), record("a", 2), record("c", 1), record("b", 3)];
        let latest: Vec<(&str, i64)> = latest_versions(&page).iter().map(|r| (r.id.as_str(), r.version_us)).collect();
        assert_eq!(latest, vec![("a", 2), ("b", 3), ("c", 1)]);
    }

    #[test]
    fn shadow_ddl_needs_a_text_id_and_standard_types() {
        assert!(create_table_sql("s.t", &cols(&[("email", "text")])).is_err());
        assert!(create_table_sql("s.t", &cols(&[("id", "integer")])).is_err());
        assert!(create_table_sql("s.t", &cols(&[("id", "text"), ("raw", "text")])).is_err());
    }
}
