//! A GEMM for linear layers with weights packed once: `y (+)= x·Wᵀ (+ b)`.
//!
//! `W` (`[n, k]`, the PyTorch `[out, in]` layout) is repacked into panels of [`NR`] output
//! columns, each stored k-major (`panel[k][NR]`, zero-padded past `n`), so the microkernel
//! streams one panel from cache while `x` rows are broadcast. The panels of one call are split
//! over the allocation-free worker [`pool`](crate::pool), so each weight is read once per call however many rows `x` has. Nothing is
//! allocated per call: the planned engine runs allocation-free.
//!
//! Microkernels: AVX-512F (12 rows × 32 columns), AVX2+FMA (6 × 16, twice per panel), and a scalar fallback with
//! the same signature, chosen once at runtime.

use std::ops::Range;
use std::sync::OnceLock;

use crate::pool::{Pool, SharedMut};
use crate::storage::{Storage, StorageError};
use crate::PARALLEL_MIN_FLOPS;

/// Output columns per packed panel.
pub const NR: usize = 32;
/// k-block: the whole depth of every Chronos-2 layer (k <= 3072) in one slice, so each output
/// tile is written once. Slices of 256 (a 32 KiB panel slice kept in L1) measured 6-8 % slower
/// on cases A, C and E (Zen 5): L2 streams a whole panel fast enough, and every extra slice
/// stores and reloads the tile.
const KC: usize = 4096;

/// Number of floats a packed `[n, k]` matrix occupies.
pub fn packed_len(n: usize, k: usize) -> usize {
    n.div_ceil(NR) * NR * k
}

/// Packs `w` (a `n x k` view, element `(j, p)` = weight of output j, input p) into `out`
/// (`packed_len(n, k)` floats).
///
/// # Panics
/// If `out` has the wrong length.
pub fn pack_into(out: &mut [f32], w: crate::MatRef<'_>) {
    let (n, k) = (w.rows(), w.cols());
    assert_eq!(out.len(), packed_len(n, k), "pack_into: wrong buffer length");
    if k == 0 {
        return;
    }
    for (panel, chunk) in out.chunks_exact_mut(NR * k).enumerate() {
        let rows = NR.min(n - panel * NR);
        if let Some(dense) = w.dense_rows() {
            // Row-major source: walk each weight row once, sequentially.
            for c in 0..rows {
                let row = &dense[(panel * NR + c) * k..(panel * NR + c + 1) * k];
                for (slot, &v) in chunk[c..].iter_mut().step_by(NR).zip(row) {
                    *slot = v;
                }
            }
        } else {
            for p in 0..k {
                for c in 0..rows {
                    chunk[p * NR + c] = w.at(panel * NR + c, p);
                }
            }
        }
        if rows < NR {
            for p in 0..k {
                chunk[p * NR + rows..(p + 1) * NR].fill(0.0);
            }
        }
    }
}

/// Packs `rows` given one by one (each `k` wide, e.g. gathered from a strided buffer) as the
/// rows of a `[rows, k]` weight matrix, in [`pack_into`]'s layout; `out` is
/// `packed_len(rows, k)` long.
pub fn pack_rows_into<'a>(out: &mut [f32], rows: impl Iterator<Item = &'a [f32]>, k: usize) {
    out.fill(0.0);
    for (r, row) in rows.enumerate() {
        let panel = &mut out[(r / NR) * NR * k..];
        for (p, &v) in row.iter().enumerate() {
            panel[p * NR + r % NR] = v;
        }
    }
}

/// Packs `rows` given one by one (each `n` wide) as the columns of a `[n, rows]` weight
/// matrix (the transposed matrix), in [`pack_into`]'s layout; `out` is
/// `packed_len(n, rows)` long.
pub fn pack_columns_into<'a>(out: &mut [f32], rows: impl Iterator<Item = &'a [f32]>, n: usize) {
    let count = out.len() / n.div_ceil(NR) / NR;
    out.fill(0.0);
    for (p, row) in rows.enumerate() {
        for (c, &v) in row.iter().enumerate() {
            out[(c / NR) * NR * count + p * NR + c % NR] = v;
        }
    }
}

/// A weight matrix packed for [`linear`].
#[derive(Clone, Debug, PartialEq)]
pub struct PackedWeight {
    data: Storage<f32>,
    n: usize,
    k: usize,
}

