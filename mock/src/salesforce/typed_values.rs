//! A written value against its field's type, in two steps as Salesforce
//! takes them: `parse` (the JSON parser: wrong JSON type or format fails the
//! whole request with `JSON_PARSER_ERROR`) gives the stored form; `check`
//! (the record's validation: length, email, picklist values) fails one record.

use serde_json::Value;

use super::errors::SfError;
use super::schema::{Field, FieldType};
use super::time;
use crate::stripe::customers::valid_email;

fn json_token(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "VALUE_STRING",
        Value::Number(n) if n.is_f64() => "VALUE_NUMBER_FLOAT",
        Value::Number(_) => "VALUE_NUMBER_INT",
        Value::Bool(true) => "VALUE_TRUE",
        Value::Bool(false) => "VALUE_FALSE",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
        Value::Null => "VALUE_NULL",
    }
}

/// The Java type Salesforce's parser names in its message.
fn java_type(ftype: FieldType) -> &'static str {
    match ftype {
        FieldType::Boolean => "boolean",
        FieldType::Int => "int",
        t if t.is_decimal() => "double",
        FieldType::Date => "date",
        FieldType::Datetime => "datetime",
        FieldType::Time => "time",
        FieldType::Id | FieldType::Reference => "reference",
        _ => "string",
    }
}

fn cannot_deserialize(ftype: FieldType, v: &Value) -> SfError {
    let shown = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    SfError::json_parser(format!(
        "Cannot deserialize instance of {} from {} value {shown} or request may be missing a required field",
        java_type(ftype),
        json_token(v)
    ))
}

/// The value as stored: null for null or "" (Salesforce keeps no empty
/// strings), numbers as JSON numbers, dates and times in Salesforce's
/// formats, a multipicklist's values trimmed and joined by `;`.
pub fn parse(f: &Field, v: &Value) -> Result<Value, SfError> {
    if v.is_null() || v.as_str() == Some("") {
        return Ok(Value::Null);
    }
    let text = || v.as_str().ok_or_else(|| cannot_deserialize(f.ftype, v));
    let formatted = |s: Option<String>| {
        s.map(Value::String)
            .ok_or_else(|| cannot_deserialize(f.ftype, v))
    };
    match f.ftype {
        FieldType::Boolean => v
            .is_boolean()
            .then(|| v.clone())
            .ok_or_else(|| cannot_deserialize(f.ftype, v)),
        FieldType::Int => v
            .as_i64()
            .filter(|n| i32::try_from(*n).is_ok())
            .map(Value::from)
            .ok_or_else(|| cannot_deserialize(f.ftype, v)),
        t if t.is_decimal() => v
            .as_f64()
            .filter(|_| v.is_number())
            .map(Value::from)
            .ok_or_else(|| cannot_deserialize(f.ftype, v)),
        FieldType::Date => formatted(time::parse_date(text()?).map(time::format_date)),
        FieldType::Datetime => formatted(time::parse_datetime(text()?).map(time::format_datetime)),
        FieldType::Time => formatted(time::parse_time(text()?).map(time::format_time)),
        FieldType::Multipicklist => Ok(Value::String(
            text()?
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(";"),
        )),
        // Never written: refused as not createable/updateable afterwards.
        t if t.is_compound() => Ok(v.clone()),
        _ => Ok(Value::String(text()?.to_string())),
    }
}

