//! Where env values may stand in a file that toml cannot parse: the reader's
//! spans (`raw::Document::masked`) exist only for a file that parses, yet a report
//! of a syntax error shows the lines around it, which may hold a secret. This scan
//! finds every `value = LITERAL` by its text alone and errs on the side of masking
//! (a `value` anywhere, comments included). Pure; no TOML parsing here.

use std::ops::Range;

/// The span of every literal written after a `value =` key, quotes included.
pub(crate) fn value_literals(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("value") {
        let start = from + found;
        from = start + "value".len();
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        if start > 0 && word(b[start - 1]) || b.get(from).copied().is_some_and(word) {
            continue;
        }
        // A quoted key `"value"` counts too.
        let mut i = from;
        if b.get(i) == Some(&b'"') || b.get(i) == Some(&b'\'') {
            i += 1;
        }
        i = skip_blanks(b, i);
        if b.get(i) != Some(&b'=') {
            continue;
        }
        i = skip_blanks(b, i + 1);
        let end = literal_end(b, i);
        if end > i {
            spans.push(i..end);
            from = end;
        }
    }
    spans
}

fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

/// Where the literal starting at `i` ends: a (multi-line) string to its closing
/// quotes (or the end of the file), anything else to the next `,`, `}` or line end.
fn literal_end(b: &[u8], i: usize) -> usize {
    for quotes in [&b"\"\"\""[..], b"'''"] {
        if b[i..].starts_with(quotes) {
            let rest = &b[i + 3..];
            return match rest.windows(3).position(|w| w == quotes) {
                Some(p) => i + 3 + p + 3,
                None => b.len(),
            };
        }
    }
    match b.get(i) {
        Some(b'"') => {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' && b[j] != b'\n' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            (j + 1).min(b.len())
        }
        Some(b'\'') => {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'\'' && b[j] != b'\n' {
                j += 1;
            }
            (j + 1).min(b.len())
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b'\n' | b'\r' | b'#') {
                j += 1;
            }
            while j > i && matches!(b[j - 1], b' ' | b'\t') {
                j -= 1;
            }
            j
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(text: &str) -> Vec<&str> {
        value_literals(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn every_form_of_a_value_literal_is_found() {
        assert_eq!(
            masked(r#"A = { value = "hun\"ter2", secret = true }, B = { value=918273 }"#),
            [r#""hun\"ter2""#, "918273"]
        );
        assert_eq!(masked("value = 'x y'\n"), ["'x y'"]);
        assert_eq!(
            masked("value = \"\"\"line1\nline2\"\"\"\nnext = 1"),
            ["\"\"\"line1\nline2\"\"\""]
        );
        // Unterminated: to the line end, which the mask (keeping the last byte as
        // it keeps a closing quote) leaves alone, so every byte of the value goes.
        assert_eq!(masked("value = \"unterminated\nnext"), ["\"unterminated\n"]);
        // Other keys that contain the word are not values.
        assert!(masked("values = \"a\"\nmy_value = \"b\"").is_empty());
    }
}
