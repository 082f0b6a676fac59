//! `chronos2 compare`: eager and compiled on the same walk-forward setups and the same
//! trading simulation, and the decision by explicit criteria.

use std::io::Write;

use anyhow::{Context, Result};
use chronos2_backtest::report::{check_output_dir, write_atomic, write_outputs};
use chronos2_bench::compare::{check_settings, compare, CompareReport, Setup};
use chronos2_bench::load::LoadWatch;
use chronos2_bench::process::{time_this_binary, ProcessTimes};
use chronos2_bench::verdict::Thresholds;
use chronos2_bench::MachineInfo;
use chronos2_engine::{Mode, Settings};

use crate::commands::backtest::{self, backtest};
use crate::common::{load_engine, stderr_line};

/// Run eager and compiled on the same walk-forward setups (default: the original
/// profitability test, 10 windows x context 100 x horizon 7 on BTCUSD, plus a longer run) and
/// decide whether compiled mode should be on: speedup, success rate, MAE difference, maximum
/// forecast difference and the difference of total returns in percentage points.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    backtest: backtest::Args,
    /// Walk-forward setups, `WINDOWSxCONTEXTxHORIZON` separated by commas.
    #[arg(long, value_delimiter = ',', default_value = "10x100x7,200x512x7")]
    setups: Vec<Setup>,
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
    /// Compare two precisions instead of the two modes: `BASELINE,CANDIDATE`, e.g.
    /// `float32,bfloat16`; both run in the mode of `--mode` / `TORCH_COMPILED` (compiled if
    /// neither is given).
    #[arg(long, value_delimiter = ',')]
    dtypes: Option<Vec<String>>,
    /// Compiled total return may trail eager by at most this many percentage points.
    #[arg(long, default_value_t = 0.0)]
    return_tolerance_pp: f64,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Whole-process runs of each setup per mode (a one-shot `backtest` process: start, load,
    /// weight preparation, the setup's forecasts, exit; the candidate also once with an empty
    /// compile cache); 0 skips them.
    #[arg(long, default_value_t = 3)]
    process_runs: usize,
}

/// Set in a child process started to time a setup as a whole process: `LABEL:SETUP`, the
/// indices of the engine and the setup to run.
const PROBE_VARIABLE: &str = "CHRONOS2_COMPARE_PROBE";

/// What `compare` prints on stdout.
#[derive(clap::ValueEnum, Clone, Copy)]
enum Format {
    /// The Markdown report and the paths written.
    Table,
    /// The report as JSON.
    Json,
    /// The Markdown report.
    Markdown,
}

/// The settings of engine `label` (a mode, or a dtype with `--dtypes`).
fn settings_for(args: &Args, label: &str) -> Result<Settings> {
    let mut engine_args = args.backtest.engine.clone();
    Ok(match &args.dtypes {
        // Both precisions in the chosen mode, compiled unless the flag or variables say.
        Some(_) => {
            engine_args.dtype = Some(label.to_string());
            engine_args.settings_defaulting(Mode::Compiled)?
        }
        None => {
            engine_args.mode = Some(label.to_string());
            engine_args.settings()?
        }
    })
}

/// In a child started by [`whole_process`]: loads engine `LABEL`, runs setup `SETUP` once
/// (writing nothing) and returns.
fn run_probe(args: &Args, labels: &[String; 2], probe: &str) -> Result<()> {
    let parsed = probe
        .split_once(':')
        .and_then(|(label, setup)| Some((label.parse::<usize>().ok()?, setup.parse::<usize>().ok()?)));
    let Some((label, setup)) = parsed.filter(|&(label, setup)| label < 2 && setup < args.setups.len()) else {
        anyhow::bail!(
            "{PROBE_VARIABLE}={probe:?} is not LABEL:SETUP (it is set by compare for its own child processes)"
        );
    };
    let loaded = load_engine(&args.backtest.model, &settings_for(args, &labels[label])?)?;
    let mut setup_args = args.backtest.clone();
    let chosen = args.setups[setup];
    setup_args.windows = chosen.windows;
    setup_args.context = chosen.context;
    setup_args.horizon = chosen.horizon;
    backtest(&setup_args, &loaded.engine, &labels[label])?;
    Ok(())
}

