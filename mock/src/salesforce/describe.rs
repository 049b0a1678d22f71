//! describeGlobal (`GET …/sobjects`) lists the org's types; describe
//! (`GET …/sobjects/{Type}/describe`) one type with its fields. Describe
//! honours `If-Modified-Since` (RFC 1123, second precision): 304 with an
//! empty body when the type's schema has not changed since, and says when it
//! last did in `Last-Modified`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::errors::SfError;
use super::schema::{Field, FieldType, SObject};
use super::SalesforceState;
use crate::http::{Reply, Req};

/// What describeGlobal says of a type, and describe says first.
fn summary(t: &SObject, version: &str) -> Value {
    let base = format!("/services/data/{version}/sobjects/{}", t.name);
    json!({
        "name": t.name,
        "label": t.label,
        "labelPlural": t.label_plural,
        "keyPrefix": t.key_prefix,
        "custom": t.custom,
        "queryable": t.queryable,
        "retrieveable": t.queryable,
        "createable": t.writable,
        "updateable": t.writable,
        "deletable": t.writable,
        "replicateable": t.queryable,
        "searchable": t.queryable,
        "urls": {
            "sobject": base,
            "describe": format!("{base}/describe"),
            "rowTemplate": format!("{base}/{{ID}}"),
        },
    })
}

/// `{"encoding","maxBatchSize","sobjects":[…]}`
pub fn global(sf: &SalesforceState, version: &str) -> Reply {
    let sobjects: Vec<Value> = sf.types().iter().map(|t| summary(t, version)).collect();
    Reply::json(
        200,
        &json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects}),
    )
}

/// One entry of describe's `fields`.
pub fn field_json(f: &Field) -> Value {
    let picklist: Vec<Value> = f
        .picklist
        .iter()
        .map(|v| {
            json!({
                "value": v,
                "label": v,
                "active": true,
                "defaultValue": f.default.as_ref().and_then(Value::as_str) == Some(v.as_str()),
            })
        })
        .collect();
    let length = if f.ftype.has_length() { f.length } else { 0 };
    let (precision, scale) = if f.ftype.is_decimal() {
        (f.precision, f.scale)
    } else {
        (0, 0)
    };
    let searchable_text = !matches!(
        f.ftype,
        FieldType::Textarea | FieldType::Address | FieldType::Location | FieldType::Base64
    );
    json!({
        "name": f.name,
        "label": f.label,
        "type": f.ftype.name(),
        "length": length,
        "precision": precision,
        "scale": scale,
        "digits": if f.ftype == FieldType::Int { 9 } else { 0 },
        "byteLength": length * 3,
        "createable": f.createable,
        "updateable": f.updateable,
        "nillable": f.nillable,
        "calculated": f.calculated(),
        "custom": f.custom,
        "defaultedOnCreate": f.defaulted_on_create(),
        "defaultValue": f.default,
        "compoundFieldName": f.compound,
        "referenceTo": f.reference_to.iter().collect::<Vec<_>>(),
        "relationshipName": f.relationship_name,
        "picklistValues": picklist,
        "restrictedPicklist": f.restricted,
        "externalId": false,
        "unique": false,
        "filterable": searchable_text && f.ftype != FieldType::Multipicklist,
        "sortable": searchable_text && f.ftype != FieldType::Multipicklist,
        "soapType": f.ftype.soap_type(),
    })
}

fn http_date(ms: i64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

/// Whether `If-Modified-Since` names a second at or after the type's last change.
fn unchanged_since(t: &SObject, req: &Req) -> bool {
    let Some(since) = req
        .header("If-Modified-Since")
        .and_then(|v| httpdate::parse_http_date(v.trim()).ok())
    else {
        return false;
    };
    let since_s = since
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    t.changed_ms.div_euclid(1000) <= since_s
}

pub fn describe(t: &SObject, req: &Req, version: &str) -> Result<Reply, SfError> {
    let last_modified = http_date(t.changed_ms);
    if unchanged_since(t, req) {
        return Ok(Reply::raw(304, "").with_header("Last-Modified", last_modified));
    }
    let mut body = summary(t, version);
    body["fields"] = t.fields.iter().map(field_json).collect::<Vec<_>>().into();
    Ok(Reply::json(200, &body).with_header("Last-Modified", last_modified))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(since: Option<&str>) -> Req {
        let mut req = Req::default();
        if let Some(s) = since {
            req.headers.insert("if-modified-since", s.parse().unwrap());
        }
        req
    }

    #[test]
    fn if_modified_since_has_second_precision() {
        let sf = SalesforceState::new("sk_test_describe");
        let mut t = (*sf.sobject("Invoice__c").unwrap()).clone();
        t.changed_ms = 1_792_567_680_500; // Wed, 21 Oct 2026 07:28:00.500 GMT
        let status = |since| describe(&t, &req(since), "v60.0").unwrap().status;
        assert_eq!(status(Some("Wed, 21 Oct 2026 07:28:00 GMT")), 304);
        assert_eq!(status(Some("Wed, 21 Oct 2026 07:27:59 GMT")), 200);
        assert_eq!(status(Some("not a date")), 200);
        assert_eq!(status(None), 200);
        let body: Value =
            serde_json::from_slice(&describe(&t, &req(None), "v60.0").unwrap().body).unwrap();
        let total = body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "Total__c")
            .unwrap();
        assert_eq!(
            (
                total["calculated"].clone(),
                total["createable"].clone(),
                total["soapType"].clone()
            ),
            (json!(true), json!(false), json!("xsd:double"))
        );
    }
}
