//! Monte Carlo statistics of an ensemble without keeping its paths: per save time and state
//! component the count of finite values, their mean, variance, standard error, minimum,
//! maximum and quantiles, the same bits however the ensemble was cut into chunks, however
//! many devices or processes computed parts of it, and in whatever order the parts are
//! merged (`MonteCarlo::merge`).
//!
//! Order independence comes from integers only: the sums of the values and of their
//! squares are exact (`exact::ExactSum`, integer limbs), the quantiles come from a
//! histogram with integer counts (`sketch::Sketch`), min and max are order-free. Everything
//! reported is then a function of those integers alone. (`EnsembleStats`, Welford's update
//! in trajectory order, gives the same bits across chunkings of one run, but not across
//! merges of parts in any order.)
//!
//! From the exact sums S1 = Σx and S2 = Σx² of n values:
//! mean = S1 / n, variance = (n·S2 − S1²) / (n (n − 1)) with the numerator computed exactly
//! as an integer (so no cancellation, however large |mean| / std: only the final division
//! rounds, in double-double, to within an ulp), stderr = sqrt(variance / n).
//!
//! Memory per save time and component: 144 bytes, the two sums' limbs (about 10 × 8 bytes
//! for data of one sign and scale) and 12 bytes per occupied quantile bucket (see `sketch`).

pub mod exact;
pub mod sketch;
#[cfg(test)]
mod tests;
mod wire;

use super::device::{Precision, SaveBatch};
use super::error::SinkError;
use super::sink::Sink;
use super::solution::{Status, StepCounts};
pub use exact::ExactSum;
pub use sketch::Sketch;
use std::ops::Range;
pub use wire::DecodeError;

/// Quantile levels reported unless others are asked for.
pub const DEFAULT_QUANTILES: [f64; 7] = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];

/// Most quantile levels one run may ask for (each costs a value per save time and state in
/// the output, nothing in the accumulators).
pub const MAX_QUANTILES: usize = 100;

/// Why a list of quantile levels is refused, as a sentence fragment for the caller to
/// prefix with the key or flag; None when it is fine.
pub fn quantile_levels_error(levels: &[f64]) -> Option<String> {
    if levels.is_empty() {
        return Some("needs at least one level".into());
    }
    if levels.len() > MAX_QUANTILES {
        return Some(format!(
            "lists {} levels; at most {MAX_QUANTILES} are allowed",
            levels.len()
        ));
    }
    if let Some(q) = levels.iter().find(|q| !(0.0..=1.0).contains(*q)) {
        return Some(format!("must hold levels between 0 and 1 (got {q})"));
    }
    // Increasing, so that the `quantile` coordinate is an index xarray can select on.
    levels.windows(2).find(|w| w[1] <= w[0]).map(|w| {
        format!(
            "must list levels in increasing order, each once (got {} then {})",
            w[0], w[1]
        )
    })
}

/// The accumulators of one save time and component.
#[derive(Debug, Clone)]
struct Cell {
    count: u64,
    nonfinite: u64,
    min: f64,
    max: f64,
    s1: ExactSum,
    s2: ExactSum,
    sketch: Sketch,
}

impl Default for Cell {
    fn default() -> Cell {
        Cell {
            count: 0,
            nonfinite: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            s1: ExactSum::new(),
            s2: ExactSum::new(),
            sketch: Sketch::new(),
        }
    }
}

/// The smaller of two values by IEEE total order, so that -0 and +0 (equal as numbers)
/// give the same bits in any order.
fn total_min(a: f64, b: f64) -> f64 {
    if b.total_cmp(&a).is_lt() { b } else { a }
}

fn total_max(a: f64, b: f64) -> f64 {
    if b.total_cmp(&a).is_gt() { b } else { a }
}

impl Cell {
    /// Counts a value; its bucket key goes to `keys` (the sketch takes a batch at once).
    #[inline]
    fn push(&mut self, v: f64, keys: &mut Vec<u32>) {
        if !v.is_finite() {
            self.nonfinite += 1;
            return;
        }
        self.count += 1;
        self.min = total_min(self.min, v);
        self.max = total_max(self.max, v);
        self.s1.add(v);
        self.s2.add_square(v);
        keys.push(sketch::bucket(v));
    }

    fn merge(&mut self, other: &Cell) {
        self.count += other.count;
        self.nonfinite += other.nonfinite;
        self.min = total_min(self.min, other.min);
        self.max = total_max(self.max, other.max);
        self.s1.merge(&other.s1);
        self.s2.merge(&other.s2);
        self.sketch.merge(&other.sketch);
    }

