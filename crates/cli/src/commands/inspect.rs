//! `chronos2 inspect`: load a checkpoint, check it, print what it is.

use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Result};

use crate::common::ModelArgs;

/// Load a checkpoint, check every tensor (names, shapes, and that every weight is a finite
/// number), and print its configuration and load time.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
}

/// Runs the command.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    let started = Instant::now();
    let (model, label) = args.model.load()?;
    let elapsed = started.elapsed();
    if let Some((first, count)) = model.weights().non_finite() {
        bail!(
            "{label}: {count} weight(s) are not finite numbers, the first {} at index {} of tensor `{}`; the checkpoint is corrupt (every forecast from it would be NaN)",
            first.value,
            first.index,
            first.tensor
        );
    }
    let c = model.config();
    writeln!(out, "checkpoint     {label}")?;
    writeln!(out, "load time      {:.1} ms", elapsed.as_secs_f64() * 1e3)?;
    writeln!(out, "parameters     {}", model.parameter_count())?;
    writeln!(
        out,
        "shape          d_model {} / d_kv {} / d_ff {} / {} layers / {} heads",
        c.d_model, c.d_kv, c.d_ff, c.num_layers, c.num_heads
    )?;
    writeln!(
        out,
        "context        {} steps, patch {}, max horizon per pass {}",
        c.context_length,
        c.patch_size,
        c.max_horizon()
    )?;
    writeln!(out, "quantiles      {} levels {:?}", c.num_quantiles(), c.quantiles)?;
    writeln!(out, "storage dtype  {}", c.dtype.name())?;
    writeln!(out, "weights        all finite")?;
    Ok(())
}
