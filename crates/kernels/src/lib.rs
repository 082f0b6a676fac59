//! Numerical kernels shared by every Chronos-2 execution path.
//!
//! Two kinds of kernel live here:
//!
//! * [`matmul`]: the one safe entry point to the pure-Rust [`gemm`] crate, over strided
//!   matrix views ([`MatRef`], [`MatMut`]): the eager executor's matrix products.
//! * [`packed`]: our GEMM for linear layers whose weights were packed once into panels, with
//!   AVX-512, AVX2+FMA and scalar microkernels chosen at run time (the planned executor's).
//! * Row-wise element kernels in [`ops`]: T5 RMS norm, numerically safe softmax, ReLU,
//!   rotary position embedding (non-interleaved) and residual adds.
//! * [`pool`]: the allocation-free fork-join pool every parallel kernel takes explicitly, so
//!   one `--threads` setting governs all of them.
//!
//! All `unsafe` code of the workspace is in this crate; the other crates deny it.
//!
//! ```
//! use chronos2_kernels::{matmul, pool::Pool, MatMut, MatRef};
//! // (2x3) · (3x2)ᵀ-stored-as-(2x3): y = x·Wᵀ like a linear layer.
//! let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
//! let w = [1.0, 0.0, 0.0, 0.0, 1.0, 1.0];
//! let mut y = [0.0f32; 4];
//! matmul(
//!     MatMut::row_major(&mut y, 2, 2),
//!     MatRef::row_major(&x, 2, 3),
//!     MatRef::row_major(&w, 2, 3).t(),
//!     false,
//!     Pool::serial(),
//! );
//! assert_eq!(y, [1.0, 5.0, 4.0, 11.0]);
//! ```

#![deny(missing_docs)]

/// `$call` with the constant `$R` set to `$rows`, one of the listed counts: a microkernel's row loop
/// compiled once per row count, so that the compiler keeps every accumulator in a register
/// (with a run-time count LLVM spills them to the stack and the kernel runs at a third to a
/// half of its speed; measured on the int8, bf16 and f32 kernels).
macro_rules! by_rows {
    ($rows:expr, |$R:ident| $call:expr, [$($r:literal)*]) => {
        match $rows {
            $($r => {
                const $R: usize = $r;
                $call
            })*
            rows => unreachable!("a microkernel tile of {rows} rows"),
        }
    };
}

/// The AVX-512F build `$avx512` of a row function where the kernels may use AVX-512F
/// ([`IsaLevel::active`]), else the plain `$plain`: decided once, then a function pointer of
/// type `$ty`.
macro_rules! avx512_or {
    ($ty:ty, $avx512:path, $plain:path) => {{
        static CHOICE: std::sync::OnceLock<$ty> = std::sync::OnceLock::new();
        *CHOICE.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            if crate::IsaLevel::active() >= crate::IsaLevel::Avx512 {
                return $avx512;
            }
            $plain
        })
    }};
}

pub mod bf16;
pub mod int8;
pub mod ops;
pub mod packed;
pub mod peak;
pub mod pool;
pub mod storage;

use pool::Pool;

/// The highest instruction-set level the kernels may use: what the CPU has, capped by the
/// `CHRONOS2_ISA` variable (`avx512bf16`, `avx512`, `avxvnni`, `avx2`, `scalar`), which lets one
/// machine run, test and time the code paths of smaller ones.
///
/// Levels are ordered; a kernel that needs an extra feature beyond its level (AVX-VNNI,
/// AVX512_VNNI) also checks that the CPU has it, so a cap never selects an instruction the CPU
/// lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum IsaLevel {
    /// Portable Rust, no SIMD intrinsics.
    Scalar,
    /// AVX2 with FMA.
    Avx2,
    /// AVX2 with FMA and AVX-VNNI (`VPDPBUSD` on 256-bit vectors: Alder Lake and later, Zen 5).
    AvxVnni,
    /// AVX-512F.
    Avx512,
    /// AVX-512F with AVX512_BF16 (`VDPBF16PS`).
    Avx512Bf16,
}

impl IsaLevel {
    /// What this CPU supports.
    pub fn detected() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512bf16") {
                return Self::Avx512Bf16;
            }
            if has!("avx512f") {
                return Self::Avx512;
            }
            if has!("avx2") && has!("fma") && has!("avxvnni") {
                return Self::AvxVnni;
            }
            if has!("avx2") && has!("fma") {
                return Self::Avx2;
            }
        }
        Self::Scalar
    }

    /// The level the kernels use: [`detected`](Self::detected), capped by `CHRONOS2_ISA`
    /// (an unknown value is ignored with a warning; a level above the CPU's is capped at it).
    pub fn active() -> Self {
        static ACTIVE: std::sync::OnceLock<IsaLevel> = std::sync::OnceLock::new();
        *ACTIVE.get_or_init(|| {
            let detected = Self::detected();
            match std::env::var("CHRONOS2_ISA").ok().as_deref().map(str::trim) {
                None | Some("") => detected,
                Some(name) => match Self::parse(name) {
                    Some(cap) => cap.min(detected),
                    None => {
                        eprintln!(
                            "warning: CHRONOS2_ISA={name:?} is not one of avx512bf16, avx512, avxvnni, avx2, scalar; using {detected:?}"
                        );
                        detected
                    }
                },
            }
        })
    }

    fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "avx512bf16" | "avx512_bf16" => Some(Self::Avx512Bf16),
            "avx512" | "avx512f" => Some(Self::Avx512),
            "avxvnni" | "avx_vnni" | "avx-vnni" => Some(Self::AvxVnni),
            "avx2" => Some(Self::Avx2),
            "scalar" => Some(Self::Scalar),
            _ => None,
        }
    }
}

