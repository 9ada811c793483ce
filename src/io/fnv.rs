//! 64-bit FNV-1a: stable across runs, platforms and builds (unlike std's hasher), which is
//! all a fingerprint of settings or a check that a file is the one recorded needs. Not a
//! defence against tampering, only against mix-ups and damage.

/// The hash state; feed it bytes (or `write!` text into it) and read `value`.
#[derive(Debug, Clone)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv::new()
    }
}

impl Fnv {
    pub fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub fn value(&self) -> u64 {
        self.0
    }

    /// The hash of `bytes` as 16 hex digits.
    pub fn hex_of(bytes: &[u8]) -> String {
        let mut h = Fnv::new();
        h.bytes(bytes);
        format!("{:016x}", h.value())
    }
}

impl std::fmt::Write for Fnv {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_fnv1a_vectors() {
        // From the FNV reference test suite (Fowler, Noll, Vo).
        assert_eq!(Fnv::hex_of(b""), "cbf29ce484222325");
        assert_eq!(Fnv::hex_of(b"a"), "af63dc4c8601ec8c");
        assert_eq!(Fnv::hex_of(b"foobar"), "85944171f73967e8");
    }
}