    /// (mean, variance, standard error); NaN where there are too few values.
    fn moments(&self) -> (f64, f64, f64) {
        let n = self.count;
        if n == 0 {
            return (f64::NAN, f64::NAN, f64::NAN);
        }
        let nn = exact::dd_from_u128(n as u128);
        let (h, l, e) = self.s1.to_scaled_dd();
        let mean = exact::ldexp(exact::dd_div((h, l), nn), e);
        if n < 2 {
            return (mean, f64::NAN, f64::NAN);
        }
        // n·S2 − S1², exactly: ≥ 0 (Cauchy–Schwarz), zero only for equal values.
        let (_, b1, d1) = self.s1.magnitude();
        let (_, b2, d2) = self.s2.magnitude();
        let mut num = ExactSum::from_digits(false, b2, &exact::mul_small(&d2, n));
        num.merge(&ExactSum::from_digits(true, 2 * b1, &exact::square(&d1)));
        let (h, l, e) = num.to_scaled_dd();
        let den = exact::dd_from_u128(n as u128 * (n as u128 - 1));
        let var = exact::ldexp(exact::dd_div((h, l), den), e);
        (mean, var, (var / n as f64).sqrt())
    }

    /// The q-quantile (see `sketch`): the extreme values exactly at ranks 1 and n, else the
    /// bucket midpoint clamped to [min, max]; NaN with no values.
    fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return f64::NAN;
        }
        match sketch::rank(q, self.count) {
            1 => self.min,
            r if r == self.count => self.max,
            _ => self
                .sketch
                .quantile(q)
                .map_or(f64::NAN, |v| v.clamp(self.min, self.max)),
        }
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Cell>()
            - std::mem::size_of::<ExactSum>() * 2
            - std::mem::size_of::<Sketch>()
            + self.s1.memory_bytes()
            + self.s2.memory_bytes()
            + self.sketch.memory_bytes()
    }
}

/// The statistics, row-major: [n_save, dim] for the per-value arrays, [n_save, n_q, dim]
/// for the quantiles. NaN where a save time and component had no finite value (variance
/// and stderr: fewer than two).
#[derive(Debug, Clone, PartialEq)]
pub struct MonteCarloResult {
    pub n_save: usize,
    pub dim: usize,
    /// The quantile levels, in the order of the quantiles' second axis.
    pub levels: Vec<f64>,
    pub mean: Vec<f64>,
    /// Sample variance (divided by n − 1).
    pub var: Vec<f64>,
    /// Standard error of the mean, sqrt(var / n).
    pub stderr: Vec<f64>,
    pub min: Vec<f64>,
    pub max: Vec<f64>,
    pub quantiles: Vec<f64>,
    /// Finite values counted.
    pub count: Vec<u64>,
    /// Non-finite values (NaN, ±infinity) left out.
    pub nonfinite: Vec<u64>,
}

/// Two `MonteCarlo` reducers of different runs cannot be merged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot merge Monte Carlo statistics: {0}")]
pub struct MergeError(String);

/// The reducer: a `Sink` fed the saves of any run (fixed-step, adaptive, …), or fed values
/// directly (`add_rows`), and merged with others of the same shape (`merge`), in this
/// process or, through `to_bytes` and `from_bytes`, from others.
#[derive(Debug, Clone)]
pub struct MonteCarlo {
    n_save: usize,
    dim: usize,
    levels: Vec<f64>,
    cells: Vec<Cell>,
    /// Per component: bucket keys of the slot being added, and the slot as f64.
    keys: Vec<Vec<u32>>,
    values: Vec<f64>,
}

impl MonteCarlo {
    /// Statistics for `n_save` save times of `dim` components, with quantiles at `levels`
    /// (see `quantile_levels_error`; a level outside [0, 1] reads as the nearest end).
    pub fn new(n_save: usize, dim: usize, levels: &[f64]) -> MonteCarlo {
        MonteCarlo {
            n_save,
            dim,
            levels: levels.to_vec(),
            cells: vec![Cell::default(); n_save * dim],
            keys: vec![Vec::new(); dim],
            values: Vec::new(),
        }
    }

    pub fn levels(&self) -> &[f64] {
        &self.levels
    }

    /// Host bytes a reducer of this shape holds before any value (every sum and sketch then
    /// grows with the data: see the module documentation).
    pub fn base_bytes(n_save: usize, dim: usize) -> u64 {
        n_save as u64 * dim as u64 * std::mem::size_of::<Cell>() as u64
    }

    /// Host bytes a reducer of this shape typically reaches with `n` trajectories: per save
    /// time and component the cell, 8 limbs per sum, and a sketch of min(n, 2048) buckets
    /// (16 binades of each sign at 2^7 buckets each: data spanning 1e-3..30 of both signs).
    /// An estimate for refusing runs that could not fit, not a bound: data spread over
    /// more binades keep more buckets.
    pub fn typical_bytes(n_save: usize, dim: usize, n: usize) -> u64 {
        let per_cell = std::mem::size_of::<Cell>() as u64 + 2 * 8 * 8 + 12 * n.min(2048) as u64;
        n_save as u64 * dim as u64 * per_cell
    }

