//! From an API's schema to a table's columns and back (DESIGN §4a): the
//! names IMPORT gives collections and fields, which column holds which field
//! (`field` option, else the name), and whether a column's type can hold a
//! field's values. Pure: the API is asked in `discovery.rs`.

use crate::providers::{CollectionSchema, CollectionSpec, ColumnSpec, FieldSpec};
use crate::shadow::is_standard_field;

/// Postgres cuts identifiers at 63 bytes.
const MAX_IDENTIFIER: usize = 63;

/// `FirstName` → `first_name`, `NumberOfEmployees` → `number_of_employees`,
/// `SLAExpiry__c` → `sla_expiry__c`, `Invoice__c` → `invoice__c`; names
/// already in snake_case stay as they are.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let previous = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            let after_word = previous.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit());
            let acronym_end = previous.is_some_and(char::is_uppercase) && next.is_some_and(|n| n.is_lowercase());
            if (after_word || acronym_end) && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else if c.is_alphanumeric() || c == '_' {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out
}

/// The column IMPORT names after a field: snake_case, cut to an identifier.
pub fn column_name(field: &str) -> String {
    cut(&snake_case(field), MAX_IDENTIFIER)
}

/// `name` cut to at most `max` bytes, on a character boundary.
fn cut(name: &str, max: usize) -> String {
    let mut end = name.len().min(max);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

/// The columns IMPORT creates for a schema's fields, in order: each field
/// that can be a column, named by `column_name`, made unique (a name that a
/// standard field or an earlier column took gets `_2`, `_3`, …).
pub fn import_columns(schema: &CollectionSchema) -> Vec<(String, &FieldSpec)> {
    let mut taken: Vec<String> = Vec::new();
    let mut columns = Vec::new();
    for field in schema.fields.iter().filter(|f| f.sql_type.is_some()) {
        let name = unique_name(&column_name(&field.name), &taken);
        taken.push(name.clone());
        columns.push((name, field));
    }
    columns
}

/// `base`, or `base_2`, `base_3`, … (cut to an identifier) when a standard
/// field or one of `taken` has that name.
pub fn unique_name(base: &str, taken: &[String]) -> String {
    let mut name = base.to_string();
    let mut n = 1;
    while is_standard_field(&name) || taken.contains(&name) {
        n += 1;
        let suffix = format!("_{n}");
        name = format!("{}{suffix}", cut(base, MAX_IDENTIFIER - suffix.len()));
    }
    name
}

/// The spec of a table IMPORT created for `schema`.
pub fn imported_spec(schema: &CollectionSchema) -> CollectionSpec {
    let columns = import_columns(schema)
        .into_iter()
        .map(|(name, field)| ColumnSpec {
            name,
            field: field.name.clone(),
            sql_type: field.sql_type.clone().unwrap_or_default(),
            api_type: field.api_type.clone(),
            writable: field.writable,
        })
        .collect();
    spec_with(schema, columns)
}

fn spec_with(schema: &CollectionSchema, columns: Vec<ColumnSpec>) -> CollectionSpec {
    CollectionSpec {
        name: schema.name.clone(),
        fields: schema.fields.clone(),
        columns,
        writes: schema.writes.clone(),
        writes_hint: schema.writes_hint.clone(),
        settings: Vec::new(),
    }
}

/// One of a foreign table's own columns (not a standard field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableColumn {
    pub name: String,
    /// As `format_type` prints it.
    pub sql_type: String,
    /// The column's `field` option.
    pub field: Option<String>,
}

/// What is wrong with one column, against the API's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// It names a field the API does not have (any more).
    UnknownField { column: String, field: String },
    /// Its type cannot hold the field's values.
    WrongType { column: String, field: String, api_type: String, sql_type: String, fits: String },
}

impl Mismatch {
    pub fn column(&self) -> &str {
        match self {
            Mismatch::UnknownField { column, .. } | Mismatch::WrongType { column, .. } => column,
        }
    }

