//! `GET /v1/account`: the account the presented key (or OAuth access token)
//! belongs to. Clients learn from it which account a key reaches; two keys
//! reach the same account only when their ids are equal.

use serde_json::{json, Value};

use super::StripeState;
use crate::ids;

/// `acct_` + 14 alphanumerics, a pure function of the account key: stable
/// across runs and resets, different for different keys.
pub fn id(key: &str) -> String {
    ids::object_id("acct", ids::salt(key, "acct"), 0)
}

/// The fields of the spec's `account` schema a standard account has; the
/// onboarding ones (requirements, settings, external accounts) are left out.
pub fn object(state: &StripeState) -> Value {
    json!({
        "id": state.account_id,
        "object": "account",
        "business_profile": {
            "mcc": null,
            "name": null,
            "product_description": null,
            "support_address": null,
            "support_email": null,
            "support_phone": null,
            "support_url": null,
            "url": null,
        },
        "business_type": null,
        "capabilities": {},
        "charges_enabled": true,
        "country": "US",
        "created": state.created,
        "default_currency": "usd",
        "details_submitted": true,
        "email": null,
        "metadata": {},
        "payouts_enabled": true,
        "type": "standard",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_per_key_and_differ_between_keys() {
        let a = id("sk_test_a");
        assert_eq!(a, id("sk_test_a"));
        assert!(a.starts_with("acct_") && a.len() == 5 + 14, "{a}");
        assert_ne!(a, id("sk_test_b"));
    }
}
