//! The shape of sObject types as run-time data: each account's org holds its
//! own copy (see `default_org.rs` for what it starts with), so the admin can
//! add and remove fields of one org while storage, validation, SOQL and the
//! endpoints stay generic.

use std::collections::HashMap;

use serde_json::Value;

/// A field's type as Salesforce names it in describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Id,
    Reference,
    String,
    Picklist,
    Multipicklist,
    Textarea,
    Email,
    Phone,
    Url,
    Boolean,
    Int,
    Double,
    Currency,
    Percent,
    Date,
    Datetime,
    Time,
    Address,
    Location,
    Base64,
}

impl FieldType {
    const ALL: [FieldType; 20] = [
        FieldType::Id,
        FieldType::Reference,
        FieldType::String,
        FieldType::Picklist,
        FieldType::Multipicklist,
        FieldType::Textarea,
        FieldType::Email,
        FieldType::Phone,
        FieldType::Url,
        FieldType::Boolean,
        FieldType::Int,
        FieldType::Double,
        FieldType::Currency,
        FieldType::Percent,
        FieldType::Date,
        FieldType::Datetime,
        FieldType::Time,
        FieldType::Address,
        FieldType::Location,
        FieldType::Base64,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FieldType::Id => "id",
            FieldType::Reference => "reference",
            FieldType::String => "string",
            FieldType::Picklist => "picklist",
            FieldType::Multipicklist => "multipicklist",
            FieldType::Textarea => "textarea",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Boolean => "boolean",
            FieldType::Int => "int",
            FieldType::Double => "double",
            FieldType::Currency => "currency",
            FieldType::Percent => "percent",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Time => "time",
            FieldType::Address => "address",
            FieldType::Location => "location",
            FieldType::Base64 => "base64",
        }
    }

    pub fn parse(name: &str) -> Option<FieldType> {
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// The SOAP API's type, which describe reports next to `type`.
    pub fn soap_type(self) -> &'static str {
        match self {
            FieldType::Id | FieldType::Reference => "tns:ID",
            FieldType::Boolean => "xsd:boolean",
            FieldType::Int => "xsd:int",
            FieldType::Double | FieldType::Currency | FieldType::Percent => "xsd:double",
            FieldType::Date => "xsd:date",
            FieldType::Datetime => "xsd:dateTime",
            FieldType::Time => "xsd:time",
            FieldType::Address => "urn:address",
            FieldType::Location => "urn:location",
            FieldType::Base64 => "xsd:base64Binary",
            _ => "xsd:string",
        }
    }

    /// Made of other fields (its components), never written directly.
    pub fn is_compound(self) -> bool {
        matches!(self, FieldType::Address | FieldType::Location)
    }

    /// A JSON number with a precision and scale.
    pub fn is_decimal(self) -> bool {
        matches!(
            self,
            FieldType::Double | FieldType::Currency | FieldType::Percent
        )
    }

    /// Text with a maximum length.
    pub fn has_length(self) -> bool {
        matches!(
            self,
            FieldType::Id
                | FieldType::Reference
                | FieldType::String
                | FieldType::Picklist
                | FieldType::Multipicklist
                | FieldType::Textarea
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Url
        )
    }

    fn default_length(self) -> usize {
        match self {
            FieldType::Id | FieldType::Reference => 18,
            FieldType::Textarea => 32_000,
            FieldType::Multipicklist => 4_099,
            FieldType::Email => 80,
            FieldType::Phone => 40,
            t if t.has_length() => 255,
            _ => 0,
        }
    }
}

/// Where a field's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Kept in the record, at this index of its values. Indexes are handed
    /// out by `SObject` and never reused, so a removed field's values can't
    /// resurface under a new field.
    Stored(usize),
    Id,
    CreatedDate,
    LastModifiedDate,
    SystemModstamp,
    IsDeleted,
    /// "FirstName LastName" (Contact, Lead).
    FullName,
    /// A formula: the product of two number fields, null unless both are set.
    Product(String, String),
    /// An address or location built from the fields naming it as their compound.
    Compound,
}

