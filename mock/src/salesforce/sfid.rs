//! 18-character record ids: a 3-character key prefix (`001` Account, `003`
//! Contact, `00Q` Lead, `006` Opportunity), a 2-character pod, `0`, a
//! 9-character base62 counter (15 case-sensitive characters), then the
//! 3-character case-insensitive checksum Salesforce appends. The pod and the
//! counter's starting point come from the account key, so ids are
//! deterministic per account and differ between accounts.

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SUFFIX: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// The checksum of a 15-character id: for each 5-character chunk, a bit per
/// uppercase letter (first character = lowest bit), as one of 32 characters.
pub fn checksum(id15: &str) -> String {
    id15.as_bytes()
        .chunks(5)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, b)| b.is_ascii_uppercase())
                .fold(0usize, |acc, (i, _)| acc | (1 << i));
            SUFFIX[bits] as char
        })
        .collect()
}

/// The id for counter `n` of one account and prefix.
pub fn make(prefix: &str, salt: u64, n: u64) -> String {
    let pod = [
        BASE62[(salt % 62) as usize],
        BASE62[(salt / 62 % 62) as usize],
    ];
    // 62^9 ≈ 1.35e16; start somewhere per account, leave room to count up.
    let mut value = (salt >> 12) % 10_000_000_000_000 + n;
    let mut body = [b'0'; 9];
    for slot in body.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    let mut id = String::with_capacity(18);
    id.push_str(prefix);
    id.push(pod[0] as char);
    id.push(pod[1] as char);
    id.push('0');
    id.push_str(std::str::from_utf8(&body).expect("ASCII"));
    let sum = checksum(&id);
    id.push_str(&sum);
    id
}

/// A 15- or 18-character id in its 18-character form; None if it isn't
/// shaped like an id (or an 18-character one's checksum doesn't match its
/// case-insensitively).
pub fn normalize(id: &str) -> Option<String> {
    if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    match id.len() {
        15 => Some(format!("{id}{}", checksum(id))),
        18 => {
            let sum = checksum(&id[..15]);
            id[15..]
                .eq_ignore_ascii_case(&sum)
                .then(|| format!("{}{sum}", &id[..15]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn checksum_matches_salesforce() {
        // A well-known example pair (15 → 18).
        assert_eq!(checksum("001A0000006Vm9r"), "IAC");
        assert_eq!(
            normalize("001A0000006Vm9r").as_deref(),
            Some("001A0000006Vm9rIAC")
        );
        assert_eq!(
            normalize("001A0000006Vm9riac").as_deref(),
            Some("001A0000006Vm9rIAC")
        );
        assert_eq!(normalize("001A0000006Vm9rXXX"), None);
        assert_eq!(normalize("bad-id"), None);
    }

    #[test]
    fn ids_are_shaped_unique_and_deterministic() {
        let a = make("003", 12345, 0);
        assert_eq!(a.len(), 18);
        assert!(a.starts_with("003"));
        assert_eq!(normalize(&a).as_deref(), Some(a.as_str()));
        assert_eq!(a, make("003", 12345, 0));
        let many: HashSet<String> = (0..100_000).map(|n| make("003", 99, n)).collect();
        assert_eq!(many.len(), 100_000);
        assert_ne!(make("003", 1, 0), make("003", 2, 0));
    }
}
