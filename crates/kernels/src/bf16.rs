//! bfloat16 linear layers: weights packed once in bf16 (half the memory and half the weight
//! traffic of f32), activations rounded to bf16 per product, products summed in f32.
//!
//! Both operands hold bf16 values in pairs along k: a `u32` carries `(v[2q], v[2q+1])`, the
//! even element in the low half. Packed weights are panels of [`NR`](crate::packed::NR)
//! columns, pair-major (`panel[q][NR]`), zero-padded past `n` and, for odd k, past k.
//! Microkernels, chosen once at run time:
//!
//! * AVX512_BF16: `VDPBF16PS` multiplies the bf16 pairs and adds both products to f32 lanes;
//! * AVX-512F and AVX2+FMA: the pairs are widened to f32 (a shift) and multiplied with FMAs;
//! * scalar: the same widening, one lane at a time (the reference for the others).
//!
//! Every bf16 × bf16 product is exact in f32; kernels differ only in the order and rounding of
//! the sums, i.e. within f32 rounding of each other.

use std::sync::OnceLock;
use std::time::Instant;

use crate::packed::{check_len, drive, linear, PackedWeight, Shape, TileCall, NR};
use crate::pool::Pool;
use crate::storage::{Storage, StorageError};
use crate::IsaLevel;

/// Rounds `x` to the nearest bfloat16 (ties to even), as its bit pattern. NaN stays NaN.
/// Branch-free, so loops over it vectorise.
#[inline]
pub fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    let rounded = bits.wrapping_add(0x7FFF + ((bits >> 16) & 1)) >> 16;
    let quiet_nan = (bits >> 16) | 0x40;
    (if x.is_nan() { quiet_nan } else { rounded }) as u16
}

/// The f32 value of a bfloat16 bit pattern (exact).
#[inline]
pub fn from_bf16(b: u16) -> f32 {
    f32::from_bits(u32::from(b) << 16)
}

/// `x` rounded to bf16 precision, as f32 (what the bf16 path computes with).
#[inline]
pub fn round_bf16(x: f32) -> f32 {
    from_bf16(to_bf16(x))
}

/// Pairs per row for depth `k`.
pub fn pairs(k: usize) -> usize {
    k.div_ceil(2)
}

/// Number of `u32` words a packed bf16 `[n, k]` matrix occupies.
pub fn packed_bf16_len(n: usize, k: usize) -> usize {
    n.div_ceil(NR) * NR * pairs(k)
}

#[inline]
fn pair(lo: f32, hi: f32) -> u32 {
    u32::from(to_bf16(lo)) | (u32::from(to_bf16(hi)) << 16)
}

/// Rounds the `m x k` matrix `x` (row stride `ldx`) to bf16 pairs in `out` (`m x pairs(k)`,
/// dense), zero-padding odd k; rows split over `pool`.
///
/// # Panics
/// If a slice is too short.
pub fn to_bf16_pairs(x: &[f32], ldx: usize, m: usize, k: usize, out: &mut [u32], pool: &Pool) {
    let kp = pairs(k).max(1);
    assert!(out.len() >= m * kp, "to_bf16_pairs: output too short");
    assert!(m == 0 || x.len() >= (m - 1) * ldx + k, "to_bf16_pairs: input too short");
    let rows_per_chunk = 64;
    let convert = row_converter();
    pool.for_each_chunk(&mut out[..m * kp], rows_per_chunk * kp, &|chunk, part| {
        for (i, row_out) in part.chunks_exact_mut(kp).enumerate() {
            let r = chunk * rows_per_chunk + i;
            convert(&x[r * ldx..r * ldx + k], row_out);
        }
    });
}

/// Rounds `x` to bf16 precision into `out` (as f32 values), split over `pool`: the input of a
/// bf16 layer whose weights are f32 panels (see [`packed_bf16_pays`]).
///
/// # Panics
/// If `out` is shorter than `x`.
pub fn round_bf16_into(x: &[f32], out: &mut [f32], pool: &Pool) {
    let round = rounder();
    let chunk = 64 * 1024;
    pool.for_each_chunk(&mut out[..x.len()], chunk, &|i, part| {
        round(&x[i * chunk..i * chunk + part.len()], part);
    });
}

