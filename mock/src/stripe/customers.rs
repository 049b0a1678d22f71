//! Customers: the object's shape (the spec's `customer` schema), the params
//! `POST /v1/customers[/{id}]` accepts, the list's `email` filter, and seeding.

use serde_json::{json, Value};

use super::errors::ApiError;
use super::params::{self, nested, Params};
use super::store::{Filter, Object};
use super::{events, objects, RequestInfo, Resource, StripeState};
use crate::ids;

pub static CUSTOMERS: Resource = Resource {
    object: "customer",
    plural: "customers",
    prefix: "cus",
    event_prefix: "customer",
    template,
    create: apply,
    update: apply,
    after_create: None,
    delete: Some(objects::remove),
    list_params: &["email", "test_clock"],
    list_filter,
    seed: Some(seed),
};

const PARAMS: &[&str] = &[
    "address",
    "balance",
    "description",
    "email",
    "expand",
    "invoice_prefix",
    "invoice_settings",
    "metadata",
    "name",
    "next_invoice_sequence",
    "phone",
    "preferred_locales",
    "shipping",
    "tax_exempt",
];
const ADDRESS_FIELDS: [&str; 6] = ["city", "country", "line1", "line2", "postal_code", "state"];
const EMAIL_MAX: usize = 512;
const NAME_MAX: usize = 256;
const DESCRIPTION_MAX: usize = 350;
const PHONE_MAX: usize = 20;

fn template(id: &str, created: i64, livemode: bool) -> Object {
    let v = json!({
        "id": id,
        "object": "customer",
        "address": null,
        "balance": 0,
        "created": created,
        "currency": null,
        "default_source": null,
        "delinquent": false,
        "description": null,
        "discount": null,
        "email": null,
        "invoice_prefix": ids::invoice_prefix(id),
        "invoice_settings": {"custom_fields": null, "default_payment_method": null, "footer": null},
        "livemode": livemode,
        "metadata": {},
        "name": null,
        "next_invoice_sequence": 1,
        "phone": null,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null,
    });
    v.as_object().expect("an object").clone()
}

/// Create and update take the same params.
fn apply(_state: &StripeState, customer: &mut Object, p: &Params) -> Result<(), ApiError> {
    params::check_known(p, PARAMS, None)?;
    for (key, v) in p {
        let value = match key.as_str() {
            "email" => json!(email(v)?),
            "name" => json!(params::string(v, key, NAME_MAX)?),
            "description" => json!(params::string(v, key, DESCRIPTION_MAX)?),
            "phone" => json!(params::string(v, key, PHONE_MAX)?),
            "balance" => json!(params::integer(v, key)?),
            "next_invoice_sequence" => json!(params::integer_at_least(v, key, 1)?),
            "preferred_locales" => json!(locales(v)?),
            "address" => address(v, key)?,
            "shipping" => shipping(v)?,
            "tax_exempt" => {
                json!(params::one_of(v, key, &["none", "exempt", "reverse"])?
                    .unwrap_or_else(|| "none".into()))
            }
            "invoice_prefix" => json!(invoice_prefix(v)?),
            "invoice_settings" => invoice_settings(&customer[key], v)?,
            "metadata" => {
                params::apply_metadata(customer, v)?;
                continue;
            }
            "expand" => continue,
            other => unreachable!("check_known let {other} through"),
        };
        customer.insert(key.clone(), value);
    }
    Ok(())
}

/// `something@something.something`, at most 512 characters, no spaces.
pub fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.chars().count() <= EMAIL_MAX
        && !s.chars().any(char::is_whitespace)
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
}

fn email(v: &Value) -> Result<Option<String>, ApiError> {
    match params::string(v, "email", usize::MAX)? {
        Some(s) if !valid_email(&s) => {
            Err(ApiError::invalid(format!("Invalid email address: {s}"))
                .code("email_invalid")
                .param("email"))
        }
        other => Ok(other),
    }
}

fn locales(v: &Value) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    for (i, item) in params::list(v, "preferred_locales")?
        .into_iter()
        .enumerate()
    {
        if let Some(s) = params::string(item, &format!("preferred_locales[{i}]"), params::TEXT_MAX)?
        {
            out.push(s);
        }
    }
    Ok(out)
}

