//! Moving values between Postgres tuples and the provider's JSON-ish rows.

use crate::error::{ErrorKind, Result, SequinError};
use crate::providers::{WriteRow, WriteValue};
use pgrx::pg_sys;
use pgrx::pg_sys::AsPgCStr;
use serde_json::Value;
use std::ffi::CStr;

#[cfg(feature = "pg15")]
pub unsafe fn attributes<'a>(tupdesc: pg_sys::TupleDesc) -> &'a [pg_sys::FormData_pg_attribute] {
    (*tupdesc).attrs.as_slice((*tupdesc).natts as usize)
}

/// PostgreSQL 18 keeps an array of `CompactAttribute`s in `TupleDescData`
/// and the full attributes after it (no `attrs` field any more):
/// `TupleDescAttr(tupdesc, 0)` is the first of `natts` consecutive ones.
#[cfg(feature = "pg18")]
pub unsafe fn attributes<'a>(tupdesc: pg_sys::TupleDesc) -> &'a [pg_sys::FormData_pg_attribute] {
    let natts = (*tupdesc).natts as usize;
    if natts == 0 {
        return &[];
    }
    let first = pg_sys::TupleDescAttr(tupdesc, 0);
    // The array follows the compact attributes (TupleDescAttrAddress): if
    // that layout ever changes, the slice below would be wrong.
    assert_eq!(
        first.cast_const().cast::<pg_sys::CompactAttribute>(),
        (*tupdesc).compact_attrs.as_ptr().add(natts),
        "the attributes of a tuple descriptor are not where PostgreSQL 18 keeps them"
    );
    std::slice::from_raw_parts(first, natts)
}

pub fn attribute_name(attribute: &pg_sys::FormData_pg_attribute) -> String {
    name_of(attribute).to_string_lossy().into_owned()
}

/// The attribute's name as Postgres keeps it (no copy: the layout compares
/// every pair of names, for every scan).
fn name_of(attribute: &pg_sys::FormData_pg_attribute) -> &CStr {
    // SAFETY: a NameData is NUL-terminated within its NAMEDATALEN bytes.
    unsafe { CStr::from_ptr(attribute.attname.data.as_ptr()) }
}

/// How a foreign table's rows are read from its shadow table.
pub struct ShadowLayout {
    /// For each foreign-table attribute, its shadow attribute number (0: none).
    pub map: Vec<i16>,
    /// Both tables have the same columns (names, types, typmods, dropped
    /// slots) in the same places: the shadow row itself is a valid row of
    /// the foreign table.
    pub identical: bool,
}

/// Matches the columns of a foreign table (`foreign`) with those of its
/// shadow table by name. A column whose type differs from its shadow
/// column's is an error, never a reinterpretation of the datum: the DDL
/// event trigger keeps both in step, so this only guards against tables
/// changed behind its back.
pub unsafe fn shadow_layout(foreign: pg_sys::TupleDesc, shadow: pg_sys::TupleDesc) -> Result<ShadowLayout> {
    let foreign_columns = attributes(foreign);
    let shadow_columns = attributes(shadow);
    let mut map = Vec::with_capacity(foreign_columns.len());
    for column in foreign_columns {
        if column.attisdropped {
            map.push(0);
            continue;
        }
        let name = name_of(column);
        let Some(twin) = shadow_columns.iter().find(|s| !s.attisdropped && name_of(s) == name) else {
            map.push(0);
            continue;
        };
        if twin.atttypid != column.atttypid || twin.atttypmod != column.atttypmod {
            return Err(SequinError::new(
                ErrorKind::LayoutMismatch,
                format!(
                    "column \"{}\" of this foreign table and of its shadow table have different types",
                    name.to_string_lossy()
                ),
            )
            .with_detail(format!(
                "The foreign table says {}, the shadow table {}.",
                format_type(column.atttypid, column.atttypmod),
                format_type(twin.atttypid, twin.atttypmod)
            ))
            .with_hint("Change the column back, or drop the foreign table and create it again."));
        }
        map.push(twin.attnum);
    }
    let identical = foreign_columns.len() == shadow_columns.len()
        && foreign_columns.iter().zip(shadow_columns).all(|(f, s)| {
            f.attisdropped == s.attisdropped
                && (f.attisdropped
                    || (f.atttypid == s.atttypid && f.atttypmod == s.atttypmod && name_of(f) == name_of(s)))
                && f.attlen == s.attlen
                && f.attalign == s.attalign
        });
    Ok(ShadowLayout { map, identical })
}

