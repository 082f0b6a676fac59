//! Execution engines for Chronos-2: the model description (`chronos2::encoder`) run by the
//! eager executor or by the planned one (compiled mode), behind one [`Engine`] that the
//! forecast pipeline drives through [`ForwardPass`].
//!
//! * [`Settings`]: eager or compiled, compile mode, backend, dtype and threads, from flags and
//!   the original system's variables (`TORCH_COMPILED`, `CHRONOS_COMPILE_MODE`, ...).
//! * [`CompiledModel`]: weights repacked once; one plan (arena, group layout, scratch) per
//!   shape bucket; allocation-free calls after warm-up; one-way fallback to eager.
//! * One [`Pool`] per engine, sized by `--threads`, runs every kernel of either mode.
//! * [`Device`]: `--device cpu|cuda[:N]` / `CHRONOS_DEVICE`. With the cargo feature `cuda`,
//!   a GPU device runs the same description on the CUDA executor (`chronos2_cuda`, eager or
//!   with CUDA graphs); without it, a GPU is refused with the way to build one.
//!
//! ```
//! use std::sync::Arc;
//! use chronos2::{Chronos2Model, Config, ModelInput, RandomInit};
//! use chronos2_engine::{CompileMode, CompiledModel, Pool};
//!
//! let eager = Arc::new(Chronos2Model::random(Config::tiny(), 0, RandomInit::Rerandomized));
//! let compiled = CompiledModel::new(eager.clone(), CompileMode::ReduceOverhead, Arc::new(Pool::new(2)));
//! let input = ModelInput::from_rows(&[vec![1.0, 2.0, 3.0, 2.0, 1.0]])?;
//! let (a, b) = (eager.forward(&input)?, compiled.forward(&input)?);
//! let worst = a.quantile_preds.iter().zip(&b.quantile_preds).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
//! assert!(worst <= 1e-5 * a.quantile_preds.iter().fold(1.0f32, |m, v| m.max(v.abs())));
//! assert_eq!(compiled.stats().plans_built, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod cache;
mod compiled;
mod device;
mod packed_model;
mod plan;
mod planned;
mod settings;

use std::sync::Arc;

use chronos2::{Chronos2Model, Config, ForwardPass, ModelInput, ModelOutput};

pub use cache::{CacheOutcome, CachePolicy};
pub use chronos2::encoder::Optimizations;
pub use chronos2::executor::Precision;
pub use chronos2_kernels::pool::Pool;
pub use compiled::{CompileOptions, CompiledModel, EngineStats};
pub use device::Device;
pub use settings::{CompileMode, Mode, Settings, SettingsFlags};

/// The CUDA executor (cargo feature `cuda`).
#[cfg(feature = "cuda")]
pub use chronos2_cuda;

/// Errors of the engines.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Unknown or unsupported settings.
    #[error("{0}")]
    Settings(String),
    /// A plan could not be built.
    #[error("cannot plan: {0}")]
    Plan(String),
    /// The compile cache cannot serve the request (`--compile-cache only` without an entry).
    #[error("{0}")]
    Cache(String),
    /// A lock was poisoned by a panic in another thread.
    #[error("the engine's plan cache was poisoned by an earlier panic")]
    Poisoned,
    /// The model rejected the input.
    #[error(transparent)]
    Model(#[from] chronos2::Error),
}

impl EngineError {
    /// The error as the model crate's type (input errors stay input errors).
    pub fn into_model_error(self) -> chronos2::Error {
        match self {
            Self::Model(e) => e,
            other => chronos2::Error::Execution(other.to_string()),
        }
    }
}

/// The engine a command runs: eager or compiled, with the pool both run on.
pub struct Engine {
    runner: Runner,
    pool: Arc<Pool>,
    precision: Precision,
}

/// What runs the description: the eager model or the compiled engine.
enum Runner {
    Eager(Arc<Chronos2Model>),
    Compiled(Box<CompiledModel>),
    /// The CUDA executor (`--device cuda`, eager or compiled with CUDA graphs).
    #[cfg(feature = "cuda")]
    Cuda(Box<chronos2_cuda::CudaModel>),
}

impl Engine {
    /// Builds the engine `settings` ask for around a loaded model, with a pool of
    /// `settings.threads` threads (0: one per core). Compiled mode reads its prepared weights
    /// from the compile cache, or writes them there, as `settings.compile_cache` says.
    ///
    /// # Errors
    /// [`EngineError::Cache`] for `--compile-cache only` without a valid entry.
    pub fn new(model: Arc<Chronos2Model>, settings: &Settings) -> Result<Self, EngineError> {
        let threads = match settings.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let pool = Arc::new(Pool::new(threads));
        let precision = settings.dtype;
        if let Device::Cuda(ordinal) = settings.device {
            return Self::on_gpu(model, settings, ordinal, pool);
        }
        let runner = match settings.mode {
            Mode::Eager if precision == Precision::BFloat16 => Runner::Eager(Arc::new(model.rounded_to_bf16())),
            Mode::Eager => Runner::Eager(model),
            Mode::Compiled => {
                let options = CompileOptions {
                    mode: settings.compile_mode,
                    precision,
                    ..CompileOptions::default()
                };
                Runner::Compiled(Box::new(CompiledModel::with_cache(
                    model,
                    options,
                    Arc::clone(&pool),
                    settings.compile_cache,
                    settings.cache_dir.as_deref(),
                )?))
            }
        };
        Ok(Self {
            runner,
            pool,
            precision,
        })
    }

