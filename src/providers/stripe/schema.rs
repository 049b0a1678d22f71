//! Stripe's schema, compiled in: the collections IMPORT makes tables of,
//! their fields, and the events that describe their records.

use crate::providers::Writable::{Always, Never, OnInsert};
use crate::providers::{CollectionSpec, CompiledCollection, CompiledField, Writable, WriteOp};

/// Stripe's times are unix seconds, kept as timestamptz.
pub(super) const fn col(name: &'static str, sql_type: &'static str, writable: Writable) -> CompiledField {
    let api_type = match sql_type.as_bytes() {
        b"timestamptz" => "timestamp",
        _ => sql_type,
    };
    CompiledField { name, api_type, sql_type, writable }
}

/// What an event does to the record its object describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    /// The object is the record's new state.
    Upsert,
    /// The object was deleted.
    Delete,
}

/// A Stripe collection: where it lives and which events describe it.
pub(super) struct StripeCollection {
    pub(super) spec: CompiledCollection,
    /// The `object` field of its objects, e.g. "customer".
    pub(super) object: &'static str,
    /// Top-level fields holding another object's id, or that object where a
    /// request expands it (`expand[]=customer`): the spec's `anyOf` of a
    /// string and an object. Records keep the id.
    pub(super) references: &'static [&'static str],
    pub(super) path: &'static str,
    /// Query params the backfill's list adds, ending in `&`.
    pub(super) list_query: &'static str,
    /// Event types are `<event_prefix>.<action>`.
    pub(super) event_prefix: &'static str,
    /// The actions sync follows (Stripe takes at most 20 types) and what
    /// each one does; an event of any other type is never applied.
    pub(super) events: &'static [(&'static str, Effect)],
}

const CREATED_UPDATED_DELETED: &[(&str, Effect)] =
    &[("created", Effect::Upsert), ("updated", Effect::Upsert), ("deleted", Effect::Delete)];

