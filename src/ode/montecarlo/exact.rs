//! Exact sums of f64 values and of their squares, independent of the order of addition.
//!
//! `ExactSum` is a fixed-point superaccumulator over the whole binary range a sum of finite
//! f64 values or of their squares can reach (2^-2148 up to far above 2^2048): a signed
//! integer in base 2^32 whose digits sit in `i64` limbs, kept only over the exponents
//! actually seen. Every finite f64 is an integer mantissa (< 2^53) times a power of two, and
//! its square an integer (< 2^106) times a power of two, so adding either is adding a few
//! shifted 32-bit digits to a few limbs: integer additions, exact and associative. The sum
//! is therefore the same integer in whatever order and grouping the values arrive, and
//! everything derived from it (the conversion to f64, means, variances) the same bits.
//!
//! Carries are propagated lazily: a limb receives less than 2^32 per addition, so it can
//! take `MAX_PENDING` additions (2^29, under 2^62 in all) before a normalisation, which
//! brings every limb but the top one back into [0, 2^32).
//!
//! Squares are added from the integer mantissa (m² exactly, as a u128) rather than through
//! the floating-point two-product `x*x = hi + lo` (fma): the same exact value, but with no
//! overflow of `hi` above |x| ≈ 1.3e154 and no underflow of `lo` below |x| ≈ 1e-146.
//!
//! Memory: 32 bytes of header plus 8 bytes per limb; values within a factor 2^k of one
//! another need about (53 + k + log2(count)) / 32 + 2 limbs, their squares about twice as
//! many bits: typically 4 and 6 limbs.

/// Bits per digit.
const DIGIT_BITS: i64 = 32;
const MASK: i64 = (1 << DIGIT_BITS) - 1;
/// Additions between normalisations: a limb holds at most (pending + 1) · 2^32 in absolute
/// value, which stays below 2^62 (so that merging two accumulators cannot overflow).
const MAX_PENDING: u32 = 1 << 29;

/// An exact sum (see the module documentation). `Default` is zero.
#[derive(Debug, Clone, Default)]
pub struct ExactSum {
    /// Limb `i` carries weight 2^(32 · (base + i)).
    base: i32,
    limbs: Vec<i64>,
    /// Additions since the last normalisation.
    pending: u32,
}

/// A finite f64 as (negative, integer mantissa, exponent): x = ±m · 2^e; None for zero.
fn decompose(x: f64) -> Option<(bool, u64, i32)> {
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1 << 52) - 1);
    let (m, e) = if exp == 0 {
        (frac, -1074)
    } else {
        (frac | (1 << 52), exp - 1075)
    };
    (m != 0).then_some((bits >> 63 == 1, m, e))
}

impl ExactSum {
    pub fn new() -> ExactSum {
        ExactSum::default()
    }

    /// Adds a finite `x` exactly. Non-finite values are the caller's to filter: they have
    /// no exact value (debug builds assert).
    #[inline]
    pub fn add(&mut self, x: f64) {
        debug_assert!(x.is_finite(), "ExactSum::add({x})");
        if let Some((neg, m, e)) = decompose(x) {
            self.add_int::<3>(m as u128, e, neg);
        }
    }

    /// Adds x² exactly (from the integer mantissa: see the module documentation).
    #[inline]
    pub fn add_square(&mut self, x: f64) {
        debug_assert!(x.is_finite(), "ExactSum::add_square({x})");
        if let Some((_, m, e)) = decompose(x) {
            let m = m as u128;
            self.add_int::<5>(m * m, 2 * e, false);
        }
    }