/// A full address (absent lines are null), or null for "".
fn address(v: &Value, param: &str) -> Result<Value, ApiError> {
    let Some(fields) = params::hash(v, param)? else {
        return Ok(Value::Null);
    };
    params::check_known(fields, &ADDRESS_FIELDS, Some(param))?;
    let mut out = Object::new();
    for field in ADDRESS_FIELDS {
        let value = match fields.get(field) {
            Some(v) => params::string(v, &nested(Some(param), field), params::TEXT_MAX)?,
            None => None,
        };
        out.insert(field.into(), json!(value));
    }
    Ok(Value::Object(out))
}

/// Shipping needs a name and an address; "" unsets it.
fn shipping(v: &Value) -> Result<Value, ApiError> {
    let Some(fields) = params::hash(v, "shipping")? else {
        return Ok(Value::Null);
    };
    params::check_known(fields, &["address", "name", "phone"], Some("shipping"))?;
    let text = |field: &str| match fields.get(field) {
        Some(v) => params::string(v, &nested(Some("shipping"), field), params::TEXT_MAX),
        None => Ok(None),
    };
    let name = text("name")?.ok_or_else(|| ApiError::missing_param("shipping[name]"))?;
    let phone = text("phone")?;
    let address = match fields.get("address") {
        Some(v) => address(v, "shipping[address]")?,
        None => Value::Null,
    };
    if address.is_null() {
        return Err(ApiError::missing_param("shipping[address]"));
    }
    Ok(json!({
        "address": address,
        "carrier": null,
        "name": name,
        "phone": phone,
        "tracking_number": null,
    }))
}

fn invoice_prefix(v: &Value) -> Result<String, ApiError> {
    let s = params::string(v, "invoice_prefix", params::TEXT_MAX)?.unwrap_or_default();
    let well_formed = (3..=12).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !well_formed {
        return Err(ApiError::invalid(format!(
            "Invalid invoice_prefix: '{s}'. It must be 3-12 uppercase letters or numbers."
        ))
        .param("invoice_prefix"));
    }
    Ok(s)
}

/// Only `footer` can be set here; other invoice settings keep their values.
fn invoice_settings(current: &Value, v: &Value) -> Result<Value, ApiError> {
    let mut settings = current.clone();
    if let Some(fields) = params::hash(v, "invoice_settings")? {
        params::check_known(fields, &["footer"], Some("invoice_settings"))?;
        if let Some(footer) = fields.get("footer") {
            settings["footer"] = json!(params::string(
                footer,
                "invoice_settings[footer]",
                params::TEXT_MAX
            )?);
        }
    }
    Ok(settings)
}

/// `email` (exact, case-sensitive) and `test_clock`.
fn list_filter(q: &Params) -> Result<Filter, ApiError> {
    let email = match q.get("email") {
        Some(v) => params::string(v, "email", EMAIL_MAX)?,
        None => None,
    };
    let clock = match q.get("test_clock") {
        Some(v) => params::string(v, "test_clock", params::TEXT_MAX)?,
        None => None,
    };
    if email.is_none() && clock.is_none() {
        return Ok(Filter::default());
    }
    Ok(Filter {
        needle: email
            .as_ref()
            .map(|e| format!("\"email\":{}", Value::from(e.as_str()))),
        predicate: Some(Box::new(move |c| {
            email.as_ref().is_none_or(|e| c["email"] == e.as_str())
                && clock.as_ref().is_none_or(|t| c["test_clock"] == t.as_str())
        })),
    })
}

/// `count` customers named `Customer <i>` / `customer<i>@example.com`, created
/// one second apart ending now.
fn seed(state: &mut StripeState, count: u64, with_events: bool, now: i64) {
    let first = state.store(&CUSTOMERS).minted() + 1;
    for j in 0..count {
        seed_one(state, first + j, now - (count - 1 - j) as i64, with_events);
    }
}

