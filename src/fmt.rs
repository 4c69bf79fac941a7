//! The canonical layout of a topology file (`geartopo fmt`): text in, text out.
//!
//! Pure: no I/O here, and no knowledge of topologies (any valid TOML formats, as
//! `terraform fmt` formats configurations it could not validate). The style is
//! described in docs/fmt.md; the rules below are that document's, in code.
//!
//! What must not happen here: a value that means something else after formatting,
//! or a comment that disappears. Both are checked on every call (the output is
//! parsed again and compared with the input, and the comments of both are
//! counted), and a formatting that fails the check is refused as a bug instead of
//! being returned.

use std::fmt;

use toml_edit::{Array, DocumentMut, InlineTable, Item, Key, RawString, Table, Value};

mod verify;
use verify::verify;

/// Indentation of one level inside a multi-line array.
const INDENT: &str = "  ";

/// Why a text could not be formatted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The text is not TOML; nothing can be formatted.
    Parse {
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column (in characters) of the problem.
        column: usize,
        /// What the parser expected, one line.
        message: String,
        /// The offending line of the input, for showing with a caret.
        source_line: String,
    },
    /// The formatted text would lose a comment or change a value. A bug in the
    /// formatter: nothing is written.
    Internal(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Parse {
                line,
                column,
                message,
                source_line,
            } => {
                let gutter = " ".repeat(line.to_string().len());
                let caret = " ".repeat(column.saturating_sub(1));
                write!(
                    f,
                    "not valid TOML at line {line}, column {column}: {message}\n\
                     {gutter} |\n{line} | {source_line}\n{gutter} | {caret}^"
                )
            }
            Error::Internal(why) => write!(
                f,
                "cannot format this file without losing information: the result would \
                 {why}, so nothing was written (a comment inside an inline table `{{ }}` \
                 is the one known case: move it above the line)"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// Formats a TOML document in geartopo's style (docs/fmt.md). Idempotent:
/// `format(&format(x)?)? == format(x)?`.
pub fn format(input: &str) -> Result<String, Error> {
    let doc: DocumentMut = input.parse().map_err(|e| parse_error(input, &e))?;
    let output = render_document(&doc);
    verify(input, &doc, &output)?;
    Ok(output)
}

fn parse_error(input: &str, e: &toml_edit::TomlError) -> Error {
    let start = e.span().map_or(0, |s| s.start).min(input.len());
    // A span can only start on a char boundary of valid UTF-8, but stay safe.
    let before = input.get(..start).unwrap_or(input);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    let source_line = input[line_start..]
        .lines()
        .next()
        .unwrap_or("")
        .trim_end_matches('\r')
        .to_owned();
    let message = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    Error::Parse {
        line,
        column,
        message,
        source_line,
    }
}

// ---------------------------------------------------------------------------
// Comments and blank lines, as toml_edit keeps them in the "decor" around items.

/// What stands on a line of its own between two items.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Blank,
    Comment(String),
}

/// The lines of whitespace-and-comment text that starts at the beginning of a
/// line (before a key, a table header, or at the end of the document).
fn line_pieces(raw: &str) -> Vec<Piece> {
    let segments: Vec<&str> = raw.split('\n').collect();
    let mut pieces = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let text = segment.trim();
        let last = i == segments.len() - 1;
        if text.starts_with('#') {
            pieces.push(Piece::Comment(text.to_owned()));
        } else if !last {
            pieces.push(Piece::Blank);
        }
    }
    pieces
}

/// Whitespace-and-comment text that starts right after a token (a value, a comma,
/// an opening bracket): a comment on that same line, then whole lines.
fn after_token(raw: &str) -> (Option<String>, Vec<Piece>) {
    match raw.split_once('\n') {
        None => (comment_of(raw), Vec::new()),
        Some((first, rest)) => (comment_of(first), line_pieces(rest)),
    }
}

fn comment_of(segment: &str) -> Option<String> {
    let text = segment.trim();
    text.starts_with('#').then(|| text.to_owned())
}

fn raw_str(raw: Option<&RawString>) -> &str {
    raw.and_then(RawString::as_str).unwrap_or("")
}

// ---------------------------------------------------------------------------
// Output lines.

/// One output line before blank lines are normalized.
#[derive(Debug)]
enum Row {
    Blank,
    /// The blank line before a table (kept even right after an empty table).
    Break,
    /// A table header: no blank line directly after it.
    Header(String),
    Text(String),
}

/// A rendered value: the first line continues the line it starts on, the others
/// are whole lines (already indented).
type Lines = Vec<String>;

/// Appends `more` to `lines`, its first line continuing the last line.
fn extend(lines: &mut Lines, more: Lines) {
    let mut more = more.into_iter();
    if let Some(first) = more.next() {
        match lines.last_mut() {
            Some(last) => last.push_str(&first),
            None => lines.push(first),
        }
    }
    lines.extend(more);
}