impl Source {
    /// CreatedDate, LastModifiedDate and SystemModstamp: what SOQL filters on.
    pub fn is_system_datetime(&self) -> bool {
        matches!(
            self,
            Source::CreatedDate | Source::LastModifiedDate | Source::SystemModstamp
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    /// As in Salesforce's messages ("Last Name: data value too large…").
    pub label: String,
    pub ftype: FieldType,
    pub source: Source,
    pub length: usize,
    pub precision: u32,
    pub scale: u32,
    pub createable: bool,
    pub updateable: bool,
    pub nillable: bool,
    pub custom: bool,
    /// The value a new record gets when the field is not given.
    pub default: Option<Value>,
    /// The address or location this field is a component of.
    pub compound: Option<String>,
    /// For a reference: the type it points to and the relationship's name.
    pub reference_to: Option<String>,
    pub relationship_name: Option<String>,
    pub picklist: Vec<String>,
    /// Only the picklist's values may be written.
    pub restricted: bool,
}

impl Field {
    /// A writable, nillable field kept in the record; the builder methods
    /// below make it something else.
    pub fn new(name: &str, label: &str, ftype: FieldType) -> Field {
        let (precision, scale) = match ftype {
            FieldType::Currency => (18, 2),
            FieldType::Double => (18, 0),
            FieldType::Percent => (3, 0),
            _ => (0, 0),
        };
        Field {
            name: name.to_string(),
            label: label.to_string(),
            ftype,
            // Renumbered by SObject::new / add_field.
            source: Source::Stored(0),
            length: ftype.default_length(),
            precision,
            scale,
            createable: true,
            updateable: true,
            nillable: true,
            custom: name.ends_with("__c") || name.ends_with("__s"),
            default: None,
            compound: None,
            reference_to: None,
            relationship_name: None,
            picklist: Vec::new(),
            restricted: false,
        }
    }

    /// Computed by the server: never createable or updateable.
    pub fn derived(name: &str, label: &str, ftype: FieldType, source: Source) -> Field {
        Field {
            source,
            createable: false,
            updateable: false,
            nillable: ftype != FieldType::Id && ftype != FieldType::Boolean,
            ..Field::new(name, label, ftype)
        }
    }

    pub fn length(self, length: usize) -> Field {
        Field { length, ..self }
    }

    pub fn numeric(self, precision: u32, scale: u32) -> Field {
        Field {
            precision,
            scale,
            ..self
        }
    }

    /// Not nillable: a record must have a value.
    pub fn required(self) -> Field {
        Field {
            nillable: false,
            ..self
        }
    }

    pub fn default(self, value: impl Into<Value>) -> Field {
        Field {
            default: Some(value.into()),
            ..self
        }
    }

    pub fn picklist(self, values: &[&str], restricted: bool) -> Field {
        Field {
            picklist: values.iter().map(|v| v.to_string()).collect(),
            restricted,
            ..self
        }
    }

    pub fn reference(self, to: &str, relationship: &str) -> Field {
        Field {
            reference_to: Some(to.to_string()),
            relationship_name: Some(relationship.to_string()),
            ..self
        }
    }

    pub fn component_of(self, compound: &str) -> Field {
        Field {
            compound: Some(compound.to_string()),
            ..self
        }
    }

    /// Set on create, read-only afterwards.
    pub fn create_only(self) -> Field {
        Field {
            updateable: false,
            ..self
        }
    }

    pub fn slot(&self) -> Option<usize> {
        match self.source {
            Source::Stored(slot) => Some(slot),
            _ => None,
        }
    }

    pub fn calculated(&self) -> bool {
        matches!(self.source, Source::Product(..))
    }

    /// Set by the server when a record is created without it.
    pub fn defaulted_on_create(&self) -> bool {
        self.default.is_some()
            || matches!(
                self.source,
                Source::Id
                    | Source::CreatedDate
                    | Source::LastModifiedDate
                    | Source::SystemModstamp
                    | Source::IsDeleted
            )
    }
}

/// Fills field values for the i-th seeded record.
pub type Seed = fn(u64) -> Vec<(String, Value)>;

#[derive(Debug, Clone)]
pub struct SObject {
    pub name: String,
    pub label: String,
    pub label_plural: String,
    /// The first three characters of every id; None for a type without
    /// records of its own (NoteAndAttachment).
    pub key_prefix: Option<String>,
    pub custom: bool,
    pub queryable: bool,
    /// Records can be created, updated and deleted through the API.
    pub writable: bool,
    /// Id first, then the rest, in describe's order.
    pub fields: Vec<Field>,
    /// No two live records may share a (case-insensitive) Email.
    pub unique_email: bool,
    pub seed: Seed,
    /// When the type's schema last changed (describe's If-Modified-Since).
    pub changed_ms: i64,
    /// Stored values handed out so far: a record's values are this long.
    slots: usize,
    /// Lowercased field name → index in `fields`.
    by_name: HashMap<String, usize>,
}

impl PartialEq for SObject {
    fn eq(&self, other: &SObject) -> bool {
        self.name == other.name
    }
}

/// A field that can't be added or removed, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaError(pub String);

impl SObject {
    /// `fields` must start with Id; stored fields get their slots in order.
    pub fn new(
        name: &str,
        label: &str,
        label_plural: &str,
        key_prefix: Option<&str>,
        fields: Vec<Field>,
        seed: Seed,
        changed_ms: i64,
    ) -> SObject {
        let mut t = SObject {
            name: name.to_string(),
            label: label.to_string(),
            label_plural: label_plural.to_string(),
            key_prefix: key_prefix.map(str::to_string),
            custom: name.ends_with("__c"),
            queryable: true,
            writable: true,
            fields: Vec::with_capacity(fields.len()),
            unique_email: false,
            seed,
            changed_ms,
            slots: 0,
            by_name: HashMap::new(),
        };
        for f in fields {
            t.push(f);
        }
        t
    }

    fn push(&mut self, mut f: Field) -> usize {
        if let Source::Stored(_) = f.source {
            f.source = Source::Stored(self.slots);
            self.slots += 1;
        }
        self.by_name
            .insert(f.name.to_ascii_lowercase(), self.fields.len());
        self.fields.push(f);
        self.fields.len() - 1
    }

    /// How many values a record of this type holds.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Case-insensitive, as in Salesforce.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(&name.to_ascii_lowercase()).copied()
    }

    pub fn index_of(&self, source: &Source) -> Option<usize> {
        self.fields.iter().position(|f| f.source == *source)
    }

    /// The slot of the Email field duplicates are checked on.
    pub fn unique_email_slot(&self) -> Option<usize> {
        if !self.unique_email {
            return None;
        }
        self.fields
            .iter()
            .find(|f| f.ftype == FieldType::Email && f.name == "Email")
            .and_then(Field::slot)
    }

    /// The components of a compound field, with their indexes.
    pub fn components<'a>(&'a self, compound: &'a str) -> impl Iterator<Item = (usize, &'a Field)> {
        self.fields
            .iter()
            .enumerate()
            .filter(move |(_, f)| f.compound.as_deref() == Some(compound))
    }

