//! `validate --json`: a topology's problems as one JSON document, in the shape of
//! `terraform validate -json` (docs/validate-json.md). Typed data and the pure
//! conversion from [`Invalid`] only: no I/O, no checking.
//!
//! Positions are computed from the file's original bytes, so columns stay right
//! after a masked secret on the same line; the only source text copied into the
//! document (`snippet.code`) comes from [`Invalid::source`], which is masked.

use std::ops::Range as Span;

use serde::Serialize;

use crate::topology::{Invalid, Topology};

/// The whole output of `geartopo validate --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ValidateDocument {
    /// Always 1 for this shape (an integer, as in geartopo's other JSON documents).
    pub format_version: super::FormatVersion<1>,
    /// True when the file is a valid topology (no error).
    pub valid: bool,
    /// How many diagnostics have severity `error`.
    pub error_count: usize,
    /// How many diagnostics have severity `warning` (a valid file without `id`).
    pub warning_count: usize,
    /// Every problem, in the order of their place in the file.
    pub diagnostics: Vec<Diagnostic>,
    /// What a valid file holds (the text mode's summary line); `null` when invalid.
    pub topology: Option<TopologySummary>,
}

/// A valid topology, counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct TopologySummary {
    pub name: String,
    pub nodes: usize,
    /// Containers after replica expansion.
    pub containers: usize,
    pub views: usize,
    pub links: usize,
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem with the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The problem in one line (the text report's headline).
    pub summary: String,
    /// What is wrong at `range` (the primary label's text); empty without a range.
    pub detail: String,
    /// The primary place of the problem; `null` when it has none (unreadable file).
    pub range: Option<SourceRange>,
    /// The source lines of `range`, with secret values masked; `null` with `range`.
    pub snippet: Option<Snippet>,
    /// Every labelled place, the primary one first (the same as `range` and `detail`).
    pub labels: Vec<DiagnosticLabel>,
    /// How to fix it, when geartopo knows.
    pub help: Option<String>,
}

/// One labelled place of a problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct DiagnosticLabel {
    pub range: SourceRange,
    pub text: String,
}

/// A span of the file: start inclusive, end exclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct SourceRange {
    /// The file as named on the command line.
    pub filename: String,
    pub start: Pos,
    pub end: Pos,
}

/// A place in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Pos {
    /// 1-based; lines end at `\n`.
    pub line: usize,
    /// 1-based, in Unicode characters (scalar values) from the start of the line;
    /// each byte of an invalid UTF-8 sequence counts as one character.
    pub column: usize,
    /// 0-based byte offset from the start of the file.
    pub byte: usize,
}

/// The whole lines that `range` covers, for showing the problem in context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Snippet {
    /// The lines, without the last line's newline; secret values are `*`s and
    /// unprintable bytes `?`, as in the text report.
    pub code: String,
    /// The line number of the first line of `code`.
    pub start_line: usize,
    /// Character offset into `code` where `range` starts.
    pub highlight_start_offset: usize,
    /// Character offset into `code` where `range` ends.
    pub highlight_end_offset: usize,
}

impl ValidateDocument {
    /// The document for a valid topology; `fresh_id` is offered in the warning
    /// when the file has no `id`.
    pub fn valid(t: &Topology, fresh_id: &str) -> Self {
        let diagnostics: Vec<Diagnostic> =
            t.id.is_none()
                .then(|| missing_id(&t.name, fresh_id))
                .into_iter()
                .collect();
        ValidateDocument {
            format_version: super::FormatVersion,
            valid: true,
            error_count: 0,
            warning_count: diagnostics.len(),
            diagnostics,
            topology: Some(TopologySummary {
                name: t.name.clone(),
                nodes: t.nodes.len(),
                containers: t.containers.len(),
                views: t.views.len(),
                links: t.containers.iter().map(|c| c.links.len()).sum(),
            }),
        }
    }

