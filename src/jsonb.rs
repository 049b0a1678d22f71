//! Postgres's binary `jsonb`, written from serde_json values. The sync
//! encodes a page's rows in this form off the backend's thread
//! (`sync/prepare.rs`), so the backend applies them without parsing JSON
//! text, which was a quarter of a backfill's time.
//!
//! The layout is the one Postgres keeps on disk (utils/jsonb.h and
//! jsonb_util.c; numeric.c for numbers). pg_upgrade keeps jsonb as it is,
//! so it cannot change between versions. Encoding writes exactly what
//! `jsonb_in` makes of the same JSON text: a #[pg_test] compares the two
//! byte for byte on random documents. What `jsonb_in` would refuse, or
//! what is too large, is not encoded (`Unencodable`); the caller then
//! sends the text and Postgres says what is wrong.

use serde_json::{Map, Value};
use std::cmp::Ordering;

// utils/jsonb.h
const JB_CMASK: usize = 0x0FFF_FFFF;
const JB_FOBJECT: u32 = 0x2000_0000;
const JB_FARRAY: u32 = 0x4000_0000;
const JENTRY_OFFLENMASK: u32 = 0x0FFF_FFFF;
const JENTRY_TYPEMASK: u32 = 0x7000_0000;
const JENTRY_HAS_OFF: u32 = 0x8000_0000;
const JENTRY_ISNUMERIC: u32 = 0x1000_0000;
const JENTRY_ISBOOL_FALSE: u32 = 0x2000_0000;
const JENTRY_ISBOOL_TRUE: u32 = 0x3000_0000;
const JENTRY_ISNULL: u32 = 0x4000_0000;
const JENTRY_ISCONTAINER: u32 = 0x5000_0000;
const JB_OFFSET_STRIDE: usize = 32;

// utils/numeric.c
const DEC_DIGITS: i32 = 4;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_SHORT: u16 = 0x8000;
const NUMERIC_SHORT_SIGN_MASK: u16 = 0x2000;
const NUMERIC_SHORT_DSCALE_SHIFT: u16 = 7;
const NUMERIC_SHORT_DSCALE_MAX: i32 = 63;
const NUMERIC_SHORT_WEIGHT_SIGN_MASK: u16 = 0x0040;
const NUMERIC_SHORT_WEIGHT_MASK: u16 = 0x003F;
const NUMERIC_SHORT_WEIGHT_MAX: i32 = 63;
const NUMERIC_SHORT_WEIGHT_MIN: i32 = -64;
const NUMERIC_DSCALE_MASK: i32 = 0x3FFF;
/// numeric_in refuses exponents beyond this (NUMERIC_MAX_PRECISION).
const NUMERIC_MAX_EXPONENT: i32 = 1000;

/// The largest varlena (a 4-byte header holds 30 bits of length).
const MAX_VARLENA: usize = 0x3FFF_FFFF;

/// Why a value is sent as text instead.
#[derive(Debug, PartialEq, Eq)]
pub struct Unencodable(pub &'static str);

type Encoded<T> = Result<T, Unencodable>;

/// A jsonb datum being written: a varlena whose header `finish` fills in.
pub struct Encoder {
    buf: Vec<u8>,
    /// Scratch space for a number's JSON text.
    number: Vec<u8>,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder { buf: vec![0; 4], number: Vec::new() }
    }
}

impl Encoder {
    /// The whole datum, varlena header included. `root` is the JEntry the
    /// top-level container returned (Postgres does not store it).
    pub fn finish(mut self, root: u32) -> Encoded<Vec<u8>> {
        if root & JENTRY_TYPEMASK != JENTRY_ISCONTAINER {
            // A scalar at the top needs the raw-scalar array wrapper; the
            // sync never writes one.
            return Err(Unencodable("a jsonb datum is an array or an object"));
        }
        if self.buf.len() > MAX_VARLENA {
            return Err(Unencodable("larger than a varlena can be"));
        }
        let header = varlena_header(self.buf.len());
        self.buf[..4].copy_from_slice(&header);
        Ok(self.buf)
    }

    /// Writes any JSON value; returns its JEntry.
    pub fn value(&mut self, value: &Value) -> Encoded<u32> {
        match value {
            Value::Null => Ok(JENTRY_ISNULL),
            Value::Bool(false) => Ok(JENTRY_ISBOOL_FALSE),
            Value::Bool(true) => Ok(JENTRY_ISBOOL_TRUE),
            Value::String(text) => self.string(text),
            Value::Number(number) => {
                let mut text = std::mem::take(&mut self.number);
                text.clear();
                // The same text the sync would send: what Postgres parses.
                let _ = serde_json::to_writer(&mut text, number);
                let entry = self.numeric(&text);
                self.number = text;
                entry
            }
            Value::Array(items) => self.array(items, |encoder, item| encoder.value(item)),
            Value::Object(map) => self.map(map),
        }
    }

