//! `chronos2 bench`: load, warm-up and steady-state latency of eager and compiled, side by side.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chronos2_backtest::report::write_atomic;
use chronos2_backtest::table::Table;
use chronos2_bench::load::{spread, LoadWatch, MachineLoad, NOISY_SPREAD};
use chronos2_bench::process::{time_this_binary, ProcessTimes};
use chronos2_bench::{
    family_of, model_flops, peak_rss_bytes, run_case, run_for, shape_case, CaseResult, DurationResult, Family,
    MachineInfo, OfPeak, PeakReport, ShapeCase, ABOVE_PEAK_NOTE, REFERENCE_FLOPS_NOTE,
};
use chronos2_data::LoadOptions;
use chronos2_engine::Pool;
use chronos2_engine::{Engine, Settings};
use chronos2_forecast::parse_targets;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::common::{load_engine, EngineArgs, ModelArgs};
use crate::data_args::DataArgs;

/// Measure load, warm-up and steady-state latency (median, p95, p99, ...), plans built after
/// warm-up, fallbacks and memory, for eager, compiled or both; or run continuously on varying
/// inputs with `--duration`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    engine: EngineArgs,
    /// Run `eager`, `compiled` or `both` (overrides --mode).
    #[arg(long, default_value = "both")]
    modes: String,
    /// Shape cases: A (1 x 512, h16), B (1 x 2048, h64), C (32 x 512, h16), D (4-variate group x 512, h16),
    /// E (256 x 512, h16), F (one group of 256 rows x 512, h16), G (1 x 8192, h16).
    #[arg(long, default_value = "A,B,C,D")]
    cases: String,
    // With --data: the inputs are drawn from the data's first target column instead of a
    // synthetic series.
    #[command(flatten)]
    data: DataArgs,
    /// Warm-up calls per case before timing (each is reported apart).
    #[arg(long, default_value_t = 2)]
    warmup_calls: usize,
    /// Timed steady-state calls per case.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Instead of the cases: call continuously for this long (e.g. `60s`, `2m`) on windows
    /// drawn at random from the data, as a live loop would.
    #[arg(long)]
    duration: Option<String>,
    /// With --duration: vary the context length between calls (shows re-planning).
    #[arg(long)]
    vary_shapes: bool,
    /// Context length for --duration.
    #[arg(long, default_value_t = 512)]
    context: usize,
    /// Horizon for --duration.
    #[arg(long, default_value_t = 16)]
    horizon: usize,
    /// Size of the square GEMMs that measure this machine's f32, bf16 and int8 rates.
    #[arg(long, default_value_t = 2048)]
    gemm_size: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Also write the JSON report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Whole-process runs per mode that time process start to first forecast (the first
    /// case, model loading and weight preparation included; compiled mode also once with an
    /// empty compile cache); 0 skips them.
    #[arg(long, default_value_t = 3)]
    process_runs: usize,
}

/// Set in a child process started to time start-to-first-forecast: the mode to run.
const PROBE_VARIABLE: &str = "CHRONOS2_BENCH_PROBE";

/// Output formats.
#[derive(clap::ValueEnum, Clone, Copy)]
enum Format {
    /// Aligned tables and one line per figure.
    Table,
    /// Every figure as JSON.
    Json,
}

#[derive(Serialize)]
struct CaseReport {
    case: ShapeCase,
    flops: f64,
    /// Rows forecast per second at the median latency.
    series_per_s: f64,
    result: CaseResult,
    /// The achieved rate against the peak of the level the dtype's kernels run at (CPU only).
    of_peak: Option<OfPeak>,
}

#[derive(Serialize)]
struct ModeReport {
    model: String,
    parameters: usize,
    mode: String,
    settings: String,
    /// Where the model ran (`cpu`, `cuda:N`).
    device: String,
    /// The kernel family of the encoder blocks' precision.
    #[serde(skip)]
    family: Family,
    /// The GPU's name, when the model ran on one (and did not fall back).
    gpu: Option<String>,
    /// Threads that ran the model (the engine's pool).
    threads: usize,
    /// Bytes of weights the compiled engine prepared (packed panels), if compiled.
    packed_bytes: Option<usize>,
    load_ms: f64,
    prepare_ms: f64,
    /// Whole process, start to first forecast (the first case), if measured.
    start_to_first_forecast: Option<ProcessTimes>,
    cases: Vec<CaseReport>,
    duration: Option<DurationResult>,
    peak_rss_bytes: Option<u64>,
}