    /// The document for a file that did not load. `original` is the file as read
    /// (empty when it could not be read): positions are counted in it, never
    /// copied from it.
    pub fn invalid(invalid: &Invalid, original: &[u8]) -> Self {
        let positions = Positions::new(original);
        let masked = invalid.source.as_bytes();
        let diagnostics: Vec<Diagnostic> = invalid
            .problems
            .iter()
            .map(|p| {
                let labels: Vec<DiagnosticLabel> = p
                    .labels
                    .iter()
                    .map(|l| DiagnosticLabel {
                        range: positions.range(&invalid.name, &l.span),
                        text: l.text.clone(),
                    })
                    .collect();
                let primary = p.labels.first();
                Diagnostic {
                    severity: Severity::Error,
                    summary: p.message.clone(),
                    detail: primary.map(|l| l.text.clone()).unwrap_or_default(),
                    range: labels.first().map(|l| l.range.clone()),
                    snippet: primary.map(|l| snippet(masked, &l.span)),
                    labels,
                    help: p.help.clone(),
                }
            })
            .collect();
        ValidateDocument {
            format_version: super::FormatVersion,
            valid: false,
            error_count: diagnostics.len() + invalid.omitted,
            warning_count: 0,
            diagnostics,
            topology: None,
        }
    }
}

/// The warning for a file without `id`: its headline and help, as the text mode
/// prints them too.
pub fn missing_id_text(name: &str, fresh_id: &str) -> (String, String) {
    (
        format!(
            "the topology has no `id`: containers of any other topology named {name:?} on the same nodes are taken for its own"
        ),
        format!("add this line after `name`, once, and keep it: id = \"{fresh_id}\""),
    )
}

fn missing_id(name: &str, fresh_id: &str) -> Diagnostic {
    let (summary, help) = missing_id_text(name, fresh_id);
    Diagnostic {
        severity: Severity::Warning,
        summary,
        detail: String::new(),
        range: None,
        snippet: None,
        labels: Vec::new(),
        help: Some(help),
    }
}

/// Line starts of a text, to turn byte offsets into line and column.
struct Positions<'a> {
    text: &'a [u8],
    /// Byte offset of the start of each line; the first is 0.
    line_starts: Vec<usize>,
}