/// Appends each comment to its line, the comments of consecutive lines aligned
/// one space after the longest of those lines (as terraform aligns them).
fn align_comments(lines: Vec<(String, Option<String>)>) -> Vec<String> {
    let mut out = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        if lines[i].1.is_none() {
            out.push(lines[i].0.clone());
            i += 1;
            continue;
        }
        let end = (i..lines.len())
            .find(|&j| lines[j].1.is_none())
            .unwrap_or(lines.len());
        let width = lines[i..end]
            .iter()
            .map(|(text, _)| text.chars().count())
            .max()
            .unwrap_or(0);
        for (text, comment) in &lines[i..end] {
            let pad = width - text.chars().count();
            out.push(format!(
                "{text}{:pad$} {}",
                "",
                comment.as_deref().unwrap_or("")
            ));
        }
        i = end;
    }
    out
}

/// Joins rows into the file: at most one blank line in a row, none at the start,
/// the end or right after a table header; one newline at the end.
fn finish(rows: Vec<Row>) -> String {
    let mut out = String::new();
    let mut pending_blank = false;
    let mut after_header = false;
    for row in rows {
        let text = match row {
            Row::Blank => {
                pending_blank |= !after_header && !out.is_empty();
                continue;
            }
            Row::Break => {
                pending_blank = !out.is_empty();
                continue;
            }
            Row::Header(text) => {
                after_header = true;
                text
            }
            Row::Text(text) => {
                after_header = false;
                text
            }
        };
        if pending_blank {
            out.push('\n');
            pending_blank = false;
        }
        out.push_str(&text);
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------
// Keys and scalars.

fn is_bare(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `text` can be written between double quotes without any escape.
fn fits_basic(text: &str) -> bool {
    !text
        .chars()
        .any(|c| c == '"' || c == '\\' || (c.is_control() && c != '\t'))
}

/// A key bare when it can be, else in double quotes when that needs no escape,
/// else as written.
fn key_text(key: &Key) -> String {
    let name = key.get();
    if is_bare(name) {
        name.to_owned()
    } else if fits_basic(name) {
        format!("\"{name}\"")
    } else {
        key.display_repr().into_owned()
    }
}

fn key_path(keys: &[&Key]) -> String {
    keys.iter()
        .map(|k| key_text(k))
        .collect::<Vec<_>>()
        .join(".")
}

/// Comments written above a key-value (in the decor of its keys).
fn key_pieces(keys: &[&Key]) -> Vec<Piece> {
    keys.iter()
        .flat_map(|k| line_pieces(raw_str(k.leaf_decor().prefix())))
        .collect()
}

/// A scalar as written, except that a one-line 'literal' string becomes a
/// "basic" one when that needs no escape.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => {
            let raw = s.display_repr();
            let literal = raw.starts_with('\'') && !raw.starts_with("'''");
            if literal && fits_basic(s.value()) {
                format!("\"{}\"", s.value())
            } else {
                raw.into_owned()
            }
        }
        Value::Integer(i) => i.display_repr().into_owned(),
        Value::Float(f) => f.display_repr().into_owned(),
        Value::Boolean(b) => b.display_repr().into_owned(),
        Value::Datetime(d) => d.display_repr().into_owned(),
        Value::Array(_) | Value::InlineTable(_) => unreachable!("not a scalar"),
    }
}

// ---------------------------------------------------------------------------
// Values.

/// Renders a value whose line is indented by `indent` levels.
fn render_value(value: &Value, indent: usize) -> Lines {
    match value {
        Value::Array(array) => render_array(array, indent),
        Value::InlineTable(table) => render_inline_table(table, indent),
        scalar => scalar_text(scalar).split('\n').map(str::to_owned).collect(),
    }
}

/// `{ a = 1, b.c = 2 }`, `{}` when empty.
fn render_inline_table(table: &InlineTable, indent: usize) -> Lines {
    let values = table.get_values();
    if values.is_empty() {
        return vec!["{}".to_owned()];
    }
    let mut lines = vec!["{ ".to_owned()];
    for (i, (keys, value)) in values.into_iter().enumerate() {
        if i > 0 {
            extend(&mut lines, vec![", ".to_owned()]);
        }
        extend(&mut lines, vec![format!("{} = ", key_path(&keys))]);
        extend(&mut lines, render_value(value, indent));
    }
    extend(&mut lines, vec![" }".to_owned()]);
    lines
}

/// One element of an array with what stands around it.
struct Element<'a> {
    above: Vec<Piece>,
    value: &'a Value,
    comment: Option<String>,
    below: Vec<Piece>,
}