/// One row to bf16 pairs (`row_out` holds `pairs(row.len())` words), the odd tail padded with
/// zero. Written so that the loop vectorises; compiled again with AVX-512 enabled below.
#[inline(always)]
fn row_to_pairs(row: &[f32], row_out: &mut [u32]) {
    let whole = row.len() / 2;
    for (slot, two) in row_out[..whole].iter_mut().zip(row.chunks_exact(2)) {
        *slot = pair(two[0], two[1]);
    }
    if let Some(&last) = row[2 * whole..].first() {
        row_out[whole] = pair(last, 0.0);
    }
}

/// [`round_bf16`] over a slice, written so that the loop vectorises.
#[inline(always)]
fn round_slice(x: &[f32], out: &mut [f32]) {
    for (slot, &v) in out.iter_mut().zip(x) {
        *slot = round_bf16(v);
    }
}

type RowConverter = fn(&[f32], &mut [u32]);
type SliceRounder = fn(&[f32], &mut [f32]);

/// The widest build of [`row_to_pairs`] this CPU runs (the same arithmetic on every path).
fn row_converter() -> RowConverter {
    avx512_or!(RowConverter, x86::row_to_pairs_avx512, row_to_pairs)
}

/// The widest build of [`round_slice`] this CPU runs.
fn rounder() -> SliceRounder {
    avx512_or!(SliceRounder, x86::round_slice_avx512, round_slice)
}

/// A `[n, k]` weight matrix rounded to bf16 and packed for [`linear_bf16`].
#[derive(Clone, Debug, PartialEq)]
pub struct PackedBf16 {
    data: Storage<u32>,
    n: usize,
    k: usize,
}

impl PackedBf16 {
    /// Rounds and packs a row-major `[n, k]` weight.
    ///
    /// # Panics
    /// If `weight` is shorter than `n * k`.
    pub fn new(weight: &[f32], n: usize, k: usize) -> Self {
        assert!(weight.len() >= n * k, "PackedBf16: weight too short");
        let kp = pairs(k);
        let mut data = vec![0u32; packed_bf16_len(n, k)];
        for (panel, chunk) in data.chunks_exact_mut(NR * kp.max(1)).enumerate() {
            for c in 0..NR.min(n - panel * NR) {
                let row = &weight[(panel * NR + c) * k..][..k];
                for q in 0..kp {
                    chunk[q * NR + c] = pair(row[2 * q], row.get(2 * q + 1).copied().unwrap_or(0.0));
                }
            }
        }
        Self {
            data: data.into(),
            n,
            k,
        }
    }

    /// A matrix already packed (by [`new`](Self::new), e.g. read back from a cache file).
    ///
    /// # Errors
    /// If `data` does not hold `packed_bf16_len(n, k)` words.
    pub fn from_packed(data: Storage<u32>, n: usize, k: usize) -> Result<Self, StorageError> {
        check_len(data.len(), packed_bf16_len(n, k), n, k)?;
        Ok(Self { data, n, k })
    }

    /// The packed words (what [`from_packed`](Self::from_packed) takes back).
    pub fn packed(&self) -> &Storage<u32> {
        &self.data
    }

    /// Output features n.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input features k.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<u32>()
    }
}

/// Depth slice in pairs: the whole depth of every Chronos-2 layer in one slice (as the f32
/// GEMM's `KC`; slices of 128 pairs measured 8-9 % slower on cases A, C and E).
const KC_PAIRS: usize = 2048;

