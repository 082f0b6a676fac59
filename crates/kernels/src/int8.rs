//! int8 linear layers: weights quantized once per output channel (symmetric int8, f32
//! scales), activations quantized per row at every call (symmetric, stored as `u8` with a zero
//! point of 128 so that `VPDPBUSD`'s unsigned × signed products apply), products summed exactly
//! in i32, and the scales applied in the epilogue together with the residual add.
//!
//! For a row r of x and an output column j:
//!
//! ```text
//! y[r][j] = (s_r · s_j) · (Σ_p u[r][p] · q[j][p] − 128 · Σ_p q[j][p])   (+ y[r][j] with accumulate)
//! ```
//!
//! with `u = q_x + 128`. The integer sum is exact on every path, and the epilogue is the same
//! f32 operations everywhere (a product, then one fused multiply-add when accumulating), so
//! the AVX512_VNNI, AVX-VNNI, AVX2 and scalar kernels and the plain reference
//! ([`linear_reference`]) give bit-identical results. The AVX2 kernel multiplies signed values
//! (`q_x = u − 128`) with `VPMADDUBSW` on magnitudes and signs, so its sums need no offset. Quantization rounds to nearest, ties to even, and clamps to
//! ±127 (the symmetric range; -128 is never used).

use std::sync::OnceLock;

use crate::packed::{check_len, drive, Shape, TileCall, NR};
use crate::pool::Pool;
use crate::storage::{Storage, StorageError};
use crate::IsaLevel;

/// The zero point of quantized activations (`u = q + 128`).
pub const ZERO_POINT: i32 = 128;
/// Largest quantized magnitude.
const QMAX: f32 = 127.0;

/// Bytes per quantized activation row of depth `k`: k rounded up to whole quads (4 bytes, one
/// `VPDPBUSD` lane).
pub fn row_bytes(k: usize) -> usize {
    k.div_ceil(4) * 4
}

/// Bytes of a packed int8 `[n, k]` matrix.
pub fn packed_int8_len(n: usize, k: usize) -> usize {
    n.div_ceil(NR) * NR * row_bytes(k)
}

/// 1.5 · 2^23: adding and subtracting it rounds an f32 of magnitude below 2^22 to an integer,
/// to nearest with ties to even (the FPU's rounding), without a library call.
const ROUNDER: f32 = 12_582_912.0;

/// The quantized value of `v` at inverse scale `inverse` (`127 / amax`), in [-127, 127]: the
/// product rounded to nearest, ties to even, as `VCVTPS2DQ` rounds.
#[inline]
fn quantize(v: f32, inverse: f32) -> i32 {
    // |v · inverse| <= 127 (up to rounding) for every value of the row; NaN becomes 0 (`as`
    // maps NaN to 0), and the clamp keeps ±amax at ±127.
    let scaled = (v * inverse).clamp(-QMAX, QMAX);
    ((scaled + ROUNDER) - ROUNDER) as i32
}

/// The scale (`amax / 127`) and inverse scale (`127 / amax`, 0 for an all-zero row) of `row`.
#[inline]
fn scales_of(amax: f32) -> (f32, f32) {
    if amax > 0.0 && amax.is_finite() {
        (amax / QMAX, QMAX / amax)
    } else {
        (0.0, 0.0)
    }
}

/// Quantizes one weight row (an output channel) into `out` (k values); returns its scale.
///
/// # Panics
/// If `out` is shorter than `row`.
pub fn quantize_weight_row(row: &[f32], out: &mut [i8]) -> f32 {
    let amax = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let (scale, inverse) = scales_of(amax);
    for (slot, &v) in out[..row.len()].iter_mut().zip(row) {
        *slot = quantize(v, inverse) as i8;
    }
    scale
}

/// Quantizes one activation row into `out` (`row_bytes(k)` bytes, the padding set to the zero
/// point); returns its scale. The plain version of [`quantize_rows`].
///
/// # Panics
/// If `out` is shorter than `row_bytes(row.len())`.
pub fn quantize_row(row: &[f32], out: &mut [u8]) -> f32 {
    let amax = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let (scale, inverse) = scales_of(amax);
    let out = &mut out[..row_bytes(row.len())];
    for (slot, &v) in out.iter_mut().zip(row) {
        *slot = (quantize(v, inverse) + ZERO_POINT) as u8;
    }
    out[row.len()..].fill(ZERO_POINT as u8);
    scale
}

