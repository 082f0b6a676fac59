//! Eager against compiled on the same walk-forward setups and the same trading simulation:
//! latency per model call, success rate, MAE, forecast differences and total returns of each
//! setup, judged by [`decide`], and the report as JSON (serde), Markdown and an HTML section.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use chronos2_backtest::report::escape_html;
use chronos2_backtest::BacktestRun;
use chronos2_engine::Engine;
use serde::Serialize;

use crate::load::MachineLoad;
use crate::process::ProcessTimes;
use crate::verdict::{decide_between, relative_difference_pct, Measurements, Thresholds, Verdict};
use crate::{MachineInfo, Summary};

/// One walk-forward setup, written `WINDOWSxCONTEXTxHORIZON` (e.g. `10x100x7`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    /// Number of windows (origins).
    pub windows: usize,
    /// Context bars per window.
    pub context: usize,
    /// Forecast horizon in bars.
    pub horizon: usize,
}

/// A setup that is not `WINDOWSxCONTEXTxHORIZON` of positive numbers.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Not three numbers separated by `x`.
    #[error("cannot read setup `{0}`; expected WINDOWSxCONTEXTxHORIZON, e.g. 10x100x7")]
    Syntax(String),
    /// A zero count.
    #[error("setup `{0}`: windows, context and horizon must each be at least 1")]
    Zero(String),
}

impl FromStr for Setup {
    type Err = SetupError;

    fn from_str(text: &str) -> Result<Self, SetupError> {
        let parts: Option<Vec<usize>> = text.trim().split('x').map(|p| p.parse().ok()).collect();
        match parts.as_deref() {
            Some(&[windows, context, horizon]) if windows == 0 || context == 0 || horizon == 0 => {
                Err(SetupError::Zero(text.to_string()))
            }
            Some(&[windows, context, horizon]) => Ok(Self {
                windows,
                context,
                horizon,
            }),
            _ => Err(SetupError::Syntax(text.to_string())),
        }
    }
}

/// A comparison that cannot give an honest answer: bad settings, or nothing measured.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CompareError(String);

/// Checks the comparison's settings before anything runs: at least one setup, at least one
/// repeat, and thresholds that can be met (a positive speedup, a success rate in 0..=100 %,
/// non-negative finite tolerances).
///
/// # Errors
/// [`CompareError`] naming the flag and the value.
pub fn check_settings(setups: &[Setup], repeats: usize, thresholds: &Thresholds) -> Result<(), CompareError> {
    let bad = |message: String| Err(CompareError(message));
    if setups.is_empty() {
        return bad("--setups is empty; give at least one WINDOWSxCONTEXTxHORIZON".into());
    }
    if repeats == 0 {
        return bad("--repeats must be at least 1: with no timed run there is nothing to compare".into());
    }
    let t = thresholds;
    if !(t.min_speedup.is_finite() && t.min_speedup > 0.0) {
        return bad(format!(
            "--min-speedup must be a positive number, found {}",
            t.min_speedup
        ));
    }
    if !(0.0..=100.0).contains(&t.min_success_pct) {
        return bad(format!(
            "--min-success is a percentage between 0 and 100, found {}",
            t.min_success_pct
        ));
    }
    for (flag, value) in [
        ("--max-mae-diff", t.max_mae_difference_pct),
        ("--return-tolerance-pp", t.return_tolerance_pp),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            return bad(format!("{flag} must be a non-negative number, found {value}"));
        }
    }
    Ok(())
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} windows x context {} x horizon {}",
            self.windows, self.context, self.horizon
        )
    }
}

