//! Row-wise element kernels: RMS norm, softmax, ReLU, rotary embedding, residual add.
//!
//! These are the plain, readable versions that the eager path uses. Each one works on dense
//! row-major data and documents its shapes. [`fast`] holds the vectorised versions of the
//! planned executor, built for several instruction sets and chosen at run time.

pub mod fast;

pub use fast::isa_name;

/// T5-style RMS norm of each `d`-wide row of `x` into `out`:
/// `out = weight · x / sqrt(mean(x²) + eps)`, no mean subtraction, no bias.
///
/// The variance is accumulated in f64 and rounded to f32, which is at least as accurate as the
/// reference's f32 reduction.
///
/// # Panics
/// If `x` and `out` differ in length, or the length is not a multiple of `weight.len()`.
pub fn rms_norm(out: &mut [f32], x: &[f32], weight: &[f32], eps: f32) {
    let d = check_rms_norm(out, x, weight);
    for (row_out, row) in out.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
        let mean_square = (row.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / d as f64) as f32;
        let inv = 1.0 / (mean_square + eps).sqrt();
        for ((o, &v), &w) in row_out.iter_mut().zip(row).zip(weight) {
            *o = w * (v * inv);
        }
    }
}

/// The row width of an RMS norm over `x` into `out` with `weight`, after checking the shapes.
///
/// # Panics
/// If `x` and `out` differ in length, or the length is not a multiple of `weight.len()`.
pub(crate) fn check_rms_norm(out: &[f32], x: &[f32], weight: &[f32]) -> usize {
    let d = weight.len();
    assert_eq!(x.len(), out.len(), "rms_norm: input and output lengths differ");
    assert!(
        d > 0 && x.len().is_multiple_of(d),
        "rms_norm: length {} is not a multiple of {d}",
        x.len()
    );
    d
}

/// In-place softmax over one row, with the usual max subtraction.
///
/// Additive masks use `f32::MIN` (the reference's `finfo(float32).min`), never `-inf`, so a row
/// whose entries are all masked becomes uniform instead of NaN, exactly as in the reference.
pub fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// In-place ReLU.
pub fn relu(x: &mut [f32]) {
    for v in x {
        *v = v.max(0.0);
    }
}

/// `acc += x`, element-wise.
///
/// # Panics
/// If the lengths differ.
pub fn add_assign(acc: &mut [f32], x: &[f32]) {
    assert_eq!(acc.len(), x.len(), "add_assign: lengths differ");
    for (a, &b) in acc.iter_mut().zip(x) {
        *a += b;
    }
}

/// Adds `bias` (length `n`) to every `n`-wide row of `x`.
///
/// # Panics
/// If the length of `x` is not a multiple of `bias.len()`.
pub fn add_bias(x: &mut [f32], bias: &[f32]) {
    assert!(
        !bias.is_empty() && x.len().is_multiple_of(bias.len()),
        "add_bias: length mismatch"
    );
    for row in x.chunks_exact_mut(bias.len()) {
        add_assign(row, bias);
    }
}