    pub fn describe(&self, collection: &str) -> String {
        match self {
            Mismatch::UnknownField { column, field } => {
                format!("column \"{column}\" names field \"{field}\", which {collection} does not have")
            }
            Mismatch::WrongType { column, field, api_type, sql_type, .. } => {
                format!("column \"{column}\" is {sql_type}, which cannot hold field \"{field}\" ({api_type})")
            }
        }
    }
}

/// A table bound to its collection's schema: the spec of the columns that
/// hold a field, and what is wrong with the others.
pub struct Bound {
    pub spec: CollectionSpec,
    pub mismatches: Vec<Mismatch>,
}

/// The field a column without a `field` option holds: the one of the same
/// name, or whose IMPORT name it is (`first_name` holds `FirstName`).
fn field_by_column<'a>(schema: &'a CollectionSchema, column: &str) -> Option<&'a FieldSpec> {
    schema
        .fields
        .iter()
        .find(|f| f.name == column)
        .or_else(|| schema.fields.iter().find(|f| f.name.eq_ignore_ascii_case(column) || column_name(&f.name) == column))
}

/// Binds a table's own columns to the schema's fields.
pub fn bind(schema: &CollectionSchema, columns: &[TableColumn]) -> Bound {
    let mut bound = Vec::new();
    let mut mismatches = Vec::new();
    for column in columns.iter().filter(|c| !is_standard_field(&c.name)) {
        let field = match &column.field {
            Some(name) => schema.field(name),
            None => field_by_column(schema, &column.name),
        };
        let Some(field) = field.filter(|f| f.sql_type.is_some()) else {
            let field = column.field.clone().unwrap_or_else(|| column.name.clone());
            if schema.open && schema.field(&field).is_none() {
                // A field of the records the schema does not list: read-only,
                // its values as they come.
                bound.push(ColumnSpec {
                    name: column.name.clone(),
                    field,
                    sql_type: column.sql_type.clone(),
                    api_type: String::new(),
                    writable: crate::providers::Writable::Never,
                });
            } else {
                mismatches.push(Mismatch::UnknownField { column: column.name.clone(), field });
            }
            continue;
        };
        let natural = field.sql_type.as_deref().unwrap_or("text");
        if !can_hold(&column.sql_type, natural) {
            mismatches.push(Mismatch::WrongType {
                column: column.name.clone(),
                field: field.name.clone(),
                api_type: field.api_type.clone(),
                sql_type: column.sql_type.clone(),
                fits: fitting_types(natural).join(", "),
            });
            continue;
        }
        bound.push(ColumnSpec {
            name: column.name.clone(),
            field: field.name.clone(),
            sql_type: column.sql_type.clone(),
            api_type: field.api_type.clone(),
            writable: field.writable,
        });
    }
    Bound { spec: spec_with(schema, bound), mismatches }
}

/// The fields a table's columns do not hold yet: what
/// `sequin.refresh_schema()` would add.
pub fn new_fields<'a>(schema: &'a CollectionSchema, spec: &CollectionSpec, mismatched: &[Mismatch]) -> Vec<&'a FieldSpec> {
    schema
        .fields
        .iter()
        .filter(|f| f.sql_type.is_some())
        .filter(|f| !spec.columns.iter().any(|c| c.field == f.name))
        .filter(|f| !mismatched.iter().any(|m| matches!(m, Mismatch::WrongType { field, .. } if *field == f.name)))
        .collect()
}

/// The type without its modifier: `numeric(10,2)` → `numeric`,
/// `character varying(80)` → `character varying`, `text[]` stays.
fn base_type(sql_type: &str) -> String {
    let array = sql_type.ends_with("[]");
    let name = sql_type.trim_end_matches("[]");
    let name = name.split('(').next().unwrap_or(name).trim();
    let name = match name {
        "timestamptz" => "timestamp with time zone",
        "timestamp" => "timestamp without time zone",
        "int8" => "bigint",
        "int4" | "int" => "integer",
        "int2" => "smallint",
        "float8" => "double precision",
        "float4" => "real",
        "bool" => "boolean",
        "varchar" => "character varying",
        "time" => "time without time zone",
        other => other,
    };
    if array {
        format!("{name}[]")
    } else {
        name.to_string()
    }
}

