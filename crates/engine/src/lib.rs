//! Execution engines for Chronos-2: the eager reference pass and the compiled (planned)
//! engine, behind one [`Engine`] that the forecast pipeline drives.
//!
//! * [`Settings`]: eager or compiled, compile mode, backend, dtype and threads, from flags and
//!   the original system's variables (`TORCH_COMPILED`, `CHRONOS_COMPILE_MODE`, ...).
//! * [`CompiledModel`]: weights repacked once; one plan (arena, group structure) per shape
//!   bucket; allocation-free calls after warm-up; one-way fallback to eager.
//!
//! ```
//! use std::sync::Arc;
//! use chronos2::{Chronos2Model, Config, ModelInput, RandomInit};
//! use chronos2_engine::{CompileMode, CompiledModel};
//!
//! let eager = Arc::new(Chronos2Model::random(Config::tiny(), 0, RandomInit::Rerandomized));
//! let compiled = CompiledModel::new(eager.clone(), CompileMode::ReduceOverhead);
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
mod settings;

use std::sync::Arc;

use chronos2::{Chronos2Model, Config, ModelInput, ModelOutput};
use chronos2_forecast::{ForecastError, Forecaster};

pub use compiled::{CompiledModel, EngineStats};
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

/// The engine a command runs: eager or compiled.
pub enum Engine {
    /// The eager reference pass.
    Eager(Arc<Chronos2Model>),
    /// The planned engine (falls back to eager on failure).
    Compiled(Box<CompiledModel>),
}

impl Engine {
    /// Builds the engine `settings` ask for around a loaded model. Sets the rayon pool size
    /// from `settings.threads` (if the global pool is not built yet).
    pub fn new(model: Arc<Chronos2Model>, settings: &Settings) -> Self {
        if settings.threads > 0 {
            // The pool can only be configured once per process; later calls keep the first.
            let _ = rayon::ThreadPoolBuilder::new()
                .num_threads(settings.threads)
                .build_global();
        }
        match settings.mode {
            Mode::Eager => Self::Eager(model),
            Mode::Compiled => Self::Compiled(Box::new(CompiledModel::new(model, settings.compile_mode))),
        }
    }

    /// Worker threads in use.
    pub fn threads() -> usize {
        rayon::current_num_threads()
    }

    /// The compiled engine's counters, if compiled.
    pub fn stats(&self) -> Option<EngineStats> {
        match self {
            Self::Eager(_) => None,
            Self::Compiled(c) => Some(c.stats()),
        }
    }

    /// One forward pass.
    ///
    /// # Errors
    /// The model's input errors.
    pub fn forward(&self, input: &ModelInput) -> Result<ModelOutput, EngineError> {
        match self {
            Self::Eager(model) => Ok(model.forward(input)?),
            Self::Compiled(compiled) => compiled.forward(input),
        }
    }

    /// The underlying eager model (also the compiled engine's fallback).
    pub fn eager_model(&self) -> &Arc<Chronos2Model> {
        match self {
            Self::Eager(model) => model,
            Self::Compiled(compiled) => compiled.eager(),
        }
    }

    /// The configuration.
    pub fn model_config(&self) -> &Config {
        match self {
            Self::Eager(model) => model.config(),
            Self::Compiled(compiled) => compiled.config(),
        }
    }
}

impl Forecaster for Engine {
    fn config(&self) -> &Config {
        self.model_config()
    }

    fn run(&self, input: &ModelInput) -> Result<ModelOutput, ForecastError> {
        self.forward(input).map_err(|e| match e {
            EngineError::Model(e) => ForecastError::Model(e),
            other => ForecastError::Input(other.to_string()),
        })
    }
}
