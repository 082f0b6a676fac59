//! The element-wise kernels of the planned executor, vectorised: the same work as the plain
//! functions of [`super`], written once as branch-free Rust that the compiler vectorises, and
//! compiled for AVX-512F, AVX2+FMA and baseline x86-64; one build is chosen once at run time
//! ([`crate::IsaLevel::active`], so `CHRONOS2_ISA` caps it too).
//!
//! Every build runs the same sequence of IEEE operations (no `mul_add`, and Rust never fuses
//! `a * b + c`), so all builds give bit-identical results. Against the plain versions:
//!
//! * [`softmax`] computes `exp` by range reduction (Cephes' `expf`: within 2 ulp of the exact
//!   value, exactly 1 at 0, 0 for masked scores) and sums in 16 partial sums: within 2e-6 of
//!   the plain version (and 1e-6 of the exact softmax), relative;
//! * [`rms_norm`] accumulates in f64 like [`super::rms_norm`], in 16 partial sums;
//! * [`relu`], [`axpy`] and [`rope`] do the very same arithmetic, so they are bit-identical;
//! * [`dot`] sums in 16 partial sums.

use super::RopeTable;

/// Independent partial sums (and lanes per step): 2 AVX2 or 1 AVX-512 register of f32.
const LANES: usize = 16;

/// The plain name of the instruction set the element-wise kernels run with: `"avx512f"`,
/// `"avx2+fma"` or `"scalar"`.
pub fn isa_name() -> &'static str {
    active().name
}

/// T5-style RMS norm of each `d`-wide row of `x` into `out`, `d = weight.len()`: what
/// [`super::rms_norm`] computes, vectorised.
///
/// # Panics
/// If `x` and `out` differ in length, or the length is not a multiple of `weight.len()`.
pub fn rms_norm(out: &mut [f32], x: &[f32], weight: &[f32], eps: f32) {
    super::check_rms_norm(out, x, weight);
    (active().rms_norm)(out, x, weight, eps);
}

/// In-place softmax over one row with the semantics of [`super::softmax`] (`f32::MIN` masks, a
/// fully masked row uniform, a single unmasked key exactly 1), vectorised.
pub fn softmax(row: &mut [f32]) {
    (active().softmax)(row);
}

/// In-place ReLU (bit-identical to [`super::relu`]).
pub fn relu(x: &mut [f32]) {
    (active().relu)(x);
}

/// The dot product of `a` and `b` (16 partial sums, then a pairwise reduction).
///
/// # Panics
/// If the lengths differ.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: lengths differ");
    (active().dot)(a, b)
}

/// `acc += w · x`, element-wise.
///
/// # Panics
/// If the lengths differ.
pub fn axpy(acc: &mut [f32], w: f32, x: &[f32]) {
    assert_eq!(acc.len(), x.len(), "axpy: lengths differ");
    (active().axpy)(acc, w, x);
}

/// Rotates every `dk`-wide head vector of `heads` in place for position `pos`, as
/// [`RopeTable::rotate`] does for one (bit-identical to it).
///
/// # Panics
/// If `pos` is out of the table or the length of `heads` is not a multiple of `dk`.
pub fn rope(table: &RopeTable, heads: &mut [f32], pos: usize) {
    let h = table.half;
    assert!(
        h > 0 && heads.len().is_multiple_of(2 * h),
        "rope: length {} is not a multiple of the head size {}",
        heads.len(),
        2 * h
    );
    let (cos, sin) = (&table.cos[pos * h..(pos + 1) * h], &table.sin[pos * h..(pos + 1) * h]);
    (active().rope)(heads, cos, sin);
}

/// One build of every kernel: function pointers into code compiled for one instruction set.
#[derive(Clone, Copy)]
struct Build {
    name: &'static str,
    /// The level the CPU needs to run this build.
    level: crate::IsaLevel,
    rms_norm: fn(&mut [f32], &[f32], &[f32], f32),
    softmax: fn(&mut [f32]),
    relu: fn(&mut [f32]),
    dot: fn(&[f32], &[f32]) -> f32,
    axpy: fn(&mut [f32], f32, &[f32]),
    rope: fn(&mut [f32], &[f32], &[f32]),
}

