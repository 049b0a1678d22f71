//! Object ids that look random but are a pure function of (account key, id
//! prefix, counter): the same sequence of calls gives the same ids in every run,
//! and two accounts never share ids by accident.

use std::sync::atomic::{AtomicU64, Ordering};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE36: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// FNV-1a: stable across runs and platforms (unlike std's RandomState).
pub fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The splitmix64 finalizer, a bijection on u64.
pub fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The salt for one account's ids of one prefix.
pub fn salt(account_key: &str, prefix: &str) -> u64 {
    mix(fnv1a(account_key.as_bytes()) ^ fnv1a(prefix.as_bytes()).rotate_left(17))
}

/// `<prefix>_` + 14 base62 characters. The last 11 encode `mix(n ^ salt)` in
/// full, so ids are unique per salt; the first 3 only make them look random.
pub fn object_id(prefix: &str, salt: u64, n: u64) -> String {
    let unique = mix(n ^ salt);
    let mut decoration = mix(unique ^ 0x9e37_79b9_7f4a_7c15);
    let mut out = String::with_capacity(prefix.len() + 15);
    out.push_str(prefix);
    out.push('_');
    for _ in 0..3 {
        out.push(BASE62[(decoration % 62) as usize] as char);
        decoration /= 62;
    }
    let mut rest = unique;
    for _ in 0..11 {
        out.push(BASE62[(rest % 62) as usize] as char);
        rest /= 62;
    }
    out
}

/// 8 uppercase letters or digits derived from an id (a customer's invoice_prefix).
pub fn invoice_prefix(id: &str) -> String {
    let mut h = mix(fnv1a(id.as_bytes()));
    (0..8)
        .map(|_| {
            let c = BASE36[(h % 36) as usize] as char;
            h /= 36;
            c
        })
        .collect()
}

/// `req_…` ids, one sequence for the whole server.
#[derive(Default)]
pub struct RequestIds(AtomicU64);

impl RequestIds {
    pub fn next(&self) -> String {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        object_id("req", 0x0005_eed0_f5e9_u64, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_stable_unique_and_shaped() {
        let s = salt("sk_test_abc", "cus");
        let a = object_id("cus", s, 0);
        assert_eq!(a, object_id("cus", s, 0));
        assert_eq!(a.len(), 4 + 14);
        assert!(a[4..].chars().all(|c| c.is_ascii_alphanumeric()));
        let many: HashSet<String> = (0..100_000).map(|n| object_id("cus", s, n)).collect();
        assert_eq!(many.len(), 100_000);
        assert_ne!(a, object_id("cus", salt("sk_test_other", "cus"), 0));
    }

    #[test]
    fn invoice_prefix_is_8_uppercase_alnum() {
        let p = invoice_prefix("cus_123");
        assert_eq!(p.len(), 8);
        assert!(p
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
    }

    #[test]
    fn request_ids_count_up() {
        let ids = RequestIds::default();
        let (a, b) = (ids.next(), ids.next());
        assert_ne!(a, b);
        assert!(a.starts_with("req_") && a.len() == 18);
    }
}
