//! `MonteCarlo` as bytes, so that processes (or machines) that each reduced part of an
//! ensemble can send their accumulators to one that merges them: decoding then merging
//! gives the same bits as one reducer fed everything.
//!
//! Layout, little-endian: b"PFMC", version u32 (1), n_save u64, dim u64, levels (u64 count,
//! f64 each), then per save time and component: count u64, non-finite count u64, min f64,
//! max f64, the two exact sums (base i32, limb count u32, i64 limbs, normalised) and the
//! sketch (bucket count u32, u32 keys, u64 counts). Bytes read from elsewhere are checked
//! whole (sizes before allocating, ranges, orders, counts that agree) and refused with a
//! reason, never trusted.

use super::exact::ExactSum;
use super::sketch::Sketch;
use super::{Cell, MonteCarlo, quantile_levels_error};

const MAGIC: &[u8; 4] = b"PFMC";
const VERSION: u32 = 1;
/// The fewest bytes a cell takes: four words, two empty sums (8 bytes each), an empty
/// sketch (4 bytes).
const MIN_CELL_BYTES: usize = 4 * 8 + 2 * 8 + 4;

/// Most components per save time read back.
const MAX_DIM: u64 = 1 << 20;

/// Bytes that are not a `MonteCarlo` this version wrote.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("not Monte Carlo statistics: {0}")]
pub struct DecodeError(String);

fn bad(why: impl Into<String>) -> DecodeError {
    DecodeError(why.into())
}

impl MonteCarlo {
    /// The accumulators as bytes (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(MAGIC);
        out.extend(VERSION.to_le_bytes());
        for v in [self.n_save, self.dim, self.levels.len()] {
            out.extend((v as u64).to_le_bytes());
        }
        for q in &self.levels {
            out.extend(q.to_le_bytes());
        }
        for c in &self.cells {
            out.extend(c.count.to_le_bytes());
            out.extend(c.nonfinite.to_le_bytes());
            out.extend(c.min.to_le_bytes());
            out.extend(c.max.to_le_bytes());
            for sum in [&c.s1, &c.s2] {
                let (base, limbs) = sum.to_parts();
                out.extend(base.to_le_bytes());
                out.extend((limbs.len() as u32).to_le_bytes());
                limbs.iter().for_each(|l| out.extend(l.to_le_bytes()));
            }
            let (keys, counts) = c.sketch.parts();
            out.extend((keys.len() as u32).to_le_bytes());
            keys.iter().for_each(|k| out.extend(k.to_le_bytes()));
            counts.iter().for_each(|n| out.extend(n.to_le_bytes()));
        }
        out
    }

    /// The reducer `to_bytes` wrote; anything else is refused with the reason.
    pub fn from_bytes(bytes: &[u8]) -> Result<MonteCarlo, DecodeError> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(4)? != MAGIC {
            return Err(bad("no PFMC header"));
        }
        let version = r.u32()?;
        if version != VERSION {
            return Err(bad(format!("version {version}, this reads {VERSION}")));
        }
        let (n_save, dim, n_levels) = (r.u64()?, r.u64()?, r.u64()?);
        // The reducer keeps scratch per component: a dimension no system has is refused
        // before it is allocated.
        if dim > MAX_DIM {
            return Err(bad(format!("{dim} components, at most {MAX_DIM}")));
        }
        let levels = (0..r.count(n_levels, 8)?)
            .map(|_| r.f64())
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(why) = quantile_levels_error(&levels) {
            return Err(bad(format!("its quantile levels: {why}")));
        }
        let cells = n_save
            .checked_mul(dim)
            .ok_or_else(|| bad("its shape overflows"))?;
        let cells = r.count(cells, MIN_CELL_BYTES)?;
        let mut mc = MonteCarlo::new(0, dim as usize, &levels);
        mc.n_save = n_save as usize;
        mc.cells.reserve_exact(cells);
        for k in 0..cells {
            let cell = r.cell().map_err(|e| bad(format!("cell {k}: {}", e.0)))?;
            mc.cells.push(cell);
        }
        if r.at != bytes.len() {
            return Err(bad(format!("{} bytes after the end", bytes.len() - r.at)));
        }
        Ok(mc)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| bad(format!("cut short at byte {}", self.bytes.len())))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn word<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut w = [0; N];
        w.copy_from_slice(self.take(N)?);
        Ok(w)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.word().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.word().map(u64::from_le_bytes)
    }

    fn f64(&mut self) -> Result<f64, DecodeError> {
        self.word().map(f64::from_le_bytes)
    }

    /// A count of items of at least `size` bytes each, refused if the rest could not hold
    /// them (so that no allocation is sized by a number nothing backs).
    fn count(&mut self, n: u64, size: usize) -> Result<usize, DecodeError> {
        let rest = (self.bytes.len() - self.at) as u64;
        if n > rest / size as u64 {
            return Err(bad(format!(
                "{n} items do not fit in the {rest} bytes left"
            )));
        }
        Ok(n as usize)
    }

    fn sum(&mut self) -> Result<ExactSum, DecodeError> {
        let base = self.u32()? as i32;
        let len = self.u32()? as u64;
        let limbs = (0..self.count(len, 8)?)
            .map(|_| self.u64().map(|l| l as i64))
            .collect::<Result<Vec<_>, _>>()?;
        ExactSum::from_parts(base, limbs).ok_or_else(|| bad("an exact sum out of range"))
    }

    fn cell(&mut self) -> Result<Cell, DecodeError> {
        let (count, nonfinite, min, max) = (self.u64()?, self.u64()?, self.f64()?, self.f64()?);
        let (s1, s2) = (self.sum()?, self.sum()?);
        let len = self.u32()? as u64;
        let len = self.count(len, 12)?;
        let keys = (0..len)
            .map(|_| self.u32())
            .collect::<Result<Vec<_>, _>>()?;
        let counts = (0..len)
            .map(|_| self.u64())
            .collect::<Result<Vec<_>, _>>()?;
        let sketch = Sketch::from_parts(keys, counts)
            .ok_or_else(|| bad("a quantile sketch out of order"))?;
        let total = sketch
            .parts()
            .1
            .iter()
            .try_fold(0u64, |a, &c| a.checked_add(c));
        if total != Some(count) {
            return Err(bad(format!("{count} values but a sketch of {total:?}")));
        }
        let extremes_ok = if count == 0 {
            min == f64::INFINITY && max == f64::NEG_INFINITY
        } else {
            min.is_finite() && max.is_finite() && min <= max
        };
        if !extremes_ok {
            return Err(bad(format!("min {min} and max {max} for {count} values")));
        }
        Ok(Cell {
            count,
            nonfinite,
            min,
            max,
            s1,
            s2,
            sketch,
        })
    }
}
