//! Invoices: the object's shape (the spec's `invoice` schema), the first
//! invoice a new subscription gets (created, finalized and paid at once, an
//! event for each step), a minimal `POST /v1/invoices` (a draft for a
//! customer), the params an update may change, and list filters. No
//! `DELETE`: Stripe's deletes only drafts, and nothing here needs it.

use serde_json::{json, Value};

use super::customers::CUSTOMERS;
use super::errors::ApiError;
use super::params::{self, Params};
use super::store::{Filter, Object};
use super::{events, RequestInfo, Resource, StripeState};
use crate::ids;

pub static INVOICES: Resource = Resource {
    object: "invoice",
    plural: "invoices",
    prefix: "in",
    event_prefix: "invoice",
    template,
    create,
    update,
    after_create: None,
    delete: None,
    list_params: &["customer", "status", "subscription"],
    list_filter,
    seed: None,
};

const CREATE_PARAMS: &[&str] = &[
    "auto_advance",
    "customer",
    "description",
    "expand",
    "footer",
    "metadata",
];
const UPDATE_PARAMS: &[&str] = &[
    "auto_advance",
    "description",
    "expand",
    "footer",
    "metadata",
];
const STATUSES: &[&str] = &["draft", "open", "paid", "uncollectible", "void"];

fn template(id: &str, created: i64, livemode: bool) -> Object {
    // Two halves: one json! of all the spec's fields exceeds the macro's recursion limit.
    let amounts = json!({
        "amount_due": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "attempt_count": 0,
        "attempted": false,
        "ending_balance": null,
        "paid": false,
        "paid_out_of_band": false,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "starting_balance": 0,
        "subtotal": 0,
        "tax": null,
        "total": 0,
        "total_tax_amounts": [],
    });
    let v = json!({
        "id": id,
        "object": "invoice",
        "account_country": null,
        "account_name": null,
        "auto_advance": true,
        "automatic_tax": {"enabled": false, "status": null},
        "billing_reason": "manual",
        "charge": null,
        "collection_method": "charge_automatically",
        "created": created,
        "currency": "usd",
        "customer": "",
        "customer_email": null,
        "customer_name": null,
        "default_payment_method": null,
        "default_tax_rates": [],
        "description": null,
        "discount": null,
        "due_date": null,
        "footer": null,
        "hosted_invoice_url": null,
        "invoice_pdf": null,
        "lines": lines_list(id, Vec::new()),
        "livemode": livemode,
        "metadata": {},
        "next_payment_attempt": null,
        "number": null,
        "payment_intent": null,
        "payment_settings": {"payment_method_options": null, "payment_method_types": null},
        "period_end": created,
        "period_start": created,
        "statement_descriptor": null,
        "status": "draft",
        "status_transitions": {
            "finalized_at": null,
            "marked_uncollectible_at": null,
            "paid_at": null,
            "voided_at": null,
        },
        "subscription": null,
        "webhooks_delivered_at": null,
    });
    let mut invoice = v.as_object().expect("an object").clone();
    invoice.extend(amounts.as_object().expect("an object").clone());
    invoice
}

fn lines_list(invoice: &str, data: Vec<Value>) -> Value {
    json!({
        "object": "list",
        "data": data,
        "has_more": false,
        "total_count": data.len(),
        "url": format!("/v1/invoices/{invoice}/lines"),
    })
}

/// A draft for an existing customer, with no lines (there are no pending
/// invoice items here to pull in).
fn create(state: &StripeState, invoice: &mut Object, p: &Params) -> Result<(), ApiError> {
    params::check_known(p, CREATE_PARAMS, None)?;
    let id = match p.get("customer") {
        Some(v) => params::required_string(v, "customer", params::TEXT_MAX)?,
        None => return Err(ApiError::missing_param("customer")),
    };
    let customer = state
        .store(&CUSTOMERS)
        .get(&id)
        .ok_or_else(|| ApiError::no_such("customer", &id, "customer").status(400))?;
    bill_to(invoice, &customer);
    apply_changeable(invoice, p)
}

fn update(_state: &StripeState, invoice: &mut Object, p: &Params) -> Result<(), ApiError> {
    params::check_known(p, UPDATE_PARAMS, None)?;
    apply_changeable(invoice, p)
}

/// The params create and update share; create has handled `customer`.
fn apply_changeable(invoice: &mut Object, p: &Params) -> Result<(), ApiError> {
    for (key, v) in p {
        match key.as_str() {
            "auto_advance" => {
                invoice.insert(key.clone(), json!(params::boolean(v, key)?));
            }
            "description" | "footer" => {
                invoice.insert(
                    key.clone(),
                    json!(params::string(v, key, params::TEXT_MAX)?),
                );
            }
            "metadata" => params::apply_metadata(invoice, v)?,
            _ => {}
        }
    }
    Ok(())
}