/// One mode's runs of one setup.
#[derive(Clone, Debug, Serialize)]
pub struct ModeRun {
    /// Model time per call of each timed run, ms.
    pub per_call_ms: Vec<f64>,
    /// Summary of `per_call_ms`.
    pub per_call: Summary,
    /// Windows of the successful timed runs.
    pub windows_ok: usize,
    /// Windows of all timed runs.
    pub windows_total: usize,
    /// `windows_ok / windows_total`, %.
    pub success_pct: f64,
    /// MAE of the close forecasts of the last successful run (NaN if none).
    pub mae: f64,
    /// Total return of the first strategy in the last successful run (NaN if none).
    pub total_return: f64,
    /// Plans the engine has built so far (0 for eager).
    pub plans_built: usize,
    /// Fallbacks to eager so far.
    pub fallbacks: usize,
    /// The error of each failed timed run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

/// Both modes on one setup and the verdict.
#[derive(Clone, Debug, Serialize)]
pub struct SetupResult {
    /// The setup, in words.
    pub setup: String,
    /// The eager runs.
    pub eager: ModeRun,
    /// The compiled runs.
    pub compiled: ModeRun,
    /// Median eager latency / median compiled latency.
    pub speedup: f64,
    /// Smallest and largest ratio of paired (same repeat) latencies.
    pub speedup_spread: (f64, f64),
    /// Relative MAE difference, compiled against eager, %.
    pub mae_difference_pct: f64,
    /// Largest |eager - compiled| median forecast ([`max_difference`]).
    pub max_forecast_difference: f64,
    /// The same, relative to the largest |forecast|.
    pub max_forecast_difference_relative: f64,
    /// Per strategy: compiled total return minus eager's, percentage points.
    pub return_difference_pp: Vec<(String, f64)>,
    /// The decision for this setup.
    pub verdict: Verdict,
    /// The setup as a one-shot process (start, load, prepare, run, exit) in each mode, if
    /// measured: `[baseline, candidate]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whole_process: Option<[ProcessTimes; 2]>,
}

/// The whole comparison.
#[derive(Clone, Debug, Serialize)]
pub struct CompareReport {
    /// Where it ran.
    pub machine: MachineInfo,
    /// The model's label.
    pub model: String,
    /// The data (a path or `bundled <name>`).
    pub data: String,
    /// The decision's thresholds.
    pub thresholds: Thresholds,
    /// One result per setup.
    pub setups: Vec<SetupResult>,
    /// What was compared: `[baseline, candidate]`, e.g. `["eager", "compiled"]` or
    /// `["float32", "bfloat16"]`. The per-setup fields `eager`/`compiled` hold the baseline's
    /// and the candidate's runs.
    pub labels: [String; 2],
    /// Every setup's verdict enables the candidate (compiled mode, or the second dtype).
    pub enable_compiled: bool,
    /// What other processes took of the machine during the runs (Linux only; set by the
    /// caller, who watched them).
    pub load: Option<MachineLoad>,
}

/// The median forecasts of two runs side by side, window by window.
fn paired_medians<'a>(a: &'a BacktestRun, b: &'a BacktestRun) -> impl Iterator<Item = (f64, f64)> + 'a {
    a.series
        .iter()
        .zip(&b.series)
        .flat_map(|(sa, sb)| sa.windows.iter().zip(&sb.windows))
        .flat_map(|(wa, wb)| wa.median.iter().copied().zip(wb.median.iter().copied()))
}

/// Largest |x - y| over the pairs, absolute and relative to the largest |x| (NaN if all x are 0).
fn largest_difference(pairs: impl IntoIterator<Item = (f64, f64)>) -> (f64, f64) {
    let (worst, scale) = pairs.into_iter().fold((0.0f64, 0.0f64), |(worst, scale), (x, y)| {
        (worst.max((x - y).abs()), scale.max(x.abs()))
    });
    (worst, if scale > 0.0 { worst / scale } else { f64::NAN })
}

/// Largest |a - b| between the two runs' median forecasts, absolute and relative to the
/// largest |forecast| of `a`.
pub fn max_difference(a: &BacktestRun, b: &BacktestRun) -> (f64, f64) {
    largest_difference(paired_medians(a, b))
}

/// Runs one mode on one setup: a warm-up backtest, then `repeats` timed ones; returns the
/// figures and the last successful run.
fn run_mode<E: fmt::Display>(
    engine: &Engine,
    windows: usize,
    repeats: usize,
    backtest: &mut dyn FnMut() -> Result<BacktestRun, E>,
) -> (ModeRun, Option<BacktestRun>) {
    let _ = backtest();
    let (mut per_call, mut ok, mut failures, mut last) = (Vec::new(), 0, Vec::new(), None);
    for _ in 0..repeats {
        match backtest() {
            Ok(run) => {
                per_call.push(1e3 * run.timing.model_seconds / run.timing.model_calls.max(1) as f64);
                ok += windows;
                last = Some(run);
            }
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    let first_series = last.as_ref().and_then(|r| r.series.first());
    let mae = first_series.map_or(f64::NAN, |s| s.model.mae);
    let total_return = first_series
        .and_then(|s| s.strategies.first())
        .map_or(f64::NAN, |s| s.metrics.total_return);
    let stats = engine.stats().unwrap_or_default();
    let total = windows * repeats;
    let run = ModeRun {
        per_call: Summary::of(&per_call),
        per_call_ms: per_call,
        windows_ok: ok,
        windows_total: total,
        success_pct: 100.0 * ok as f64 / total.max(1) as f64,
        mae,
        total_return,
        plans_built: stats.plans_built,
        fallbacks: stats.fallbacks,
        failures,
    };
    (run, last)
}

/// Per strategy of the first series: compiled total return minus eager's, percentage points.
fn return_differences(eager: &BacktestRun, compiled: &BacktestRun) -> Vec<(String, f64)> {
    let (Some(e), Some(c)) = (eager.series.first(), compiled.series.first()) else {
        return Vec::new();
    };
    e.strategies
        .iter()
        .zip(&c.strategies)
        .map(|(se, sc)| {
            (
                se.name.clone(),
                100.0 * (sc.metrics.total_return - se.metrics.total_return),
            )
        })
        .collect()
}

/// Runs the baseline (`eager`: eager mode, or the first dtype) and the candidate
/// (`compiled`: compiled mode, or the second dtype) on every setup (a warm-up run, then
/// `repeats` timed runs each) and decides each setup by `thresholds`.
/// `backtest(engine, label, setup)` runs one walk-forward backtest, `label` being one of
/// `labels`; a failed run counts against the success rate.
///
/// Returns the results and the candidate's last run of the first setup that had one, for the
/// report's backtest pages.
///
/// # Errors
/// [`CompareError`] for settings [`check_settings`] refuses, or when every baseline run of a
/// setup failed: with no reference there is no verdict to give.
#[allow(
    clippy::too_many_arguments,
    reason = "the two engines, their labels, the setups and the rules"
)]
pub fn compare<'l, E: fmt::Display>(
    eager: &Engine,
    compiled: &Engine,
    labels: [&'l str; 2],
    setups: &[Setup],
    repeats: usize,
    thresholds: &Thresholds,
    backtest: &mut dyn FnMut(&Engine, &'l str, Setup) -> Result<BacktestRun, E>,
) -> Result<(Vec<SetupResult>, Option<BacktestRun>), CompareError> {
    check_settings(setups, repeats, thresholds)?;
    let mut results = Vec::new();
    let mut first_compiled_run = None;
    for &setup in setups {
        let (eager_run, eager_last) =
            run_mode(eager, setup.windows, repeats, &mut || backtest(eager, labels[0], setup));
        if eager_last.is_none() {
            return Err(CompareError(format!(
                "{setup}: every {} run failed, so there is nothing to compare against (first error: {})",
                labels[0],
                eager_run.failures.first().map_or("none recorded", String::as_str)
            )));
        }
        let (compiled_run, compiled_last) = run_mode(compiled, setup.windows, repeats, &mut || {
            backtest(compiled, labels[1], setup)
        });
        let spread = eager_run
            .per_call_ms
            .iter()
            .zip(&compiled_run.per_call_ms)
            .map(|(e, c)| e / c)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| (lo.min(r), hi.max(r)));
        let ((max_diff, max_rel), return_difference_pp) = match (&eager_last, &compiled_last) {
            (Some(e), Some(c)) => (max_difference(e, c), return_differences(e, c)),
            _ => ((f64::NAN, f64::NAN), Vec::new()),
        };
        let measurements = Measurements {
            speedup: eager_run.per_call.median / compiled_run.per_call.median,
            eager_success_pct: eager_run.success_pct,
            compiled_success_pct: compiled_run.success_pct,
            eager_mae: eager_run.mae,
            compiled_mae: compiled_run.mae,
            eager_return: eager_run.total_return,
            compiled_return: compiled_run.total_return,
        };
        if first_compiled_run.is_none() {
            first_compiled_run = compiled_last;
        }
        results.push(SetupResult {
            setup: setup.to_string(),
            speedup: measurements.speedup,
            speedup_spread: spread,
            mae_difference_pct: relative_difference_pct(eager_run.mae, compiled_run.mae),
            max_forecast_difference: max_diff,
            max_forecast_difference_relative: max_rel,
            return_difference_pp,
            verdict: decide_between(&measurements, thresholds, labels),
            eager: eager_run,
            compiled: compiled_run,
            whole_process: None,
        });
    }
    Ok((results, first_compiled_run))
}

impl CompareReport {
    /// The report of `setups` comparing `labels` (baseline, candidate); the candidate is
    /// enabled if every setup's verdict says so.
    pub fn new(
        machine: MachineInfo,
        model: String,
        data: String,
        labels: [&str; 2],
        thresholds: Thresholds,
        setups: Vec<SetupResult>,
    ) -> Self {
        Self {
            machine,
            model,
            data,
            labels: labels.map(str::to_string),
            thresholds,
            enable_compiled: setups.iter().all(|r| r.verdict.enable_compiled),
            setups,
            load: None,
        }
    }