pub(super) const COLLECTIONS: &[StripeCollection] = &[
    StripeCollection {
        spec: CompiledCollection {
            name: "customers",
            fields: &[
                col("id", "text", Never),
                col("email", "text", Always),
                col("name", "text", Always),
                col("description", "text", Always),
                col("phone", "text", Always),
                col("balance", "bigint", Always),
                col("currency", "text", Never),
                col("delinquent", "boolean", Never),
                col("metadata", "jsonb", Always),
                col("address", "jsonb", Always),
                col("created", "timestamptz", Never),
            ],
            writes: &WriteOp::ALL,
            writes_hint: None,
        },
        object: "customer",
        references: &["default_source", "test_clock"],
        path: "/v1/customers",
        list_query: "",
        event_prefix: "customer",
        events: CREATED_UPDATED_DELETED,
    },
    StripeCollection {
        spec: CompiledCollection {
            name: "products",
            fields: &[
                col("id", "text", Never),
                col("name", "text", Always),
                col("description", "text", Always),
                col("active", "boolean", Always),
                col("unit_label", "text", Always),
                col("url", "text", Always),
                col("images", "jsonb", Always),
                col("metadata", "jsonb", Always),
                col("created", "timestamptz", Never),
                col("updated", "timestamptz", Never),
            ],
            writes: &WriteOp::ALL,
            writes_hint: None,
        },
        object: "product",
        references: &["tax_code"],
        path: "/v1/products",
        list_query: "",
        event_prefix: "product",
        events: CREATED_UPDATED_DELETED,
    },
    StripeCollection {
        spec: CompiledCollection {
            name: "prices",
            fields: &[
                col("id", "text", Never),
                col("product", "text", OnInsert),
                col("active", "boolean", Always),
                col("currency", "text", OnInsert),
                col("unit_amount", "bigint", OnInsert),
                col("nickname", "text", Always),
                col("recurring", "jsonb", OnInsert),
                col("type", "text", Never),
                col("metadata", "jsonb", Always),
                col("created", "timestamptz", Never),
            ],
            // Stripe has no DELETE for prices.
            writes: &[WriteOp::Insert, WriteOp::Update],
            writes_hint: Some("Stripe never deletes a price: archive it with UPDATE … SET active = false."),
        },
        object: "price",
        references: &["product"],
        path: "/v1/prices",
        list_query: "",
        event_prefix: "price",
        // price.deleted exists though the API cannot delete a price (the Dashboard can).
        events: CREATED_UPDATED_DELETED,
    },
    StripeCollection {
        spec: CompiledCollection {
            name: "subscriptions",
            fields: &[
                col("id", "text", Never),
                col("customer", "text", OnInsert),
                col("status", "text", Never),
                // Written as Stripe's create param, `[{"price": "price_…", "quantity": 1}]`;
                // read as Stripe's list object of subscription items.
                col("items", "jsonb", OnInsert),
                col("cancel_at_period_end", "boolean", Always),
                col("current_period_start", "timestamptz", Never),
                col("current_period_end", "timestamptz", Never),
                col("cancel_at", "timestamptz", Never),
                col("canceled_at", "timestamptz", Never),
                col("ended_at", "timestamptz", Never),
                col("latest_invoice", "text", Never),
                col("metadata", "jsonb", Always),
                col("start_date", "timestamptz", Never),
                col("created", "timestamptz", Never),
            ],
            // DELETE cancels the subscription (see `events`).
            writes: &WriteOp::ALL,
            writes_hint: None,
        },
        object: "subscription",
        references: &[
            "customer",
            "default_payment_method",
            "default_source",
            "latest_invoice",
            "pending_setup_intent",
            "schedule",
            "test_clock",
        ],
        path: "/v1/subscriptions",
        // Canceled subscriptions stay in Stripe, and so stay rows; the
        // default list leaves them out.
        list_query: "status=all&",
        event_prefix: "customer.subscription",
        // customer.subscription.deleted is a cancellation: its object is the
        // subscription, still retrievable, with status "canceled", the same
        // object a DELETE answers. So it is applied as the record's new
        // state, not as a deletion.
        events: &[
            ("created", Effect::Upsert),
            ("updated", Effect::Upsert),
            ("deleted", Effect::Upsert),
            ("pending_update_applied", Effect::Upsert),
            ("pending_update_expired", Effect::Upsert),
            ("trial_will_end", Effect::Upsert),
        ],
    },
    StripeCollection {
        spec: CompiledCollection {
            name: "invoices",
            fields: &[
                col("id", "text", Never),
                col("customer", "text", Never),
                col("subscription", "text", Never),
                col("status", "text", Never),
                col("number", "text", Never),
                col("currency", "text", Never),
                col("amount_due", "bigint", Never),
                col("amount_paid", "bigint", Never),
                col("amount_remaining", "bigint", Never),
                col("total", "bigint", Never),
                col("paid", "boolean", Never),
                col("billing_reason", "text", Never),
                col("description", "text", Never),
                col("lines", "jsonb", Never),
                col("metadata", "jsonb", Never),
                col("period_start", "timestamptz", Never),
                col("period_end", "timestamptz", Never),
                col("due_date", "timestamptz", Never),
                col("created", "timestamptz", Never),
            ],
            writes: &[],
            writes_hint: Some(
                "Stripe makes invoices as subscriptions bill; the table follows them within one poll interval.",
            ),
        },
        object: "invoice",
        references: &[
            "charge",
            "customer",
            "default_payment_method",
            "default_source",
            "on_behalf_of",
            "payment_intent",
            "quote",
            "subscription",
            "test_clock",
        ],
        path: "/v1/invoices",
        list_query: "",
        event_prefix: "invoice",
        // An invoice moves on through events of its own (finalized, paid, …)
        // that may come without an invoice.updated: each carries its new state.
        events: &[
            ("created", Effect::Upsert),
            ("updated", Effect::Upsert),
            ("finalized", Effect::Upsert),
            ("sent", Effect::Upsert),
            ("paid", Effect::Upsert),
            ("payment_succeeded", Effect::Upsert),
            ("payment_failed", Effect::Upsert),
            ("payment_action_required", Effect::Upsert),
            ("marked_uncollectible", Effect::Upsert),
            ("voided", Effect::Upsert),
            ("deleted", Effect::Delete),
        ],
    },
];

/// Each collection's spec as IMPORT creates its table: what a reply's
/// records are read with before a table's own spec fills their columns.
static IMPORTED: once_cell::sync::Lazy<Vec<CollectionSpec>> =
    once_cell::sync::Lazy::new(|| COLLECTIONS.iter().map(|c| crate::schema::imported_spec(&c.spec.schema())).collect());

pub(super) fn stripe_collection(spec: &CollectionSpec) -> &'static StripeCollection {
    COLLECTIONS.iter().find(|c| c.spec.name == spec.name).expect("a Stripe spec is bound to a compiled collection")
}

pub(super) fn imported(collection: &StripeCollection) -> &'static CollectionSpec {
    IMPORTED.iter().find(|s| s.name == collection.spec.name).expect("every compiled collection is imported")
}
