//! Facts about the machine a benchmark ran on, its memory use, its GEMM rates and its measured
//! peaks.

use std::fmt;
use std::time::Instant;

use chronos2::executor::Precision;
use chronos2_kernels::bf16::{self, linear_bf16, packed_bf16_pays, round_bf16_into, to_bf16_pairs, PackedBf16};
use chronos2_kernels::int8::{self, linear_int8, quantize_rows, row_bytes, PackedInt8, QuantizedRows};
use chronos2_kernels::packed::{isa_name, linear, PackedWeight};
use chronos2_kernels::peak::{self, Family};
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
    let x = probe_matrix(size);
    let w = PackedWeight::new(&x, size, size);
    let mut y = vec![0.0f32; size * size];
    rate_of(size, reps, || {
        linear(&mut y, size, &x, size, size, w.view(), None, false, pool)
    })
}

/// The bf16 GEMM rate in GFLOP/s at `size³` as the compiled engine runs a bf16 layer: the input
/// rounded at each call, then bf16 panels (where [`packed_bf16_pays`]) or f32 panels of
/// bf16-rounded weights.
fn bf16_gemm_rate(size: usize, reps: usize, pool: &Pool) -> f64 {
    let x = probe_matrix(size);
    let mut y = vec![0.0f32; size * size];
    if packed_bf16_pays() {
        let w = PackedBf16::new(&x, size, size);
        let kp = bf16::pairs(size);
        let mut pairs = vec![0u32; size * kp];
        rate_of(size, reps, || {
            to_bf16_pairs(&x, size, size, size, &mut pairs, pool);
            linear_bf16(&mut y, size, &pairs, kp, size, &w, None, false, pool);
        })
    } else {
        let mut rounded = vec![0.0f32; size * size];
        round_bf16_into(&x, &mut rounded, pool);
        let w = PackedWeight::new(&rounded, size, size);
        rate_of(size, reps, || {
            round_bf16_into(&x, &mut rounded, pool);
            linear(&mut y, size, &rounded, size, size, w.view(), None, false, pool);
        })
    }
}

/// The int8 GEMM rate in GOP/s at `size³` as the compiled engine runs an int8 layer: the input
/// quantized at each call, then the packed int8 product.
fn int8_gemm_rate(size: usize, reps: usize, pool: &Pool) -> f64 {
    let x = probe_matrix(size);
    let w = PackedInt8::new(&x, size, size);
    let width = row_bytes(size);
    let (mut quantized, mut scales) = (vec![0u8; size * width], vec![0.0f32; size]);
    let mut y = vec![0.0f32; size * size];
    rate_of(size, reps, || {
        quantize_rows(&x, size, size, size, &mut quantized, &mut scales, pool);
        let rows = QuantizedRows {
            data: &quantized,
            ld: width,
            scales: &scales,
        };
        linear_int8(&mut y, size, rows, size, &w, None, false, pool);
    })
}

/// The `size x size` input (and weight) of the GEMM probes.
fn probe_matrix(size: usize) -> Vec<f32> {
    (0..size * size).map(|i| (i % 7) as f32 * 0.1).collect()
}

/// Timed calls of one GEMM probe stop once they have taken this long (at least one runs).
const PROBE_BUDGET_S: f64 = 3.0;

/// The largest probe of scalar kernels: at a few GFLOP/s (bf16 and int8 scalar kernels run
/// below one), a 2048³ probe would take minutes.
const SCALAR_PROBE_SIZE: usize = 512;

/// `2 · size³` operations over the median time of up to `reps` calls of `call` (after one
/// untimed; fewer once they took [`PROBE_BUDGET_S`]), in giga operations per second.
fn rate_of(size: usize, reps: usize, mut call: impl FnMut()) -> f64 {
    call();
    let mut times = Vec::new();
    while times.len() < reps.max(1) && times.iter().sum::<f64>() < PROBE_BUDGET_S {
        let started = Instant::now();
        call();
        times.push(started.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    2.0 * (size as f64).powi(3) / times[times.len() / 2] / 1e9
}

/// The kernel family that runs the encoder blocks of a model in `precision`.
pub fn family_of(precision: Precision) -> Family {
    match precision {
        Precision::Float32 => Family::F32,
        Precision::BFloat16 => Family::Bf16,
        Precision::Int8 => Family::Int8,
    }
}

/// One measured peak ([`peak::measure`]), as reports show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeakRate {
    /// The kernel family: `f32`, `bf16` or `int8`.
    pub family: &'static str,
    /// The instruction-set level, e.g. `avx2+fma`.
    pub level: &'static str,
    /// What was measured.
    pub measured: String,
    /// The peak in `unit`, all threads together.
    pub rate: f64,
    /// `GFLOP/s` or, for int8, `GOP/s` (two operations per multiply-add).
    pub unit: &'static str,
    /// Whether the family's GEMM kernels run at this level.
    pub used_by_kernels: bool,
}

/// A rate as a share of the measured peak of the level its kernels run at.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct OfPeak {
    /// The peak, in the rate's unit.
    pub peak: f64,
    /// The rate in percent of the peak; `None` when it is above the peak, which a real peak
    /// cannot be: the peak loop ran while the machine was busy.
    pub pct_of_peak: Option<f64>,
    /// Whether the rate is above the measured peak.
    pub above_peak: bool,
}