    /// Adds ±m · 2^e for m < 2^(32 · D - 31): D digits cover m shifted by up to 31 bits.
    #[inline]
    fn add_int<const D: usize>(&mut self, m: u128, e: i32, neg: bool) {
        let k = e.div_euclid(DIGIT_BITS as i32);
        let r = e.rem_euclid(DIGIT_BITS as i32) as u32;
        let low = m << r;
        let high = if r == 0 { 0 } else { (m >> (128 - r)) as i64 };
        let at = self.reserve(k, D);
        let limbs = &mut self.limbs[at..at + D];
        for (i, limb) in limbs.iter_mut().enumerate() {
            let digit = if i < 4 {
                ((low >> (32 * i)) as i64) & MASK
            } else {
                high
            };
            if neg {
                *limb -= digit;
            } else {
                *limb += digit;
            }
        }
        self.pending += 1;
        if self.pending >= MAX_PENDING {
            self.normalize();
        }
    }

    /// Makes limbs `k .. k + len` (run-wide limb numbers) exist and returns the index of
    /// limb `k` in `limbs`. Grows by a few limbs at a time so that slowly widening data do
    /// not shift the vector at every value.
    fn reserve(&mut self, k: i32, len: usize) -> usize {
        const SLACK: i32 = 1;
        if self.limbs.is_empty() {
            self.base = k;
            self.limbs = vec![0; len];
            return 0;
        }
        if k < self.base {
            let grow = (self.base - k + SLACK) as usize;
            self.limbs.splice(0..0, std::iter::repeat_n(0, grow));
            self.base -= grow as i32;
        }
        let end = k as i64 + len as i64 - self.base as i64;
        if end > self.limbs.len() as i64 {
            self.limbs.resize(end as usize + SLACK as usize, 0);
        }
        (k - self.base) as usize
    }

    /// Adds `other` into `self`: the sum of both sets of values, exactly.
    pub fn merge(&mut self, other: &ExactSum) {
        if other.limbs.is_empty() {
            return;
        }
        if self.pending + other.pending + 1 >= MAX_PENDING {
            self.normalize();
        }
        let at = self.reserve(other.base, other.limbs.len());
        for (a, b) in self.limbs[at..].iter_mut().zip(&other.limbs) {
            *a += b;
        }
        self.pending += other.pending + 1;
        if self.pending >= MAX_PENDING {
            self.normalize();
        }
    }

    /// Propagates carries: every limb but the top one into [0, 2^32), the top one 0..2^32
    /// or -1 (the sign), zero limbs at either end dropped. The value does not change.
    fn normalize(&mut self) {
        let mut carry = 0i64;
        for limb in &mut self.limbs {
            let v = *limb + carry;
            *limb = v & MASK;
            carry = v >> DIGIT_BITS;
        }
        while carry != 0 && carry != -1 {
            self.limbs.push(carry & MASK);
            carry >>= DIGIT_BITS;
        }
        if carry == -1 {
            self.limbs.push(-1);
        }
        self.pending = 0;
        // A -1 on top of a full digit is the same number one limb shorter.
        while self.limbs.len() >= 2
            && self.limbs[self.limbs.len() - 1] == -1
            && self.limbs[self.limbs.len() - 2] == MASK
        {
            self.limbs.pop();
            *self.limbs.last_mut().expect("two limbs") = -1;
        }
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
        let zeros = self.limbs.iter().take_while(|&&l| l == 0).count();
        if zeros > 0 {
            self.limbs.drain(..zeros);
            self.base += zeros as i32;
        }
        if self.limbs.is_empty() {
            self.base = 0;
        }
    }

    /// The exact value as (negative, base, magnitude digits, least significant first, top
    /// digit non-zero); no digits for zero.
    pub(crate) fn magnitude(&self) -> (bool, i32, Vec<u32>) {
        let mut n = self.clone();
        n.normalize();
        let neg = n.limbs.last().is_some_and(|&l| l < 0);
        if neg {
            n.limbs.iter_mut().for_each(|l| *l = -*l);
            n.normalize();
        }
        let digits = n.limbs.iter().map(|&l| l as u32).collect();
        (neg, n.base, digits)
    }

    /// ±digits · 2^(32 · base).
    pub(crate) fn from_digits(neg: bool, base: i32, digits: &[u32]) -> ExactSum {
        let sign = if neg { -1 } else { 1 };
        ExactSum {
            base,
            limbs: digits.iter().map(|&d| sign * d as i64).collect(),
            pending: 0,
        }
    }

