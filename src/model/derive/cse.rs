//! Common-subexpression elimination over a `Program`: every distinct subtree gets an id
//! (hash-consing), references to lets become the ids of their values, and a subtree with an
//! operation that the outputs reach from more than one place is computed once, as a let.
//!
//! Lets the outputs do not need are dropped. The program's own lets stay lets (never
//! inlined), so a long chain of them never becomes one deep expression; every walk here is
//! either iterative or as deep as one let's or output's own tree.

use super::types::Program;
use crate::model::expr::{BinOp, Func, Node};
use crate::model::signal::Signal;
use std::collections::HashMap;

/// A subtree with its children replaced by their ids. Constants compare by their bits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Const(u64),
    State(usize),
    Param(usize),
    Aux(usize),
    Time,
    Neg(usize),
    Bin(u8, usize, usize),
    PowInt(usize, i32),
    Call(Func, Vec<usize>),
    /// The signal's index in `Cse::signals`, and the time's id.
    Input(usize, usize),
}

impl Key {
    fn children(&self) -> Vec<usize> {
        match self {
            Key::Neg(x) | Key::PowInt(x, _) | Key::Input(_, x) => vec![*x],
            Key::Bin(_, a, b) => vec![*a, *b],
            Key::Call(_, args) => args.clone(),
            _ => Vec::new(),
        }
    }

    fn is_operation(&self) -> bool {
        !matches!(
            self,
            Key::Const(_) | Key::State(_) | Key::Param(_) | Key::Aux(_) | Key::Time
        )
    }
}

const OPS: [BinOp; 5] = [BinOp::Add, BinOp::Sub, BinOp::Mul, BinOp::Div, BinOp::Pow];

#[derive(Default)]
struct Cse {
    keys: Vec<Key>,
    ids: HashMap<Key, usize>,
    signals: Vec<Signal>,
}

impl Cse {
    /// The id of `n`; `Aux(n_system_aux + k)` is the id of let `k`'s value (`lets`).
    fn intern(&mut self, n: &Node, n_system_aux: usize, lets: &[usize]) -> usize {
        let mut id = |n: &Node| self.intern(n, n_system_aux, lets);
        let key = match n {
            Node::Const(v) => Key::Const(v.to_bits()),
            Node::State(i) => Key::State(*i),
            Node::Param(i) => Key::Param(*i),
            Node::Aux(i) => match i.checked_sub(n_system_aux).and_then(|k| lets.get(k)) {
                Some(&let_id) => return let_id,
                // A system auxiliary (a let referring to itself or a later let is not a
                // program; it is kept as it is).
                None => Key::Aux(*i),
            },
            Node::Time => Key::Time,
            Node::Neg(x) => Key::Neg(id(x)),
            Node::Bin(op, a, b) => {
                let op = OPS.iter().position(|o| o == op).unwrap_or(0) as u8;
                Key::Bin(op, id(a), id(b))
            }
            Node::PowInt(x, k) => Key::PowInt(id(x), *k),
            Node::Call(f, args) => Key::Call(*f, args.iter().map(id).collect()),
            Node::Input(signal, at) => {
                let at = id(at);
                let s = match self.signals.iter().position(|s| s == signal) {
                    Some(s) => s,
                    None => {
                        self.signals.push(*signal);
                        self.signals.len() - 1
                    }
                };
                Key::Input(s, at)
            }
        };
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        self.keys.push(key.clone());
        self.ids.insert(key, self.keys.len() - 1);
        self.keys.len() - 1
    }
}

/// Rebuilds nodes from ids, binding shared and pinned operations to lets.
struct Rebuild<'a> {
    cse: &'a Cse,
    uses: Vec<u32>,
    pinned: Vec<bool>,
    done: Vec<Option<Node>>,
    n_system_aux: usize,
    lets: Vec<Node>,
}

impl Rebuild<'_> {
    fn node(&mut self, id: usize) -> Node {
        if let Some(n) = &self.done[id] {
            return n.clone();
        }
        let n = match &self.cse.keys[id] {
            Key::Const(bits) => Node::Const(f64::from_bits(*bits)),
            Key::State(i) => Node::State(*i),
            Key::Param(i) => Node::Param(*i),
            Key::Aux(i) => Node::Aux(*i),
            Key::Time => Node::Time,
            Key::Neg(x) => Node::Neg(Box::new(self.node(*x))),
            Key::Bin(op, a, b) => {
                let (a, b) = (self.node(*a), self.node(*b));
                Node::Bin(OPS[*op as usize], Box::new(a), Box::new(b))
            }
            Key::PowInt(x, k) => Node::PowInt(Box::new(self.node(*x)), *k),
            Key::Call(f, args) => Node::Call(*f, args.iter().map(|&a| self.node(a)).collect()),
            Key::Input(s, at) => Node::Input(self.cse.signals[*s], Box::new(self.node(*at))),
        };
        let key = &self.cse.keys[id];
        if key.is_operation() && (self.uses[id] >= 2 || self.pinned[id]) {
            self.lets.push(n);
            let name = Node::Aux(self.n_system_aux + self.lets.len() - 1);
            self.done[id] = Some(name.clone());
            name
        } else {
            n
        }
    }
}

pub(super) fn cse(program: Program) -> Program {
    let n_system_aux = program.n_system_aux;
    let mut cse = Cse::default();
    let mut let_ids = Vec::with_capacity(program.lets.len());
    for l in &program.lets {
        let id = cse.intern(l, n_system_aux, &let_ids);
        let_ids.push(id);
    }
    let outputs: Vec<usize> = program
        .outputs
        .iter()
        .map(|o| cse.intern(o, n_system_aux, &let_ids))
        .collect();

    // How many places reach each subtree, a shared one counted once for each place but
    // its own subtrees only once (they are computed once, with it).
    let n = cse.keys.len();
    let mut uses = vec![0u32; n];
    let mut stack = outputs.clone();
    while let Some(id) = stack.pop() {
        uses[id] += 1;
        if uses[id] == 1 {
            stack.extend(cse.keys[id].children());
        }
    }
    let mut pinned = vec![false; n];
    for &id in &let_ids {
        pinned[id] = true;
    }

    let mut r = Rebuild {
        cse: &cse,
        uses,
        pinned,
        done: vec![None; n],
        n_system_aux,
        lets: Vec::new(),
    };
    // The program's own lets first, in order: each one's earlier lets are then names.
    for &id in &let_ids {
        if r.uses[id] > 0 {
            r.node(id);
        }
    }
    let outputs = outputs.into_iter().map(|id| r.node(id)).collect();
    Program {
        n_system_aux,
        lets: r.lets,
        outputs,
    }
}
