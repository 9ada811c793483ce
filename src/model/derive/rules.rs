//! Forward-mode symbolic differentiation of one expression with respect to one variable,
//! every result built by the simplifying constructors (so zeros vanish as they appear).

use super::simplify::{add, c, call, call1, div, is_zero, mul, neg, powi, sub};
use super::types::{DeriveError, Wrt, wrt_name};
use crate::model::expr::{BinOp, Func, Node};
use crate::model::system::System;
use std::f64::consts::{LN_2, LN_10};

/// Differentiates expressions of `system` with respect to `wrt`. `aux[j]` is the
/// derivative of system auxiliary `j` (a constant, a leaf or a reference to the let that
/// holds it), or the error differentiating it gave, reported only if it is needed.
pub(super) struct Deriver<'a> {
    pub system: &'a System,
    pub wrt: Wrt,
    pub aux: &'a [Result<Node, DeriveError>],
}

impl Deriver<'_> {
    pub fn d(&self, n: &Node) -> Result<Node, DeriveError> {
        Ok(match n {
            Node::Const(_) => c(0.0),
            Node::State(i) => indicator(self.wrt == Wrt::State(*i)),
            Node::Param(i) => indicator(self.wrt == Wrt::Param(*i)),
            Node::Time => indicator(self.wrt == Wrt::Time),
            Node::Aux(j) => match self.aux.get(*j) {
                Some(d) => d.clone()?,
                None => {
                    return Err(DeriveError::OutOfRange(format!(
                        "auxiliary {j} (the system has {})",
                        self.aux.len()
                    )));
                }
            },
            Node::Neg(x) => neg(self.d(x)?),
            Node::Bin(op, a, b) => self.bin(*op, a, b)?,
            Node::PowInt(x, k) => {
                // n x^(n-1) x'
                let dx = self.d(x)?;
                mul(mul(c(*k as f64), powi((**x).clone(), k - 1)), dx)
            }
            Node::Call(f, args) => self.call(*f, args)?,
            Node::Input(signal, at) => {
                let dat = self.d(at)?;
                if is_zero(&dat) {
                    c(0.0)
                } else {
                    return Err(self.input_error(signal.first));
                }
            }
        })
    }

    fn bin(&self, op: BinOp, a: &Node, b: &Node) -> Result<Node, DeriveError> {
        let (da, db) = (self.d(a)?, self.d(b)?);
        let (a, b) = (a.clone(), b.clone());
        Ok(match op {
            BinOp::Add => add(da, db),
            BinOp::Sub => sub(da, db),
            BinOp::Mul => add(mul(da, b), mul(a, db)),
            BinOp::Div => {
                if is_zero(&db) {
                    div(da, b)
                } else {
                    // (a' b - a b') / b^2
                    div(sub(mul(da, b.clone()), mul(a, db)), powi(b, 2))
                }
            }
            BinOp::Pow => {
                return Err(DeriveError::OutOfRange(
                    "a '^' node (the resolver lowers it to an integer power or pow)".into(),
                ));
            }
        })
    }

    fn call(&self, f: Func, args: &[Node]) -> Result<Node, DeriveError> {
        let d: Vec<Node> = args.iter().map(|a| self.d(a)).collect::<Result<_, _>>()?;
        if d.iter().all(is_zero) {
            return Ok(c(0.0));
        }
        let x = || args[0].clone();
        let dx = || d[0].clone();
        // x^2 as the language writes it, by multiplication.
        let sq = |n: Node| powi(n, 2);
        Ok(match f {
            Func::Sin => mul(call1(Func::Cos, x()), dx()),
            Func::Cos => neg(mul(call1(Func::Sin, x()), dx())),
            Func::Tan => div(dx(), sq(call1(Func::Cos, x()))),
            Func::Asin => div(dx(), call1(Func::Sqrt, sub(c(1.0), sq(x())))),
            Func::Acos => neg(div(dx(), call1(Func::Sqrt, sub(c(1.0), sq(x()))))),
            Func::Atan => div(dx(), add(c(1.0), sq(x()))),
            Func::Atan2 => {
                // atan2(y, x)' = (x y' - y x') / (x^2 + y^2)
                let (y, xx) = (args[0].clone(), args[1].clone());
                let num = sub(mul(xx.clone(), d[0].clone()), mul(y.clone(), d[1].clone()));
                div(num, add(sq(xx), sq(y)))
            }
            Func::Sinh => mul(call1(Func::Cosh, x()), dx()),
            Func::Cosh => mul(call1(Func::Sinh, x()), dx()),
            Func::Tanh => mul(sub(c(1.0), sq(call1(Func::Tanh, x()))), dx()),
            Func::Exp => mul(call1(Func::Exp, x()), dx()),
            Func::Log => div(dx(), x()),
            Func::Log2 => div(dx(), mul(x(), c(LN_2))),
            Func::Log10 => div(dx(), mul(x(), c(LN_10))),
            Func::Sqrt => div(dx(), mul(c(2.0), call1(Func::Sqrt, x()))),
            Func::Abs => mul(call1(Func::Sign, x()), dx()),
            // Piecewise constant: zero wherever they are differentiable.
            Func::Sign | Func::Floor | Func::Ceil => c(0.0),
            Func::Min => min_max(-1.0, &args[0], &d[0], &args[1], &d[1]),
            Func::Max => min_max(1.0, &args[0], &d[0], &args[1], &d[1]),
            Func::Clamp => {
                // clamp(x, lo, hi) = min(max(x, lo), hi), as Func::eval computes it.
                let m = call(Func::Max, vec![args[0].clone(), args[1].clone()]);
                let dm = min_max(1.0, &args[0], &d[0], &args[1], &d[1]);
                min_max(-1.0, &m, &dm, &args[2], &d[2])
            }
            Func::Pow => {
                let (a, b) = (args[0].clone(), args[1].clone());
                let (da, db) = (d[0].clone(), d[1].clone());
                if is_zero(&db) {
                    // Constant exponent: b a^(b-1) a'
                    let p = call(Func::Pow, vec![a, sub(b.clone(), c(1.0))]);
                    mul(mul(b, p), da)
                } else if is_zero(&da) {
                    // Constant base: a^b ln(a) b'
                    let p = call(Func::Pow, vec![a.clone(), b]);
                    mul(mul(p, call1(Func::Log, a)), db)
                } else {
                    // a^b (b' ln(a) + b a'/a)
                    let p = call(Func::Pow, vec![a.clone(), b.clone()]);
                    let inner = add(mul(db, call1(Func::Log, a.clone())), div(mul(b, da), a));
                    mul(p, inner)
                }
            }
        })
    }

    fn input_error(&self, first: usize) -> DeriveError {
        let input = (0..self.system.inputs.len())
            .find(|&k| self.system.signal(k).first == first)
            .map(|k| self.system.inputs[k].name.clone())
            .unwrap_or_else(|| format!("at parameter slot {first}"));
        match self.wrt {
            Wrt::Time => DeriveError::TimeThroughInput { input },
            w => DeriveError::InputArgument {
                input,
                wrt: wrt_name(self.system, w),
            },
        }
    }
}

fn indicator(hit: bool) -> Node {
    c(if hit { 1.0 } else { 0.0 })
}

/// min (s = -1) or max (s = 1) of a and b: (a' + b' + s sign(a - b) (a' - b')) / 2, which is
/// a' or b' away from a tie and their average at one.
fn min_max(s: f64, a: &Node, da: &Node, b: &Node, db: &Node) -> Node {
    let sign = call1(Func::Sign, sub(a.clone(), b.clone()));
    let jump = mul(sign, sub(da.clone(), db.clone()));
    let sum = add(da.clone(), db.clone());
    let total = if s > 0.0 {
        add(sum, jump)
    } else {
        sub(sum, jump)
    };
    mul(c(0.5), total)
}