fn bill_to(invoice: &mut Object, customer: &Object) {
    invoice.insert("customer".into(), customer["id"].clone());
    invoice.insert("customer_email".into(), customer["email"].clone());
    invoice.insert("customer_name".into(), customer["name"].clone());
    if let Some(currency) = customer["currency"].as_str() {
        invoice.insert("currency".into(), json!(currency));
    }
}

/// The first invoice of a new subscription (its id is the subscription's
/// `latest_invoice`): one line per item, created, finalized and paid at
/// once, as a charge that succeeds. `events` is (cause, time) to record
/// invoice.created, .finalized, .paid and .payment_succeeded, each with the
/// invoice as it was after that step; None records none.
pub fn bill(state: &mut StripeState, subscription: &Object, events: Option<(&RequestInfo, i64)>) {
    let created = subscription["created"].as_i64().expect("created is set");
    let mut invoice = template(&state.store(&INVOICES).next_id(), created, state.livemode);
    let id = invoice["id"].as_str().expect("a string id").to_string();
    debug_assert_eq!(subscription["latest_invoice"], id.as_str());
    let period = json!({"start": subscription["current_period_start"], "end": subscription["current_period_end"]});
    let mut lines = Vec::new();
    let mut total = 0;
    for (i, item) in subscription["items"]["data"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let price = &item["price"];
        let quantity = item["quantity"].as_i64().unwrap_or(1);
        let amount = price["unit_amount"].as_i64().unwrap_or(0) * quantity;
        total += amount;
        lines.push(json!({
            // Derived from the invoice's id: unique without a counter of their own.
            "id": ids::object_id("il", ids::salt(&id, "il"), i as u64),
            "object": "line_item",
            "amount": amount,
            "currency": price["currency"],
            "description": null,
            "discountable": true,
            "livemode": state.livemode,
            "metadata": {},
            "period": period,
            "price": price,
            "proration": false,
            "quantity": quantity,
            "subscription": subscription["id"],
            "subscription_item": item["id"],
            "type": "subscription",
        }));
    }
    let customer_id = subscription["customer"].as_str().unwrap_or_default();
    let mut customer = state.store(&CUSTOMERS).get(customer_id);
    if let Some(customer) = &customer {
        bill_to(&mut invoice, customer);
    }
    if let Some(currency) = lines.first().map(|l| l["currency"].clone()) {
        invoice.insert("currency".into(), currency);
    }
    invoice.insert("lines".into(), lines_list(&id, lines));
    invoice.insert("subscription".into(), subscription["id"].clone());
    invoice.insert("billing_reason".into(), json!("subscription_create"));
    for field in ["amount_due", "amount_remaining", "subtotal", "total"] {
        invoice.insert(field.into(), json!(total));
    }
    let step = |state: &mut StripeState, kinds: &[&str], invoice: &Object| {
        if let Some((request, at)) = events {
            for kind in kinds {
                events::record(state, kind, invoice, None, request, at);
            }
        }
    };
    state.store_mut(&INVOICES).insert(&invoice);
    step(state, &["invoice.created"], &invoice);

    // Finalizing numbers the invoice from the customer's sequence, which
    // moves on without a customer.updated (whether Stripe sends one is
    // unconfirmed).
    if let Some(customer) = &mut customer {
        let sequence = customer["next_invoice_sequence"].as_i64().unwrap_or(1);
        let prefix = customer["invoice_prefix"].as_str().unwrap_or_default();
        invoice.insert("number".into(), json!(format!("{prefix}-{sequence:04}")));
        customer.insert("next_invoice_sequence".into(), json!(sequence + 1));
        state.store_mut(&CUSTOMERS).replace(customer);
    }
    invoice.insert("status".into(), json!("open"));
    invoice["status_transitions"]["finalized_at"] = json!(created);
    state.store_mut(&INVOICES).replace(&invoice);
    step(state, &["invoice.finalized"], &invoice);

    invoice.insert("status".into(), json!("paid"));
    invoice.insert("paid".into(), json!(true));
    invoice.insert("attempted".into(), json!(true));
    invoice.insert("attempt_count".into(), json!(1));
    invoice.insert("amount_paid".into(), json!(total));
    invoice.insert("amount_remaining".into(), json!(0));
    invoice["status_transitions"]["paid_at"] = json!(created);
    state.store_mut(&INVOICES).replace(&invoice);
    step(
        state,
        &["invoice.paid", "invoice.payment_succeeded"],
        &invoice,
    );
}

