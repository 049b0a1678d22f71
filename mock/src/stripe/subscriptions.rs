//! Subscriptions: the object's shape (the spec's `subscription` schema),
//! create params (an existing customer, up to 20 items of existing recurring
//! prices), the params an update may change, cancellation (what `DELETE`
//! does: the subscription stays, canceled), the list's `status` rule (the
//! default hides canceled ones), and seeding. Creating one bills its first
//! period: see invoices.rs.

use serde_json::{json, Value};

use super::customers::{self, CUSTOMERS};
use super::errors::ApiError;
use super::invoices::{self, INVOICES};
use super::params::{self, Params};
use super::prices::{self, PRICES};
use super::products;
use super::store::{Filter, Object};
use super::{events, now, objects, RequestInfo, Resource, StripeState};
use crate::ids;

pub static SUBSCRIPTIONS: Resource = Resource {
    object: "subscription",
    plural: "subscriptions",
    prefix: "sub",
    event_prefix: "customer.subscription",
    template,
    create,
    update,
    after_create: Some(bill_first_period),
    delete: Some(cancel),
    list_params: &["customer", "price", "status"],
    list_filter,
    seed: Some(seed),
};

const CREATE_PARAMS: &[&str] = &[
    "cancel_at_period_end",
    "customer",
    "expand",
    "items",
    "metadata",
];
const UPDATE_PARAMS: &[&str] = &["cancel_at_period_end", "expand", "metadata"];
const ITEM_PARAMS: &[&str] = &["metadata", "price", "quantity"];
const MAX_ITEMS: usize = 20;
const STATUSES: &[&str] = &[
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "trialing",
    "unpaid",
];

fn template(id: &str, created: i64, livemode: bool) -> Object {
    let v = json!({
        "id": id,
        "object": "subscription",
        "application_fee_percent": null,
        "automatic_tax": {"enabled": false},
        "billing_cycle_anchor": created,
        "billing_thresholds": null,
        "cancel_at": null,
        "cancel_at_period_end": false,
        "canceled_at": null,
        "collection_method": "charge_automatically",
        "created": created,
        "current_period_end": created,
        "current_period_start": created,
        "customer": "",
        "days_until_due": null,
        "default_payment_method": null,
        "default_source": null,
        "default_tax_rates": [],
        "discount": null,
        "ended_at": null,
        "items": items_list(id, Vec::new()),
        "latest_invoice": null,
        "livemode": livemode,
        "metadata": {},
        "next_pending_invoice_item_invoice": null,
        "pause_collection": null,
        "payment_settings": null,
        "pending_invoice_item_interval": null,
        "pending_setup_intent": null,
        "pending_update": null,
        "schedule": null,
        "start_date": created,
        "status": "active",
        "test_clock": null,
        "transfer_data": null,
        "trial_end": null,
        "trial_start": null,
    });
    v.as_object().expect("an object").clone()
}

fn items_list(subscription: &str, data: Vec<Value>) -> Value {
    json!({
        "object": "list",
        "data": data,
        "has_more": false,
        "total_count": data.len(),
        "url": format!("/v1/subscription_items?subscription={subscription}"),
    })
}

fn create(state: &StripeState, subscription: &mut Object, p: &Params) -> Result<(), ApiError> {
    params::check_known(p, CREATE_PARAMS, None)?;
    let customer = match p.get("customer") {
        Some(v) => params::required_string(v, "customer", params::TEXT_MAX)?,
        None => return Err(ApiError::missing_param("customer")),
    };
    if state.store(&CUSTOMERS).get(&customer).is_none() {
        return Err(ApiError::no_such("customer", &customer, "customer").status(400));
    }
    let items = match p.get("items") {
        Some(v) => items(state, v)?,
        None => return Err(ApiError::missing_param("items")),
    };
    subscribe(state, subscription, &customer, items);
    apply_changeable(subscription, p)
}

