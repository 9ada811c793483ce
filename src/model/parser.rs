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
    /// `dS[k] = ...`: in a general noise block, the coefficient of Wiener process `k`
    /// (1-based, as written) in state `S`'s noise. `name` is `dS` as written;
    /// `index_span` is the number's.
    Indexed {
        name: String,
        index: usize,
        index_span: Range<usize>,
    },
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
        let mut p = Parser::new(source, line);
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

/// One line of a hand-written Jacobian, `d(dx)/d(y) = expression`: the derivative of the
/// equation `dx` (as written) with respect to `y`.
#[derive(Debug, Clone, PartialEq)]
pub struct JacobianLine {
    /// The equation's derivative name as written (`dx`), and its span.
    pub row: String,
    pub row_span: Range<usize>,
    /// The variable differentiated with respect to (`y`), and its span.
    pub col: String,
    pub col_span: Range<usize>,
    /// The whole left-hand side, `d(dx)/d(y)`.
    pub target_span: Range<usize>,
    pub value: Expr,
}

/// Parses `source.text[range]` as Jacobian lines, one per line (or `;`), every line even
/// after an error, as `parse_statements` does.
pub fn parse_jacobian_lines(
    source: &Arc<Source>,
    range: Range<usize>,
) -> Result<Vec<JacobianLine>, Vec<Diagnostic>> {
    let tokens = lex(source, range).map_err(|d| vec![d])?;
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for line in tokens
        .split(|t| t.tok == Tok::End)
        .filter(|l| !l.is_empty())
    {
        let mut p = Parser::new(source, line);
        match p.jacobian_line() {
            Ok(l) => lines.push(l),
            Err(d) => errors.push(d),
        }
    }
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(errors)
    }
}

/// Parses a single expression, e.g. a value given on the command line.
pub fn parse_expression(source: &Arc<Source>) -> Result<Expr, Diagnostic> {
    parse_expression_in(source, 0..source.text.len())
}

/// Parses `source.text[range]` as a single expression (an event's condition in a system
/// file), so that messages point into the file.
pub fn parse_expression_in(source: &Arc<Source>, range: Range<usize>) -> Result<Expr, Diagnostic> {
    let tokens = lex(source, range)?;
    let line: Vec<Token> = tokens.into_iter().filter(|t| t.tok != Tok::End).collect();
    let mut p = Parser::new(source, &line);
    let e = p.expr()?;
    p.expect_end()?;
    Ok(e.expr)
}

/// How deeply an expression may nest, in levels. Each pair of parentheses, function call,
/// unary minus and `^` is a level, and so is each operator of a sum or a product (a chain of
/// more than `LEFT_CHAIN` terms costs only about log2 of its length: see `Parser::chain`).
///
/// Why a limit: the parser, the resolver, the evaluator and the WGSL emitter all walk the
/// tree recursively, and an unbounded tree would let a few kilobytes of parentheses overflow
/// the stack and abort the process (the CLI, or `phaseflow serve` with everyone's jobs). A
/// bound on the tree's height keeps every walk a few hundred stack frames deep at most
/// (tests/depth.rs runs the worst case on a 256 KiB thread), while 100 levels is far beyond
/// what equations from papers need (Horner's form of a degree-30 polynomial uses 91).
pub const MAX_DEPTH: u32 = 100;

/// How many numbers, names and operations one expression (one line) may have: far above
/// what hand-written equations need, and a bound on the work a single request can cause.
/// Kernel compile time grows about linearly with size (lavapipe here: 2.5 s for a sum of 100
/// `sin` terms, 500 nodes; 43 s for 800 terms), so generated systems near the limit compile
/// for minutes; a 10^5-term sum, 20x the limit, is refused at once.
pub const MAX_NODES: usize = 10_000;

/// Sums and products of up to this many terms are evaluated strictly left to right, as
/// written; longer ones are split in halves recursively (see `Parser::chain`).
pub const LEFT_CHAIN: usize = 8;

/// An expression and its height in levels (see `MAX_DEPTH`).
struct Parsed {
    expr: Expr,
    levels: u32,
}