/// One kernel of [`body`] compiled inside a `#[target_feature(enable = $features)]` function,
/// behind a safe function of the same signature.
macro_rules! compiled_with {
    ($features:literal, $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?) => {
        fn $name($($arg: $ty),*) $(-> $ret)? {
            #[target_feature(enable = $features)]
            unsafe fn wide($($arg: $ty),*) $(-> $ret)? {
                body::$name($($arg),*)
            }
            // SAFETY: this function is only reachable through its `Build`, which `active` and
            // the tests' `runnable` hand out only where the CPU has the build's level, whose
            // instruction sets include `$features`.
            unsafe { wide($($arg),*) }
        }
    };
}

/// A [`Build`] of the `#[inline(always)]` kernels in [`body`]: as they are, or each compiled
/// with `#[target_feature(enable = $features)]`.
macro_rules! build {
    ($name:literal, $level:ident) => {
        Build {
            name: $name,
            level: crate::IsaLevel::$level,
            rms_norm: body::rms_norm,
            softmax: body::softmax,
            relu: body::relu,
            dot: body::dot,
            axpy: body::axpy,
            rope: body::rope,
        }
    };
    ($name:literal, $level:ident, $features:literal) => {{
        compiled_with!($features, rms_norm(out: &mut [f32], x: &[f32], weight: &[f32], eps: f32));
        compiled_with!($features, softmax(row: &mut [f32]));
        compiled_with!($features, relu(x: &mut [f32]));
        compiled_with!($features, dot(a: &[f32], b: &[f32]) -> f32);
        compiled_with!($features, axpy(acc: &mut [f32], w: f32, x: &[f32]));
        compiled_with!($features, rope(heads: &mut [f32], cos: &[f32], sin: &[f32]));
        Build {
            name: $name,
            level: crate::IsaLevel::$level,
            rms_norm,
            softmax,
            relu,
            dot,
            axpy,
            rope,
        }
    }};
}

/// Every build, widest first.
const BUILDS: &[Build] = &[
    #[cfg(target_arch = "x86_64")]
    build!("avx512f", Avx512, "avx512f"),
    #[cfg(target_arch = "x86_64")]
    build!("avx2+fma", Avx2, "avx2,fma"),
    build!("scalar", Scalar),
];

/// The widest build the kernels may use ([`crate::IsaLevel::active`]), chosen once.
fn active() -> &'static Build {
    static CHOICE: std::sync::OnceLock<&'static Build> = std::sync::OnceLock::new();
    CHOICE.get_or_init(|| {
        let level = crate::IsaLevel::active();
        BUILDS
            .iter()
            .find(|build| build.level <= level)
            .expect("the scalar build runs everywhere")
    })
}

/// The kernels, written once: `#[inline(always)]` so that each lands, and is vectorised, inside
/// the `#[target_feature]` function of every build.
mod body {
    use super::LANES;