impl PackedWeight {
    /// Packs a `[n, k]` row-major weight (PyTorch `nn.Linear.weight`).
    pub fn new(weight: &[f32], n: usize, k: usize) -> Self {
        let mut data = vec![0.0f32; packed_len(n, k)];
        pack_into(&mut data, crate::MatRef::row_major(weight, n, k));
        Self {
            data: data.into(),
            n,
            k,
        }
    }

    /// A matrix already packed (by [`new`](Self::new), e.g. read back from a cache file).
    ///
    /// # Errors
    /// If `data` does not hold `packed_len(n, k)` elements.
    pub fn from_packed(data: Storage<f32>, n: usize, k: usize) -> Result<Self, StorageError> {
        check_len(data.len(), packed_len(n, k), n, k)?;
        Ok(Self { data, n, k })
    }

    /// The packed elements (what [`from_packed`](Self::from_packed) takes back).
    pub fn packed(&self) -> &Storage<f32> {
        &self.data
    }

    /// Output width n.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input width k.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<f32>()
    }

    /// A borrowed view for [`linear`].
    pub fn view(&self) -> PackedRef<'_> {
        PackedRef {
            data: &self.data,
            n: self.n,
            k: self.k,
        }
    }
}

/// Checks that a packed buffer of `len` elements fits an `n x k` matrix needing `expected`.
pub(crate) fn check_len(len: usize, expected: usize, n: usize, k: usize) -> Result<(), StorageError> {
    if len == expected {
        Ok(())
    } else {
        Err(StorageError::new(format!(
            "a packed {n}x{k} matrix holds {expected} elements, not {len}"
        )))
    }
}

/// A borrowed packed matrix (a [`PackedWeight`] or a scratch buffer filled by [`pack_into`]).
#[derive(Clone, Copy, Debug)]
pub struct PackedRef<'a> {
    data: &'a [f32],
    n: usize,
    k: usize,
}

impl<'a> PackedRef<'a> {
    /// Wraps a buffer filled by [`pack_into`] for an `n x k` matrix.
    ///
    /// # Panics
    /// If the buffer length does not match.
    pub fn new(data: &'a [f32], n: usize, k: usize) -> Self {
        assert_eq!(data.len(), packed_len(n, k), "PackedRef: wrong buffer length");
        Self { data, n, k }
    }
}

/// A microkernel: `c[r][0..cols] (+)= Σ_p a[r][p] · panel[p][..]` for `rows <= MR` rows and
/// `cols` up to its width (a panel, or half of one from the column `panel` points at).
///
/// Arguments: a, a row stride, panel (`kc x NR`), kc, c, c row stride, rows, cols,
/// accumulate (else overwrite).
type Kernel = unsafe fn(*const f32, usize, *const f32, usize, *mut f32, usize, usize, usize, bool);

/// An f32 microkernel and its tile and cache blocking.
#[derive(Clone, Copy)]
struct Isa {
    kernel: Kernel,
    /// Rows per call.
    mr: usize,
    /// Columns per call: a whole panel, or half of one.
    width: usize,
    name: &'static str,
}

/// The f32 microkernels up to `level`, fastest first (the scalar one always last).
fn available_up_to(level: crate::IsaLevel) -> Vec<Isa> {
    let mut all = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if level >= crate::IsaLevel::Avx512 {
            all.push(Isa {
                kernel: x86::kernel_avx512,
                mr: x86::MR_AVX512,
                width: NR,
                name: "avx512f",
            });
        }
        if level >= crate::IsaLevel::Avx2 {
            all.push(Isa {
                kernel: x86::kernel_avx2,
                mr: x86::MR_AVX2,
                width: x86::HALF,
                name: "avx2+fma",
            });
        }
    }
    let _ = level;
    all.push(Isa {
        kernel: kernel_scalar,
        mr: 4,
        width: NR,
        name: "scalar",
    });
    all
}

fn isa() -> &'static Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    ISA.get_or_init(|| available_up_to(crate::IsaLevel::active())[0])
}

/// The instruction set the packed GEMM uses on this machine.
pub fn isa_name() -> &'static str {
    isa().name
}

