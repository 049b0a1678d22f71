//! Salesforce's date and time formats, without a date library: datetimes
//! are written `2026-01-01T00:00:00.000+0000` (UTC, milliseconds), dates
//! `2026-01-01`, times of day `09:30:00.000Z`. Parsing takes what SOQL literals and the deleted endpoint
//! accept: `YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm|±hhmm)`.

use std::time::{SystemTime, UNIX_EPOCH};

pub const DAY_MS: i64 = 86_400_000;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// `2026-01-01T00:00:00.000+0000`
pub fn format_datetime(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS);
    let rest = ms.rem_euclid(DAY_MS);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}+0000")
}

/// `2026-01-01`
pub fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

fn digits(s: &str, n: usize) -> Option<i64> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD` → days since the epoch.
pub fn parse_date(s: &str) -> Option<i64> {
    let mut parts = s.split('-');
    let y = digits(parts.next()?, 4)?;
    let m = digits(parts.next()?, 2)?;
    let d = digits(parts.next()?, 2)?;
    if parts.next().is_some() || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    days_from_civil(y + (m / 12), m % 12 + 1, 1) - days_from_civil(y, m, 1)
}

/// An ISO 8601 datetime with a zone → unix milliseconds.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let (date, time) = s.split_once(['T', 't'])?;
    let days = parse_date(date)?;
    let zone_at = time.find(['Z', 'z', '+', '-'])?;
    let (clock, zone) = time.split_at(zone_at);
    let (hms, frac) = match clock.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (clock, None),
    };
    let mut hms = hms.split(':');
    let h = digits(hms.next()?, 2)?;
    let mi = digits(hms.next()?, 2)?;
    let sec = digits(hms.next()?, 2)?;
    if hms.next().is_some() || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let milli = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{f:0<3}")[..3].parse().ok()?
        }
        Some(_) => return None,
    };
    let offset_min = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let z = zone[1..].replace(':', "");
            let hh = digits(z.get(..2)?, 2)?;
            let mm = digits(z.get(2..)?, 2)?;
            if hh > 23 || mm > 59 {
                return None;
            }
            sign * (hh * 60 + mm)
        }
    };
    Some(days * DAY_MS + h * 3_600_000 + mi * 60_000 + sec * 1000 + milli - offset_min * 60_000)
}

/// `hh:mm[:ss[.fff]][Z]` → milliseconds since midnight.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.strip_suffix(['Z', 'z']).unwrap_or(s);
    let (hms, frac) = match s.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (s, None),
    };
    let mut parts = hms.split(':');
    let h = digits(parts.next()?, 2)?;
    let mi = digits(parts.next()?, 2)?;
    let sec = parts.next().map_or(Some(0), |p| digits(p, 2))?;
    if parts.next().is_some() || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let milli = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 3 && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{f:0<3}").parse().ok()?
        }
        Some(_) => return None,
    };
    Some(h * 3_600_000 + mi * 60_000 + sec * 1000 + milli)
}

/// `09:30:00.000Z`
pub fn format_time(ms: i64) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}Z",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(format_datetime(0), "1970-01-01T00:00:00.000+0000");
        let t = parse_datetime("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(format_datetime(t), "2026-01-01T00:00:00.000+0000");
        assert_eq!(format_datetime(t + 1_234), "2026-01-01T00:00:01.234+0000");
        assert_eq!(parse_datetime("2026-01-01T00:00:00.000+0000"), Some(t));
        assert_eq!(parse_datetime("2026-01-01T02:00:00+02:00"), Some(t));
        assert_eq!(parse_datetime("2025-12-31T19:00:00.5-05:00"), Some(t + 500));
        assert_eq!(
            parse_date("2024-02-29").map(format_date).as_deref(),
            Some("2024-02-29")
        );
        for bad in [
            "2026-01-01",
            "2026-01-01T00:00:00",
            "2026-13-01T00:00:00Z",
            "x",
            "2026-01-01T00:00:00 00:00",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(
            parse_time("09:30:05.5Z").map(format_time).as_deref(),
            Some("09:30:05.500Z")
        );
        assert_eq!(
            parse_time("23:59").map(format_time).as_deref(),
            Some("23:59:00.000Z")
        );
        assert_eq!(parse_time("9:30"), None);
        assert_eq!(parse_date("2026-1-01"), None);
    }
}
