//! A mergeable quantile sketch with integer counts: a histogram over logarithmic buckets
//! read straight from the bits of an f64.
//!
//! Bucket of a finite x with |x| ≥ `ZERO_BELOW`: its sign, its 11 exponent bits and the top
//! `SUB_BITS` = 7 bits of its mantissa, i.e. the interval [L, L + 2^(e-7)) with
//! L = 1.b1..b7 · 2^e, whose width is at most L · 2^-7. Values with |x| < `ZERO_BELOW`
//! (zero, subnormals and the tiniest normals) share one zero bucket. Keys are ordered like
//! the values, so the counts in key order are the histogram in value order.
//!
//! Merging adds counts bucket by bucket: integer additions, so the sketch of a set of
//! values is the same whatever the order and grouping in which they arrived.
//!
//! Quantile q of n values: the bucket holding the value of rank r = ceil(q · n) (clamped to
//! 1..n; the lower empirical quantile, type 1 of Hyndman & Fan 1996), reported as the
//! bucket's midpoint L + 2^(e-8), clamped to the values' [min, max] (which the caller
//! knows). Accuracy: the order statistic x_(r) itself lies in that bucket, so the report
//! is within |x_(r)| · 2^-8 (0.39 %) of it, and within `ZERO_BELOW` when x_(r) is in the
//! zero bucket. Clamping to [min, max] only moves the report towards x_(r).
//!
//! Memory: 12 bytes per occupied bucket (a u32 key and a u64 count) plus 48 bytes; at most
//! 2^7 buckets per binade and sign the data touch, and never more than the number of
//! distinct values (e.g. values spread over 1e-3..1e3 of both signs: at most 5,100 buckets,
//! 61 KB).

/// Mantissa bits in a bucket's key: relative bucket width 2^-SUB_BITS.
pub const SUB_BITS: u32 = 7;
/// Values smaller than this in magnitude fall into the zero bucket.
pub const ZERO_BELOW: f64 = 1e-300;
/// Bits of |x| that make its key: exponent and top mantissa bits.
const MAG_BITS: u32 = 11 + SUB_BITS;
const MANT_SHIFT: u32 = 52 - SUB_BITS;
/// The zero bucket's key; negative values below it, positive above.
const ZERO_KEY: u32 = 1 << MAG_BITS;

/// The bucket of a finite x.
#[inline]
pub fn bucket(x: f64) -> u32 {
    if x.abs() < ZERO_BELOW {
        return ZERO_KEY;
    }
    let mag = ((x.abs().to_bits() >> MANT_SHIFT) as u32) & ((1 << MAG_BITS) - 1);
    if x < 0.0 {
        ZERO_KEY - 1 - mag
    } else {
        ZERO_KEY + 1 + mag
    }
}

/// The midpoint of a bucket (0 for the zero bucket).
pub fn midpoint(key: u32) -> f64 {
    let mid = |mag: u32| f64::from_bits(((mag as u64) << MANT_SHIFT) | (1 << (MANT_SHIFT - 1)));
    match key.cmp(&ZERO_KEY) {
        std::cmp::Ordering::Equal => 0.0,
        std::cmp::Ordering::Less => -mid(ZERO_KEY - 1 - key),
        std::cmp::Ordering::Greater => mid(key - ZERO_KEY - 1),
    }
}

/// The rank (1-based) of the q-quantile among n values: ceil(q · n), within 1..n.
pub fn rank(q: f64, n: u64) -> u64 {
    ((q * n as f64).ceil() as u64).clamp(1, n)
}

/// Counts per occupied bucket, in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sketch {
    keys: Vec<u32>,
    counts: Vec<u64>,
}

impl Sketch {
    pub fn new() -> Sketch {
        Sketch::default()
    }

    /// Values counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Occupied buckets.
    pub fn buckets(&self) -> usize {
        self.keys.len()
    }

    /// Counts the keys of a batch of values, given sorted (`bucket` of each value, then
    /// sorted: sorting a batch once costs less than a search per value).
    pub fn add_sorted_keys(&mut self, sorted: &[u32]) {
        debug_assert!(sorted.is_sorted());
        let mut runs = Vec::new();
        let mut i = 0;
        while i < sorted.len() {
            let k = sorted[i];
            let j = i + sorted[i..].partition_point(|&x| x == k);
            runs.push((k, (j - i) as u64));
            i = j;
        }
        self.add_runs(&runs);
    }

    /// Adds another sketch's counts.
    pub fn merge(&mut self, other: &Sketch) {
        let runs: Vec<(u32, u64)> = other
            .keys
            .iter()
            .copied()
            .zip(other.counts.iter().copied())
            .collect();
        self.add_runs(&runs);
    }

    /// Adds (key, count) runs in increasing key order: in place when every key is already
    /// there (the usual case once a run is under way), else by one merge into new vectors.
    fn add_runs(&mut self, runs: &[(u32, u64)]) {
        let mut at = 0;
        let mut all_present = true;
        for &(k, _) in runs {
            at += self.keys[at..].partition_point(|&x| x < k);
            if self.keys.get(at) != Some(&k) {
                all_present = false;
                break;
            }
        }
        if all_present {
            let mut at = 0;
            for &(k, c) in runs {
                at += self.keys[at..].partition_point(|&x| x < k);
                self.counts[at] += c;
            }
            return;
        }
        let cap = self.keys.len() + runs.len();
        let (mut keys, mut counts) = (Vec::with_capacity(cap), Vec::with_capacity(cap));
        let (mut i, mut j) = (0, 0);
        while i < self.keys.len() || j < runs.len() {
            let mine = self.keys.get(i).copied().unwrap_or(u32::MAX);
            let theirs = runs.get(j).map_or(u32::MAX, |r| r.0);
            if i < self.keys.len() && (j == runs.len() || mine < theirs) {
                keys.push(mine);
                counts.push(self.counts[i]);
                i += 1;
            } else if i < self.keys.len() && mine == theirs {
                keys.push(mine);
                counts.push(self.counts[i] + runs[j].1);
                i += 1;
                j += 1;
            } else {
                keys.push(theirs);
                counts.push(runs[j].1);
                j += 1;
            }
        }
        keys.shrink_to_fit();
        counts.shrink_to_fit();
        self.keys = keys;
        self.counts = counts;
    }

    /// The midpoint of the bucket holding the value of rank ceil(q · n) among the n counted
    /// (see the module documentation); None when nothing was counted.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.total();
        if n == 0 {
            return None;
        }
        let rank = rank(q, n);
        let mut seen = 0;
        for (&k, &c) in self.keys.iter().zip(&self.counts) {
            seen += c;
            if seen >= rank {
                return Some(midpoint(k));
            }
        }
        // Not reached: the ranks run up to the total count.
        self.keys.last().map(|&k| midpoint(k))
    }

    /// (keys, counts), for storage (`wire`).
    pub(crate) fn parts(&self) -> (&[u32], &[u64]) {
        (&self.keys, &self.counts)
    }

    /// The sketch of `parts`, if the keys are buckets in increasing order and every count
    /// is positive; None otherwise.
    pub(crate) fn from_parts(keys: Vec<u32>, counts: Vec<u64>) -> Option<Sketch> {
        let ok = keys.len() == counts.len()
            && keys.iter().all(|&k| k <= 2 * ZERO_KEY)
            && keys.windows(2).all(|w| w[0] < w[1])
            && counts.iter().all(|&c| c > 0);
        ok.then_some(Sketch { keys, counts })
    }

    /// Bytes held.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Sketch>() + 4 * self.keys.capacity() + 8 * self.counts.capacity()
    }
}
