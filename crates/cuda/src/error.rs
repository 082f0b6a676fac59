//! [`CudaError`]: everything that can go wrong on the GPU, as one line each.

/// Errors of the CUDA executor. Each is one line naming what failed; any of them makes the
/// model fall back to the CPU eager executor.
#[derive(Debug, thiserror::Error)]
pub enum CudaError {
    /// A CUDA library (driver, cuBLAS, NVRTC) is not installed or not on the loader path.
    #[error("{0}")]
    Unavailable(String),
    /// A CUDA driver call failed.
    #[error("CUDA driver: {0}")]
    Driver(String),
    /// A cuBLAS call failed.
    #[error("cuBLAS: {0}")]
    Blas(String),
    /// NVRTC could not compile the kernels.
    #[error("NVRTC could not compile the chronos2 kernels: {0}")]
    Compile(String),
    /// The GPU has not enough free memory.
    #[error("the GPU has {free} bytes free, {needed} are needed for {what}; use fewer rows per call or --device cpu")]
    Memory {
        /// What needed the memory.
        what: String,
        /// Bytes needed.
        needed: usize,
        /// Bytes free.
        free: usize,
    },
}

impl From<cudarc::driver::DriverError> for CudaError {
    fn from(e: cudarc::driver::DriverError) -> Self {
        Self::Driver(e.to_string())
    }
}

impl From<cudarc::cublas::result::CublasError> for CudaError {
    fn from(e: cudarc::cublas::result::CublasError) -> Self {
        Self::Blas(format!("{e:?}"))
    }
}