/// `y[m, n] (+)= x · Wᵀ (+ bias)` with `x` given as bf16 pairs (`m x pairs(k)`, row stride
/// `ldx` in pairs, from [`to_bf16_pairs`]) and W packed in bf16; sums in f32. Split over `pool`
/// as [`linear`](crate::packed::linear).
///
/// # Panics
/// If a slice is too short for its shape or the bias length is not n.
#[allow(clippy::too_many_arguments, reason = "a strided GEMM with its options")]
pub fn linear_bf16(
    y: &mut [f32],
    ldy: usize,
    x: &[u32],
    ldx: usize,
    m: usize,
    w: &PackedBf16,
    bias: Option<&[f32]>,
    accumulate: bool,
    pool: &Pool,
) {
    let (n, kp) = (w.n, pairs(w.k));
    assert!(ldx >= kp && ldy >= n, "linear_bf16: strides smaller than widths");
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        x.len() >= (m - 1) * ldx + kp,
        "linear_bf16: x is too short for {m} rows"
    );
    let isa = *isa();
    let tile = |t: &TileCall| {
        // SAFETY: `drive` passes tiles inside the checked shapes: rows [r0, r0 + rows) of x
        // and the columns [column, column + cols) of the pair slice [p0, p0 + kc) of a panel
        // of w; `out` is the tile's first element of y, written by this call alone; `isa()`
        // returns only kernels this CPU runs.
        unsafe {
            (isa.kernel)(
                x.as_ptr().add(t.r0 * ldx + t.p0),
                ldx,
                w.data.as_ptr().add(t.panel * NR * kp + t.p0 * NR + t.column),
                t.kc,
                t.out,
                ldy,
                t.rows,
                t.cols,
                t.accumulate,
            );
        }
    };
    let shape = Shape {
        m,
        n,
        depth: kp,
        slice: KC_PAIRS,
        mr: isa.mr,
        width: isa.width,
    };
    drive(y, ldy, shape, bias, accumulate, pool, &tile);
}

type Kernel = unsafe fn(*const u32, usize, *const u32, usize, *mut f32, usize, usize, usize, bool);

/// A bf16 microkernel and its tile.
#[derive(Clone, Copy)]
pub struct Bf16Isa {
    kernel: Kernel,
    /// Rows per call.
    mr: usize,
    /// Columns per call: a whole panel, or half of one.
    width: usize,
    /// The instruction set, e.g. `avx512bf16`.
    pub name: &'static str,
}

/// Every bf16 microkernel this CPU can run, fastest first (the scalar one always last).
pub fn available() -> Vec<Bf16Isa> {
    available_up_to(IsaLevel::detected())
}

/// The bf16 microkernels up to `level`, fastest first.
fn available_up_to(level: IsaLevel) -> Vec<Bf16Isa> {
    let mut all = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if level >= IsaLevel::Avx512Bf16 {
            all.push(Bf16Isa {
                kernel: x86::kernel_dpbf16,
                mr: x86::MR_DPBF16,
                width: NR,
                name: "avx512bf16",
            });
        }
        if level >= IsaLevel::Avx512 {
            all.push(Bf16Isa {
                kernel: x86::kernel_avx512_widen,
                mr: x86::MR_AVX512_WIDEN,
                width: NR,
                name: "avx512f (widening)",
            });
        }
        if level >= IsaLevel::Avx2 {
            all.push(Bf16Isa {
                kernel: x86::kernel_avx2_widen,
                mr: x86::MR_AVX2_WIDEN,
                width: x86::HALF,
                name: "avx2+fma (widening)",
            });
        }
    }
    all.push(Bf16Isa {
        kernel: kernel_scalar,
        mr: 4,
        width: NR,
        name: "scalar (widening)",
    });
    all
}

fn isa() -> &'static Bf16Isa {
    static ISA: OnceLock<Bf16Isa> = OnceLock::new();
    ISA.get_or_init(|| available_up_to(IsaLevel::active())[0])
}

/// The bf16 instruction set the planned executor uses on this machine.
pub fn isa_name() -> &'static str {
    isa().name
}