/// A parsed, non-null value against the field's length, email format and
/// restricted picklist.
pub fn check(f: &Field, v: &Value) -> Result<(), SfError> {
    let Value::String(s) = v else {
        return Ok(());
    };
    if f.ftype.has_length() && s.chars().count() > f.length {
        return Err(SfError::record(
            "STRING_TOO_LONG",
            format!(
                "{}: data value too large: {s} (max length={})",
                f.label, f.length
            ),
            &[&f.name],
        ));
    }
    if f.ftype == FieldType::Email && !valid_email(s) {
        return Err(SfError::record(
            "INVALID_EMAIL_ADDRESS",
            format!("{}: invalid email address: {s}", f.label),
            &[&f.name],
        ));
    }
    let listed = |value: &str| f.picklist.iter().any(|p| p == value);
    let bad = match f.ftype {
        FieldType::Picklist if f.restricted => (!listed(s)).then_some(s.as_str()),
        FieldType::Multipicklist if f.restricted => s.split(';').find(|value| !listed(value)),
        _ => None,
    };
    match bad {
        Some(value) => Err(SfError::record(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            format!(
                "{}: bad value for restricted picklist field: {value}",
                f.label
            ),
            &[&f.name],
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(ftype: FieldType, v: Value) -> Result<Value, &'static str> {
        parse(&Field::new("F__c", "F", ftype), &v).map_err(|e| e.code)
    }

    #[test]
    fn parses_each_type_to_its_stored_form() {
        let bad = Err("JSON_PARSER_ERROR");
        assert_eq!(parsed(FieldType::Boolean, json!(true)), Ok(json!(true)));
        assert_eq!(parsed(FieldType::Boolean, json!("true")), bad);
        assert_eq!(parsed(FieldType::Int, json!(7)), Ok(json!(7)));
        assert_eq!(parsed(FieldType::Int, json!(7.5)), bad);
        assert_eq!(parsed(FieldType::Int, json!(1u64 << 40)), bad);
        assert_eq!(parsed(FieldType::Currency, json!(7)), Ok(json!(7.0)));
        assert_eq!(parsed(FieldType::Percent, json!("7")), bad);
        assert_eq!(
            parsed(FieldType::Date, json!("2026-02-28")),
            Ok(json!("2026-02-28"))
        );
        assert_eq!(parsed(FieldType::Date, json!("2026-02-30")), bad);
        assert_eq!(
            parsed(FieldType::Datetime, json!("2026-01-01T01:00:00+01:00")),
            Ok(json!("2026-01-01T00:00:00.000+0000"))
        );
        assert_eq!(parsed(FieldType::Datetime, json!("2026-01-01")), bad);
        assert_eq!(
            parsed(FieldType::Time, json!("09:30")),
            Ok(json!("09:30:00.000Z"))
        );
        assert_eq!(parsed(FieldType::Time, json!("25:00:00")), bad);
        assert_eq!(
            parsed(FieldType::Multipicklist, json!(" Urgent ;Gift;")),
            Ok(json!("Urgent;Gift"))
        );
        assert_eq!(parsed(FieldType::String, json!("")), Ok(Value::Null));
        assert_eq!(parsed(FieldType::String, json!(5)), bad);
    }

    #[test]
    fn checks_length_email_and_restricted_picklists() {
        let code = |f: &Field, v: Value| check(f, &v).map_err(|e| e.code);
        let name = Field::new("Name", "Name", FieldType::String).length(3);
        assert_eq!(code(&name, json!("abcd")), Err("STRING_TOO_LONG"));
        let email = Field::new("Email", "Email", FieldType::Email);
        assert_eq!(code(&email, json!("nope")), Err("INVALID_EMAIL_ADDRESS"));
        let status = Field::new("S__c", "S", FieldType::Picklist).picklist(&["A", "B"], true);
        assert_eq!(code(&status, json!("A")), Ok(()));
        let e = check(&status, &json!("C")).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                "S: bad value for restricted picklist field: C"
            )
        );
        let open = Field::new("T", "T", FieldType::Picklist).picklist(&["A"], false);
        assert_eq!(code(&open, json!("Z")), Ok(()));
        let tags = Field::new("G__c", "G", FieldType::Multipicklist).picklist(&["A", "B"], true);
        assert_eq!(code(&tags, json!("A;B")), Ok(()));
        assert_eq!(
            code(&tags, json!("A;Z")),
            Err("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
        );
    }
}