impl<'a> Positions<'a> {
    fn new(text: &'a [u8]) -> Self {
        let line_starts = std::iter::once(0)
            .chain(
                text.iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        Positions { text, line_starts }
    }

    fn pos(&self, byte: usize) -> Pos {
        let byte = byte.min(self.text.len());
        // The last line starting at or before `byte`.
        let line = self.line_starts.partition_point(|&s| s <= byte);
        let start = self.line_starts[line - 1];
        Pos {
            line,
            column: chars_in(&self.text[start..byte]) + 1,
            byte,
        }
    }

    fn range(&self, filename: &str, span: &Span<usize>) -> SourceRange {
        // Clamped as the text report clamps: a span never points past the end.
        let start = span.start.min(self.text.len());
        let end = span.end.clamp(start, self.text.len());
        SourceRange {
            filename: filename.to_owned(),
            start: self.pos(start),
            end: self.pos(end),
        }
    }
}

/// The whole lines of `text` that `span` touches, and where in them it is.
fn snippet(text: &[u8], span: &Span<usize>) -> Snippet {
    let start = span.start.min(text.len());
    let end = span.end.clamp(start, text.len());
    let line_start = text[..start]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    // A span that ends just after a newline does not take in the next line.
    let last = if end > start && text[end - 1] == b'\n' {
        end - 1
    } else {
        end
    };
    let line_end = text[last..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |i| last + i);
    // A CRLF file's `\r` is not part of the line's code unless the span covers it.
    let line_end = if line_end > end && text[line_end - 1] == b'\r' {
        line_end - 1
    } else {
        line_end
    };
    Snippet {
        code: String::from_utf8_lossy(&text[line_start..line_end]).into_owned(),
        start_line: text[..line_start].iter().filter(|&&b| b == b'\n').count() + 1,
        highlight_start_offset: chars_in(&text[line_start..start]),
        highlight_end_offset: chars_in(&text[line_start..end.min(line_end)]),
    }
}

/// Characters in `bytes`: each Unicode scalar value is one, and so is each byte
/// that is not part of valid UTF-8.
fn chars_in(bytes: &[u8]) -> usize {
    bytes
        .utf8_chunks()
        .map(|c| c.valid().chars().count() + c.invalid().len())
        .sum()
}

/// The JSON Schema of [`ValidateDocument`] (committed as schema/validate.schema.json).
pub fn json_schema() -> String {
    crate::output::schemas()
        .into_iter()
        .find(|(file, _)| *file == "validate.schema.json")
        .map(|(_, schema)| schema)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::diag::Problem;

    fn invalid(source: &str, problems: Vec<Problem>) -> Invalid {
        Invalid {
            name: "t.toml".into(),
            source: source.into(),
            problems,
            omitted: 0,
        }
    }

    #[test]
    fn columns_count_characters_and_bytes_count_bytes() {
        let text = "a = \"é\"\nb = 1\n";
        let p = Positions::new(text.as_bytes());
        // `"` after é: byte 7, the 7th character of line 1.
        assert_eq!(
            p.pos(7),
            Pos {
                line: 1,
                column: 7,
                byte: 7
            }
        );
        assert_eq!(
            p.pos(9),
            Pos {
                line: 2,
                column: 1,
                byte: 9
            }
        );
        // The end of the file is a place too (an empty last line).
        assert_eq!(
            p.pos(text.len()),
            Pos {
                line: 3,
                column: 1,
                byte: 15
            }
        );
        assert_eq!(p.pos(1000).byte, 15);
    }

    #[test]
    fn invalid_bytes_count_one_column_each() {
        let p = Positions::new(b"\xff\xfex");
        assert_eq!(p.pos(2).column, 3);
    }

    #[test]
    fn snippet_is_the_masked_lines_and_highlights_in_characters() {
        let original = "x = 1\nk = { value = \"é\", bad = 2 }\n";
        // The masked source has one `*` per byte of the secret, so it is longer in
        // characters than the original: the range is counted in the original, the
        // highlight in the snippet's own text.
        let masked = "x = 1\nk = { value = \"**\", bad = 2 }\n";
        let at = original.find("bad").unwrap();
        let inv = invalid(masked, vec![Problem::at("unknown key", at..at + 3, "here")]);
        let doc = ValidateDocument::invalid(&inv, original.as_bytes());
        let d = &doc.diagnostics[0];
        let range = d.range.as_ref().unwrap();
        assert_eq!((range.start.line, range.start.column), (2, 20));
        assert_eq!(range.end.column, 23);
        let s = d.snippet.as_ref().unwrap();
        assert_eq!(s.code, "k = { value = \"**\", bad = 2 }");
        assert_eq!(s.start_line, 2);
        let hl: String = s
            .code
            .chars()
            .skip(s.highlight_start_offset)
            .take(s.highlight_end_offset - s.highlight_start_offset)
            .collect();
        assert_eq!(hl, "bad");
        assert!(!serde_json::to_string(&doc).unwrap().contains('é'));
    }

    #[test]
    fn every_label_is_kept_primary_first_and_spans_are_clamped() {
        let src = "ab\ncd\n";
        let p = Problem::at("clash", 0..2, "first").label(3..99, "second");
        let doc = ValidateDocument::invalid(&invalid(src, vec![p]), src.as_bytes());
        let d = &doc.diagnostics[0];
        assert_eq!(d.detail, "first");
        assert_eq!(
            d.labels.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
            ["first", "second"]
        );
        assert_eq!(d.labels[1].range.end.byte, 6);
        assert_eq!(
            d.labels[0],
            DiagnosticLabel {
                range: d.range.clone().unwrap(),
                text: "first".into()
            }
        );
    }

    #[test]
    fn a_problem_without_a_place_has_no_range_nor_snippet() {
        let inv = invalid("", vec![Problem::new("cannot read x: gone")]);
        let doc = ValidateDocument::invalid(&inv, b"");
        let v = serde_json::to_value(&doc).unwrap();
        let d = &v["diagnostics"][0];
        assert!(d["range"].is_null() && d["snippet"].is_null());
        assert_eq!(d["labels"], serde_json::json!([]));
        assert_eq!(d["detail"], "");
        assert_eq!(v["error_count"], 1);
        assert_eq!(v["valid"], false);
    }

    #[test]
    fn a_span_ending_after_a_newline_keeps_its_snippet_to_its_lines() {
        let s = snippet(b"ab\ncd\n", &(0..3));
        assert_eq!(s.code, "ab");
        assert_eq!((s.highlight_start_offset, s.highlight_end_offset), (0, 2));
        assert_eq!(snippet(b"ab\r\ncd", &(0..1)).code, "ab");
    }
}
