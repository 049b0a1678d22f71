//! The SOQL an integration sends, and nothing more:
//!
//! ```text
//! SELECT <field>[, <field>…] FROM <Type>
//!   [WHERE <datetime field> (>|>=|<|<=|=) <datetime literal>
//!          [AND <datetime field> (>|>=|<|<=|=) <datetime literal>…]
//!    | WHERE Id IN ('<id>'[, '<id>'…])]
//!   [ORDER BY <field> [ASC|DESC][, <field> [ASC|DESC]…]]
//!   [LIMIT <n>]
//! ```
//!
//! Keywords and names are case-insensitive. The datetime fields are
//! CreatedDate, LastModifiedDate and SystemModstamp; ORDER BY takes those and
//! Id. Any field of the type may be selected, custom and compound ones
//! too. Anything else is `MALFORMED_QUERY`; an unknown field
//! `INVALID_FIELD`, an unknown or non-queryable type `INVALID_TYPE`.

use std::sync::Arc;

use super::errors::SfError;
use super::schema::{FieldType, SObject, Source};
use super::time;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
}

impl Op {
    pub fn test(self, value: i64, literal: i64) -> bool {
        match self {
            Op::Gt => value > literal,
            Op::Ge => value >= literal,
            Op::Lt => value < literal,
            Op::Le => value <= literal,
            Op::Eq => value == literal,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub sobject: Arc<SObject>,
    /// Indexes into the type's fields, in SELECT order.
    pub fields: Vec<usize>,
    /// (system datetime field, op, unix ms), all of them true.
    pub filter: Vec<(Source, Op, i64)>,
    /// `WHERE Id IN (…)`: the ids asked for (how a writer reads back what
    /// it wrote).
    pub ids: Option<Vec<String>>,
    /// (field index, descending)
    pub order: Vec<(usize, bool)>,
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Comma,
    Op(Op),
    /// A quoted string literal.
    Text(String),
    Open,
    Close,
}

fn tokenize(q: &str) -> Result<Vec<Token>, SfError> {
    let mut out = Vec::new();
    let chars: Vec<char> = q.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == ',' {
            out.push(Token::Comma);
            i += 1;
        } else if c == '(' || c == ')' {
            out.push(if c == '(' { Token::Open } else { Token::Close });
            i += 1;
        } else if c == '\'' {
            let start = i + 1;
            let end = (start..chars.len())
                .find(|&j| chars[j] == '\'')
                .ok_or_else(|| unexpected("'"))?;
            out.push(Token::Text(chars[start..end].iter().collect()));
            i = end + 1;
        } else if matches!(c, '>' | '<' | '=' | '!') {
            let next_eq = chars.get(i + 1) == Some(&'=');
            let op = match (c, next_eq) {
                ('>', true) => Op::Ge,
                ('>', false) => Op::Gt,
                ('<', true) => Op::Le,
                ('<', false) => Op::Lt,
                ('=', _) => Op::Eq,
                _ => return Err(unexpected(&c.to_string())),
            };
            i += if next_eq && c != '=' { 2 } else { 1 };
            out.push(Token::Op(op));
        } else {
            let start = i;
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !matches!(chars[i], ',' | '>' | '<' | '=' | '!' | '(' | ')' | '\'')
            {
                i += 1;
            }
            if i == start {
                return Err(unexpected(&c.to_string()));
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        }
    }
    Ok(out)
}

fn unexpected(token: &str) -> SfError {
    SfError::malformed_query(format!("unexpected token: '{token}'"))
}

fn invalid_field(t: &SObject, name: &str) -> SfError {
    SfError::new(
        400,
        "INVALID_FIELD",
        format!(
            "No such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
            t.name
        ),
    )
}

struct Cursor {
    tokens: Vec<Token>,
    at: usize,
}

impl Cursor {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn keyword(&mut self, kw: &str) -> Result<(), SfError> {
        if self.is_keyword(kw) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.unexpected_here())
        }
    }

    fn word(&mut self) -> Result<String, SfError> {
        match self.next() {
            Some(Token::Word(w)) => Ok(w),
            _ => {
                self.at -= 1;
                Err(self.unexpected_here())
            }
        }
    }

    fn unexpected_here(&self) -> SfError {
        match self.peek() {
            None => SfError::malformed_query("unexpected end of query"),
            Some(Token::Word(w)) => unexpected(w),
            Some(Token::Comma) => unexpected(","),
            Some(Token::Op(_)) => unexpected("operator"),
            Some(Token::Text(t)) => unexpected(&format!("'{t}'")),
            Some(Token::Open) => unexpected("("),
            Some(Token::Close) => unexpected(")"),
        }
    }
}

/// `('<id>'[, '<id>'…])`, after `IN`.
fn id_list(c: &mut Cursor) -> Result<Vec<String>, SfError> {
    if c.next() != Some(Token::Open) {
        c.at -= 1;
        return Err(c.unexpected_here());
    }
    let mut ids = Vec::new();
    loop {
        match c.next() {
            Some(Token::Text(id)) => ids.push(id),
            _ => {
                c.at -= 1;
                return Err(c.unexpected_here());
            }
        }
        match c.next() {
            Some(Token::Comma) => {}
            Some(Token::Close) => return Ok(ids),
            _ => {
                c.at -= 1;
                return Err(c.unexpected_here());
            }
        }
    }
}