    /// Adds a custom field at the end (before nothing: describe lists it
    /// last); returns its slot.
    pub fn add_field(&mut self, field: Field, now_ms: i64) -> Result<usize, SchemaError> {
        if !field.name.ends_with("__c") || field.name.len() <= 3 {
            return Err(SchemaError(format!(
                "A custom field's name must end in __c: {}",
                field.name
            )));
        }
        if self.field_index(&field.name).is_some() {
            return Err(SchemaError(format!(
                "{} already has a field named {}",
                self.name, field.name
            )));
        }
        let i = self.push(field);
        self.changed_ms = now_ms;
        Ok(self.fields[i].slot().expect("a stored field"))
    }

    /// Removes a custom field; returns its slot so the records' values can go.
    pub fn remove_field(&mut self, name: &str, now_ms: i64) -> Result<usize, SchemaError> {
        let i = self
            .field_index(name)
            .ok_or_else(|| SchemaError(format!("No such field on {}: {name}", self.name)))?;
        let f = &self.fields[i];
        let slot = match f.slot() {
            Some(slot) if f.custom && f.compound.is_none() => slot,
            _ => {
                return Err(SchemaError(format!(
                "Only custom fields that are not part of a compound field can be removed, not {}",
                f.name
            )))
            }
        };
        self.fields.remove(i);
        self.by_name = self
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.to_ascii_lowercase(), i))
            .collect();
        self.changed_ms = now_ms;
        Ok(slot)
    }

    /// Field-level access: who may set the field on create and on update.
    pub fn set_access(
        &mut self,
        name: &str,
        createable: Option<bool>,
        updateable: Option<bool>,
        now_ms: i64,
    ) -> Result<&Field, SchemaError> {
        let i = self
            .field_index(name)
            .ok_or_else(|| SchemaError(format!("No such field on {}: {name}", self.name)))?;
        let f = &mut self.fields[i];
        if f.slot().is_none() || f.ftype == FieldType::Id {
            return Err(SchemaError(format!(
                "{} is computed by the server: it is never createable or updateable",
                f.name
            )));
        }
        f.createable = createable.unwrap_or(f.createable);
        f.updateable = updateable.unwrap_or(f.updateable);
        self.changed_ms = now_ms;
        Ok(&self.fields[i])
    }
}

