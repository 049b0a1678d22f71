//! Salesforce's schema: describeGlobal lists the sObjects, describe gives
//! each one's fields; both map to the provider-neutral schema (DESIGN §4a).

use super::API;
use crate::providers::{unparseable, ApiError, ApiRequest, ApiResponse, CollectionSchema, FieldSpec, Listed, Writable, WriteOp};
use crate::schema::snake_case;
use serde_json::Value;

/// The column type of a field of this Salesforce type; None: no column
/// (base64 is a blob, fetched one record at a time).
pub fn sql_type(api_type: &str) -> Option<&'static str> {
    Some(match api_type {
        "boolean" => "boolean",
        "int" | "long" => "bigint",
        "double" | "currency" | "percent" => "numeric",
        "date" => "date",
        "datetime" => "timestamptz",
        "time" => "time",
        "multipicklist" => "text[]",
        "address" | "location" | "complexvalue" => "jsonb",
        "base64" => return None,
        // id, reference, string, picklist, textarea, email, phone, url,
        // combobox, encryptedstring, anyType: text.
        _ => "text",
    })
}

/// The table IMPORT names after an sObject: a custom one (`Invoice__c`,
/// and the other `__` suffixes) by its API name in lower case, as in SOQL;
/// a standard one in the plural, as 0.1.0 named them (`contacts`,
/// `opportunities`).
pub fn table_name(sobject: &str, custom: bool) -> String {
    if custom || sobject.contains("__") {
        return sobject.to_lowercase();
    }
    plural(&snake_case(sobject))
}

fn plural(word: &str) -> String {
    let consonant_y = word.ends_with('y') && !word[..word.len() - 1].ends_with(['a', 'e', 'i', 'o', 'u']);
    if consonant_y {
        format!("{}ies", &word[..word.len() - 1])
    } else if word.ends_with(['s', 'x', 'z']) || word.ends_with("ch") || word.ends_with("sh") {
        format!("{word}es")
    } else {
        format!("{word}s")
    }
}

