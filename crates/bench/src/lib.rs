//! Measuring the engines honestly: load, warm-up apart from steady state, latency
//! distributions, plans built after warm-up, fallbacks, non-finite outputs, errors, memory,
//! achieved GFLOP/s next to this machine's GEMM rates and measured peaks, and long runs on
//! varying real inputs.
//!
//! [`compare`] runs eager and compiled on the same walk-forward backtests and reports the
//! [`verdict`].
//!
//! Nothing is cached between timed calls: every timed call runs the model on its input (a
//! test proves it with a counting model).
//!
//! ```
//! use chronos2_bench::Summary;
//! let s = Summary::of(&[3.0, 1.0, 2.0, 4.0]);
//! assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 4.0));
//! ```

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod compare;
pub mod load;
mod machine;
pub mod process;
mod runner;
mod stats;
pub mod verdict;

pub use chronos2_kernels::peak::{Family, KernelLevels};
pub use machine::{
    current_rss_bytes, family_of, gemm_rate, peak_rss_bytes, GemmProbe, MachineInfo, OfPeak, PeakRate, PeakReport,
    ABOVE_PEAK_NOTE, REFERENCE_FLOPS_NOTE,
};
pub use runner::{model_flops, run_case, run_for, shape_case, CaseResult, DurationResult, ShapeCase, SHAPE_CASES};
pub use stats::Summary;