    fn map(&mut self, map: &Map<String, Value>) -> Encoded<u32> {
        self.object(map.iter().map(|(key, value)| (key.as_str(), value)).collect())
    }

    /// Writes an array of `items`, each by `write`; returns its JEntry.
    pub fn array<T>(&mut self, items: &[T], mut write: impl FnMut(&mut Self, &T) -> Encoded<u32>) -> Encoded<u32> {
        let base = self.buf.len();
        self.pad();
        self.put_u32(count(items.len())? | JB_FARRAY);
        let entries = self.reserve(items.len());
        let mut total = 0;
        for (i, item) in items.iter().enumerate() {
            let entry = write(self, item)?;
            total = self.entry(entries, i, entry, total, i % JB_OFFSET_STRIDE == 0)?;
        }
        self.container_entry(base)
    }

    /// Writes an object of these pairs (a key given twice keeps its last
    /// value, as in `jsonb_in`); returns its JEntry.
    pub fn object(&mut self, mut pairs: Vec<(&str, &Value)>) -> Encoded<u32> {
        // Keys are kept shortest first, then bytewise. A stable sort keeps
        // repeated keys in their order, so the last of each run wins.
        pairs.sort_by(|a, b| key_order(a.0, b.0));
        let mut unique: Vec<(&str, &Value)> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match unique.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => unique.push(pair),
            }
        }
        let n = unique.len();
        let base = self.buf.len();
        self.pad();
        self.put_u32(count(n)? | JB_FOBJECT);
        let entries = self.reserve(2 * n);
        let mut total = 0;
        for (i, (key, _)) in unique.iter().enumerate() {
            let entry = self.string(key)?;
            total = self.entry(entries, i, entry, total, i % JB_OFFSET_STRIDE == 0)?;
        }
        for (i, (_, value)) in unique.iter().enumerate() {
            let entry = self.value(value)?;
            total = self.entry(entries, n + i, entry, total, (i + n) % JB_OFFSET_STRIDE == 0)?;
        }
        self.container_entry(base)
    }

    fn string(&mut self, text: &str) -> Encoded<u32> {
        // jsonb_in refuses \u0000: no text value may hold NUL.
        if text.as_bytes().contains(&0) {
            return Err(Unencodable("a string holds NUL"));
        }
        self.buf.extend_from_slice(text.as_bytes());
        length(text.len())
    }

    /// A number as `numeric_in` stores its text, aligned to 4 bytes.
    fn numeric(&mut self, text: &[u8]) -> Encoded<u32> {
        let numeric = numeric(text)?;
        let pad = self.pad();
        self.buf.extend_from_slice(&numeric);
        Ok(JENTRY_ISNUMERIC | length(pad + numeric.len())?)
    }

    /// Stores the JEntry of child `index` (the running end offset instead
    /// of the length every `JB_OFFSET_STRIDE`th child); the new end offset.
    fn entry(&mut self, entries: usize, index: usize, entry: u32, total: u32, as_offset: bool) -> Encoded<u32> {
        let total = total + (entry & JENTRY_OFFLENMASK);
        if total > JENTRY_OFFLENMASK {
            return Err(Unencodable("a container's elements are larger than jsonb allows"));
        }
        let entry = if as_offset { (entry & JENTRY_TYPEMASK) | total | JENTRY_HAS_OFF } else { entry };
        let at = entries + 4 * index;
        self.buf[at..at + 4].copy_from_slice(&entry.to_ne_bytes());
        Ok(total)
    }

    /// The JEntry of the container begun at `base` (its padding counts as
    /// its own).
    fn container_entry(&self, base: usize) -> Encoded<u32> {
        Ok(JENTRY_ISCONTAINER | length(self.buf.len() - base)?)
    }

    /// Zero bytes up to the next multiple of 4 from the datum's start; how many.
    fn pad(&mut self) -> usize {
        let pad = (4 - self.buf.len() % 4) % 4;
        self.buf.resize(self.buf.len() + pad, 0);
        pad
    }

    fn put_u32(&mut self, value: u32) {
        self.buf.extend_from_slice(&value.to_ne_bytes());
    }

    /// Room for `n` JEntries; where they start.
    fn reserve(&mut self, n: usize) -> usize {
        let at = self.buf.len();
        self.buf.resize(at + 4 * n, 0);
        at
    }
}

