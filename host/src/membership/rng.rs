//! The machine's own deterministic random numbers (splitmix64).
//!
//! Owns the only source of randomness membership uses: acknowledgement triggers and
//! retransmission-request delays. It is seeded from the configuration so that a run is a pure
//! function of its inputs; it must never read a global or operating-system RNG.

/// A splitmix64 generator: tiny, fast, and good enough for jitter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose whole future follows from `seed`.
    pub(super) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub(super) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `low..=high` (`low` if the range is empty).
    pub(super) fn between(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        let span = high - low;
        match span.checked_add(1) {
            Some(width) => low + self.next_u64() % width,
            None => self.next_u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_same_sequence() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn between_stays_inside_its_bounds_and_reaches_both_ends() {
        let mut rng = SplitMix64::new(7);
        let values: Vec<u64> = (0..2000).map(|_| rng.between(50, 60)).collect();
        assert!(values.iter().all(|v| (50..=60).contains(v)));
        assert!(values.contains(&50));
        assert!(values.contains(&60));
        assert_eq!(rng.between(9, 3), 9);
    }
}
