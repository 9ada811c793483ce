//! Resolved expressions: names replaced by indices, constants folded, small integer powers
//! made explicit. This one tree drives the f64 evaluator (the CPU reference) and the WGSL
//! emitter, so both compute the same operations in the same order.

pub use super::parser::BinOp;
use super::signal::Signal;

/// A built-in function of the equation language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Atan2,
    Sinh,
    Cosh,
    Tanh,
    Exp,
    Log,
    Log2,
    Log10,
    Sqrt,
    Abs,
    Sign,
    Floor,
    Ceil,
    Min,
    Max,
    Clamp,
    Pow,
}

impl Func {
    pub const ALL: [Func; 23] = [
        Func::Sin,
        Func::Cos,
        Func::Tan,
        Func::Asin,
        Func::Acos,
        Func::Atan,
        Func::Atan2,
        Func::Sinh,
        Func::Cosh,
        Func::Tanh,
        Func::Exp,
        Func::Log,
        Func::Log2,
        Func::Log10,
        Func::Sqrt,
        Func::Abs,
        Func::Sign,
        Func::Floor,
        Func::Ceil,
        Func::Min,
        Func::Max,
        Func::Clamp,
        Func::Pow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Func::Sin => "sin",
            Func::Cos => "cos",
            Func::Tan => "tan",
            Func::Asin => "asin",
            Func::Acos => "acos",
            Func::Atan => "atan",
            Func::Atan2 => "atan2",
            Func::Sinh => "sinh",
            Func::Cosh => "cosh",
            Func::Tanh => "tanh",
            Func::Exp => "exp",
            Func::Log => "log",
            Func::Log2 => "log2",
            Func::Log10 => "log10",
            Func::Sqrt => "sqrt",
            Func::Abs => "abs",
            Func::Sign => "sign",
            Func::Floor => "floor",
            Func::Ceil => "ceil",
            Func::Min => "min",
            Func::Max => "max",
            Func::Clamp => "clamp",
            Func::Pow => "pow",
        }
    }

    /// Functions Vulkan has no f64 version of, which f64 kernels take from phaseflow's
    /// math library (`shaders/common/math_f64.wgsl`, as `m64_<name>`).
    pub fn needs_f64_library(self) -> bool {
        !matches!(
            self,
            Func::Sqrt
                | Func::Abs
                | Func::Sign
                | Func::Floor
                | Func::Ceil
                | Func::Min
                | Func::Max
                | Func::Clamp
        )
    }

    pub fn from_name(name: &str) -> Option<Func> {
        Func::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn arity(self) -> usize {
        match self {
            Func::Atan2 | Func::Min | Func::Max | Func::Pow => 2,
            Func::Clamp => 3,
            _ => 1,
        }
    }

    /// How the function is called, for messages and documentation.
    pub fn signature(self) -> String {
        match self {
            Func::Atan2 => "atan2(y, x)".into(),
            Func::Min | Func::Max => format!("{}(a, b)", self.name()),
            Func::Pow => "pow(base, exponent)".into(),
            Func::Clamp => "clamp(x, lo, hi)".into(),
            f => format!("{}(x)", f.name()),
        }
    }

    /// The f64 semantics shared by the CPU reference. Where WGSL defines a function
    /// differently from Rust's std (sign of zero, clamp order), WGSL's definition is used.
    pub fn eval(self, a: &[f64]) -> f64 {
        match self {
            Func::Sin => a[0].sin(),
            Func::Cos => a[0].cos(),
            Func::Tan => a[0].tan(),
            Func::Asin => a[0].asin(),
            Func::Acos => a[0].acos(),
            Func::Atan => a[0].atan(),
            Func::Atan2 => a[0].atan2(a[1]),
            Func::Sinh => a[0].sinh(),
            Func::Cosh => a[0].cosh(),
            Func::Tanh => a[0].tanh(),
            Func::Exp => a[0].exp(),
            Func::Log => a[0].ln(),
            Func::Log2 => a[0].log2(),
            Func::Log10 => a[0].log10(),
            Func::Sqrt => a[0].sqrt(),
            Func::Abs => a[0].abs(),
            Func::Sign => {
                if a[0] > 0.0 {
                    1.0
                } else if a[0] < 0.0 {
                    -1.0
                } else {
                    a[0]
                }
            }
            Func::Floor => a[0].floor(),
            Func::Ceil => a[0].ceil(),
            Func::Min => a[0].min(a[1]),
            Func::Max => a[0].max(a[1]),
            Func::Clamp => a[0].max(a[1]).min(a[2]),
            Func::Pow => a[0].powf(a[1]),
        }
    }
}

/// Largest integer exponent that is expanded into multiplications.
pub const MAX_UNROLLED_POWER: i32 = 64;

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Const(f64),
    State(usize),
    Param(usize),
    /// An auxiliary definition, by index; always defined before use.
    Aux(usize),
    Time,
    Neg(Box<Node>),
    /// Add, Sub, Mul or Div (never Pow: see `PowInt` and `Func::Pow`).
    Bin(BinOp, Box<Node>, Box<Node>),
    /// `x^n` for a constant integer `n`, computed by repeated squaring (see `powi_steps`),
    /// since WGSL's `pow` is undefined for negative bases.
    PowInt(Box<Node>, i32),
    Call(Func, Vec<Node>),
    /// An input signal evaluated at a time (usually `t` itself).
    Input(Signal, Box<Node>),
}

/// Values a node may refer to.
pub struct Env<'a> {
    pub t: f64,
    pub states: &'a [f64],
    pub params: &'a [f64],
    pub aux: &'a [f64],
}

