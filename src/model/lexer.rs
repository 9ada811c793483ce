//! Tokens of the equation language. Positions are byte offsets into the whole source, so an
//! equation block embedded in a TOML file reports positions in that file.

use super::diagnostic::{Diagnostic, Source};
use std::ops::Range;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Num(f64),
    Ident(String),
    Plus,
    Minus,
    Star,
    Slash,
    /// `^`, or Python's `**`.
    Caret,
    LParen,
    RParen,
    Comma,
    Eq,
    /// `'` as in `x' = ...`.
    Prime,
    /// `[` and `]`, only in a general noise line's target `dS[1] = ...`; anywhere else the
    /// parser refuses them.
    LBracket,
    RBracket,
    /// End of a statement: a newline or `;`.
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub span: Range<usize>,
}

/// Splits `source.text[range]` into tokens. Newlines inside parentheses do not end a
/// statement, so long right-hand sides may be wrapped.
pub fn lex(source: &Arc<Source>, range: Range<usize>) -> Result<Vec<Token>, Diagnostic> {
    let text = &source.text;
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut i = range.start;
    while i < range.end {
        let c = bytes[i];
        let start = i;
        let single = |tok| Token {
            tok,
            span: start..start + 1,
        };
        match c {
            b' ' | b'\t' | b'\r' => i += 1,
            b'#' => {
                while i < range.end && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'\n' | b';' => {
                // Inside parentheses a newline continues the expression, unless the next
                // line plainly starts a new statement: then the '(' was left unclosed, and
                // the parser should say so rather than swallow the rest of the file.
                if depth == 0 || c == b';' || starts_statement(&text[i + 1..range.end]) {
                    out.push(single(Tok::End));
                    depth = 0;
                }
                i += 1;
            }
            b'+' => {
                out.push(single(Tok::Plus));
                i += 1;
            }
            b'-' => {
                out.push(single(Tok::Minus));
                i += 1;
            }
            b'*' if bytes.get(i + 1) == Some(&b'*') => {
                out.push(Token {
                    tok: Tok::Caret,
                    span: i..i + 2,
                });
                i += 2;
            }
            b'*' => {
                out.push(single(Tok::Star));
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                return Err(Diagnostic::new("'//' is not an operator", source, i..i + 2)
                    .with_hint("division is a single '/'; use floor(a / b) for integer division"));
            }
            b'/' => {
                out.push(single(Tok::Slash));
                i += 1;
            }
            b'^' => {
                out.push(single(Tok::Caret));
                i += 1;
            }
            b'(' => {
                depth += 1;
                out.push(single(Tok::LParen));
                i += 1;
            }
            b')' => {
                depth -= 1;
                out.push(single(Tok::RParen));
                i += 1;
            }
            b',' => {
                out.push(single(Tok::Comma));
                i += 1;
            }
            b'=' if bytes.get(i + 1) == Some(&b'=') => {
                return Err(Diagnostic::new("'==' is not an operator", source, i..i + 2)
                    .with_hint("each line defines one quantity with a single '='"));
            }
            b'=' => {
                out.push(single(Tok::Eq));
                i += 1;
            }
            b'\'' => {
                out.push(single(Tok::Prime));
                i += 1;
            }
            b'[' => {
                out.push(single(Tok::LBracket));
                i += 1;
            }
            b']' => {
                out.push(single(Tok::RBracket));
                i += 1;
            }
            b'0'..=b'9' | b'.' => {
                i = number_end(bytes, i, range.end);
                let lit = &text[start..i];
                let value: f64 = lit.parse().map_err(|_| {
                    Diagnostic::new(format!("'{lit}' is not a number"), source, start..i)
                        .with_hint("numbers look like 3, 0.5, .5, 2e-3 or 6.02E23")
                })?;
                out.push(Token {
                    tok: Tok::Num(value),
                    span: start..i,
                });
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < range.end && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Ident(text[start..i].to_string()),
                    span: start..i,
                });
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                let end = i + ch.len_utf8();
                let hint = match ch {
                    '×' | '·' => Some("multiplication is written '*'"),
                    '−' | '–' => Some("minus is the ASCII '-'"),
                    '{' => Some("only round parentheses group expressions"),
                    _ => None,
                };
                let d = Diagnostic::new(format!("unexpected character '{ch}'"), source, i..end);
                return Err(match hint {
                    Some(h) => d.with_hint(h),
                    None => d,
                });
            }
        }
    }
    out.push(Token {
        tok: Tok::End,
        span: range.end..range.end,
    });
    Ok(out)
}