/// `items[i][price]` (an active recurring price) and `[quantity]` (default 1).
fn items(state: &StripeState, v: &Value) -> Result<Vec<(Object, i64)>, ApiError> {
    let items = params::list(v, "items")?;
    if items.is_empty() {
        return Err(ApiError::missing_param("items"));
    }
    if items.len() > MAX_ITEMS {
        return Err(ApiError::invalid(format!(
            "Invalid array: items must have at most {MAX_ITEMS} elements"
        ))
        .param("items"));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let base = format!("items[{i}]");
        let Some(fields) = params::hash(item, &base)? else {
            return Err(ApiError::missing_param(&format!("{base}[price]")));
        };
        params::check_known(fields, ITEM_PARAMS, Some(&base))?;
        let param = format!("{base}[price]");
        let id = match fields.get("price") {
            Some(v) => params::required_string(v, &param, params::TEXT_MAX)?,
            None => return Err(ApiError::missing_param(&param)),
        };
        let price = state
            .store(&PRICES)
            .get(&id)
            .ok_or_else(|| ApiError::no_such("price", &id, &param).status(400))?;
        if price["type"] != "recurring" {
            return Err(ApiError::invalid(
                "The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`.",
            )
            .param(param));
        }
        if price["active"] != true {
            return Err(ApiError::invalid(
                "The price specified is inactive. This field only accepts active prices.",
            )
            .param(param));
        }
        let quantity = match fields.get("quantity") {
            Some(v) => params::integer_at_least(v, &format!("{base}[quantity]"), 0)?,
            None => 1,
        };
        out.push((price, quantity));
    }
    Ok(out)
}

/// Fills a new subscription for `customer` with its items and first period,
/// and names the invoice `bill_first_period` will create for it.
fn subscribe(
    state: &StripeState,
    subscription: &mut Object,
    customer: &str,
    items: Vec<(Object, i64)>,
) {
    let id = subscription["id"]
        .as_str()
        .expect("a string id")
        .to_string();
    let start = subscription["created"].as_i64().expect("created is set");
    let recurring = items[0].0["recurring"].clone();
    let data: Vec<Value> = items
        .into_iter()
        .enumerate()
        .map(|(i, (price, quantity))| {
            json!({
                // Derived from the subscription's id: unique without a counter of their own.
                "id": ids::object_id("si", ids::salt(&id, "si"), i as u64),
                "object": "subscription_item",
                "billing_thresholds": null,
                "created": start,
                "metadata": {},
                "price": price,
                "quantity": quantity,
                "subscription": id,
                "tax_rates": [],
            })
        })
        .collect();
    let interval = recurring["interval"].as_str().unwrap_or("month");
    let count = recurring["interval_count"].as_i64().unwrap_or(1);
    subscription.insert("customer".into(), json!(customer));
    subscription.insert("items".into(), items_list(&id, data));
    subscription.insert(
        "current_period_end".into(),
        json!(period_end(start, interval, count)),
    );
    // No other invoice can be created between now and bill_first_period:
    // both run under the account's lock.
    subscription.insert(
        "latest_invoice".into(),
        json!(state.store(&INVOICES).next_id()),
    );
}

fn update(_state: &StripeState, subscription: &mut Object, p: &Params) -> Result<(), ApiError> {
    params::check_known(p, UPDATE_PARAMS, None)?;
    let only_metadata = p.keys().all(|k| k == "metadata" || k == "expand");
    if subscription["status"] == "canceled" && !only_metadata {
        return Err(ApiError::invalid(
            "A canceled subscription can only update its cancellation_details and metadata.",
        ));
    }
    apply_changeable(subscription, p)
}

/// The params create and update share: `metadata`, `cancel_at_period_end`.
fn apply_changeable(subscription: &mut Object, p: &Params) -> Result<(), ApiError> {
    for (key, v) in p {
        match key.as_str() {
            "metadata" => params::apply_metadata(subscription, v)?,
            "cancel_at_period_end" => {
                let at_end = params::boolean(v, key)?;
                if subscription[key] == at_end {
                    continue;
                }
                // Stripe schedules the cancellation for the period's end and
                // records when it was asked for.
                let (cancel_at, canceled_at) = match at_end {
                    true => (subscription["current_period_end"].clone(), json!(now())),
                    false => (Value::Null, Value::Null),
                };
                subscription.insert(key.clone(), json!(at_end));
                subscription.insert("cancel_at".into(), cancel_at);
                subscription.insert("canceled_at".into(), canceled_at);
            }
            _ => {}
        }
    }
    Ok(())
}

fn bill_first_period(state: &mut StripeState, subscription: &Object, request: &RequestInfo) {
    invoices::bill(state, subscription, Some((request, now())));
}

