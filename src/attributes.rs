//! A relation's columns as Postgres's system caches hold them. Every write
//! statement needs its foreign table's and shadow table's columns: read
//! from the caches they cost a few hash lookups, where a catalog query
//! (with `format_type` and `pg_options_to_table` per column) was a fifth
//! of a single-row INSERT. Like a query of `pg_attribute`, this takes no
//! lock on the relation.

use crate::fdw::options::options_from_list;
use pgrx::pg_sys;
use std::ffi::CStr;

/// A column that is not dropped.
pub struct Attribute {
    pub name: String,
    pub type_oid: pg_sys::Oid,
    pub typmod: i32,
    /// The column's FDW options (`field`), in the order they were given.
    pub options: Vec<(String, String)>,
}

impl Attribute {
    /// The column's type as `format_type(atttypid, atttypmod)` prints it.
    pub fn type_name(&self) -> String {
        // SAFETY: format_type_extended returns a palloc'd C string (for an
        // unknown type "???", with FORMAT_TYPE_ALLOW_INVALID, as SQL's
        // format_type does).
        unsafe {
            let flags = (pg_sys::FORMAT_TYPE_TYPEMOD_GIVEN | pg_sys::FORMAT_TYPE_ALLOW_INVALID) as pg_sys::bits16;
            let text = pg_sys::format_type_extended(self.type_oid, self.typmod, flags);
            CStr::from_ptr(text).to_string_lossy().into_owned()
        }
    }

    /// The name as SQL's `quote_ident` writes it: quoted only when needed.
    pub fn quoted_name(&self) -> String {
        let Ok(name) = std::ffi::CString::new(self.name.as_str()) else {
            return crate::sql::ident(&self.name);
        };
        // SAFETY: quote_identifier returns its argument or a palloc'd copy.
        unsafe { CStr::from_ptr(pg_sys::quote_identifier(name.as_ptr())).to_string_lossy().into_owned() }
    }
}

/// The relation's columns that are not dropped, in attnum order; empty for
/// a relation that does not exist. `with_options`: also read each column's
/// FDW options.
pub fn of(relid: pg_sys::Oid, with_options: bool) -> Vec<Attribute> {
    let mut columns = Vec::new();
    // Attribute numbers run from 1 without gaps (a dropped column keeps its
    // row): the first number without a row is the end.
    for attnum in 1..=i16::MAX {
        // SAFETY: a syscache lookup by (relid, attnum); the tuple is
        // released before the next lookup, its fields copied out first.
        unsafe {
            let tuple = pg_sys::SearchSysCache2(
                pg_sys::SysCacheIdentifier::ATTNUM as i32,
                pg_sys::Datum::from(relid),
                pg_sys::Datum::from(attnum),
            );
            if tuple.is_null() {
                break;
            }
            let attribute = pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_attribute>(tuple);
            let column = (!(*attribute).attisdropped).then(|| Attribute {
                name: CStr::from_ptr((*attribute).attname.data.as_ptr()).to_string_lossy().into_owned(),
                type_oid: (*attribute).atttypid,
                typmod: (*attribute).atttypmod,
                options: Vec::new(),
            });
            pg_sys::ReleaseSysCache(tuple);
            if let Some(mut column) = column {
                if with_options {
                    column.options = options_from_list(pg_sys::GetForeignColumnOptions(relid, attnum));
                }
                columns.push(column);
            }
        }
    }
    columns
}
