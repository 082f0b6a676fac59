//! Flags shared by every command that runs the model: which model, which engine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chronos2::Chronos2Model;
use chronos2_engine::{Engine, Mode, Settings, SettingsFlags};
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
            stderr_line(format_args!("note: {notice}"));
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
    /// Precision of the encoder blocks: `float32`, `bfloat16` (`bf16`) or `int8` (weights per
    /// channel, activations per row); default from CHRONOS_DTYPE.
    #[arg(long)]
    pub dtype: Option<String>,
    /// Compiled mode's cache of prepared weights: `prefer` (use it, else create it), `never`,
    /// `only` (fail without a valid entry); default from CHRONOS_COMPILE_CACHE, else prefer.
    /// Directory: CHRONOS2_CACHE_DIR, else ~/.cache/chronos2 (`chronos2 cache list`).
    #[arg(long)]
    pub compile_cache: Option<String>,
    /// Where the model runs: `cpu`, `cuda` or `cuda:N` (builds with `--features cuda` only);
    /// default from CHRONOS_DEVICE, else cpu.
    #[arg(long)]
    pub device: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long, env = "CHRONOS2_THREADS")]
    pub threads: Option<usize>,
    /// Compiled mode: plan these buckets at load, `ROWSxCONTEXTxHORIZON` separated by commas
    /// (e.g. `1x512x16,32x512x16`); other shapes are planned on first use.
    #[arg(long, env = "CHRONOS2_WARMUP")]
    pub warmup: Option<String>,
}

/// Most rows a `--warmup` bucket may plan (the pipeline's batches are far smaller).
pub const MAX_WARMUP_ROWS: usize = 4096;

/// Writes one line on stderr. A closed or full stderr (`2>/dev/full`, `2>&1 | head -1`) is
/// ignored: a note must never crash the program, as `eprintln!` would.
pub fn stderr_line(line: impl std::fmt::Display) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Physical memory (Linux `/proc/meminfo`), if known.
fn total_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Parses `ROWSxCONTEXTxHORIZON,...` and checks each bucket against the model: rows up to
/// [`MAX_WARMUP_ROWS`], context up to the model's context length, horizon up to the
/// forecast pipeline's limit. The message names the limit and the memory the bucket needs.
fn parse_shapes(text: &str, config: &chronos2::Config) -> Result<Vec<(usize, usize, usize)>> {
    text.split(',')
        .map(|item| {
            let parts: Vec<Option<usize>> = item.trim().split('x').map(|p| p.trim().parse().ok()).collect();
            let &[Some(rows), Some(context), Some(horizon)] = parts.as_slice() else {
                anyhow::bail!("cannot read --warmup shape `{item}`; expected ROWSxCONTEXTxHORIZON, e.g. 1x512x16");
            };
            if rows == 0 || context == 0 || horizon == 0 {
                anyhow::bail!("--warmup shape `{item}`: rows, context and horizon must be at least 1");
            }
            let max_horizon = chronos2_forecast::max_prediction_length(config);
            // Lower bound of one plan: every row's tokens through D-wide activations, the
            // feed-forward hidden layer and the time-attention scores.
            let tokens = context.min(config.context_length).div_ceil(config.patch_size) as f64
                + 1.0
                + horizon.div_ceil(config.patch_size).min(config.max_output_patches) as f64;
            let per_token = 4.0 * config.d_model as f64 + config.d_ff as f64 + (config.num_heads as f64) * tokens;
            let bytes = rows as f64 * tokens * per_token * 4.0;
            let memory = total_memory_bytes();
            if rows > MAX_WARMUP_ROWS
                || context > config.context_length
                || horizon > max_horizon
                || memory.is_some_and(|m| bytes > m as f64)
            {
                anyhow::bail!(
                    "--warmup shape `{item}` is too large: a plan of it needs at least {:.1} GB{}; at most {MAX_WARMUP_ROWS} rows, context {} and horizon {max_horizon} for this model",
                    bytes / 1e9,
                    memory.map_or(String::new(), |m| format!(" (this machine has {:.1} GB)", m as f64 / 1e9)),
                    config.context_length
                );
            }
            Ok((rows, context, horizon))
        })
        .collect()
}

impl EngineArgs {
    /// Resolves the settings and prints them once on stderr, as the original system logged
    /// its configuration at start-up.
    pub fn settings(&self) -> Result<Settings> {
        self.settings_defaulting(Mode::Eager)
    }

    /// As [`settings`](Self::settings), with `default` as the mode when neither `--mode` nor
    /// the variables choose one.
    pub fn settings_defaulting(&self, default: Mode) -> Result<Settings> {
        let flags = SettingsFlags {
            mode: self.mode.clone(),
            compile_mode: self.compile_mode.clone(),
            backend: self.backend.clone(),
            dtype: self.dtype.clone(),
            threads: self.threads,
            compile_cache: self.compile_cache.clone(),
            device: self.device.clone(),
        };
        let settings = Settings::resolve_defaulting(&flags, default)?;
        let settings = Settings {
            warmup: self.warmup.clone(),
            ..settings
        };
        for note in &settings.notes {
            stderr_line(format_args!("note: {note}"));
        }
        stderr_line(format_args!("chronos2: {settings}"));
        stderr_line(format_args!(
            "chronos2: {}",
            chronos2_bench::KernelLevels::startup_line(settings.dtype == chronos2::executor::Precision::BFloat16)
        ));
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
    let shapes = match &settings.warmup {
        Some(text) => parse_shapes(text, eager.config())?,
        None => Vec::new(),
    };
    let engine = Engine::new(Arc::new(eager), settings)?;
    if let (false, Some(compiled)) = (shapes.is_empty(), engine.compiled()) {
        let planning = compiled.warm_up(&shapes)?;
        stderr_line(format_args!(
            "chronos2: planned {} bucket(s) in {:.1} ms",
            compiled.stats().plans_built,
            planning.as_secs_f64() * 1e3
        ));
    }
    #[cfg(feature = "cuda")]
    if let (false, Some(gpu)) = (shapes.is_empty(), engine.cuda()) {
        let setup = gpu.warm_up(&shapes)?;
        stderr_line(format_args!(
            "chronos2: set up {} GPU bucket(s) ({} CUDA graph(s)) in {:.1} ms",
            gpu.stats().buckets,
            gpu.stats().graphs_captured,
            setup.as_secs_f64() * 1e3
        ));
    }
    Ok(Loaded {
        label,
        engine,
        load_time,
        prepare_time: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--warmup 100000x512x16` (28 GB) and shapes near 2^64 are refused up front.
    #[test]
    fn warmup_shapes_are_bounded() {
        let config = chronos2::Config::chronos2();
        assert_eq!(
            parse_shapes("1x512x16, 32x512x16", &config).unwrap(),
            [(1, 512, 16), (32, 512, 16)]
        );
        let err = parse_shapes("100000x512x16", &config).unwrap_err().to_string();
        assert!(
            err.contains("at most 4096 rows") && err.contains("needs at least"),
            "{err}"
        );
        let err = parse_shapes("1x18446744073709551615x16", &config)
            .unwrap_err()
            .to_string();
        assert!(err.contains("too large"), "{err}");
        let err = parse_shapes("1x512x18446744073709551616", &config)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read"), "{err}");
        assert!(parse_shapes("0x512x16", &config)
            .unwrap_err()
            .to_string()
            .contains("at least 1"));
    }
}
