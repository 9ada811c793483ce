//! Just enough of Python's pickle format to read what `np.save` writes for an object array
//! (protocols 2–5): nested tuples and lists of NumPy arrays, numbers and strings. Nothing
//! is executed: the only callables understood are `numpy...._reconstruct`, `numpy.dtype`
//! and `_codecs.encode` (how protocol 2 stores bytes), each turned into data; any other
//! global is an error.

use thiserror::Error;

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

struct Machine<'a> {
    bytes: &'a [u8],
    at: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: std::collections::HashMap<u32, Value>,
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

    fn pop(&mut self) -> Result<Value, PickleError> {
        self.stack
            .pop()
            .ok_or_else(|| PickleError::Malformed("stack underflow".into()))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| PickleError::Malformed("no mark".into()))?;
        if mark > self.stack.len() {
            return Err(PickleError::Malformed("mark above the stack".into()));
        }
        Ok(self.stack.split_off(mark))
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
            Err(PickleError::Global(full))
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
                let order = match &state {
                    Value::Tuple(t) => match t.get(1) {
                        Some(Value::Str(o)) => o.clone(),
                        _ => "|".into(),
                    },
                    _ => "|".into(),
                };
                let kind = name.trim_start_matches(['<', '>', '|', '=']);
                let order = if order == ">" { ">" } else { &name[..1] };
                Ok(Value::Dtype(format!("{order}{kind}")))
            }
            // ndarray state: (version, shape, dtype, is_fortran, data).
            Value::EmptyArray => {
                let Value::Tuple(t) = state else {
                    return Err(PickleError::Malformed("array state is not a tuple".into()));
                };
                let [
                    _,
                    Value::Tuple(shape),
                    Value::Dtype(dtype),
                    Value::Bool(fortran),
                    data,
                ] = &t[..]
                else {
                    return Err(PickleError::Malformed(format!(
                        "array state {t:?} is not (version, shape, dtype, fortran, data)"
                    )));
                };
                if *fortran && shape.len() > 1 {
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
                    dtype: dtype.clone(),
                    data: Box::new(data.clone()),
                })
            }
            other => Err(PickleError::Malformed(format!("BUILD on {other:?}"))),
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
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'K' => {
                    let v = self.u8()? as i64;
                    self.stack.push(Value::Int(v));
                }
                b'M' => {
                    let v = self.le(2)? as i64;
                    self.stack.push(Value::Int(v));
                }
                b'J' => {
                    let v = self.le(4)? as u32 as i32 as i64;
                    self.stack.push(Value::Int(v));
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
                    self.stack.push(Value::Int(v));
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes(b.try_into().expect("8 bytes"));
                    self.stack.push(Value::Float(v));
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let v = self.text(n)?;
                    self.stack.push(v);
                }
                b'X' => {
                    let n = self.le(4)? as usize;
                    let v = self.text(n)?;
                    self.stack.push(v);
                }
                0x8d => {
                    let n = self.le(8)? as usize;
                    let v = self.text(n)?;
                    self.stack.push(v);
                }
                b'U' => {
                    // SHORT_BINSTRING (protocol 2's str): latin-1 text.
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    self.stack
                        .push(Value::Str(b.iter().map(|&c| c as char).collect()));
                }
                b'T' => {
                    let n = self.le(4)? as usize;
                    let b = self.take(n)?;
                    self.stack
                        .push(Value::Str(b.iter().map(|&c| c as char).collect()));
                }
                b'C' | b'B' | 0x8e => {
                    let n = match op {
                        b'C' => self.u8()? as usize,
                        b'B' => self.le(4)? as usize,
                        _ => self.le(8)? as usize,
                    };
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b']' => self.stack.push(Value::List(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err(PickleError::Malformed("stack underflow".into()));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items));
                }
                b'a' => {
                    let v = self.pop()?;
                    match self.stack.last_mut() {
                        Some(Value::List(l)) => l.push(v),
                        _ => return Err(PickleError::Malformed("APPEND to a non-list".into())),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.stack.last_mut() {
                        Some(Value::List(l)) => l.extend(items),
                        _ => return Err(PickleError::Malformed("APPENDS to a non-list".into())),
                    }
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = Self::global(&module, &name)?;
                    self.stack.push(g);
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(m), Value::Str(n)) = (module, name) else {
                        return Err(PickleError::Malformed("STACK_GLOBAL of non-strings".into()));
                    };
                    let g = Self::global(&m, &n)?;
                    self.stack.push(g);
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = Self::reduce(callable, args)?;
                    self.stack.push(v);
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.pop()?;
                    let v = Self::build(obj.clone(), state)?;
                    // Python changes the object in place, so memoised references to it
                    // (NumPy memoises a dtype before its state) must see the change.
                    if matches!(obj, Value::Dtype(_)) {
                        for m in self.memo.values_mut() {
                            if *m == obj {
                                *m = v.clone();
                            }
                        }
                    }
                    self.stack.push(v);
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
                        .cloned()
                        .ok_or_else(|| PickleError::Malformed("memo of nothing".into()))?;
                    self.memo.insert(key, top);
                }
                b'h' | b'j' => {
                    let key = if op == b'h' {
                        self.u8()? as u32
                    } else {
                        self.le(4)? as u32
                    };
                    let v = self
                        .memo
                        .get(&key)
                        .cloned()
                        .ok_or_else(|| PickleError::Malformed(format!("memo {key} unset")))?;
                    self.stack.push(v);
                }
                other => return Err(PickleError::Opcode(other, at)),
            }
        }
    }
}

/// The object a pickle describes.
pub fn load(bytes: &[u8]) -> Result<Value, PickleError> {
    Machine {
        bytes,
        at: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: std::collections::HashMap::new(),
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
}
