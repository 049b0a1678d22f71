//! Products: the object's shape (the spec's `product` schema), the params
//! `POST /v1/products[/{id}]` accepts, the `active` list filter, deletion
//! (refused while a price uses the product), and seeding.

use serde_json::{json, Value};

use super::errors::ApiError;
use super::params::{self, Params};
use super::store::{Filter, Object};
use super::{events, objects, prices, RequestInfo, Resource, StripeState};

pub static PRODUCTS: Resource = Resource {
    object: "product",
    plural: "products",
    prefix: "prod",
    event_prefix: "product",
    template,
    create,
    update,
    after_create: None,
    delete: Some(delete),
    list_params: &["active"],
    list_filter,
    seed: Some(seed),
};

const PARAMS: &[&str] = &[
    "active",
    "description",
    "expand",
    "images",
    "metadata",
    "name",
    "shippable",
    "statement_descriptor",
    "unit_label",
    "url",
];
const IMAGES_MAX: usize = 8;
const STATEMENT_DESCRIPTOR_MAX: usize = 22;
const UNIT_LABEL_MAX: usize = 12;

fn template(id: &str, created: i64, livemode: bool) -> Object {
    let v = json!({
        "id": id,
        "object": "product",
        "active": true,
        "created": created,
        "description": null,
        "images": [],
        "livemode": livemode,
        "metadata": {},
        "name": "",
        "package_dimensions": null,
        "shippable": null,
        "statement_descriptor": null,
        "tax_code": null,
        "unit_label": null,
        "updated": created,
        "url": null,
    });
    v.as_object().expect("an object").clone()
}

/// `name` is required; everything else as for an update.
fn create(state: &StripeState, product: &mut Object, p: &Params) -> Result<(), ApiError> {
    if !p.contains_key("name") {
        params::check_known(p, PARAMS, None)?;
        return Err(ApiError::missing_param("name"));
    }
    update(state, product, p)
}

fn update(_state: &StripeState, product: &mut Object, p: &Params) -> Result<(), ApiError> {
    params::check_known(p, PARAMS, None)?;
    for (key, v) in p {
        let value = match key.as_str() {
            "name" => json!(params::required_string(v, key, params::TEXT_MAX)?),
            "active" => json!(params::boolean(v, key)?),
            "shippable" => json!(params::boolean(v, key)?),
            "description" | "url" => json!(params::string(v, key, params::TEXT_MAX)?),
            "statement_descriptor" => json!(params::string(v, key, STATEMENT_DESCRIPTOR_MAX)?),
            "unit_label" => json!(params::string(v, key, UNIT_LABEL_MAX)?),
            "images" => images(v)?,
            "metadata" => {
                params::apply_metadata(product, v)?;
                continue;
            }
            "expand" => continue,
            other => unreachable!("check_known let {other} through"),
        };
        product.insert(key.clone(), value);
    }
    Ok(())
}

fn images(v: &Value) -> Result<Value, ApiError> {
    let items = params::list(v, "images")?;
    if items.len() > IMAGES_MAX {
        return Err(ApiError::invalid(format!(
            "Invalid array: images must have at most {IMAGES_MAX} elements"
        ))
        .param("images"));
    }
    let mut urls = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        if let Some(url) = params::string(item, &format!("images[{i}]"), 2048)? {
            urls.push(url);
        }
    }
    Ok(json!(urls))
}

/// Stripe refuses to delete a product that prices still use.
fn delete(
    state: &mut StripeState,
    r: &Resource,
    id: &str,
    request: &RequestInfo,
) -> Result<Value, ApiError> {
    if state.store(r).get(id).is_some() && prices::any_for_product(state, id) {
        return Err(ApiError::invalid(
            "This product cannot be deleted because it has one or more user-created prices.",
        ));
    }
    objects::remove(state, r, id, request)
}

/// `active=true|false`.
fn list_filter(q: &Params) -> Result<Filter, ApiError> {
    let Some(v) = q.get("active") else {
        return Ok(Filter::default());
    };
    let active = params::boolean(v, "active")?;
    Ok(Filter {
        needle: None,
        predicate: Some(Box::new(move |p| p["active"] == active)),
    })
}

/// `count` products named `Product <i>`, created one second apart ending now.
fn seed(state: &mut StripeState, count: u64, with_events: bool, now: i64) {
    let first = state.store(&PRODUCTS).minted() + 1;
    for j in 0..count {
        seed_one(state, first + j, now - (count - 1 - j) as i64, with_events);
    }
}

