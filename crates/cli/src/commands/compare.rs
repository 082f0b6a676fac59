//! `chronos2 compare`: eager and compiled on the same walk-forward setups and the same
//! trading simulation, and the decision by explicit criteria.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use chronos2_backtest::report::write_outputs;
use chronos2_backtest::BacktestRun;
use chronos2_bench::verdict::{decide, Measurements, Thresholds, Verdict};
use chronos2_bench::{MachineInfo, Summary};
use chronos2_engine::Engine;
use serde::Serialize;

use crate::commands::backtest::{self, backtest};
use crate::common::load_engine;

/// Run eager and compiled on the same walk-forward setups (default: the original
/// profitability test, 10 windows x context 100 x horizon 7 on BTCUSD, plus a longer run) and
/// decide whether compiled mode should be on: speedup, success rate, MAE difference, maximum
/// forecast difference and the difference of total returns in percentage points.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    backtest: backtest::Args,
    /// Walk-forward setups, `WINDOWSxCONTEXTxHORIZON` separated by commas.
    #[arg(long, default_value = "10x100x7,200x512x7")]
    setups: String,
    /// Timed repeats of each setup per mode (after one warm-up run).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Required speedup (ratio of median latencies).
    #[arg(long, default_value_t = 1.5)]
    min_speedup: f64,
    /// Required success rate of the compiled mode, %.
    #[arg(long, default_value_t = 100.0)]
    min_success: f64,
    /// Largest allowed relative MAE difference, %.
    #[arg(long, default_value_t = 2.0)]
    max_mae_diff: f64,
    /// Compiled total return may trail eager by at most this many percentage points.
    #[arg(long, default_value_t = 0.0)]
    return_tolerance_pp: f64,
    /// `table`, `json` (on stdout) or `markdown`.
    #[arg(long, default_value = "table")]
    format: String,
}

#[derive(Serialize)]
struct ModeRun {
    per_call_ms: Vec<f64>,
    per_call: Summary,
    windows_ok: usize,
    windows_total: usize,
    success_pct: f64,
    mae: f64,
    total_return: f64,
    plans_built: usize,
    fallbacks: usize,
}

#[derive(Serialize)]
struct SetupResult {
    setup: String,
    eager: ModeRun,
    compiled: ModeRun,
    speedup: f64,
    speedup_spread: (f64, f64),
    mae_difference_pct: f64,
    max_forecast_difference: f64,
    max_forecast_difference_relative: f64,
    return_difference_pp: Vec<(String, f64)>,
    verdict: Verdict,
}

#[derive(Serialize)]
struct CompareReport {
    machine: MachineInfo,
    model: String,
    data: String,
    thresholds: Thresholds,
    setups: Vec<SetupResult>,
    enable_compiled: bool,
}

fn parse_setup(text: &str) -> Result<(usize, usize, usize)> {
    let parts: Vec<usize> = text
        .trim()
        .split('x')
        .map(|p| p.parse())
        .collect::<Result<_, _>>()
        .ok()
        .unwrap_or_default();
    match parts.as_slice() {
        [w, c, h] => Ok((*w, *c, *h)),
        _ => bail!("cannot read setup `{text}`; expected WINDOWSxCONTEXTxHORIZON, e.g. 10x100x7"),
    }
}

/// Runs one mode: a warm-up backtest, then `repeats` timed ones.
fn run_mode(
    args: &backtest::Args,
    engine: &Engine,
    label: &str,
    repeats: usize,
) -> Result<(ModeRun, Option<BacktestRun>)> {
    let windows = args.windows;
    let _ = backtest(args, engine, label);
    let (mut per_call, mut ok, mut last) = (Vec::new(), 0, None);
    for _ in 0..repeats {
        match backtest(args, engine, label) {
            Ok(run) => {
                per_call.push(1e3 * run.timing.model_seconds / run.timing.model_calls.max(1) as f64);
                ok += windows;
                last = Some(run);
            }
            Err(e) => eprintln!("warning: a {label} run failed: {e:#}"),
        }
    }
    let (mae, total_return) = last.as_ref().map_or((f64::NAN, f64::NAN), |r| {
        (r.series[0].model.mae, r.series[0].strategies[0].metrics.total_return)
    });
    let stats = engine.stats().unwrap_or_default();
    Ok((
        ModeRun {
            per_call: Summary::of(&per_call),
            per_call_ms: per_call,
            windows_ok: ok,
            windows_total: windows * repeats,
            success_pct: 100.0 * ok as f64 / (windows * repeats).max(1) as f64,
            mae,
            total_return,
            plans_built: stats.plans_built,
            fallbacks: stats.fallbacks,
        },
        last,
    ))
}

/// Largest |a - b| between the two runs' median forecasts, absolute and relative to the
/// largest |forecast|.
fn max_difference(a: &BacktestRun, b: &BacktestRun) -> (f64, f64) {
    let (mut worst, mut scale) = (0.0f64, 0.0f64);
    for (sa, sb) in a.series.iter().zip(&b.series) {
        for (wa, wb) in sa.windows.iter().zip(&sb.windows) {
            for (x, y) in wa.median.iter().zip(&wb.median) {
                worst = worst.max((x - y).abs());
                scale = scale.max(x.abs());
            }
        }
    }
    (worst, if scale > 0.0 { worst / scale } else { f64::NAN })
}