/// `DELETE /v1/subscriptions/{id}` cancels at once: the subscription stays
/// (retrievable, listed with `status=canceled|ended|all`) with status
/// canceled, is the reply, and `customer.subscription.deleted` carries it.
/// Canceling it again is answered as if it did not exist, as Stripe does.
fn cancel(
    state: &mut StripeState,
    r: &Resource,
    id: &str,
    request: &RequestInfo,
) -> Result<Value, ApiError> {
    let mut subscription = objects::retrieve(state, r, id)?;
    if subscription["status"] == "canceled" {
        return Err(ApiError::no_such(r.object, id, "id"));
    }
    let at = now();
    subscription.insert("status".into(), json!("canceled"));
    subscription.insert("ended_at".into(), json!(at));
    if subscription["canceled_at"].is_null() {
        subscription.insert("canceled_at".into(), json!(at));
    }
    state.store_mut(r).replace(&subscription);
    events::record(
        state,
        "customer.subscription.deleted",
        &subscription,
        None,
        request,
        at,
    );
    Ok(Value::Object(subscription))
}

/// `customer`, `price` (one of the items) and `status`: without it canceled
/// subscriptions are left out; `all` lists every one, `ended` the canceled
/// and expired ones.
fn list_filter(q: &Params) -> Result<Filter, ApiError> {
    let text = |name: &str| match q.get(name) {
        Some(v) => params::string(v, name, params::TEXT_MAX),
        None => Ok(None),
    };
    let customer = text("customer")?;
    let price = text("price")?;
    let status = match q.get("status") {
        Some(v) => params::one_of(v, "status", STATUSES)?,
        None => None,
    };
    Ok(Filter {
        needle: customer
            .as_deref()
            .map(|c| format!("\"customer\":{}", Value::from(c))),
        predicate: Some(Box::new(move |s| {
            let listed = match status.as_deref() {
                None => s["status"] != "canceled",
                Some("all") => true,
                Some("ended") => s["status"] == "canceled" || s["status"] == "incomplete_expired",
                Some(wanted) => s["status"] == wanted,
            };
            let has_price = |p: &str| {
                s["items"]["data"]
                    .as_array()
                    .is_some_and(|items| items.iter().any(|i| i["price"]["id"] == p))
            };
            listed
                && customer
                    .as_ref()
                    .is_none_or(|c| s["customer"] == c.as_str())
                && price.as_deref().is_none_or(has_price)
        })),
    })
}

/// `count` subscriptions, one second apart ending now, each of a new
/// customer to one monthly price (of a new product) shared by the batch,
/// each with its paid first invoice.
fn seed(state: &mut StripeState, count: u64, with_events: bool, now: i64) {
    if count == 0 {
        return;
    }
    let first = now - (count - 1) as i64;
    let product_number = state.store(&products::PRODUCTS).minted() + 1;
    let product = products::seed_one(state, product_number, first, with_events);
    let price_number = state.store(&PRICES).minted() + 1;
    let price = prices::seed_one(state, price_number, &product, first, with_events);
    let first_customer = state.store(&CUSTOMERS).minted() + 1;
    for j in 0..count {
        let created = first + j as i64;
        let customer = customers::seed_one(state, first_customer + j, created, with_events);
        let mut subscription = template(
            &state.store(&SUBSCRIPTIONS).next_id(),
            created,
            state.livemode,
        );
        subscribe(
            state,
            &mut subscription,
            &customer,
            vec![(price.clone(), 1)],
        );
        state.store_mut(&SUBSCRIPTIONS).insert(&subscription);
        let automatic = RequestInfo::default();
        if with_events {
            let kind = "customer.subscription.created";
            events::record(state, kind, &subscription, None, &automatic, created);
        }
        invoices::bill(
            state,
            &subscription,
            with_events.then_some((&automatic, created)),
        );
    }
}

/// The end of a billing period of `count` intervals from `start` (unix
/// seconds, UTC). Months and years are calendar ones, the day clamped to the
/// month's last (Jan 31 + 1 month = Feb 28 or 29), as Stripe bills.
fn period_end(start: i64, interval: &str, count: i64) -> i64 {
    const DAY: i64 = 86_400;
    let months = match interval {
        "day" => return start + count * DAY,
        "week" => return start + count * 7 * DAY,
        "year" => count * 12,
        _ => count,
    };
    let (days, time) = (start.div_euclid(DAY), start.rem_euclid(DAY));
    let (year, month, day) = civil_from_days(days);
    let index = year * 12 + (month - 1) + months;
    let (year, month) = (index.div_euclid(12), index.rem_euclid(12) + 1);
    let month_length =
        days_from_civil(year + month / 12, month % 12 + 1, 1) - days_from_civil(year, month, 1);
    days_from_civil(year, month, day.min(month_length)) * DAY + time
}

