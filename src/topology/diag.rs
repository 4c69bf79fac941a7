//! Problems found in a topology file and their rendering as miette reports.
//! Only data and rendering live here: no parsing, no checking.

use std::fmt;
use std::io::IsTerminal;
use std::ops::Range;
use std::path::Path;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceCode,
};

/// Width of rendered reports when the output is not a terminal, so that golden
/// tests and CI logs look the same everywhere.
pub(crate) const FIXED_WIDTH: usize = 100;

/// A label on a span of the source: where a problem is, and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// Byte range in the source file.
    pub span: Range<usize>,
    pub text: String,
}

/// One problem with a topology file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    /// Primary label first; may be empty when the problem has no place (unreadable file).
    pub labels: Vec<Label>,
    pub help: Option<String>,
}

impl Problem {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            labels: Vec::new(),
            help: None,
        }
    }

    pub(crate) fn at(
        message: impl Into<String>,
        span: Range<usize>,
        label: impl Into<String>,
    ) -> Self {
        Problem::new(message).label(span, label)
    }

    pub(crate) fn label(mut self, span: Range<usize>, text: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            text: text.into(),
        });
        self
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// A topology that failed to load: every problem, renderable with miette.
#[derive(Debug, Clone)]
pub struct Invalid {
    /// File name as given (used in the report's location lines).
    pub name: String,
    /// The file text (lossily decoded), so labels can be shown in context.
    pub source: String,
    /// The first [`MAX_REPORTED`] problems, in the order of their first label in the file.
    pub problems: Vec<Problem>,
    /// Problems found beyond those: counted, not shown.
    pub omitted: usize,
}

/// Problems shown per file: each report shows whole source lines, so a file of
/// thousands of errors on one long line would print (and cost) their product.
pub const MAX_REPORTED: usize = 100;

/// One problem joined with its source, as miette wants it.
struct Report<'a> {
    problem: &'a Problem,
    source: &'a NamedSource<String>,
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem.message)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem.message)
    }
}

impl std::error::Error for Report<'_> {}

impl Diagnostic for Report<'_> {
    fn source_code(&self) -> Option<&dyn SourceCode> {
        if self.problem.labels.is_empty() {
            None
        } else {
            Some(self.source)
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.problem.labels.is_empty() {
            return None;
        }
        let len = self.source.inner().len();
        Some(Box::new(self.problem.labels.iter().enumerate().map(
            move |(i, l)| {
                // Clamp: a span must never point past the end, whatever produced it.
                let start = l.span.start.min(len);
                let end = l.span.end.clamp(start, len);
                let span = (start, end - start);
                if i == 0 {
                    LabeledSpan::new_primary_with_span(Some(l.text.clone()), span)
                } else {
                    LabeledSpan::new_with_span(Some(l.text.clone()), span)
                }
            },
        )))
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.problem
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
}

/// Whether reports should be plain: `NO_COLOR` set, or stderr not a terminal.
pub(crate) fn plain_output() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) || !std::io::stderr().is_terminal()
}

impl Invalid {
    /// A file that could not be read at all.
    pub fn unreadable(path: &Path, e: &std::io::Error) -> Self {
        Invalid {
            name: path.display().to_string(),
            source: String::new(),
            problems: vec![Problem::new(format!("cannot read {}: {e}", path.display()))],
            omitted: 0,
        }
    }

    /// The full report: every problem, then a count. Plain ASCII at a fixed width
    /// when `NO_COLOR` is set or stderr is not a terminal; colour otherwise.
    pub fn render(&self) -> String {
        self.render_with(plain_output())
    }

    /// The full report, plain (ASCII, no colour, fixed width) or for a terminal.
    pub fn render_with(&self, plain: bool) -> String {
        let theme = if plain {
            GraphicalTheme::none()
        } else {
            GraphicalTheme::unicode()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(FIXED_WIDTH)
            .with_links(false);
        let source = NamedSource::new(&self.name, self.source.clone());
        let mut out = String::new();
        for problem in &self.problems {
            let report = Report {
                problem,
                source: &source,
            };
            if handler.render_report(&mut out, &report).is_err() {
                // Rendering into a String cannot fail in practice; keep the message anyway.
                out.push_str(&problem.message);
                out.push('\n');
            }
        }
        let n = self.problems.len() + self.omitted;
        if self.omitted > 0 {
            out.push_str(&format!(
                "  ... and {} more {} not shown: fix these first\n",
                self.omitted,
                if self.omitted == 1 { "error" } else { "errors" }
            ));
        }
        out.push_str(&format!(
            "{}: {n} {}\n",
            self.name,
            if n == 1 { "error" } else { "errors" }
        ));
        out
    }
}

impl Invalid {
    /// One line per problem, `file:line: message`: for logs and tests, where the
    /// full report is too much.
    pub fn lines(&self) -> Vec<String> {
        let newlines: Vec<usize> = self
            .source
            .bytes()
            .enumerate()
            .filter(|(_, b)| *b == b'\n')
            .map(|(i, _)| i)
            .collect();
        self.problems
            .iter()
            .map(|p| match p.labels.first() {
                Some(l) => {
                    let line = newlines.partition_point(|&i| i < l.span.start) + 1;
                    format!("{}:{line}: {}", self.name, p.message)
                }
                None => format!("{}: {}", self.name, p.message),
            })
            .collect()
    }
}

impl fmt::Display for Invalid {
    /// The full report, as [`Invalid::render`] makes it, so that `eprint!("{invalid}")`
    /// shows the user every problem in context.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for Invalid {}