/// One `op term` of a sum or product chain.
struct Link {
    op: BinOp,
    op_span: Range<usize>,
    rhs: Parsed,
}

struct Parser<'a> {
    source: &'a Arc<Source>,
    toks: &'a [Token],
    pos: usize,
    /// Levels open around the current token (parentheses, calls, unary minus, `^`): checked
    /// on the way down, so recursion stops before it gets deep.
    depth: u32,
    /// Nodes made so far for the current expression (see `MAX_NODES`).
    nodes: usize,
}

impl<'a> Parser<'a> {
    fn new(source: &'a Arc<Source>, toks: &'a [Token]) -> Parser<'a> {
        Parser {
            source,
            toks,
            pos: 0,
            depth: 0,
            nodes: 0,
        }
    }

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

    fn too_deep(&self, span: Range<usize>) -> Diagnostic {
        Diagnostic::new(
            format!("expression nested deeper than {MAX_DEPTH} levels"),
            self.source,
            span,
        )
        .with_hint(
            "each parenthesis, function call, unary minus, '^' and operator is a level; \
             split the expression into smaller ones (in a system: helper definitions, one per line)",
        )
    }

    /// Opens a level at the current token, refusing past `MAX_DEPTH`.
    fn enter(&mut self) -> Result<(), Diagnostic> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.too_deep(self.span_here()));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Counts one more node of the current expression, refusing past `MAX_NODES`; `at` is
    /// the token that makes it.
    fn count(&mut self, at: &Range<usize>) -> Result<(), Diagnostic> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(Diagnostic::new(
                format!("expression has more than {MAX_NODES} numbers, names and operations"),
                self.source,
                at.clone(),
            )
            .with_hint(
                "split it into smaller expressions (in a system: helper definitions, one per line)",
            ));
        }
        Ok(())
    }

    /// A new node of `levels` levels; `at` is where a message about it points. Nodes are
    /// counted when their token is read (`count`), so that a message about the size points
    /// where the limit was passed.
    fn node(
        &self,
        kind: ExprKind,
        span: Range<usize>,
        levels: u32,
        at: Range<usize>,
    ) -> Result<Parsed, Diagnostic> {
        if levels > MAX_DEPTH {
            return Err(self.too_deep(at));
        }
        Ok(Parsed {
            expr: Expr { kind, span },
            levels,
        })
    }

    fn binary(
        &self,
        op: BinOp,
        op_span: Range<usize>,
        lhs: Parsed,
        rhs: Parsed,
    ) -> Result<Parsed, Diagnostic> {
        let span = lhs.expr.span.start..rhs.expr.span.end;
        let levels = lhs.levels.max(rhs.levels) + 1;
        let kind = ExprKind::Binary(op, Box::new(lhs.expr), Box::new(rhs.expr));
        self.node(kind, span, levels, op_span)
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
            Some(_) => Err(self.unexpected("unexpected symbol")),
        }
    }

    /// `fallback` at the current token, unless it is a bracket: brackets belong only to a
    /// noise line's target (`dS[1] = ...`), and anywhere else they get the message they had
    /// before brackets were tokens.
    fn unexpected(&self, fallback: &str) -> Diagnostic {
        match self.peek() {
            Some(Tok::LBracket) => self
                .error("unexpected character '['")
                .with_hint("only round parentheses group expressions"),
            Some(Tok::RBracket) => self.error("unexpected character ']'"),
            _ => self.error(fallback),
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
            Some(Tok::LBracket) => {
                let (index, index_span, end) = self.wiener_index()?;
                (
                    Target::Indexed {
                        name,
                        index,
                        index_span,
                    },
                    name_span.start..end,
                )
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
        let value = self.expr()?.expr;
        self.expect_end()?;
        Ok(Statement {
            target,
            target_span,
            value,
        })
    }

    /// `d(dx)/d(y) = expression`.
    fn jacobian_line(&mut self) -> Result<JacobianLine, Diagnostic> {
        const HINT: &str = "each line reads d(dx)/d(y) = expression: the derivative of \
                            equation dx with respect to state y";
        let start = self.span_here().start;
        let (row, row_span, _) = self.jacobian_part("d(dx)")?;
        if self.peek() != Some(&Tok::Slash) {
            return Err(self.error("expected '/' after d(dx)").with_hint(HINT));
        }
        self.bump();
        let (col, col_span, end) = self.jacobian_part("d(y)")?;
        let target_span = start..end;
        if self.peek() != Some(&Tok::Eq) {
            return Err(self.error("expected '='").with_hint(HINT));
        }
        self.bump();
        if self.peek().is_none() {
            return Err(self.error("expected an expression after '='"));
        }
        let value = self.expr()?.expr;
        self.expect_end()?;
        Ok(JacobianLine {
            row,
            row_span,
            col,
            col_span,
            target_span,
            value,
        })
    }

    /// `d(name)`: the name, its span and the end of `)`. `shape` is how the part looks,
    /// for messages.
    fn jacobian_part(&mut self, shape: &str) -> Result<(String, Range<usize>, usize), Diagnostic> {
        let hint = "each line reads d(dx)/d(y) = expression: the derivative of equation dx \
                    with respect to state y";
        if !matches!(self.peek(), Some(Tok::Ident(d)) if d == "d") {
            return Err(self.error(format!("expected {shape}")).with_hint(hint));
        }
        self.bump();
        if self.peek() != Some(&Tok::LParen) {
            return Err(self
                .error(format!("expected '(' in {shape}"))
                .with_hint(hint));
        }
        self.bump();
        let Some(Tok::Ident(name)) = self.peek().cloned() else {
            return Err(self
                .error(format!("expected a name inside {shape}"))
                .with_hint(hint));
        };
        let span = self.bump().span;
        if self.peek() != Some(&Tok::RParen) {
            return Err(self
                .error(format!("expected ')' to close {shape}"))
                .with_hint(hint));
        }
        let end = self.bump().span.end;
        Ok((name, span, end))
    }

    /// `[k]` after a target's name, `[` next: the number, its span and the end of `]`.
    fn wiener_index(&mut self) -> Result<(usize, Range<usize>, usize), Diagnostic> {
        const HINT: &str = "a general noise line reads dS[k] = expression, k = 1 .. wiener";
        self.bump();
        let (value, span) = match self.peek() {
            Some(Tok::Num(v)) => {
                let v = *v;
                (v, self.bump().span)
            }
            _ => {
                return Err(self
                    .error("expected a Wiener process number after '['")
                    .with_hint(HINT));
            }
        };
        if value.fract() != 0.0 || value < 1.0 {
            return Err(Diagnostic::new(
                format!("'{value}' is not a Wiener process number"),
                self.source,
                span,
            )
            .with_hint("Wiener processes are numbered 1, 2, ... up to wiener"));
        }
        if self.peek() != Some(&Tok::RBracket) {
            return Err(self.error("expected ']'").with_hint(HINT));
        }
        let end = self.bump().span.end;
        // Saturates for absurd numbers, which the range check then refuses.
        Ok((value as usize, span, end))
    }

    fn expr(&mut self) -> Result<Parsed, Diagnostic> {
        let first = self.term()?;
        let mut links = Vec::new();
        while let Some(op) = match self.peek() {
            Some(Tok::Plus) => Some(BinOp::Add),
            Some(Tok::Minus) => Some(BinOp::Sub),
            _ => None,
        } {
            let op_span = self.bump().span;
            self.count(&op_span)?;
            let rhs = self.term()?;
            links.push(Link { op, op_span, rhs });
        }
        self.chain(first, links)
    }

    fn term(&mut self) -> Result<Parsed, Diagnostic> {
        let first = self.unary()?;
        let mut links = Vec::new();
        while let Some(op) = match self.peek() {
            Some(Tok::Star) => Some(BinOp::Mul),
            Some(Tok::Slash) => Some(BinOp::Div),
            _ => None,
        } {
            let op_span = self.bump().span;
            self.count(&op_span)?;
            let rhs = self.unary()?;
            links.push(Link { op, op_span, rhs });
        }
        self.chain(first, links)
    }

    /// The tree of a sum or product `first op1 t1 op2 t2 ...`. Up to `LEFT_CHAIN` terms it
    /// is the usual left-leaning tree, evaluated as written. A longer chain is split in
    /// halves, `(first ... t_k) op (t_k+1 ...)`, with the operators of the right half
    /// inverted after a `-` or `/` (`a - b + c` = `a - (b - c)`), so its height grows with
    /// log2 of its length rather than with its length: a sum of 10^5 terms is 21 levels, not
    /// 10^5, and every recursive walk over the tree stays shallow. Grouping changes the
    /// rounding of long sums (pairwise summation is, if anything, more accurate); the CPU
    /// evaluator and the GPU kernels share this one tree, so they still agree.
    fn chain(&mut self, first: Parsed, mut links: Vec<Link>) -> Result<Parsed, Diagnostic> {
        if links.len() < LEFT_CHAIN {
            let mut lhs = first;
            for link in links {
                lhs = self.binary(link.op, link.op_span, lhs, link.rhs)?;
            }
            return Ok(lhs);
        }
        let left_terms = (links.len() + 1).div_ceil(2);
        let mut right_links = links.split_off(left_terms);
        let joint = links.pop().expect("at least LEFT_CHAIN links");
        let invert = matches!(joint.op, BinOp::Sub | BinOp::Div);
        if invert {
            for link in &mut right_links {
                link.op = inverse(link.op);
            }
        }
        let left = self.chain(first, links)?;
        let right = self.chain(joint.rhs, right_links)?;
        self.binary(joint.op, joint.op_span, left, right)
    }

    fn unary(&mut self) -> Result<Parsed, Diagnostic> {
        // Unary plus changes nothing and makes no node: skip any number of them.
        while self.peek() == Some(&Tok::Plus) {
            self.bump();
        }
        if self.peek() != Some(&Tok::Minus) {
            return self.power();
        }
        let op = self.bump().span;
        self.count(&op)?;
        self.enter()?;
        let inner = self.unary()?;
        self.leave();
        let span = op.start..inner.expr.span.end;
        let levels = inner.levels + 1;
        self.node(ExprKind::Neg(Box::new(inner.expr)), span, levels, op)
    }

    fn power(&mut self) -> Result<Parsed, Diagnostic> {
        let base = self.primary()?;
        if self.peek() == Some(&Tok::Caret) {
            let op_span = self.bump().span;
            self.count(&op_span)?;
            // The exponent is a unary so that `x^-2` works; recursion makes `^` right-assoc.
            self.enter()?;
            let exponent = self.unary()?;
            self.leave();
            return self.binary(BinOp::Pow, op_span, base, exponent);
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<Parsed, Diagnostic> {
        let Some(tok) = self.peek().cloned() else {
            return Err(self.error("expression ends too early"));
        };
        match tok {
            Tok::Num(v) => {
                let span = self.bump().span;
                self.count(&span)?;
                self.node(ExprKind::Num(v), span.clone(), 1, span)
            }
            Tok::Ident(name) => {
                let span = self.bump().span;
                self.count(&span)?;
                if self.peek() != Some(&Tok::LParen) {
                    return self.node(ExprKind::Name(name), span.clone(), 1, span);
                }
                self.call(name, span)
            }
            Tok::LParen => {
                let open = self.span_here();
                self.enter()?;
                self.bump();
                let inner = self.expr()?;
                self.leave();
                match self.peek() {
                    Some(Tok::RParen) => {
                        let end = self.bump().span.end;
                        // Parentheses make no node but count as a level, so that the
                        // levels checked on the way down never exceed the tree's.
                        let levels = inner.levels + 1;
                        if levels > MAX_DEPTH {
                            return Err(self.too_deep(open));
                        }
                        Ok(Parsed {
                            expr: Expr {
                                kind: inner.expr.kind,
                                span: open.start..end,
                            },
                            levels,
                        })
                    }
                    None => Err(Diagnostic::new("unclosed '('", self.source, open)
                        .with_hint("add the matching ')'")),
                    Some(_) => Err(self.unexpected("expected ')'")),
                }
            }
            Tok::RParen => Err(self.error("unexpected ')'")),
            Tok::Eq => Err(self
                .error("unexpected '=' inside an expression")
                .with_hint("put each definition on its own line")),
            Tok::Prime => Err(self
                .error("unexpected '''")
                .with_hint("x' is only allowed on the left of '='")),
            _ => Err(self.unexpected("expected a number, a name or '('")),
        }
    }

    /// `name(arg, ...)`, the name already read (at `span`) and `(` next.
    fn call(&mut self, name: String, span: Range<usize>) -> Result<Parsed, Diagnostic> {
        self.enter()?;
        let open = self.bump().span;
        let mut args = Vec::new();
        let mut levels = 0;
        if self.peek() != Some(&Tok::RParen) {
            loop {
                let arg = self.expr()?;
                levels = levels.max(arg.levels);
                args.push(arg.expr);
                match self.peek() {
                    Some(Tok::Comma) => {
                        self.bump();
                    }
                    Some(Tok::RParen) => break,
                    None => {
                        return Err(Diagnostic::new("unclosed '('", self.source, open)
                            .with_hint("add the matching ')'"));
                    }
                    _ => {
                        return Err(self.unexpected("expected ',' or ')' in the argument list"));
                    }
                }
            }
        }
        self.leave();
        let end = self.bump().span.end;
        let kind = ExprKind::Call {
            func: name,
            func_span: span.clone(),
            args,
        };
        self.node(kind, span.start..end, levels + 1, span)
    }
}

fn inverse(op: BinOp) -> BinOp {
    match op {
        BinOp::Add => BinOp::Sub,
        BinOp::Sub => BinOp::Add,
        BinOp::Mul => BinOp::Div,
        BinOp::Div => BinOp::Mul,
        BinOp::Pow => BinOp::Pow,
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
    fn indexed_targets_for_general_noise() {
        let text = "dS[2] = sqrt(v)*S\ndv [ 1 ] = xi";
        let src = Source::new("t", text);
        let s = parse_statements(&src, 0..text.len()).unwrap();
        assert_eq!(
            s[0].target,
            Target::Indexed {
                name: "dS".into(),
                index: 2,
                index_span: 3..4
            }
        );
        assert_eq!(&text[s[0].target_span.clone()], "dS[2]");
        assert!(matches!(&s[1].target, Target::Indexed { index: 1, .. }));
        // A wrapped line inside parentheses ends where the next `dS[k] =` begins.
        let text = "dS[1] = (v\ndv[1] = 1";
        let src = Source::new("t", text);
        let e = parse_statements(&src, 0..text.len()).unwrap_err();
        assert_eq!(e[0].message, "unclosed '('");
        for (bad, message) in [
            ("dS[] = 1", "expected a Wiener process number after '['"),
            ("dS[1.5] = 1", "'1.5' is not a Wiener process number"),
            ("dS[1 = 1", "expected ']'"),
            ("dS = x]", "unexpected character ']'"),
        ] {
            let src = Source::new("t", bad);
            let e = parse_statements(&src, 0..bad.len()).unwrap_err();
            assert_eq!(e[0].message, message, "{bad}");
        }
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

    fn depth_error(text: &str) -> Diagnostic {
        parse_expression(&Source::new("t", text)).unwrap_err()
    }

    /// `levels` nested levels of each kind, the innermost a plain `x`.
    fn nested(kind: &str, levels: usize) -> String {
        match kind {
            "paren" => format!("{}x{}", "(".repeat(levels - 1), ")".repeat(levels - 1)),
            "call" => format!("{}x{}", "sin(".repeat(levels - 1), ")".repeat(levels - 1)),
            "neg" => format!("{}x", "-".repeat(levels - 1)),
            "pow" => vec!["x"; levels].join("^"),
            _ => unreachable!(),
        }
    }

    #[test]
    fn nesting_up_to_the_limit_parses_and_beyond_is_refused_where_it_starts() {
        let limit = MAX_DEPTH as usize;
        for kind in ["paren", "call", "neg", "pow"] {
            let ok = nested(kind, limit);
            assert!(
                parse_expression(&Source::new("t", ok.as_str())).is_ok(),
                "{kind}"
            );
            for levels in [limit + 1, 20_000] {
                let text = nested(kind, levels);
                let d = depth_error(&text);
                assert_eq!(
                    d.message,
                    format!("expression nested deeper than {MAX_DEPTH} levels"),
                    "{kind} {levels}"
                );
                // It points at one token of the text (an operator, a parenthesis or a name).
                let (line, col) = d.position().unwrap();
                assert_eq!(line, 1);
                assert!(col <= text.len(), "{kind}: column {col}");
                assert!(d.span.len() <= "sin".len(), "{kind}");
            }
        }
    }

    #[test]
    fn horner_form_of_degree_30_fits() {
        let horner = |degree: usize| {
            let mut e = format!("a{degree}");
            for k in (0..degree).rev() {
                e = format!("a{k} + x*({e})");
            }
            e
        };
        assert!(parse_expression(&Source::new("t", horner(30).as_str())).is_ok());
        assert!(parse_expression(&Source::new("t", horner(40).as_str())).is_err());
    }

    #[test]
    fn unary_plus_makes_no_level() {
        let text = format!("{}x", "+".repeat(100_000));
        assert_eq!(parse1(&text), "x");
    }

    #[test]
    fn short_chains_are_left_to_right_and_long_ones_are_halved() {
        assert_eq!(
            parse1("a-b-c-d-e-f-g-h"),
            "(((((((a - b) - c) - d) - e) - f) - g) - h)"
        );
        // 9 terms: the first 5 then the last 4, with the right half's operators inverted
        // after the '-' that joins them: a-b+c-d+e - (f-g+h-i).
        assert_eq!(
            parse1("a-b+c-d+e-f+g-h+i"),
            "(((((a - b) + c) - d) + e) - (((f - g) + h) - i))"
        );
        assert_eq!(
            parse1("a/b*c/d*e/f/g*h/i"),
            "(((((a / b) * c) / d) * e) / (((f * g) / h) * i))"
        );
    }

    #[test]
    fn long_chains_are_shallow_and_keep_their_value() {
        // 1 - 2 + 3 - ... + 4999: its height is logarithmic, its value that of the sum as
        // written (exact here: integers).
        let n = 4_999;
        let text: String = (1..=n)
            .map(|k| {
                format!(
                    "{}{k}",
                    if k == 1 {
                        ""
                    } else if k % 2 == 0 {
                        "-"
                    } else {
                        "+"
                    }
                )
            })
            .collect();
        let src = Source::new("t", text.as_str());
        let e = parse_expression(&src).unwrap();
        fn height(e: &Expr) -> usize {
            match &e.kind {
                ExprKind::Num(_) | ExprKind::Name(_) => 1,
                ExprKind::Neg(x) => 1 + height(x),
                ExprKind::Binary(_, a, b) => 1 + height(a).max(height(b)),
                ExprKind::Call { args, .. } => 1 + args.iter().map(height).max().unwrap_or(0),
            }
        }
        assert!(height(&e) <= 20, "{}", height(&e));
        fn value(e: &Expr) -> f64 {
            match &e.kind {
                ExprKind::Num(v) => *v,
                ExprKind::Binary(BinOp::Add, a, b) => value(a) + value(b),
                ExprKind::Binary(BinOp::Sub, a, b) => value(a) - value(b),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(value(&e), 2_500.0);
    }

    #[test]
    fn size_is_limited_where_the_limit_is_passed() {
        let ok = vec!["x"; MAX_NODES / 2].join("+");
        assert!(parse_expression(&Source::new("t", ok.as_str())).is_ok());
        let text = vec!["x"; MAX_NODES].join("+");
        let d = depth_error(&text);
        assert!(d.message.contains("more than 10000"), "{}", d.message);
        // The (MAX_NODES + 1)th node: the '+' after the first 5000 x.
        assert_eq!(d.span.start, MAX_NODES);
    }
}
