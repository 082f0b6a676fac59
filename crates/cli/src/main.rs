//! `chronos2`: the command-line front end. Each subcommand parses its flags, calls one library
//! function and prints; errors become one line on stderr and exit code 1 (2 for usage errors,
//! from clap).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use chronos2::{Chronos2Model, Config, RandomInit, StorageDtype};
use clap::{Parser, Subcommand};

/// Native Chronos-2 time-series forecasting.
#[derive(Parser)]
#[command(name = "chronos2", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a checkpoint with random weights (config.json + model.safetensors).
    InitRandom(InitRandomArgs),
    /// Load a checkpoint, check it, and print its configuration and load time.
    Inspect(InspectArgs),
}

#[derive(clap::Args)]
struct InitRandomArgs {
    /// Architecture preset: `chronos-2` (the released 120M shape) or `tiny`.
    #[arg(long, default_value = "chronos-2", conflicts_with = "config")]
    preset: String,
    /// Take the architecture from this config.json instead of a preset.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Seed of the weight stream.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// `default` (the reference's init) or `rerandomized` (O(1) gains).
    #[arg(long, default_value = "default")]
    init: String,
    /// Storage dtype of the tensors: float32, bfloat16 or float16.
    #[arg(long, default_value = "float32")]
    dtype: String,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
struct InspectArgs {
    /// Checkpoint directory.
    #[arg(long)]
    model: PathBuf,
}

fn init_random(args: &InitRandomArgs) -> Result<()> {
    let config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => match args.preset.as_str() {
            "chronos-2" | "chronos2" => Config::chronos2(),
            "tiny" => Config::tiny(),
            other => bail!("unknown preset `{other}`; expected `chronos-2` or `tiny`"),
        },
    };
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
    println!(
        "wrote {} ({} parameters, {:?} init, seed {}, {}) in {:.2} s",
        args.out.display(),
        model.parameter_count(),
        init,
        args.seed,
        dtype.name(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn inspect(args: &InspectArgs) -> Result<()> {
    let started = Instant::now();
    let model =
        Chronos2Model::load(&args.model).with_context(|| format!("cannot load model {}", args.model.display()))?;
    let elapsed = started.elapsed();
    let c = model.config();
    println!("checkpoint     {}", args.model.display());
    println!("load time      {:.1} ms", elapsed.as_secs_f64() * 1e3);
    println!("parameters     {}", model.parameter_count());
    println!(
        "shape          d_model {} / d_kv {} / d_ff {} / {} layers / {} heads",
        c.d_model, c.d_kv, c.d_ff, c.num_layers, c.num_heads
    );
    println!(
        "context        {} steps, patch {}, max horizon {}",
        c.context_length,
        c.patch_size,
        c.max_horizon()
    );
    println!("quantiles      {} levels {:?}", c.num_quantiles(), c.quantiles);
    println!("storage dtype  {}", c.dtype.name());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::InitRandom(args) => init_random(args),
        Command::Inspect(args) => inspect(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