/// Runs the command.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    let thresholds = Thresholds {
        min_speedup: args.min_speedup,
        min_success_pct: args.min_success,
        max_mae_difference_pct: args.max_mae_diff,
        return_tolerance_pp: args.return_tolerance_pp,
    };
    if !matches!(args.format.as_str(), "table" | "json" | "markdown") {
        bail!("unknown --format `{}`; expected table, json or markdown", args.format);
    }
    let setups: Vec<(usize, usize, usize)> = args.setups.split(',').map(parse_setup).collect::<Result<_>>()?;
    let mut engine_args = args.backtest.engine.clone();
    engine_args.mode = Some("eager".into());
    let eager = load_engine(&args.backtest.model, &engine_args.settings()?)?;
    engine_args.mode = Some("compiled".into());
    let compiled = load_engine(&args.backtest.model, &engine_args.settings()?)?;
    let mut results = Vec::new();
    let mut first_compiled_run = None;
    for &(windows, context, horizon) in &setups {
        let mut setup_args = args.backtest.clone();
        setup_args.windows = windows;
        setup_args.context = context;
        setup_args.horizon = horizon;
        let (eager_run, eager_last) = run_mode(&setup_args, &eager.engine, "eager", args.repeats)?;
        let (compiled_run, compiled_last) = run_mode(&setup_args, &compiled.engine, "compiled", args.repeats)?;
        let pairs: Vec<f64> = eager_run
            .per_call_ms
            .iter()
            .zip(&compiled_run.per_call_ms)
            .map(|(e, c)| e / c)
            .collect();
        let spread = pairs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| {
            (lo.min(r), hi.max(r))
        });
        let (max_diff, max_rel) = match (&eager_last, &compiled_last) {
            (Some(e), Some(c)) => max_difference(e, c),
            _ => (f64::NAN, f64::NAN),
        };
        let return_differences = match (&eager_last, &compiled_last) {
            (Some(e), Some(c)) => e.series[0]
                .strategies
                .iter()
                .zip(&c.series[0].strategies)
                .map(|(se, sc)| {
                    (
                        se.name.clone(),
                        100.0 * (sc.metrics.total_return - se.metrics.total_return),
                    )
                })
                .collect(),
            _ => Vec::new(),
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
            setup: format!("{windows} windows x context {context} x horizon {horizon}"),
            speedup: measurements.speedup,
            speedup_spread: spread,
            mae_difference_pct: chronos2_bench::verdict::relative_difference_pct(eager_run.mae, compiled_run.mae),
            max_forecast_difference: max_diff,
            max_forecast_difference_relative: max_rel,
            return_difference_pp: return_differences,
            verdict: decide(&measurements, &thresholds),
            eager: eager_run,
            compiled: compiled_run,
        });
    }
    let report = CompareReport {
        machine: MachineInfo::detect(Engine::threads()),
        model: compiled.label.clone(),
        data: args.backtest.data_path().display().to_string(),
        thresholds,
        enable_compiled: results.iter().all(|r| r.verdict.enable_compiled),
        setups: results,
    };
    let markdown = markdown(&report);
    std::fs::create_dir_all(&args.backtest.out)
        .with_context(|| format!("cannot create {}", args.backtest.out.display()))?;
    let md_path: PathBuf = args.backtest.out.join("compare.md");
    std::fs::write(&md_path, &markdown).with_context(|| format!("cannot write {}", md_path.display()))?;
    std::fs::write(
        args.backtest.out.join("compare.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    if let Some(run) = &first_compiled_run {
        let section = format!(
            "<h2>Eager vs compiled</h2><pre>{}</pre>",
            markdown.replace('&', "&amp;").replace('<', "&lt;")
        );
        write_outputs(run, &args.backtest.out, &section)?;
    }
    match args.format.as_str() {
        "json" => writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?,
        _ => write!(out, "{markdown}")?,
    }
    if args.format == "table" {
        writeln!(
            out,
            "\nwrote {} and {}",
            md_path.display(),
            args.backtest.out.join("report.html").display()
        )?;
    }
    Ok(())
}

fn markdown(r: &CompareReport) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let _ = writeln!(
        s,
        "## Eager vs compiled: {}",
        if r.enable_compiled {
            "enable compiled mode"
        } else {
            "keep eager mode"
        }
    );
    let _ = writeln!(
        s,
        "\nmodel `{}`, data `{}`; {} ({} cores, {} threads, GEMM {})\n",
        r.model, r.data, m.cpu, m.cores, m.threads, m.gemm_isa
    );
    for setup in &r.setups {
        let _ = writeln!(s, "### {}\n", setup.setup);
        let _ = writeln!(s, "| | eager | compiled |\n|---|---|---|");
        let (e, c) = (&setup.eager, &setup.compiled);
        let _ = writeln!(
            s,
            "| latency per model call, median (ms) | {:.2} | {:.2} |",
            e.per_call.median, c.per_call.median
        );
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