/// Whether `line` begins like `name =`, `name' =`, `dname/dt =`, `dname[k] =` or a
/// Jacobian line's `d(dname)/d(name) =`.
fn starts_statement(rest: &str) -> bool {
    let line = rest.split('\n').next().unwrap_or("").trim_start();
    if starts_jacobian_line(line) {
        return true;
    }
    let ident_len = line
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    if ident_len == 0 || line.as_bytes()[0].is_ascii_digit() {
        return false;
    }
    let after = line[ident_len..].trim_start();
    let after = after
        .strip_prefix('\'')
        .map(str::trim_start)
        .unwrap_or(after);
    let after = match after.strip_prefix('/') {
        Some(r) => match r.trim_start().strip_prefix("dt") {
            Some(r) => r.trim_start(),
            None => return false,
        },
        None => after,
    };
    let after = match after.strip_prefix('[') {
        Some(r) => match r.split_once(']') {
            Some((k, r)) if k.trim().bytes().all(|b| b.is_ascii_digit()) => r.trim_start(),
            _ => return false,
        },
        None => after,
    };
    after.starts_with('=') && !after.starts_with("==")
}

/// Whether `line` begins like `d(dname)/d(name) =` (spaces allowed between the parts).
fn starts_jacobian_line(line: &str) -> bool {
    // `d ( name )`, the rest of the line after it.
    fn part(s: &str) -> Option<&str> {
        let s = s
            .trim_start()
            .strip_prefix('d')?
            .trim_start()
            .strip_prefix('(')?;
        let s = s.trim_start();
        let len = s
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        (len > 0).then_some(())?;
        s[len..].trim_start().strip_prefix(')')
    }
    let Some(rest) = part(line).and_then(|r| r.trim_start().strip_prefix('/')) else {
        return false;
    };
    let Some(rest) = part(rest).map(str::trim_start) else {
        return false;
    };
    rest.starts_with('=') && !rest.starts_with("==")
}

/// End of a numeric literal starting at `i`: digits, one optional fraction, one optional
/// exponent. Anything malformed is left for `str::parse` to reject with the whole span.
fn number_end(bytes: &[u8], mut i: usize, end: usize) -> usize {
    let digits = |mut i: usize| {
        while i < end && bytes[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    i = digits(i);
    if i < end && bytes[i] == b'.' {
        i = digits(i + 1);
    }
    if i < end && (bytes[i] == b'e' || bytes[i] == b'E') {
        let mut j = i + 1;
        if j < end && (bytes[j] == b'+' || bytes[j] == b'-') {
            j += 1;
        }
        if j < end && bytes[j].is_ascii_digit() {
            i = digits(j);
        }
    }
    // Swallow trailing letters/dots so `1.2.3` or `2x` are reported as one bad number.
    while i < end && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.' || bytes[i] == b'_') {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        let src = Source::new("t", s);
        lex(&src, 0..s.len())
            .unwrap()
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn numbers_operators_and_newlines() {
        assert_eq!(
            toks("dx = -2.5e-1*x**2 # c\n"),
            vec![
                Tok::Ident("dx".into()),
                Tok::Eq,
                Tok::Minus,
                Tok::Num(0.25),
                Tok::Star,
                Tok::Ident("x".into()),
                Tok::Caret,
                Tok::Num(2.0),
                Tok::End,
                Tok::End
            ]
        );
        assert_eq!(toks(".5")[0], Tok::Num(0.5));
    }

    #[test]
    fn newline_inside_parentheses_continues() {
        let t = toks("a = (x +\n y)\n");
        assert_eq!(t.iter().filter(|t| **t == Tok::End).count(), 2);
        // ... unless the next line starts a statement, a Jacobian line included.
        let t = toks("a = (x +\nd(dx)/d(y) = 1\n");
        assert_eq!(t.iter().filter(|t| **t == Tok::End).count(), 3);
        assert!(starts_jacobian_line("d ( dx ) / d(y)= 2"));
        assert!(!starts_jacobian_line("d(dx)/d(y) == 2"));
        assert!(!starts_jacobian_line("d(dx) = 2"));
        assert!(!starts_jacobian_line("d()/d(y) = 2"));
    }

    #[test]
    fn errors_point_at_the_bad_text() {
        let src = Source::new("t", "a = x // 2");
        let e = lex(&src, 0..10).unwrap_err();
        assert_eq!(e.span, 6..8);
        let src = Source::new("t", "a = 1.2.3");
        let e = lex(&src, 0..9).unwrap_err();
        assert_eq!(e.span, 4..9);
        assert!(e.message.contains("'1.2.3' is not a number"));
    }
}
