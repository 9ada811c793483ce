//! Algebraic simplification of expression trees, as smart constructors: each builds one
//! node from already simplified children, so differentiation never materialises the
//! `0 * ...` and `1 * ...` terms the product and chain rules produce.
//!
//! The rules assume finite operands: `x * 0`, `0 * x` and `0 / x` become 0 although IEEE
//! arithmetic gives NaN when `x` is infinite or NaN (and `0 / 0` is NaN). Every symbolic
//! differentiator makes this choice; without it no derivative would ever be structurally
//! zero, so no Jacobian would be sparse. Where `x` is not finite, the rest of the
//! computation is not either, and the kernels' finiteness checks catch it there. The other
//! rules (`x + 0`, `x * 1`, ...) are exact except for the sign of a zero result.

use crate::model::expr::{BinOp, Env, Func, Node};
use crate::model::signal::Signal;

/// Simplifies a whole tree bottom-up: constant folding, `x+0`, `0+x`, `x-0`, `0-x -> -x`,
/// `x*1`, `1*x`, `x*0` and `0*x -> 0`, `0/x -> 0` (see the module comment for NaN and
/// infinities), `x*-1` and `-1*x -> -x`, `x/1`, `--x`, `x^1 -> x`, `x^0 -> 1`.
pub fn simplify(node: Node) -> Node {
    match node {
        Node::Neg(x) => neg(simplify(*x)),
        Node::Bin(op, a, b) => bin(op, simplify(*a), simplify(*b)),
        Node::PowInt(x, n) => powi(simplify(*x), n),
        Node::Call(f, args) => call(f, args.into_iter().map(simplify).collect()),
        Node::Input(signal, at) => input(signal, simplify(*at)),
        leaf => leaf,
    }
}

/// Whether `n` is the constant 0 (either sign).
pub(crate) fn is_zero(n: &Node) -> bool {
    matches!(n, Node::Const(v) if *v == 0.0)
}

fn is_one(n: &Node) -> bool {
    matches!(n, Node::Const(v) if *v == 1.0)
}

/// Multiplying by -1 is an exact negation, so `-1 * x` and `x * -1` become `-x`.
fn is_minus_one(n: &Node) -> bool {
    matches!(n, Node::Const(v) if *v == -1.0)
}

/// Whether `n` has no operation: a constant, a variable or a named value.
pub(crate) fn is_leaf(n: &Node) -> bool {
    matches!(
        n,
        Node::Const(_) | Node::State(_) | Node::Param(_) | Node::Aux(_) | Node::Time
    )
}

/// The value of a node whose operands are all constants, by the evaluator itself, so a
/// folded constant is exactly what the f64 evaluator would have computed.
fn folded(n: Node) -> Node {
    let env = Env {
        t: 0.0,
        states: &[],
        params: &[],
        aux: &[],
    };
    Node::Const(n.eval(&env))
}

pub(crate) fn c(v: f64) -> Node {
    Node::Const(v)
}

pub(crate) fn neg(x: Node) -> Node {
    match x {
        Node::Const(v) => Node::Const(-v),
        Node::Neg(inner) => *inner,
        x => Node::Neg(Box::new(x)),
    }
}

pub(crate) fn bin(op: BinOp, a: Node, b: Node) -> Node {
    match op {
        BinOp::Add => add(a, b),
        BinOp::Sub => sub(a, b),
        BinOp::Mul => mul(a, b),
        BinOp::Div => div(a, b),
        // Never produced by the resolver (see `Node::Bin`); kept as it is.
        BinOp::Pow => Node::Bin(op, Box::new(a), Box::new(b)),
    }
}

fn raw(op: BinOp, a: Node, b: Node) -> Node {
    let both_constant = matches!((&a, &b), (Node::Const(_), Node::Const(_)));
    let n = Node::Bin(op, Box::new(a), Box::new(b));
    if both_constant { folded(n) } else { n }
}

pub(crate) fn add(a: Node, b: Node) -> Node {
    if is_zero(&a) && !matches!(b, Node::Const(_)) {
        b
    } else if is_zero(&b) && !matches!(a, Node::Const(_)) {
        a
    } else {
        raw(BinOp::Add, a, b)
    }
}

pub(crate) fn sub(a: Node, b: Node) -> Node {
    if is_zero(&b) && !matches!(a, Node::Const(_)) {
        a
    } else if is_zero(&a) && !matches!(b, Node::Const(_)) {
        neg(b)
    } else {
        raw(BinOp::Sub, a, b)
    }
}