/// Quantizes the `m x k` matrix `x` (row stride `ldx`) into `out` (`m` rows of
/// `row_bytes(k)` bytes) and `scales` (`m`), rows split over `pool`; identical to
/// [`quantize_row`] row by row.
///
/// # Panics
/// If a slice is too short.
pub fn quantize_rows(x: &[f32], ldx: usize, m: usize, k: usize, out: &mut [u8], scales: &mut [f32], pool: &Pool) {
    let width = row_bytes(k);
    assert!(
        out.len() >= m * width && scales.len() >= m,
        "quantize_rows: output too short"
    );
    assert!(m == 0 || x.len() >= (m - 1) * ldx + k, "quantize_rows: input too short");
    if m == 0 {
        return;
    }
    let quantizer = quantizer();
    let rows_per_chunk = 32;
    let scales = crate::pool::SharedMut::new(&mut scales[..m]);
    pool.for_each_chunk(&mut out[..m * width], rows_per_chunk * width, &|chunk, part| {
        for (i, row_out) in part.chunks_exact_mut(width).enumerate() {
            let r = chunk * rows_per_chunk + i;
            let scale = quantizer(&x[r * ldx..r * ldx + k], row_out);
            // SAFETY: each row index is written by the one task that owns its chunk, and the
            // scales slice outlives the call.
            unsafe { *scales.get().add(r) = scale };
        }
    });
}

type Quantizer = fn(&[f32], &mut [u8]) -> f32;

/// The widest build of [`quantize_row`] this CPU runs (bit-identical results).
fn quantizer() -> Quantizer {
    avx512_or!(Quantizer, x86::quantize_row_avx512_safe, quantize_row)
}

/// A `[n, k]` weight matrix quantized per output channel and packed for [`linear_int8`]:
/// panels of [`NR`] columns, each quad of depth (4 bytes) of a column contiguous.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedInt8 {
    data: Storage<i8>,
    /// Per column (padded to whole panels): the scale `amax / 127`.
    scales: Storage<f32>,
    /// Per column (padded): `128 · Σ_p q[j][p]`, the zero point's share of the sum.
    offsets: Storage<i32>,
    n: usize,
    k: usize,
}

impl PackedInt8 {
    /// Quantizes and packs a row-major `[n, k]` weight.
    ///
    /// # Panics
    /// If `weight` is shorter than `n * k`.
    pub fn new(weight: &[f32], n: usize, k: usize) -> Self {
        assert!(weight.len() >= n * k, "PackedInt8: weight too short");
        let (width, padded) = (row_bytes(k), n.div_ceil(NR) * NR);
        let mut data = vec![0i8; packed_int8_len(n, k)];
        let mut scales = vec![0.0f32; padded];
        let mut offsets = vec![0i32; padded];
        let mut row = vec![0i8; k];
        for j in 0..n {
            scales[j] = quantize_weight_row(&weight[j * k..(j + 1) * k], &mut row);
            offsets[j] = ZERO_POINT * row.iter().map(|&q| i32::from(q)).sum::<i32>();
            let (panel, c) = (j / NR, j % NR);
            let base = panel * NR * width;
            for (p, &q) in row.iter().enumerate() {
                data[base + (p / 4) * NR * 4 + c * 4 + p % 4] = q;
            }
        }
        Self {
            data: data.into(),
            scales: scales.into(),
            offsets: offsets.into(),
            n,
            k,
        }
    }

    /// A matrix already packed (the parts of [`parts`](Self::parts), e.g. read back from a
    /// cache file).
    ///
    /// # Errors
    /// If a part's length does not fit `n x k`.
    pub fn from_parts(
        data: Storage<i8>,
        scales: Storage<f32>,
        offsets: Storage<i32>,
        n: usize,
        k: usize,
    ) -> Result<Self, StorageError> {
        let padded = n.div_ceil(NR) * NR;
        check_len(data.len(), packed_int8_len(n, k), n, k)?;
        check_len(scales.len(), padded, n, k)?;
        check_len(offsets.len(), padded, n, k)?;
        Ok(Self {
            data,
            scales,
            offsets,
            n,
            k,
        })
    }

    /// The packed values, the column scales and the zero-point offsets.
    pub fn parts(&self) -> (&Storage<i8>, &Storage<f32>, &Storage<i32>) {
        (&self.data, &self.scales, &self.offsets)
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
        self.data.len() + 4 * (self.scales.len() + self.offsets.len())
    }
}

/// Activations quantized by [`quantize_rows`]: `m` rows of `row_bytes(k)` bytes at stride
/// `ld` bytes, and one scale per row.
#[derive(Clone, Copy, Debug)]
pub struct QuantizedRows<'a> {
    /// The biased values (`q + 128`).
    pub data: &'a [u8],
    /// Row stride in bytes (at least `row_bytes(k)`).
    pub ld: usize,
    /// Per row, the scale.
    pub scales: &'a [f32],
}

