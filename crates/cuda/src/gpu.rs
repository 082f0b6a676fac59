//! The GPU itself: the libraries (loaded at run time), the context and stream, cuBLAS, and the
//! kernels of `kernels.cu` compiled with NVRTC. Every launch takes raw device pointers
//! (`u64`) into memory the caller owns; this is the only module that launches anything.

use std::sync::Arc;

use cudarc::cublas::sys::{cublasComputeType_t, cublasGemmAlgo_t, cublasMath_t, cublasOperation_t, cudaDataType};
use cudarc::cublas::CudaBlas;
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::{CompileOptions, Ptx};

use crate::error::CudaError;

/// The kernel source (see `kernels.cu`); [`kernel_source`] adds the head size.
pub const KERNEL_SOURCE: &str = include_str!("kernels.cu");

/// The kernels `kernels.cu` defines, each launched by [`Gpu`].
pub const KERNEL_NAMES: [&str; 8] = [
    "rms_norm",
    "relu",
    "add_bias",
    "round_bf16",
    "copy_rows",
    "rope",
    "time_attention",
    "group_attention",
];

/// Bytes of cuBLAS workspace, set once so that cuBLAS allocates nothing during graph capture.
const BLAS_WORKSPACE: usize = 32 << 20;

/// Threads per block of the element-wise kernels.
const THREADS: u32 = 256;

/// Queries per block of the time attention (`TILE` in `kernels.cu`).
const TIME_TILE: u32 = 64;

/// Which CUDA library is missing, if one is: the driver (`libcuda`), cuBLAS or NVRTC.
pub fn missing_library() -> Option<&'static str> {
    // SAFETY: each check only tries to dlopen the library by its usual names.
    let present = unsafe {
        [
            ("the CUDA driver (libcuda.so)", cudarc::driver::sys::is_culib_present()),
            ("cuBLAS (libcublas.so.12)", cudarc::cublas::sys::is_culib_present()),
            ("NVRTC (libnvrtc.so.12)", cudarc::nvrtc::sys::is_culib_present()),
        ]
    };
    present.iter().find(|(_, found)| !found).map(|(name, _)| *name)
}

/// Whether NVRTC can be loaded (the kernels can be compiled without a GPU).
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to dlopen the library.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// The kernel source for heads of `dk` floats.
pub fn kernel_source(dk: usize) -> String {
    format!("#define DK {dk}\n{KERNEL_SOURCE}")
}

/// Compiles the kernels for heads of `dk` floats to PTX with NVRTC (no GPU needed): no fused
/// multiply-add contraction and no fast math, so results follow the CPU kernels.
///
/// # Errors
/// [`CudaError::Unavailable`] without NVRTC; [`CudaError::Compile`] with the compiler's log.
pub fn compile_kernels(dk: usize) -> Result<Ptx, CudaError> {
    compile_source(&kernel_source(dk))
}

/// Compiles CUDA `source` as [`compile_kernels`] does.
///
/// # Errors
/// As [`compile_kernels`].
pub fn compile_source(source: &str) -> Result<Ptx, CudaError> {
    if !nvrtc_available() {
        return Err(CudaError::Unavailable(
            "NVRTC (libnvrtc.so.12) is not on the loader path; install the CUDA toolkit or `pip install nvidia-cuda-nvrtc-cu12` and add its lib directory to LD_LIBRARY_PATH".into(),
        ));
    }
    let options = CompileOptions {
        fmad: Some(false),
        use_fast_math: Some(false),
        name: Some("chronos2_kernels.cu".into()),
        ..CompileOptions::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(source, options).map_err(|e| {
        let text = match &e {
            cudarc::nvrtc::CompileError::CompileError { log, .. } => log.to_string_lossy().into_owned(),
            other => other.to_string(),
        };
        CudaError::Compile(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })
}

/// The loaded kernels.
struct Kernels {
    rms_norm: CudaFunction,
    relu: CudaFunction,
    add_bias: CudaFunction,
    round_bf16: CudaFunction,
    copy_rows: CudaFunction,
    rope: CudaFunction,
    time_attention: CudaFunction,
    group_attention: CudaFunction,
}

/// One GPU: its context, one stream every call runs on, a cuBLAS handle on that stream with
/// its workspace, and the kernels.
pub struct Gpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    kernels: Kernels,
    /// cuBLAS workspace (kept alive while the handle uses it).
    _workspace: CudaSlice<u8>,
    name: String,
}

/// A matrix operand of a product: f32 or bf16 bits, by device pointer.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Operand {
    /// f32 values.
    F32(u64),
    /// bfloat16 bit patterns.
    Bf16(u64),
}