/// The scalar microkernel (reference for the SIMD ones).
///
/// # Safety
/// `a` must be readable for `rows` rows of `kc` values at stride `lda`, `panel` for `kc * NR`
/// values, `c` writable for `rows` rows of `cols <= NR` values at stride `ldc`.
#[allow(clippy::too_many_arguments, reason = "the microkernel ABI")]
unsafe fn kernel_scalar(
    a: *const f32,
    lda: usize,
    panel: *const f32,
    kc: usize,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    accumulate: bool,
) {
    for r in 0..rows {
        let mut acc = [0.0f32; NR];
        for p in 0..kc {
            let x = *a.add(r * lda + p);
            for (j, slot) in acc.iter_mut().enumerate() {
                *slot += x * *panel.add(p * NR + j);
            }
        }
        for (j, &v) in acc.iter().enumerate().take(cols) {
            let out = c.add(r * ldc + j);
            *out = if accumulate { *out + v } else { v };
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use super::NR;
    use std::arch::x86_64::*;

    /// Rows of the AVX-512F microkernel: 12 rows x 32 columns hold 24 accumulators, 2 weight
    /// vectors and 1 broadcast in the 32 zmm registers, so each k step issues 24 FMAs for 14
    /// loads (cores with two 512-bit FMA pipes need the extra independent sums).
    pub(super) const MR_AVX512: usize = 12;

    /// AVX-512F microkernel, up to [`MR_AVX512`] rows x 32 columns.
    ///
    /// # Safety
    /// As [`super::kernel_scalar`], and the CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments, reason = "the microkernel ABI")]
    pub(super) unsafe fn kernel_avx512(
        a: *const f32,
        lda: usize,
        panel: *const f32,
        kc: usize,
        c: *mut f32,
        ldc: usize,
        rows: usize,
        cols: usize,
        accumulate: bool,
    ) {
        let acc = by_rows!(rows, |R| sums_avx512::<{ R }>(a, lda, panel, kc), [1 2 3 4 5 6 7 8 9 10 11 12]);
        store_avx512(&acc[..rows], c, ldc, cols, accumulate);
    }

    /// The sums of a [`kernel_avx512`] tile of `R` rows (the other rows zero).
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn sums_avx512<const R: usize>(
        a: *const f32,
        lda: usize,
        panel: *const f32,
        kc: usize,
    ) -> [[__m512; 2]; MR_AVX512] {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for p in 0..kc {
            let w0 = _mm512_loadu_ps(panel.add(p * NR));
            let w1 = _mm512_loadu_ps(panel.add(p * NR + 16));
            for (r, row) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*a.add(r * lda + p));
                row[0] = _mm512_fmadd_ps(x, w0, row[0]);
                row[1] = _mm512_fmadd_ps(x, w1, row[1]);
            }
        }
        let mut all = [[_mm512_setzero_ps(); 2]; MR_AVX512];
        all[..R].copy_from_slice(&acc);
        all
    }

    /// Stores up to 12 rows of two 16-lane accumulators into `c` (masked to `cols`, added to
    /// what is there with `accumulate`).
    ///
    /// # Safety
    /// `c` writable for `rows` rows of `cols <= 32` values at stride `ldc`; AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) unsafe fn store_avx512(acc: &[[__m512; 2]], c: *mut f32, ldc: usize, cols: usize, accumulate: bool) {
        let [mask0, mask1] = column_masks(cols);
        for (r, row) in acc.iter().enumerate() {
            let out = c.add(r * ldc);
            let (mut v0, mut v1) = (row[0], row[1]);
            if accumulate {
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(mask0, out));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(mask1, out.add(16)));
            }
            _mm512_mask_storeu_ps(out, mask0, v0);
            _mm512_mask_storeu_ps(out.add(16), mask1, v1);
        }
    }

    /// The lane masks of the two 16-column halves of a panel tile whose first `cols` columns
    /// (at most 32) are written.
    pub(crate) fn column_masks(cols: usize) -> [__mmask16; 2] {
        let first = cols.min(16);
        let second = cols.saturating_sub(16).min(16);
        let mask = |n: usize| ((1u32 << n) - 1) as __mmask16;
        [mask(first), mask(second)]
    }

    /// Rows of the AVX2+FMA microkernel. With 16 ymm registers a tile of 6 rows x 16 columns
    /// holds 12 accumulators, 2 weight vectors and 1 broadcast: the largest tile that stays in
    /// registers (a 4 x 32 tile needs 21 and spills).
    pub(super) const MR_AVX2: usize = 6;

    /// Columns of one AVX2 register tile: half a panel.
    pub(crate) const HALF: usize = NR / 2;

    /// AVX2+FMA microkernel, up to [`MR_AVX2`] rows x [`HALF`] columns: `panel` points at the
    /// first column of a half panel (whose rows are still [`NR`] apart).
    ///
    /// # Safety
    /// As [`super::kernel_scalar`] with `cols <= HALF`, and the CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments, reason = "the microkernel ABI")]
    pub(super) unsafe fn kernel_avx2(
        a: *const f32,
        lda: usize,
        panel: *const f32,
        kc: usize,
        c: *mut f32,
        ldc: usize,
        rows: usize,
        cols: usize,
        accumulate: bool,
    ) {
        let acc = by_rows!(rows, |R| sums_avx2::<{ R }>(a, lda, panel, kc), [1 2 3 4 5 6]);
        store_avx2(&acc[..rows], c, ldc, cols, accumulate);
    }

    /// The sums of a [`kernel_avx2`] tile of `R` rows over one half panel (`half` points at its
    /// first column; the panel's row stride is still [`NR`]).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn sums_avx2<const R: usize>(
        a: *const f32,
        lda: usize,
        half: *const f32,
        kc: usize,
    ) -> [[__m256; 2]; MR_AVX2] {
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for p in 0..kc {
            let w0 = _mm256_loadu_ps(half.add(p * NR));
            let w1 = _mm256_loadu_ps(half.add(p * NR + 8));
            for (r, row) in acc.iter_mut().enumerate() {
                let x = _mm256_broadcast_ss(&*a.add(r * lda + p));
                row[0] = _mm256_fmadd_ps(x, w0, row[0]);
                row[1] = _mm256_fmadd_ps(x, w1, row[1]);
            }
        }
        let mut all = [[_mm256_setzero_ps(); 2]; MR_AVX2];
        all[..R].copy_from_slice(&acc);
        all
    }

    /// The lane masks of the two 8-column vectors of an AVX2 tile whose first `cols` columns
    /// (at most 16 are used) are written.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) unsafe fn column_masks_avx2(cols: usize) -> [__m256i; 2] {
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let limit = |start: usize| _mm256_set1_epi32(cols.saturating_sub(start).min(8) as i32);
        [_mm256_cmpgt_epi32(limit(0), lanes), _mm256_cmpgt_epi32(limit(8), lanes)]
    }

    /// Stores rows of two 8-lane accumulators (one AVX2 tile) into `c`: the first `cols`
    /// columns (at most 16 are written), added to what is there with `accumulate`.
    ///
    /// # Safety
    /// `c` writable for `acc.len()` rows of `min(cols, 16)` values at stride `ldc`; AVX2.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) unsafe fn store_avx2(acc: &[[__m256; 2]], c: *mut f32, ldc: usize, cols: usize, accumulate: bool) {
        let masks = column_masks_avx2(cols);
        for (r, row) in acc.iter().enumerate() {
            for (v, (&sum, &mask)) in row.iter().zip(&masks).enumerate() {
                if cols <= 8 * v {
                    break;
                }
                let out = c.add(r * ldc + 8 * v);
                let value = if accumulate {
                    _mm256_add_ps(sum, _mm256_maskload_ps(out, mask))
                } else {
                    sum
                };
                _mm256_maskstore_ps(out, mask, value);
            }
        }
    }
}