/// `y[m, n] (+)= dequantized(x · Wᵀ) (+ bias)` for activations `x` quantized by
/// [`quantize_rows`] and W packed by [`PackedInt8`]; split over `pool` as
/// [`linear`](crate::packed::linear).
///
/// # Panics
/// If a slice is too short for its shape or the bias length is not n.
#[allow(clippy::too_many_arguments, reason = "a strided GEMM with its options")]
pub fn linear_int8(
    y: &mut [f32],
    ldy: usize,
    x: QuantizedRows<'_>,
    m: usize,
    w: &PackedInt8,
    bias: Option<&[f32]>,
    accumulate: bool,
    pool: &Pool,
) {
    let (n, width) = (w.n, row_bytes(w.k));
    assert!(x.ld >= width && ldy >= n, "linear_int8: strides smaller than widths");
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        x.data.len() >= (m - 1) * x.ld + width && x.scales.len() >= m,
        "linear_int8: x is too short for {m} rows"
    );
    let isa = *isa();
    let quads = width / 4;
    let tile = |t: &TileCall| {
        // SAFETY: `drive` passes tiles inside the checked shapes (one slice covering the whole
        // depth): rows [r0, r0 + rows) of x and their scales, the columns [column, column +
        // cols) of one panel of w with their scales and offsets; `out` is the tile's first
        // element of y, written by this call alone; `isa()` returns only kernels this CPU runs.
        unsafe {
            (isa.kernel)(
                Operands {
                    a: x.data.as_ptr().add(t.r0 * x.ld),
                    lda: x.ld,
                    row_scales: x.scales.as_ptr().add(t.r0),
                    panel: w.data.as_ptr().add(t.panel * NR * width + 4 * t.column),
                    quads,
                    col_scales: w.scales.as_ptr().add(t.panel * NR + t.column),
                    offsets: w.offsets.as_ptr().add(t.panel * NR + t.column),
                },
                t.out,
                ldy,
                t.rows,
                t.cols,
                t.accumulate,
            );
        }
    };
    // One depth slice: the epilogue needs the whole integer sum.
    let shape = Shape {
        m,
        n,
        depth: quads,
        slice: quads.max(1),
        mr: isa.mr,
        width: isa.width,
    };
    drive(y, ldy, shape, bias, accumulate, pool, &tile);
}

/// The inputs of a microkernel call.
#[derive(Clone, Copy)]
struct Operands {
    /// First activation row (biased bytes), `lda` bytes apart.
    a: *const u8,
    lda: usize,
    /// Scale of each of the rows.
    row_scales: *const f32,
    /// The panel: `quads` groups of `NR` columns x 4 bytes.
    panel: *const i8,
    quads: usize,
    /// Scale and zero-point offset of each of the panel's `NR` columns.
    col_scales: *const f32,
    offsets: *const i32,
}

/// A microkernel: rows x (up to NR) columns of y from one panel, the whole depth, epilogue
/// included.
type Kernel = unsafe fn(Operands, *mut f32, usize, usize, usize, bool);

/// The epilogue of one output: `(s_r · s_j) · (sum − offset)`, fused-added to the old value
/// when accumulating. Every kernel computes exactly this.
#[inline]
fn finish(sum: i32, offset: i32, row_scale: f32, col_scale: f32, old: Option<f32>) -> f32 {
    let scale = row_scale * col_scale;
    let value = (sum - offset) as f32;
    match old {
        Some(old) => scale.mul_add(value, old),
        None => scale * value,
    }
}

/// Applies [`finish`] to a tile of integer sums (`rows x NR`).
///
/// # Safety
/// As the kernels: `c` writable for `rows` rows of `cols` values at stride `ldc`, the scale
/// and offset pointers readable for `rows` / `NR` values.
unsafe fn store_sums(sums: &[[i32; NR]], o: &Operands, c: *mut f32, ldc: usize, cols: usize, accumulate: bool) {
    for (r, row) in sums.iter().enumerate() {
        let row_scale = *o.row_scales.add(r);
        for (j, &sum) in row.iter().enumerate().take(cols) {
            let out = c.add(r * ldc + j);
            let old = if accumulate { Some(*out) } else { None };
            *out = finish(sum, *o.offsets.add(j), row_scale, *o.col_scales.add(j), old);
        }
    }
}

/// The scalar microkernel (the reference the SIMD ones are tested against).
///
/// # Safety
/// `a` readable for `rows` rows of `4 · quads` bytes at stride `lda`, the panel for
/// `quads · NR · 4` bytes, `c` writable for `rows` rows of `cols <= NR` values at stride
/// `ldc`, scales and offsets as [`store_sums`].
unsafe fn kernel_scalar(o: Operands, c: *mut f32, ldc: usize, rows: usize, cols: usize, accumulate: bool) {
    let mut sums = vec![[0i32; NR]; rows];
    for (r, row) in sums.iter_mut().enumerate() {
        let a = std::slice::from_raw_parts(o.a.add(r * o.lda), 4 * o.quads);
        for q in 0..o.quads {
            let quad = std::slice::from_raw_parts(o.panel.add(q * NR * 4), NR * 4);
            for (j, slot) in row.iter_mut().enumerate() {
                for b in 0..4 {
                    *slot += i32::from(a[4 * q + b]) * i32::from(quad[4 * j + b]);
                }
            }
        }
    }
    store_sums(&sums, &o, c, ldc, cols, accumulate);
}

