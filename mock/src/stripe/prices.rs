//! Prices: the object's shape (the spec's `price` schema), create params
//! (`currency`, an existing `product`, `unit_amount`, `recurring`), the few
//! params an update may change, list filters, and seeding. Stripe has no
//! `DELETE /v1/prices/{id}`: a price is archived with `active=false`.

use serde_json::{json, Value};

use super::errors::ApiError;
use super::params::{self, nested, Params};
use super::products::{self, PRODUCTS};
use super::store::{Direction, Filter, Object, Window};
use super::{events, RequestInfo, Resource, StripeState};

pub static PRICES: Resource = Resource {
    object: "price",
    plural: "prices",
    prefix: "price",
    event_prefix: "price",
    template,
    create,
    update,
    after_create: None,
    delete: None,
    list_params: &["active", "currency", "product", "type"],
    list_filter,
    seed: Some(seed),
};

const CREATE_PARAMS: &[&str] = &[
    "active",
    "currency",
    "expand",
    "metadata",
    "nickname",
    "product",
    "recurring",
    "unit_amount",
];
/// What `POST /v1/prices/{id}` accepts: amount, currency, product and
/// recurrence are fixed once created (anything else is an unknown param).
const UPDATE_PARAMS: &[&str] = &["active", "expand", "metadata", "nickname"];
const RECURRING_PARAMS: &[&str] = &[
    "aggregate_usage",
    "interval",
    "interval_count",
    "usage_type",
];
const AGGREGATE_USAGES: &[&str] = &["last_during_period", "last_ever", "max", "sum"];
const INTERVALS: [&str; 4] = ["day", "week", "month", "year"];

fn template(id: &str, created: i64, livemode: bool) -> Object {
    let v = json!({
        "id": id,
        "object": "price",
        "active": true,
        "billing_scheme": "per_unit",
        "created": created,
        "currency": "usd",
        "livemode": livemode,
        "lookup_key": null,
        "metadata": {},
        "nickname": null,
        "product": "",
        "recurring": null,
        "tax_behavior": "unspecified",
        "tiers_mode": null,
        "transform_quantity": null,
        "type": "one_time",
        "unit_amount": null,
        "unit_amount_decimal": null,
    });
    v.as_object().expect("an object").clone()
}

fn create(state: &StripeState, price: &mut Object, p: &Params) -> Result<(), ApiError> {
    params::check_known(p, CREATE_PARAMS, None)?;
    let required = |name: &str| p.get(name).ok_or_else(|| ApiError::missing_param(name));
    let currency = currency(required("currency")?)?;
    let product = params::required_string(required("product")?, "product", params::TEXT_MAX)?;
    if state.store(&PRODUCTS).get(&product).is_none() {
        return Err(ApiError::no_such("product", &product, "product").status(400));
    }
    let unit_amount = params::integer_at_least(required("unit_amount")?, "unit_amount", 0)?;
    let recurring = match p.get("recurring") {
        Some(v) => recurring(v)?,
        None => Value::Null,
    };
    price.insert("currency".into(), json!(currency));
    price.insert("product".into(), json!(product));
    price.insert("unit_amount".into(), json!(unit_amount));
    price.insert("unit_amount_decimal".into(), json!(unit_amount.to_string()));
    let kind = if recurring.is_null() {
        "one_time"
    } else {
        "recurring"
    };
    price.insert("type".into(), json!(kind));
    price.insert("recurring".into(), recurring);
    apply_changeable(price, p)
}

fn update(_state: &StripeState, price: &mut Object, p: &Params) -> Result<(), ApiError> {
    params::check_known(p, UPDATE_PARAMS, None)?;
    apply_changeable(price, p)
}

/// The params create and update share; create has handled (or refused) the rest.
fn apply_changeable(price: &mut Object, p: &Params) -> Result<(), ApiError> {
    for (key, v) in p {
        match key.as_str() {
            "active" => {
                price.insert(key.clone(), json!(params::boolean(v, key)?));
            }
            "nickname" => {
                price.insert(
                    key.clone(),
                    json!(params::string(v, key, params::TEXT_MAX)?),
                );
            }
            "metadata" => params::apply_metadata(price, v)?,
            _ => {}
        }
    }
    Ok(())
}

