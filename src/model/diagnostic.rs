//! Error messages that point at the user's text: file, line, column, the line itself and a
//! caret under the offending part, plus a hint where we can guess what was meant.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// A piece of user text that diagnostics can point into (a system file, a config file, a
/// string given on the command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// What to call it in messages: a path, or a description such as `<--equations>`.
    pub name: String,
    pub text: String,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<Source> {
        Arc::new(Source {
            name: name.into(),
            text: text.into(),
        })
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = self.text[line_start..offset].chars().count() + 1;
        (line, col)
    }

    fn line_bounds(&self, offset: usize) -> Range<usize> {
        let offset = offset.min(self.text.len());
        let start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let end = self.text[offset..]
            .find('\n')
            .map_or(self.text.len(), |i| offset + i);
        start..end
    }
}

/// One problem in the user's input.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub message: String,
    pub source: Option<Arc<Source>>,
    /// Byte range into `source.text`.
    pub span: Range<usize>,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>, source: &Arc<Source>, span: Range<usize>) -> Self {
        Diagnostic {
            message: message.into(),
            source: Some(source.clone()),
            span,
            hint: None,
        }
    }

    /// A problem with no place in any text (e.g. a missing required field).
    pub fn bare(message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            source: None,
            span: 0..0,
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// `(line, column)` of the start of the span, 1-based, when there is a source.
    pub fn position(&self) -> Option<(usize, usize)> {
        self.source.as_ref().map(|s| s.line_col(self.span.start))
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        if let Some(src) = &self.source {
            let (line, col) = src.line_col(self.span.start);
            let bounds = src.line_bounds(self.span.start);
            let text = src.text[bounds.clone()].trim_end_matches('\r');
            let gutter = line.to_string().len();
            writeln!(f, "{:gutter$}--> {}:{}:{}", "", src.name, line, col)?;
            writeln!(f, "{:gutter$} |", "")?;
            // The caret covers the span, clipped to this line, and is at least one wide.
            let end = self.span.end.clamp(self.span.start, bounds.end);
            let width = src.text[self.span.start.min(end)..end]
                .chars()
                .count()
                .max(1);
            let shown = LineWindow::around(text, col - 1, width);
            writeln!(f, "{line} | {}", shown.text)?;
            write!(
                f,
                "{:gutter$} | {:pad$}{}",
                "",
                "",
                "^".repeat(shown.width),
                pad = shown.pad
            )?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  = hint: {hint}")?;
        }
        Ok(())
    }
}

/// The part of a long line a message shows: up to `LineWindow::WIDTH` characters around
/// the caret, with `...` where the line is cut, so that an error in a 100 KB line prints a
/// readable excerpt rather than the whole line.
struct LineWindow {
    text: String,
    /// Characters before the caret in `text`.
    pad: usize,
    /// Carets to draw.
    width: usize,
}

impl LineWindow {
    const WIDTH: usize = 120;
    /// Characters shown before the caret when the line is cut.
    const BEFORE: usize = 40;

    fn around(line: &str, col: usize, width: usize) -> LineWindow {
        let len = line.chars().count();
        if len <= Self::WIDTH {
            return LineWindow {
                text: line.to_string(),
                pad: col,
                width,
            };
        }
        let start = col.saturating_sub(Self::BEFORE).min(len);
        let end = (start + Self::WIDTH).min(len);
        let mut text: String = line.chars().skip(start).take(end - start).collect();
        let mut pad = col - start;
        if start > 0 {
            text.insert_str(0, "...");
            pad += 3;
        }
        if end < len {
            text.push_str("...");
        }
        let width = width.min(end.saturating_sub(col)).max(1);
        LineWindow { text, pad, width }
    }
}

/// Several problems found in one pass over the input, reported together.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn first(&self) -> &Diagnostic {
        &self.0[0]
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

/// The closest candidate to `name` by edit distance, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
/// neighbours each cost one (so `sigam` is one edit from `sigma`).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_line_column_and_caret() {
        let src = Source::new("lorenz.toml", "a = 1\ndx = sigmaa*(y - x)\n");
        let d = Diagnostic::new("unknown name 'sigmaa'", &src, 11..17)
            .with_hint("did you mean 'sigma'?");
        let text = d.to_string();
        assert!(text.contains("--> lorenz.toml:2:6"), "{text}");
        assert!(text.contains("2 | dx = sigmaa*(y - x)"), "{text}");
        assert!(text.contains("  |      ^^^^^^"), "{text}");
        assert!(text.ends_with("= hint: did you mean 'sigma'?"), "{text}");
    }

    #[test]
    fn long_lines_are_cut_around_the_caret() {
        let line = format!("dx = {}y{}", "x+".repeat(5000), "+x".repeat(5000));
        let at = 5 + 10_000;
        let src = Source::new("big.toml", line);
        let text = Diagnostic::new("unknown name 'y'", &src, at..at + 1).to_string();
        assert!(text.contains("--> big.toml:1:10006"), "{text}");
        let shown = text.lines().nth(3).unwrap();
        let caret = text.lines().nth(4).unwrap();
        assert!(
            shown.starts_with("1 | ...") && shown.ends_with("..."),
            "{shown}"
        );
        assert!(shown.len() < 140, "{shown}");
        // The caret sits under the 'y'.
        assert_eq!(caret.find('^'), shown.find('y'), "{text}");
        assert_eq!(caret.matches('^').count(), 1, "{text}");
    }

    #[test]
    fn edit_distance_counts_swaps_once() {
        assert_eq!(edit_distance("sigma", "sigma"), 0);
        assert_eq!(edit_distance("sigam", "sigma"), 1);
        assert_eq!(edit_distance("rh", "rho"), 1);
        assert_eq!(edit_distance("beta", "gamma"), 4);
        assert_eq!(
            did_you_mean("sigmaa", ["sigma", "rho", "beta"]),
            Some("sigma")
        );
        assert_eq!(did_you_mean("zeta", ["sigma", "rho"]), None);
    }
}