/// An int8 microkernel and its row count.
#[derive(Clone, Copy)]
pub struct Int8Isa {
    kernel: Kernel,
    /// Rows per call.
    mr: usize,
    /// Columns per call: a whole panel, or half of one.
    width: usize,
    /// The instruction set, e.g. `avx512vnni`.
    pub name: &'static str,
}

/// Whether this CPU has AVX512_VNNI (`VPDPBUSD` on 512-bit vectors).
fn has_avx512_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether this CPU has AVX-VNNI (`VPDPBUSD` on 256-bit vectors, VEX-encoded).
fn has_avx_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("avxvnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Every int8 microkernel this CPU can run, fastest first (the scalar one always last).
pub fn available() -> Vec<Int8Isa> {
    available_up_to(IsaLevel::detected())
}

/// The int8 microkernels up to `level` (AVX512_VNNI counts as part of the `avx512` levels),
/// fastest first.
fn available_up_to(level: IsaLevel) -> Vec<Int8Isa> {
    let mut all = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if level >= IsaLevel::Avx512 && has_avx512_vnni() {
            all.push(Int8Isa {
                kernel: x86::kernel_vnni,
                mr: x86::MR_VNNI,
                width: NR,
                name: "avx512vnni",
            });
        }
        if level >= IsaLevel::AvxVnni && has_avx_vnni() {
            all.push(Int8Isa {
                kernel: x86::kernel_vnni_avx,
                mr: x86::MR_VNNI_AVX,
                width: x86::HALF,
                name: "avx-vnni",
            });
        }
        if level >= IsaLevel::Avx2 {
            all.push(Int8Isa {
                kernel: x86::kernel_avx2,
                mr: x86::MR_AVX2,
                width: x86::HALF,
                name: "avx2 (vpmaddubsw)",
            });
        }
    }
    all.push(Int8Isa {
        kernel: kernel_scalar,
        mr: 4,
        width: NR,
        name: "scalar",
    });
    all
}

fn isa() -> &'static Int8Isa {
    static ISA: OnceLock<Int8Isa> = OnceLock::new();
    ISA.get_or_init(|| available_up_to(IsaLevel::active())[0])
}

/// The int8 instruction set the planned executor uses on this machine.
pub fn isa_name() -> &'static str {
    isa().name
}