/// Cosine and sine tables of the rotary embedding, non-interleaved (NeoX/Llama) layout.
///
/// For position `p` and `i < dk/2`: `angle = p · inv_freq[i]` with
/// `inv_freq[i] = 1 / theta^(2i/dk)` (all in f32, as the reference). The tables hold
/// `cos(angle)` and `sin(angle)` for `positions` rows and `dk/2` columns; the full `dk`-wide
/// embedding is `concat(angle, angle)`, so the second half repeats the first.
#[derive(Clone, Debug)]
pub struct RopeTable {
    half: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl RopeTable {
    /// Builds the tables for positions `0..positions` and head size `dk` (even).
    ///
    /// # Panics
    /// If `dk` is odd.
    pub fn new(positions: usize, dk: usize, theta: f32) -> Self {
        assert!(
            dk.is_multiple_of(2),
            "rotary embedding needs an even head size, got {dk}"
        );
        let half = dk / 2;
        // inv_freq = 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all f32.
        let inv_freq: Vec<f32> = (0..half)
            .map(|i| 1.0 / theta.powf((2 * i) as f32 / dk as f32))
            .collect();
        let mut cos = Vec::with_capacity(positions * half);
        let mut sin = Vec::with_capacity(positions * half);
        for p in 0..positions {
            for &f in &inv_freq {
                let angle = p as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        Self { half, cos, sin }
    }

    /// Number of positions covered.
    pub fn positions(&self) -> usize {
        self.cos.len() / self.half.max(1)
    }

    /// `cos(angle)`, `(positions, dk/2)` row-major (what a GPU executor uploads).
    pub fn cos(&self) -> &[f32] {
        &self.cos
    }

    /// `sin(angle)`, `(positions, dk/2)` row-major.
    pub fn sin(&self) -> &[f32] {
        &self.sin
    }

    /// Rotates one head vector `x` (length `dk`) in place for position `pos`:
    /// `x' = x·cos + rotate_half(x)·sin`, `rotate_half(x) = concat(-x[dk/2..], x[..dk/2])`.
    ///
    /// # Panics
    /// If `pos` is out of the table or `x` is not `dk` long.
    pub fn rotate(&self, x: &mut [f32], pos: usize) {
        let h = self.half;
        assert_eq!(
            x.len(),
            2 * h,
            "rope: head vector has length {}, expected {}",
            x.len(),
            2 * h
        );
        let cos = &self.cos[pos * h..(pos + 1) * h];
        let sin = &self.sin[pos * h..(pos + 1) * h];
        for i in 0..h {
            let (a, b) = (x[i], x[i + h]);
            x[i] = a * cos[i] - b * sin[i];
            x[i + h] = b * cos[i] + a * sin[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_by_hand() {
        // row [3, 4]: mean square = 12.5, 1/sqrt(12.5) = 0.28284271; weight [1, 2].
        let mut out = [0.0; 2];
        rms_norm(&mut out, &[3.0, 4.0], &[1.0, 2.0], 0.0);
        assert!((out[0] - 0.848_528_1).abs() < 1e-6);
        assert!((out[1] - 2.262_741_7).abs() < 1e-6);
    }

    #[test]
    fn softmax_of_fully_masked_row_is_uniform_not_nan() {
        let mut row = [1.0 + f32::MIN, 2.0 + f32::MIN, f32::MIN];
        softmax(&mut row);
        for v in row {
            assert!((v - 1.0 / 3.0).abs() < 1e-7);
        }
    }

    #[test]
    fn softmax_single_unmasked_key_is_exactly_one() {
        let mut row = [0.3, 7.0 + f32::MIN];
        softmax(&mut row);
        assert_eq!(row, [1.0, 0.0]);
    }

    #[test]
    fn rope_rotates_halves_not_pairs() {
        // dk = 4, theta = 1 -> inv_freq = [1, 1]; position 1 -> angle 1 for both.
        let table = RopeTable::new(2, 4, 1.0);
        let mut x = [1.0, 0.0, 0.0, 0.0];
        table.rotate(&mut x, 1);
        // x' = x·cos + rotate_half(x)·sin, rotate_half([1,0,0,0]) = [0,0,1,0]
        let (c, s) = (1.0f32.cos(), 1.0f32.sin());
        assert_eq!(x, [c, 0.0, s, 0.0]);
        let mut y = [1.0, 2.0, 3.0, 4.0];
        table.rotate(&mut y, 0);
        assert_eq!(y, [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn rope_inverse_frequencies_follow_theta() {
        // dk = 4, theta = 10000: inv_freq = [1, 0.01]; position 1.
        let table = RopeTable::new(2, 4, 10000.0);
        let mut x = [0.0, 0.0, 1.0, 1.0];
        table.rotate(&mut x, 1);
        assert!((x[0] + 1.0f32.sin()).abs() < 1e-6);
        assert!((x[1] + 0.01f32.sin()).abs() < 1e-6);
        assert_eq!(table.positions(), 2);
    }
}
