//! The check that a formatting kept every value and every comment of its input:
//! the output parsed again must hold the same values, and the same comments
//! word for word. Pure, like its parent.

use std::collections::BTreeMap;

use toml_edit::{DocumentMut, Item, Table, Value};

use super::Error;

/// A TOML value stripped of its layout, for comparing two documents.
#[derive(Debug, PartialEq)]
enum Plain {
    String(String),
    Integer(i64),
    Float(u64),
    Boolean(bool),
    Datetime(String),
    Array(Vec<Plain>),
    Table(BTreeMap<String, Plain>),
}

fn plain_value(value: &Value) -> Plain {
    match value {
        Value::String(s) => Plain::String(s.value().clone()),
        Value::Integer(i) => Plain::Integer(*i.value()),
        Value::Float(f) => Plain::Float(f.value().to_bits()),
        Value::Boolean(b) => Plain::Boolean(*b.value()),
        Value::Datetime(d) => Plain::Datetime(d.value().to_string()),
        Value::Array(a) => Plain::Array(a.iter().map(plain_value).collect()),
        Value::InlineTable(t) => Plain::Table(
            t.iter()
                .map(|(k, v)| (k.to_owned(), plain_value(v)))
                .collect(),
        ),
    }
}

fn plain_table(table: &Table) -> Plain {
    Plain::Table(
        table
            .iter()
            .filter_map(|(k, item)| Some((k.to_owned(), plain_item(item)?)))
            .collect(),
    )
}

fn plain_item(item: &Item) -> Option<Plain> {
    match item {
        Item::None => None,
        Item::Value(v) => Some(plain_value(v)),
        Item::Table(t) => Some(plain_table(t)),
        Item::ArrayOfTables(a) => Some(Plain::Array(a.iter().map(plain_table).collect())),
    }
}

/// The comments of a valid TOML text, in order, trimmed.
fn comments(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    // Skips a string opened at `i` with `quote` (one or three of them).
    let skip_string = |mut i: usize, quote: u8| -> usize {
        let triple = bytes[i..].starts_with(&[quote; 3]);
        let escapes = quote == b'"';
        i += if triple { 3 } else { 1 };
        while i < bytes.len() {
            if escapes && bytes[i] == b'\\' {
                i += 2;
            } else if triple && bytes[i..].starts_with(&[quote; 3]) {
                // Up to two more quotes belong to the content.
                let mut end = i + 3;
                while end < bytes.len() && end < i + 5 && bytes[end] == quote {
                    end += 1;
                }
                return end;
            } else if !triple && bytes[i] == quote {
                return i + 1;
            } else {
                i += 1;
            }
        }
        i
    };
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                let end = text[i..].find('\n').map_or(text.len(), |n| i + n);
                found.push(text[i..end].trim().to_owned());
                i = end;
            }
            quote @ (b'"' | b'\'') => i = skip_string(i, quote),
            _ => i += 1,
        }
    }
    found
}

pub(super) fn verify(input: &str, doc: &DocumentMut, output: &str) -> Result<(), Error> {
    let again: DocumentMut = output
        .parse()
        .map_err(|e| Error::Internal(format!("not be valid TOML ({e})")))?;
    if plain_table(doc.as_table()) != plain_table(again.as_table()) {
        return Err(Error::Internal("change a value".to_owned()));
    }
    let (mut before, mut after) = (comments(input), comments(output));
    before.sort();
    after.sort();
    if before != after {
        let count = |list: &[String], c: &String| list.iter().filter(|x| *x == c).count();
        let lost = before
            .iter()
            .find(|c| count(&before, c) > count(&after, c))
            .cloned()
            .unwrap_or_default();
        return Err(Error::Internal(format!("lose the comment {lost:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_skips_hashes_inside_strings() {
        let text =
            "a = \"#no\" # yes\nb = '#no'\nc = \"\"\"\n# no\"\"\"\" # yes2\nd = '''x'''''#yes3\n";
        assert_eq!(comments(text), ["# yes", "# yes2", "#yes3"]);
    }

    fn check(input: &str, output: &str) -> Result<(), Error> {
        verify(input, &input.parse().unwrap(), output)
    }

    #[test]
    fn a_lost_comment_is_refused() {
        let err = check("a = 1 # one\nb = 2 # one\n", "a = 1 # one\nb = 2\n").unwrap_err();
        assert_eq!(
            err,
            Error::Internal("lose the comment \"# one\"".to_owned())
        );
    }

    #[test]
    fn a_changed_value_is_refused() {
        let err = check("a = '\\n'\n", "a = \"\\n\"\n").unwrap_err();
        assert_eq!(err, Error::Internal("change a value".to_owned()));
        assert!(check("a = '\\n'\n", "a = \"\\\\n\"\n").is_ok());
    }
}
