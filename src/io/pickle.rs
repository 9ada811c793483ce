//! Just enough of Python's pickle format to read what `np.save` writes for an object array
//! (protocols 2–5): nested tuples and lists of NumPy arrays, numbers and strings. Nothing
//! is executed: the only callables understood are `numpy...._reconstruct`, `numpy.dtype`
//! and `_codecs.encode` (how protocol 2 stores bytes), each turned into data; any other
//! global is an error.
//!
//! A pickle is user input, so the machine is bounded: values nest at most `MAX_DEPTH`
//! deep (a pickle of 10^6 nested tuples is refused, never a stack overflow), and the copies
//! its memo hands out (`GET` of a memoised value) may add up to at most
//! `COPY_BUDGET_FACTOR` times the pickle's length plus `COPY_BUDGET_BASE` bytes (a "billion
//! laughs" pickle that doubles a value at every step is refused, never an exhausted memory).

use thiserror::Error;

/// The deepest nesting of tuples, lists and arrays accepted. NumPy's object arrays of
/// arrays nest about four levels per object level.
pub const MAX_DEPTH: usize = 100;

/// Copies made by the memo may total this many times the pickle's length...
pub const COPY_BUDGET_FACTOR: usize = 8;
/// ... plus this many bytes.
pub const COPY_BUDGET_BASE: usize = 64 << 20;

#[derive(Debug, Error, PartialEq)]
pub enum PickleError {
    #[error("the pickle ends early")]
    Truncated,
    #[error("pickle opcode 0x{0:02x} at byte {1} is not supported")]
    Opcode(u8, usize),
    #[error("the pickle refers to '{0}', which is not a NumPy array part")]
    Global(String),
    #[error("malformed pickle: {0}")]
    Malformed(String),
    #[error("the pickle nests values more than {MAX_DEPTH} deep")]
    TooDeep,
    #[error(
        "the pickle copies memoised values past {0} bytes (a pickle that expands itself); refused"
    )]
    TooLarge(usize),
}

/// A value of the pickled object graph.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// A NumPy array: shape, dtype string (e.g. "<f8", "|O") and either raw bytes or, for
    /// object arrays, its elements.
    Array {
        shape: Vec<usize>,
        dtype: String,
        data: Box<Value>,
    },
    /// `numpy.dtype(name)`, later given its byte order by its state.
    Dtype(String),
    Global(String),
    /// `_reconstruct(ndarray, ...)` before its state arrives.
    EmptyArray,
}

impl Value {
    /// What kind of value this is, for messages (never the value itself: it may be large).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Array { .. } => "an array",
            Value::Dtype(_) => "a dtype",
            Value::Global(_) => "a global",
            Value::EmptyArray => "an array without its state",
        }
    }

    /// Bytes this value occupies (nodes and payloads), for the copy budget. Recursion is
    /// safe: values never nest deeper than `MAX_DEPTH`.
    fn weight(&self) -> usize {
        let node = std::mem::size_of::<Value>();
        node + match self {
            Value::Str(s) | Value::Dtype(s) | Value::Global(s) => s.len(),
            Value::Bytes(b) => b.len(),
            Value::Tuple(items) | Value::List(items) => items.iter().map(Value::weight).sum(),
            Value::Array { shape, dtype, data } => shape.len() * 8 + dtype.len() + data.weight(),
            _ => 0,
        }
    }
}

/// A value on the machine's stack or in its memo, with how deeply it nests (0 for a
/// scalar), so that depth is known without walking the value.
#[derive(Debug, Clone)]
struct Item {
    value: Value,
    depth: usize,
}

impl Item {
    fn scalar(value: Value) -> Item {
        Item { value, depth: 0 }
    }
}