/// Product number `i`; returns its id.
pub fn seed_one(state: &mut StripeState, i: u64, created: i64, with_events: bool) -> String {
    let mut product = template(&state.store(&PRODUCTS).next_id(), created, state.livemode);
    product.insert("name".into(), json!(format!("Product {i}")));
    state.store_mut(&PRODUCTS).insert(&product);
    if with_events {
        let automatic = RequestInfo::default();
        events::record(
            state,
            "product.created",
            &product,
            None,
            &automatic,
            created,
        );
    }
    product["id"].as_str().expect("a string id").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stripe::form;

    fn apply_form(body: &str) -> Result<Object, ApiError> {
        let state = StripeState::new("sk_test_products");
        let mut product = template("prod_test", 1, false);
        create(&state, &mut product, &form::decode(body).unwrap())?;
        Ok(product)
    }

    #[test]
    fn template_has_the_spec_fields() {
        let p = template("prod_1", 5, false);
        for k in [
            "id",
            "object",
            "active",
            "created",
            "description",
            "images",
            "livemode",
            "metadata",
            "name",
            "updated",
            "url",
        ] {
            assert!(p.contains_key(k), "{k}");
        }
        assert_eq!(p["updated"], 5);
    }

    #[test]
    fn create_needs_a_name_and_validates() {
        let p = apply_form(
            "name=Gold&description=Shiny&active=false&metadata[tier]=1&images[]=https://x/a.png&unit_label=seat",
        )
        .unwrap();
        assert_eq!(
            (&p["name"], &p["description"], &p["active"]),
            (&json!("Gold"), &json!("Shiny"), &json!(false))
        );
        assert_eq!(p["metadata"], json!({"tier":"1"}));
        assert_eq!(p["images"], json!(["https://x/a.png"]));
        let cases = [
            ("description=x", Some("parameter_missing"), "name"),
            ("name=", Some("parameter_invalid_empty"), "name"),
            ("name=x&active=maybe", None, "active"),
            ("name=x&price=5", Some("parameter_unknown"), "price"),
            ("name=x&unit_label=thirteen_chrs", None, "unit_label"),
        ];
        for (body, code, param) in cases {
            let e = apply_form(body).unwrap_err();
            assert_eq!(
                (e.status, e.code, e.param.as_deref()),
                (400, code, Some(param)),
                "{body}"
            );
        }
    }

    #[test]
    fn a_product_with_prices_cannot_be_deleted() {
        let mut s = StripeState::new("sk_test_products");
        let product = seed_one(&mut s, 1, 10, false);
        let free = seed_one(&mut s, 2, 10, false);
        let price = json!({"currency":"usd","product": product,"unit_amount":"5"});
        objects::create(
            &mut s,
            &prices::PRICES,
            price.as_object().unwrap(),
            11,
            &RequestInfo::default(),
        )
        .unwrap();
        let e = delete(&mut s, &PRODUCTS, &product, &RequestInfo::default()).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(objects::retrieve(&s, &PRODUCTS, &product).is_ok());
        let d = delete(&mut s, &PRODUCTS, &free, &RequestInfo::default()).unwrap();
        assert_eq!(d, json!({"id": free, "object": "product", "deleted": true}));
        let types: Vec<String> = s
            .events
            .all()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(types, ["price.created", "product.deleted"]);
    }

    #[test]
    fn updates_stamp_updated_and_list_filters_on_active() {
        let mut s = StripeState::new("sk_test_products");
        seed(&mut s, 3, false, 100);
        let all = objects::all_by_id(&s, &PRODUCTS);
        let id = all[0]["id"].as_str().unwrap();
        let p = json!({"active":"false"});
        let updated = objects::update(
            &mut s,
            &PRODUCTS,
            id,
            p.as_object().unwrap(),
            &RequestInfo::default(),
        )
        .unwrap();
        assert!(updated["updated"].as_i64().unwrap() > 100);
        let q = json!({"active":"false"});
        let inactive = objects::list(&s, &PRODUCTS, q.as_object().unwrap()).unwrap();
        assert_eq!(inactive["data"].as_array().unwrap().len(), 1);
        assert_eq!(inactive["data"][0]["id"], id);
        let events = s.events.all();
        assert_eq!(events[0]["type"], "product.updated");
        assert_eq!(events[0]["data"]["previous_attributes"]["active"], true);
    }
}