const KEYWORDS: [&str; 6] = ["select", "from", "where", "order", "by", "limit"];

/// `types`: the org's schema.
/// `<field> <op> <datetime literal>`, the field (at `i`) just read.
fn datetime_condition(c: &mut Cursor, t: &SObject, i: usize) -> Result<(Source, Op, i64), SfError> {
    let source = t.fields[i].source.clone();
    if !source.is_system_datetime() {
        return Err(SfError::malformed_query(format!(
            "sequin-mock only filters on CreatedDate, LastModifiedDate or SystemModstamp, or Id IN (…), not {}",
            t.fields[i].name
        )));
    }
    let op = match c.next() {
        Some(Token::Op(op)) => op,
        _ => {
            c.at -= 1;
            return Err(c.unexpected_here());
        }
    };
    let literal = c.word()?;
    let ms = time::parse_datetime(&literal).ok_or_else(|| {
        SfError::new(
            400,
            "INVALID_QUERY_FILTER_OPERATOR",
            format!("value of filter criterion for field '{}' must be of type dateTime and should not be enclosed in quotes", t.fields[i].name),
        )
    })?;
    Ok((source, op, ms))
}

pub fn parse(q: &str, types: &[Arc<SObject>]) -> Result<Query, SfError> {
    let mut c = Cursor {
        tokens: tokenize(q)?,
        at: 0,
    };
    c.keyword("SELECT")?;
    let mut names = vec![c.word()?];
    while c.peek() == Some(&Token::Comma) {
        c.at += 1;
        names.push(c.word()?);
    }
    c.keyword("FROM")?;
    let type_name = c.word()?;
    let t = types
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(&type_name))
        .cloned()
        .ok_or_else(|| {
            SfError::new(
                400,
                "INVALID_TYPE",
                format!("sObject type '{type_name}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."),
            )
        })?;
    if !t.queryable {
        return Err(SfError::new(
            400,
            "INVALID_TYPE",
            format!("sObject type '{}' is not supported.", t.name),
        ));
    }
    let t = &t;
    let mut fields = Vec::new();
    for name in &names {
        if KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(name)) {
            return Err(unexpected(name));
        }
        let i = t.field_index(name).ok_or_else(|| invalid_field(t, name))?;
        if fields.contains(&i) {
            return Err(SfError::malformed_query(format!(
                "duplicate field selected: {}",
                t.fields[i].name
            )));
        }
        fields.push(i);
    }
    let field = |c: &mut Cursor| -> Result<usize, SfError> {
        let name = c.word()?;
        t.field_index(&name).ok_or_else(|| invalid_field(t, &name))
    };

    let mut filter = Vec::new();
    let mut ids = None;
    if c.is_keyword("WHERE") {
        c.at += 1;
        let i = field(&mut c)?;
        if t.fields[i].ftype == FieldType::Id && c.is_keyword("IN") {
            c.at += 1;
            ids = Some(id_list(&mut c)?);
        } else {
            filter.push(datetime_condition(&mut c, t, i)?);
            while c.is_keyword("AND") {
                c.at += 1;
                let i = field(&mut c)?;
                filter.push(datetime_condition(&mut c, t, i)?);
            }
        }
    }

    let mut order = Vec::new();
    if c.is_keyword("ORDER") {
        c.at += 1;
        c.keyword("BY")?;
        loop {
            let i = field(&mut c)?;
            let source = &t.fields[i].source;
            if !(source.is_system_datetime() || *source == Source::Id) {
                return Err(SfError::malformed_query(format!(
                    "sequin-mock only orders by Id, CreatedDate, LastModifiedDate or SystemModstamp, not {}",
                    t.fields[i].name
                )));
            }
            let desc = if c.is_keyword("DESC") {
                c.at += 1;
                true
            } else {
                if c.is_keyword("ASC") {
                    c.at += 1;
                }
                false
            };
            order.push((i, desc));
            if c.peek() == Some(&Token::Comma) {
                c.at += 1;
            } else {
                break;
            }
        }
    }

    let mut limit = None;
    if c.is_keyword("LIMIT") {
        c.at += 1;
        let n = c.word()?;
        limit = Some(n.parse::<usize>().map_err(|_| unexpected(&n))?);
    }
    if c.peek().is_some() {
        return Err(c.unexpected_here());
    }
    Ok(Query {
        ids,
        sobject: t.clone(),
        fields,
        filter,
        order,
        limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::SalesforceState;

    fn parse(q: &str) -> Result<Query, SfError> {
        super::parse(q, SalesforceState::new("sk_test_soql").types())
    }

    fn code(q: &str) -> &'static str {
        parse(q).map(|_| "OK").unwrap_or_else(|e| e.code)
    }

    #[test]
    fn parses_a_read_back_by_ids() {
        let q = parse("SELECT Id, Name FROM Contact WHERE Id IN ('003A', '003B')").unwrap();
        assert_eq!(q.ids, Some(vec!["003A".to_string(), "003B".to_string()]));
        assert_eq!(q.filter, vec![]);
        assert!(parse("SELECT Id FROM Contact WHERE Id IN '003A'").is_err());
        assert!(parse("SELECT Id FROM Contact WHERE Id IN ('003A'").is_err());
        assert!(parse("SELECT Id FROM Contact WHERE Email IN ('a')").is_err());
    }

    #[test]
    fn parses_the_sync_shapes() {
        let q = parse("SELECT Id, LastName,SystemModstamp FROM Contact WHERE SystemModstamp > 2026-01-01T00:00:00Z ORDER BY SystemModstamp, Id LIMIT 500").unwrap();
        assert_eq!(q.sobject.name, "Contact");
        let idx = |n| q.sobject.field_index(n).unwrap();
        assert_eq!(
            q.fields,
            vec![idx("Id"), idx("LastName"), idx("SystemModstamp")]
        );
        assert_eq!(
            q.filter,
            vec![(
                Source::SystemModstamp,
                Op::Gt,
                time::parse_datetime("2026-01-01T00:00:00Z").unwrap()
            )]
        );
        assert_eq!(
            q.order,
            vec![(idx("SystemModstamp"), false), (idx("Id"), false)]
        );
        assert_eq!(q.limit, Some(500));

        let q = parse("select id, email from contact where systemmodstamp>=2026-01-01T00:00:00.000+0000 order by SystemModstamp desc").unwrap();
        assert_eq!(q.filter[0].1, Op::Ge);
        assert_eq!(q.order, vec![(idx("SystemModstamp"), true)]);
        let q = parse("SELECT Id FROM Lead").unwrap();
        assert_eq!((q.filter, q.order.len(), q.limit), (vec![], 0, None));
        // A range of a backfill in ranges: two conditions.
        let q = parse("SELECT Id FROM Contact WHERE SystemModstamp >= 2026-01-01T00:00:00.000Z AND SystemModstamp < 2026-02-01T00:00:00.000Z ORDER BY SystemModstamp, Id").unwrap();
        assert_eq!(q.filter.iter().map(|f| f.1).collect::<Vec<_>>(), vec![Op::Ge, Op::Lt]);
        assert!(parse("SELECT Id FROM Contact WHERE SystemModstamp >= 2026-01-01T00:00:00Z AND").is_err());
        assert!(parse("SELECT Id FROM Contact WHERE SystemModstamp >= 2026-01-01T00:00:00Z AND LastName < 2026-01-01T00:00:00Z").is_err());
        assert_eq!(
            code("SELECT Name FROM Account WHERE LastModifiedDate<2026-01-01T00:00:00-08:00"),
            "OK"
        );
    }

    #[test]
    fn errors() {
        assert_eq!(code("SELECT Id, Foo FROM Contact"), "INVALID_FIELD");
        assert!(parse("SELECT Id, Foo FROM Contact")
            .unwrap_err()
            .message
            .starts_with("No such column 'Foo' on entity 'Contact'"));
        assert_eq!(code("SELECT Id FROM Widget"), "INVALID_TYPE");
        assert_eq!(
            parse("SELECT Id FROM noteandattachment")
                .unwrap_err()
                .message,
            "sObject type 'NoteAndAttachment' is not supported."
        );
        assert!(parse("SELECT Id, Foo__c FROM Invoice__c")
            .unwrap_err()
            .message
            .starts_with("No such column 'Foo__c' on entity 'Invoice__c'"));
        assert_eq!(
            code("SELECT Id, BillingAddress, Location__c, Total__c FROM Account"),
            "INVALID_FIELD"
        );
        assert_eq!(code("SELECT Id, BillingAddress FROM Account"), "OK");
        assert_eq!(code("SELECT FROM Contact"), "MALFORMED_QUERY");
        assert_eq!(code("SELECT Id Contact"), "MALFORMED_QUERY");
        assert_eq!(code("SELECT Id, Id FROM Contact"), "MALFORMED_QUERY");
        assert_eq!(
            code("SELECT Id FROM Contact WHERE LastName > 2026-01-01T00:00:00Z"),
            "MALFORMED_QUERY"
        );
        assert_eq!(
            code("SELECT Id FROM Contact WHERE SystemModstamp > '2026-01-01'"),
            "MALFORMED_QUERY"
        );
        assert_eq!(
            code("SELECT Id FROM Contact WHERE SystemModstamp > 2026-01-01"),
            "INVALID_QUERY_FILTER_OPERATOR"
        );
        assert_eq!(
            code("SELECT Id FROM Contact ORDER BY LastName"),
            "MALFORMED_QUERY"
        );
        assert_eq!(code("SELECT Id FROM Contact LIMIT x"), "MALFORMED_QUERY");
        assert_eq!(
            code("SELECT Id FROM Contact LIMIT 5 extra"),
            "MALFORMED_QUERY"
        );
        assert_eq!(code("SELECT COUNT() FROM Contact"), "MALFORMED_QUERY");
        assert_eq!(code(""), "MALFORMED_QUERY");
    }
}
