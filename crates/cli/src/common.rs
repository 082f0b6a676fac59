//! Flags shared by every command that runs the model: which model, which engine.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chronos2::Chronos2Model;
use chronos2_engine::{Engine, Settings, SettingsFlags};

/// Which model to load.
#[derive(clap::Args, Clone, Debug)]
pub struct ModelArgs {
    /// Checkpoint directory (config.json + model.safetensors, sharded, or a cache snapshot).
    #[arg(long)]
    pub model: PathBuf,
}

/// How to run the model (flags beat the TORCH_COMPILED / CHRONOS_* variables).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct EngineArgs {
    /// `eager` (op by op, the reference path) or `compiled` (planned, fused); default from
    /// TORCH_COMPILED / CHRONOS_COMPILE, else eager.
    #[arg(long)]
    pub mode: Option<String>,
    /// `default`, `reduce-overhead` or `max-autotune`; default from CHRONOS_COMPILE_MODE, else
    /// reduce-overhead.
    #[arg(long)]
    pub compile_mode: Option<String>,
    /// Backend (`cpu`; `inductor` is accepted as an alias); default from CHRONOS_COMPILE_BACKEND.
    #[arg(long)]
    pub backend: Option<String>,
    /// Compute dtype (`float32`); default from CHRONOS_DTYPE.
    #[arg(long)]
    pub dtype: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl EngineArgs {
    /// Resolves the settings and prints them once on stderr, as the original system logged
    /// its configuration at start-up.
    pub fn settings(&self) -> Result<Settings> {
        let settings = Settings::resolve(&SettingsFlags {
            mode: self.mode.clone(),
            compile_mode: self.compile_mode.clone(),
            backend: self.backend.clone(),
            dtype: self.dtype.clone(),
            threads: self.threads,
        })?;
        for note in &settings.notes {
            eprintln!("note: {note}");
        }
        eprintln!("chronos2: {settings}");
        Ok(settings)
    }
}

/// A loaded engine and what loading cost.
pub struct Loaded {
    /// The engine.
    pub engine: Engine,
    /// Reading and checking the checkpoint.
    pub load_time: Duration,
    /// Repacking the weights (compiled mode).
    pub prepare_time: Duration,
}

/// Loads the model and builds the engine `settings` ask for.
pub fn load_engine(model: &ModelArgs, settings: &Settings) -> Result<Loaded> {
    let started = Instant::now();
    let eager =
        Chronos2Model::load(&model.model).with_context(|| format!("cannot load model {}", model.model.display()))?;
    let load_time = started.elapsed();
    let started = Instant::now();
    let engine = Engine::new(Arc::new(eager), settings);
    Ok(Loaded {
        engine,
        load_time,
        prepare_time: started.elapsed(),
    })
}