/// (year, month 1–12, day 1–31) of a day number (days since 1970-01-01);
/// Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of `civil_from_days`.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stripe::form;

    /// An account with a customer, a monthly price and a one-time price (whose
    /// price.created is its only event).
    fn account() -> (StripeState, String, String, String) {
        let mut s = StripeState::new("sk_test_subscriptions");
        let customer = customers::seed_one(&mut s, 1, 100, false);
        let product = products::seed_one(&mut s, 1, 100, false);
        let monthly = prices::seed_one(&mut s, 1, &product, 100, false);
        let one_time = json!({"currency": "usd", "product": product, "unit_amount": "5"});
        let one_time = objects::create(
            &mut s,
            &PRICES,
            one_time.as_object().unwrap(),
            100,
            &RequestInfo::default(),
        )
        .unwrap();
        let id = |o: &Object| o["id"].as_str().unwrap().to_string();
        (s, customer, id(&monthly), id(&one_time))
    }

    fn subscribe_form(s: &mut StripeState, body: &str) -> Result<Object, ApiError> {
        objects::create(
            s,
            &SUBSCRIPTIONS,
            &form::decode(body).unwrap(),
            1_700_000_000,
            &RequestInfo::default(),
        )
    }

    fn event_types(s: &StripeState) -> Vec<String> {
        s.events
            .all()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn create_bills_the_first_period() {
        let (mut s, customer, monthly, _) = account();
        let sub = subscribe_form(
            &mut s,
            &format!("customer={customer}&items[0][price]={monthly}&items[0][quantity]=3&metadata[plan]=pro"),
        )
        .unwrap();
        assert!(sub["id"].as_str().unwrap().starts_with("sub_"));
        assert_eq!(
            (&sub["status"], &sub["customer"], &sub["metadata"]),
            (&json!("active"), &json!(customer), &json!({"plan": "pro"}))
        );
        let item = &sub["items"]["data"][0];
        assert!(item["id"].as_str().unwrap().starts_with("si_"));
        assert_eq!(
            (&item["price"]["id"], &item["quantity"]),
            (&json!(monthly), &json!(3))
        );
        // 2023-11-14T22:13:20Z + 1 month
        assert_eq!(sub["current_period_start"], 1_700_000_000);
        assert_eq!(sub["current_period_end"], 1_702_592_000);

        let invoice =
            objects::retrieve(&s, &INVOICES, sub["latest_invoice"].as_str().unwrap()).unwrap();
        assert_eq!(
            (
                &invoice["status"],
                &invoice["amount_due"],
                &invoice["amount_paid"],
                &invoice["subscription"]
            ),
            (&json!("paid"), &json!(3003), &json!(3003), &sub["id"])
        );
        assert_eq!(
            event_types(&s)[1..],
            [
                "customer.subscription.created",
                "invoice.created",
                "invoice.finalized",
                "invoice.paid",
                "invoice.payment_succeeded"
            ]
        );
        let statuses: Vec<Value> = s.events.all()[2..]
            .iter()
            .map(|e| e["data"]["object"]["status"].clone())
            .collect();
        assert_eq!(
            statuses,
            [json!("draft"), json!("open"), json!("paid"), json!("paid")]
        );
    }

    #[test]
    fn create_validation() {
        let (mut s, customer, monthly, one_time) = account();
        let cases = [
            (
                format!("items[0][price]={monthly}"),
                Some("parameter_missing"),
                "customer",
            ),
            (
                format!("customer=cus_nope&items[0][price]={monthly}"),
                Some("resource_missing"),
                "customer",
            ),
            (
                format!("customer={customer}"),
                Some("parameter_missing"),
                "items",
            ),
            (
                format!("customer={customer}&items[0][quantity]=1"),
                Some("parameter_missing"),
                "items[0][price]",
            ),
            (
                format!("customer={customer}&items[0][price]=price_nope"),
                Some("resource_missing"),
                "items[0][price]",
            ),
            (
                format!("customer={customer}&items[0][price]={one_time}"),
                None,
                "items[0][price]",
            ),
            (
                format!("customer={customer}&items[0][price]={monthly}&items[0][plan]=x"),
                Some("parameter_unknown"),
                "items[0][plan]",
            ),
            (
                format!("customer={customer}&items[0][price]={monthly}&trial_end=now"),
                Some("parameter_unknown"),
                "trial_end",
            ),
        ];
        for (body, code, param) in cases {
            let e = subscribe_form(&mut s, &body).unwrap_err();
            assert_eq!(
                (e.status, e.code, e.param.as_deref()),
                (400, code, Some(param)),
                "{body}"
            );
        }
        assert!(
            s.store(&SUBSCRIPTIONS).is_empty()
                && s.store(&INVOICES).is_empty()
                && s.events.len() == 1
        );
    }

    #[test]
    fn updates_and_cancellation() {
        let (mut s, customer, monthly, _) = account();
        let sub = subscribe_form(
            &mut s,
            &format!("customer={customer}&items[0][price]={monthly}"),
        )
        .unwrap();
        let id = sub["id"].as_str().unwrap().to_string();
        let update = |s: &mut StripeState, body: &str| {
            objects::update(
                s,
                &SUBSCRIPTIONS,
                &id,
                &form::decode(body).unwrap(),
                &RequestInfo::default(),
            )
        };
        let at_end = update(&mut s, "cancel_at_period_end=true").unwrap();
        assert_eq!(
            (&at_end["cancel_at"], &at_end["status"]),
            (&sub["current_period_end"], &json!("active"))
        );
        assert!(at_end["canceled_at"].is_i64());
        let e = update(&mut s, "items[0][price]=x").unwrap_err();
        assert_eq!(e.code, Some("parameter_unknown"));

        let canceled = cancel(&mut s, &SUBSCRIPTIONS, &id, &RequestInfo::default()).unwrap();
        assert_eq!(
            (&canceled["status"], &canceled["id"]),
            (&json!("canceled"), &json!(id))
        );
        assert!(canceled.get("deleted").is_none());
        assert!(canceled["ended_at"].is_i64());
        let last = s.events.all().pop().unwrap();
        assert_eq!(last["type"], "customer.subscription.deleted");
        assert_eq!(last["data"]["object"], canceled);
        // Still there, but only metadata may change, and a second cancel finds nothing.
        assert_eq!(
            objects::retrieve(&s, &SUBSCRIPTIONS, &id).unwrap()["status"],
            "canceled"
        );
        assert!(update(&mut s, "metadata[k]=v").is_ok());
        assert_eq!(
            update(&mut s, "cancel_at_period_end=false")
                .unwrap_err()
                .status,
            400
        );
        let e = cancel(&mut s, &SUBSCRIPTIONS, &id, &RequestInfo::default()).unwrap_err();
        assert_eq!((e.status, e.code), (404, Some("resource_missing")));
    }

    #[test]
    fn the_default_list_leaves_out_canceled_subscriptions() {
        let mut s = StripeState::new("sk_test_subscriptions");
        seed(&mut s, 4, false, 1_000_000);
        assert_eq!(s.store(&INVOICES).len(), 4);
        assert_eq!(s.store(&CUSTOMERS).len(), 4);
        let all = objects::all_by_id(&s, &SUBSCRIPTIONS);
        let gone = all[0]["id"].as_str().unwrap().to_string();
        cancel(&mut s, &SUBSCRIPTIONS, &gone, &RequestInfo::default()).unwrap();
        let count = |q: Value| {
            objects::list(&s, &SUBSCRIPTIONS, q.as_object().unwrap()).unwrap()["data"]
                .as_array()
                .unwrap()
                .len()
        };
        assert_eq!(count(json!({})), 3);
        assert_eq!(count(json!({"status": "all"})), 4);
        assert_eq!(count(json!({"status": "canceled"})), 1);
        assert_eq!(count(json!({"status": "ended"})), 1);
        let customer = all[1]["customer"].as_str().unwrap();
        assert_eq!(count(json!({"customer": customer})), 1);
        let price = all[1]["items"]["data"][0]["price"]["id"].as_str().unwrap();
        assert_eq!(count(json!({"price": price, "status": "all"})), 4);
        assert!(objects::list(
            &s,
            &SUBSCRIPTIONS,
            json!({"status": "gone"}).as_object().unwrap()
        )
        .is_err());
    }

    #[test]
    fn periods_use_calendar_months() {
        let at = |y, m, d| days_from_civil(y, m, d) * 86_400 + 3_600;
        assert_eq!(period_end(at(2024, 1, 31), "month", 1), at(2024, 2, 29));
        assert_eq!(period_end(at(2023, 1, 31), "month", 1), at(2023, 2, 28));
        assert_eq!(period_end(at(2023, 11, 15), "month", 3), at(2024, 2, 15));
        assert_eq!(period_end(at(2024, 2, 29), "year", 1), at(2025, 2, 28));
        assert_eq!(period_end(at(2024, 12, 31), "week", 1), at(2025, 1, 7));
        assert_eq!(period_end(at(2024, 12, 31), "day", 2), at(2025, 1, 2));
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(days_from_civil(2000, 2, 29)), (2000, 2, 29));
    }
}
