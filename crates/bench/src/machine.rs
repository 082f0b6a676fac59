//! Facts about the machine a benchmark ran on, its memory use, and its GEMM rate.

use std::time::Instant;

use chronos2_kernels::packed::{isa_name, linear, PackedWeight};
use chronos2_kernels::pool::Pool;
use serde::Serialize;

/// The machine, as a report should name it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MachineInfo {
    /// CPU model (`/proc/cpuinfo`), or `unknown`.
    pub cpu: String,
    /// Logical cores available to this process.
    pub cores: usize,
    /// Threads the engines were allowed to use.
    pub threads: usize,
    /// Instruction set of the packed GEMM kernels.
    pub gemm_isa: String,
}

impl MachineInfo {
    /// Reads the machine facts; `threads` is what the run used.
    pub fn detect(threads: usize) -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            threads,
            gemm_isa: isa_name().to_string(),
        }
    }
}

fn status_field(name: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Peak resident memory of this process in bytes (`VmHWM`), if the OS reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    status_field("VmHWM:")
}

/// Current resident memory in bytes (`VmRSS`), if the OS reports it.
pub fn current_rss_bytes() -> Option<u64> {
    status_field("VmRSS:")
}

/// This machine's fp32 GEMM rate in GFLOP/s at `size³` with the packed kernels on `pool`
/// (median of `reps` runs).
pub fn gemm_rate(size: usize, reps: usize, pool: &Pool) -> f64 {
    let x: Vec<f32> = (0..size * size).map(|i| (i % 7) as f32 * 0.1).collect();
    let w = PackedWeight::new(&x, size, size);
    let mut y = vec![0.0f32; size * size];
    linear(&mut y, size, &x, size, size, w.view(), None, false, pool);
    let mut times: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let started = Instant::now();
            linear(&mut y, size, &x, size, size, w.view(), None, false, pool);
            started.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    2.0 * (size as f64).powi(3) / times[times.len() / 2] / 1e9
}