    /// Whether the sum is exactly zero.
    pub fn is_zero(&self) -> bool {
        self.magnitude().2.is_empty()
    }

    /// The sum correctly rounded to f64 (to nearest, ties to even); ±infinity beyond the
    /// largest finite f64.
    pub fn to_f64(&self) -> f64 {
        let (neg, base, digits) = self.magnitude();
        let Some(top) = digits.len().checked_sub(1) else {
            return 0.0;
        };
        // The top four digits (at least 97 significant bits: more than the 53 kept and the
        // rounding bit) and a sticky bit for the rest, which only breaks ties.
        let mut m = 0u128;
        for i in 0..4 {
            m <<= 32;
            if let Some(d) = top.checked_sub(i).map(|j| digits[j]) {
                m |= d as u128;
            }
        }
        let lowest_kept = top.saturating_sub(3);
        if digits[..lowest_kept].iter().any(|&d| d != 0) {
            m |= 1;
        }
        let e = DIGIT_BITS * (base as i64 + top as i64 - 3);
        let x = round_to_f64(m, e);
        if neg { -x } else { x }
    }

    /// The sum as (hi, lo, e) with sum ≈ (hi + lo) · 2^e: hi correctly rounded, lo the
    /// correctly rounded rest, both of order 2^0..2^64 whatever the sum's size, so that
    /// means and variances of values near the ends of the f64 range neither overflow nor
    /// underflow on the way. (0, 0, 0) for zero.
    pub fn to_scaled_dd(&self) -> (f64, f64, i64) {
        let (neg, base, digits) = self.magnitude();
        if digits.is_empty() {
            return (0.0, 0.0, 0);
        }
        let shift = base + digits.len() as i32 - 2;
        let mut scaled = ExactSum::from_digits(neg, base - shift, &digits);
        let hi = scaled.to_f64();
        scaled.add(-hi);
        (hi, scaled.to_f64(), DIGIT_BITS * shift as i64)
    }

    /// The normalised form (base, limbs): every limb in [0, 2^32) but the top one, which
    /// may be -1 (the sign). For storage (`wire`).
    pub(crate) fn to_parts(&self) -> (i32, Vec<i64>) {
        let mut n = self.clone();
        n.normalize();
        (n.base, n.limbs)
    }

    /// The accumulator of `to_parts`, if the parts are in its range: limbs within
    /// |limb| ≤ 2^32 (so that the carry bound holds with nothing pending) and limb numbers
    /// within what sums of squares can reach. None otherwise.
    pub(crate) fn from_parts(base: i32, limbs: Vec<i64>) -> Option<ExactSum> {
        const REACH: i64 = 80; // squares: 2^-2148 .. 2^2048 and 64 bits of count, in limbs
        let ok = limbs.iter().all(|l| l.abs() <= 1 << DIGIT_BITS)
            && base as i64 >= -REACH
            && base as i64 + limbs.len() as i64 <= REACH;
        ok.then_some(ExactSum {
            base,
            limbs,
            pending: 0,
        })
    }

    /// Heap and inline bytes this accumulator holds.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<ExactSum>() + 8 * self.limbs.capacity()
    }
}

/// digits · n (digits least significant first).
pub(crate) fn mul_small(digits: &[u32], n: u64) -> Vec<u32> {
    let mut out = Vec::with_capacity(digits.len() + 2);
    let mut carry = 0u128;
    for &d in digits {
        let v = d as u128 * n as u128 + carry;
        out.push(v as u32);
        carry = v >> 32;
    }
    while carry != 0 {
        out.push(carry as u32);
        carry >>= 32;
    }
    out
}