/// A read-only strided view of an `rows x cols` f32 matrix inside a slice.
///
/// Element `(i, j)` lives at `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

/// A mutable strided view of an `rows x cols` f32 matrix inside a slice.
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

/// Index one past the last element a strided view touches (0 for an empty view).
fn extent(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * row_stride + (cols - 1) * col_stride + 1
    }
}

/// Whether distinct `(i, j)` of a strided view always map to distinct indices (for the simple
/// layouts gemm accepts: one stride nests inside the other).
fn non_aliasing(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> bool {
    match (rows, cols) {
        (0, _) | (_, 0) | (1, 1) => true,
        (1, _) => col_stride >= 1,
        (_, 1) => row_stride >= 1,
        _ => {
            (col_stride >= 1 && row_stride >= cols * col_stride) || (row_stride >= 1 && col_stride >= rows * row_stride)
        }
    }
}

impl<'a> MatRef<'a> {
    /// A dense row-major `rows x cols` view.
    ///
    /// # Panics
    /// If `data` is shorter than `rows * cols`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols, 1)
    }

    /// A view with explicit strides.
    ///
    /// # Panics
    /// If the view reaches past the end of `data`.
    pub fn strided(data: &'a [f32], rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> Self {
        let needed = extent(rows, cols, row_stride, col_stride);
        assert!(
            needed <= data.len(),
            "matrix view {rows}x{cols} (strides {row_stride},{col_stride}) needs {needed} elements, slice has {}",
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// The transposed view (no copy).
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The underlying data if the view is dense row-major (`row_stride == cols`,
    /// `col_stride == 1`), starting at element (0, 0).
    pub fn dense_rows(&self) -> Option<&'a [f32]> {
        (self.col_stride == 1 && self.row_stride == self.cols).then(|| &self.data[..self.rows * self.cols])
    }

    /// Element `(i, j)`.
    pub fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.row_stride + j * self.col_stride]
    }
}

impl<'a> MatMut<'a> {
    /// A dense row-major `rows x cols` view.
    ///
    /// # Panics
    /// If `data` is shorter than `rows * cols`.
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols, 1)
    }

    /// A view with explicit strides. Rows must not overlap (`row_stride >= cols * col_stride`
    /// or the transposed condition); this is what makes the writes of [`matmul`] well defined.
    ///
    /// # Panics
    /// If the view reaches past the end of `data` or its elements alias.
    pub fn strided(data: &'a mut [f32], rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> Self {
        let needed = extent(rows, cols, row_stride, col_stride);
        assert!(
            needed <= data.len(),
            "matrix view {rows}x{cols} (strides {row_stride},{col_stride}) needs {needed} elements, slice has {}",
            data.len()
        );
        assert!(
            non_aliasing(rows, cols, row_stride, col_stride),
            "matrix view {rows}x{cols} with strides {row_stride},{col_stride} aliases itself"
        );
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }
}