impl Gpu {
    /// Opens GPU `ordinal`: context, stream, cuBLAS (TF32 off: products in full f32) and the
    /// kernels compiled for heads of `dk`.
    ///
    /// # Errors
    /// [`CudaError::Unavailable`] naming the missing library; driver, cuBLAS or compiler
    /// errors.
    pub fn open(ordinal: usize, dk: usize) -> Result<Self, CudaError> {
        if let Some(library) = missing_library() {
            return Err(CudaError::Unavailable(format!(
                "{library} could not be loaded: no usable NVIDIA GPU setup here (install the driver and CUDA 12 libraries, or use --device cpu)"
            )));
        }
        let count = CudaContext::device_count()?;
        if ordinal >= count.max(0) as usize {
            return Err(CudaError::Unavailable(format!(
                "--device cuda:{ordinal}: this machine has {count} GPU(s); use cuda:0..cuda:{}",
                count.max(1) - 1
            )));
        }
        let ctx = CudaContext::new(ordinal)?;
        // One stream, so the per-buffer event tracking is not needed (and it must stay out of
        // graph captures).
        // SAFETY: no buffer of this context is shared between streams.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream()?;
        let blas = CudaBlas::new(stream.clone())?;
        let workspace = stream.alloc_zeros::<u8>(BLAS_WORKSPACE)?;
        {
            let (pointer, _sync) = cudarc::driver::DevicePtr::device_ptr(&workspace, &stream);
            // SAFETY: the handle is valid; the workspace outlives it (both are fields of self,
            // the handle dropped first); DEFAULT_MATH never uses TF32 for f32 products.
            unsafe {
                let handle = *blas.handle();
                cudarc::cublas::sys::cublasSetMathMode(handle, cublasMath_t::CUBLAS_DEFAULT_MATH).result()?;
                cudarc::cublas::sys::cublasSetWorkspace_v2(handle, pointer as *mut _, BLAS_WORKSPACE).result()?;
            }
        }
        let module = ctx.load_module(compile_kernels(dk)?)?;
        let load = |name: &str| module.load_function(name);
        let kernels = Kernels {
            rms_norm: load("rms_norm")?,
            relu: load("relu")?,
            add_bias: load("add_bias")?,
            round_bf16: load("round_bf16")?,
            copy_rows: load("copy_rows")?,
            rope: load("rope")?,
            time_attention: load("time_attention")?,
            group_attention: load("group_attention")?,
        };
        let name = ctx.name().unwrap_or_else(|_| format!("GPU {ordinal}"));
        Ok(Self {
            ctx,
            stream,
            blas,
            kernels,
            _workspace: workspace,
            name,
        })
    }

    /// Makes this GPU's context current on the calling thread (every call may come from a
    /// different thread; the raw copies and cuBLAS use the current context).
    ///
    /// # Errors
    /// Driver errors.
    pub(crate) fn bind(&self) -> Result<(), CudaError> {
        Ok(self.ctx.bind_to_thread()?)
    }

    /// The GPU's name (`NVIDIA H200`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stream every call runs on.
    pub(crate) fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Bytes `(free, total)` of device memory.
    ///
    /// # Errors
    /// Driver errors.
    pub fn memory(&self) -> Result<(usize, usize), CudaError> {
        Ok(self.ctx.mem_get_info()?)
    }