    #[inline(always)]
    pub(super) fn rms_norm(out: &mut [f32], x: &[f32], weight: &[f32], eps: f32) {
        let d = weight.len();
        for (row_out, row) in out.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
            let mut acc = [0.0f64; LANES];
            let chunks = row.chunks_exact(LANES);
            let tail: f64 = chunks.remainder().iter().map(|&v| v as f64 * v as f64).sum();
            for chunk in chunks {
                for (slot, &v) in acc.iter_mut().zip(chunk) {
                    *slot += v as f64 * v as f64;
                }
            }
            let mean_square = ((sum_lanes(acc) + tail) / d as f64) as f32;
            let inv = 1.0 / (mean_square + eps).sqrt();
            for ((o, &v), &w) in row_out.iter_mut().zip(row).zip(weight) {
                *o = w * (v * inv);
            }
        }
    }

    #[inline(always)]
    pub(super) fn softmax(row: &mut [f32]) {
        let max = max(row);
        let mut acc = [0.0f32; LANES];
        let mut chunks = row.chunks_exact_mut(LANES);
        for chunk in &mut chunks {
            for (slot, v) in acc.iter_mut().zip(chunk) {
                *v = exp_nonpositive(*v - max);
                *slot += *v;
            }
        }
        let mut tail = 0.0;
        for v in chunks.into_remainder() {
            *v = exp_nonpositive(*v - max);
            tail += *v;
        }
        let inv = 1.0 / (sum_lanes(acc) + tail);
        for v in row.iter_mut() {
            *v *= inv;
        }
    }

    #[inline(always)]
    pub(super) fn relu(x: &mut [f32]) {
        for v in x {
            *v = if *v > 0.0 { *v } else { 0.0 };
        }
    }

    #[inline(always)]
    pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0.0f32; LANES];
        let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(&x, &y)| x * y).sum();
        for (x, y) in ac.zip(bc) {
            for i in 0..LANES {
                acc[i] += x[i] * y[i];
            }
        }
        sum_lanes(acc) + tail
    }

    #[inline(always)]
    pub(super) fn axpy(acc: &mut [f32], w: f32, x: &[f32]) {
        for (a, &v) in acc.iter_mut().zip(x) {
            *a += w * v;
        }
    }

    #[inline(always)]
    pub(super) fn rope(heads: &mut [f32], cos: &[f32], sin: &[f32]) {
        let h = cos.len();
        for head in heads.chunks_exact_mut(2 * h) {
            let (first, second) = head.split_at_mut(h);
            for (((a, b), &c), &s) in first.iter_mut().zip(second).zip(cos).zip(sin) {
                let (x, y) = (*a, *b);
                *a = x * c - y * s;
                *b = y * c + x * s;
            }
        }
    }

    /// The largest value of `row` (`-inf` if empty; with a NaN in `row` the softmax is NaN
    /// either way).
    #[inline(always)]
    fn max(row: &[f32]) -> f32 {
        let larger = |a: f32, b: f32| if b > a { b } else { a };
        let mut acc = [f32::NEG_INFINITY; LANES];
        let chunks = row.chunks_exact(LANES);
        let tail = chunks.remainder().iter().copied().fold(f32::NEG_INFINITY, larger);
        for chunk in chunks {
            for (slot, &v) in acc.iter_mut().zip(chunk) {
                *slot = larger(*slot, v);
            }
        }
        let mut width = LANES;
        while width > 1 {
            width /= 2;
            for i in 0..width {
                acc[i] = larger(acc[i], acc[i + width]);
            }
        }
        larger(acc[0], tail)
    }

    /// The partial sums added pairwise (halves folded onto each other: a few shuffles), in
    /// f32 or f64.
    #[inline(always)]
    fn sum_lanes<T: Copy + std::ops::Add<Output = T>>(mut acc: [T; LANES]) -> T {
        let mut width = LANES;
        while width > 1 {
            width /= 2;
            for i in 0..width {
                acc[i] = acc[i] + acc[i + width];
            }
        }
        acc[0]
    }

    /// `e^x` for `x <= 0` (NaN stays NaN), within 2 ulp of the exact value, denormal results
    /// included; exactly 1 at 0, and 0 below -104 (where `f32::exp` rounds to 0 as well).
    ///
    /// `x = n·ln 2 + r` with `n = round(x·log2 e)` and `|r| <= ln 2 / 2` (`n·ln 2` subtracted
    /// in two parts, the first exact), Cephes' degree-6 polynomial for `e^r`, then `2^n` from
    /// exponent bits in two factors so that results down to the smallest denormal round once.
    #[inline(always)]
    pub(super) fn exp_nonpositive(x: f32) -> f32 {
        /// 1.5·2^23: adding it rounds a value below 2^22 in magnitude to an integer, which
        /// then sits in the low mantissa bits.
        const ROUND: f32 = 12_582_912.0;
        /// ln 2 in two parts; the first (355/512, exact) has 9 significant bits, so `n · LN2_HIGH` is exact.
        const LN2_HIGH: f32 = 355.0 / 512.0;
        const LN2_LOW: f32 = -2.121_944_4e-4;
        let x = if x < -104.0 { -104.0 } else { x };
        let shifted = x * std::f32::consts::LOG2_E + ROUND;
        let n = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
        let nf = shifted - ROUND;
        let r = x - nf * LN2_HIGH;
        let r = r - nf * LN2_LOW;
        let p = 1.987_569_2e-4;
        let p = p * r + 1.398_199_9e-3;
        let p = p * r + 8.333_452e-3;
        let p = p * r + 4.166_579_6e-2;
        let p = p * r + 0.166_666_65;
        let p = p * r + 0.5;
        let p = p * (r * r) + r + 1.0;
        let half = n >> 1;
        let scale = |k: i32| f32::from_bits((k.wrapping_add(127) as u32).wrapping_shl(23));
        p * scale(half) * scale(n.wrapping_sub(half))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IsaLevel;

    /// The builds this CPU runs (the active one among them).
    fn runnable() -> impl Iterator<Item = &'static Build> {
        let detected = IsaLevel::detected();
        BUILDS.iter().filter(move |build| build.level <= detected)
    }

    const LENGTHS: [usize; 10] = [1, 7, 8, 15, 16, 17, 63, 64, 65, 1000];

    /// Deterministic values in `[-scale, scale]`.
    fn values(len: usize, seed: u32, scale: f32) -> Vec<f32> {
        crate::tests::pseudo_random(len, seed)
            .iter()
            .map(|v| v * scale)
            .collect()
    }

    /// Runs `f` on every runnable build; asserts they all agree bit for bit and returns the
    /// result of the first (widest).
    fn every_build<T: PartialEq + std::fmt::Debug>(what: &str, f: impl Fn(&Build) -> T) -> T {
        let mut builds = runnable();
        let first = builds.next().expect("the scalar build");
        let expected = f(first);
        for build in builds {
            assert_eq!(f(build), expected, "{what}: {} differs from {}", build.name, first.name);
        }
        expected
    }

    fn bits(x: &[f32]) -> Vec<u32> {
        x.iter().map(|v| v.to_bits()).collect()
    }

    /// Within `rel` of `plain`, relative, or both below the normal range (or the same bits).
    fn close(fast: f32, plain: f32, rel: f32, what: &str) {
        assert!(
            (fast - plain).abs() <= rel * plain.abs() + f32::MIN_POSITIVE || fast.to_bits() == plain.to_bits(),
            "{what}: {fast:e} vs {plain:e}"
        );
    }

    #[test]
    fn the_active_build_is_named() {
        assert!(["avx512f", "avx2+fma", "scalar"].contains(&isa_name()));
        assert!(runnable().any(|build| build.name == isa_name()));
    }

    #[test]
    fn exp_is_within_two_ulp_of_exact() {
        assert_eq!(body::exp_nonpositive(0.0), 1.0);
        assert_eq!(body::exp_nonpositive(f32::MIN), 0.0);
        assert_eq!(body::exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert!(body::exp_nonpositive(f32::NAN).is_nan());
        let mut x = -110.0f32;
        while x <= 0.0 {
            let (fast, exact) = (body::exp_nonpositive(x), (x as f64).exp());
            let rounded = exact as f32;
            let ulp = if rounded < f32::MIN_POSITIVE {
                f32::from_bits(1)
            } else {
                f32::from_bits(rounded.to_bits() + 1) - rounded
            };
            assert!(
                ((fast as f64) - exact).abs() <= 2.0 * ulp as f64,
                "exp({x}) = {fast:e}, exact {exact:e}"
            );
            x += 0.0137;
        }
    }

    #[test]
    fn softmax_matches_plain() {
        for &len in &LENGTHS {
            for (seed, scale) in [(1, 1.0), (2, 30.0), (3, 1e4)] {
                let row = values(len, seed, scale);
                let fast = every_build("softmax", |build| {
                    let mut out = row.clone();
                    (build.softmax)(&mut out);
                    bits(&out)
                });
                let mut plain = row.clone();
                super::super::softmax(&mut plain);
                // Exact but for the f32 subtraction of the maximum, which both versions do.
                let exact: Vec<f64> = {
                    let max = row.iter().copied().fold(f32::MIN, f32::max);
                    let e: Vec<f64> = row.iter().map(|&v| ((v - max) as f64).exp()).collect();
                    let total: f64 = e.iter().sum();
                    e.iter().map(|v| v / total).collect()
                };
                for ((&fast, &plain), &exact) in fast.iter().zip(&plain).zip(&exact) {
                    let fast = f32::from_bits(fast);
                    // Against the plain version (whose serial sum drifts on long rows) and the
                    // exact value.
                    close(fast, plain, 2e-6, &format!("softmax len {len} scale {scale}"));
                    close(
                        fast,
                        exact as f32,
                        1e-6,
                        &format!("softmax len {len} scale {scale} (exact)"),
                    );
                }
            }
        }
    }

    #[test]
    fn softmax_keeps_the_mask_semantics() {
        for &len in &LENGTHS {
            // Fully masked: uniform, like the plain version.
            let masked: Vec<f32> = values(len, 4, 10.0).iter().map(|v| v + f32::MIN).collect();
            let mut plain = masked.clone();
            super::super::softmax(&mut plain);
            let fast = every_build("masked softmax", |build| {
                let mut out = masked.clone();
                (build.softmax)(&mut out);
                bits(&out)
            });
            assert_eq!(fast, bits(&plain), "fully masked row of {len}");
            // One unmasked key among masked ones (some huge scores too): exactly 1 and 0.
            let mut row = masked.clone();
            row[len / 2] = 3.0;
            if len > 2 {
                row[0] = -3e38 + f32::MIN;
                row[1] = 1e30 + f32::MIN;
            }
            let fast = every_build("one key", |build| {
                let mut out = row.clone();
                (build.softmax)(&mut out);
                bits(&out)
            });
            let expected: Vec<f32> = (0..len).map(|i| if i == len / 2 { 1.0 } else { 0.0 }).collect();
            assert_eq!(fast, bits(&expected), "one unmasked key in {len}");
        }
        // Large scores of both signs, and a masked mixture.
        let row = [1e4, -1e4, 3e38, -3e38, 0.0, 3e38 - 1.0, 2.0 + f32::MIN];
        let mut plain = row;
        super::super::softmax(&mut plain);
        let fast = every_build("large scores", |build| {
            let mut out = row;
            (build.softmax)(&mut out);
            bits(&out)
        });
        assert_eq!(fast, bits(&plain));
        every_build("empty", |build| (build.softmax)(&mut []));
    }

    #[test]
    fn rms_norm_matches_plain() {
        for &d in &LENGTHS {
            let weight = values(d, 5, 2.0);
            let x = values(3 * d, 6, 50.0);
            let mut plain = vec![0.0; 3 * d];
            super::super::rms_norm(&mut plain, &x, &weight, 1e-6);
            let fast = every_build("rms_norm", |build| {
                let mut out = vec![0.0; 3 * d];
                (build.rms_norm)(&mut out, &x, &weight, 1e-6);
                bits(&out)
            });
            for (&fast, &plain) in fast.iter().zip(&plain) {
                close(f32::from_bits(fast), plain, 1e-6, &format!("rms_norm d {d}"));
            }
        }
        // Zeros, denormals (whose squares vanish in f32, not in f64), eps 0.
        let rows = [
            vec![0.0f32; 17],
            vec![1e-40f32; 17],
            (0..17).map(|i| if i % 3 == 0 { -2e-39 } else { 1e-45 }).collect(),
        ];
        for row in rows {
            for eps in [0.0, 1e-6] {
                let weight = values(17, 7, 1.0);
                let mut plain = vec![0.0; 17];
                super::super::rms_norm(&mut plain, &row, &weight, eps);
                let fast = every_build("special rms_norm", |build| {
                    let mut out = vec![0.0; 17];
                    (build.rms_norm)(&mut out, &row, &weight, eps);
                    bits(&out)
                });
                for (&fast, &plain) in fast.iter().zip(&plain) {
                    let fast = f32::from_bits(fast);
                    assert!(
                        fast.to_bits() == plain.to_bits() || (fast - plain).abs() <= 1e-6 * plain.abs(),
                        "{row:?} eps {eps}: {fast:e} vs {plain:e}"
                    );
                }
            }
        }
    }

    #[test]
    fn relu_axpy_and_rope_are_bit_identical_to_plain() {
        for &len in &LENGTHS {
            let mut x = values(len, 8, 5.0);
            x[0] = -0.0;
            if len > 2 {
                x[1] = f32::NAN;
                x[2] = 1e-42;
            }
            let mut plain = x.clone();
            super::super::relu(&mut plain);
            let fast = every_build("relu", |build| {
                let mut out = x.clone();
                (build.relu)(&mut out);
                bits(&out)
            });
            assert_eq!(fast, bits(&plain));

            let (w, y) = (0.37, values(len, 9, 3.0));
            let fast = every_build("axpy", |build| {
                let mut acc = y.clone();
                (build.axpy)(&mut acc, w, &x);
                bits(&acc)
            });
            let plain: Vec<f32> = y.iter().zip(&x).map(|(&a, &b)| a + w * b).collect();
            assert_eq!(fast, bits(&plain));
        }
        for dk in [2, 16, 64, 130] {
            let table = RopeTable::new(40, dk, 10000.0);
            let heads = values(3 * dk, 10, 4.0);
            for pos in [0, 1, 39] {
                let mut plain = heads.clone();
                for head in plain.chunks_exact_mut(dk) {
                    table.rotate(head, pos);
                }
                let fast = every_build("rope", |build| {
                    let mut out = heads.clone();
                    let h = dk / 2;
                    (build.rope)(&mut out, &table.cos[pos * h..][..h], &table.sin[pos * h..][..h]);
                    bits(&out)
                });
                assert_eq!(fast, bits(&plain), "rope dk {dk} pos {pos}");
                let mut dispatched = heads.clone();
                rope(&table, &mut dispatched, pos);
                assert_eq!(bits(&dispatched), fast);
            }
        }
    }

    #[test]
    fn dot_matches_f64() {
        for &len in &LENGTHS {
            let (a, b) = (values(len, 11, 2.0), values(len, 12, 2.0));
            let fast = every_build("dot", |build| (build.dot)(&a, &b).to_bits());
            let exact: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
            let scale: f64 = a.iter().zip(&b).map(|(&x, &y)| (x as f64 * y as f64).abs()).sum();
            assert!(
                (f32::from_bits(fast) as f64 - exact).abs() <= 1e-6 * scale.max(1e-30),
                "dot of {len}: {} vs {exact}",
                f32::from_bits(fast)
            );
            assert_eq!(dot(&a, &b).to_bits(), fast);
        }
    }

    #[test]
    fn dispatched_functions_use_the_active_build() {
        let row = values(133, 13, 8.0);
        let (mut a, mut b) = (row.clone(), row.clone());
        softmax(&mut a);
        (active().softmax)(&mut b);
        assert_eq!(bits(&a), bits(&b));
        let weight = values(133, 14, 1.0);
        let (mut a, mut b) = (vec![0.0; 133], vec![0.0; 133]);
        rms_norm(&mut a, &row, &weight, 1e-6);
        (active().rms_norm)(&mut b, &row, &weight, 1e-6);
        assert_eq!(bits(&a), bits(&b));
        let (mut a, mut b) = (row.clone(), row);
        relu(&mut a);
        (active().relu)(&mut b);
        assert_eq!(bits(&a), bits(&b));
    }
}
