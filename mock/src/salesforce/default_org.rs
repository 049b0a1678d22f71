//! The sObject types every org starts with (and gets back on reset):
//! Account, Contact, Lead, Opportunity; the custom objects Invoice__c (one
//! field of every type), Wide__c (800 custom fields) and Narrow__c (48, the
//! same pattern) for schema discovery and wide-object tests; and
//! NoteAndAttachment, which describe knows but SOQL refuses.

use serde_json::{json, Value};

use super::schema::{system_fields, Field, FieldType as T, SObject, Seed, Source};
use super::time;

const WIDE_FIELDS: usize = 800;
const NARROW_FIELDS: usize = 48;

fn id(label: &str) -> Field {
    Field::derived("Id", label, T::Id, Source::Id)
}

fn with_system(mut fields: Vec<Field>) -> Vec<Field> {
    fields.extend(system_fields());
    fields
}

fn pairs(values: Vec<(&str, Value)>) -> Vec<(String, Value)> {
    values
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// Every type of a new org, its schema dated `now_ms`.
pub fn types(now_ms: i64) -> Vec<SObject> {
    vec![
        account(now_ms),
        contact(now_ms),
        lead(now_ms),
        opportunity(now_ms),
        invoice(now_ms),
        numbered("Wide__c", "Wide", "a02", WIDE_FIELDS, wide_seed, now_ms),
        numbered(
            "Narrow__c",
            "Narrow",
            "a03",
            NARROW_FIELDS,
            narrow_seed,
            now_ms,
        ),
        note_and_attachment(now_ms),
    ]
}

// Industry, Type, LeadSource, Status and StageName are unrestricted
// picklists: Salesforce accepts other values there too.
const INDUSTRIES: &[&str] = &["Agriculture", "Banking", "Technology", "Retail"];
const LEAD_SOURCES: &[&str] = &["Web", "Phone Inquiry", "Partner Referral", "Other"];

fn account(now_ms: i64) -> SObject {
    let billing = |name: &str, label: &str, length: usize| {
        Field::new(name, label, T::String)
            .length(length)
            .component_of("BillingAddress")
    };
    let fields = vec![
        id("Account ID"),
        Field::new("Name", "Account Name", T::String).required(),
        Field::new("Type", "Account Type", T::Picklist)
            .picklist(&["Prospect", "Customer - Direct", "Partner"], false),
        Field::new("Industry", "Industry", T::Picklist).picklist(INDUSTRIES, false),
        Field::new("Phone", "Account Phone", T::Phone),
        Field::new("Website", "Website", T::Url),
        Field::new("BillingStreet", "Billing Street", T::Textarea)
            .length(255)
            .component_of("BillingAddress"),
        billing("BillingCity", "Billing City", 40),
        billing("BillingState", "Billing State/Province", 80),
        billing("BillingPostalCode", "Billing Zip/Postal Code", 20),
        billing("BillingCountry", "Billing Country", 80),
        Field::derived(
            "BillingAddress",
            "Billing Address",
            T::Address,
            Source::Compound,
        ),
        Field::new("AnnualRevenue", "Annual Revenue", T::Currency),
        Field::new("NumberOfEmployees", "Employees", T::Int),
        Field::new("Description", "Account Description", T::Textarea),
    ];
    SObject::new(
        "Account",
        "Account",
        "Accounts",
        Some("001"),
        with_system(fields),
        |i| {
            pairs(vec![
                ("Name", format!("Account {i}").into()),
                ("Industry", "Technology".into()),
                ("Phone", format!("+1 555 {:07}", i % 10_000_000).into()),
            ])
        },
        now_ms,
    )
}

fn contact(now_ms: i64) -> SObject {
    let fields = vec![
        id("Contact ID"),
        Field::new("FirstName", "First Name", T::String).length(40),
        Field::new("LastName", "Last Name", T::String)
            .length(80)
            .required(),
        Field::derived("Name", "Full Name", T::String, Source::FullName).length(121),
        Field::new("Email", "Email", T::Email),
        Field::new("Phone", "Business Phone", T::Phone),
        Field::new("Title", "Title", T::String).length(128),
        Field::new("Department", "Department", T::String).length(80),
        Field::new("AccountId", "Account ID", T::Reference).reference("Account", "Account"),
        Field::new("MailingCity", "Mailing City", T::String).length(40),
        Field::new("LeadSource", "Lead Source", T::Picklist).picklist(LEAD_SOURCES, false),
        Field::new("Score__c", "Score", T::Double).numeric(18, 2),
    ];
    let mut t = SObject::new(
        "Contact",
        "Contact",
        "Contacts",
        Some("003"),
        with_system(fields),
        |i| {
            pairs(vec![
                ("FirstName", format!("First{i}").into()),
                ("LastName", format!("Contact {i}").into()),
                ("Email", format!("contact{i}@example.com").into()),
                ("Title", "Engineer".into()),
            ])
        },
        now_ms,
    );
    t.unique_email = true;
    t
}

fn lead(now_ms: i64) -> SObject {
    let fields = vec![
        id("Lead ID"),
        Field::new("FirstName", "First Name", T::String).length(40),
        Field::new("LastName", "Last Name", T::String)
            .length(80)
            .required(),
        Field::derived("Name", "Full Name", T::String, Source::FullName).length(121),
        Field::new("Company", "Company", T::String).required(),
        Field::new("Email", "Email", T::Email),
        Field::new("Phone", "Phone", T::Phone),
        Field::new("Title", "Title", T::String).length(128),
        Field::new("Status", "Lead Status", T::Picklist)
            .picklist(
                &[
                    "Open - Not Contacted",
                    "Working - Contacted",
                    "Closed - Converted",
                ],
                false,
            )
            .required()
            .default("Open - Not Contacted"),
        Field::new("LeadSource", "Lead Source", T::Picklist).picklist(LEAD_SOURCES, false),
        Field::new("Industry", "Industry", T::Picklist).picklist(INDUSTRIES, false),
    ];
    let mut t = SObject::new(
        "Lead",
        "Lead",
        "Leads",
        Some("00Q"),
        with_system(fields),
        |i| {
            pairs(vec![
                ("FirstName", format!("First{i}").into()),
                ("LastName", format!("Lead {i}").into()),
                ("Company", format!("Company {i}").into()),
                ("Email", format!("lead{i}@example.com").into()),
            ])
        },
        now_ms,
    );
    t.unique_email = true;
    t
}

fn opportunity(now_ms: i64) -> SObject {
    let fields = vec![
        id("Opportunity ID"),
        Field::new("Name", "Name", T::String).length(120).required(),
        Field::new("StageName", "Stage", T::Picklist)
            .picklist(
                &["Prospecting", "Qualification", "Closed Won", "Closed Lost"],
                false,
            )
            .length(255)
            .required(),
        Field::new("CloseDate", "Close Date", T::Date).required(),
        Field::new("Amount", "Amount", T::Currency),
        Field::new("Probability", "Probability (%)", T::Percent),
        Field::new("AccountId", "Account ID", T::Reference).reference("Account", "Account"),
        Field::new("Type", "Opportunity Type", T::Picklist)
            .picklist(&["New Customer", "Existing Customer - Upgrade"], false),
        Field::new("LeadSource", "Lead Source", T::Picklist).picklist(LEAD_SOURCES, false),
        Field::new("Description", "Description", T::Textarea),
    ];
    SObject::new(
        "Opportunity",
        "Opportunity",
        "Opportunities",
        Some("006"),
        with_system(fields),
        |i| {
            pairs(vec![
                ("Name", format!("Opportunity {i}").into()),
                ("StageName", "Prospecting".into()),
                ("CloseDate", "2026-12-31".into()),
                ("Amount", ((1000 + i % 100_000) as f64).into()),
            ])
        },
        now_ms,
    )
}

fn invoice(now_ms: i64) -> SObject {
    let fields = vec![
        id("Record ID"),
        Field::new("Name", "Invoice Name", T::String)
            .length(80)
            .required(),
        Field::new("Amount__c", "Amount", T::Currency),
        Field::new("Score__c", "Score", T::Percent).numeric(5, 2),
        Field::new("Status__c", "Status", T::Picklist)
            .picklist(&["Draft", "Sent", "Paid"], true)
            .default("Draft"),
        Field::new("Tags__c", "Tags", T::Multipicklist)
            .picklist(&["Urgent", "Export", "Gift"], true),
        Field::new("Paid__c", "Paid", T::Boolean)
            .required()
            .default(false),
        Field::new("Quantity__c", "Quantity", T::Int),
        Field::new("Due_Date__c", "Due Date", T::Date),
        Field::new("Paid_At__c", "Paid At", T::Datetime),
        Field::new("Reminder__c", "Reminder", T::Time),
        Field::new("Account__c", "Account", T::Reference).reference("Account", "Account__r"),
        Field::derived(
            "Total__c",
            "Total",
            T::Currency,
            Source::Product("Amount__c".into(), "Quantity__c".into()),
        )
        .numeric(18, 2),
        Field::new("Code__c", "Code", T::String)
            .length(20)
            .create_only(),
        Field::new("Location__Latitude__s", "Location (Latitude)", T::Double)
            .numeric(9, 6)
            .component_of("Location__c"),
        Field::new("Location__Longitude__s", "Location (Longitude)", T::Double)
            .numeric(9, 6)
            .component_of("Location__c"),
        Field::derived("Location__c", "Location", T::Location, Source::Compound),
        Field::new("Attachment__c", "Attachment", T::Base64).length(32_000_000),
    ];
    SObject::new(
        "Invoice__c",
        "Invoice",
        "Invoices",
        Some("a01"),
        with_system(fields),
        |i| {
            pairs(vec![
                ("Name", format!("Invoice {i}").into()),
                ("Amount__c", ((100 + i % 1000) as f64).into()),
                ("Score__c", ((i % 100) as f64).into()),
                (
                    "Status__c",
                    ["Draft", "Sent", "Paid"][(i % 3) as usize].into(),
                ),
                ("Tags__c", "Urgent;Export".into()),
                ("Paid__c", (i % 3 == 2).into()),
                ("Quantity__c", (1 + i % 10).into()),
                (
                    "Due_Date__c",
                    time::format_date(20_454 + (i % 365) as i64).into(),
                ),
                (
                    "Paid_At__c",
                    time::format_datetime(1_767_225_600_000 + i as i64 * 1000).into(),
                ),
                ("Reminder__c", "09:30:00.000Z".into()),
                ("Code__c", format!("INV-{i}").into()),
                ("Location__Latitude__s", json!(48.8566)),
                ("Location__Longitude__s", json!(2.3522)),
                ("Attachment__c", "aGVsbG8=".into()),
            ])
        },
        now_ms,
    )
}

/// The k-th (1-based) custom field of Wide__c/Narrow__c cycles through these.
const NUMBERED_TYPES: [T; 4] = [T::String, T::Double, T::Boolean, T::Date];

fn numbered_name(k: usize, width: usize) -> String {
    format!("Custom_Field_Number_{k:0width$}__c")
}

/// The k-th custom field's value in the n-th seeded record: the same in
/// Wide__c and Narrow__c, so their backfills compare record by record.
fn numbered_value(k: usize, n: u64) -> Value {
    match NUMBERED_TYPES[(k - 1) % NUMBERED_TYPES.len()] {
        T::String => format!("Value {k} of {n}").into(),
        T::Double => json!(n as f64 + k as f64 / 1000.0),
        T::Boolean => json!((n + k as u64).is_multiple_of(2)),
        _ => time::format_date(20_454 + ((n + k as u64) % 3650) as i64).into(),
    }
}

fn numbered_seed(n: u64, count: usize, width: usize, type_label: &str) -> Vec<(String, Value)> {
    let mut values = vec![("Name".to_string(), format!("{type_label} {n}").into())];
    values.extend((1..=count).map(|k| (numbered_name(k, width), numbered_value(k, n))));
    values
}

fn wide_seed(n: u64) -> Vec<(String, Value)> {
    numbered_seed(n, WIDE_FIELDS, 3, "Wide")
}

fn narrow_seed(n: u64) -> Vec<(String, Value)> {
    numbered_seed(n, NARROW_FIELDS, 2, "Narrow")
}

/// Id, Name, `count` custom fields `Custom_Field_Number_<k>__c`, system fields.
fn numbered(
    name: &str,
    label: &str,
    prefix: &str,
    count: usize,
    seed: Seed,
    now_ms: i64,
) -> SObject {
    let width = count.to_string().len();
    let mut fields = vec![
        id("Record ID"),
        Field::new("Name", &format!("{label} Name"), T::String)
            .length(80)
            .required(),
    ];
    fields.extend((1..=count).map(|k| {
        let ftype = NUMBERED_TYPES[(k - 1) % NUMBERED_TYPES.len()];
        Field::new(
            &numbered_name(k, width),
            &format!("Custom Field Number {k}"),
            ftype,
        )
    }));
    SObject::new(
        name,
        label,
        &format!("{label}s"),
        Some(prefix),
        with_system(fields),
        seed,
        now_ms,
    )
}

/// Listed and described, but SOQL refuses it and it has no records.
fn note_and_attachment(now_ms: i64) -> SObject {
    let fields = vec![
        id("Note And Attachment ID"),
        Field::derived("Title", "Title", T::String, Source::Stored(0)),
        Field::derived("IsNote", "Is Note", T::Boolean, Source::Stored(0)),
        Field::derived("ParentId", "Parent ID", T::Reference, Source::Stored(0))
            .reference("Account", "Parent"),
    ];
    let mut t = SObject::new(
        "NoteAndAttachment",
        "Note and Attachment",
        "Notes and Attachments",
        None,
        with_system(fields),
        |_| Vec::new(),
        now_ms,
    );
    t.queryable = false;
    t.writable = false;
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_starts_with_id_has_the_system_fields_and_seeds_real_fields() {
        for t in types(0) {
            assert_eq!(t.fields[0].source, Source::Id, "{}", t.name);
            for s in [
                Source::CreatedDate,
                Source::LastModifiedDate,
                Source::SystemModstamp,
                Source::IsDeleted,
            ] {
                assert!(t.index_of(&s).is_some(), "{} {s:?}", t.name);
            }
            for (name, _) in (t.seed)(1) {
                let f = &t.fields[t.field_index(&name).unwrap()];
                assert!(f.createable, "{}.{name}", t.name);
            }
        }
        let all = types(0);
        let wide = all.iter().find(|t| t.name == "Wide__c").unwrap();
        assert_eq!(wide.fields.len(), 2 + 800 + 4);
        assert_eq!(wide.fields[801].name, "Custom_Field_Number_800__c");
        assert_eq!(wide.fields[5].ftype, T::Date);
        let narrow = all.iter().find(|t| t.name == "Narrow__c").unwrap();
        assert_eq!(narrow.fields[2].name, "Custom_Field_Number_01__c");
        assert_eq!(narrow_seed(7)[3].1, wide_seed(7)[3].1);
    }
}
