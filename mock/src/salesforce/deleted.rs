//! `GET …/sobjects/{Type}/deleted/?start=<ISO>&end=<ISO>` →
//! `{"deletedRecords":[{"id","deletedDate"}],"earliestDateAvailable","latestDateCovered"}`.
//! Deletions are kept 15 days (or until the admin expires them). Like
//! Salesforce, the API ignores seconds (`settings.deleted_precision_ms`):
//! start and end are truncated to the minute, and an end in the future is
//! covered only up to the current minute.

use serde_json::json;

use super::errors::SfError;
use super::schema::SObject;
use super::{time, SalesforceState};
use crate::http::{Reply, Req};
use crate::stripe::form;

fn replication_date(message: &str) -> SfError {
    SfError::new(400, "INVALID_REPLICATION_DATE", message)
}

fn truncate(ms: i64, precision: i64) -> i64 {
    if precision <= 1 {
        ms
    } else {
        ms.div_euclid(precision) * precision
    }
}

pub fn list(sf: &mut SalesforceState, t: &SObject, req: &Req, now: i64) -> Result<Reply, SfError> {
    let params = form::pairs(&req.query);
    let param = |name: &str| -> Result<i64, SfError> {
        let v = params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| {
                SfError::new(
                    400,
                    "MISSING_ARGUMENT",
                    format!("Missing required parameter: {name}"),
                )
            })?;
        time::parse_datetime(v).ok_or_else(|| {
            SfError::new(
                400,
                "INVALID_DATETIME",
                format!("{name}: unable to parse '{v}' as a dateTime"),
            )
        })
    };
    let precision = sf.settings.deleted_precision_ms;
    let start = truncate(param("start")?, precision);
    let end = truncate(param("end")?, precision);
    if start >= end {
        return Err(replication_date(
            "startDate must chronologically precede endDate by more than one minute",
        ));
    }
    sf.purge_deleted(now);
    let earliest = truncate(sf.earliest_deleted_ms(now), precision);
    if start < earliest {
        return Err(replication_date(
            "startDate is before the earliest date available: deleted records are kept 15 days",
        ));
    }
    let covered = end.min(truncate(now, precision));
    let records: Vec<_> = sf
        .store(t)
        .deleted_between(start, covered)
        .into_iter()
        .map(|(at, id)| json!({"id": id, "deletedDate": time::format_datetime(at)}))
        .collect();
    Ok(Reply::json(
        200,
        &json!({
            "deletedRecords": records,
            "earliestDateAvailable": time::format_datetime(earliest),
            "latestDateCovered": time::format_datetime(covered),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::ops;
    use serde_json::Value;

    fn get(sf: &mut SalesforceState, start: i64, end: i64, now: i64) -> Result<Value, SfError> {
        let f = |ms| time::format_datetime(ms).replace('+', "%2B");
        let req = Req {
            method: "GET".into(),
            query: format!("start={}&end={}", f(start), f(end)),
            ..Req::default()
        };
        let contact = sf.sobject("Contact").unwrap();
        list(sf, &contact, &req, now).map(|r| serde_json::from_slice(&r.body).unwrap())
    }

    #[test]
    fn window_minutes_and_expiry() {
        let now = time::parse_datetime("2026-03-01T12:00:30Z").unwrap();
        let min = 60_000;
        let mut sf = SalesforceState::new("sk_test_d");
        let contact = sf.sobject("Contact").unwrap();
        let (a, _) = ops::create(
            &mut sf,
            &contact,
            json!({"LastName":"A"}).as_object().unwrap(),
            now - 10 * min,
        )
        .unwrap();
        let (b, _) = ops::create(
            &mut sf,
            &contact,
            json!({"LastName":"B"}).as_object().unwrap(),
            now - 10 * min,
        )
        .unwrap();
        ops::delete(&mut sf, &contact, &a, now - 5 * min, true).unwrap();
        ops::delete(&mut sf, &contact, &b, now - 10_000, true).unwrap(); // in the current minute

        let r = get(&mut sf, now - 60 * min, now + 60 * min, now).unwrap();
        assert_eq!(
            r["deletedRecords"],
            json!([{"id": a, "deletedDate": time::format_datetime(now - 5 * min)}])
        );
        assert_eq!(r["latestDateCovered"], "2026-03-01T12:00:00.000+0000");
        assert_eq!(r["earliestDateAvailable"], "2026-02-14T12:00:00.000+0000");
        // The next call from latestDateCovered picks up the rest, a minute later.
        let r = get(&mut sf, now - 30_000, now + 60 * min, now + min).unwrap();
        assert_eq!(r["deletedRecords"][0]["id"], json!(b));

        assert_eq!(
            get(&mut sf, now, now + 20_000, now).unwrap_err().code,
            "INVALID_REPLICATION_DATE"
        );
        assert_eq!(
            get(&mut sf, now - 16 * time::DAY_MS, now, now)
                .unwrap_err()
                .code,
            "INVALID_REPLICATION_DATE"
        );
        // Expired by the admin: the window starts now.
        sf.deleted_floor_ms = now;
        assert_eq!(
            get(&mut sf, now - 60 * min, now, now).unwrap_err().code,
            "INVALID_REPLICATION_DATE"
        );
        let r = get(&mut sf, now - 30_000, now + min, now + 2 * min).unwrap();
        assert_eq!(r["deletedRecords"], json!([]));
        // Purged for good: deleting again is NOT_FOUND-ish, not ENTITY_IS_DELETED.
        assert_eq!(
            ops::delete(&mut sf, &contact, &a, now, true)
                .unwrap_err()
                .code,
            "NOT_FOUND"
        );
    }
}
