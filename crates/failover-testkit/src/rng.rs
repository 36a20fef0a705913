/// A tiny deterministic generator (xorshift64*): no allocation, no dependency, the same stream on
/// every platform.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// The next value of the stream.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The next value, reduced below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
