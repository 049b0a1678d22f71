//! Quoting for SQL the extension generates. Pure Rust (no server call), so
//! DDL builders are unit-testable; identifiers are always quoted, which is
//! always correct.

pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal; standard_conforming_strings is on in every supported
/// version, so only quotes need doubling.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes() {
        assert_eq!(super::ident("order"), "\"order\"");
        assert_eq!(super::ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(super::literal("it's"), "'it''s'");
    }
}
