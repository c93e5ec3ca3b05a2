//! A tiny seeded PRNG for reproducible inputs: xorshift64 (Marsaglia 2003).

/// xorshift64: fast, reproducible, no statistical claims beyond "varied".
pub struct XorShift(u64);

impl XorShift {
    /// A generator from a seed (0 is replaced, since it is a fixed point).
    pub fn new(seed: u64) -> Self {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next value, uniform in [-1, 1) with 24 random bits (exact in f32).
    pub fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let bits = (self.0 >> 40) as u32;
        bits as f32 / (1u32 << 23) as f32 - 1.0
    }

    /// Fills `values` with [`XorShift::next_f32`].
    pub fn fill(&mut self, values: &mut [f32]) {
        values.iter_mut().for_each(|x| *x = self.next_f32());
    }
}