impl OfPeak {
    /// `rate` against `peak`.
    pub fn new(rate: f64, peak: f64) -> Self {
        let above_peak = rate > peak;
        Self {
            peak,
            pct_of_peak: (!above_peak).then(|| 100.0 * rate / peak),
            above_peak,
        }
    }
}

impl fmt::Display for OfPeak {
    /// `57%`, or `>100%*` above the peak (see [`ABOVE_PEAK_NOTE`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pct_of_peak {
            Some(pct) => write!(f, "{pct:.0}%"),
            None => write!(f, ">100%*"),
        }
    }
}

/// The note printed once under a report where some rate is above its measured peak.
pub const ABOVE_PEAK_NOTE: &str =
    "* above the measured peak: a GEMM probe there means the peak was measured while the machine was busy (rerun on an idle machine); a case there means the engine skipped more of the reference's operations than its kernels lost to overheads";

/// How a case's GFLOP/s and % of peak count, for the notes under the bench table.
pub const REFERENCE_FLOPS_NOTE: &str =
    "GFLOP/s and %peak count the reference's operations (full group attention, every token through every layer) over the median time, in both modes: the compiled engine skips some of them (singleton-group shortcut, trimmed last block), so its figures are effective rates";

/// A square GEMM of one precision through the packed kernels, as the compiled engine runs it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GemmProbe {
    /// The kernel family: `f32`, `bf16` or `int8`.
    pub family: &'static str,
    /// The instruction set its kernels use.
    pub kernels: &'static str,
    /// The probe's size (`size³`): `--gemm-size`, at most 512 for scalar kernels.
    pub size: usize,
    /// The rate in `unit`.
    pub rate: f64,
    /// `GFLOP/s` or, for int8, `GOP/s`.
    pub unit: &'static str,
    /// Against the peak of the level its kernels run at (none for scalar kernels).
    pub of_peak: Option<OfPeak>,
}

/// This machine's measured peaks and its GEMM probes of every precision.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeakReport {
    /// Threads the peaks and the probes ran on.
    pub threads: usize,
    /// Every level the CPU has, per family.
    pub peaks: Vec<PeakRate>,
    /// One per family: f32, bf16, int8.
    pub probes: Vec<GemmProbe>,
}

impl PeakReport {
    /// Measures the peaks, then the `size³` GEMM probes (median of `reps` runs each, fewer for
    /// slow ones; at most 512³ for scalar kernels), on `pool`.
    pub fn measure(size: usize, reps: usize, pool: &Pool) -> Self {
        let peaks: Vec<PeakRate> = peak::measure(pool)
            .into_iter()
            .map(|p| PeakRate {
                family: p.family.name(),
                level: p.level,
                rate: p.rate(),
                measured: p.measured,
                unit: p.family.unit(),
                used_by_kernels: p.used,
            })
            .collect();
        let mut report = Self {
            threads: pool.threads(),
            peaks,
            probes: Vec::new(),
        };
        for family in Family::ALL {
            let size = match report.kernel_peak(family) {
                Some(_) => size,
                None => size.min(SCALAR_PROBE_SIZE),
            };
            let (rate, kernels) = match family {
                Family::F32 => (gemm_rate(size, reps, pool), isa_name()),
                Family::Bf16 => (bf16_gemm_rate(size, reps, pool), bf16::path_name()),
                Family::Int8 => (int8_gemm_rate(size, reps, pool), int8::isa_name()),
            };
            let of_peak = report.of_peak(family, rate);
            report.probes.push(GemmProbe {
                family: family.name(),
                kernels,
                size,
                rate,
                unit: family.unit(),
                of_peak,
            });
        }
        report
    }

    /// The peak of the level `family`'s kernels run at; `None` for scalar kernels.
    pub fn kernel_peak(&self, family: Family) -> Option<&PeakRate> {
        self.peaks
            .iter()
            .find(|p| p.family == family.name() && p.used_by_kernels)
    }

    /// `rate` (in the family's unit) against the peak of the level `family`'s kernels run at;
    /// `None` for scalar kernels (no peak).
    pub fn of_peak(&self, family: Family, rate: f64) -> Option<OfPeak> {
        self.kernel_peak(family).map(|p| OfPeak::new(rate, p.rate))
    }

    /// `family`'s GEMM probe, if it was measured.
    pub fn probe(&self, family: Family) -> Option<&GemmProbe> {
        self.probes.iter().find(|p| p.family == family.name())
    }

    /// The "peaks" section of a text report: each level's peak, then each probe.
    pub fn text(&self, size: usize) -> String {
        let mut text = format!(
            "peaks (measured on {} threads; `kernels`: the level the kernels run at):\n",
            self.threads
        );
        for p in &self.peaks {
            text += &format!(
                "  {:<5} {:<11} {:>9.1} {:<7}  {:<7}  {}\n",
                p.family,
                p.level,
                p.rate,
                p.unit,
                if p.used_by_kernels { "kernels" } else { "" },
                p.measured,
            );
        }
        text += &format!("GEMM probes {size}^3 (packed kernels, as the compiled engine runs them):\n");
        for p in &self.probes {
            text += &format!(
                "  {:<5} {:<22} {:>9.1} {:<7}  {}{}\n",
                p.family,
                p.kernels,
                p.rate,
                p.unit,
                p.of_peak
                    .map_or("no peak (scalar kernels)".to_string(), |o| format!("{o} of peak")),
                if p.size == size {
                    String::new()
                } else {
                    format!(", at {}^3", p.size)
                }
            );
        }
        text
    }
}