    /// The CUDA engine on GPU `ordinal`: compiled mode captures CUDA graphs, eager mode
    /// launches the same steps one by one; any GPU failure falls back to the CPU eager
    /// executor (one warning, counted).
    #[cfg(feature = "cuda")]
    fn on_gpu(
        model: Arc<Chronos2Model>,
        settings: &Settings,
        ordinal: usize,
        pool: Arc<Pool>,
    ) -> Result<Self, EngineError> {
        let options = chronos2_cuda::CudaOptions {
            ordinal,
            precision: settings.dtype,
            graphs: settings.mode == Mode::Compiled,
            ..chronos2_cuda::CudaOptions::default()
        };
        let gpu = chronos2_cuda::CudaModel::new(model, options, Arc::clone(&pool));
        let runner = Runner::Cuda(Box::new(gpu));
        Ok(Self {
            runner,
            pool,
            precision: settings.dtype,
        })
    }

    /// Without the `cuda` feature there is no GPU engine.
    #[cfg(not(feature = "cuda"))]
    fn on_gpu(_: Arc<Chronos2Model>, _: &Settings, ordinal: usize, _: Arc<Pool>) -> Result<Self, EngineError> {
        Err(EngineError::Settings(format!(
            "--device cuda:{ordinal}: this chronos2 was built without GPU support; rebuild with `--features cuda`"
        )))
    }

    /// The CUDA engine, if running on a GPU.
    #[cfg(feature = "cuda")]
    pub fn cuda(&self) -> Option<&chronos2_cuda::CudaModel> {
        match &self.runner {
            Runner::Cuda(model) => Some(model),
            _ => None,
        }
    }

    /// The precision of the encoder blocks.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Threads that run the model (the pool's size, the calling thread included).
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// The compiled engine, if compiled.
    pub fn compiled(&self) -> Option<&CompiledModel> {
        match &self.runner {
            Runner::Compiled(c) => Some(c),
            _ => None,
        }
    }

    /// The compiled engine's counters, if compiled.
    pub fn stats(&self) -> Option<EngineStats> {
        self.compiled().map(CompiledModel::stats)
    }

    /// One forward pass.
    ///
    /// # Errors
    /// The model's input errors.
    pub fn forward(&self, input: &ModelInput) -> Result<ModelOutput, EngineError> {
        match &self.runner {
            Runner::Eager(model) => Ok(model.forward_in(input, &self.pool, self.precision)?),
            Runner::Compiled(compiled) => compiled.forward(input),
            #[cfg(feature = "cuda")]
            Runner::Cuda(model) => Ok(ForwardPass::forward(model.as_ref(), input)?),
        }
    }

    /// The underlying eager model (also the compiled engine's fallback).
    pub fn eager_model(&self) -> &Arc<Chronos2Model> {
        match &self.runner {
            Runner::Eager(model) => model,
            Runner::Compiled(compiled) => compiled.eager(),
            #[cfg(feature = "cuda")]
            Runner::Cuda(model) => model.eager(),
        }
    }

    /// The configuration.
    pub fn model_config(&self) -> &Config {
        self.eager_model().config()
    }
}

impl ForwardPass for Engine {
    fn config(&self) -> &Config {
        self.model_config()
    }

    fn forward(&self, input: &ModelInput) -> Result<ModelOutput, chronos2::Error> {
        Engine::forward(self, input).map_err(EngineError::into_model_error)
    }

    fn plans_built(&self) -> usize {
        #[cfg(feature = "cuda")]
        if let Some(gpu) = self.cuda() {
            return gpu.plans_built();
        }
        self.stats().map_or(0, |s| s.plans_built)
    }

    fn fallbacks(&self) -> usize {
        #[cfg(feature = "cuda")]
        if let Some(gpu) = self.cuda() {
            return gpu.fallbacks();
        }
        self.stats().map_or(0, |s| s.fallbacks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronos2::RandomInit;

    #[test]
    fn the_threads_setting_sizes_the_pool_of_either_mode() {
        let model = Arc::new(Chronos2Model::random(Config::tiny(), 0, RandomInit::Default));
        for mode in [Mode::Eager, Mode::Compiled] {
            for threads in [1, 3] {
                let settings = Settings {
                    mode,
                    threads,
                    ..Settings::default()
                };
                let engine = Engine::new(Arc::clone(&model), &settings).unwrap();
                assert_eq!(engine.threads(), threads);
                if let Some(compiled) = engine.compiled() {
                    assert_eq!(compiled.pool().threads(), threads);
                }
            }
        }
    }
}