fn format_type(type_oid: pg_sys::Oid, typmod: i32) -> String {
    unsafe { CStr::from_ptr(pg_sys::format_type_with_typemod(type_oid, typmod)).to_string_lossy().into_owned() }
}

/// Postgres' epoch (2000-01-01) in Unix microseconds.
const POSTGRES_EPOCH_US: i64 = 946_684_800_000_000;

/// A date, timestamp or time datum in ISO 8601 (`2026-12-31`,
/// `2026-12-31T10:00:00.000000Z`, `10:30:00.000000`); None for other types.
/// A timestamp without time zone is taken as UTC.
fn iso_datetime(datum: pg_sys::Datum, type_oid: pg_sys::Oid) -> Option<String> {
    let infinite = |positive: bool| Some(if positive { "infinity" } else { "-infinity" }.to_string());
    match type_oid {
        pg_sys::DATEOID => {
            let days = datum.value() as i32;
            let date = jiff::civil::date(2000, 1, 1).checked_add(jiff::Span::new().days(i64::from(days)));
            match date {
                Ok(date) => Some(date.strftime("%Y-%m-%d").to_string()),
                Err(_) => infinite(days > 0),
            }
        }
        pg_sys::TIMESTAMPTZOID | pg_sys::TIMESTAMPOID => {
            let us = datum.value() as i64;
            match us.checked_add(POSTGRES_EPOCH_US) {
                Some(unix) => Some(crate::time::iso8601_from_us(unix)),
                None => infinite(us > 0),
            }
        }
        pg_sys::TIMEOID => {
            let us = datum.value() as i64;
            let (secs, micros) = (us.div_euclid(1_000_000), us.rem_euclid(1_000_000));
            Some(format!("{:02}:{:02}:{:02}.{micros:06}", secs / 3600, secs / 60 % 60, secs % 60))
        }
        _ => None,
    }
}

/// A datum as the value a provider sends: JSON for json/jsonb, booleans and
/// numbers, the type's text form for everything else.
pub unsafe fn write_value(datum: pg_sys::Datum, is_null: bool, type_oid: pg_sys::Oid) -> Result<WriteValue> {
    if is_null {
        return Ok(WriteValue::Null);
    }
    // Dates and times in ISO 8601, whatever the session's DateStyle.
    if let Some(text) = iso_datetime(datum, type_oid) {
        return Ok(WriteValue::Text(text));
    }
    // A list (text[]) is sent as a JSON array of its elements.
    if type_oid == pg_sys::TEXTARRAYOID || type_oid == pg_sys::VARCHARARRAYOID {
        let items = <Vec<Option<String>> as pgrx::FromDatum>::from_datum(datum, false).unwrap_or_default();
        return Ok(WriteValue::Json(Value::Array(items.into_iter().map(|i| i.map_or(Value::Null, Value::String)).collect())));
    }
    let mut output = pg_sys::InvalidOid;
    let mut is_varlena = false;
    pg_sys::getTypeOutputInfo(type_oid, &mut output, &mut is_varlena);
    let text = CStr::from_ptr(pg_sys::OidOutputFunctionCall(output, datum)).to_string_lossy().into_owned();
    Ok(match type_oid {
        pg_sys::JSONOID | pg_sys::JSONBOID => WriteValue::Json(
            serde_json::from_str(&text).map_err(|e| SequinError::internal(format!("invalid JSON value: {e}")))?,
        ),
        pg_sys::BOOLOID => WriteValue::Json(Value::Bool(text == "t")),
        pg_sys::INT2OID | pg_sys::INT4OID | pg_sys::INT8OID | pg_sys::FLOAT4OID | pg_sys::FLOAT8OID
        | pg_sys::NUMERICOID => match serde_json::from_str::<serde_json::Number>(&text) {
            Ok(number) => WriteValue::Json(Value::Number(number)),
            Err(_) => WriteValue::Text(text),
        },
        _ => WriteValue::Text(text),
    })
}

