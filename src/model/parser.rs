//! Statements and expressions as written by the user, before names are resolved.
//!
//! Precedence, loosest first: `+ -`, `* /`, unary `-`, `^` (right-associative). So
//! `-x^2` is `-(x^2)` and `2^-1` is `2^(-1)`, as papers read.

use super::diagnostic::{Diagnostic, Source};
use super::lexer::{Tok, Token, lex};
use std::ops::Range;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Num(f64),
    Name(String),
    Neg(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Call {
        func: String,
        func_span: Range<usize>,
        args: Vec<Expr>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Range<usize>,
}

/// The left-hand side of a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// `name = ...`: an auxiliary definition, or `dx = ...` for a state `x` (decided once
    /// the states are known).
    Plain(String),
    /// `x' = ...` or `dx/dt = ...`: unambiguously the equation of state `x`.
    Derivative(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub target: Target,
    pub target_span: Range<usize>,
    pub value: Expr,
}

/// Parses `source.text[range]` into statements, one per line (or `;`). Every line is parsed
/// even after an error so that all syntax errors are reported at once.
pub fn parse_statements(
    source: &Arc<Source>,
    range: Range<usize>,
) -> Result<Vec<Statement>, Vec<Diagnostic>> {
    let tokens = lex(source, range).map_err(|d| vec![d])?;
    let mut statements = Vec::new();
    let mut errors = Vec::new();
    for line in tokens
        .split(|t| t.tok == Tok::End)
        .filter(|l| !l.is_empty())
    {
        let mut p = Parser {
            source,
            toks: line,
            pos: 0,
        };
        match p.statement() {
            Ok(s) => statements.push(s),
            Err(d) => errors.push(d),
        }
    }
    if errors.is_empty() {
        Ok(statements)
    } else {
        Err(errors)
    }
}

/// Parses a single expression, e.g. a value given on the command line.
pub fn parse_expression(source: &Arc<Source>) -> Result<Expr, Diagnostic> {
    let tokens = lex(source, 0..source.text.len())?;
    let line: Vec<Token> = tokens.into_iter().filter(|t| t.tok != Tok::End).collect();
    let mut p = Parser {
        source,
        toks: &line,
        pos: 0,
    };
    let e = p.expr()?;
    p.expect_end()?;
    Ok(e)
}

struct Parser<'a> {
    source: &'a Arc<Source>,
    toks: &'a [Token],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn span_here(&self) -> Range<usize> {
        match self.toks.get(self.pos) {
            Some(t) => t.span.clone(),
            None => {
                let end = self.toks.last().map_or(0, |t| t.span.end);
                end..end
            }
        }
    }

    fn error(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(message, self.source, self.span_here())
    }

    fn bump(&mut self) -> Token {
        let t = self.toks[self.pos].clone();
        self.pos += 1;
        t
    }

    fn expect_end(&self) -> Result<(), Diagnostic> {
        match self.peek() {
            None => Ok(()),
            Some(Tok::RParen) => Err(self.error("unmatched ')'")),
            Some(Tok::Eq) => Err(self
                .error("a second '=' on one line")
                .with_hint("put each definition on its own line")),
            Some(Tok::Ident(_) | Tok::Num(_) | Tok::LParen) => Err(self
                .error("expected an operator here")
                .with_hint("multiplication must be written out: 2*x, not 2x or 2 x")),
            Some(_) => Err(self.error("unexpected symbol")),
        }
    }

    fn statement(&mut self) -> Result<Statement, Diagnostic> {
        let (name, name_span) = match self.peek() {
            Some(Tok::Ident(_)) => {
                let t = self.bump();
                let Tok::Ident(n) = t.tok else { unreachable!() };
                (n, t.span)
            }
            _ => {
                return Err(self
                    .error("expected a name at the start of the line")
                    .with_hint("each line reads `dx = expression` or `name = expression`"));
            }
        };
        let (target, target_span) = match self.peek() {
            Some(Tok::Prime) => {
                let end = self.bump().span.end;
                (Target::Derivative(name), name_span.start..end)
            }
            Some(Tok::Slash) if name.len() > 1 && name.starts_with('d') => {
                self.bump();
                match self.peek() {
                    Some(Tok::Ident(dt)) if dt == "dt" => {
                        let end = self.bump().span.end;
                        (
                            Target::Derivative(name[1..].to_string()),
                            name_span.start..end,
                        )
                    }
                    _ => {
                        return Err(
                            self.error("expected 'dt' after '/' in a derivative such as dx/dt")
                        );
                    }
                }
            }
            _ => (Target::Plain(name), name_span),
        };
        if self.peek() != Some(&Tok::Eq) {
            return Err(self
                .error("expected '='")
                .with_hint("each line reads `dx = expression` or `name = expression`"));
        }
        self.bump();
        if self.peek().is_none() {
            return Err(self.error("expected an expression after '='"));
        }
        let value = self.expr()?;
        self.expect_end()?;
        Ok(Statement {
            target,
            target_span,
            value,
        })
    }

    fn expr(&mut self) -> Result<Expr, Diagnostic> {
        let mut lhs = self.term()?;
        while let Some(op) = match self.peek() {
            Some(Tok::Plus) => Some(BinOp::Add),
            Some(Tok::Minus) => Some(BinOp::Sub),
            _ => None,
        } {
            self.bump();
            let rhs = self.term()?;
            lhs = binary(op, lhs, rhs);
        }
        Ok(lhs)
    }

    fn term(&mut self) -> Result<Expr, Diagnostic> {
        let mut lhs = self.unary()?;
        while let Some(op) = match self.peek() {
            Some(Tok::Star) => Some(BinOp::Mul),
            Some(Tok::Slash) => Some(BinOp::Div),
            _ => None,
        } {
            self.bump();
            let rhs = self.unary()?;
            lhs = binary(op, lhs, rhs);
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, Diagnostic> {
        match self.peek() {
            Some(Tok::Minus) => {
                let start = self.bump().span.start;
                let inner = self.unary()?;
                let span = start..inner.span.end;
                Ok(Expr {
                    kind: ExprKind::Neg(Box::new(inner)),
                    span,
                })
            }
            Some(Tok::Plus) => {
                self.bump();
                self.unary()
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Expr, Diagnostic> {
        let base = self.primary()?;
        if self.peek() == Some(&Tok::Caret) {
            self.bump();
            // The exponent is a unary so that `x^-2` works; recursion makes `^` right-assoc.
            let exponent = self.unary()?;
            return Ok(binary(BinOp::Pow, base, exponent));
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<Expr, Diagnostic> {
        let Some(tok) = self.peek().cloned() else {
            return Err(self.error("expression ends too early"));
        };
        match tok {
            Tok::Num(v) => {
                let span = self.bump().span;
                Ok(Expr {
                    kind: ExprKind::Num(v),
                    span,
                })
            }
            Tok::Ident(name) => {
                let span = self.bump().span;
                if self.peek() != Some(&Tok::LParen) {
                    return Ok(Expr {
                        kind: ExprKind::Name(name),
                        span,
                    });
                }
                let open = self.bump().span;
                let mut args = Vec::new();
                if self.peek() != Some(&Tok::RParen) {
                    loop {
                        args.push(self.expr()?);
                        match self.peek() {
                            Some(Tok::Comma) => {
                                self.bump();
                            }
                            Some(Tok::RParen) => break,
                            None => {
                                return Err(Diagnostic::new("unclosed '('", self.source, open)
                                    .with_hint("add the matching ')'"));
                            }
                            _ => return Err(self.error("expected ',' or ')' in the argument list")),
                        }
                    }
                }
                let end = self.bump().span.end;
                Ok(Expr {
                    kind: ExprKind::Call {
                        func: name,
                        func_span: span.clone(),
                        args,
                    },
                    span: span.start..end,
                })
            }
            Tok::LParen => {
                let open = self.bump().span;
                let inner = self.expr()?;
                match self.peek() {
                    Some(Tok::RParen) => {
                        let end = self.bump().span.end;
                        Ok(Expr {
                            kind: inner.kind,
                            span: open.start..end,
                        })
                    }
                    None => Err(Diagnostic::new("unclosed '('", self.source, open)
                        .with_hint("add the matching ')'")),
                    Some(_) => Err(self.error("expected ')'")),
                }
            }
            Tok::RParen => Err(self.error("unexpected ')'")),
            Tok::Eq => Err(self
                .error("unexpected '=' inside an expression")
                .with_hint("put each definition on its own line")),
            Tok::Prime => Err(self
                .error("unexpected '''")
                .with_hint("x' is only allowed on the left of '='")),
            _ => Err(self.error("expected a number, a name or '('")),
        }
    }
}

fn binary(op: BinOp, lhs: Expr, rhs: Expr) -> Expr {
    let span = lhs.span.start..rhs.span.end;
    Expr {
        kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
        span,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fully parenthesised rendering, to check structure.
    fn show(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Num(v) => format!("{v}"),
            ExprKind::Name(n) => n.clone(),
            ExprKind::Neg(x) => format!("(-{})", show(x)),
            ExprKind::Binary(op, a, b) => {
                let o = match op {
                    BinOp::Add => "+",
                    BinOp::Sub => "-",
                    BinOp::Mul => "*",
                    BinOp::Div => "/",
                    BinOp::Pow => "^",
                };
                format!("({} {o} {})", show(a), show(b))
            }
            ExprKind::Call { func, args, .. } => {
                format!(
                    "{func}({})",
                    args.iter().map(show).collect::<Vec<_>>().join(", ")
                )
            }
        }
    }

    fn parse1(s: &str) -> String {
        let src = Source::new("t", s);
        show(&parse_expression(&src).unwrap())
    }

    #[test]
    fn precedence_follows_papers() {
        assert_eq!(parse1("-x^2"), "(-(x ^ 2))");
        assert_eq!(parse1("2^3^2"), "(2 ^ (3 ^ 2))");
        assert_eq!(parse1("x^-2"), "(x ^ (-2))");
        assert_eq!(parse1("a - b - c"), "((a - b) - c)");
        assert_eq!(parse1("a / b * c"), "((a / b) * c)");
        assert_eq!(parse1("a + b*c^2"), "(a + (b * (c ^ 2)))");
        assert_eq!(parse1("-a*b"), "((-a) * b)");
        assert_eq!(parse1("atan2(y, -x) + (1)"), "(atan2(y, (-x)) + 1)");
    }

    #[test]
    fn statement_forms() {
        let text = "dx = 1\ny' = 2\ndz/dt = 3; r = 4\n";
        let src = Source::new("t", text);
        let s = parse_statements(&src, 0..text.len()).unwrap();
        assert_eq!(s[0].target, Target::Plain("dx".into()));
        assert_eq!(s[1].target, Target::Derivative("y".into()));
        assert_eq!(s[2].target, Target::Derivative("z".into()));
        assert_eq!(s[3].target, Target::Plain("r".into()));
        assert_eq!(&text[s[2].target_span.clone()], "dz/dt");
    }

    #[test]
    fn syntax_errors_are_all_reported_with_positions() {
        let text = "dx = (x + 1\ndy = 2 y\ndz = x +\n= 3\n";
        let src = Source::new("t", text);
        let errs = parse_statements(&src, 0..text.len()).unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs[0].message.contains("unclosed '('"));
        assert_eq!(src.line_col(errs[0].span.start), (1, 6));
        assert!(errs[1].hint.as_deref().unwrap().contains("2*x"));
        assert!(errs[2].message.contains("ends too early"));
        assert!(errs[3].message.contains("expected a name"));
    }
}