/// digits² (schoolbook: the digit counts here are a handful, 70 at the very most).
pub(crate) fn square(digits: &[u32]) -> Vec<u32> {
    let len = digits.len();
    // Column sums: at most `len` products below 2^64 each, plus carries: u128 is ample.
    let mut cols = vec![0u128; 2 * len + 1];
    for (i, &a) in digits.iter().enumerate() {
        for (j, &b) in digits.iter().enumerate() {
            cols[i + j] += a as u128 * b as u128;
        }
    }
    let mut out = Vec::with_capacity(cols.len() + 4);
    let mut carry = 0u128;
    for c in cols {
        let v = c + carry;
        out.push(v as u32);
        carry = v >> 32;
    }
    while carry != 0 {
        out.push(carry as u32);
        carry >>= 32;
    }
    out
}

/// m · 2^e correctly rounded to f64 (to nearest, ties to even), subnormals included.
pub(crate) fn round_to_f64(m: u128, e: i64) -> f64 {
    if m == 0 {
        return 0.0;
    }
    let bits = 128 - m.leading_zeros() as i64;
    let e_msb = e + bits - 1;
    if e_msb > 1023 {
        return f64::INFINITY;
    }
    // Below half the smallest subnormal (a tie at exactly half rounds to even: zero).
    if e_msb < -1075 {
        return 0.0;
    }
    let lsb = (e_msb - 52).max(-1074);
    let shift = lsb - e;
    let q = if shift <= 0 {
        (m << (-shift) as u32) as u64
    } else if shift >= 128 {
        // Only m ≥ 2^127 reaches here with e_msb ≥ -1075: at or above half an ulp.
        let half = 1u128 << 127;
        u64::from(m > half)
    } else {
        let q = (m >> shift) as u64;
        let rem = m & ((1u128 << shift) - 1);
        let half = 1u128 << (shift - 1);
        q + u64::from(rem > half || (rem == half && q & 1 == 1))
    };
    compose(q, lsb)
}

/// q · 2^lsb for q ≤ 2^53, exactly, where lsb ≥ -1074 and lsb = -1074 if the result is
/// subnormal (as `round_to_f64` chooses it).
fn compose(q: u64, lsb: i64) -> f64 {
    if q == 0 {
        return 0.0;
    }
    let bits = 64 - q.leading_zeros() as i64;
    let e_msb = lsb + bits - 1;
    if e_msb > 1023 {
        return f64::INFINITY;
    }
    if e_msb < -1022 {
        debug_assert_eq!(lsb, -1074);
        return f64::from_bits(q);
    }
    let mant = if bits > 53 {
        q >> (bits - 53)
    } else {
        q << (53 - bits)
    };
    f64::from_bits((((e_msb + 1023) as u64) << 52) | (mant & ((1 << 52) - 1)))
}

/// x · 2^e, rounded once where the result is subnormal, ±infinity above the range.
pub(crate) fn ldexp(x: f64, e: i64) -> f64 {
    match decompose(x) {
        None => x,
        Some(_) if !x.is_finite() => x,
        Some((neg, m, ex)) => {
            let y = round_to_f64(m as u128, ex as i64 + e);
            if neg { -y } else { y }
        }
    }
}

/// a + b = s + err exactly (Knuth's two-sum).
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

/// a · b = p + err exactly (with fma; no overflow or underflow in the cases used here).
fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    (p, a.mul_add(b, -p))
}

/// (ah + al) / (bh + bl) in double-double arithmetic, rounded to f64: about 2^-100
/// relative before the last rounding, so within one ulp of the exact quotient.
pub(crate) fn dd_div(a: (f64, f64), b: (f64, f64)) -> f64 {
    let q1 = a.0 / b.0;
    // r = a - q1 · b, with the product q1 · bh exact.
    let (p, pe) = two_prod(q1, b.0);
    let (s, se) = two_sum(a.0, -p);
    let r = s + (se - pe + a.1 - q1 * b.1);
    let q2 = r / b.0;
    q1 + q2
}

/// n as a double-double (exact for n < 2^106).
pub(crate) fn dd_from_u128(n: u128) -> (f64, f64) {
    let hi = n as f64;
    let rest = n as i128 - hi as i128;
    (hi, rest as f64)
}