/// `customer`, `subscription` and `status`, exact matches.
fn list_filter(q: &Params) -> Result<Filter, ApiError> {
    let text = |name: &str| match q.get(name) {
        Some(v) => params::string(v, name, params::TEXT_MAX),
        None => Ok(None),
    };
    let customer = text("customer")?;
    let subscription = text("subscription")?;
    let status = match q.get("status") {
        Some(v) => params::one_of(v, "status", STATUSES)?,
        None => None,
    };
    if customer.is_none() && subscription.is_none() && status.is_none() {
        return Ok(Filter::default());
    }
    Ok(Filter {
        needle: customer
            .as_deref()
            .map(|c| format!("\"customer\":{}", Value::from(c))),
        predicate: Some(Box::new(move |i| {
            customer
                .as_ref()
                .is_none_or(|c| i["customer"] == c.as_str())
                && subscription
                    .as_ref()
                    .is_none_or(|s| i["subscription"] == s.as_str())
                && status.as_ref().is_none_or(|s| i["status"] == s.as_str())
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stripe::{customers, form, objects};

    #[test]
    fn a_draft_for_a_customer() {
        let mut s = StripeState::new("sk_test_invoices");
        let customer = customers::seed_one(&mut s, 1, 10, false);
        let create = |s: &mut StripeState, body: &str| {
            objects::create(
                s,
                &INVOICES,
                &form::decode(body).unwrap(),
                20,
                &RequestInfo::default(),
            )
        };
        let draft = create(
            &mut s,
            &format!("customer={customer}&description=Consulting&metadata[po]=7"),
        )
        .unwrap();
        assert!(draft["id"].as_str().unwrap().starts_with("in_"));
        assert_eq!(
            (
                &draft["status"],
                &draft["customer"],
                &draft["customer_email"],
                &draft["amount_due"]
            ),
            (
                &json!("draft"),
                &json!(customer),
                &json!("customer1@example.com"),
                &json!(0)
            )
        );
        assert_eq!(
            (&draft["description"], &draft["metadata"]),
            (&json!("Consulting"), &json!({"po": "7"}))
        );
        let e = create(&mut s, "description=x").unwrap_err();
        assert_eq!(
            (e.code, e.param.as_deref()),
            (Some("parameter_missing"), Some("customer"))
        );
        let e = create(&mut s, "customer=cus_nope").unwrap_err();
        assert_eq!((e.status, e.code), (400, Some("resource_missing")));
        let id = draft["id"].as_str().unwrap();
        let p = form::decode("footer=Thanks&amount_due=5").unwrap();
        let e = objects::update(&mut s, &INVOICES, id, &p, &RequestInfo::default()).unwrap_err();
        assert_eq!(e.message, "Received unknown parameter: amount_due");
        let p = form::decode("footer=Thanks").unwrap();
        let updated = objects::update(&mut s, &INVOICES, id, &p, &RequestInfo::default()).unwrap();
        assert_eq!(updated["footer"], "Thanks");
        let types: Vec<String> = s
            .events
            .all()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(types, ["invoice.created", "invoice.updated"]);
    }

    #[test]
    fn a_subscription_invoice_is_numbered_paid_and_listed_by_filters() {
        let mut s = StripeState::new("sk_test_invoices");
        crate::stripe::subscriptions::SUBSCRIPTIONS.seed.unwrap()(&mut s, 2, false, 5000);
        let invoices = objects::all_by_id(&s, &INVOICES);
        assert_eq!(invoices.len(), 2);
        let invoice = &invoices[0];
        let customer =
            objects::retrieve(&s, &CUSTOMERS, invoice["customer"].as_str().unwrap()).unwrap();
        assert_eq!(
            invoice["number"],
            format!("{}-0001", customer["invoice_prefix"].as_str().unwrap())
        );
        assert_eq!(customer["next_invoice_sequence"], 2);
        assert_eq!(
            (
                &invoice["status"],
                &invoice["paid"],
                &invoice["amount_paid"],
                &invoice["amount_remaining"]
            ),
            (&json!("paid"), &json!(true), &invoice["total"], &json!(0))
        );
        let line = &invoice["lines"]["data"][0];
        assert!(line["id"].as_str().unwrap().starts_with("il_"));
        assert_eq!(line["amount"], invoice["total"]);
        let count = |q: Value| {
            objects::list(&s, &INVOICES, q.as_object().unwrap()).unwrap()["data"]
                .as_array()
                .unwrap()
                .len()
        };
        assert_eq!(count(json!({"customer": invoice["customer"]})), 1);
        assert_eq!(count(json!({"subscription": invoice["subscription"]})), 1);
        assert_eq!(count(json!({"status": "paid"})), 2);
        assert_eq!(count(json!({"status": "draft"})), 0);
        assert!(s.events.is_empty());
    }
}