/// `dst = lhs · rhs` (or `dst += lhs · rhs` when `accumulate`), in f32.
///
/// Shapes: `lhs` is `m x k`, `rhs` is `k x n`, `dst` is `m x n`. Any strides are accepted; a
/// linear layer `y = x·Wᵀ` with `W` stored `[out, in]` is `matmul(y, x, W.t(), ..)`. The
/// product is split over `pool` into a few blocks of output columns (or of rows, when the
/// output is narrow), each block one single-threaded gemm call.
///
/// This is the only caller of `gemm::gemm`. Note that gemm's own convention is
/// `dst := alpha·dst + beta·lhs·rhs`, the reverse of BLAS: here `alpha` is 0 or 1 (accumulate)
/// and `beta` is 1.
///
/// # Panics
/// If the shapes do not agree.
pub fn matmul(dst: MatMut<'_>, lhs: MatRef<'_>, rhs: MatRef<'_>, accumulate: bool, pool: &Pool) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "matmul: lhs is {m}x{k} but rhs is {}x{n}", rhs.rows);
    assert_eq!(
        (dst.rows, dst.cols),
        (m, n),
        "matmul: dst is {}x{}, expected {m}x{n}",
        dst.rows,
        dst.cols
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst.data[i * dst.row_stride + j * dst.col_stride] = 0.0;
                }
            }
        }
        return;
    }
    let serial = pool.threads() == 1 || m * n * k < PARALLEL_MIN_FLOPS;
    // Column blocks give each thread its own part of `rhs` (gemm packs what it reads); rows
    // only when there are too few columns to share.
    let by_columns = n >= 128 || n >= m;
    let extent = if by_columns { n } else { m };
    let blocks = if serial {
        1
    } else {
        extent.div_ceil(64).min(2 * pool.threads())
    };
    let block = extent.div_ceil(blocks);
    let out = pool::SharedMut::new(dst.data);
    pool.parallel_for(blocks, &|index| {
        let (first, len) = (index * block, block.min(extent - index * block));
        let (rows, cols, d, l, r) = if by_columns {
            (m, len, first * dst.col_stride, 0, first * rhs.col_stride)
        } else {
            (len, n, first * dst.row_stride, first * lhs.row_stride, 0)
        };
        // SAFETY: every view was bounds-checked at construction (its furthest element is
        // inside its slice) and the shapes agree (asserted above), so each block's sub-view
        // (a column or row range of the full one) is in bounds too; `dst` is a unique borrow
        // whose elements do not alias (checked in `MatMut::strided`), the blocks write
        // disjoint column (or row) ranges, and `lhs`/`rhs` are shared borrows that cannot
        // overlap `dst`.
        unsafe {
            gemm::gemm(
                rows,
                cols,
                k,
                out.get().add(d),
                dst.col_stride as isize,
                dst.row_stride as isize,
                accumulate,
                lhs.data.as_ptr().add(l),
                lhs.col_stride as isize,
                lhs.row_stride as isize,
                rhs.data.as_ptr().add(r),
                rhs.col_stride as isize,
                rhs.row_stride as isize,
                if accumulate { 1.0 } else { 0.0 },
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    });
}

/// Products below this many multiply-adds run on the caller alone: splitting them costs more
/// than it saves.
pub const PARALLEL_MIN_FLOPS: usize = 1 << 18;

/// The naive triple loop, the algorithmic reference for [`matmul`] (used by the tests).
pub fn matmul_naive(dst: MatMut<'_>, lhs: MatRef<'_>, rhs: MatRef<'_>, accumulate: bool) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k);
    assert_eq!((dst.rows, dst.cols), (m, n));
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f64;
            for p in 0..k {
                acc += lhs.at(i, p) as f64 * rhs.at(p, j) as f64;
            }
            let slot = &mut dst.data[i * dst.row_stride + j * dst.col_stride];
            *slot = if accumulate { *slot + acc as f32 } else { acc as f32 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic test values in [-1, 1] (shared by the kernel tests of this crate).
    pub(crate) fn pseudo_random(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// Every awkward and real Chronos-2 shape, plain and transposed rhs, with and without
    /// accumulation and threads, against the naive loop.
    #[test]
    fn matmul_matches_naive_on_edge_shapes() {
        let shapes = [
            (0, 3, 4),
            (1, 1, 1),
            (15, 16, 17),
            (17, 63, 16),
            (33, 64, 48),
            (5, 0, 3),
            (2, 768, 21),
            (70, 300, 130),
            (300, 64, 20),
        ];
        for &(m, k, n) in &shapes {
            for transposed in [false, true] {
                for accumulate in [false, true] {
                    for pool in [Pool::serial(), &Pool::new(2)] {
                        let a = pseudo_random(m * k, 1);
                        let b = pseudo_random(k * n, 2);
                        let rhs = if transposed {
                            MatRef::row_major(&b, n, k).t()
                        } else {
                            MatRef::row_major(&b, k, n)
                        };
                        let init = pseudo_random(m * n, 3);
                        let mut fast = init.clone();
                        let mut slow = init.clone();
                        matmul(
                            MatMut::row_major(&mut fast, m, n),
                            MatRef::row_major(&a, m, k),
                            rhs,
                            accumulate,
                            pool,
                        );
                        matmul_naive(
                            MatMut::row_major(&mut slow, m, n),
                            MatRef::row_major(&a, m, k),
                            rhs,
                            accumulate,
                        );
                        for (x, y) in fast.iter().zip(&slow) {
                            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{m}x{k}x{n}: {x} vs {y}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn strided_head_view_writes_only_its_columns() {
        // A 2x4 output where only columns 2..4 (one "head") are written.
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [1.0, 0.0, 0.0, 1.0];
        let mut out = [9.0f32; 8];
        matmul(
            MatMut::strided(&mut out[2..], 2, 2, 4, 1),
            MatRef::row_major(&a, 2, 2),
            MatRef::row_major(&b, 2, 2),
            false,
            Pool::serial(),
        );
        assert_eq!(out, [9.0, 9.0, 1.0, 2.0, 9.0, 9.0, 3.0, 4.0]);
    }

    #[test]
    #[should_panic(expected = "needs 7 elements")]
    fn view_past_the_end_panics() {
        let data = [0.0f32; 6];
        let _ = MatRef::strided(&data, 2, 4, 3, 1);
    }
}