/// `y[m, n] (+)= x[m, k] · Wᵀ (+ bias)`, W packed.
///
/// `x` rows have stride `ldx`, `y` rows stride `ldy` (both >= their widths). With
/// `accumulate`, the product is added to `y` (a residual connection); the bias, if any, is
/// added too. The work is split over `pool` (see [`drive`]) unless the product is too small
/// to gain from it.
///
/// # Panics
/// If a slice is too short for its shape or the bias length is not n.
#[allow(clippy::too_many_arguments, reason = "a strided GEMM with its options")]
pub fn linear(
    y: &mut [f32],
    ldy: usize,
    x: &[f32],
    ldx: usize,
    m: usize,
    w: PackedRef<'_>,
    bias: Option<&[f32]>,
    accumulate: bool,
    pool: &Pool,
) {
    let (n, k) = (w.n, w.k);
    assert!(
        ldx >= k && ldy >= n,
        "linear: strides {ldx}/{ldy} smaller than widths {k}/{n}"
    );
    if m == 0 || n == 0 {
        return;
    }
    assert!(x.len() >= (m - 1) * ldx + k, "linear: x is too short for {m} x {k}");
    let isa = *isa();
    let tile = |t: &TileCall| {
        // SAFETY: `drive` passes tiles inside the checked shapes: rows [r0, r0 + rows) of x
        // (length checked above) and the columns [column, column + cols) of the slice
        // [p0, p0 + kc) of a panel of w; `out` points to the tile's first element of y,
        // written by this call alone.
        unsafe {
            (isa.kernel)(
                x.as_ptr().add(t.r0 * ldx + t.p0),
                ldx,
                w.data.as_ptr().add(t.panel * NR * k + t.p0 * NR + t.column),
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
        depth: k,
        slice: KC,
        mr: isa.mr,
        width: isa.width,
    };
    drive(y, ldy, shape, bias, accumulate, pool, &tile);
}

/// Sizes of one blocked product for [`drive`]: `m x n` outputs over `depth` steps of the
/// weight format (floats, or bf16 pairs), sliced `slice` steps at a time, `mr` rows and
/// `width` columns (a whole panel, or a part of it) per microkernel call.
pub(crate) struct Shape {
    pub m: usize,
    pub n: usize,
    pub depth: usize,
    pub slice: usize,
    pub mr: usize,
    pub width: usize,
}

/// One microkernel call of [`drive`]: rows `[r0, r0 + rows)`, the `cols` columns from
/// `column` of panel `panel` (`column` is a multiple of the shape's width), depth slice
/// `[p0, p0 + kc)`, output tile starting at `out`, accumulating into it or not.
pub(crate) struct TileCall {
    pub r0: usize,
    pub rows: usize,
    pub panel: usize,
    pub column: usize,
    pub cols: usize,
    pub p0: usize,
    pub kc: usize,
    pub out: *mut f32,
    pub accumulate: bool,
}

/// A microkernel call, as each weight format makes it.
pub(crate) type Tile<'a> = dyn Fn(&TileCall) + Sync + 'a;

/// Rows per thread from which threads split rows instead of panels (below it, x fits in the
/// shared cache and each thread streaming its own panels is faster: measured on 32 x 34-token
/// batches).
const ROW_SPLIT_ROWS: usize = 2048;

/// Rows of x per cache block: `MC` rows of x (384 KiB at k = 768) stay in L2 while every panel
/// passes.
const MC: usize = 128;

/// The blocked, parallel driver shared by every weight format. For each block of [`MC`]
/// rows and each depth slice, every panel's slice meets the rows of the block (`tile`), then
/// the bias is added. Many rows: each thread takes contiguous row blocks and every panel, so
/// its block of x stays in its own cache while the weights stream past. Few rows: one
/// contiguous run of panels per thread, each streaming neighbouring panels (one task per
/// panel, interleaved between threads, measured 5-15 % slower on 32-row batches).
///
/// # Panics
/// If `y` is too short for its shape or the bias length is not n.
pub(crate) fn drive(
    y: &mut [f32],
    ldy: usize,
    shape: Shape,
    bias: Option<&[f32]>,
    accumulate: bool,
    pool: &Pool,
    tile: &Tile<'_>,
) {
    let Shape { m, n, depth, .. } = shape;
    assert!(y.len() >= (m - 1) * ldy + n, "linear: y is too short for {m} x {n}");
    if let Some(b) = bias {
        assert_eq!(b.len(), n, "linear: bias length");
    }
    let panels = n.div_ceil(NR);
    let out = SharedMut::new(y);
    let run = |rows: Range<usize>, panels: Range<usize>, rows_blocked: bool| {
        // SAFETY: y was bounds-checked above; each call writes only the given rows and columns
        // [panels.start·NR, panels.end·NR) ∩ [0, n) of y, the tiles given to different
        // threads are disjoint, and y's `&mut` borrow lives for the whole call.
        unsafe { run_tile(out, ldy, &shape, rows, panels, bias, accumulate, rows_blocked, tile) };
    };
    let threads = pool.threads();
    if threads == 1 || m * n * depth < PARALLEL_MIN_FLOPS {
        run(0..m, 0..panels, m > MC);
    } else if m >= ROW_SPLIT_ROWS * threads {
        let blocks = m.div_ceil(MC);
        let tasks = blocks.min(2 * threads);
        pool.parallel_for(tasks, &|task| {
            let (first, last) = (blocks * task / tasks, blocks * (task + 1) / tasks);
            run(first * MC..(last * MC).min(m), 0..panels, true);
        });
    } else {
        let tasks = panels.min(threads);
        pool.parallel_for(tasks, &|task| {
            run(0..m, panels * task / tasks..panels * (task + 1) / tasks, false)
        });
    }
}

/// Computes rows `rows` x panels `panels` of [`drive`].
///
/// # Safety
/// `y` must point to a live `m x n` matrix with row stride `ldy` that nothing else reads or
/// writes in this tile during the call; the other arguments were checked by `drive`.
#[allow(clippy::too_many_arguments, reason = "the GEMM's state")]
unsafe fn run_tile(
    y: SharedMut<f32>,
    ldy: usize,
    shape: &Shape,
    rows: Range<usize>,
    panels: Range<usize>,
    bias: Option<&[f32]>,
    accumulate: bool,
    rows_blocked: bool,
    tile: &Tile<'_>,
) {
    // Row-blocked (many rows): blocks of MC rows, and within a block each depth slice of x
    // (MC x slice, in L2) meets every panel. Otherwise one block, panel by panel, each panel
    // streamed whole while the rows of x stay in cache.
    let blocked = rows_blocked;
    let block_rows = if blocked { MC } else { rows.len().max(1) };
    let mut block = rows.start;
    while block < rows.end {
        let block_end = (block + block_rows).min(rows.end);
        let tiles = |panel: usize, p0: usize, kc: usize| {
            let panel_cols = NR.min(shape.n - panel * NR);
            for column in (0..panel_cols).step_by(shape.width) {
                let mut r0 = block;
                while r0 < block_end {
                    let tile_rows = shape.mr.min(block_end - r0);
                    tile(&TileCall {
                        r0,
                        rows: tile_rows,
                        panel,
                        column,
                        cols: shape.width.min(panel_cols - column),
                        p0,
                        kc,
                        out: y.get().add(r0 * ldy + panel * NR + column),
                        accumulate: accumulate || p0 > 0,
                    });
                    r0 += tile_rows;
                }
            }
        };
        // At least one pass, so that depth 0 still writes (or keeps) the output.
        let slices = || {
            (0..shape.depth.max(1))
                .step_by(shape.slice)
                .map(|p0| (p0, shape.slice.min(shape.depth - p0)))
        };
        if blocked {
            for (p0, kc) in slices() {
                panels.clone().for_each(|panel| tiles(panel, p0, kc));
            }
        } else {
            for panel in panels.clone() {
                slices().for_each(|(p0, kc)| tiles(panel, p0, kc));
            }
        }
        if let Some(b) = bias {
            let columns = panels.start * NR..(panels.end * NR).min(shape.n);
            for r in block..block_end {
                let row = y.get().add(r * ldy);
                for j in columns.clone() {
                    *row.add(j) += b[j];
                }
            }
        }
        block = block_end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::pseudo_random as data;
    use crate::{matmul_naive, MatMut, MatRef};

    #[test]
    fn matches_naive_on_awkward_and_real_shapes() {
        // (m, k, n): 0/1 rows, tails in every dimension, k > KC, and Chronos-2 shapes.
        let shapes = [
            (1, 1, 1),
            (3, 5, 7),
            (9, 17, 33),
            (17, 300, 65),
            (34, 768, 96),
            (8, 64, 32),
            (1, 3072, 40),
            (13, 48, 100),
            (40, 256, 300),
            (600, 300, 70),
            (5, 4100, 33),
        ];
        for &(m, k, n) in &shapes {
            let x = data(m * k, 1);
            let w = data(n * k, 2);
            let bias = data(n, 3);
            let packed = PackedWeight::new(&w, n, k);
            for accumulate in [false, true] {
                for pool in [Pool::serial(), &Pool::new(2)] {
                    let init = data(m * n, 4);
                    let mut fast = init.clone();
                    linear(&mut fast, n, &x, k, m, packed.view(), Some(&bias), accumulate, pool);
                    let mut slow = init.clone();
                    matmul_naive(
                        MatMut::row_major(&mut slow, m, n),
                        MatRef::row_major(&x, m, k),
                        MatRef::row_major(&w, n, k).t(),
                        accumulate,
                    );
                    for (i, (a, b)) in fast.iter().zip(&slow).enumerate() {
                        let expected = b + bias[i % n];
                        assert!(
                            (a - expected).abs() <= 1e-4 * (1.0 + expected.abs()),
                            "{m}x{k}x{n} [{i}]: {a} vs {expected}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn packing_gathered_rows_or_columns_equals_packing_the_matrix() {
        let (n, k) = (45, 7);
        let w = data(n * k, 9);
        let mut expected = vec![0.0f32; packed_len(n, k)];
        pack_into(&mut expected, MatRef::row_major(&w, n, k));
        let mut rows = vec![1.0f32; packed_len(n, k)];
        pack_rows_into(&mut rows, w.chunks_exact(k), k);
        assert_eq!(rows, expected);
        // The same rows as the columns of the transposed matrix [k, n].
        let mut transposed = vec![0.0f32; packed_len(k, n)];
        pack_into(&mut transposed, MatRef::row_major(&w, n, k).t());
        let mut columns = vec![1.0f32; packed_len(k, n)];
        pack_columns_into(&mut columns, w.chunks_exact(k), k);
        assert_eq!(columns, transposed);
    }

    #[test]
    fn strided_rows_leave_other_columns_alone() {
        // y has 3 extra columns per row that must stay untouched.
        let (m, k, n) = (5, 4, 6);
        let x = data(m * k, 5);
        let w = data(n * k, 6);
        let mut y = vec![7.0f32; m * (n + 3)];
        linear(
            &mut y,
            n + 3,
            &x,
            k,
            m,
            PackedWeight::new(&w, n, k).view(),
            None,
            false,
            &Pool::new(2),
        );
        for r in 0..m {
            assert_eq!(&y[r * (n + 3) + n..(r + 1) * (n + 3)], &[7.0, 7.0, 7.0]);
        }
    }

    /// Every microkernel this CPU runs against the scalar one, on every tile shape: rows
    /// 1..=its tile, columns below, at and past each vector width, depth 1 to past one slice.
    #[test]
    fn every_kernel_on_this_machine_matches_the_scalar_kernel_on_odd_tiles() {
        for k in [1, 7, 64, KC + 5] {
            let x = data(12 * k, 7);
            let w = PackedWeight::new(&data(NR * k, 8), NR, k);
            for isa in available_up_to(crate::IsaLevel::detected()) {
                for rows in 1..=isa.mr {
                    for cols in [1, 7, 8, 9, 15, 16, 17, 24, 31, 32]
                        .into_iter()
                        .filter(|&c| c <= isa.width)
                    {
                        for column in (0..NR).step_by(isa.width) {
                            for accumulate in [false, true] {
                                let init = data(rows * (NR + 3), 9);
                                let (mut want, mut got) = (init.clone(), init.clone());
                                // SAFETY: the buffers hold `rows` rows of `k` inputs and of
                                // `NR + 3` outputs (the reference writes a whole panel, the
                                // kernel `cols` from `column`); only kernels this CPU runs are
                                // listed.
                                unsafe {
                                    let w = w.data.as_ptr();
                                    let out = got.as_mut_ptr().add(column);
                                    kernel_scalar(x.as_ptr(), k, w, k, want.as_mut_ptr(), NR + 3, rows, NR, accumulate);
                                    (isa.kernel)(x.as_ptr(), k, w.add(column), k, out, NR + 3, rows, cols, accumulate);
                                }
                                for r in 0..rows {
                                    let row = r * (NR + 3);
                                    for j in 0..NR + 3 {
                                        let (a, b) = (got[row + j], want[row + j]);
                                        if j < column || j >= column + cols {
                                            // Columns outside the tile are never written.
                                            assert_eq!(a, init[row + j], "{} wrote column {j}", isa.name);
                                            continue;
                                        }
                                        let tolerance = 1e-5 * (k as f32).sqrt() * (1.0 + b.abs());
                                        assert!(
                                            (a - b).abs() <= tolerance,
                                            "{} rows {rows} cols {column}+{cols} k {k} [{r}, {j}]: {a} vs {b}",
                                            isa.name
                                        );
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn isa_levels_parse_and_order() {
        assert_eq!(crate::IsaLevel::parse("AVX2"), Some(crate::IsaLevel::Avx2));
        assert_eq!(crate::IsaLevel::parse("avx512_bf16"), Some(crate::IsaLevel::Avx512Bf16));
        assert_eq!(crate::IsaLevel::parse("sse"), None);
        assert!(
            crate::IsaLevel::Scalar < crate::IsaLevel::Avx2 && crate::IsaLevel::Avx512 < crate::IsaLevel::Avx512Bf16
        );
        assert!(crate::IsaLevel::active() <= crate::IsaLevel::detected());
    }
}
