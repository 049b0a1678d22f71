//! The sObject types and their fields, as data. Adding a type is one
//! `SObject` value and one line in `TYPES`; storage, validation, SOQL and the
//! endpoints are generic.

/// What a field holds and how a write to it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The record's id (read-only).
    Id,
    /// A string of at most this many characters.
    Text(usize),
    /// Text(80) that must look like an email address.
    Email,
    /// A number (currency, percent, count).
    Number,
    /// `YYYY-MM-DD`.
    Date,
    /// The id of a live record of this type, or null.
    Reference(&'static str),
    /// Read-only system fields.
    CreatedDate,
    LastModifiedDate,
    SystemModstamp,
    IsDeleted,
    /// Read-only "FirstName LastName" (Contact, Lead).
    FullName,
}

impl Kind {
    pub fn writable(self) -> bool {
        matches!(
            self,
            Kind::Text(_) | Kind::Email | Kind::Number | Kind::Date | Kind::Reference(_)
        )
    }

    pub fn is_datetime(self) -> bool {
        matches!(
            self,
            Kind::CreatedDate | Kind::LastModifiedDate | Kind::SystemModstamp
        )
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    /// As in Salesforce's messages ("Last Name: data value too large…").
    pub label: &'static str,
    pub kind: Kind,
    pub required: bool,
    /// The value a new record gets when the field is not given.
    pub default: Option<&'static str>,
}

const fn f(name: &'static str, label: &'static str, kind: Kind) -> Field {
    Field {
        name,
        label,
        kind,
        required: false,
        default: None,
    }
}

const fn required(name: &'static str, label: &'static str, kind: Kind) -> Field {
    Field {
        required: true,
        ..f(name, label, kind)
    }
}

const fn defaulted(
    name: &'static str,
    label: &'static str,
    kind: Kind,
    value: &'static str,
) -> Field {
    Field {
        default: Some(value),
        ..f(name, label, kind)
    }
}

#[derive(Debug)]
pub struct SObject {
    pub name: &'static str,
    /// The first three characters of every id.
    pub key_prefix: &'static str,
    /// Id first, then the rest; a record stores one value per field.
    pub fields: &'static [Field],
    /// No two live records may share a (case-insensitive) Email.
    pub unique_email: bool,
    /// Fills field values for the i-th seeded record.
    pub seed: fn(u64) -> Vec<(&'static str, serde_json::Value)>,
}

impl PartialEq for SObject {
    fn eq(&self, other: &SObject) -> bool {
        self.name == other.name
    }
}

impl SObject {
    /// Case-insensitive, as in Salesforce.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| f.name.eq_ignore_ascii_case(name))
    }