/// Whether bf16 layers should keep bf16-packed weights on this machine, decided once by
/// timing ([`bf16_speedup`]): the bf16 kernel where it is at least [`BF16_PAYS_FROM`] times as
/// fast as the f32 one, else the weights rounded to bf16 and packed as f32 panels, the inputs
/// rounded the same way (the same values, at f32 speed). Measured so because neither the
/// instruction set nor the vendor decides it: `VDPBF16PS` doubles the FMA rate on AMD Zen 4
/// and Zen 5 but issues at half the FMA rate on Intel Sapphire and Emerald Rapids, and the
/// AVX2 widening kernel won on a Zen 3 (1.3x) and lost on an Emerald Rapids (0.9x). The scalar
/// level keeps bf16 panels without timing (half the weight traffic, nothing to win in speed).
/// `CHRONOS2_BF16_PANELS=bf16|f32` sets the choice instead (tests run both; a fixed choice
/// also keeps one compile-cache entry).
pub fn packed_bf16_pays() -> bool {
    panel_choice().0
}

/// [`packed_bf16_pays`] and the measured speed-up it rests on (`None` where it was not timed).
fn panel_choice() -> (bool, Option<f64>) {
    static CHOICE: OnceLock<(bool, Option<f64>)> = OnceLock::new();
    *CHOICE.get_or_init(|| {
        match std::env::var("CHRONOS2_BF16_PANELS").ok().as_deref().map(str::trim) {
            Some("bf16") => return (true, None),
            Some("f32") => return (false, None),
            None | Some("") => {}
            Some(other) => {
                eprintln!("warning: CHRONOS2_BF16_PANELS={other:?} is not bf16 or f32; measuring which is faster")
            }
        }
        if IsaLevel::active() == IsaLevel::Scalar {
            return (true, None);
        }
        let speedup = bf16_speedup();
        (speedup >= BF16_PAYS_FROM, Some(speedup))
    })
}

/// The smallest speed-up of bf16 panels over f32 ones for which bf16 panels are kept: a margin,
/// so that timing noise does not flip the choice (and with it the compile cache's entry)
/// between processes where the two are close.
const BF16_PAYS_FROM: f64 = 1.1;

/// How many times faster a bf16 layer runs with bf16 panels than with f32 panels of the same
/// rounded weights, inputs' conversion included, on one thread and one layer-sized product
/// (34 tokens, one series' context of 512, through a 768 x 768 projection): best of 5
/// alternated calls each, some 5 ms in all.
fn bf16_speedup() -> f64 {
    let (m, k, n) = (34, 768, 768);
    let value = |i: usize| ((i * 7919) % 1000) as f32 / 500.0 - 1.0;
    let x: Vec<f32> = (0..m * k).map(value).collect();
    let w: Vec<f32> = (0..n * k).map(|i| value(i * 13 + 5)).collect();
    let pool = Pool::new(1);
    let mut y = vec![0.0f32; m * n];
    let bf16_weight = PackedBf16::new(&w, n, k);
    let mut x_pairs = vec![0u32; m * pairs(k)];
    let mut rounded = vec![0.0f32; n * k];
    round_bf16_into(&w, &mut rounded, &pool);
    let f32_weight = PackedWeight::new(&rounded, n, k);
    let mut x_rounded = vec![0.0f32; m * k];
    let (mut f32_best, mut bf16_best) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..5 {
        let start = Instant::now();
        to_bf16_pairs(&x, k, m, k, &mut x_pairs, &pool);
        linear_bf16(&mut y, n, &x_pairs, pairs(k), m, &bf16_weight, None, false, &pool);
        bf16_best = bf16_best.min(start.elapsed().as_secs_f64());
        let start = Instant::now();
        round_bf16_into(&x, &mut x_rounded, &pool);
        linear(&mut y, n, &x_rounded, k, m, f32_weight.view(), None, false, &pool);
        f32_best = f32_best.min(start.elapsed().as_secs_f64());
    }
    f32_best / bf16_best.max(1e-9)
}

/// What bf16 layers run on this machine: the bf16 kernel's name, or, where
/// [`packed_bf16_pays`] says no, the f32 kernel's with `bf16-rounded f32 panels`; with the
/// measured speed-up of bf16 panels over f32 ones where it was timed.
pub fn path_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| match panel_choice() {
        (true, None) => isa().name.to_string(),
        (true, Some(speedup)) => format!("{} (bf16 panels, measured {speedup:.2}x f32)", isa().name),
        (false, None) => format!("{} (bf16-rounded f32 panels)", crate::packed::isa_name()),
        (false, Some(speedup)) => format!(
            "{} (bf16-rounded f32 panels, bf16 panels measured {speedup:.2}x f32)",
            crate::packed::isa_name()
        ),
    })
}