/// Three letters, stored in lower case.
fn currency(v: &Value) -> Result<String, ApiError> {
    let s = params::required_string(v, "currency", params::TEXT_MAX)?;
    if s.len() != 3 || !s.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(ApiError::invalid(format!("Invalid currency: {s}")).param("currency"));
    }
    Ok(s.to_ascii_lowercase())
}

/// `recurring[interval]` (required) and `[interval_count]`, `[usage_type]`,
/// `[aggregate_usage]`; "" means a one-time price.
fn recurring(v: &Value) -> Result<Value, ApiError> {
    let Some(fields) = params::hash(v, "recurring")? else {
        return Ok(Value::Null);
    };
    params::check_known(fields, RECURRING_PARAMS, Some("recurring"))?;
    let param = |field: &str| nested(Some("recurring"), field);
    let interval = match fields.get("interval") {
        Some(v) => params::one_of(v, &param("interval"), &INTERVALS)?,
        None => None,
    }
    .ok_or_else(|| ApiError::missing_param(&param("interval")))?;
    let interval_count = match fields.get("interval_count") {
        Some(v) => params::integer_at_least(v, &param("interval_count"), 1)?,
        None => 1,
    };
    let usage_type = match fields.get("usage_type") {
        Some(v) => params::one_of(v, &param("usage_type"), &["licensed", "metered"])?,
        None => None,
    };
    let aggregate_usage = match fields.get("aggregate_usage") {
        Some(v) => params::one_of(v, &param("aggregate_usage"), AGGREGATE_USAGES)?,
        None => None,
    };
    Ok(json!({
        "aggregate_usage": aggregate_usage,
        "interval": interval,
        "interval_count": interval_count,
        "usage_type": usage_type.unwrap_or_else(|| "licensed".into()),
    }))
}

/// `active`, `currency`, `product` and `type`, all of them exact matches.
fn list_filter(q: &Params) -> Result<Filter, ApiError> {
    let active = q
        .get("active")
        .map(|v| params::boolean(v, "active"))
        .transpose()?;
    let currency = match q.get("currency") {
        Some(v) => params::string(v, "currency", params::TEXT_MAX)?.map(|c| c.to_ascii_lowercase()),
        None => None,
    };
    let product = match q.get("product") {
        Some(v) => params::string(v, "product", params::TEXT_MAX)?,
        None => None,
    };
    let kind = match q.get("type") {
        Some(v) => params::one_of(v, "type", &["one_time", "recurring"])?,
        None => None,
    };
    if active.is_none() && currency.is_none() && product.is_none() && kind.is_none() {
        return Ok(Filter::default());
    }
    Ok(Filter {
        needle: product.as_deref().map(product_needle),
        predicate: Some(Box::new(move |p| {
            active.is_none_or(|a| p["active"] == a)
                && currency
                    .as_ref()
                    .is_none_or(|c| p["currency"] == c.as_str())
                && product
                    .as_ref()
                    .is_none_or(|id| p["product"] == id.as_str())
                && kind.as_ref().is_none_or(|k| p["type"] == k.as_str())
        })),
    })
}

/// How a price's product id appears in its stored (sparse, compact) JSON.
fn product_needle(id: &str) -> String {
    format!("\"product\":{}", Value::from(id))
}

/// Whether any price (active or archived) belongs to the product.
pub fn any_for_product(state: &StripeState, product: &str) -> bool {
    let id = product.to_string();
    let filter = Filter {
        needle: Some(product_needle(product)),
        predicate: Some(Box::new(move |p| p["product"] == id.as_str())),
    };
    let (found, _) = state
        .store(&PRICES)
        .page(Window::all(Direction::Older), 1, &filter);
    !found.is_empty()
}