/// jsonb's order of object keys (lengthCompareJsonbString).
fn key_order(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

fn count(n: usize) -> Encoded<u32> {
    if n > JB_CMASK {
        return Err(Unencodable("more elements than jsonb allows"));
    }
    Ok(n as u32)
}

fn length(n: usize) -> Encoded<u32> {
    if n > JENTRY_OFFLENMASK as usize {
        return Err(Unencodable("a value larger than jsonb allows"));
    }
    Ok(n as u32)
}

/// A 4-byte varlena header (SET_VARSIZE) for `size` bytes in all.
fn varlena_header(size: usize) -> [u8; 4] {
    #[cfg(target_endian = "little")]
    let header = (size as u32) << 2;
    #[cfg(target_endian = "big")]
    let header = (size as u32) & 0x3FFF_FFFF;
    header.to_ne_bytes()
}

/// A numeric datum as `numeric_in` makes it of a JSON number's text
/// (set_var_from_str, then make_result): a varlena of base-10000 digits
/// with the number's weight and display scale.
fn numeric(text: &[u8]) -> Encoded<Vec<u8>> {
    let bad = Unencodable("not a JSON number");
    let mut at = 0;
    let negative = text.first() == Some(&b'-');
    if negative {
        at += 1;
    }
    // Decimal digits, and the decimal weight of the first and the number
    // of digits after the point.
    let mut digits: Vec<u8> = Vec::with_capacity(text.len());
    let (mut dweight, mut dscale, mut have_point) = (-1i32, 0i32, false);
    while let Some(&c) = text.get(at) {
        match c {
            b'0'..=b'9' => {
                digits.push(c - b'0');
                if have_point {
                    dscale += 1;
                } else {
                    dweight += 1;
                }
            }
            b'.' if !have_point => have_point = true,
            _ => break,
        }
        at += 1;
    }
    if digits.is_empty() {
        return Err(bad);
    }
    if matches!(text.get(at), Some(b'e' | b'E')) {
        let exponent: i32 = std::str::from_utf8(&text[at + 1..])
            .ok()
            .and_then(|e| e.strip_prefix('+').unwrap_or(e).parse().ok())
            .ok_or(Unencodable("not a JSON number"))?;
        if !(-NUMERIC_MAX_EXPONENT..=NUMERIC_MAX_EXPONENT).contains(&exponent) {
            return Err(Unencodable("an exponent numeric does not take"));
        }
        dweight += exponent;
        dscale = (dscale - exponent).max(0);
        at = text.len();
    }
    if at != text.len() {
        return Err(bad);
    }
    // Base-10000 digits: `offset` zeroes go before the first decimal digit
    // so that the groups of four line up with the decimal point.
    let mut weight = if dweight >= 0 { (dweight + DEC_DIGITS) / DEC_DIGITS - 1 } else { -((-dweight - 1) / DEC_DIGITS + 1) };
    let offset = ((weight + 1) * DEC_DIGITS - (dweight + 1)) as usize;
    let mut padded = vec![0u8; offset];
    padded.extend_from_slice(&digits);
    padded.resize(padded.len().div_ceil(4) * 4, 0);
    let groups: Vec<i16> =
        padded.chunks(4).map(|g| g.iter().fold(0i16, |n, &d| n * 10 + i16::from(d))).collect();
    let first = groups.iter().position(|&g| g != 0);
    let last = groups.iter().rposition(|&g| g != 0);
    let (kept, negative) = match (first, last) {
        (Some(first), Some(last)) => {
            weight -= first as i32;
            (&groups[first..=last], negative)
        }
        // Zero: weight 0, never negative; its scale is kept.
        _ => {
            weight = 0;
            (&groups[..0], false)
        }
    };
    let mut out = Vec::with_capacity(8 + 2 * kept.len());
    out.extend_from_slice(&[0; 4]);
    let short = dscale <= NUMERIC_SHORT_DSCALE_MAX && (NUMERIC_SHORT_WEIGHT_MIN..=NUMERIC_SHORT_WEIGHT_MAX).contains(&weight);
    if short {
        let mut header = NUMERIC_SHORT | ((dscale as u16) << NUMERIC_SHORT_DSCALE_SHIFT) | (weight as u16 & NUMERIC_SHORT_WEIGHT_MASK);
        if negative {
            header |= NUMERIC_SHORT_SIGN_MASK;
        }
        if weight < 0 {
            header |= NUMERIC_SHORT_WEIGHT_SIGN_MASK;
        }
        out.extend_from_slice(&header.to_ne_bytes());
    } else {
        let weight = i16::try_from(weight).map_err(|_| Unencodable("a number numeric cannot hold"))?;
        if dscale > NUMERIC_DSCALE_MASK {
            return Err(Unencodable("a number numeric cannot hold"));
        }
        let sign_dscale = if negative { NUMERIC_NEG } else { 0 } | dscale as u16;
        out.extend_from_slice(&sign_dscale.to_ne_bytes());
        out.extend_from_slice(&weight.to_ne_bytes());
    }
    for group in kept {
        out.extend_from_slice(&group.to_ne_bytes());
    }
    let header = varlena_header(out.len());
    out[..4].copy_from_slice(&header);
    Ok(out)
}

/// A JSON value as a jsonb datum (an array or an object at the top).
#[cfg(any(test, feature = "pg_test"))]
pub fn encode(value: &Value) -> Encoded<Vec<u8>> {
    let mut encoder = Encoder::default();
    let root = encoder.value(value)?;
    encoder.finish(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    fn u16_at(bytes: &[u8], at: usize) -> u16 {
        u16::from_ne_bytes(bytes[at..at + 2].try_into().unwrap())
    }

    #[test]
    fn numbers_take_numeric_in_s_digits_weight_and_scale() {
        // 12345.678 = 1|2345.6780: weight 1, scale 3, short form.
        let n = numeric(b"12345.678").unwrap();
        assert_eq!(n.len(), 4 + 2 + 3 * 2);
        assert_eq!(u16_at(&n, 4), NUMERIC_SHORT | (3 << 7) | 1);
        assert_eq!([u16_at(&n, 6), u16_at(&n, 8), u16_at(&n, 10)], [1, 2345, 6780]);
        // -0.0001: weight -1, scale 4, negative.
        let n = numeric(b"-0.0001").unwrap();
        assert_eq!(u16_at(&n, 4), NUMERIC_SHORT | NUMERIC_SHORT_SIGN_MASK | (4 << 7) | 0x7F);
        assert_eq!(u16_at(&n, 6), 1);
        // Zero keeps its scale and loses its sign.
        let n = numeric(b"-0.00").unwrap();
        assert_eq!(n.len(), 6);
        assert_eq!(u16_at(&n, 4), NUMERIC_SHORT | (2 << 7));
        // 1e20: trailing zero groups dropped, weight 5.
        let n = numeric(b"1e20").unwrap();
        assert_eq!(n.len(), 8);
        assert_eq!((u16_at(&n, 4), u16_at(&n, 6)), (NUMERIC_SHORT | 5, 1));
        // A scale over 63 takes the long form.
        let n = numeric(b"1e-70").unwrap();
        assert_eq!(u16_at(&n, 4), 70);
        assert_eq!(u16_at(&n, 6) as i16, -18);
        for bad in [&b""[..], b"-", b"1e", b"1e5000", b"1.2.3", b"x"] {
            assert!(numeric(bad).is_err(), "{:?}", std::str::from_utf8(bad));
        }
    }

    #[test]
    fn objects_sort_keys_by_length_then_bytes_and_keep_a_repeated_key_s_last_value() {
        let (one, two) = (json!(1), json!(2));
        let mut encoder = Encoder::default();
        let root = encoder.object(vec![("bb", &one), ("a", &one), ("ab", &one), ("a", &two)]).unwrap();
        let datum = encoder.finish(root).unwrap();
        assert_eq!(u32_at(&datum, 4), 3 | JB_FOBJECT);
        let keys = &datum[4 + 4 + 6 * 4..][..5];
        assert_eq!(keys, b"aabbb");
        // The first value, a's, is 2: a numeric of one digit after padding.
        let values = 4 + 4 + 6 * 4 + 5 + 3;
        assert_eq!(u16_at(&datum, values + 6), 2);
    }

    #[test]
    fn every_32nd_entry_holds_an_end_offset() {
        let items: Vec<Value> = (0..40).map(|i| json!("x".repeat(i))).collect();
        let datum = encode(&Value::Array(items)).unwrap();
        assert_eq!(u32_at(&datum, 4), 40 | JB_FARRAY);
        let entry = |i: usize| u32_at(&datum, 8 + 4 * i);
        assert_eq!(entry(0), JENTRY_HAS_OFF);
        assert_eq!(entry(1), 1);
        assert_eq!(entry(32), JENTRY_HAS_OFF | (0..=32).sum::<u32>());
        assert_eq!(datum.len(), 8 + 4 * 40 + (0..40).sum::<usize>());
        assert_eq!(varlena_header(datum.len()), datum[..4]);
    }

    proptest::proptest! {
        #[test]
        fn any_json_is_encoded_without_panicking(value in crate::providers::properties::json_value()) {
            // (Whether the bytes are jsonb_in's: the #[pg_test] against Postgres.)
            if let Ok(datum) = encode(&Value::Array(vec![value])) {
                proptest::prop_assert_eq!(&varlena_header(datum.len())[..], &datum[..4]);
                proptest::prop_assert_eq!(u32_at(&datum, 4), 1 | JB_FARRAY);
            }
        }
    }

    #[test]
    fn what_jsonb_in_refuses_is_not_encoded() {
        assert!(encode(&json!(["a\u{0}b"])).is_err());
        assert!(encode(&json!({"a\u{0}": 1})).is_err());
        assert!(encode(&json!("scalar")).is_err());
    }
}