struct Machine<'a> {
    bytes: &'a [u8],
    at: usize,
    stack: Vec<Item>,
    marks: Vec<usize>,
    memo: std::collections::HashMap<u32, Item>,
    /// Bytes the memo may still copy.
    copy_budget: usize,
    copy_limit: usize,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self.at.checked_add(n).ok_or(PickleError::Truncated)?;
        let s = self.bytes.get(self.at..end).ok_or(PickleError::Truncated)?;
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn le(&mut self, n: usize) -> Result<u64, PickleError> {
        let b = self.take(n)?;
        Ok(b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64))
    }

    /// A length field of `n` bytes; one past the end of the pickle is `Truncated` at once
    /// (nothing is allocated for it).
    fn len(&mut self, n: usize) -> Result<usize, PickleError> {
        let v = self.le(n)?;
        usize::try_from(v).map_err(|_| PickleError::Truncated)
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.bytes[self.at..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(PickleError::Truncated)?;
        let s = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.at += end + 1;
        Ok(s)
    }

    fn push(&mut self, value: Value) {
        self.stack.push(Item::scalar(value));
    }

    fn pop(&mut self) -> Result<Item, PickleError> {
        self.stack
            .pop()
            .ok_or_else(|| PickleError::Malformed("stack underflow".into()))
    }

    fn pop_mark(&mut self) -> Result<Vec<Item>, PickleError> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| PickleError::Malformed("no mark".into()))?;
        if mark > self.stack.len() {
            return Err(PickleError::Malformed("mark above the stack".into()));
        }
        Ok(self.stack.split_off(mark))
    }

    /// A container of `items`, its depth checked.
    fn container(items: Vec<Item>, make: fn(Vec<Value>) -> Value) -> Result<Item, PickleError> {
        let depth = 1 + items.iter().map(|i| i.depth).max().unwrap_or(0);
        if depth > MAX_DEPTH {
            return Err(PickleError::TooDeep);
        }
        Ok(Item {
            value: make(items.into_iter().map(|i| i.value).collect()),
            depth,
        })
    }

    /// Appends `items` to the list on top of the stack.
    fn extend_list(&mut self, items: Vec<Item>) -> Result<(), PickleError> {
        let Some(top) = self.stack.last_mut() else {
            return Err(PickleError::Malformed("APPEND to nothing".into()));
        };
        let Value::List(list) = &mut top.value else {
            return Err(PickleError::Malformed(format!(
                "APPEND to {}, not a list",
                top.value.kind()
            )));
        };
        for item in items {
            if item.depth + 1 > MAX_DEPTH {
                return Err(PickleError::TooDeep);
            }
            top.depth = top.depth.max(item.depth + 1);
            list.push(item.value);
        }
        Ok(())
    }

    /// Spends `bytes` of the copy budget.
    fn charge(&mut self, bytes: usize) -> Result<(), PickleError> {
        self.copy_budget = self
            .copy_budget
            .checked_sub(bytes)
            .ok_or(PickleError::TooLarge(self.copy_limit))?;
        Ok(())
    }

    fn text(&mut self, n: usize) -> Result<Value, PickleError> {
        let b = self.take(n)?;
        Ok(Value::Str(String::from_utf8_lossy(b).into_owned()))
    }

    fn global(module: &str, name: &str) -> Result<Value, PickleError> {
        let full = format!("{module}.{name}");
        let known = matches!(
            full.as_str(),
            "numpy.core.multiarray._reconstruct"
                | "numpy._core.multiarray._reconstruct"
                | "numpy.ndarray"
                | "numpy.dtype"
                | "_codecs.encode"
        );
        if known {
            Ok(Value::Global(full))
        } else {
            // The name is the pickle's; keep the message short whatever it holds.
            let short: String = full.chars().take(80).collect();
            Err(PickleError::Global(short))
        }
    }

    fn reduce(callable: Value, args: Value) -> Result<Value, PickleError> {
        let Value::Global(name) = callable else {
            return Err(PickleError::Malformed("REDUCE of a non-callable".into()));
        };
        let Value::Tuple(args) = args else {
            return Err(PickleError::Malformed(
                "REDUCE without an argument tuple".into(),
            ));
        };
        match name.as_str() {
            // Little-endian unless the state says otherwise (BUILD).
            "numpy.dtype" => match args.first() {
                Some(Value::Str(s)) if s.starts_with('O') => Ok(Value::Dtype("|O".into())),
                Some(Value::Str(s)) => Ok(Value::Dtype(format!("<{s}"))),
                _ => Err(PickleError::Malformed("dtype without a name".into())),
            },
            "_codecs.encode" => match args.first() {
                // Protocol 2 writes bytes as their latin-1 text.
                Some(Value::Str(s)) => Ok(Value::Bytes(s.chars().map(|c| c as u8).collect())),
                _ => Err(PickleError::Malformed("encode without text".into())),
            },
            _ => Ok(Value::EmptyArray),
        }
    }

    /// `obj.__setstate__(state)` for the two kinds of object that have state.
    fn build(obj: Value, state: Value) -> Result<Value, PickleError> {
        match obj {
            // dtype state: (version, byte order, ...); the order completes the name.
            Value::Dtype(name) => {
                let big =
                    matches!(&state, Value::Tuple(t) if t.get(1) == Some(&Value::Str(">".into())));
                let kind = name.trim_start_matches(['<', '>', '|', '=']);
                let order = if big {
                    ">"
                } else {
                    name.get(..1).unwrap_or("|")
                };
                Ok(Value::Dtype(format!("{order}{kind}")))
            }
            // ndarray state: (version, shape, dtype, is_fortran, data).
            Value::EmptyArray => {
                let Value::Tuple(t) = state else {
                    return Err(PickleError::Malformed("array state is not a tuple".into()));
                };
                let mut t = t.into_iter();
                let (
                    Some(_),
                    Some(Value::Tuple(shape)),
                    Some(Value::Dtype(dtype)),
                    Some(Value::Bool(fortran)),
                    Some(data),
                    None,
                ) = (t.next(), t.next(), t.next(), t.next(), t.next(), t.next())
                else {
                    return Err(PickleError::Malformed(
                        "an array's state is not (version, shape, dtype, fortran, data)".into(),
                    ));
                };
                if fortran && shape.len() > 1 {
                    return Err(PickleError::Malformed(
                        "Fortran-ordered arrays inside object arrays are not supported".into(),
                    ));
                }
                let shape = shape
                    .iter()
                    .map(|d| match d {
                        Value::Int(v) if *v >= 0 => Ok(*v as usize),
                        _ => Err(PickleError::Malformed("bad array shape".into())),
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Value::Array {
                    shape,
                    dtype,
                    data: Box::new(data),
                })
            }
            other => Err(PickleError::Malformed(format!("BUILD on {}", other.kind()))),
        }
    }

    fn run(mut self) -> Result<Value, PickleError> {
        loop {
            let at = self.at;
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.take(8)?; // FRAME: a length hint only
                }
                b'.' => return Ok(self.pop()?.value),
                b'(' => self.marks.push(self.stack.len()),
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                b'K' => {
                    let v = self.u8()? as i64;
                    self.push(Value::Int(v));
                }
                b'M' => {
                    let v = self.le(2)? as i64;
                    self.push(Value::Int(v));
                }
                b'J' => {
                    let v = self.le(4)? as u32 as i32 as i64;
                    self.push(Value::Int(v));
                }
                0x8a => {
                    // LONG1: little-endian two's complement of n bytes.
                    let n = self.u8()? as usize;
                    if n > 8 {
                        return Err(PickleError::Malformed("integer too large".into()));
                    }
                    let raw = self.le(n)?;
                    let v = if n == 0 {
                        0
                    } else {
                        let shift = 64 - 8 * n as u32;
                        ((raw << shift) as i64) >> shift
                    };
                    self.push(Value::Int(v));
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes(b.try_into().expect("8 bytes"));
                    self.push(Value::Float(v));
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let v = self.text(n)?;
                    self.push(v);
                }
                b'X' | 0x8d => {
                    let n = self.len(if op == b'X' { 4 } else { 8 })?;
                    let v = self.text(n)?;
                    self.push(v);
                }
                b'U' | b'T' => {
                    // SHORT_BINSTRING, BINSTRING (protocol 2's str): latin-1 text.
                    let n = if op == b'U' {
                        self.u8()? as usize
                    } else {
                        self.len(4)?
                    };
                    let b = self.take(n)?;
                    self.push(Value::Str(b.iter().map(|&c| c as char).collect()));
                }
                b'C' | b'B' | 0x8e => {
                    let n = match op {
                        b'C' => self.u8()? as usize,
                        b'B' => self.len(4)?,
                        _ => self.len(8)?,
                    };
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b));
                }
                b')' => self.push(Value::Tuple(Vec::new())),
                b']' => self.push(Value::List(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    let t = Self::container(items, Value::Tuple)?;
                    self.stack.push(t);
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err(PickleError::Malformed("stack underflow".into()));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    let t = Self::container(items, Value::Tuple)?;
                    self.stack.push(t);
                }
                b'a' => {
                    let v = self.pop()?;
                    self.extend_list(vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.extend_list(items)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = Self::global(&module, &name)?;
                    self.push(g);
                }
                0x93 => {
                    let name = self.pop()?.value;
                    let module = self.pop()?.value;
                    let (Value::Str(m), Value::Str(n)) = (module, name) else {
                        return Err(PickleError::Malformed("STACK_GLOBAL of non-strings".into()));
                    };
                    let g = Self::global(&m, &n)?;
                    self.push(g);
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = Self::reduce(callable.value, args.value)?;
                    self.push(v);
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.pop()?;
                    let depth = 1 + obj.depth.max(state.depth);
                    if depth > MAX_DEPTH {
                        return Err(PickleError::TooDeep);
                    }
                    let dtype_before =
                        matches!(obj.value, Value::Dtype(_)).then(|| obj.value.clone());
                    let item = Item {
                        value: Self::build(obj.value, state.value)?,
                        depth,
                    };
                    // Python changes the object in place, so memoised references to it
                    // (NumPy memoises a dtype before its state) must see the change. The
                    // scan is charged to the budget so that many of them stay bounded.
                    if let Some(before) = dtype_before {
                        self.charge(self.memo.len() * std::mem::size_of::<Item>())?;
                        for m in self.memo.values_mut() {
                            if m.value == before {
                                m.value = item.value.clone();
                            }
                        }
                    }
                    self.stack.push(item);
                }
                b'q' | b'r' | 0x94 => {
                    let key = match op {
                        b'q' => self.u8()? as u32,
                        b'r' => self.le(4)? as u32,
                        _ => self.memo.len() as u32,
                    };
                    let top = self
                        .stack
                        .last()
                        .ok_or_else(|| PickleError::Malformed("memo of nothing".into()))?;
                    let weight = top.value.weight();
                    self.charge(weight)?;
                    let copy = self.stack.last().cloned().expect("checked above");
                    self.memo.insert(key, copy);
                }
                b'h' | b'j' => {
                    let key = if op == b'h' {
                        self.u8()? as u32
                    } else {
                        self.le(4)? as u32
                    };
                    let weight = self
                        .memo
                        .get(&key)
                        .ok_or_else(|| PickleError::Malformed(format!("memo {key} unset")))?
                        .value
                        .weight();
                    self.charge(weight)?;
                    let copy = self.memo[&key].clone();
                    self.stack.push(copy);
                }
                other => return Err(PickleError::Opcode(other, at)),
            }
        }
    }
}