    /// The decision and its reason in one line: the failing criteria of each setup with their
    /// measured values and rules (or that all held), the CPU's GEMM kernels and the model, and
    /// a warning where the machine was busy.
    pub fn reason(&self) -> String {
        let [baseline, candidate] = &self.labels;
        let failures: Vec<String> = self
            .setups
            .iter()
            .filter_map(|setup| {
                let failed: Vec<String> = setup
                    .verdict
                    .criteria
                    .iter()
                    .filter(|c| !c.pass)
                    .map(|c| format!("{} {} fails {}", c.name, c.measured, c.rule))
                    .collect();
                (!failed.is_empty()).then(|| format!("{}: {}", setup.setup, failed.join(", ")))
            })
            .collect();
        let context = format!(
            "on this CPU (GEMM kernels {}, {} threads) for model {}",
            self.machine.gemm_isa, self.machine.threads, self.model
        );
        let mut line = if failures.is_empty() {
            let speedups: Vec<String> = self.setups.iter().map(|s| format!("{:.2}x", s.speedup)).collect();
            format!(
                "enable {candidate}: every criterion holds on every setup {context} (speedup {})",
                speedups.join(", ")
            )
        } else {
            format!("keep {baseline} {context}: {}", failures.join("; "))
        };
        if let Some(load) = self.load.filter(MachineLoad::busy) {
            line.push_str(&format!(
                " (the machine was busy: other processes took {:.0} % of its time, so the speed figures may not repeat)",
                load.others_pct
            ));
        }
        line
    }