fn flag(value: &Value, key: &str) -> bool {
    value.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn writes(sobject: &Value) -> Vec<WriteOp> {
    [("createable", WriteOp::Insert), ("updateable", WriteOp::Update), ("deletable", WriteOp::Delete)]
        .into_iter()
        .filter(|(key, _)| flag(sobject, key))
        .map(|(_, op)| op)
        .collect()
}

pub fn list_request() -> ApiRequest {
    ApiRequest::get(format!("{API}/sobjects"))
}

/// The sObjects the sync can follow: queryable, and replicateable (the
/// deleted-records endpoint answers for them).
pub fn list_response(response: &ApiResponse) -> Result<Vec<Listed>, ApiError> {
    let body = response.json().ok_or_else(|| unparseable(response, "not JSON"))?;
    let sobjects = body.get("sobjects").and_then(Value::as_array).ok_or_else(|| unparseable(response, "no sobjects array"))?;
    let mut listed = Vec::new();
    for sobject in sobjects {
        let Some(name) = sobject.get("name").and_then(Value::as_str) else { continue };
        if !flag(sobject, "queryable") || !flag(sobject, "replicateable") {
            continue;
        }
        let schema = CollectionSchema {
            name: name.to_string(),
            table: table_name(name, flag(sobject, "custom")),
            fields: Vec::new(),
            writes: writes(sobject),
            writes_hint: None,
            open: false,
        };
        listed.push(Listed { schema, described: false });
    }
    Ok(listed)
}

pub fn describe_request(name: &str) -> ApiRequest {
    ApiRequest::get(format!("{API}/sobjects/{}/describe", super::encode_path_segment(name)))
}

/// The fields of one sObject, its `Id` left out (the `id` column).
pub fn describe_response(response: &ApiResponse) -> Result<CollectionSchema, ApiError> {
    let body = response.json().ok_or_else(|| unparseable(response, "not JSON"))?;
    let name = body.get("name").and_then(Value::as_str).ok_or_else(|| unparseable(response, "no name"))?;
    let described = body.get("fields").and_then(Value::as_array).ok_or_else(|| unparseable(response, "no fields array"))?;
    let mut fields = Vec::with_capacity(described.len());
    for field in described {
        let (Some(field_name), Some(api_type)) =
            (field.get("name").and_then(Value::as_str), field.get("type").and_then(Value::as_str))
        else {
            return Err(unparseable(response, "a field without name or type"));
        };
        if field_name == "Id" {
            continue;
        }
        fields.push(FieldSpec {
            name: field_name.to_string(),
            api_type: api_type.to_string(),
            sql_type: sql_type(api_type).map(str::to_string),
            writable: Writable::from_flags(flag(field, "createable"), flag(field, "updateable")),
            nullable: flag(field, "nillable"),
        });
    }
    if !fields.iter().any(|f| f.name == "SystemModstamp") {
        return Err(unparseable(response, "an sObject without SystemModstamp cannot be synced"));
    }
    Ok(CollectionSchema {
        name: name.to_string(),
        table: table_name(name, flag(&body, "custom")),
        fields,
        writes: writes(&body),
        writes_hint: None,
        open: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_are_named_as_0_1_0_named_them_and_custom_objects_by_their_api_name() {
        for (sobject, custom, table) in [
            ("Contact", false, "contacts"),
            ("Account", false, "accounts"),
            ("Lead", false, "leads"),
            ("Opportunity", false, "opportunities"),
            ("OpportunityLineItem", false, "opportunity_line_items"),
            ("Case", false, "cases"),
            ("Address", false, "addresses"),
            ("Survey", false, "surveys"),
            ("Invoice__c", true, "invoice__c"),
            ("Wide__c", true, "wide__c"),
            ("Thing__mdt", false, "thing__mdt"),
        ] {
            assert_eq!(table_name(sobject, custom), table, "{sobject}");
        }
    }

    #[test]
    fn types_map_to_columns() {
        for (api, sql) in [
            ("id", Some("text")),
            ("reference", Some("text")),
            ("picklist", Some("text")),
            ("email", Some("text")),
            ("boolean", Some("boolean")),
            ("int", Some("bigint")),
            ("currency", Some("numeric")),
            ("percent", Some("numeric")),
            ("date", Some("date")),
            ("datetime", Some("timestamptz")),
            ("time", Some("time")),
            ("multipicklist", Some("text[]")),
            ("address", Some("jsonb")),
            ("location", Some("jsonb")),
            ("base64", None),
        ] {
            assert_eq!(sql_type(api), sql, "{api}");
        }
    }

    fn reply(body: Value) -> ApiResponse {
        ApiResponse { status: 200, headers: vec![], body: body.to_string().into_bytes() }
    }

    #[test]
    fn the_list_keeps_what_can_be_synced() {
        let body = json!({"sobjects": [
            {"name": "Contact", "custom": false, "queryable": true, "replicateable": true, "createable": true, "updateable": true, "deletable": true},
            {"name": "Invoice__c", "custom": true, "queryable": true, "replicateable": true, "createable": true, "updateable": false, "deletable": true},
            {"name": "NoteAndAttachment", "custom": false, "queryable": false, "replicateable": false},
            {"custom": true}
        ]});
        let listed = list_response(&reply(body)).unwrap();
        let names: Vec<(&str, &str, bool)> = listed.iter().map(|l| (l.schema.name.as_str(), l.schema.table.as_str(), l.described)).collect();
        assert_eq!(names, [("Contact", "contacts", false), ("Invoice__c", "invoice__c", false)]);
        assert_eq!(listed[1].schema.writes, [WriteOp::Insert, WriteOp::Delete]);
    }

    #[test]
    fn describe_gives_fields_with_their_access() {
        let body = json!({"name": "Invoice__c", "custom": true, "createable": true, "updateable": true, "deletable": true, "fields": [
            {"name": "Id", "type": "id", "createable": false, "updateable": false, "nillable": false},
            {"name": "Total__c", "type": "currency", "createable": false, "updateable": false, "nillable": true, "calculated": true},
            {"name": "Code__c", "type": "string", "createable": true, "updateable": false, "nillable": true},
            {"name": "Attachment__c", "type": "base64", "createable": true, "updateable": true, "nillable": true},
            {"name": "SystemModstamp", "type": "datetime", "createable": false, "updateable": false, "nillable": false}
        ]});
        let schema = describe_response(&reply(body)).unwrap();
        assert_eq!(schema.table, "invoice__c");
        let fields: Vec<(&str, Option<&str>, Writable)> =
            schema.fields.iter().map(|f| (f.name.as_str(), f.sql_type.as_deref(), f.writable)).collect();
        assert_eq!(
            fields,
            [
                ("Total__c", Some("numeric"), Writable::Never),
                ("Code__c", Some("text"), Writable::OnInsert),
                ("Attachment__c", None, Writable::Always),
                ("SystemModstamp", Some("timestamptz"), Writable::Never)
            ]
        );
        let unsyncable = json!({"name": "X", "fields": [{"name": "Id", "type": "id"}]});
        assert!(describe_response(&reply(unsyncable)).is_err());
    }
}