/// The object a pickle describes.
pub fn load(bytes: &[u8]) -> Result<Value, PickleError> {
    let copy_limit = bytes
        .len()
        .saturating_mul(COPY_BUDGET_FACTOR)
        .saturating_add(COPY_BUDGET_BASE);
    Machine {
        bytes,
        at: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: std::collections::HashMap::new(),
        copy_budget: copy_limit,
        copy_limit,
    }
    .run()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `pickle.dumps(np.array([[1.5, -2.0]]), protocol=3)` writes, assembled by hand:
    /// `_reconstruct(ndarray, (0,), b'b')` then the state (1, (1, 2), dtype('f8'), False,
    /// raw bytes).
    #[test]
    fn reads_a_pickled_float_array() {
        let mut p: Vec<u8> = vec![0x80, 3];
        p.extend(b"cnumpy.core.multiarray\n_reconstruct\nq\x00");
        p.extend(b"cnumpy\nndarray\nq\x01K\x00\x85q\x02C\x01bq\x03\x87q\x04Rq\x05");
        p.extend(b"(K\x01K\x01K\x02\x86q\x06cnumpy\ndtype\nq\x07X\x02\x00\x00\x00f8q\x08");
        p.extend(b"\x89\x88\x87q\x09Rq\x0a(K\x03X\x01\x00\x00\x00<q\x0bNNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tq\x0cb");
        p.extend(b"\x89C\x10");
        p.extend(1.5f64.to_le_bytes());
        p.extend((-2.0f64).to_le_bytes());
        p.extend(b"q\x0dtq\x0eb.");
        let v = load(&p).unwrap();
        let Value::Array { shape, dtype, data } = v else {
            panic!("{v:?}")
        };
        assert_eq!((shape, dtype.as_str()), (vec![1, 2], "<f8"));
        let Value::Bytes(b) = *data else { panic!() };
        assert_eq!(&b[..8], 1.5f64.to_le_bytes());
    }

    /// Protocol 2 stores bytes as `_codecs.encode(text, "latin1")`.
    #[test]
    fn reads_protocol_2_bytes() {
        let p =
            b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00a\xc3\xbfX\x06\x00\x00\x00latin1\x86R.";
        assert_eq!(load(p), Ok(Value::Bytes(vec![b'a', 0xff])));
    }

    /// Protocol 4's opcodes: FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, as in
    /// `pickle.dumps(np.dtype("f8"), 4)` up to its state.
    #[test]
    fn reads_protocol_4_globals() {
        let mut p = vec![0x80, 4, 0x95];
        p.extend(30u64.to_le_bytes());
        p.extend(b"\x8c\x05numpy\x94\x8c\x05dtype\x94\x93\x94\x8c\x02f8\x94\x85\x94R\x94h\x05.");
        assert_eq!(load(&p), Ok(Value::Dtype("<f8".into())));
    }

    #[test]
    fn refuses_code_and_garbage() {
        assert_eq!(
            load(b"\x80\x03cos\nsystem\n."),
            Err(PickleError::Global("os.system".into()))
        );
        assert_eq!(load(b"\x80\x03K"), Err(PickleError::Truncated));
        assert!(matches!(
            load(b"\x80\x03\xff"),
            Err(PickleError::Opcode(0xff, 2))
        ));
        assert!(matches!(load(b"t"), Err(PickleError::Malformed(_))));
    }

    /// 10^6 nested tuples (TUPLE1 over and over) and 10^6 nested lists (APPEND of each
    /// list to the one below it): refused at the depth limit, never a stack overflow when
    /// the value is dropped or walked.
    #[test]
    fn deep_nesting_is_refused() {
        let mut p = vec![0x80, 2, b'N'];
        p.extend(std::iter::repeat_n(0x85, 1_000_000));
        p.push(b'.');
        assert_eq!(load(&p), Err(PickleError::TooDeep));
        let mut p = vec![0x80, 2];
        p.extend(std::iter::repeat_n(b']', 1_000_000));
        p.extend(std::iter::repeat_n(b'a', 999_999));
        p.push(b'.');
        assert_eq!(load(&p), Err(PickleError::TooDeep));
        // Exactly MAX_DEPTH levels still load.
        let mut p = vec![0x80, 2, b'N'];
        p.extend(std::iter::repeat_n(0x85, MAX_DEPTH));
        p.push(b'.');
        assert!(load(&p).is_ok());
        // A million flat items are no nesting at all.
        let mut p = vec![0x80, 2, b']', b'('];
        p.extend(std::iter::repeat_n(b'N', 1_000_000));
        p.extend(b"e.");
        let Ok(Value::List(l)) = load(&p) else {
            panic!()
        };
        assert_eq!(l.len(), 1_000_000);
    }

    /// A value memoised and fetched twice into a tuple, memoised again, 60 times over:
    /// 2^60 nodes from 600 bytes if every copy were made. The copy budget refuses it.
    #[test]
    fn self_expanding_pickles_are_refused() {
        let mut p = vec![0x80, 4, b'C', 0xff];
        p.extend([7u8; 255]);
        p.push(0x94);
        for k in 0..60u32 {
            p.extend([b'j']);
            p.extend(k.to_le_bytes());
            p.extend([b'j']);
            p.extend(k.to_le_bytes());
            p.extend([0x86, 0x94]);
        }
        p.push(b'.');
        assert!(matches!(load(&p), Err(PickleError::TooLarge(_))));
    }

    #[test]
    fn missing_memo_entries_and_odd_lengths_are_errors() {
        assert_eq!(
            load(b"\x80\x02h\x05."),
            Err(PickleError::Malformed("memo 5 unset".into()))
        );
        // BINUNICODE8 and BINBYTES8 of 2^63 bytes: truncated, nothing allocated.
        let mut p = vec![0x80, 4, 0x8d];
        p.extend((1u64 << 63).to_le_bytes());
        assert_eq!(load(&p), Err(PickleError::Truncated));
        p[2] = 0x8e;
        assert_eq!(load(&p), Err(PickleError::Truncated));
        // BUILD of an array whose state is not what numpy writes.
        let p = b"\x80\x02cnumpy\nndarray\n)RK\x01b.";
        assert!(matches!(load(p), Err(PickleError::Malformed(_))));
    }
}