    /// The report in Markdown: the decision, the machine, and per setup a table of both
    /// modes, the differences and the verdict's criteria.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let m = &self.machine;
        let [baseline, candidate] = &self.labels;
        let _ = writeln!(
            s,
            "## {} vs {candidate}: {}",
            capitalised(baseline),
            if self.enable_compiled {
                format!("enable {candidate}")
            } else {
                format!("keep {baseline}")
            }
        );
        let _ = writeln!(s, "\nverdict: {}", self.reason());
        let _ = writeln!(
            s,
            "\nmodel `{}`, data `{}`; {} ({} cores, {} threads, GEMM {})",
            self.model, self.data, m.cpu, m.cores, m.threads, m.gemm_isa
        );
        if let Some(load) = &self.load {
            let _ = writeln!(s, "\n{load}");
        }
        let _ = writeln!(s);
        for setup in &self.setups {
            let _ = writeln!(s, "### {}\n", setup.setup);
            let _ = writeln!(s, "| | {baseline} | {candidate} |\n|---|---|---|");
            let (e, c) = (&setup.eager, &setup.compiled);
            let _ = writeln!(
                s,
                "| latency per model call, median (ms) | {:.2} | {:.2} |",
                e.per_call.median, c.per_call.median
            );
            if let Some([b, c]) = &setup.whole_process {
                let cell = |p: &ProcessTimes| match p.cold_ms {
                    Some(cold) => format!("{:.0} (cold cache {cold:.0})", p.warm.median),
                    None => format!("{:.0}", p.warm.median),
                };
                let _ = writeln!(
                    s,
                    "| whole process, one-shot run, median of {} (ms) | {} | {} |",
                    b.warm.count,
                    cell(b),
                    cell(c)
                );
            }
            let _ = writeln!(
                s,
                "| latency spread min..max (ms) | {:.2}..{:.2} | {:.2}..{:.2} |",
                e.per_call.min, e.per_call.max, c.per_call.min, c.per_call.max
            );
            let _ = writeln!(
                s,
                "| success | {}/{} windows ({:.1}%) | {}/{} windows ({:.1}%) |",
                e.windows_ok, e.windows_total, e.success_pct, c.windows_ok, c.windows_total, c.success_pct
            );
            let _ = writeln!(s, "| MAE (close) | {:.6} | {:.6} |", e.mae, c.mae);
            let _ = writeln!(
                s,
                "| threshold strategy total return | {:+.4}% | {:+.4}% |",
                100.0 * e.total_return,
                100.0 * c.total_return
            );
            let _ = writeln!(
                s,
                "| plans built / fallbacks | - | {} / {} |",
                c.plans_built, c.fallbacks
            );
            let _ = writeln!(
                s,
                "\nspeedup {:.2}x (ratio of medians; per-repeat ratios {:.2}x..{:.2}x); MAE difference {:+.5}%; max forecast difference {:.3e} ({:.2e} relative); total-return differences: {}\n",
                setup.speedup,
                setup.speedup_spread.0,
                setup.speedup_spread.1,
                setup.mae_difference_pct,
                setup.max_forecast_difference,
                setup.max_forecast_difference_relative,
                setup.return_difference_pp.iter().map(|(n, d)| format!("{n} {d:+.4} pp")).collect::<Vec<_>>().join(", ")
            );
            let _ = writeln!(s, "| criterion | measured | rule | result |\n|---|---|---|---|");
            for c in &setup.verdict.criteria {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    c.name,
                    c.measured,
                    c.rule,
                    if c.pass { "pass" } else { "FAIL" }
                );
            }
            let _ = writeln!(s);
        }
        s
    }

    /// The Markdown report as a section of the backtest's HTML page.
    pub fn html_section(&self) -> String {
        let [baseline, candidate] = &self.labels;
        format!(
            "<h2>{} vs {}</h2><pre>{}</pre>",
            escape_html(&capitalised(baseline)),
            escape_html(candidate),
            escape_html(&self.markdown())
        )
    }
}