pub(crate) fn mul(a: Node, b: Node) -> Node {
    if is_zero(&a) || is_zero(&b) {
        c(0.0)
    } else if is_one(&a) {
        b
    } else if is_one(&b) {
        a
    } else if is_minus_one(&a) && !matches!(b, Node::Const(_)) {
        neg(b)
    } else if is_minus_one(&b) && !matches!(a, Node::Const(_)) {
        neg(a)
    } else {
        raw(BinOp::Mul, a, b)
    }
}

pub(crate) fn div(a: Node, b: Node) -> Node {
    if is_zero(&a) && !matches!(b, Node::Const(_)) {
        c(0.0)
    } else if is_one(&b) {
        a
    } else {
        raw(BinOp::Div, a, b)
    }
}

pub(crate) fn powi(x: Node, n: i32) -> Node {
    match (x, n) {
        (_, 0) => c(1.0),
        (x, 1) => x,
        (x @ Node::Const(_), n) => folded(Node::PowInt(Box::new(x), n)),
        (x, n) => Node::PowInt(Box::new(x), n),
    }
}

/// A call; folded when every argument is a constant, which also keeps constant calls out
/// of f64 kernels (naga evaluates them at compile time and lacks most f64 functions).
pub(crate) fn call(f: Func, args: Vec<Node>) -> Node {
    let constant = args.iter().all(|a| matches!(a, Node::Const(_)));
    let n = Node::Call(f, args);
    if constant { folded(n) } else { n }
}

pub(crate) fn call1(f: Func, x: Node) -> Node {
    call(f, vec![x])
}

/// An input at a time; never folded, as its value depends on the trajectory.
pub(crate) fn input(signal: Signal, at: Node) -> Node {
    Node::Input(signal, Box::new(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x() -> Node {
        Node::State(0)
    }

    fn b(op: BinOp, a: Node, b: Node) -> Node {
        Node::Bin(op, Box::new(a), Box::new(b))
    }

    #[test]
    fn each_rule() {
        use BinOp::*;
        let cases = [
            (b(Add, c(2.0), c(3.0)), c(5.0)),
            (b(Add, x(), c(0.0)), x()),
            (b(Add, c(0.0), x()), x()),
            (b(Sub, x(), c(0.0)), x()),
            (b(Sub, c(0.0), x()), neg(x())),
            (b(Mul, x(), c(1.0)), x()),
            (b(Mul, c(1.0), x()), x()),
            (b(Mul, x(), c(0.0)), c(0.0)),
            (b(Mul, c(0.0), x()), c(0.0)),
            (b(Div, x(), c(1.0)), x()),
            (b(Mul, x(), c(-1.0)), neg(x())),
            (b(Mul, c(-1.0), x()), neg(x())),
            (b(Div, c(0.0), x()), c(0.0)),
            (Node::Neg(Box::new(Node::Neg(Box::new(x())))), x()),
            (Node::PowInt(Box::new(x()), 1), x()),
            (Node::PowInt(Box::new(x()), 0), c(1.0)),
            (Node::PowInt(Box::new(c(2.0)), -2), c(0.25)),
            (Node::Call(Func::Sin, vec![c(0.0)]), c(0.0)),
            (Node::Neg(Box::new(c(2.0))), c(-2.0)),
            // Nested: (x*1 + 0) * (2 - 2) is 0; sin(0*x) is sin(0) = 0.
            (
                b(
                    Mul,
                    b(Add, b(Mul, x(), c(1.0)), c(0.0)),
                    b(Sub, c(2.0), c(2.0)),
                ),
                c(0.0),
            ),
            (Node::Call(Func::Sin, vec![b(Mul, c(0.0), x())]), c(0.0)),
        ];
        for (input, expected) in cases {
            assert_eq!(simplify(input.clone()), expected, "{input:?}");
        }
        // Constant folding is the evaluator's arithmetic: 0/0 stays NaN, not 0.
        let nan = simplify(b(Div, c(0.0), c(0.0)));
        assert!(matches!(nan, Node::Const(v) if v.is_nan()), "{nan:?}");
        // Operations on variables are kept.
        let keep = b(Mul, x(), Node::Param(1));
        assert_eq!(simplify(keep.clone()), keep);
    }
}