const TEXT_TYPES: &[&str] = &["text", "character varying", "character"];
const NUMBER_TYPES: &[&str] = &["numeric", "double precision", "real"];
const INTEGER_TYPES: &[&str] = &["bigint", "integer", "smallint"];

/// The column types that hold a field whose own type is `natural`: the
/// natural one, its wider or looser kin, text, and json(b).
fn fitting_types(natural: &str) -> Vec<&'static str> {
    let natural = base_type(natural);
    let mut fits: Vec<&'static str> = match natural.as_str() {
        "bigint" | "integer" | "smallint" => [INTEGER_TYPES, NUMBER_TYPES].concat(),
        "numeric" | "double precision" | "real" => NUMBER_TYPES.to_vec(),
        "timestamp with time zone" => vec!["timestamp with time zone", "timestamp without time zone"],
        "text[]" => vec!["text[]", "character varying[]"],
        "boolean" => vec!["boolean"],
        "date" => vec!["date"],
        "time without time zone" => vec!["time without time zone"],
        "jsonb" | "json" => vec![],
        _ => vec![],
    };
    fits.extend(TEXT_TYPES);
    fits.extend(["jsonb", "json"]);
    fits
}

/// A column of type `declared` can hold the values of a field whose own
/// type is `natural`.
pub fn can_hold(declared: &str, natural: &str) -> bool {
    let declared = base_type(declared);
    fitting_types(natural).iter().any(|t| *t == declared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{Writable, WriteOp};

    fn field(name: &str, api_type: &str, sql_type: Option<&str>) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            api_type: api_type.into(),
            sql_type: sql_type.map(str::to_string),
            writable: Writable::Always,
            nullable: true,
        }
    }

    fn invoice() -> CollectionSchema {
        CollectionSchema {
            name: "Invoice__c".into(),
            table: "invoice__c".into(),
            fields: vec![
                field("Name", "string", Some("text")),
                field("Score__c", "percent", Some("numeric")),
                field("Tags__c", "multipicklist", Some("text[]")),
                field("Quantity__c", "int", Some("bigint")),
                field("Attachment__c", "base64", None),
                field("SystemModstamp", "datetime", Some("timestamptz")),
            ],
            writes: WriteOp::ALL.to_vec(),
            writes_hint: None,
            open: false,
        }
    }

    fn column(name: &str, sql_type: &str, field: Option<&str>) -> TableColumn {
        TableColumn { name: name.into(), sql_type: sql_type.into(), field: field.map(str::to_string) }
    }

    #[test]
    fn names_become_snake_case() {
        for (api, column) in [
            ("FirstName", "first_name"),
            ("NumberOfEmployees", "number_of_employees"),
            ("AccountId", "account_id"),
            ("Score__c", "score__c"),
            ("Invoice__c", "invoice__c"),
            ("SLAExpirationDate__c", "sla_expiration_date__c"),
            ("Location__Latitude__s", "location__latitude__s"),
            ("Custom_Field_Number_001__c", "custom_field_number_001__c"),
            ("MD5Hash", "md5_hash"),
            ("created", "created"),
            ("unit_amount", "unit_amount"),
            ("Id", "id"),
            ("Ünïcode Name", "ünïcode_name"),
        ] {
            assert_eq!(snake_case(api), column, "{api}");
        }
        let long = format!("{}__c", "A".repeat(80));
        assert_eq!(column_name(&long).len(), 63);
        assert_eq!(column_name(&"é".repeat(40)).len(), 62);
    }

    #[test]
    fn long_names_made_unique_stay_identifiers() {
        let mut schema = invoice();
        schema.fields = vec![field(&"é".repeat(40), "string", Some("text")), field(&"É".repeat(40), "string", Some("text"))];
        let names: Vec<String> = import_columns(&schema).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["é".repeat(31), format!("{}_2", "é".repeat(30))]);
    }

    #[test]
    fn import_names_are_unique_and_skip_what_cannot_be_a_column() {
        let mut schema = invoice();
        schema.fields.push(field("Deleted", "boolean", Some("boolean")));
        schema.fields.push(field("score__c", "string", Some("text")));
        let names: Vec<String> = import_columns(&schema).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["name", "score__c", "tags__c", "quantity__c", "system_modstamp", "deleted_2", "score__c_2"]);
    }

    #[test]
    fn columns_bind_by_option_then_by_name() {
        let columns = [
            column("id", "text", None),
            column("score", "numeric(5,2)", Some("Score__c")),
            column("name", "text", None),
            column("system_modstamp", "timestamp with time zone", None),
            column("tags", "text", Some("Tags__c")),
            column("raw", "jsonb", None),
        ];
        let bound = bind(&invoice(), &columns);
        assert_eq!(bound.mismatches, []);
        let pairs: Vec<(&str, &str)> = bound.spec.columns.iter().map(|c| (c.name.as_str(), c.field.as_str())).collect();
        assert_eq!(pairs, [("score", "Score__c"), ("name", "Name"), ("system_modstamp", "SystemModstamp"), ("tags", "Tags__c")]);
        assert_eq!(bound.spec.fields.len(), 6);
    }

    #[test]
    fn unknown_fields_and_types_that_cannot_hold_them_are_mismatches() {
        let columns = [
            column("region", "text", Some("Region__c")),
            column("nickname", "text", None),
            column("attachment", "text", Some("Attachment__c")),
            column("quantity", "boolean", Some("Quantity__c")),
            column("score", "integer", Some("Score__c")),
            column("stamp", "date", Some("SystemModstamp")),
        ];
        let bound = bind(&invoice(), &columns);
        assert!(bound.spec.columns.is_empty());
        let columns: Vec<&str> = bound.mismatches.iter().map(Mismatch::column).collect();
        assert_eq!(columns, ["region", "nickname", "attachment", "quantity", "score", "stamp"]);
        assert!(matches!(&bound.mismatches[0], Mismatch::UnknownField { field, .. } if field == "Region__c"));
        assert!(matches!(&bound.mismatches[1], Mismatch::UnknownField { field, .. } if field == "nickname"));
        let text = bound.mismatches[4].describe("Invoice__c");
        assert_eq!(text, "column \"score\" is integer, which cannot hold field \"Score__c\" (percent)");
    }

    #[test]
    fn an_open_schema_takes_any_field_read_only() {
        let mut schema = invoice();
        schema.open = true;
        let bound = bind(&schema, &[column("livemode", "boolean", None), column("prefix", "text", Some("invoice_prefix"))]);
        assert_eq!(bound.mismatches, []);
        let columns: Vec<(&str, &str, Writable)> =
            bound.spec.columns.iter().map(|c| (c.name.as_str(), c.field.as_str(), c.writable)).collect();
        assert_eq!(columns, [("livemode", "livemode", Writable::Never), ("prefix", "invoice_prefix", Writable::Never)]);
        // A listed field keeps its type check.
        assert_eq!(bind(&schema, &[column("quantity__c", "boolean", None)]).mismatches.len(), 1);
    }

    #[test]
    fn looser_types_hold_values() {
        assert!(can_hold("integer", "bigint"));
        assert!(can_hold("numeric(10,2)", "bigint"));
        assert!(can_hold("double precision", "numeric"));
        assert!(!can_hold("bigint", "numeric"));
        assert!(can_hold("text", "timestamptz"));
        assert!(can_hold("timestamp without time zone", "timestamptz"));
        assert!(can_hold("jsonb", "text[]"));
        assert!(can_hold("character varying(80)", "text"));
        assert!(can_hold("character varying[]", "text[]"));
        assert!(!can_hold("text[]", "text"));
        assert!(!can_hold("boolean", "text"));
        assert!(can_hold("jsonb", "jsonb"));
        assert!(!can_hold("date", "timestamptz"));
    }

    #[test]
    fn new_fields_are_those_no_column_holds() {
        let bound = bind(&invoice(), &[column("name", "text", None), column("quantity", "boolean", Some("Quantity__c"))]);
        let schema = invoice();
        let new: Vec<&str> = new_fields(&schema, &bound.spec, &bound.mismatches).iter().map(|f| f.name.as_str()).collect();
        assert_eq!(new, ["Score__c", "Tags__c", "SystemModstamp"]);
    }
}