/// `eager` -> `Eager`.
fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setups_parse_and_print() {
        let setup: Setup = " 10x100x7".parse().unwrap();
        assert_eq!(
            setup,
            Setup {
                windows: 10,
                context: 100,
                horizon: 7
            }
        );
        assert_eq!(setup.to_string(), "10 windows x context 100 x horizon 7");
        for bad in ["10x100", "10x100x7x1", "ax1x2", ""] {
            let msg = bad.parse::<Setup>().unwrap_err().to_string();
            assert!(
                msg.contains(&format!("`{bad}`")) && msg.contains("WINDOWSxCONTEXTxHORIZON"),
                "{msg}"
            );
        }
    }

    /// `--setups 0x0x0`, `--repeats 0` and thresholds that cannot be met are
    /// refused before anything runs.
    #[test]
    fn settings_that_cannot_give_a_verdict_are_refused() {
        let msg = "0x0x0".parse::<Setup>().unwrap_err().to_string();
        assert!(msg.contains("at least 1"), "{msg}");
        let setups = ["10x100x7".parse::<Setup>().unwrap()];
        let ok = Thresholds::default();
        assert!(check_settings(&setups, 1, &ok).is_ok());
        assert!(check_settings(&[], 1, &ok)
            .unwrap_err()
            .to_string()
            .contains("--setups"));
        assert!(check_settings(&setups, 0, &ok)
            .unwrap_err()
            .to_string()
            .contains("--repeats"));
        for (flag, edit) in [
            (
                "--min-success",
                (|t: &mut Thresholds| t.min_success_pct = 200.0) as fn(&mut Thresholds),
            ),
            ("--min-success", |t| t.min_success_pct = f64::NAN),
            ("--min-speedup", |t| t.min_speedup = f64::NAN),
            ("--min-speedup", |t| t.min_speedup = 0.0),
            ("--max-mae-diff", |t| t.max_mae_difference_pct = -1.0),
            ("--return-tolerance-pp", |t| t.return_tolerance_pp = f64::INFINITY),
        ] {
            let mut t = Thresholds::default();
            edit(&mut t);
            let msg = check_settings(&setups, 1, &t).unwrap_err().to_string();
            assert!(msg.starts_with(flag), "{msg}");
        }
    }

    #[test]
    fn largest_difference_is_absolute_and_relative_to_the_first() {
        let (worst, relative) = largest_difference([(100.0, 100.5), (-200.0, -199.0), (50.0, 50.0)]);
        assert_eq!((worst, relative), (1.0, 1.0 / 200.0));
        let (worst, relative) = largest_difference([(0.0, 0.0)]);
        assert_eq!(worst, 0.0);
        assert!(relative.is_nan());
    }

    fn mode_run(median: f64) -> ModeRun {
        ModeRun {
            per_call_ms: vec![median],
            per_call: Summary::of(&[median]),
            windows_ok: 10,
            windows_total: 10,
            success_pct: 100.0,
            mae: 1.0,
            total_return: 0.01,
            plans_built: 1,
            fallbacks: 0,
            failures: Vec::new(),
        }
    }

    fn report(speedup: f64) -> CompareReport {
        let measurements = Measurements {
            speedup,
            eager_success_pct: 100.0,
            compiled_success_pct: 100.0,
            eager_mae: 1.0,
            compiled_mae: 1.0,
            eager_return: 0.01,
            compiled_return: 0.01,
        };
        let thresholds = Thresholds::default();
        let setup = SetupResult {
            setup: "10 windows x context 100 x horizon 7".into(),
            eager: mode_run(2.0 * speedup),
            compiled: mode_run(2.0),
            speedup,
            speedup_spread: (speedup, speedup),
            mae_difference_pct: 0.0,
            max_forecast_difference: 0.0,
            max_forecast_difference_relative: 0.0,
            return_difference_pp: vec![("threshold".into(), 0.0)],
            verdict: crate::verdict::decide(&measurements, &thresholds),
            whole_process: Some([
                ProcessTimes {
                    cold_ms: None,
                    warm_ms: vec![210.0],
                    warm: Summary::of(&[210.0]),
                },
                ProcessTimes {
                    cold_ms: Some(370.0),
                    warm_ms: vec![180.0],
                    warm: Summary::of(&[180.0]),
                },
            ]),
        };
        let machine = MachineInfo {
            cpu: "test cpu".into(),
            cores: 2,
            threads: 2,
            gemm_isa: "avx2".into(),
        };
        CompareReport::new(
            machine,
            "tiny".into(),
            "bundled BTCUSD.csv".into(),
            ["eager", "compiled"],
            thresholds,
            vec![setup],
        )
    }

    #[test]
    fn markdown_states_the_decision_and_every_criterion() {
        let fast = report(2.0);
        assert!(fast.enable_compiled);
        let text = fast.markdown();
        assert!(text.starts_with("## Eager vs compiled: enable compiled\n"), "{text}");
        assert!(text.contains("### 10 windows x context 100 x horizon 7"), "{text}");
        assert!(
            text.contains("| latency per model call, median (ms) | 4.00 | 2.00 |")
                && text.contains("| whole process, one-shot run, median of 1 (ms) | 210 | 180 (cold cache 370) |"),
            "{text}"
        );
        for row in [
            "| speedup | 2.00x | > 1.50x | pass |",
            "| success rate |",
            "| MAE difference |",
            "| profitability |",
        ] {
            assert!(text.contains(row), "{row} missing: {text}");
        }
        let slow = report(1.2);
        assert!(!slow.enable_compiled);
        let text = slow.markdown();
        assert!(text.starts_with("## Eager vs compiled: keep eager\n"), "{text}");
        assert!(text.contains("| speedup | 1.20x | > 1.50x | FAIL |"), "{text}");
    }

    #[test]
    fn the_reason_names_the_failing_criteria_the_cpu_and_a_busy_machine() {
        let fast = report(2.0);
        assert_eq!(
            fast.reason(),
            "enable compiled: every criterion holds on every setup on this CPU (GEMM kernels avx2, 2 threads) for model tiny (speedup 2.00x)"
        );
        assert!(fast.markdown().contains("\nverdict: enable compiled: every criterion"));
        let mut slow = report(1.2);
        assert_eq!(
            slow.reason(),
            "keep eager on this CPU (GEMM kernels avx2, 2 threads) for model tiny: 10 windows x context 100 x horizon 7: speedup 1.20x fails > 1.50x"
        );
        slow.load = Some(MachineLoad {
            others_pct: 40.0,
            steal_pct: 0.0,
            load_average_before: Some(1.5),
            cores: 2,
        });
        assert!(
            slow.reason().ends_with(
                "(the machine was busy: other processes took 40 % of its time, so the speed figures may not repeat)"
            ),
            "{}",
            slow.reason()
        );
        assert!(slow.markdown().contains("\nwarning: the machine was busy"));
    }

    #[test]
    fn html_section_escapes_the_markdown() {
        let mut report = report(2.0);
        report.model = "<model & co>".into();
        let html = report.html_section();
        assert!(
            html.starts_with("<h2>Eager vs compiled</h2><pre>## Eager vs compiled"),
            "{html}"
        );
        assert!(html.contains("`&lt;model &amp; co&gt;`"), "{html}");
    }
}
