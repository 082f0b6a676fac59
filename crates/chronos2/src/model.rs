//! [`Chronos2Model`]: a loaded checkpoint (configuration + weights) and its eager forward pass.

use std::path::Path;

use crate::checkpoint::{self, CheckpointFiles};
use chronos2_kernels::pool::Pool;

use crate::config::{Config, StorageDtype};
use crate::eager::EagerExecutor;
use crate::encoder::{ActivationArena, Optimizations, Pass};
use crate::error::Error;
use crate::executor::Precision;
use crate::input::{Encoded, ModelInput, ModelOutput};
use crate::random::{random_weights, save_checkpoint, RandomInit};
use crate::weights::Weights;

/// A Chronos-2 model ready to run: the resolved configuration and every weight in f32.
#[derive(Clone, Debug)]
pub struct Chronos2Model {
    config: Config,
    weights: Weights,
    origin: ModelOrigin,
}

/// Where a model's weights came from: what a cache of weights prepared from them is keyed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelOrigin {
    /// Checkpoint files on disk.
    Files(CheckpointFiles),
    /// A checkpoint held in memory for the life of the process (the built-in model).
    Embedded {
        /// What the model is called.
        name: String,
        /// Its `config.json` text.
        config_json: String,
        /// Its safetensors bytes.
        weights: &'static [u8],
    },
    /// Made in this process (random weights, or weights transformed after loading): nothing
    /// outside the process can stand for it.
    Generated,
}

impl Chronos2Model {
    /// Loads the checkpoint in `path` (see [`CheckpointFiles::locate`] for the layouts).
    /// The weight files are memory-mapped; f32 tensors are used in place.
    ///
    /// # Errors
    /// A clear [`Error`] naming the file and field or tensor for every problem: no checkpoint,
    /// bad config, truncated file, missing, misshapen or extra tensors.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        let files = CheckpointFiles::locate(path.as_ref())?;
        let (config, weights) = checkpoint::load(&files)?;
        Ok(Self {
            config,
            weights,
            origin: ModelOrigin::Files(files),
        })
    }

    /// Loads a checkpoint held in memory (`config.json` text and a safetensors buffer), such
    /// as a model compiled into the binary; `name` stands for it in error messages.
    ///
    /// # Errors
    /// As [`load`](Self::load).
    pub fn from_memory(name: &str, config_json: &str, weights: &'static [u8]) -> Result<Self, Error> {
        let (config, loaded) = checkpoint::load_from_memory(name, config_json, std::sync::Arc::new(weights))?;
        Ok(Self {
            config,
            weights: loaded,
            origin: ModelOrigin::Embedded {
                name: name.to_owned(),
                config_json: config_json.to_owned(),
                weights,
            },
        })
    }

    /// A model with random weights of the given configuration (see [`RandomInit`]).
    pub fn random(config: Config, seed: u64, init: RandomInit) -> Self {
        let weights = random_weights(&config, seed, init);
        Self {
            config,
            weights,
            origin: ModelOrigin::Generated,
        }
    }

    /// Writes the model as `config.json` + `model.safetensors` into `dir`, tensors stored as
    /// `dtype` (rounded if not f32).
    ///
    /// # Errors
    /// [`Error::Io`] if the files cannot be written.
    pub fn save(&self, dir: impl AsRef<Path>, dtype: StorageDtype) -> Result<(), Error> {
        save_checkpoint(dir.as_ref(), &self.config, &self.weights, dtype)
    }

    /// The resolved configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The weights.
    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    /// Where the weights came from.
    pub fn origin(&self) -> &ModelOrigin {
        &self.origin
    }

    /// The same model with its encoder-block weights rounded to bfloat16 (see
    /// [`Weights::rounded_to_bf16`]): the eager reference of bf16 execution.
    pub fn rounded_to_bf16(&self) -> Self {
        Self {
            config: self.config.clone(),
            weights: self.weights.rounded_to_bf16(),
            origin: ModelOrigin::Generated,
        }
    }

    /// Number of parameters (119,477,664 for `amazon/chronos-2`).
    pub fn parameter_count(&self) -> usize {
        self.weights.parameter_count()
    }

    /// The eager forward pass: quantile forecasts `(B, Q, M·P)` in the data's units, matrix
    /// products on the process-wide pool (all cores).
    ///
    /// # Errors
    /// [`Error::Input`] for inconsistent input shapes.
    pub fn forward(&self, input: &ModelInput) -> Result<ModelOutput, Error> {
        self.forward_with(input, Pool::global())
    }

    /// The eager forward pass with its matrix products split over `pool`.
    ///
    /// # Errors
    /// [`Error::Input`] for inconsistent input shapes.
    pub fn forward_with(&self, input: &ModelInput, pool: &Pool) -> Result<ModelOutput, Error> {
        self.forward_in(input, pool, Precision::Float32)
    }

    /// The eager forward pass in `precision` (for bf16, call it on the model returned by
    /// [`rounded_to_bf16`](Self::rounded_to_bf16)).
    ///
    /// # Errors
    /// [`Error::Input`] for inconsistent input shapes.
    pub fn forward_in(&self, input: &ModelInput, pool: &Pool, precision: Precision) -> Result<ModelOutput, Error> {
        input.validate(&self.config)?;
        let pass = Pass::for_input(&self.config, input, Optimizations::NONE);
        let mut arena = ActivationArena::new(&self.config, &pass);
        let mut out = ModelOutput::empty();
        let executor = EagerExecutor::new(&self.config, &self.weights, pool).with_precision(precision);
        arena.forward(executor, &self.config, &pass, input, &mut out)?;
        Ok(out)
    }

    /// The encoder's final hidden states `(B, S, D)` (`Chronos2Model.encode`).
    ///
    /// # Errors
    /// [`Error::Input`] for inconsistent input shapes.
    pub fn encode(&self, input: &ModelInput) -> Result<Encoded, Error> {
        input.validate(&self.config)?;
        let pass = Pass::for_input(&self.config, input, Optimizations::NONE);
        let mut arena = ActivationArena::new(&self.config, &pass);
        let executor = EagerExecutor::new(&self.config, &self.weights, Pool::global());
        arena.encode(executor, &self.config, &pass, input)
    }
}

/// Anything that runs the Chronos-2 forward pass: the eager model, the compiled engine. The
/// forecast pipeline, the backtest and the benchmarks drive models through it.
pub trait ForwardPass: Sync {
    /// The model's configuration.
    fn config(&self) -> &Config;

    /// One forward pass: quantile forecasts `(B, Q, M·P)`.
    ///
    /// # Errors
    /// [`Error::Input`] for input the model cannot take; [`Error::Execution`] if the
    /// executor failed.
    fn forward(&self, input: &ModelInput) -> Result<ModelOutput, Error>;

    /// Execution plans built so far (0 for executors that do not plan).
    fn plans_built(&self) -> usize {
        0
    }

    /// Times the executor gave up and fell back to eager (0 for those that cannot).
    fn fallbacks(&self) -> usize {
        0
    }
}

impl ForwardPass for Chronos2Model {
    fn config(&self) -> &Config {
        &self.config
    }

    fn forward(&self, input: &ModelInput) -> Result<ModelOutput, Error> {
        Chronos2Model::forward(self, input)
    }
}