/// IsDeleted, CreatedDate, LastModifiedDate, SystemModstamp: every type ends with them.
pub fn system_fields() -> [Field; 4] {
    [
        Field::derived(
            "IsDeleted",
            "Deleted",
            FieldType::Boolean,
            Source::IsDeleted,
        ),
        Field::derived(
            "CreatedDate",
            "Created Date",
            FieldType::Datetime,
            Source::CreatedDate,
        ),
        Field::derived(
            "LastModifiedDate",
            "Last Modified Date",
            FieldType::Datetime,
            Source::LastModifiedDate,
        ),
        Field::derived(
            "SystemModstamp",
            "System Modstamp",
            FieldType::Datetime,
            Source::SystemModstamp,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SObject {
        let mut fields = vec![
            Field::derived("Id", "Record ID", FieldType::Id, Source::Id),
            Field::new("Name", "Name", FieldType::String).required(),
            Field::new("Amount__c", "Amount", FieldType::Currency),
        ];
        fields.extend(system_fields());
        SObject::new(
            "Thing__c",
            "Thing",
            "Things",
            Some("a09"),
            fields,
            |_| Vec::new(),
            5,
        )
    }

    #[test]
    fn slots_names_and_changes() {
        let mut t = sample();
        assert_eq!(t.slots(), 2);
        assert_eq!(t.field_index("amount__C"), Some(2));
        assert_eq!(t.fields[2].slot(), Some(1));
        assert!(t.custom && t.fields[2].custom && !t.fields[1].custom);
        let slot = t
            .add_field(Field::new("Region__c", "Region", FieldType::String), 9)
            .unwrap();
        assert_eq!((slot, t.changed_ms), (2, 9));
        assert!(t
            .add_field(Field::new("region__c", "Region", FieldType::String), 9)
            .is_err());
        assert!(t
            .add_field(Field::new("Region", "Region", FieldType::String), 9)
            .is_err());
        assert_eq!(t.remove_field("AMOUNT__c", 10), Ok(1));
        assert_eq!(t.field_index("Region__c"), Some(t.fields.len() - 1));
        assert!(t.remove_field("Name", 11).is_err());
        // A slot is never handed out twice.
        let slot = t
            .add_field(Field::new("Amount__c", "Amount", FieldType::Currency), 12)
            .unwrap();
        assert_eq!(slot, 3);
        assert!(t.set_access("CreatedDate", Some(true), None, 13).is_err());
        let f = t.set_access("Region__c", None, Some(false), 13).unwrap();
        assert!(f.createable && !f.updateable);
        assert_eq!(FieldType::parse("DateTime"), Some(FieldType::Datetime));
        assert_eq!(FieldType::Location.soap_type(), "urn:location");
    }
}
