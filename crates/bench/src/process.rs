//! Whole-process timings: what a one-shot run costs from process start, model loading and
//! weight preparation included (the per-call latency hides them). The caller says how to start
//! the process (usually the running binary again, with a variable that makes it do one piece
//! of work and exit); each compiled-mode process gets its own compile-cache directory, empty
//! for the cold run and kept for the warm ones.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::Serialize;

use crate::stats::Summary;

/// Whole-process wall times of one configuration, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProcessTimes {
    /// The first run with an empty compile cache (compiled mode only; eager has no cache).
    pub cold_ms: Option<f64>,
    /// Later runs (the compile cache warm).
    pub warm_ms: Vec<f64>,
    /// Summary of `warm_ms`.
    pub warm: Summary,
}

/// Runs `command` (given the compile-cache directory to use) `1 + runs` times when `cached`
/// (one cold run into an empty directory, then `runs` warm ones), else `runs` times, and
/// times each from spawn to exit.
///
/// # Errors
/// If a process cannot start or fails; the message carries the end of its stderr.
pub fn time_processes(command: &dyn Fn(&Path) -> Command, cached: bool, runs: usize) -> Result<ProcessTimes, String> {
    let cache = tempfile::tempdir().map_err(|e| format!("cannot make a cache directory: {e}"))?;
    let run_once = || -> Result<f64, String> {
        let mut child = command(cache.path());
        child.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let started = Instant::now();
        let output = child
            .output()
            .map_err(|e| format!("cannot start the timed process: {e}"))?;
        let elapsed = started.elapsed().as_secs_f64() * 1e3;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
            return Err(format!(
                "the timed process failed ({}): {}",
                output.status,
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            ));
        }
        Ok(elapsed)
    };
    let cold_ms = if cached { Some(run_once()?) } else { None };
    let warm_ms = (0..runs).map(|_| run_once()).collect::<Result<Vec<f64>, String>>()?;
    Ok(ProcessTimes {
        cold_ms,
        warm: Summary::of(&warm_ms),
        warm_ms,
    })
}

/// [`time_processes`] on the running binary itself: the same arguments, with the variable
/// `probe` set to `value` (which tells the child what single piece of work to do) and
/// `CHRONOS2_CACHE_DIR` pointing at the run's own compile-cache directory.
///
/// # Errors
/// If the binary cannot be found, or as [`time_processes`].
pub fn time_this_binary(probe: &str, value: &str, cached: bool, runs: usize) -> Result<ProcessTimes, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the running binary to time it: {e}"))?;
    let command = |cache: &Path| {
        let mut child = Command::new(&exe);
        child
            .args(std::env::args_os().skip(1))
            .env(probe, value)
            .env("CHRONOS2_CACHE_DIR", cache);
        child
    };
    time_processes(&command, cached, runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_every_run_and_reports_failures_with_their_stderr() {
        let shell = |script: &'static str| {
            move |dir: &Path| {
                let mut c = Command::new("sh");
                c.arg("-c").arg(script).env("CACHE", dir);
                c
            }
        };
        let times = time_processes(&shell("test -d \"$CACHE\""), true, 2).unwrap();
        assert!(times.cold_ms.is_some_and(|ms| ms > 0.0));
        assert_eq!(times.warm_ms.len(), 2);
        assert_eq!(times.warm.count, 2);
        assert!(time_processes(&shell("true"), false, 1).unwrap().cold_ms.is_none());
        let err = time_processes(&shell("echo boom >&2; exit 3"), false, 1).unwrap_err();
        assert!(err.contains("boom") && err.contains('3'), "{err}");
    }
}