impl Element<'_> {
    /// A comment found after this element: on its line when that is free, else on a
    /// line of its own below it (it came after the comment already there).
    fn add_comment(&mut self, comment: Option<String>) {
        let Some(comment) = comment else { return };
        if self.comment.is_none() && self.below.is_empty() {
            self.comment = Some(comment);
        } else {
            self.below.push(Piece::Comment(comment));
        }
    }
}

fn has_newline(raw: Option<&RawString>) -> bool {
    raw_str(raw).contains('\n')
}

/// `[1, 2]` when the array was written on one line and holds no comment; else one
/// element per line, each followed by a comma, comments kept on their lines.
fn render_array(array: &Array, indent: usize) -> Lines {
    let mut open_comment = None;
    let mut elements: Vec<Element> = Vec::new();
    let mut written_multiline = has_newline(Some(array.trailing()));
    for value in array.iter() {
        let decor = value.decor();
        written_multiline |= has_newline(decor.prefix()) || has_newline(decor.suffix());
        let (same_line, above) = after_token(raw_str(decor.prefix()));
        match elements.last_mut() {
            // A comment after the previous element's comma belongs to that element.
            Some(previous) => previous.add_comment(same_line),
            None => open_comment = same_line,
        }
        let (comment, below) = after_token(raw_str(decor.suffix()));
        elements.push(Element {
            above,
            value,
            comment,
            below,
        });
    }
    let (same_line, closing) = after_token(raw_str(Some(array.trailing())));
    match elements.last_mut() {
        Some(last) => last.add_comment(same_line),
        None => open_comment = same_line,
    }

    let rendered: Vec<Lines> = elements
        .iter()
        .map(|e| render_value(e.value, indent + 1))
        .collect();
    let has_comment = open_comment.is_some()
        || !closing.is_empty()
        || elements.iter().any(|e| {
            e.comment.is_some()
                || e.above
                    .iter()
                    .chain(&e.below)
                    .any(|p| matches!(p, Piece::Comment(_)))
        });
    if elements.is_empty() && !has_comment {
        return vec!["[]".to_owned()];
    }
    let any_multiline = rendered.iter().any(|lines| lines.len() > 1);
    if !written_multiline && !has_comment && !any_multiline {
        let items: Vec<String> = rendered.into_iter().map(|mut l| l.remove(0)).collect();
        return vec![format!("[{}]", items.join(", "))];
    }

    let inner = INDENT.repeat(indent + 1);
    // (text, trailing comment) per line; None stands for a blank line.
    let mut rows: Vec<Option<(String, Option<String>)>> = Vec::new();
    let pieces = |rows: &mut Vec<Option<(String, Option<String>)>>, pieces: &[Piece]| {
        for piece in pieces {
            match piece {
                Piece::Blank => rows.push(None),
                Piece::Comment(c) => rows.push(Some((format!("{inner}{c}"), None))),
            }
        }
    };
    for (element, lines) in elements.iter().zip(rendered) {
        pieces(&mut rows, &element.above);
        let count = lines.len();
        for (i, line) in lines.into_iter().enumerate() {
            let line = if i == 0 {
                format!("{inner}{line}")
            } else {
                line
            };
            if i + 1 == count {
                rows.push(Some((format!("{line},"), element.comment.clone())));
            } else {
                rows.push(Some((line, None)));
            }
        }
        pieces(&mut rows, &element.below);
    }
    pieces(&mut rows, &closing);

    // No blank line right after `[` or before `]`, never two in a row.
    let mut kept: Vec<Option<(String, Option<String>)>> = Vec::new();
    for row in rows {
        if row.is_none() && matches!(kept.last(), None | Some(None)) {
            continue;
        }
        kept.push(row);
    }
    while matches!(kept.last(), Some(None)) {
        kept.pop();
    }

    let mut lines = vec![match open_comment {
        Some(c) => format!("[ {c}"),
        None => "[".to_owned(),
    }];
    let mut run: Vec<(String, Option<String>)> = Vec::new();
    for row in kept {
        match row {
            Some(line) => run.push(line),
            None => {
                lines.extend(align_comments(std::mem::take(&mut run)));
                lines.push(String::new());
            }
        }
    }
    lines.extend(align_comments(run));
    lines.push(format!("{}]", INDENT.repeat(indent)));
    lines
}

// ---------------------------------------------------------------------------
// Tables and the document.

