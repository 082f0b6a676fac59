//! `chronos2 init-random`: write a checkpoint with random weights.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use chronos2::{Chronos2Model, Config, RandomInit, StorageDtype};

/// Write a checkpoint with random weights (config.json + model.safetensors) of any
/// Chronos-2 configuration, loadable here and by the reference package.
#[derive(clap::Args)]
pub struct Args {
    /// Architecture preset: `chronos-2` (the released 120M shape) or `tiny`.
    #[arg(long, default_value = "chronos-2", conflicts_with = "config")]
    preset: String,
    /// Take the architecture from this config.json instead of a preset.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Seed of the weight stream.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// `default` (the reference's init) or `rerandomized` (O(1) gains, exposes kernel bugs).
    #[arg(long, default_value = "default")]
    init: String,
    /// Storage dtype of the tensors: float32, bfloat16 or float16.
    #[arg(long, default_value = "float32")]
    dtype: String,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
}

/// Runs the command.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    let config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => match args.preset.as_str() {
            "chronos-2" | "chronos2" => Config::chronos2(),
            "tiny" => Config::tiny(),
            other => bail!("unknown --preset `{other}`; expected `chronos-2` or `tiny`"),
        },
    };
    if !(config.initializer_factor.is_finite() && config.initializer_factor > 0.0) {
        bail!(
            "initializer_factor must be a positive number, found {}",
            config.initializer_factor
        );
    }
    let Some(init) = RandomInit::parse(&args.init) else {
        bail!("unknown --init `{}`; expected `default` or `rerandomized`", args.init);
    };
    let Some(dtype) = StorageDtype::parse(&args.dtype) else {
        bail!(
            "unknown --dtype `{}`; expected float32, bfloat16 or float16",
            args.dtype
        );
    };
    let started = Instant::now();
    let model = Chronos2Model::random(config, args.seed, init);
    model.save(&args.out, dtype)?;
    writeln!(
        out,
        "wrote {} ({} parameters, {init:?} init, seed {}, {}) in {:.2} s",
        args.out.display(),
        model.parameter_count(),
        args.seed,
        dtype.name(),
        started.elapsed().as_secs_f64()
    )?;
    Ok(())
}
