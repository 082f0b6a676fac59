//! Chronos-2 on NVIDIA GPUs: the third executor of the model description
//! (`chronos2::encoder`), after the CPU's eager and planned executors. Built only with the
//! cargo feature `cuda` of `chronos2-engine` / `chronos2-cli`; the default build never
//! compiles it.
//!
//! * [`CudaModel`]: weights uploaded once (f32, or bf16 for the encoder blocks); one bucket
//!   per shape (device arena, RoPE tables, group layout); in compiled mode one CUDA graph per
//!   bucket, captured after a warm-up pass and replayed (nothing allocated, nothing launched
//!   one by one); in eager mode the same steps launched one by one; a one-way fallback to the
//!   CPU eager executor on any GPU error (one warning, counted).
//! * [`Gpu`]: the context, stream, cuBLAS (TF32 off: f32 products stay f32) and the kernels of
//!   `kernels.cu` (RMS norm, ReLU, bias, bf16 rounding, row copies, RoPE, flash-style time
//!   attention, group attention), compiled with NVRTC at load for the model's head size.
//!
//! The CUDA libraries (driver, cuBLAS, NVRTC) are loaded at run time, so this crate builds on
//! machines without them; [`missing_library`] says which one a machine lacks. Instance
//! normalisation, patching and the denormalised output stay on the host (an upload and a
//! download per call, through [`chronos2::executor::Executor::write_host`] and
//! [`read_host`](chronos2::executor::Executor::read_host)).

#![deny(missing_docs)]
// The one crate besides chronos2-kernels with `unsafe`: FFI calls into CUDA, each with its
// reason.
#![deny(clippy::undocumented_unsafe_blocks)]

mod error;
mod executor;
mod gpu;
mod model;
mod weights;

pub use error::CudaError;
pub use gpu::{
    compile_kernels, compile_source, group_index, kernel_source, missing_library, nvrtc_available, Gpu, KERNEL_NAMES,
    KERNEL_SOURCE,
};
pub use model::{CudaModel, CudaOptions, CudaStats};
