//! `chronos2 init-random`: write a checkpoint with random weights.

use std::io::Write;
use std::path::{Path, PathBuf};
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
    /// Output directory: new or empty (or holding a checkpoint, with --force).
    #[arg(long)]
    out: PathBuf,
    /// Replace the config.json and model.safetensors of a folder that is not empty.
    #[arg(long)]
    force: bool,
}

/// Refuses to write into a folder that holds anything unless `force`: what is there is the
/// user's, not ours.
fn check_out(out: &Path, force: bool) -> Result<()> {
    if out.exists() && !out.is_dir() {
        bail!("--out {} exists and is not a folder; pass a new folder", out.display());
    }
    let mut entries: Vec<String> = match std::fs::read_dir(out) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => bail!("cannot read --out {}: {e}", out.display()),
    };
    if !entries.is_empty() && !force {
        entries.sort();
        let shown = entries.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
        let more = if entries.len() > 5 { ", ..." } else { "" };
        bail!(
            "--out {} is not empty (it holds {shown}{more}); pass a new or empty folder, or --force to replace config.json and model.safetensors in it",
            out.display()
        );
    }
    Ok(())
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
    check_out(&args.out, args.force)?;
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

#[cfg(test)]
mod tests {
    use super::check_out;

    /// An existing checkpoint (or anything else) is never replaced silently.
    #[test]
    fn a_folder_that_is_not_empty_needs_force() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_out(&dir.path().join("new"), false).is_ok());
        assert!(check_out(dir.path(), false).is_ok());
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        let err = check_out(dir.path(), false).unwrap_err().to_string();
        assert!(
            err.contains("not empty") && err.contains("config.json") && err.contains("--force"),
            "{err}"
        );
        assert!(check_out(dir.path(), true).is_ok());
        let err = check_out(&dir.path().join("config.json"), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a folder"), "{err}");
        assert!(check_out(std::path::Path::new("/"), false).is_err());
    }
}