/// The named columns of a slot, in table order. `wanted` decides per column.
pub unsafe fn slot_row(slot: *mut pg_sys::TupleTableSlot, wanted: &dyn Fn(i16, &str, bool) -> bool) -> Result<WriteRow> {
    pg_sys::slot_getallattrs(slot);
    let mut row = Vec::new();
    for (i, attribute) in attributes((*slot).tts_tupleDescriptor).iter().enumerate() {
        if attribute.attisdropped {
            continue;
        }
        let name = attribute_name(attribute);
        let is_null = *(*slot).tts_isnull.add(i);
        if wanted(attribute.attnum, &name, is_null) {
            row.push((name, write_value(*(*slot).tts_values.add(i), is_null, attribute.atttypid)?));
        }
    }
    Ok(row)
}

/// A row from a subplan's output slot whose columns are not named like the
/// table's: `columns` maps each output position (0-based) to the table
/// attribute (`relation`'s tuple descriptor) it sets. Null values are left
/// out when `skip_nulls` (an INSERT sends only what it sets).
pub unsafe fn positional_row(
    slot: *mut pg_sys::TupleTableSlot,
    relation: pg_sys::TupleDesc,
    columns: &[(usize, i16)],
    skip_nulls: bool,
) -> Result<WriteRow> {
    pg_sys::slot_getallattrs(slot);
    let table = attributes(relation);
    let mut row = Vec::new();
    for &(position, attnum) in columns {
        let Some(attribute) = table.get(attnum as usize - 1).filter(|a| !a.attisdropped) else { continue };
        if position >= (*slot).tts_nvalid as usize {
            return Err(SequinError::internal("a row of this statement has fewer columns than expected"));
        }
        let is_null = *(*slot).tts_isnull.add(position);
        if is_null && skip_nulls {
            continue;
        }
        let value = write_value(*(*slot).tts_values.add(position), is_null, attribute.atttypid)?;
        row.push((attribute_name(attribute), value));
    }
    Ok(row)
}

/// Fills `slot` (a foreign-table row) from a JSON object via
/// `jsonb_populate_record`, so every column gets its own type's conversion.
/// Runs its own SPI connection; the slot owns its values afterwards.
pub unsafe fn fill_slot_from_json(slot: *mut pg_sys::TupleTableSlot, relation: pg_sys::Oid, row: &Value) -> Result<()> {
    let sql = format!(
        "SELECT (jsonb_populate_record(NULL::{}, $1::jsonb)).*",
        CStr::from_ptr(pg_sys::format_type_be(pg_sys::get_rel_type_id(relation))).to_string_lossy()
    );
    let json_text = row.to_string();
    pg_sys::SPI_connect();
    let mut arg_types = [pg_sys::TEXTOID];
    let jsonb_text = json_text.as_pg_cstr();
    let mut values = [pg_sys::Datum::from(pg_sys::cstring_to_text(jsonb_text))];
    let status = pg_sys::SPI_execute_with_args(
        sql.as_pg_cstr(),
        1,
        arg_types.as_mut_ptr(),
        values.as_mut_ptr(),
        std::ptr::null(),
        true,
        1,
    );
    if status != pg_sys::SPI_OK_SELECT as i32 || pg_sys::SPI_processed != 1 {
        pg_sys::SPI_finish();
        return Err(SequinError::new(ErrorKind::Internal, "could not convert the API's reply into a row"));
    }
    let table = pg_sys::SPI_tuptable;
    let tuple = *(*table).vals;
    pg_sys::ExecClearTuple(slot);
    let mut result_column = 0;
    for (i, attribute) in attributes((*slot).tts_tupleDescriptor).iter().enumerate() {
        if attribute.attisdropped {
            *(*slot).tts_isnull.add(i) = true;
            continue;
        }
        result_column += 1;
        let mut is_null = false;
        *(*slot).tts_values.add(i) = pg_sys::SPI_getbinval(tuple, (*table).tupdesc, result_column, &mut is_null);
        *(*slot).tts_isnull.add(i) = is_null;
    }
    pg_sys::ExecStoreVirtualTuple(slot);
    // Copy the values out of SPI's memory before it is freed.
    pg_sys::ExecMaterializeSlot(slot);
    pg_sys::SPI_finish();
    Ok(())
}
