//! `chronos2 cache list|clear`: the compile cache of prepared weights (see
//! `chronos2_engine::cache`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chronos2_engine::cache;

/// Shows or empties the compile cache (compiled mode's prepared weights).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    /// The cache directory; default: CHRONOS2_CACHE_DIR, else ~/.cache/chronos2.
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// One line per entry: size, model, precision, age and the checkpoint files it was made from.
    List,
    /// Deletes every entry (other files in the directory are left alone).
    Clear,
}

/// Runs the command.
pub fn run(args: &Args, out: &mut impl Write) -> Result<()> {
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            cache::default_dir().context("no cache directory is known here; pass --dir or set CHRONOS2_CACHE_DIR")?
        }
    };
    match args.action {
        Action::List => {
            let entries =
                cache::list(&dir).with_context(|| format!("cannot read the cache directory {}", dir.display()))?;
            writeln!(out, "compile cache: {} ({} entries)", dir.display(), entries.len())?;
            let total: u64 = entries.iter().map(|e| e.bytes).sum();
            for entry in &entries {
                let name = entry
                    .path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                let size = format!("{:.1} MiB", entry.bytes as f64 / (1 << 20) as f64);
                match &entry.description {
                    Some(summary) => {
                        let files: Vec<&str> = summary
                            .key
                            .lines()
                            .filter_map(|line| line.strip_prefix("file: ").or_else(|| line.strip_prefix("embedded: ")))
                            .collect();
                        writeln!(out, "{name}  {size}  model {}  {}", summary.model, summary.precision)?;
                        for file in files {
                            writeln!(out, "    {file}")?;
                        }
                    }
                    None => writeln!(
                        out,
                        "{name}  {size}  unreadable header (damaged; `chronos2 cache clear` removes it)"
                    )?,
                }
            }
            writeln!(out, "total {:.1} MiB", total as f64 / (1 << 20) as f64)?;
        }
        Action::Clear => {
            let (files, bytes) =
                cache::clear(&dir).with_context(|| format!("cannot clear the cache directory {}", dir.display()))?;
            writeln!(
                out,
                "removed {files} entries ({:.1} MiB) from {}",
                bytes as f64 / (1 << 20) as f64,
                dir.display()
            )?;
        }
    }
    Ok(())
}