/// Times setup `setup` run by engine `label` as whole child processes of this same command.
fn whole_process(label: usize, setup: usize, cached: bool, runs: usize) -> Result<ProcessTimes> {
    time_this_binary(PROBE_VARIABLE, &format!("{label}:{setup}"), cached, runs)
        .map_err(|e| anyhow::anyhow!("timing setup {setup} as a process: {e}"))
}

/// Runs the command.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    let thresholds = Thresholds {
        min_speedup: args.min_speedup,
        min_success_pct: args.min_success,
        max_mae_difference_pct: args.max_mae_diff,
        return_tolerance_pp: args.return_tolerance_pp,
    };
    // Everything that can be checked before the (long) runs is checked first: the settings,
    // the output folder (compare's own, never backtest's) and the data.
    check_settings(&args.setups, args.repeats, &thresholds)?;
    let dir = args.backtest.out_dir("compare-out");
    check_output_dir(&dir)?;
    let source = args.backtest.data_source()?;
    source
        .load(&args.backtest.load_options()?)
        .with_context(|| format!("cannot read the data {source}"))?;
    let labels: [String; 2] = match &args.dtypes {
        Some(dtypes) => {
            if dtypes.len() != 2 {
                anyhow::bail!("--dtypes takes two precisions, BASELINE,CANDIDATE (e.g. float32,bfloat16)");
            }
            [dtypes[0].clone(), dtypes[1].clone()]
        }
        None => ["eager".into(), "compiled".into()],
    };
    if let Ok(probe) = std::env::var(PROBE_VARIABLE) {
        return run_probe(args, &labels, &probe);
    }
    let mut engines = Vec::new();
    for label in &labels {
        engines.push(load_engine(&args.backtest.model, &settings_for(args, label)?)?);
    }
    let [eager, compiled]: [_; 2] = engines.try_into().map_err(|_| anyhow::anyhow!("two engines"))?;
    let labels_str = [labels[0].as_str(), labels[1].as_str()];
    let watch = LoadWatch::start();
    let (setups, compiled_run) = compare(
        &eager.engine,
        &compiled.engine,
        labels_str,
        &args.setups,
        args.repeats,
        &thresholds,
        &mut |engine, mode, setup| {
            let mut setup_args = args.backtest.clone();
            setup_args.windows = setup.windows;
            setup_args.context = setup.context;
            setup_args.horizon = setup.horizon;
            backtest(&setup_args, engine, mode)
        },
    )?;
    let mut setups = setups;
    if args.process_runs > 0 {
        let cached = [&eager, &compiled].map(|loaded| loaded.engine.compiled().is_some());
        for (index, setup) in setups.iter_mut().enumerate() {
            let baseline = whole_process(0, index, cached[0], args.process_runs)?;
            let candidate = whole_process(1, index, cached[1], args.process_runs)?;
            setup.whole_process = Some([baseline, candidate]);
        }
    }
    for setup in &setups {
        for (mode, run) in [(labels_str[0], &setup.eager), (labels_str[1], &setup.compiled)] {
            for failure in &run.failures {
                stderr_line(format_args!("warning: a {mode} run failed: {failure}"));
            }
        }
    }
    let mut report = CompareReport::new(
        MachineInfo::detect(compiled.engine.threads()),
        compiled.label.clone(),
        source.to_string(),
        labels_str,
        thresholds,
        setups,
    );
    report.load = watch.finish();
    let markdown = report.markdown();
    let json = serde_json::to_string_pretty(&report)?;
    let mut written = Vec::new();
    for (name, text) in [("compare.md", &markdown), ("compare.json", &json)] {
        let path = dir.join(name);
        write_atomic(&path, text.as_bytes())?;
        written.push(path);
    }
    if let Some(run) = &compiled_run {
        written.extend(write_outputs(run, &dir, &report.html_section())?);
    }
    match args.format {
        Format::Json => writeln!(out, "{json}")?,
        Format::Markdown => write!(out, "{markdown}")?,
        Format::Table => {
            write!(out, "{markdown}")?;
            let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
            writeln!(out, "\nwrote {}", names.join(", "))?;
        }
    }
    Ok(())
}
