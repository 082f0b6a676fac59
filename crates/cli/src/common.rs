//! Flags shared by every command that runs the model: which model, which engine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chronos2::Chronos2Model;
use chronos2_engine::{Engine, Settings, SettingsFlags};
use chronos2_hub::{resolve, ResolveOptions, Resolved};

/// Which model to load.
#[derive(clap::Args, Clone, Debug)]
pub struct ModelArgs {
    /// A checkpoint directory, a Hugging Face repo id (`amazon/chronos-2`, from the cache or
    /// downloaded), or `builtin`; default: CHRONOS2_MODEL, else the built-in model.
    #[arg(long)]
    pub model: Option<String>,
    /// Never use the network (like HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
}

impl ModelArgs {
    /// Resolves the spec; prints the resolution notice (if any) on stderr.
    pub fn resolve(&self) -> Result<Resolved> {
        let resolved = resolve(self.model.as_deref(), &ResolveOptions::from_env(self.offline))?;
        if let Some(notice) = &resolved.notice {
            eprintln!("note: {notice}");
        }
        Ok(resolved)
    }

    /// Resolves and loads the model.
    pub fn load(&self) -> Result<(Chronos2Model, String)> {
        let resolved = self.resolve()?;
        let model = resolved
            .load()
            .with_context(|| format!("cannot load model {}", resolved.label))?;
        Ok((model, resolved.label))
    }
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
    /// Compiled mode: plan these buckets at load, `ROWSxCONTEXTxHORIZON` separated by commas
    /// (e.g. `1x512x16,32x512x16`); other shapes are planned on first use.
    #[arg(long)]
    pub warmup: Option<String>,
}

/// Parses `ROWSxCONTEXTxHORIZON,...`.
fn parse_shapes(text: &str) -> Result<Vec<(usize, usize, usize)>> {
    text.split(',')
        .map(|item| {
            let parts: Vec<usize> = item.trim().split('x').filter_map(|p| p.parse().ok()).collect();
            match parts.as_slice() {
                [rows, context, horizon] if *rows > 0 && *context > 0 && *horizon > 0 => {
                    Ok((*rows, *context, *horizon))
                }
                _ => anyhow::bail!("cannot read --warmup shape `{item}`; expected ROWSxCONTEXTxHORIZON, e.g. 1x512x16"),
            }
        })
        .collect()
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
        let settings = Settings {
            warmup: self.warmup.clone(),
            ..settings
        };
        for note in &settings.notes {
            eprintln!("note: {note}");
        }
        eprintln!("chronos2: {settings}");
        Ok(settings)
    }
}

/// A loaded engine and what loading cost.
pub struct Loaded {
    /// What the model is called in reports.
    pub label: String,
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
    let (eager, label) = model.load()?;
    let load_time = started.elapsed();
    let started = Instant::now();
    let engine = Engine::new(Arc::new(eager), settings);
    if let (Some(shapes), Some(compiled)) = (&settings.warmup, engine.compiled()) {
        let planning = compiled.warm_up(&parse_shapes(shapes)?)?;
        eprintln!(
            "chronos2: planned {} bucket(s) in {:.1} ms",
            compiled.stats().plans_built,
            planning.as_secs_f64() * 1e3
        );
    }
    Ok(Loaded {
        label,
        engine,
        load_time,
        prepare_time: started.elapsed(),
    })
}