/// Customer number `i`, written straight in the store's sparse form (a
/// million take about a second); returns its id.
pub fn seed_one(state: &mut StripeState, i: u64, created: i64, with_events: bool) -> String {
    let store = state.store_mut(&CUSTOMERS);
    let id = store.next_id();
    let json = format!(
        r#"{{"created":{created},"email":"customer{i}@example.com","id":"{id}","invoice_prefix":"{}","name":"Customer {i}"}}"#,
        ids::invoice_prefix(&id)
    );
    store.insert_sparse(&id, created, json.into_boxed_str());
    if with_events {
        let customer = store.get(&id).expect("just inserted");
        let automatic = RequestInfo::default();
        events::record(
            state,
            "customer.created",
            &customer,
            None,
            &automatic,
            created,
        );
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stripe::form;
    use crate::stripe::objects;

    fn new_customer() -> Object {
        template("cus_test", 1, false)
    }

    fn apply_form(c: &mut Object, body: &str) -> Result<(), ApiError> {
        apply(
            &StripeState::new("sk_test_customers"),
            c,
            &form::decode(body).unwrap(),
        )
    }

    #[test]
    fn template_matches_the_spec_fields() {
        let c = new_customer();
        let keys: Vec<&str> = c.keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 22);
        for k in [
            "id",
            "object",
            "address",
            "balance",
            "created",
            "invoice_settings",
            "tax_exempt",
            "test_clock",
        ] {
            assert!(keys.contains(&k), "{k}");
        }
        assert_eq!(c["invoice_prefix"].as_str().unwrap().len(), 8);
    }

    #[test]
    fn form_params_apply() {
        let mut c = new_customer();
        apply_form(
            &mut c,
            "email=jane%40example.com&name=Jane+Doe&metadata[order_id]=42&balance=-500\
             &preferred_locales[]=fr&preferred_locales[]=en&address[city]=Paris&address[country]=FR\
             &shipping[name]=Jane&shipping[address][line1]=1+Rue&tax_exempt=exempt&invoice_prefix=JANE1\
             &expand[]=default_source&invoice_settings[footer]=Thanks",
        )
        .unwrap();
        assert_eq!(c["email"], "jane@example.com");
        assert_eq!(c["name"], "Jane Doe");
        assert_eq!(c["metadata"], json!({"order_id":"42"}));
        assert_eq!(c["balance"], -500);
        assert_eq!(c["preferred_locales"], json!(["fr", "en"]));
        assert_eq!(
            c["address"],
            json!({"city":"Paris","country":"FR","line1":null,"line2":null,"postal_code":null,"state":null})
        );
        assert_eq!(c["shipping"]["name"], "Jane");
        assert_eq!(c["shipping"]["address"]["line1"], "1 Rue");
        assert_eq!(c["tax_exempt"], "exempt");
        assert_eq!(c["invoice_prefix"], "JANE1");
        assert_eq!(c["invoice_settings"]["footer"], "Thanks");
    }

    #[test]
    fn empty_values_unset() {
        let mut c = new_customer();
        apply_form(
            &mut c,
            "email=a%40b.co&metadata[a]=1&metadata[b]=2&address[city]=X",
        )
        .unwrap();
        apply_form(&mut c, "email=&metadata[a]=&address=").unwrap();
        assert_eq!(
            (c["email"].clone(), c["address"].clone()),
            (Value::Null, Value::Null)
        );
        assert_eq!(c["metadata"], json!({"b":"2"}));
        apply_form(&mut c, "metadata=").unwrap();
        assert_eq!(c["metadata"], json!({}));
    }

    #[test]
    fn validation_errors() {
        let cases = [
            ("foo=1", Some("parameter_unknown"), "foo"),
            (
                "address[planet]=Mars",
                Some("parameter_unknown"),
                "address[planet]",
            ),
            ("email=not-an-email", Some("email_invalid"), "email"),
            ("email=a%40b", Some("email_invalid"), "email"),
            (
                "balance=12abc",
                Some("parameter_invalid_integer"),
                "balance",
            ),
            (
                "shipping[phone]=1",
                Some("parameter_missing"),
                "shipping[name]",
            ),
            (
                "shipping[name]=x",
                Some("parameter_missing"),
                "shipping[address]",
            ),
            ("tax_exempt=maybe", None, "tax_exempt"),
            ("invoice_prefix=ab", None, "invoice_prefix"),
        ];
        for (body, code, param) in cases {
            let e = apply_form(&mut new_customer(), body).unwrap_err();
            assert_eq!(
                (e.status, e.code, e.param.as_deref()),
                (400, code, Some(param)),
                "{body}"
            );
        }
        let e = apply_form(&mut new_customer(), "email=x").unwrap_err();
        assert_eq!(e.message, "Invalid email address: x");
        let long = |n: usize| "x".repeat(n);
        for (field, max) in [("name", 256), ("description", 350), ("phone", 20)] {
            assert!(apply_form(&mut new_customer(), &format!("{field}={}", long(max))).is_ok());
            let e =
                apply_form(&mut new_customer(), &format!("{field}={}", long(max + 1))).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(field));
        }
        let email_of_len = |n: usize| format!("{}@example.com", long(n - 12));
        assert!(apply_form(&mut new_customer(), &format!("email={}", email_of_len(512))).is_ok());
        assert!(apply_form(&mut new_customer(), &format!("email={}", email_of_len(513))).is_err());
    }

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@sub.example.org"] {
            assert!(valid_email(ok), "{ok}");
        }
        for bad in [
            "", "a", "a@b", "@b.co", "a@.co", "a@b.", "a b@c.de", "a@b@c.de",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn list_pagination_and_email_filter() {
        let mut s = StripeState::new("sk_test_customers");
        seed(&mut s, 30, false, 1_000_000);
        let q = |v: Value| v.as_object().unwrap().clone();
        let names = |v: &Value| -> Vec<String> {
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect()
        };
        let first = objects::list(&s, &CUSTOMERS, &q(json!({"limit":"3"}))).unwrap();
        assert_eq!(names(&first), ["Customer 30", "Customer 29", "Customer 28"]);
        assert_eq!(first["has_more"], true);
        assert_eq!(first["url"], "/v1/customers");
        let last_id = first["data"][2]["id"].as_str().unwrap();
        let next = objects::list(
            &s,
            &CUSTOMERS,
            &q(json!({"limit":"2","starting_after": last_id})),
        )
        .unwrap();
        assert_eq!(names(&next), ["Customer 27", "Customer 26"]);
        let before = objects::list(
            &s,
            &CUSTOMERS,
            &q(json!({"limit":"2","ending_before": last_id})),
        )
        .unwrap();
        assert_eq!(names(&before), ["Customer 30", "Customer 29"]);
        assert_eq!(before["has_more"], false);
        let by_email =
            objects::list(&s, &CUSTOMERS, &q(json!({"email":"customer7@example.com"}))).unwrap();
        assert_eq!(names(&by_email), ["Customer 7"]);
        let by_created =
            objects::list(&s, &CUSTOMERS, &q(json!({"created": {"lte": "999975"}}))).unwrap();
        // Customer i was created at now - 30 + i.
        assert_eq!(names(&by_created)[0], "Customer 5");
        assert!(s.events.is_empty());
    }

    #[test]
    fn a_list_written_from_the_stored_text_is_the_list_written_from_its_objects() {
        let mut s = StripeState::new("sk_test_customers");
        seed(&mut s, 5, false, 1_000);
        let create = |s: &mut StripeState, body: &str| {
            let params = form::decode(body).unwrap();
            objects::create(s, &CUSTOMERS, &params, 2_000, &RequestInfo::default()).unwrap();
        };
        create(
            &mut s,
            "name=Zo%C3%AB+%22Q%22+%5C&email=zoe%40example.com&metadata[b]=2&metadata[a]=%E2%9C%93",
        );
        create(&mut s, "description=multi%0Aline&address[city]=Paris&address[line1]=1+Rue&preferred_locales[]=fr&preferred_locales[]=en");
        create(&mut s, "balance=-1250&phone=%2B33+1&tax_exempt=reverse");
        for query in [
            json!({"limit": "100"}),
            json!({"limit": "2"}),
            json!({"email": "zoe@example.com"}),
        ] {
            let query = query.as_object().unwrap().clone();
            let objects = objects::list(&s, &CUSTOMERS, &query).unwrap();
            let text = objects::list_text(&s, &CUSTOMERS, &query).unwrap();
            assert_eq!(text, crate::http::json_text(&objects), "{query:?}");
        }
        let all =
            objects::list(&s, &CUSTOMERS, json!({"limit": "100"}).as_object().unwrap()).unwrap();
        assert_eq!(all["data"].as_array().unwrap().len(), 8);
        // (Newest first: the three created last, in reverse.)
        assert_eq!(all["data"][1]["address"]["city"], "Paris");
        assert_eq!(all["data"][2]["metadata"]["a"], "✓");
    }

    #[test]
    fn seeding_with_events_and_numbering_continues() {
        let mut s = StripeState::new("sk_test_customers");
        seed(&mut s, 2, true, 100);
        seed(&mut s, 1, false, 200);
        assert_eq!(s.events.len(), 2);
        let all = objects::all_by_id(&s, &CUSTOMERS);
        let mut names: Vec<&str> = all.iter().map(|c| c["name"].as_str().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["Customer 1", "Customer 2", "Customer 3"]);
        let c1 = all.iter().find(|c| c["name"] == "Customer 1").unwrap();
        assert_eq!(
            (c1["created"].clone(), c1["email"].clone()),
            (json!(99), json!("customer1@example.com"))
        );
        assert_eq!(c1["object"], "customer");
        assert_eq!(c1["metadata"], json!({}));
    }
}
