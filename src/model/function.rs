//! A function of a few named inputs written in the system language, e.g. the target
//! `phaseflow fit` learns: `sin(2*pi*3*x) + 0.5*sin(2*pi*17*x)`.

use super::diagnostic::{Diagnostic, Diagnostics, Source};
use super::expr::{Env, Node};
use super::parser::{Expr, ExprKind, parse_expression};
use super::system::{Var, resolve_expression};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub inputs: Vec<String>,
    pub text: String,
    body: Node,
}

/// The first use of `t`, which in a function of inputs is a mistake, not time.
fn find_time(e: &Expr) -> Option<std::ops::Range<usize>> {
    match &e.kind {
        ExprKind::Name(n) if n == "t" => Some(e.span.clone()),
        ExprKind::Num(_) | ExprKind::Name(_) => None,
        ExprKind::Neg(x) => find_time(x),
        ExprKind::Binary(_, a, b) => find_time(a).or_else(|| find_time(b)),
        ExprKind::Call { args, .. } => args.iter().find_map(find_time),
    }
}

impl Function {
    /// Parses `source` (the whole text is the expression) over the named inputs; every
    /// error comes with its line, column and a caret.
    pub fn parse(source: &Arc<Source>, inputs: &[&str]) -> Result<Function, Diagnostics> {
        let expr = parse_expression(source).map_err(|d| Diagnostics(vec![d]))?;
        if let Some(span) = find_time(&expr) {
            return Err(Diagnostics(vec![
                Diagnostic::new("'t' is not an input of this function", source, span)
                    .with_hint(format!("the inputs are: {}", inputs.join(", "))),
            ]));
        }
        let vars: Vec<Var> = inputs.iter().map(|&n| Var::new(n, 0.0)).collect();
        let body = resolve_expression(source, &expr, &vars).map_err(|mut d| {
            // The resolver knows `t` as time and may suggest it for a misspelt name, but
            // here it is refused: point at the inputs instead.
            for diag in &mut d.0 {
                if diag.hint.as_deref() == Some("did you mean 't'?") {
                    diag.hint = Some(format!("the inputs are: {}", inputs.join(", ")));
                }
            }
            d
        })?;
        Ok(Function {
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            text: source.text.clone(),
            body,
        })
    }

    /// The value at `x` (one value per input, in order), in f64.
    pub fn eval(&self, x: &[f64]) -> f64 {
        debug_assert_eq!(x.len(), self.inputs.len());
        self.body.eval(&Env {
            t: 0.0,
            states: &[],
            params: x,
            aux: &[],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, inputs: &[&str]) -> Result<Function, Diagnostics> {
        Function::parse(&Source::new("<expr>", text), inputs)
    }

    #[test]
    fn evaluates_over_named_inputs() {
        let f = parse("sin(2*pi*3*x) + 0.5*y^2 - z", &["x", "y", "z"]).unwrap();
        let want = (2.0 * std::f64::consts::PI * 3.0 * 0.1f64).sin() + 0.5 * 0.25 - 2.0;
        assert!((f.eval(&[0.1, 0.5, 2.0]) - want).abs() < 1e-15);
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = parse("sin(2*pi*q)", &["x"]).unwrap_err();
        assert_eq!(e.first().position(), Some((1, 10)));
        assert!(e.to_string().contains("unknown name 'q'"), "{e}");
        let e = parse("x + t", &["x", "y"]).unwrap_err();
        assert_eq!(e.first().position(), Some((1, 5)));
        assert!(e.to_string().contains("the inputs are: x, y"), "{e}");
        let e = parse("x +", &["x"]).unwrap_err();
        assert!(e.first().position().is_some());
        let e = parse("sinn(x)", &["x"]).unwrap_err();
        assert!(e.to_string().contains("did you mean 'sin'"), "{e}");
        // `t` is no input, so it is never what a misspelt name meant.
        let e = parse("sin(q)", &["x"]).unwrap_err();
        assert!(!e.to_string().contains("'t'"), "{e}");
        assert!(e.to_string().contains("the inputs are: x"), "{e}");
    }
}