/// The plain int8 product, for readers and as the eager executor's reference: quantizes each
/// weight row and each input row as [`PackedInt8`] and [`quantize_row`] do, sums in i32 and
/// applies the same epilogue, then adds the bias. `x` is `(m, k)` dense, `weight` `[n, k]`
/// row-major, `y` `(m, n)` at row stride `ldy`.
///
/// # Panics
/// If a slice is too short for its shape or the bias length is not n.
#[allow(clippy::too_many_arguments, reason = "a strided product with its options")]
pub fn linear_reference(
    y: &mut [f32],
    ldy: usize,
    x: &[f32],
    m: usize,
    weight: &[f32],
    n: usize,
    k: usize,
    bias: Option<&[f32]>,
    accumulate: bool,
) {
    let mut q = vec![0i8; n * k];
    let mut scales = vec![0.0f32; n];
    for j in 0..n {
        scales[j] = quantize_weight_row(&weight[j * k..(j + 1) * k], &mut q[j * k..(j + 1) * k]);
    }
    let offsets: Vec<i32> = q
        .chunks(k.max(1))
        .take(n)
        .map(|row| ZERO_POINT * row.iter().map(|&v| i32::from(v)).sum::<i32>())
        .collect();
    let mut u = vec![0u8; row_bytes(k)];
    for r in 0..m {
        let row_scale = quantize_row(&x[r * k..(r + 1) * k], &mut u);
        let out = &mut y[r * ldy..r * ldy + n];
        for j in 0..n {
            let sum: i32 = (0..k).map(|p| i32::from(u[p]) * i32::from(q[j * k + p])).sum();
            let old = if accumulate { Some(out[j]) } else { None };
            out[j] = finish(sum, offsets[j], row_scale, scales[j], old);
            if let Some(b) = bias {
                out[j] += b[j];
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{scales_of, Operands, NR, ZERO_POINT};
    pub(super) use crate::packed::x86::HALF;
    use crate::packed::x86::{column_masks, column_masks_avx2};

    /// [`quantize_row_avx512`] behind the dispatcher's safe signature.
    pub(super) fn quantize_row_avx512_safe(row: &[f32], out: &mut [u8]) -> f32 {
        assert!(
            out.len() >= super::row_bytes(row.len()),
            "quantize_row: output too short"
        );
        // SAFETY: the dispatcher picks this function only where AVX-512F runs; lengths checked.
        unsafe { quantize_row_avx512(row, out) }
    }

    /// AVX-512F [`super::quantize_row`]: the same amax, the same f32 product, the same
    /// rounding (the default to-nearest-even of `VCVTPS2DQ`) and clamp.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; `out` holds at least `row_bytes(row.len())` bytes.
    #[target_feature(enable = "avx512f")]
    unsafe fn quantize_row_avx512(row: &[f32], out: &mut [u8]) -> f32 {
        let k = row.len();
        let chunks = k / 16;
        let mut amax = _mm512_setzero_ps();
        for i in 0..chunks {
            amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_loadu_ps(row.as_ptr().add(16 * i))));
        }
        let mut amax = _mm512_reduce_max_ps(amax);
        for &v in &row[16 * chunks..] {
            amax = amax.max(v.abs());
        }
        let (scale, inverse) = scales_of(amax);
        let (inv, low, high, zero) = (
            _mm512_set1_ps(inverse),
            _mm512_set1_epi32(-127),
            _mm512_set1_epi32(127),
            _mm512_set1_epi32(ZERO_POINT),
        );
        for i in 0..chunks {
            let v = _mm512_mul_ps(_mm512_loadu_ps(row.as_ptr().add(16 * i)), inv);
            let q = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(v), low), high);
            _mm_storeu_si128(
                out.as_mut_ptr().add(16 * i).cast(),
                _mm512_cvtepi32_epi8(_mm512_add_epi32(q, zero)),
            );
        }
        for (slot, &v) in out[16 * chunks..k].iter_mut().zip(&row[16 * chunks..]) {
            *slot = (super::quantize(v, inverse) + ZERO_POINT) as u8;
        }
        out[k..super::row_bytes(k)].fill(ZERO_POINT as u8);
        scale
    }

    /// Rows of the AVX512_VNNI microkernel: 24 accumulators, 2 weight vectors and a broadcast
    /// take 27 of the 32 vector registers.
    pub(super) const MR_VNNI: usize = 12;

    /// AVX512_VNNI microkernel, up to [`MR_VNNI`] rows x 32 columns: one `VPDPBUSD` per quad,
    /// row and 16 columns; the epilogue in vectors (the same operations as [`super::finish`]).
    ///
    /// # Safety
    /// As [`super::kernel_scalar`], and the CPU must support AVX-512F and AVX512_VNNI.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) unsafe fn kernel_vnni(o: Operands, c: *mut f32, ldc: usize, rows: usize, cols: usize, accumulate: bool) {
        let acc = by_rows!(rows, |R| sums_vnni::<{ R }>(&o), [1 2 3 4 5 6 7 8 9 10 11 12]);
        store_vnni(&o, &acc[..rows], c, ldc, cols, accumulate);
    }

    /// The integer sums of a tile of `R` rows.
    #[target_feature(enable = "avx512f,avx512vnni")]
    #[inline]
    unsafe fn sums_vnni<const R: usize>(o: &Operands) -> [[__m512i; 2]; MR_VNNI] {
        let mut acc = [[_mm512_setzero_si512(); 2]; R];
        for q in 0..o.quads {
            let w0 = _mm512_loadu_si512(o.panel.add(q * NR * 4).cast());
            let w1 = _mm512_loadu_si512(o.panel.add(q * NR * 4 + 64).cast());
            for (r, row) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_epi32(o.a.add(r * o.lda + 4 * q).cast::<i32>().read_unaligned());
                row[0] = _mm512_dpbusd_epi32(row[0], x, w0);
                row[1] = _mm512_dpbusd_epi32(row[1], x, w1);
            }
        }
        let mut all = [[_mm512_setzero_si512(); 2]; MR_VNNI];
        all[..R].copy_from_slice(&acc);
        all
    }

    /// The epilogue of [`kernel_vnni`] in vectors: the same operations as [`super::finish`].
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn store_vnni(o: &Operands, acc: &[[__m512i; 2]], c: *mut f32, ldc: usize, cols: usize, accumulate: bool) {
        let masks = column_masks(cols);
        for (r, row) in acc.iter().enumerate() {
            let row_scale = _mm512_set1_ps(*o.row_scales.add(r));
            for (half, &sum) in row.iter().enumerate() {
                let mask = masks[half];
                if mask == 0 {
                    continue;
                }
                let offsets = _mm512_loadu_si512(o.offsets.add(16 * half).cast());
                let scale = _mm512_mul_ps(row_scale, _mm512_loadu_ps(o.col_scales.add(16 * half)));
                let value = _mm512_cvtepi32_ps(_mm512_sub_epi32(sum, offsets));
                let out = c.add(r * ldc + 16 * half);
                let result = if accumulate {
                    _mm512_fmadd_ps(scale, value, _mm512_maskz_loadu_ps(mask, out))
                } else {
                    _mm512_mul_ps(scale, value)
                };
                _mm512_mask_storeu_ps(out, mask, result);
            }
        }
    }

    /// Rows of the AVX2 microkernel: per 16-column half panel, 2R accumulators, 2 weight
    /// vectors, the row's broadcast and its magnitude, a product and 2 constants fit 16 ymm
    /// registers at 4.
    pub(super) const MR_AVX2: usize = 4;

    /// AVX2 microkernel, up to [`MR_AVX2`] rows x [`HALF`] columns (the operands point at the
    /// first column of a half panel), exact. The activation bytes are turned back into
    /// signed values (`u ^ 0x80 = q`), and `VPMADDUBSW(|q|, sign(w, q))` multiplies them with
    /// the weights: both magnitudes are at most 127, so the pair sums (at most 2·127² = 32258)
    /// never saturate i16; `VPMADDWD` by ones widens them to i32. The sums are then `Σ q·w`
    /// directly (no zero-point offset), and the epilogue is [`super::finish`]'s.
    ///
    /// # Safety
    /// As [`super::kernel_scalar`] with `cols <= HALF`, and the CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn kernel_avx2(o: Operands, c: *mut f32, ldc: usize, rows: usize, cols: usize, accumulate: bool) {
        let acc = by_rows!(rows, |R| sums_avx2::<{ R }>(&o), [1 2 3 4]);
        store_avx2(&o, &acc[..rows], false, c, ldc, cols, accumulate);
    }

    /// The signed sums `Σ q·w` of a [`kernel_avx2`] tile of `R` rows (in an array sized for
    /// the largest 256-bit int8 tile).
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn sums_avx2<const R: usize>(o: &Operands) -> [[__m256i; 2]; MR_VNNI_AVX] {
        let ones = _mm256_set1_epi16(1);
        let flip = _mm256_set1_epi8(ZERO_POINT as u8 as i8);
        let mut acc = [[_mm256_setzero_si256(); 2]; R];
        for q in 0..o.quads {
            let quad = o.panel.add(q * NR * 4);
            let w0 = _mm256_loadu_si256(quad.cast());
            let w1 = _mm256_loadu_si256(quad.add(32).cast());
            for (r, row) in acc.iter_mut().enumerate() {
                let biased = _mm256_set1_epi32(o.a.add(r * o.lda + 4 * q).cast::<i32>().read_unaligned());
                let x = _mm256_xor_si256(biased, flip);
                let magnitude = _mm256_abs_epi8(x);
                let p0 = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(w0, x));
                let p1 = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(w1, x));
                row[0] = _mm256_add_epi32(row[0], _mm256_madd_epi16(p0, ones));
                row[1] = _mm256_add_epi32(row[1], _mm256_madd_epi16(p1, ones));
            }
        }
        let mut all = [[_mm256_setzero_si256(); 2]; MR_VNNI_AVX];
        all[..R].copy_from_slice(&acc);
        all
    }

    /// Rows of the AVX-VNNI microkernel: 12 accumulators, 2 weight vectors and a broadcast
    /// take 15 of the 16 ymm registers.
    pub(super) const MR_VNNI_AVX: usize = 6;

    /// Defines a 256-bit `VPDPBUSD`-style microkernel `$kernel` (and its row loop `$sums`)
    /// compiled with `$features`, whose quad products are `$dot(acc, x, w)`: the AVX-VNNI
    /// kernel, and in tests the same kernel over an AVX2 emulation of the instruction, so that
    /// its tiles and epilogue run on CPUs without AVX-VNNI too.
    macro_rules! vnni_avx_kernel {
        ($features:literal, $kernel:ident, $sums:ident, $dot:path) => {
            /// A 256-bit `VPDPBUSD` microkernel, up to [`MR_VNNI_AVX`] rows x [`HALF`] columns
            /// (the operands point at the first column of a half panel): the same unsigned ×
            /// signed quads and zero-point offsets as [`kernel_vnni`].
            ///
            /// # Safety
            /// As [`super::kernel_scalar`] with `cols <= HALF`, and the CPU must support the
            /// enabled features.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $kernel(
                o: Operands,
                c: *mut f32,
                ldc: usize,
                rows: usize,
                cols: usize,
                accumulate: bool,
            ) {
                let acc = by_rows!(rows, |R| $sums::<{ R }>(&o), [1 2 3 4 5 6]);
                store_avx2(&o, &acc[..rows], true, c, ldc, cols, accumulate);
            }

            /// The biased sums `Σ u·w` of a tile of `R` rows.
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn $sums<const R: usize>(o: &Operands) -> [[__m256i; 2]; MR_VNNI_AVX] {
                let mut acc = [[_mm256_setzero_si256(); 2]; R];
                for q in 0..o.quads {
                    let quad = o.panel.add(q * NR * 4);
                    let w0 = _mm256_loadu_si256(quad.cast());
                    let w1 = _mm256_loadu_si256(quad.add(32).cast());
                    for (r, row) in acc.iter_mut().enumerate() {
                        let x = _mm256_set1_epi32(o.a.add(r * o.lda + 4 * q).cast::<i32>().read_unaligned());
                        row[0] = $dot(row[0], x, w0);
                        row[1] = $dot(row[1], x, w1);
                    }
                }
                let mut all = [[_mm256_setzero_si256(); 2]; MR_VNNI_AVX];
                all[..R].copy_from_slice(&acc);
                all
            }
        };
    }

    vnni_avx_kernel!(
        "avx2,fma,avxvnni",
        kernel_vnni_avx,
        sums_vnni_avx,
        _mm256_dpbusd_avx_epi32
    );

    #[cfg(test)]
    vnni_avx_kernel!("avx2,fma", kernel_vnni_emulated, sums_vnni_emulated, dpbusd_emulated);

    /// `VPDPBUSD` on 256-bit vectors emulated with AVX2 (for tests): per 32-bit lane, `acc` plus
    /// the four products of `u`'s unsigned bytes and `w`'s signed bytes, exactly.
    #[cfg(test)]
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn dpbusd_emulated(acc: __m256i, u: __m256i, w: __m256i) -> __m256i {
        let ones = _mm256_set1_epi16(1);
        // Even and odd bytes as 16-bit values: unsigned for u, signed for w.
        let u_even = _mm256_and_si256(u, _mm256_set1_epi16(0xFF));
        let u_odd = _mm256_srli_epi16::<8>(u);
        let w_even = _mm256_srai_epi16::<8>(_mm256_slli_epi16::<8>(w));
        let w_odd = _mm256_srai_epi16::<8>(w);
        // Each product fits i16 (|u·w| <= 255·127); VPMADDWD by ones adds neighbours in i32.
        let even = _mm256_madd_epi16(_mm256_mullo_epi16(u_even, w_even), ones);
        let odd = _mm256_madd_epi16(_mm256_mullo_epi16(u_odd, w_odd), ones);
        _mm256_add_epi32(acc, _mm256_add_epi32(even, odd))
    }

    /// The epilogue of the 256-bit kernels (one half panel), in vectors: the same operations
    /// as [`super::finish`] (with `biased`, the sums still hold the zero point's offsets,
    /// which are subtracted first).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn store_avx2(
        o: &Operands,
        acc: &[[__m256i; 2]],
        biased: bool,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        accumulate: bool,
    ) {
        let masks = column_masks_avx2(cols);
        for (r, row) in acc.iter().enumerate() {
            let row_scale = _mm256_set1_ps(*o.row_scales.add(r));
            for (v, (&sum, &mask)) in row.iter().zip(&masks).enumerate() {
                if cols <= 8 * v {
                    break;
                }
                let column = 8 * v;
                let sum = if biased {
                    _mm256_sub_epi32(sum, _mm256_loadu_si256(o.offsets.add(column).cast()))
                } else {
                    sum
                };
                let scale = _mm256_mul_ps(row_scale, _mm256_loadu_ps(o.col_scales.add(column)));
                let value = _mm256_cvtepi32_ps(sum);
                let out = c.add(r * ldc + 8 * v);
                let result = if accumulate {
                    _mm256_fmadd_ps(scale, value, _mm256_maskload_ps(out, mask))
                } else {
                    _mm256_mul_ps(scale, value)
                };
                _mm256_maskstore_ps(out, mask, result);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::pseudo_random as data;

    #[test]
    fn quantization_rounds_to_nearest_even_and_clamps_symmetrically() {
        let mut q = [0i8; 5];
        // amax 127: scale 1, so values quantize to themselves, halves to even.
        let scale = quantize_weight_row(&[127.0, -127.0, 2.5, 3.5, -0.5], &mut q);
        assert_eq!(scale, 1.0);
        assert_eq!(q, [127, -127, 2, 4, 0]);
        let mut u = [0u8; 8];
        assert_eq!(quantize_row(&[0.0; 5], &mut u), 0.0);
        assert_eq!(u, [128; 8]);
        let scale = quantize_row(&[-2.0, 1.0, 0.0], &mut u);
        assert_eq!(scale, 2.0 / 127.0);
        assert_eq!(&u[..4], &[1, 128 + 64, 128, 128]);
    }

    #[test]
    fn the_simd_quantizer_matches_the_plain_one() {
        for k in [1, 15, 16, 17, 768, 3072] {
            let x = data(3 * k, k as u32);
            let (mut plain, mut fast) = (vec![0u8; 3 * row_bytes(k)], vec![0u8; 3 * row_bytes(k)]);
            let (mut s_plain, mut s_fast) = (vec![0.0f32; 3], vec![0.0f32; 3]);
            for r in 0..3 {
                s_plain[r] = quantize_row(&x[r * k..(r + 1) * k], &mut plain[r * row_bytes(k)..]);
            }
            quantize_rows(&x, k, 3, k, &mut fast, &mut s_fast, &Pool::new(2));
            assert_eq!(plain, fast, "k = {k}");
            assert_eq!(s_plain, s_fast, "k = {k}");
        }
    }

    #[test]
    fn every_kernel_on_this_machine_matches_the_reference_bit_for_bit() {
        // k not a multiple of 4 (padding), tails in every dimension, many rows, and every tile
        // height with column counts below, at and past each vector width.
        for (m, k, n) in [(1, 1, 1), (5, 7, 33), (9, 300, 40), (70, 64, 70)]
            .into_iter()
            .chain(crate::bf16::tests::odd_tiles())
        {
            let (x, w, bias) = (data(m * k, 21), data(n * k, 22), data(n, 23));
            let init = data(m * n, 24);
            let mut want = init.clone();
            linear_reference(&mut want, n, &x, m, &w, n, k, Some(&bias), true);
            let packed = PackedInt8::new(&w, n, k);
            let mut xq = vec![0u8; m * row_bytes(k)];
            let mut scales = vec![0.0f32; m];
            quantize_rows(&x, k, m, k, &mut xq, &mut scales, &Pool::new(1));
            let rows = QuantizedRows {
                data: &xq,
                ld: row_bytes(k),
                scales: &scales,
            };
            for isa in available().into_iter().chain(emulated()) {
                let mut got = init.clone();
                for r0 in (0..m).step_by(isa.mr) {
                    let count = isa.mr.min(m - r0);
                    for panel in 0..n.div_ceil(NR) {
                        let panel_cols = NR.min(n - panel * NR);
                        for column in (0..panel_cols).step_by(isa.width) {
                            let operands = Operands {
                                a: xq[r0 * row_bytes(k)..].as_ptr(),
                                lda: row_bytes(k),
                                row_scales: scales[r0..].as_ptr(),
                                panel: packed.data[panel * NR * row_bytes(k) + 4 * column..].as_ptr(),
                                quads: row_bytes(k) / 4,
                                col_scales: packed.scales[panel * NR + column..].as_ptr(),
                                offsets: packed.offsets[panel * NR + column..].as_ptr(),
                            };
                            // SAFETY: the buffers have exactly the shapes passed; `available`
                            // lists only kernels this CPU runs.
                            unsafe {
                                (isa.kernel)(
                                    operands,
                                    got.as_mut_ptr().add(r0 * n + panel * NR + column),
                                    n,
                                    count,
                                    isa.width.min(panel_cols - column),
                                    true,
                                )
                            };
                        }
                    }
                }
                for (j, v) in got.iter_mut().enumerate() {
                    *v += bias[j % n];
                }
                assert_eq!(got, want, "{} {m}x{k}x{n}", isa.name);
            }
            let mut parallel = init.clone();
            linear_int8(&mut parallel, n, rows, m, &packed, Some(&bias), true, &Pool::new(2));
            assert_eq!(parallel, want, "linear_int8 {m}x{k}x{n}");
        }
    }

    /// The AVX-VNNI kernel's tiles and epilogue over an AVX2 emulation of `VPDPBUSD`, where the
    /// CPU has AVX2 (no emulator available here implements AVX-VNNI).
    fn emulated() -> Vec<Int8Isa> {
        #[cfg(target_arch = "x86_64")]
        if IsaLevel::detected() >= IsaLevel::Avx2 {
            return vec![Int8Isa {
                kernel: x86::kernel_vnni_emulated,
                mr: x86::MR_VNNI_AVX,
                width: x86::HALF,
                name: "avx-vnni (emulated)",
            }];
        }
        Vec::new()
    }

    #[test]
    fn quantized_products_are_close_to_the_f32_ones() {
        let (m, k, n) = (4, 768, 64);
        let (x, w) = (data(m * k, 31), data(n * k, 32));
        let mut y = vec![0.0f32; m * n];
        linear_reference(&mut y, n, &x, m, &w, n, k, None, false);
        for r in 0..m {
            for j in 0..n {
                let exact: f32 = (0..k).map(|p| x[r * k + p] * w[j * k + p]).sum();
                let bound = 0.02 * (0..k).map(|p| (x[r * k + p] * w[j * k + p]).abs()).sum::<f32>();
                assert!(
                    (y[r * n + j] - exact).abs() <= bound,
                    "{r},{j}: {} vs {exact}",
                    y[r * n + j]
                );
            }
        }
    }
}