#[derive(Serialize)]
struct Report {
    machine: MachineInfo,
    gemm_size: usize,
    /// The f32 GEMM probe's rate (also in `peaks.probes`).
    gemm_rate_gflops: f64,
    /// Measured peaks per level and the GEMM probes of every precision.
    peaks: PeakReport,
    /// What other processes took of the machine while this ran (Linux only).
    load: Option<MachineLoad>,
    model: String,
    parameters: usize,
    modes: Vec<ModeReport>,
}

/// Longest `--duration`: one day.
const MAX_DURATION_S: f64 = 86_400.0;

/// Largest `--gemm-size`: its three f32 matrices take 3 · n² · 4 bytes (768 MiB at 8192).
const MAX_GEMM_SIZE: usize = 8192;

fn parse_duration(text: &str) -> Result<Duration> {
    let text = text.trim();
    let unreadable = || format!("cannot read --duration `{text}`; expected a positive time like 60s, 2m or 500ms");
    let (number, unit) = text.split_at(text.find(|c: char| c.is_alphabetic()).unwrap_or(text.len()));
    let value: f64 = number.trim().parse().with_context(unreadable)?;
    let seconds = match unit {
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "ms" => value / 1e3,
        _ => bail!(unreadable()),
    };
    if !(seconds > 0.0 && seconds <= MAX_DURATION_S) {
        bail!("--duration `{text}` must be more than 0 and at most {MAX_DURATION_S} s (one day)");
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Checks the flags that do not need the model.
fn check_args(args: &Args) -> Result<()> {
    if args.gemm_size == 0 || args.gemm_size > MAX_GEMM_SIZE {
        let bytes = 12.0 * (args.gemm_size as f64).powi(2);
        bail!(
            "--gemm-size must be between 1 and {MAX_GEMM_SIZE}, found {} (it would need {:.1} GB)",
            args.gemm_size,
            bytes / 1e9
        );
    }
    if args.runs == 0 {
        bail!("--runs must be at least 1: with no timed call there is no latency to report");
    }
    if let Some(text) = &args.duration {
        parse_duration(text)?;
    }
    if args.context == 0 || args.horizon == 0 {
        bail!(
            "--context and --horizon must be at least 1, found {} and {}",
            args.context,
            args.horizon
        );
    }
    Ok(())
}

/// Checks `--context` and `--horizon` of a `--duration` run against the model: a benchmark
/// call is one forward pass, so the horizon must fit one.
fn check_live_shape(args: &Args, config: &chronos2::Config) -> Result<()> {
    if args.context > config.context_length {
        bail!(
            "--context {} is more than the model's context length {}",
            args.context,
            config.context_length
        );
    }
    if args.horizon > config.max_horizon() {
        bail!(
            "--horizon {} is more than one forward pass of this model produces ({}); a benchmark call is one pass",
            args.horizon,
            config.max_horizon()
        );
    }
    Ok(())
}

/// The first target column (`--target`, default close) of every series of every `--data`
/// source. The forecast pipeline's input rule applies: a value that is infinite or beyond
/// f32's range is refused, naming the bar (NaN is missing).
fn data_series(args: &DataArgs) -> Result<Vec<Vec<f32>>> {
    let target = parse_targets(&args.target)
        .into_iter()
        .next()
        .context("--target names no column")?;
    let options = LoadOptions {
        columns: vec![target.clone()],
        ..args.load_options()?
    };
    let mut out = Vec::new();
    for source in args.sources(None)? {
        let data = source.load(&options)?;
        let stem = source.stem();
        for s in &data.series {
            let values: Vec<f32> = s.columns[0].1.iter().map(|&v| v as f32).collect();
            if let Some(bar) = values.iter().position(|v| v.is_infinite()) {
                bail!(
                    "{}: the {target} at {} is {}, outside the model's range (|x| < 3.4e38); fix the data",
                    s.label(&stem),
                    chronos2_data::format_timestamp(s.timestamps[bar], chronos2_data::TimestampStyle::DateTime),
                    s.columns[0].1[bar]
                );
            }
            out.push(values);
        }
    }
    Ok(out)
}

fn run_mode(args: &Args, settings: &Settings, series: &[Vec<f32>], cases: &[ShapeCase]) -> Result<ModeReport> {
    let loaded = load_engine(&args.model, settings)?;
    let engine: &Engine = &loaded.engine;
    let config = engine.model_config().clone();
    let mut reports = Vec::new();
    let mut duration = None;
    if let Some(text) = &args.duration {
        let length = parse_duration(text)?;
        check_live_shape(args, &config)?;
        // Only series long enough to draw a window from.
        let series: Vec<&Vec<f32>> = series.iter().filter(|s| s.len() > args.context + 1).collect();
        if series.is_empty() {
            bail!(
                "--duration needs --data with more than {} bars (the context) to draw windows from",
                args.context + 1
            );
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let contexts = [args.context, (args.context * 3 / 4).max(1), (args.context / 2).max(1)];
        let result = run_for(
            engine,
            |i| {
                let s = series[rng.gen_range(0..series.len())];
                let context = if args.vary_shapes {
                    contexts[i % contexts.len()]
                } else {
                    args.context
                }
                .min(s.len() - 1);
                let end = rng.gen_range(context..=s.len());
                let case = ShapeCase {
                    name: "live",
                    rows: 1,
                    context,
                    horizon: args.horizon,
                    grouped: false,
                };
                case.input(&config, &[s[end - context..end].to_vec()])
            },
            length,
        );
        duration = Some(result);
    } else {
        for case in cases {
            let input = case.input(&config, series);
            let m = input.num_output_patches();
            let patches = chronos2::patching::context_patches(&config, case.context);
            let flops = model_flops(&config, case.rows, patches, m);
            let result = run_case(engine, &input, flops, args.warmup_calls, args.runs);
            reports.push(CaseReport {
                case: *case,
                flops,
                series_per_s: case.rows as f64 / (result.steady_ms.median / 1e3),
                result,
                of_peak: None,
            });
        }
    }
    Ok(ModeReport {
        model: loaded.label.clone(),
        parameters: engine.eager_model().parameter_count(),
        mode: format!("{:?}", settings.mode).to_lowercase(),
        settings: settings.to_string(),
        device: settings.device.name(),
        family: family_of(settings.dtype),
        gpu: gpu_name(engine),
        threads: engine.threads(),
        packed_bytes: engine.stats().map(|s| s.packed_bytes),
        load_ms: loaded.load_time.as_secs_f64() * 1e3,
        prepare_ms: loaded.prepare_time.as_secs_f64() * 1e3,
        start_to_first_forecast: None,
        cases: reports,
        duration,
        peak_rss_bytes: peak_rss_bytes(),
    })
}

/// The name of the GPU `engine` runs on, if any.
#[cfg(feature = "cuda")]
fn gpu_name(engine: &Engine) -> Option<String> {
    engine.cuda().filter(|gpu| !gpu.has_fallen_back())?.stats().device_name
}

/// Without the `cuda` feature no engine runs on a GPU.
#[cfg(not(feature = "cuda"))]
fn gpu_name(_: &Engine) -> Option<String> {
    None
}

/// Runs the command.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    check_args(args)?;
    let cases: Vec<ShapeCase> = args
        .cases
        .split(',')
        .map(|name| shape_case(name.trim()).with_context(|| format!("unknown case `{name}`; expected one of A to G")))
        .collect::<Result<_>>()?;
    let modes: Vec<&str> = match args.modes.as_str() {
        "both" => vec!["eager", "compiled"],
        "eager" => vec!["eager"],
        "compiled" => vec!["compiled"],
        other => bail!("unknown --modes `{other}`; expected eager, compiled or both"),
    };
    let series = if args.data.data.is_empty() {
        Vec::new()
    } else {
        data_series(&args.data)?
    };
    let mut base = args.engine.clone();
    if let Ok(mode) = std::env::var(PROBE_VARIABLE) {
        // A child started by `start_to_first_forecast`: one forecast, then exit.
        base.mode = Some(mode);
        let loaded = load_engine(&args.model, &base.settings()?)?;
        let config = loaded.engine.model_config().clone();
        let case = cases.first().context("no case to run")?;
        loaded.engine.forward(&case.input(&config, &series))?;
        return Ok(());
    }
    let watch = LoadWatch::start();
    let mut reports = Vec::new();
    for mode in modes {
        base.mode = Some(mode.to_string());
        let settings = base.settings()?;
        let mut report = run_mode(args, &settings, &series, &cases)?;
        if args.process_runs > 0 && args.duration.is_none() {
            report.start_to_first_forecast = Some(start_to_first_forecast(mode, args.process_runs)?);
        }
        reports.push(report);
    }
    let threads = reports[0].threads;
    let peaks = PeakReport::measure(args.gemm_size, 5, &Pool::new(threads));
    let load = watch.finish();
    for mode in reports.iter_mut().filter(|m| m.device == "cpu") {
        for case in &mut mode.cases {
            case.of_peak = peaks.of_peak(mode.family, case.result.gflops);
        }
    }
    let report = Report {
        machine: MachineInfo::detect(threads),
        gemm_size: args.gemm_size,
        gemm_rate_gflops: peaks.probe(Family::F32).map_or(f64::NAN, |p| p.rate),
        peaks,
        load,
        model: reports[0].model.clone(),
        parameters: reports[0].parameters,
        modes: reports,
    };
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &args.out {
        write_atomic(path, text.as_bytes())?;
    }
    match args.format {
        Format::Json => writeln!(out, "{text}")?,
        Format::Table => write_table(&report, out)?,
    }
    let (failed, calls) = failed_calls(&report);
    if failed > 0 {
        bail!("{failed} of {calls} timed calls failed or gave non-finite values (see the report above); these figures do not measure a working engine");
    }
    Ok(())
}

/// Times this command again as child processes that load the model in `mode`, run the first
/// case once and exit (the same flags, so the same model, data and settings).
fn start_to_first_forecast(mode: &str, runs: usize) -> Result<ProcessTimes> {
    time_this_binary(PROBE_VARIABLE, mode, mode == "compiled", runs)
        .map_err(|e| anyhow::anyhow!("timing {mode} start-up: {e}"))
}

/// Timed calls that failed or gave a non-finite output, and all timed calls, over the report.
fn failed_calls(report: &Report) -> (usize, usize) {
    let mut failed = 0;
    let mut calls = 0;
    for mode in &report.modes {
        for case in &mode.cases {
            failed += case.result.errors + case.result.non_finite;
            calls += case.result.steady_ms.count;
        }
        if let Some(d) = &mode.duration {
            failed += d.errors + d.non_finite;
            calls += d.calls;
        }
    }
    (failed, calls)
}

fn write_table(report: &Report, out: &mut dyn Write) -> Result<()> {
    let m = &report.machine;
    let f32_size = report.peaks.probe(Family::F32).map_or(report.gemm_size, |p| p.size);
    writeln!(
        out,
        "machine: {} | {} cores, {} threads used | GEMM kernels {} | fp32 GEMM {}^3: {:.1} GFLOP/s",
        m.cpu, m.cores, m.threads, m.gemm_isa, f32_size, report.gemm_rate_gflops
    )?;
    write!(out, "{}", report.peaks.text(report.gemm_size))?;
    writeln!(out, "model: {} ({} parameters)", report.model, report.parameters)?;
    for mode in &report.modes {
        writeln!(
            out,
            "{}{}: load {:.1} ms, engine preparation {:.1} ms{}, peak RSS {}",
            mode.settings,
            mode.gpu.as_ref().map_or(String::new(), |name| format!(" ({name})")),
            mode.load_ms,
            mode.prepare_ms,
            mode.packed_bytes.map_or(String::new(), |b| format!(
                " ({:.0} MiB of packed weights)",
                b as f64 / 1048576.0
            )),
            mode.peak_rss_bytes
                .map_or("n/a".into(), |b| format!("{:.0} MiB", b as f64 / 1048576.0))
        )?;
    }
    for mode in &report.modes {
        if let Some(p) = &mode.start_to_first_forecast {
            writeln!(
                out,
                "{}: start to first forecast (whole process, first case) median {:.1} ms over {} runs{}",
                mode.mode,
                p.warm.median,
                p.warm.count,
                p.cold_ms.map_or(String::new(), |cold| format!(
                    " with the compile cache warm; {cold:.1} ms cold (empty cache)"
                ))
            )?;
        }
    }
    let any_cases = report.modes.iter().any(|m| !m.cases.is_empty());
    if any_cases {
        let mut table = Table::new([
            "case", "mode", "1st call", "median", "series/s", "p95", "p99", "min", "max", "GFLOP/s", "%peak", "plans+",
            "fallb", "err",
        ])
        .align_left(2);
        let ms = |v: f64| format!("{v:.1}ms");
        for mode in &report.modes {
            for c in &mode.cases {
                let r = &c.result;
                table.push(vec![
                    c.case.name.to_string(),
                    mode.mode.clone(),
                    // No warm-up call (`--warmup-calls 0`): the first call is among the timed ones.
                    r.warmup_ms.first().map_or("-".to_string(), |&v| ms(v)),
                    ms(r.steady_ms.median),
                    format!("{:.1}", c.series_per_s),
                    ms(r.steady_ms.p95),
                    ms(r.steady_ms.p99),
                    ms(r.steady_ms.min),
                    ms(r.steady_ms.max),
                    format!("{:.1}", r.gflops),
                    c.of_peak.map_or("-".to_string(), |o| o.to_string()),
                    r.plans_built_after_warmup.to_string(),
                    r.fallbacks.to_string(),
                    (r.errors + r.non_finite).to_string(),
                ]);
            }
        }
        write!(out, "\n{}", table.text(""))?;
        writeln!(out, "\n{REFERENCE_FLOPS_NOTE}")?;
        if report.modes.len() == 2 {
            writeln!(out)?;
            for (e, c) in report.modes[0].cases.iter().zip(&report.modes[1].cases) {
                let (e, c, name) = (&e.result.steady_ms, &c.result.steady_ms, e.case.name);
                write!(
                    out,
                    "case {name}: compiled is {:.2}x eager (ratio of medians, {} runs each)",
                    e.median / c.median,
                    e.count
                )?;
                let (es, cs) = (spread(e.min, e.median, e.max), spread(c.min, c.median, c.max));
                if es > NOISY_SPREAD || cs > NOISY_SPREAD {
                    write!(
                        out,
                        "; runs disagree (eager spread {:.0} %, compiled {:.0} % of the median): this ratio may not repeat",
                        100.0 * es,
                        100.0 * cs
                    )?;
                }
                writeln!(out)?;
            }
        }
    }
    if let Some(load) = &report.load {
        writeln!(out, "\n{load}")?;
    }
    let above_peak = report.peaks.probes.iter().filter_map(|p| p.of_peak);
    let cases = report.modes.iter().flat_map(|m| &m.cases).filter_map(|c| c.of_peak);
    if above_peak.chain(cases).any(|o| o.above_peak) {
        writeln!(out, "\n{ABOVE_PEAK_NOTE}")?;
    }
    for mode in &report.modes {
        if let Some(d) = &mode.duration {
            let mib = |b: Option<u64>| b.map_or("n/a".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0));
            writeln!(
                out,
                "\n{} for {:.0} s: {} calls, {:.2}% success ({} errors, {} non-finite), {:.1} calls/s, latency median {:.1} ms p95 {:.1} ms p99 {:.1} ms max {:.1} ms, plans built after warm-up {}, fallbacks {}, RSS first 10 s {} / last 10 s {}",
                mode.mode,
                d.seconds,
                d.calls,
                d.success_rate_pct,
                d.errors,
                d.non_finite,
                d.throughput_per_s,
                d.latency_ms.median,
                d.latency_ms.p95,
                d.latency_ms.p99,
                d.latency_ms.max,
                d.plans_built_after_warmup,
                d.fallbacks,
                mib(d.rss_first_10s),
                mib(d.rss_last_10s)
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    /// `--duration -1s` and `1e20s` used to panic inside `Duration`.
    #[test]
    fn durations_are_positive_and_bounded() {
        assert_eq!(parse_duration("2m").unwrap().as_secs(), 120);
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        for bad in [
            "-1s",
            "1e20s",
            "100000000000000000000s",
            "0s",
            "NaNs",
            "inf",
            "1e400",
            "-0.5m",
        ] {
            let msg = parse_duration(bad).unwrap_err().to_string();
            assert!(msg.contains("--duration"), "{bad}: {msg}");
        }
        assert!(parse_duration("1x").unwrap_err().to_string().contains("cannot read"));
    }
}