/// `count` monthly prices "Price <i>" of 1000 + i cents, each for a new
/// product "Product <n>", created one second apart ending now.
fn seed(state: &mut StripeState, count: u64, with_events: bool, now: i64) {
    let first = state.store(&PRICES).minted() + 1;
    for j in 0..count {
        let created = now - (count - 1 - j) as i64;
        let product_number = state.store(&PRODUCTS).minted() + 1;
        let product = products::seed_one(state, product_number, created, with_events);
        seed_one(state, first + j, &product, created, with_events);
    }
}

/// Price number `i` of a product; returns the price.
pub fn seed_one(
    state: &mut StripeState,
    i: u64,
    product: &str,
    created: i64,
    with_events: bool,
) -> Object {
    let mut price = template(&state.store(&PRICES).next_id(), created, state.livemode);
    let unit_amount = 1000 + i as i64;
    price.insert("nickname".into(), json!(format!("Price {i}")));
    price.insert("product".into(), json!(product));
    price.insert("unit_amount".into(), json!(unit_amount));
    price.insert("unit_amount_decimal".into(), json!(unit_amount.to_string()));
    price.insert("type".into(), json!("recurring"));
    price.insert(
        "recurring".into(),
        json!({"aggregate_usage": null, "interval": "month", "interval_count": 1, "usage_type": "licensed"}),
    );
    state.store_mut(&PRICES).insert(&price);
    if with_events {
        let automatic = RequestInfo::default();
        events::record(state, "price.created", &price, None, &automatic, created);
    }
    price
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stripe::{form, objects};

    fn state_with_product() -> (StripeState, String) {
        let mut s = StripeState::new("sk_test_prices");
        let product = products::seed_one(&mut s, 1, 10, false);
        (s, product)
    }

    fn create_form(s: &mut StripeState, body: &str) -> Result<Object, ApiError> {
        objects::create(
            s,
            &PRICES,
            &form::decode(body).unwrap(),
            20,
            &RequestInfo::default(),
        )
    }

    #[test]
    fn create_a_recurring_price() {
        let (mut s, product) = state_with_product();
        let price = create_form(
            &mut s,
            &format!("currency=EUR&product={product}&unit_amount=1500&recurring[interval]=month&nickname=Monthly&metadata[k]=v"),
        )
        .unwrap();
        assert!(price["id"].as_str().unwrap().starts_with("price_"));
        assert_eq!(
            (
                &price["currency"],
                &price["unit_amount"],
                &price["unit_amount_decimal"],
                &price["type"]
            ),
            (
                &json!("eur"),
                &json!(1500),
                &json!("1500"),
                &json!("recurring")
            )
        );
        assert_eq!(
            price["recurring"],
            json!({"aggregate_usage": null, "interval": "month", "interval_count": 1, "usage_type": "licensed"})
        );
        assert_eq!(
            (&price["nickname"], &price["active"]),
            (&json!("Monthly"), &json!(true))
        );
        let one_time = create_form(
            &mut s,
            &format!("currency=usd&product={product}&unit_amount=0"),
        )
        .unwrap();
        assert_eq!(
            (&one_time["type"], &one_time["recurring"]),
            (&json!("one_time"), &Value::Null)
        );
        let metered = create_form(
            &mut s,
            &format!("currency=usd&product={product}&unit_amount=1&recurring[interval]=day&recurring[interval_count]=7&recurring[usage_type]=metered&recurring[aggregate_usage]=sum"),
        )
        .unwrap();
        assert_eq!(
            metered["recurring"],
            json!({"aggregate_usage": "sum", "interval": "day", "interval_count": 7, "usage_type": "metered"})
        );
        assert_eq!(s.events.all()[0]["type"], "price.created");
    }

    #[test]
    fn create_validation() {
        let (mut s, product) = state_with_product();
        let cases = [
            (
                format!("product={product}&unit_amount=1"),
                Some("parameter_missing"),
                "currency",
                400,
            ),
            (
                "currency=usd&unit_amount=1".to_string(),
                Some("parameter_missing"),
                "product",
                400,
            ),
            (
                format!("currency=usd&product={product}"),
                Some("parameter_missing"),
                "unit_amount",
                400,
            ),
            (
                "currency=usd&product=prod_nope&unit_amount=1".to_string(),
                Some("resource_missing"),
                "product",
                400,
            ),
            (
                format!("currency=dollars&product={product}&unit_amount=1"),
                None,
                "currency",
                400,
            ),
            (
                format!("currency=usd&product={product}&unit_amount=-1"),
                None,
                "unit_amount",
                400,
            ),
            (
                format!(
                    "currency=usd&product={product}&unit_amount=1&recurring[interval]=fortnight"
                ),
                None,
                "recurring[interval]",
                400,
            ),
            (
                format!("currency=usd&product={product}&unit_amount=1&recurring[interval_count]=2"),
                Some("parameter_missing"),
                "recurring[interval]",
                400,
            ),
            (
                format!("currency=usd&product={product}&unit_amount=1&tiers[0]=x"),
                Some("parameter_unknown"),
                "tiers",
                400,
            ),
        ];
        for (body, code, param, status) in cases {
            let e = create_form(&mut s, &body).unwrap_err();
            assert_eq!(
                (e.status, e.code, e.param.as_deref()),
                (status, code, Some(param)),
                "{body}"
            );
        }
        let e = create_form(&mut s, "currency=usd&product=prod_nope&unit_amount=1").unwrap_err();
        assert_eq!(e.message, "No such product: 'prod_nope'");
        assert!(s.store(&PRICES).is_empty() && s.events.is_empty());
    }

    #[test]
    fn updates_change_only_active_nickname_and_metadata() {
        let (mut s, product) = state_with_product();
        let price = create_form(
            &mut s,
            &format!("currency=usd&product={product}&unit_amount=100"),
        )
        .unwrap();
        let id = price["id"].as_str().unwrap();
        let update = |s: &mut StripeState, body: &str| {
            objects::update(
                s,
                &PRICES,
                id,
                &form::decode(body).unwrap(),
                &RequestInfo::default(),
            )
        };
        let archived = update(&mut s, "active=false&nickname=Old").unwrap();
        assert_eq!(
            (&archived["active"], &archived["nickname"]),
            (&json!(false), &json!("Old"))
        );
        for body in [
            "unit_amount=200",
            "currency=eur",
            "product=prod_x",
            "recurring[interval]=day",
        ] {
            let e = update(&mut s, body).unwrap_err();
            let param = body.split(['=', '[']).next().unwrap();
            assert_eq!(
                e.message,
                format!("Received unknown parameter: {param}"),
                "{body}"
            );
            assert_eq!(e.code, Some("parameter_unknown"));
        }
        assert_eq!(
            objects::retrieve(&s, &PRICES, id).unwrap()["unit_amount"],
            100
        );
    }

    #[test]
    fn seeding_and_list_filters() {
        let mut s = StripeState::new("sk_test_prices");
        seed(&mut s, 3, true, 1000);
        assert_eq!(s.store(&PRODUCTS).len(), 3);
        let prices = objects::all_by_id(&s, &PRICES);
        let product = prices[0]["product"].as_str().unwrap().to_string();
        assert!(any_for_product(&s, &product));
        assert!(!any_for_product(&s, "prod_none"));
        let q = json!({"product": product, "type": "recurring", "currency": "USD"});
        let listed = objects::list(&s, &PRICES, q.as_object().unwrap()).unwrap();
        assert_eq!(listed["data"].as_array().unwrap().len(), 1);
        assert_eq!(listed["data"][0]["product"], product.as_str());
        let q = json!({"type": "one_time"});
        assert!(
            objects::list(&s, &PRICES, q.as_object().unwrap()).unwrap()["data"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        let types: Vec<String> = s
            .events
            .all()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(types.iter().filter(|t| *t == "product.created").count(), 3);
        assert_eq!(types.iter().filter(|t| *t == "price.created").count(), 3);
    }
}
