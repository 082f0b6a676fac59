//! Execution engines for Chronos-2: the model description (`chronos2::encoder`) run by the
//! eager executor or by the planned one (compiled mode), behind one [`Engine`] that the
//! forecast pipeline drives through [`ForwardPass`].
//!
//! * [`Settings`]: eager or compiled, compile mode, backend, dtype and threads, from flags and
//!   the original system's variables (`TORCH_COMPILED`, `CHRONOS_COMPILE_MODE`, ...).
//! * [`CompiledModel`]: weights repacked once; one plan (arena, group layout, scratch) per
//!   shape bucket; allocation-free calls after warm-up; one-way fallback to eager.
//! * One [`Pool`] per engine, sized by `--threads`, runs every kernel of either mode.
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

mod compiled;
mod packed_model;
mod plan;
mod planned;
mod settings;

use std::sync::Arc;

use chronos2::{Chronos2Model, Config, ForwardPass, ModelInput, ModelOutput};

pub use chronos2::encoder::Optimizations;
pub use chronos2::executor::Precision;
pub use chronos2_kernels::pool::Pool;
pub use compiled::{CompileOptions, CompiledModel, EngineStats};
pub use settings::{CompileMode, Mode, Settings, SettingsFlags};

/// Errors of the engines.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Unknown or unsupported settings.
    #[error("{0}")]
    Settings(String),
    /// A plan could not be built.
    #[error("cannot plan: {0}")]
    Plan(String),
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
}

impl Engine {
    /// Builds the engine `settings` ask for around a loaded model, with a pool of
    /// `settings.threads` threads (0: one per core).
    pub fn new(model: Arc<Chronos2Model>, settings: &Settings) -> Self {
        let threads = match settings.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let pool = Arc::new(Pool::new(threads));
        let precision = settings.dtype;
        let runner = match settings.mode {
            Mode::Eager if precision == Precision::BFloat16 => Runner::Eager(Arc::new(model.rounded_to_bf16())),
            Mode::Eager => Runner::Eager(model),
            Mode::Compiled => {
                let options = CompileOptions {
                    mode: settings.compile_mode,
                    precision,
                    ..CompileOptions::default()
                };
                Runner::Compiled(Box::new(CompiledModel::with_options(model, options, Arc::clone(&pool))))
            }
        };
        Self {
            runner,
            pool,
            precision,
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
            Runner::Eager(_) => None,
            Runner::Compiled(c) => Some(c),
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
        }
    }

    /// The underlying eager model (also the compiled engine's fallback).
    pub fn eager_model(&self) -> &Arc<Chronos2Model> {
        match &self.runner {
            Runner::Eager(model) => model,
            Runner::Compiled(compiled) => compiled.eager(),
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
        self.stats().map_or(0, |s| s.plans_built)
    }

    fn fallbacks(&self) -> usize {
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
                let engine = Engine::new(Arc::clone(&model), &settings);
                assert_eq!(engine.threads(), threads);
                if let Some(compiled) = engine.compiled() {
                    assert_eq!(compiled.pool().threads(), threads);
                }
            }
        }
    }
}