    /// Host bytes held now.
    pub fn memory_bytes(&self) -> usize {
        self.cells.iter().map(Cell::memory_bytes).sum()
    }

    /// Adds the values of save time `s` for some trajectories: `rows` is [m, dim],
    /// row-major (one trajectory per row). Out-of-range `s` or a ragged `rows` is a caller
    /// bug (debug builds assert; release builds ignore the rest).
    pub fn add_rows(&mut self, s: usize, rows: &[f64]) {
        let dim = self.dim;
        debug_assert!(s < self.n_save && rows.len().is_multiple_of(dim.max(1)));
        let Some(cells) = self.cells.get_mut(s * dim..(s + 1) * dim) else {
            return;
        };
        if dim == 0 {
            return;
        }
        for k in &mut self.keys {
            k.clear();
        }
        for row in rows.chunks_exact(dim) {
            for ((cell, keys), &v) in cells.iter_mut().zip(&mut self.keys).zip(row) {
                cell.push(v, keys);
            }
        }
        for (cell, keys) in cells.iter_mut().zip(&mut self.keys) {
            keys.sort_unstable();
            cell.sketch.add_sorted_keys(keys);
        }
    }

    /// How many values (finite or not) every save time and component has counted, when
    /// they all agree: the number of trajectories fed. `None` when cells disagree, which no
    /// reducer fed whole rows produces.
    pub fn values_per_cell(&self) -> Option<u64> {
        let mut seen = self.cells.iter().map(|c| c.count + c.nonfinite);
        let first = seen.next().unwrap_or(0);
        seen.all(|n| n == first).then_some(first)
    }

    /// Adds everything `other` counted: afterwards `self` is what one reducer fed both sets
    /// of values would be, bit for bit, whatever the order.
    pub fn merge(&mut self, other: &MonteCarlo) -> Result<(), MergeError> {
        if (self.n_save, self.dim) != (other.n_save, other.dim) {
            return Err(MergeError(format!(
                "shapes differ ({} save times × {} components here, {} × {} there)",
                self.n_save, self.dim, other.n_save, other.dim
            )));
        }
        let bits = |l: &[f64]| l.iter().map(|q| q.to_bits()).collect::<Vec<_>>();
        if bits(&self.levels) != bits(&other.levels) {
            return Err(MergeError(format!(
                "quantile levels differ ({:?} here, {:?} there)",
                self.levels, other.levels
            )));
        }
        for (a, b) in self.cells.iter_mut().zip(&other.cells) {
            a.merge(b);
        }
        Ok(())
    }

    /// The statistics of everything counted so far.
    pub fn result(&self) -> MonteCarloResult {
        let (cells, nq) = (self.cells.len(), self.levels.len());
        let mut r = MonteCarloResult {
            n_save: self.n_save,
            dim: self.dim,
            levels: self.levels.clone(),
            mean: Vec::with_capacity(cells),
            var: Vec::with_capacity(cells),
            stderr: Vec::with_capacity(cells),
            min: Vec::with_capacity(cells),
            max: Vec::with_capacity(cells),
            quantiles: vec![f64::NAN; cells * nq],
            count: Vec::with_capacity(cells),
            nonfinite: Vec::with_capacity(cells),
        };
        for (k, cell) in self.cells.iter().enumerate() {
            let (mean, var, stderr) = cell.moments();
            let any = cell.count > 0;
            r.mean.push(mean);
            r.var.push(var);
            r.stderr.push(stderr);
            r.min.push(if any { cell.min } else { f64::NAN });
            r.max.push(if any { cell.max } else { f64::NAN });
            r.count.push(cell.count);
            r.nonfinite.push(cell.nonfinite);
            let (s, c) = (k / self.dim, k % self.dim);
            for (i, &q) in self.levels.iter().enumerate() {
                r.quantiles[(s * nq + i) * self.dim + c] = cell.quantile(q);
            }
        }
        r
    }
}

impl Sink for MonteCarlo {
    fn saves(&mut self, batch: &SaveBatch) -> Result<(), SinkError> {
        for (s_local, s) in batch.slots.clone().enumerate() {
            let raw = batch.slot(s_local);
            let mut values = std::mem::take(&mut self.values);
            values.clear();
            match batch.precision {
                // The readback may be any alignment (a replay reads a Vec<u8>): decode, never
                // cast.
                Precision::F32 => values.extend(
                    raw.chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
                ),
                Precision::F64 => {
                    values.extend(raw.chunks_exact(8).map(|b| {
                        f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
                    }))
                }
            }
            self.add_rows(s, &values);
            self.values = values;
        }
        Ok(())
    }

    fn chunk_done(
        &mut self,
        _: Range<usize>,
        _: &[Status],
        _: Option<&[StepCounts]>,
    ) -> Result<(), SinkError> {
        Ok(())
    }
}