impl Node {
    pub fn eval(&self, env: &Env) -> f64 {
        match self {
            Node::Const(v) => *v,
            Node::State(i) => env.states[*i],
            Node::Param(i) => env.params[*i],
            Node::Aux(i) => env.aux[*i],
            Node::Time => env.t,
            Node::Neg(x) => -x.eval(env),
            Node::Bin(op, a, b) => {
                let (a, b) = (a.eval(env), b.eval(env));
                match op {
                    BinOp::Add => a + b,
                    BinOp::Sub => a - b,
                    BinOp::Mul => a * b,
                    BinOp::Div => a / b,
                    BinOp::Pow => unreachable!("Pow is lowered to PowInt or Func::Pow"),
                }
            }
            Node::PowInt(x, n) => powi(x.eval(env), *n),
            Node::Call(f, args) => {
                let mut vals = [0.0; 3];
                for (v, a) in vals.iter_mut().zip(args) {
                    *v = a.eval(env);
                }
                f.eval(&vals[..args.len()])
            }
            Node::Input(signal, at) => signal.eval(env.params, at.eval(env)),
        }
    }

    /// Replaces every subtree with no variables by its value.
    pub fn fold(self) -> Node {
        let folded = match self {
            Node::Neg(x) => Node::Neg(Box::new(x.fold())),
            Node::Bin(op, a, b) => Node::Bin(op, Box::new(a.fold()), Box::new(b.fold())),
            // x^0 is 1 for every x (NaN included, as `powi` computes it). Folding it keeps
            // constants out of calls in the kernels: naga evaluates a call of constants at
            // compile time and has no f64 `sqrt` to do it with.
            Node::PowInt(_, 0) => return Node::Const(1.0),
            Node::PowInt(x, n) => Node::PowInt(Box::new(x.fold()), n),
            Node::Call(f, args) => Node::Call(f, args.into_iter().map(Node::fold).collect()),
            Node::Input(signal, at) => return Node::Input(signal, Box::new(at.fold())),
            leaf => return leaf,
        };
        if folded.is_constant() {
            let env = Env {
                t: 0.0,
                states: &[],
                params: &[],
                aux: &[],
            };
            Node::Const(folded.eval(&env))
        } else {
            folded
        }
    }

    fn is_constant(&self) -> bool {
        match self {
            Node::Const(_) => true,
            Node::State(_) | Node::Param(_) | Node::Aux(_) | Node::Time | Node::Input(..) => false,
            Node::Neg(x) | Node::PowInt(x, _) => x.is_constant(),
            Node::Bin(_, a, b) => a.is_constant() && b.is_constant(),
            Node::Call(_, args) => args.iter().all(Node::is_constant),
        }
    }

    /// Calls `f` on this node and every node below it.
    pub fn visit(&self, f: &mut impl FnMut(&Node)) {
        f(self);
        match self {
            Node::Neg(x) | Node::PowInt(x, _) | Node::Input(_, x) => x.visit(f),
            Node::Bin(_, a, b) => {
                a.visit(f);
                b.visit(f);
            }
            Node::Call(_, args) => args.iter().for_each(|a| a.visit(f)),
            _ => {}
        }
    }
}

/// The multiplication plan for `x^|n|`: the number of squarings and which of the powers
/// `x^(2^k)` are multiplied together (ascending `k`). Shared by the evaluator and the WGSL
/// emitter so both round identically.
pub fn powi_steps(n: u32) -> (u32, Vec<u32>) {
    let squarings = 31 - n.max(1).leading_zeros();
    let bits = (0..=squarings).filter(|k| n & (1 << k) != 0).collect();
    (squarings, bits)
}

pub fn powi(x: f64, n: i32) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let (squarings, bits) = powi_steps(n.unsigned_abs());
    let mut powers = vec![x];
    for k in 0..squarings as usize {
        powers.push(powers[k] * powers[k]);
    }
    let mut r = powers[bits[0] as usize];
    for &b in &bits[1..] {
        r *= powers[b as usize];
    }
    if n < 0 { 1.0 / r } else { r }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powi_matches_repeated_multiplication() {
        for n in -12..=12 {
            let x = -1.37f64;
            let expected = if n >= 0 {
                (0..n).fold(1.0, |a, _| a * x)
            } else {
                1.0 / (0..-n).fold(1.0, |a, _| a * x)
            };
            let got = powi(x, n);
            assert!(
                (got - expected).abs() <= 1e-14 * expected.abs(),
                "n={n}: {got} vs {expected}"
            );
        }
        assert_eq!(powi_steps(5), (2, vec![0, 2]));
        assert_eq!(powi_steps(1), (0, vec![0]));
    }

    #[test]
    fn folding_removes_constant_subtrees_only() {
        let n = Node::Bin(
            BinOp::Mul,
            Box::new(Node::Bin(
                BinOp::Div,
                Box::new(Node::Const(8.0)),
                Box::new(Node::Const(3.0)),
            )),
            Box::new(Node::State(0)),
        )
        .fold();
        match n {
            Node::Bin(BinOp::Mul, a, b) => {
                assert_eq!(*a, Node::Const(8.0 / 3.0));
                assert_eq!(*b, Node::State(0));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sign_and_clamp_follow_wgsl() {
        assert_eq!(Func::Sign.eval(&[0.0]), 0.0);
        assert_eq!(Func::Sign.eval(&[-3.0]), -1.0);
        assert_eq!(Func::Clamp.eval(&[5.0, 0.0, 1.0]), 1.0);
        assert_eq!(Func::Atan2.eval(&[1.0, 0.0]), std::f64::consts::FRAC_PI_2);
    }
}