    pub fn index_of_kind(&self, kind: Kind) -> Option<usize> {
        self.fields.iter().position(|f| f.kind == kind)
    }
}

const SYSTEM_TAIL: [Field; 4] = [
    f("IsDeleted", "Deleted", Kind::IsDeleted),
    f("CreatedDate", "Created Date", Kind::CreatedDate),
    f(
        "LastModifiedDate",
        "Last Modified Date",
        Kind::LastModifiedDate,
    ),
    f("SystemModstamp", "System Modstamp", Kind::SystemModstamp),
];

pub static ACCOUNT: SObject = SObject {
    name: "Account",
    key_prefix: "001",
    fields: &[
        f("Id", "Account ID", Kind::Id),
        required("Name", "Account Name", Kind::Text(255)),
        f("Type", "Account Type", Kind::Text(255)),
        f("Industry", "Industry", Kind::Text(255)),
        f("Phone", "Account Phone", Kind::Text(40)),
        f("Website", "Website", Kind::Text(255)),
        f("BillingCity", "Billing City", Kind::Text(40)),
        f("BillingCountry", "Billing Country", Kind::Text(80)),
        f("AnnualRevenue", "Annual Revenue", Kind::Number),
        f("NumberOfEmployees", "Employees", Kind::Number),
        f("Description", "Account Description", Kind::Text(32000)),
        SYSTEM_TAIL[0],
        SYSTEM_TAIL[1],
        SYSTEM_TAIL[2],
        SYSTEM_TAIL[3],
    ],
    unique_email: false,
    seed: |i| {
        vec![
            ("Name", format!("Account {i}").into()),
            ("Industry", "Technology".into()),
            ("Phone", format!("+1 555 {:07}", i % 10_000_000).into()),
        ]
    },
};

pub static CONTACT: SObject = SObject {
    name: "Contact",
    key_prefix: "003",
    fields: &[
        f("Id", "Contact ID", Kind::Id),
        f("FirstName", "First Name", Kind::Text(40)),
        required("LastName", "Last Name", Kind::Text(80)),
        f("Name", "Full Name", Kind::FullName),
        f("Email", "Email", Kind::Email),
        f("Phone", "Business Phone", Kind::Text(40)),
        f("Title", "Title", Kind::Text(128)),
        f("Department", "Department", Kind::Text(80)),
        f("AccountId", "Account ID", Kind::Reference("Account")),
        f("MailingCity", "Mailing City", Kind::Text(40)),
        f("LeadSource", "Lead Source", Kind::Text(255)),
        SYSTEM_TAIL[0],
        SYSTEM_TAIL[1],
        SYSTEM_TAIL[2],
        SYSTEM_TAIL[3],
    ],
    unique_email: true,
    seed: |i| {
        vec![
            ("FirstName", format!("First{i}").into()),
            ("LastName", format!("Contact {i}").into()),
            ("Email", format!("contact{i}@example.com").into()),
            ("Title", "Engineer".into()),
        ]
    },
};

pub static LEAD: SObject = SObject {
    name: "Lead",
    key_prefix: "00Q",
    fields: &[
        f("Id", "Lead ID", Kind::Id),
        f("FirstName", "First Name", Kind::Text(40)),
        required("LastName", "Last Name", Kind::Text(80)),
        f("Name", "Full Name", Kind::FullName),
        required("Company", "Company", Kind::Text(255)),
        f("Email", "Email", Kind::Email),
        f("Phone", "Phone", Kind::Text(40)),
        f("Title", "Title", Kind::Text(128)),
        defaulted(
            "Status",
            "Lead Status",
            Kind::Text(255),
            "Open - Not Contacted",
        ),
        f("LeadSource", "Lead Source", Kind::Text(255)),
        f("Industry", "Industry", Kind::Text(255)),
        SYSTEM_TAIL[0],
        SYSTEM_TAIL[1],
        SYSTEM_TAIL[2],
        SYSTEM_TAIL[3],
    ],
    unique_email: true,
    seed: |i| {
        vec![
            ("FirstName", format!("First{i}").into()),
            ("LastName", format!("Lead {i}").into()),
            ("Company", format!("Company {i}").into()),
            ("Email", format!("lead{i}@example.com").into()),
        ]
    },
};

pub static OPPORTUNITY: SObject = SObject {
    name: "Opportunity",
    key_prefix: "006",
    fields: &[
        f("Id", "Opportunity ID", Kind::Id),
        required("Name", "Name", Kind::Text(120)),
        required("StageName", "Stage", Kind::Text(255)),
        required("CloseDate", "Close Date", Kind::Date),
        f("Amount", "Amount", Kind::Number),
        f("Probability", "Probability (%)", Kind::Number),
        f("AccountId", "Account ID", Kind::Reference("Account")),
        f("Type", "Opportunity Type", Kind::Text(255)),
        f("LeadSource", "Lead Source", Kind::Text(255)),
        f("Description", "Description", Kind::Text(32000)),
        SYSTEM_TAIL[0],
        SYSTEM_TAIL[1],
        SYSTEM_TAIL[2],
        SYSTEM_TAIL[3],
    ],
    unique_email: false,
    seed: |i| {
        vec![
            ("Name", format!("Opportunity {i}").into()),
            ("StageName", "Prospecting".into()),
            ("CloseDate", "2026-12-31".into()),
            ("Amount", ((1000 + i % 100_000) as f64).into()),
        ]
    },
};

pub static TYPES: &[&SObject] = &[&ACCOUNT, &CONTACT, &LEAD, &OPPORTUNITY];

/// By name, case-insensitively (as the API accepts them).
pub fn sobject(name: &str) -> Option<&'static SObject> {
    TYPES
        .iter()
        .copied()
        .find(|t| t.name.eq_ignore_ascii_case(name))
}

/// The type an 18-character id belongs to, by its key prefix.
pub fn sobject_of_id(id: &str) -> Option<&'static SObject> {
    TYPES.iter().copied().find(|t| id.starts_with(t.key_prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_starts_with_id_and_has_the_system_fields() {
        for t in TYPES {
            assert_eq!(t.fields[0].kind, Kind::Id, "{}", t.name);
            for k in [
                Kind::CreatedDate,
                Kind::LastModifiedDate,
                Kind::SystemModstamp,
                Kind::IsDeleted,
            ] {
                assert!(t.index_of_kind(k).is_some(), "{} {k:?}", t.name);
            }
            for (name, _) in (t.seed)(1) {
                assert!(t.fields[t.field_index(name).unwrap()].kind.writable());
            }
        }
        assert_eq!(sobject("contact").unwrap().name, "Contact");
        assert_eq!(CONTACT.field_index("lastname"), Some(2));
        assert_eq!(sobject_of_id("00Q5g0000000001AAA").unwrap().name, "Lead");
    }
}
