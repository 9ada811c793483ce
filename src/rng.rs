//! Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011):
//! a counter-based generator. A random number is a pure function of (key, counter), so
//! values keyed by (seed, trajectory, component) are the same whatever the chunking, the
//! order of work or the device. It needs only 32-bit multiplies, so WGSL kernels can run
//! the same function.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

/// High word of the 32x32-bit product `a * b` from 16-bit halves, four 32-bit multiplies
/// and no 64-bit type (Warren, "Hacker's Delight", 2nd ed., §8-2, `mulhu`). This is the
/// arithmetic the WGSL Philox of f32 kernels runs (WGSL has no `mulhi`, and f32 kernels
/// may not use u64); it is kept here so a test can hold it to the 64-bit product.
pub fn mulhi_halves(a: u32, b: u32) -> u32 {
    let (al, ah) = (a & 0xFFFF, a >> 16);
    let (bl, bh) = (b & 0xFFFF, b >> 16);
    // No partial sum overflows: (2^16 - 1)^2 + 2 (2^16 - 1) = 2^32 - 1.
    let t = ah * bl + ((al * bl) >> 16);
    let w = al * bh + (t & 0xFFFF);
    ah * bh + (t >> 16) + (w >> 16)
}

/// Ten rounds of Philox4x32 on `counter` with `key`.
pub fn philox4x32(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// Uniform f64 in [0, 1) keyed by (seed, index, stream): 53 random bits.
pub fn uniform_f64(seed: u64, index: u64, stream: u32) -> f64 {
    let block = stream / 2;
    let r = philox4x32(
        [index as u32, (index >> 32) as u32, block, 0x7068_6166], // "phaf"
        [seed as u32, (seed >> 32) as u32],
    );
    let (a, b) = if stream.is_multiple_of(2) {
        (r[0], r[1])
    } else {
        (r[2], r[3])
    };
    let bits = ((a as u64) << 21) ^ (b as u64 >> 11);
    (bits & ((1u64 << 53) - 1)) as f64 / (1u64 << 53) as f64
}

/// A standard normal sample from the uniforms of streams `stream` and `stream + 1`
/// (Box–Muller).
pub fn normal_f64(seed: u64, index: u64, stream: u32) -> f64 {
    let u1 = uniform_f64(seed, index, stream).max(f64::MIN_POSITIVE);
    let u2 = uniform_f64(seed, index, stream + 1);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer vectors published with Random123 (kat_vectors, philox4x32 10 rounds).
    #[test]
    fn philox_known_answers() {
        assert_eq!(
            philox4x32([0, 0, 0, 0], [0, 0]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            philox4x32([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox4x32(
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0]
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    /// The 16-bit-halves product (the WGSL kernels' arithmetic) against the 64-bit one, on
    /// the extremes and a million Philox-drawn pairs.
    #[test]
    fn mulhi_from_halves_is_the_64_bit_high_word() {
        let edges = [
            0,
            1,
            0xFFFF,
            0x1_0000,
            0xFFFF_FFFF,
            0x8000_0000,
            0xD251_1F53,
            0xCD9E_8D57,
        ];
        for &a in &edges {
            for &b in &edges {
                assert_eq!(mulhi_halves(a, b), mulhilo(a, b).0, "{a:#x} * {b:#x}");
            }
        }
        for i in 0..250_000u32 {
            let r = philox4x32([i, 0, 0, 0x6d75_6c68], [1, 2]);
            for (a, b) in [
                (r[0], r[1]),
                (r[2], r[3]),
                (0xD251_1F53, r[0]),
                (0xCD9E_8D57, r[2]),
            ] {
                assert_eq!(mulhi_halves(a, b), mulhilo(a, b).0, "{a:#x} * {b:#x}");
            }
        }
    }

    #[test]
    fn uniform_is_in_range_and_roughly_uniform() {
        let n = 100_000;
        let xs: Vec<f64> = (0..n).map(|i| uniform_f64(7, i, 3)).collect();
        assert!(xs.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        // Standard errors: mean 1/sqrt(12 n) ≈ 9e-4, variance ≈ 2.7e-4; allow 5 sigma.
        assert!((mean - 0.5).abs() < 5.0 * 9.2e-4, "mean {mean}");
        assert!((var - 1.0 / 12.0).abs() < 5.0 * 2.7e-4, "var {var}");
        assert_ne!(uniform_f64(7, 0, 0), uniform_f64(8, 0, 0));
        assert_ne!(uniform_f64(7, 0, 0), uniform_f64(7, 0, 1));
    }
}