/// Every table that has a header, in the order of the file (as toml_edit writes
/// them: by position, a table without one right after the table before it).
fn tables_in_order(doc: &DocumentMut) -> Vec<(Vec<&Key>, &Table, bool)> {
    fn visit<'t>(
        table: &'t Table,
        path: &mut Vec<&'t Key>,
        is_array: bool,
        last_position: &mut i64,
        out: &mut Vec<(i64, Vec<&'t Key>, &'t Table, bool)>,
    ) {
        if !table.is_dotted() {
            // `as i64`: toml_edit 0.22 gives usize, later versions isize.
            #[allow(clippy::unnecessary_cast)]
            if let Some(position) = table.position() {
                *last_position = position as i64;
            }
            out.push((*last_position, path.clone(), table, is_array));
        }
        for (name, item) in table.iter() {
            let Some(key) = table.key(name) else { continue };
            match item {
                Item::Table(child) => {
                    path.push(key);
                    visit(child, path, false, last_position, out);
                    path.pop();
                }
                Item::ArrayOfTables(array) => {
                    for child in array.iter() {
                        path.push(key);
                        visit(child, path, true, last_position, out);
                        path.pop();
                    }
                }
                Item::Value(_) | Item::None => {}
            }
        }
    }
    let mut out = Vec::new();
    visit(doc.as_table(), &mut Vec::new(), false, &mut 0, &mut out);
    out.sort_by_key(|(position, ..)| *position);
    out.into_iter()
        .map(|(_, path, table, is_array)| (path, table, is_array))
        .collect()
}

/// The key-values of a table's body, `=` aligned in runs of consecutive lines.
fn render_body(table: &Table, rows: &mut Vec<Row>) {
    // A run of consecutive key-values: (key, value lines, trailing comment).
    let mut group: Vec<(String, Lines, Option<String>)> = Vec::new();
    fn flush(group: &mut Vec<(String, Lines, Option<String>)>, rows: &mut Vec<Row>) {
        let width = group
            .iter()
            .map(|(key, ..)| key.chars().count())
            .max()
            .unwrap_or(0);
        let mut lines = Vec::new();
        for (key, value, comment) in group.drain(..) {
            let count = value.len();
            for (i, line) in value.into_iter().enumerate() {
                let text = if i == 0 {
                    format!("{key:width$} = {line}")
                } else {
                    line
                };
                let comment = if i + 1 == count {
                    comment.clone()
                } else {
                    None
                };
                lines.push((text, comment));
            }
        }
        rows.extend(align_comments(lines).into_iter().map(Row::Text));
    }
    for (keys, value) in table.get_values() {
        let above = key_pieces(&keys);
        if !above.is_empty() {
            flush(&mut group, rows);
        }
        rows.extend(above.into_iter().map(piece_row));
        let lines = render_value(value, 0);
        let (comment, _) = after_token(raw_str(value.decor().suffix()));
        let multiline = lines.len() > 1;
        group.push((key_path(&keys), lines, comment));
        // A value over several lines ends the run of aligned keys.
        if multiline {
            flush(&mut group, rows);
        }
    }
    flush(&mut group, rows);
}

fn render_document(doc: &DocumentMut) -> String {
    let mut rows = Vec::new();
    for (path, table, is_array) in tables_in_order(doc) {
        if !path.is_empty() && (is_array || !(table.is_implicit() && table.get_values().is_empty()))
        {
            let decor = table.decor();
            let mut pieces = line_pieces(raw_str(decor.prefix()));
            // Comments right below the previous line, followed by a blank line,
            // stay with what is above them; then one blank line between tables.
            if let Some(blank) = pieces.iter().position(|p| *p == Piece::Blank) {
                rows.extend(pieces.drain(..blank).map(piece_row));
            }
            rows.push(Row::Break);
            rows.extend(pieces.into_iter().map(piece_row));
            let header = if is_array {
                format!("[[{}]]", key_path(&path))
            } else {
                format!("[{}]", key_path(&path))
            };
            let header = match after_token(raw_str(decor.suffix())).0 {
                Some(comment) => format!("{header} {comment}"),
                None => header,
            };
            rows.push(Row::Header(header));
        }
        render_body(table, &mut rows);
    }
    rows.extend(
        line_pieces(raw_str(Some(doc.trailing())))
            .into_iter()
            .map(piece_row),
    );
    finish(rows)
}

fn piece_row(piece: Piece) -> Row {
    match piece {
        Piece::Blank => Row::Blank,
        Piece::Comment(c) => Row::Text(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parse_error_names_line_and_column() {
        let Err(Error::Parse { line, column, .. }) = format("a = 1\nb = \n") else {
            panic!("expected a parse error");
        };
        assert_eq!((line, column), (2, 5));
    }

    #[test]
    fn literal_strings_become_basic_only_without_escapes() {
        assert_eq!(
            format("a = 'x y'\nb = 'C:\\dir'\nc = 'say \"hi\"'\n").unwrap(),
            "a = \"x y\"\nb = 'C:\\dir'\nc = 'say \"hi\"'\n"
        );
    }
}
