//! A small deterministic generator (xorshift64), so that every side of a benchmark sees the
//! same keys.

/// Marsaglia's xorshift64: fast, deterministic, and good enough to spread benchmark keys.
///
/// ```
/// use cargo_stream_bench::rng::XorShift;
/// let (mut a, mut b) = (XorShift(7), XorShift(7));
/// assert_eq!(a.next(), b.next());
/// assert_ne!(a.next(), 7);
/// ```
pub struct XorShift(pub u64);

impl XorShift {
    /// The next number of the sequence (never 0 when the seed is not 0).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