    /// Allocates `len` zeroed values, first checking that they fit (naming `what` otherwise).
    ///
    /// # Errors
    /// [`CudaError::Memory`] if they do not fit; driver errors.
    pub(crate) fn alloc<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
        &self,
        len: usize,
        what: &str,
    ) -> Result<CudaSlice<T>, CudaError> {
        let needed = len.max(1) * std::mem::size_of::<T>();
        let (free, _) = self.memory()?;
        if needed > free {
            return Err(CudaError::Memory {
                what: what.into(),
                needed,
                free,
            });
        }
        Ok(self.stream.alloc_zeros::<T>(len.max(1))?)
    }

    /// Copies `values` into a new device buffer.
    ///
    /// # Errors
    /// As [`alloc`](Self::alloc).
    pub(crate) fn upload<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
        &self,
        values: &[T],
        what: &str,
    ) -> Result<CudaSlice<T>, CudaError> {
        let mut buffer = self.alloc::<T>(values.len(), what)?;
        if !values.is_empty() {
            self.stream.memcpy_htod(values, &mut buffer)?;
        }
        Ok(buffer)
    }

    /// Copies host floats to device memory at `dst` (asynchronous on the stream; the host
    /// slice must stay untouched until the next [`synchronize`](Self::synchronize)).
    ///
    /// # Errors
    /// Driver errors.
    pub(crate) fn write(&self, dst: u64, values: &[f32]) -> Result<(), CudaError> {
        // SAFETY: `dst` addresses `values.len()` floats of a live buffer (the caller's span).
        unsafe { cudarc::driver::result::memcpy_htod_async(dst, values, self.stream.cu_stream())? };
        Ok(())
    }

    /// Copies device floats at `src` into `values` and waits for the copy.
    ///
    /// # Errors
    /// Driver errors.
    pub(crate) fn read(&self, src: u64, values: &mut [f32]) -> Result<(), CudaError> {
        // SAFETY: `src` addresses `values.len()` floats of a live buffer (the caller's span).
        unsafe { cudarc::driver::result::memcpy_dtoh_async(values, src, self.stream.cu_stream())? };
        self.synchronize()
    }

    /// Waits for everything queued on the stream.
    ///
    /// # Errors
    /// Driver errors (including those of earlier kernels).
    pub(crate) fn synchronize(&self) -> Result<(), CudaError> {
        Ok(self.stream.synchronize()?)
    }

    /// The device address of a buffer (valid while the buffer lives).
    pub(crate) fn address<T>(&self, buffer: &CudaSlice<T>) -> u64 {
        let (pointer, _sync) = cudarc::driver::DevicePtr::device_ptr(buffer, &self.stream);
        pointer
    }

    /// `y[:, ..n] = x·Wᵀ (+ y if accumulate)` for `x` `(rows, k)`, `W` `(n, k)` row-major and
    /// `y` of row stride `ldy`; both operands f32 or both bf16 (f32 products and sums).
    ///
    /// # Errors
    /// cuBLAS errors.
    #[allow(clippy::too_many_arguments, reason = "a strided GEMM with its options")]
    pub(crate) fn gemm(
        &self,
        x: Operand,
        weight: Operand,
        rows: usize,
        k: usize,
        n: usize,
        y: u64,
        ldy: usize,
        accumulate: bool,
    ) -> Result<(), CudaError> {
        // Row-major y (rows, n) is column-major yᵀ (n, rows): yᵀ = W·xᵀ, with W read
        // transposed from its row-major (n, k) storage.
        let (alpha, beta) = (1.0f32, if accumulate { 1.0f32 } else { 0.0 });
        let handle = *self.blas.handle();
        let (m, n_cols, kk) = (to_int(n), to_int(rows), to_int(k));
        // SAFETY: the pointers address live device buffers of the stated shapes (the
        // executor's spans and uploaded weights); alpha and beta are host scalars.
        unsafe {
            match (weight, x) {
                (Operand::F32(w), Operand::F32(x)) => cudarc::cublas::result::sgemm(
                    handle,
                    cublasOperation_t::CUBLAS_OP_T,
                    cublasOperation_t::CUBLAS_OP_N,
                    m,
                    n_cols,
                    kk,
                    &alpha,
                    w as *const f32,
                    kk,
                    x as *const f32,
                    kk,
                    &beta,
                    y as *mut f32,
                    to_int(ldy),
                )?,
                (Operand::Bf16(w), Operand::Bf16(x)) => cudarc::cublas::result::gemm_ex(
                    handle,
                    cublasOperation_t::CUBLAS_OP_T,
                    cublasOperation_t::CUBLAS_OP_N,
                    m,
                    n_cols,
                    kk,
                    (&alpha as *const f32).cast(),
                    w as *const _,
                    cudaDataType::CUDA_R_16BF,
                    kk,
                    x as *const _,
                    cudaDataType::CUDA_R_16BF,
                    kk,
                    (&beta as *const f32).cast(),
                    y as *mut _,
                    cudaDataType::CUDA_R_32F,
                    to_int(ldy),
                    cublasComputeType_t::CUBLAS_COMPUTE_32F,
                    cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
                )?,
                _ => return Err(CudaError::Blas("mixed f32 and bf16 operands".into())),
            }
        }
        Ok(())
    }

    /// `y[r·ldy + c] += bias[c]`.
    ///
    /// # Errors
    /// Launch errors.
    pub(crate) fn add_bias(&self, y: u64, bias: u64, rows: usize, n: usize, ldy: usize) -> Result<(), CudaError> {
        let config = grid(n, rows);
        let (rows, n, ldy) = (to_int(rows), to_int(n), to_int(ldy));
        let mut launch = self.stream.launch_builder(&self.kernels.add_bias);
        launch.arg(&y).arg(&bias).arg(&rows).arg(&n).arg(&ldy);
        // SAFETY: the signature matches `add_bias` in kernels.cu; the pointers cover the shape.
        unsafe { launch.launch(config)? };
        Ok(())
    }

    /// bf16 bits of `n` floats at `x` into `out`.
    ///
    /// # Errors
    /// Launch errors.
    pub(crate) fn round_bf16(&self, x: u64, out: u64, n: usize) -> Result<(), CudaError> {
        let count = n as i64;
        let mut launch = self.stream.launch_builder(&self.kernels.round_bf16);
        launch.arg(&x).arg(&out).arg(&count);
        // SAFETY: the signature matches `round_bf16`; both buffers hold n values.
        unsafe { launch.launch(grid(n, 1))? };
        Ok(())
    }

    /// RMS norm of each `d`-wide row of `rows` rows.
    ///
    /// # Errors
    /// Launch errors.
    pub(crate) fn rms_norm(
        &self,
        x: u64,
        out: u64,
        weight: u64,
        rows: usize,
        d: usize,
        eps: f32,
    ) -> Result<(), CudaError> {
        let d_int = to_int(d);
        let mut launch = self.stream.launch_builder(&self.kernels.rms_norm);
        launch.arg(&x).arg(&out).arg(&weight).arg(&d_int).arg(&eps);
        let config = LaunchConfig {
            grid_dim: (rows as u32, 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the signature matches `rms_norm`; x and out hold rows·d floats, weight d.
        unsafe { launch.launch(config)? };
        Ok(())
    }

    /// In-place ReLU of `n` floats.
    ///
    /// # Errors
    /// Launch errors.
    pub(crate) fn relu(&self, x: u64, n: usize) -> Result<(), CudaError> {
        let count = n as i64;
        let mut launch = self.stream.launch_builder(&self.kernels.relu);
        launch.arg(&x).arg(&count);
        // SAFETY: the signature matches `relu`; x holds n floats.
        unsafe { launch.launch(grid(n, 1))? };
        Ok(())
    }

    /// `dst[r·dst_stride..][..width] = src[r·src_stride..][..width]` for `r < rows`.
    ///
    /// # Errors
    /// Launch errors.
    pub(crate) fn copy_rows(
        &self,
        src: u64,
        src_stride: usize,
        dst: u64,
        dst_stride: usize,
        rows: usize,
        width: usize,
    ) -> Result<(), CudaError> {
        if rows == 0 || width == 0 {
            return Ok(());
        }
        let (src_stride, dst_stride) = (src_stride as i64, dst_stride as i64);
        let (rows_int, width_int) = (to_int(rows), to_int(width));
        let mut launch = self.stream.launch_builder(&self.kernels.copy_rows);
        launch
            .arg(&src)
            .arg(&src_stride)
            .arg(&dst)
            .arg(&dst_stride)
            .arg(&rows_int)
            .arg(&width_int);
        // SAFETY: the signature matches `copy_rows`; the strides and width stay in the buffers.
        unsafe { launch.launch(grid(width, rows))? };
        Ok(())
    }

    /// RoPE on Q and K of `qkv` `(tokens_total, 3·inner)` with `(tokens, dk/2)` tables.
    ///
    /// # Errors
    /// Launch errors.
    #[allow(clippy::too_many_arguments, reason = "the kernel's shape arguments")]
    pub(crate) fn rope(
        &self,
        qkv: u64,
        cos: u64,
        sin: u64,
        tokens_total: usize,
        tokens: usize,
        inner: usize,
        dk: usize,
    ) -> Result<(), CudaError> {
        let (tokens_int, inner_int) = (to_int(tokens), to_int(inner));
        let mut launch = self.stream.launch_builder(&self.kernels.rope);
        launch.arg(&qkv).arg(&cos).arg(&sin).arg(&tokens_int).arg(&inner_int);
        let config = LaunchConfig {
            grid_dim: (tokens_total as u32, (2 * inner / dk) as u32, 1),
            block_dim: ((dk / 2) as u32, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the signature matches `rope`; the tables cover `tokens` positions.
        unsafe { launch.launch(config)? };
        Ok(())
    }

    /// Time attention (see `time_attention` in kernels.cu).
    ///
    /// # Errors
    /// Launch errors.
    #[allow(clippy::too_many_arguments, reason = "the kernel's shape arguments")]
    pub(crate) fn time_attention(
        &self,
        qkv: u64,
        key_mask: u64,
        ctx: u64,
        rows: usize,
        heads: usize,
        tokens: usize,
        first_query: usize,
        inner: usize,
    ) -> Result<(), CudaError> {
        let queries = (tokens - first_query) as u32;
        let (tokens_int, first, inner_int) = (to_int(tokens), to_int(first_query), to_int(inner));
        let mut launch = self.stream.launch_builder(&self.kernels.time_attention);
        launch
            .arg(&qkv)
            .arg(&key_mask)
            .arg(&ctx)
            .arg(&tokens_int)
            .arg(&first)
            .arg(&inner_int);
        let config = LaunchConfig {
            grid_dim: (queries.div_ceil(TIME_TILE), heads as u32, rows as u32),
            block_dim: (TIME_TILE, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the signature matches `time_attention`; the buffers hold the pass's shapes.
        unsafe { launch.launch(config)? };
        Ok(())
    }

    /// Group attention (see `group_attention` in kernels.cu); `key_mask` 0 means none.
    ///
    /// # Errors
    /// Launch errors.
    #[allow(clippy::too_many_arguments, reason = "the kernel's buffers and shape")]
    pub(crate) fn group_attention(
        &self,
        qkv: u64,
        key_mask: Option<u64>,
        groups: &GroupIndex,
        ctx: u64,
        rows: usize,
        heads: usize,
        tokens: usize,
        inner: usize,
    ) -> Result<(), CudaError> {
        let (mask, has_mask) = (key_mask.unwrap_or(0), i32::from(key_mask.is_some()));
        let (members, begin, end) = (
            self.address(&groups.members),
            self.address(&groups.begin),
            self.address(&groups.end),
        );
        let (rows_int, tokens_int, inner_int) = (to_int(rows), to_int(tokens), to_int(inner));
        let mut launch = self.stream.launch_builder(&self.kernels.group_attention);
        launch
            .arg(&qkv)
            .arg(&mask)
            .arg(&has_mask)
            .arg(&members)
            .arg(&begin)
            .arg(&end)
            .arg(&ctx)
            .arg(&rows_int)
            .arg(&tokens_int)
            .arg(&inner_int);
        let config = LaunchConfig {
            grid_dim: (tokens as u32, heads as u32, 1),
            block_dim: ((rows as u32).clamp(32, THREADS), 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the signature matches `group_attention`; the index covers `rows` rows.
        unsafe { launch.launch(config)? };
        Ok(())
    }
}

/// A group layout on the device: `members` lists the rows group by group; row r's group is
/// `members[begin[r]..end[r]]`.
pub(crate) struct GroupIndex {
    members: CudaSlice<i32>,
    begin: CudaSlice<i32>,
    end: CudaSlice<i32>,
}

impl GroupIndex {
    /// Uploads the layout given as each row's first row (see `GroupLayout::first_rows`).
    ///
    /// # Errors
    /// Allocation errors.
    pub(crate) fn new(gpu: &Gpu, first_rows: &[usize]) -> Result<Self, CudaError> {
        let (members, begin, end) = group_index(first_rows);
        Ok(Self {
            members: gpu.upload(&members, "the group layout")?,
            begin: gpu.upload(&begin, "the group layout")?,
            end: gpu.upload(&end, "the group layout")?,
        })
    }
}

/// `(members, begin, end)` of a layout given as each row's first row: the rows sorted by
/// group (groups in the order of their first row, rows in order within a group), and each
/// row's range in that list.
pub fn group_index(first_rows: &[usize]) -> (Vec<i32>, Vec<i32>, Vec<i32>) {
    let mut order: Vec<usize> = (0..first_rows.len()).collect();
    order.sort_by_key(|&row| (first_rows[row], row));
    let (mut begin, mut end) = (vec![0; first_rows.len()], vec![0; first_rows.len()]);
    let mut start = 0;
    for run in order.chunk_by(|&a, &b| first_rows[a] == first_rows[b]) {
        for &row in run {
            begin[row] = start as i32;
            end[row] = (start + run.len()) as i32;
        }
        start += run.len();
    }
    (order.iter().map(|&r| r as i32).collect(), begin, end)
}

/// `value` as a C int (shapes of this model are far below 2³¹).
fn to_int(value: usize) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// Most blocks along a grid's y axis; the kernels loop over rows beyond it.
const MAX_GRID_Y: usize = 65_535;

/// A launch of one thread per element of `n` columns by `rows` rows (rows past
/// [`MAX_GRID_Y`] looped in the kernel).
fn grid(n: usize, rows: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: ((n as u32).div_ceil(THREADS).max(1), rows.clamp(1, MAX_GRID_Y) as u32, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_index_lists_each_rows_group() {
        // Rows 0 and 2 form a group, 1 and 4 another, 3 is alone.
        let (members, begin, end) = group_index(&[0, 1, 0, 3, 1]);
        assert_eq!(members, [0, 2, 1, 4, 3]);
        assert_eq!(begin, [0, 2, 0, 4, 2]);
        assert_eq!(end, [2, 4, 2, 5, 4]);
    }

    #[test]
    fn the_source_defines_every_kernel_and_needs_the_head_size() {
        for name in KERNEL_NAMES {
            assert!(KERNEL_SOURCE.contains(&format!("__global__ void {name}(")), "{name}");
        }
        assert!(kernel_source(64).starts_with("#define DK 64\n"));
    }
}
