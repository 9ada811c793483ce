//! Symbolic differentiation of a system's expressions: Jacobians `d exprs[r] / d wrt[c]`
//! (with respect to states, real parameters or time) as straight-line `Program`s that the
//! f64 evaluator runs on the CPU and `wgsl::emit_system_with` emits for kernels, both
//! computing the same operations in the same order.
//!
//! A Jacobian is built in forward mode, one column at a time: the derivative of each system
//! auxiliary (in order, each from the derivatives of the ones before it) becomes a let, then
//! each expression's derivative refers to those lets. Every node is built simplified
//! (`simplify`), so structural zeros are known at compile time and left out; the program is
//! then shared by common-subexpression elimination (`Program::cse`).

mod cse;
mod rules;
mod simplify;
mod types;

pub use simplify::simplify;
pub(crate) use simplify::{add, is_leaf as is_leaf_node, mul};

use super::expr::{Env, Node};
use super::system::System;
use rules::Deriver;
use simplify::{is_leaf, is_zero};
pub use types::{DeriveError, Program, Wrt};

impl Program {
    /// Outputs of plain expressions over the system (no derivative), e.g. a diffusion vector.
    pub fn of(system: &System, exprs: &[Node]) -> Program {
        Program {
            n_system_aux: system.aux.len(),
            lets: Vec::new(),
            outputs: exprs.to_vec(),
        }
    }

    /// Evaluates every output in f64 (the CPU twin). `scratch` is reused between calls.
    /// `p` holds the parameter slots (parameters, then input values), as for `rhs_f64`.
    pub fn eval(
        &self,
        system: &System,
        t: f64,
        u: &[f64],
        p: &[f64],
        scratch: &mut Vec<f64>,
        out: &mut [f64],
    ) {
        scratch.clear();
        let values = system.aux.iter().map(|a| &a.value).chain(&self.lets);
        for n in values {
            let v = n.eval(&Env {
                t,
                states: u,
                params: p,
                aux: scratch,
            });
            scratch.push(v);
        }
        let env = Env {
            t,
            states: u,
            params: p,
            aux: scratch,
        };
        for (o, n) in out.iter_mut().zip(&self.outputs) {
            *o = n.eval(&env);
        }
    }

    /// Shares repeated subexpressions: every subtree (with at least one operation) that
    /// occurs more than once across lets and outputs becomes a let, referenced by Aux.
    /// Lets no output depends on are dropped. Each output computes the same operations in
    /// the same order as before, so its value is unchanged to the bit.
    pub fn cse(self) -> Program {
        cse::cse(self)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Jacobian {
    pub rows: usize,
    pub cols: usize,
    /// Structurally non-zero entries (row, col) in row-major order; entry k's value is program.outputs[k].
    pub entries: Vec<(usize, usize)>,
    pub program: Program,
}

impl Jacobian {
    /// Index into entries/outputs of (r, c), None when structurally zero.
    pub fn index(&self, r: usize, c: usize) -> Option<usize> {
        self.entries.binary_search(&(r, c)).ok()
    }

    /// Dense row-major [rows*cols] values in f64.
    pub fn eval_dense(&self, system: &System, t: f64, u: &[f64], p: &[f64]) -> Vec<f64> {
        let mut values = vec![0.0; self.entries.len()];
        self.program
            .eval(system, t, u, p, &mut Vec::new(), &mut values);
        let mut dense = vec![0.0; self.rows * self.cols];
        for (&(r, c), v) in self.entries.iter().zip(values) {
            dense[r * self.cols + c] = v;
        }
        dense
    }
}

fn check_variable(system: &System, w: Wrt) -> Result<(), DeriveError> {
    let bad = |what: String| Err(DeriveError::BadVariable(what));
    match w {
        Wrt::State(i) if i >= system.dim() => {
            bad(format!("state {i}: the system has {} states", system.dim()))
        }
        Wrt::Param(i) if i >= system.n_params() => bad(format!(
            "parameter slot {i}: the system has {} parameters, and the slots after them \
             hold input values, which are not parameters",
            system.n_params()
        )),
        _ => Ok(()),
    }
}

/// Rejects references to states, parameter slots or auxiliaries the system lacks, which
/// the evaluator would index out of bounds.
fn check_expression(system: &System, n: &Node) -> Result<(), DeriveError> {
    let mut bad = None;
    n.visit(&mut |n| {
        let out = match *n {
            Node::State(i) if i >= system.dim() => Some(format!("state {i}")),
            Node::Param(i) if i >= system.n_param_slots() => Some(format!("parameter slot {i}")),
            Node::Aux(i) if i >= system.aux.len() => Some(format!("auxiliary {i}")),
            _ => None,
        };
        bad = bad.take().or(out);
    });
    bad.map_or(Ok(()), |b| Err(DeriveError::OutOfRange(b)))
}

/// d exprs[r] / d wrt[c] for every r, c, with the system's aux chains differentiated too
/// (d aux_i / d wrt becomes a let, built once, only when non-zero), simplified and CSE'd;
/// zeros known at compile time are left out of `entries`.
///
/// Inputs have no derivative here (they are piecewise-linear in time): an input is constant
/// with respect to a variable its time argument does not depend on (a state or parameter,
/// where it is read at `t` or at a constant time), and any other case is a `DeriveError`,
/// raised only if the expressions actually depend on it.
pub fn jacobian(system: &System, exprs: &[Node], wrt: &[Wrt]) -> Result<Jacobian, DeriveError> {
    for &w in wrt {
        check_variable(system, w)?;
    }
    for e in exprs {
        check_expression(system, e)?;
    }
    let n_system_aux = system.aux.len();
    let mut lets = Vec::new();
    let mut columns = Vec::with_capacity(wrt.len());
    for &w in wrt {
        // d aux_j / d w for each auxiliary in order. An auxiliary that cannot be
        // differentiated (an input read at a state) is an error only where it is used.
        let mut aux: Vec<Result<Node, DeriveError>> = Vec::with_capacity(n_system_aux);
        for a in &system.aux {
            let d = Deriver {
                system,
                wrt: w,
                aux: &aux,
            }
            .d(&a.value);
            let d = d.map(|d| {
                if is_leaf(&d) {
                    d
                } else {
                    lets.push(d);
                    Node::Aux(n_system_aux + lets.len() - 1)
                }
            });
            aux.push(d);
        }
        let deriver = Deriver {
            system,
            wrt: w,
            aux: &aux,
        };
        let column: Vec<Node> = exprs
            .iter()
            .map(|e| deriver.d(e))
            .collect::<Result<_, _>>()?;
        columns.push(column);
    }
    let mut entries = Vec::new();
    let mut outputs = Vec::new();
    for r in 0..exprs.len() {
        for (c, column) in columns.iter_mut().enumerate() {
            let d = std::mem::replace(&mut column[r], Node::Const(0.0));
            if !is_zero(&d) {
                entries.push((r, c));
                outputs.push(d);
            }
        }
    }
    let program = Program {
        n_system_aux,
        lets,
        outputs,
    }
    .cse();
    Ok(Jacobian {
        rows: exprs.len(),
        cols: wrt.len(),
        entries,
        program,
    })
}

#[cfg(test)]
mod tests;