/// The scalar widening microkernel (reference for the SIMD ones).
///
/// # Safety
/// `a` readable for `rows` rows of `kp` pairs at stride `lda`, `panel` for `kp * NR` pairs,
/// `c` writable for `rows` rows of `cols <= NR` values at stride `ldc`.
#[allow(clippy::too_many_arguments, reason = "the microkernel ABI")]
unsafe fn kernel_scalar(
    a: *const u32,
    lda: usize,
    panel: *const u32,
    kp: usize,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    accumulate: bool,
) {
    let lo = |p: u32| f32::from_bits(p << 16);
    let hi = |p: u32| f32::from_bits(p & 0xFFFF_0000);
    for r in 0..rows {
        let mut acc = [0.0f32; NR];
        for q in 0..kp {
            let x = *a.add(r * lda + q);
            for (j, slot) in acc.iter_mut().enumerate() {
                let w = *panel.add(q * NR + j);
                *slot = lo(x).mul_add(lo(w), *slot);
                *slot = hi(x).mul_add(hi(w), *slot);
            }
        }
        for (j, &v) in acc.iter().enumerate().take(cols) {
            let out = c.add(r * ldc + j);
            *out = if accumulate { *out + v } else { v };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    pub(super) use crate::packed::x86::HALF;
    use crate::packed::x86::{store_avx2, store_avx512};
    use std::arch::x86_64::*;

    use super::NR;

    /// [`super::row_to_pairs`] compiled with AVX-512 (16 values per instruction).
    pub(super) fn row_to_pairs_avx512(row: &[f32], row_out: &mut [u32]) {
        #[target_feature(enable = "avx512f")]
        unsafe fn wide(row: &[f32], row_out: &mut [u32]) {
            super::row_to_pairs(row, row_out);
        }
        // SAFETY: the dispatcher picks this function only where AVX-512F runs.
        unsafe { wide(row, row_out) }
    }

    /// [`super::round_slice`] compiled with AVX-512.
    pub(super) fn round_slice_avx512(x: &[f32], out: &mut [f32]) {
        #[target_feature(enable = "avx512f")]
        unsafe fn wide(x: &[f32], out: &mut [f32]) {
            super::round_slice(x, out);
        }
        // SAFETY: the dispatcher picks this function only where AVX-512F runs.
        unsafe { wide(x, out) }
    }

    /// AVX512_BF16 microkernel, up to [`MR_DPBF16`] rows x 32 columns: `VDPBF16PS` per pair.
    ///
    /// # Safety
    /// As [`super::kernel_scalar`], and the CPU must support AVX-512F and AVX512_BF16.
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[allow(clippy::too_many_arguments, reason = "the microkernel ABI")]
    pub(super) unsafe fn kernel_dpbf16(
        a: *const u32,
        lda: usize,
        panel: *const u32,
        kp: usize,
        c: *mut f32,
        ldc: usize,
        rows: usize,
        cols: usize,
        accumulate: bool,
    ) {
        let acc = by_rows!(rows, |R| sums_dpbf16::<{ R }>(a, lda, panel, kp), [1 2 3 4 5 6 7 8 9 10 11 12]);
        store_avx512(&acc[..rows], c, ldc, cols, accumulate);
    }

    /// Rows of the AVX512_BF16 microkernel: 24 accumulators, 2 weight vectors and a broadcast
    /// take 27 of the 32 vector registers.
    pub(super) const MR_DPBF16: usize = 12;

    /// The sums of a [`kernel_dpbf16`] tile of `R` rows.
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[inline]
    unsafe fn sums_dpbf16<const R: usize>(
        a: *const u32,
        lda: usize,
        panel: *const u32,
        kp: usize,
    ) -> [[__m512; 2]; MR_DPBF16] {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for q in 0..kp {
            let w0: __m512bh = std::mem::transmute(_mm512_loadu_si512(panel.add(q * NR).cast()));
            let w1: __m512bh = std::mem::transmute(_mm512_loadu_si512(panel.add(q * NR + 16).cast()));
            for (r, row) in acc.iter_mut().enumerate() {
                let x: __m512bh = std::mem::transmute(_mm512_set1_epi32(*a.add(r * lda + q) as i32));
                row[0] = _mm512_dpbf16_ps(row[0], x, w0);
                row[1] = _mm512_dpbf16_ps(row[1], x, w1);
            }
        }
        let mut all = [[_mm512_setzero_ps(); 2]; MR_DPBF16];
        all[..R].copy_from_slice(&acc);
        all
    }

    /// Rows of the AVX-512F widening microkernel.
    pub(super) const MR_AVX512_WIDEN: usize = 8;

    /// AVX-512F widening microkernel, up to [`MR_AVX512_WIDEN`] rows x 32 columns.
    ///
    /// # Safety
    /// As [`super::kernel_scalar`], and the CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments, reason = "the microkernel ABI")]
    pub(super) unsafe fn kernel_avx512_widen(
        a: *const u32,
        lda: usize,
        panel: *const u32,
        kp: usize,
        c: *mut f32,
        ldc: usize,
        rows: usize,
        cols: usize,
        accumulate: bool,
    ) {
        let acc = by_rows!(rows, |R| sums_avx512_widen::<{ R }>(a, lda, panel, kp), [1 2 3 4 5 6 7 8]);
        store_avx512(&acc[..rows], c, ldc, cols, accumulate);
    }

    /// The sums of a [`kernel_avx512_widen`] tile of `R` rows (the other rows zero): 2R
    /// accumulators, 4 widened weight vectors and 2 broadcasts stay in the 32 zmm registers.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn sums_avx512_widen<const R: usize>(
        a: *const u32,
        lda: usize,
        panel: *const u32,
        kp: usize,
    ) -> [[__m512; 2]; MR_AVX512_WIDEN] {
        let high = _mm512_set1_epi32(0xFFFF_0000u32 as i32);
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for q in 0..kp {
            let p0 = _mm512_loadu_si512(panel.add(q * NR).cast());
            let p1 = _mm512_loadu_si512(panel.add(q * NR + 16).cast());
            let w = [
                (
                    _mm512_castsi512_ps(_mm512_slli_epi32::<16>(p0)),
                    _mm512_castsi512_ps(_mm512_and_si512(p0, high)),
                ),
                (
                    _mm512_castsi512_ps(_mm512_slli_epi32::<16>(p1)),
                    _mm512_castsi512_ps(_mm512_and_si512(p1, high)),
                ),
            ];
            for (r, row) in acc.iter_mut().enumerate() {
                let x = *a.add(r * lda + q);
                let (x_lo, x_hi) = (
                    _mm512_set1_ps(f32::from_bits(x << 16)),
                    _mm512_set1_ps(f32::from_bits(x & 0xFFFF_0000)),
                );
                for (slot, &(w_lo, w_hi)) in row.iter_mut().zip(&w) {
                    *slot = _mm512_fmadd_ps(x_lo, w_lo, *slot);
                    *slot = _mm512_fmadd_ps(x_hi, w_hi, *slot);
                }
            }
        }
        let mut all = [[_mm512_setzero_ps(); 2]; MR_AVX512_WIDEN];
        all[..R].copy_from_slice(&acc);
        all
    }

    /// Rows of the AVX2 widening microkernel: per 16-column half panel, 2R accumulators, the
    /// 4 widened weight vectors, the mask and the row's broadcasts fit 16 ymm registers at 4.
    pub(super) const MR_AVX2_WIDEN: usize = 4;

    /// AVX2+FMA widening microkernel, up to [`MR_AVX2_WIDEN`] rows x [`HALF`] columns (`panel`
    /// points at the first column of a half panel): every pair is widened to two f32 values
    /// (a shift and a mask) and multiplied with FMAs.
    ///
    /// # Safety
    /// As [`super::kernel_scalar`] with `cols <= HALF`, and the CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments, reason = "the microkernel ABI")]
    pub(super) unsafe fn kernel_avx2_widen(
        a: *const u32,
        lda: usize,
        panel: *const u32,
        kp: usize,
        c: *mut f32,
        ldc: usize,
        rows: usize,
        cols: usize,
        accumulate: bool,
    ) {
        let acc = by_rows!(rows, |R| sums_avx2_widen::<{ R }>(a, lda, panel, kp), [1 2 3 4]);
        store_avx2(&acc[..rows], c, ldc, cols, accumulate);
    }

    /// The sums of a [`kernel_avx2_widen`] tile of `R` rows over one half panel.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn sums_avx2_widen<const R: usize>(
        a: *const u32,
        lda: usize,
        half: *const u32,
        kp: usize,
    ) -> [[__m256; 2]; MR_AVX2_WIDEN] {
        let high = _mm256_set1_epi32(0xFFFF_0000u32 as i32);
        let widen = |p: __m256i| {
            (
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(p)),
                _mm256_castsi256_ps(_mm256_and_si256(p, high)),
            )
        };
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for q in 0..kp {
            let (w0_lo, w0_hi) = widen(_mm256_loadu_si256(half.add(q * NR).cast()));
            let (w1_lo, w1_hi) = widen(_mm256_loadu_si256(half.add(q * NR + 8).cast()));
            for (r, row) in acc.iter_mut().enumerate() {
                let (x_lo, x_hi) = widen(_mm256_set1_epi32(*a.add(r * lda + q) as i32));
                row[0] = _mm256_fmadd_ps(x_lo, w0_lo, row[0]);
                row[1] = _mm256_fmadd_ps(x_lo, w1_lo, row[1]);
                row[0] = _mm256_fmadd_ps(x_hi, w0_hi, row[0]);
                row[1] = _mm256_fmadd_ps(x_hi, w1_hi, row[1]);
            }
        }
        let mut all = [[_mm256_setzero_ps(); 2]; MR_AVX2_WIDEN];
        all[..R].copy_from_slice(&acc);
        all
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tests::pseudo_random as data;

    #[test]
    fn the_panel_choice_is_timed_and_named() {
        let speedup = bf16_speedup();
        assert!(speedup.is_finite() && speedup > 0.0, "{speedup}");
        // Whatever was chosen (timed, or set by CHRONOS2_BF16_PANELS), the name says which.
        let name = path_name();
        if packed_bf16_pays() {
            assert!(name.starts_with(isa().name) && !name.contains("f32 panels"), "{name}");
        } else {
            assert!(name.starts_with(crate::packed::isa_name()), "{name}");
            assert!(name.contains("(bf16-rounded f32 panels"), "{name}");
        }
    }

    #[test]
    fn the_dispatched_conversions_match_the_plain_ones() {
        // Ties, denormals, NaN, infinities and odd lengths, through every width.
        let mut x = data(1001, 9);
        x.extend([1.0 + 1.0 / 256.0, 1e-40, -1e-39, f32::NAN, f32::INFINITY, -0.0, 3.0e38]);
        for len in [0, 1, 2, 15, 16, 17, 33, x.len()] {
            let row = &x[..len];
            let (mut plain, mut fast) = (vec![0u32; pairs(len)], vec![0u32; pairs(len)]);
            row_to_pairs(row, &mut plain);
            row_converter()(row, &mut fast);
            assert_eq!(plain, fast, "pairs, length {len}");
            let (mut plain, mut fast) = (vec![0.0f32; len], vec![0.0f32; len]);
            round_slice(row, &mut plain);
            round_bf16_into(row, &mut fast, &Pool::new(2));
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&plain), bits(&fast), "rounded, length {len}");
        }
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3F80);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1.0).
        assert_eq!(to_bf16(1.0 + 1.0 / 256.0), 0x3F80);
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even (1 + 2^-6).
        assert_eq!(round_bf16(1.0 + 3.0 / 256.0), 1.0 + 1.0 / 64.0);
        assert!(round_bf16(f32::NAN).is_nan());
        assert_eq!(round_bf16(-2.5), -2.5);
    }

    /// Shapes `(m, k, n)` giving every row count up to 12 (one tile of every kernel) with
    /// 9, 24 and 33 columns and depths 1, 6 and 67.
    pub(crate) fn odd_tiles() -> impl Iterator<Item = (usize, usize, usize)> {
        (1..=12).flat_map(|m| [1, 6, 67].into_iter().flat_map(move |k| [9, 24, 33].map(|n| (m, k, n))))
    }

    /// The plain answer: bf16-rounded operands, products and sums in f64.
    fn expected(x: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut y = vec![0.0f32; m * n];
        for r in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|p| f64::from(round_bf16(x[r * k + p])) * f64::from(round_bf16(w[j * k + p])))
                    .sum();
                y[r * n + j] = dot as f32;
            }
        }
        y
    }

    #[test]
    fn every_kernel_on_this_machine_matches_the_rounded_product() {
        // Odd k (padding), tails in every dimension, many rows, and every tile height with
        // column counts below, at and past each vector width.
        for (m, k, n) in [(1, 1, 1), (5, 7, 33), (9, 300, 40), (300, 64, 70)]
            .into_iter()
            .chain(odd_tiles())
        {
            let (x, w) = (data(m * k, 11), data(n * k, 12));
            let packed = PackedBf16::new(&w, n, k);
            let mut pairs_x = vec![0u32; m * pairs(k)];
            to_bf16_pairs(&x, k, m, k, &mut pairs_x, &Pool::new(2));
            let want = expected(&x, &w, m, n, k);
            for isa in available() {
                let mut got = vec![0.0f32; m * n];
                let kp = pairs(k);
                for r0 in (0..m).step_by(isa.mr) {
                    let rows = isa.mr.min(m - r0);
                    for panel in 0..n.div_ceil(NR) {
                        let panel_cols = NR.min(n - panel * NR);
                        for column in (0..panel_cols).step_by(isa.width) {
                            // SAFETY: the buffers have exactly the shapes passed; `available`
                            // lists only kernels this CPU runs.
                            unsafe {
                                (isa.kernel)(
                                    pairs_x.as_ptr().add(r0 * kp),
                                    kp,
                                    packed.data.as_ptr().add(panel * NR * kp + column),
                                    kp,
                                    got.as_mut_ptr().add(r0 * n + panel * NR + column),
                                    n,
                                    rows,
                                    isa.width.min(panel_cols - column),
                                    false,
                                )
                            };
                        }
                    }
                }
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                        "{} {m}x{k}x{n} [{i}]: {a} vs {b}",
                        isa.name
                    );
                }
            }
        }
    }

    #[test]
    fn the_parallel_product_adds_bias_and_accumulates() {
        // Many rows (row blocks), and a depth of more than one slice.
        for (m, k, n) in [(700, 96, 50), (5, 2 * 2 * KC_PAIRS + 9, 40)] {
            let (x, w, bias) = (data(m * k, 1), data(n * k, 2), data(n, 3));
            let packed = PackedBf16::new(&w, n, k);
            let mut pairs_x = vec![0u32; m * pairs(k)];
            to_bf16_pairs(&x, k, m, k, &mut pairs_x, &Pool::new(2));
            let init = data(m * n, 4);
            let mut y = init.clone();
            linear_bf16(
                &mut y,
                n,
                &pairs_x,
                pairs(k),
                m,
                &packed,
                Some(&bias),
                true,
                &Pool::new(2),
            );
            let want = expected(&x, &w, m, n, k);
            // f32 sums of k products: the rounding grows with the depth.
            let tolerance = 1e-5 * (k as f32 / 96.0).max(1.0);
            for i in 0..m * n {
                let e = init[i] + want[i] + bias[i % n];
                assert!(
                    (y[i] - e).abs() <= tolerance * (1.0 + e.abs()),
                    "[{i}]: {} vs {e}",
                    y[i]
                );
            }
            assert_eq!(packed.bytes(), n.div_ceil(NR) * NR * pairs(k) * 4);
        }
    }
}
