//! `chronos2 cache list|clear`: the compile cache of prepared weights (see
//! `chronos2_engine::cache`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chronos2_backtest::table::count;
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
    /// Deletes every entry, or with MODEL only that model's entries (by the model name `list`
    /// shows, or an entry's file name); other files in the directory are left alone.
    Clear {
        /// The model whose entries to delete (default: every entry).
        model: Option<String>,
    },
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
            writeln!(
                out,
                "compile cache: {} ({})",
                dir.display(),
                count(entries.len(), "entry", "entries")
            )?;
            let total: u64 = entries.iter().map(|e| e.bytes).sum();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
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
                        writeln!(
                            out,
                            "{name}  {size}  model {}  {}  made {} ago",
                            summary.model,
                            summary.precision,
                            age(now.saturating_sub(summary.created))
                        )?;
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
        Action::Clear { model: None } => {
            let (files, bytes) =
                cache::clear(&dir).with_context(|| format!("cannot clear the cache directory {}", dir.display()))?;
            writeln!(
                out,
                "removed {} ({:.1} MiB) from {}",
                count(files, "entry", "entries"),
                bytes as f64 / (1 << 20) as f64,
                dir.display()
            )?;
        }
        Action::Clear { model: Some(ref model) } => {
            let entries =
                cache::list(&dir).with_context(|| format!("cannot read the cache directory {}", dir.display()))?;
            let chosen: Vec<_> = entries
                .iter()
                .filter(|e| {
                    e.description.as_ref().is_some_and(|d| d.model == *model)
                        || e.path
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy() == model.as_str())
                })
                .collect();
            if chosen.is_empty() {
                let models: std::collections::BTreeSet<&str> = entries
                    .iter()
                    .filter_map(|e| e.description.as_ref())
                    .map(|d| d.model.as_str())
                    .collect();
                anyhow::bail!(
                    "no entry of model `{model}` in {} (models there: {}); `chronos2 cache list` shows them",
                    dir.display(),
                    if models.is_empty() {
                        "none".to_string()
                    } else {
                        models.into_iter().collect::<Vec<_>>().join(", ")
                    }
                );
            }
            let mut bytes = 0;
            for entry in &chosen {
                std::fs::remove_file(&entry.path).with_context(|| format!("cannot remove {}", entry.path.display()))?;
                bytes += entry.bytes;
            }
            writeln!(
                out,
                "removed {} of model {model} ({:.1} MiB) from {}",
                count(chosen.len(), "entry", "entries"),
                bytes as f64 / (1 << 20) as f64,
                dir.display()
            )?;
        }
    }
    Ok(())
}

/// A duration in seconds as people say it: `40 s`, `5 min`, `3 h`, `2 days`.
fn age(seconds: u64) -> String {
    match seconds {
        0..=119 => format!("{seconds} s"),
        120..=7199 => format!("{} min", seconds / 60),
        7200..=172_799 => format!("{} h", seconds / 3600),
        _ => format!("{} days", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::age;

    #[test]
    fn ages_read_as_people_say_them() {
        assert_eq!(age(40), "40 s");
        assert_eq!(age(300), "5 min");
        assert_eq!(age(3 * 3600 + 5), "3 h");
        assert_eq!(age(3 * 86_400), "3 days");
    }
}
