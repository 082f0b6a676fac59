//! `chronos2 backtest`: walk-forward evaluation, baselines, trading simulation and a report.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use chronos2_backtest::report::{check_output_dir, summary, write_outputs};
use chronos2_backtest::trading::SimConfig;
use chronos2_backtest::walkforward::{first_bar_at_or_after, DatedOriginError};
use chronos2_backtest::{run_backtest, BacktestOptions, BacktestRun, StrategyOptions};
use chronos2_data::{DataSource, Duplicates, Gaps, IdColumn, LoadOptions};
use indicatif::{ProgressBar, ProgressStyle};

use crate::common::{load_engine, EngineArgs, ModelArgs};

/// The data the README's main command uses when `--data` is not given, built into the
/// binary so that it works wherever it is installed.
const BUNDLED_DATA: DataSource<'static> = DataSource::Bundled {
    name: "BTCUSD.csv",
    bytes: include_bytes!("../../../../data/BTCUSD.csv"),
};

/// Walk-forward backtest: forecasts from rolling origins scored against the bars they forecast,
/// naive / seasonal-naive / drift baselines, a Diebold-Mariano test, trading simulations with
/// fees, and a report (terminal, JSON, CSV, HTML) in --out.
#[derive(clap::Args, Clone)]
#[group(id = "backtest_args")]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// CSV of bars (default: BTC-USD daily bars built into the program, data/BTCUSD.csv).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// `close` (univariate) or `ohlc` (open, high, low, close forecast jointly; close is scored
    /// and traded).
    #[arg(long, default_value = "close")]
    pub target: String,
    /// Context bars per window.
    #[arg(long, default_value_t = 512)]
    pub context: usize,
    /// Forecast horizon in bars.
    #[arg(long, default_value_t = 7)]
    pub horizon: usize,
    /// Number of windows (origins).
    #[arg(long, default_value_t = 100)]
    pub windows: usize,
    /// Bars between origins.
    #[arg(long, default_value_t = 1)]
    pub step: usize,
    /// First origin: a bar index or a date (`2023-01-31`); default: the last windows of the data.
    #[arg(long)]
    pub first_origin: Option<String>,
    /// Seasonal period for MASE, scaled losses and the seasonal-naive baseline.
    #[arg(long, default_value_t = 7)]
    pub season: usize,
    /// Forecast step the strategies trade (positions are held this many bars).
    #[arg(long, default_value_t = 1)]
    pub trade_step: usize,
    /// Threshold strategy: go long above +threshold predicted return, short below -threshold.
    #[arg(long, default_value_t = 0.005)]
    pub threshold: f64,
    /// Confidence strategy's interval, `low,high` quantile levels.
    #[arg(long, default_value = "0.1,0.9")]
    pub interval: String,
    /// Never go short.
    #[arg(long)]
    pub long_only: bool,
    /// Position size as a fraction of equity, at most 10 (10x leverage); equity that reaches
    /// zero ends trading (bankruptcy, -100%).
    #[arg(long, default_value_t = 1.0)]
    pub fraction: f64,
    /// Fee per side, basis points (0 to 1000).
    #[arg(long, default_value_t = 10.0)]
    pub fee_bps: f64,
    /// Slippage per side, basis points (0 to 1000).
    #[arg(long, default_value_t = 5.0)]
    pub slippage_bps: f64,
    /// Rows per model call.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Id column of a long-format file (default: automatic; `none` = one series).
    #[arg(long)]
    pub id_column: Option<String>,
    /// Missing bars: `none` (trading-day index) or `forward` (forward-fill a full calendar).
    #[arg(long, default_value = "none")]
    pub fill: String,
    /// Keep the last of rows sharing a timestamp instead of refusing the file.
    #[arg(long)]
    pub keep_last: bool,
    /// Output directory for report.json, forecasts.csv, trades.csv and report.html (default:
    /// backtest-out; compare-out for `compare`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl Args {
    /// The output directory: `--out`, else `default` (each command has its own, so that one
    /// never replaces the other's report).
    pub fn out_dir(&self, default: &str) -> PathBuf {
        self.out.clone().unwrap_or_else(|| PathBuf::from(default))
    }

    /// The data: the `--data` file, or the bundled BTCUSD.csv.
    pub fn data_source(&self) -> DataSource<'_> {
        self.data.as_deref().map_or(BUNDLED_DATA, DataSource::File)
    }

    /// Reading options for the data file.
    pub fn load_options(&self) -> Result<LoadOptions> {
        Ok(LoadOptions {
            columns: Vec::new(),
            timestamp_column: None,
            id_column: IdColumn::from_choice(self.id_column.as_deref()),
            duplicates: Duplicates::keeping_last(self.keep_last),
            gaps: Gaps::from_name(&self.fill)
                .with_context(|| format!("unknown --fill `{}`; expected `none` or `forward`", self.fill))?,
        })
    }

    /// The walk-forward options (a dated `--first-origin` is resolved against the data).
    pub fn options(&self, bars: &[i64]) -> Result<BacktestOptions> {
        let joint_ohlc = match self.target.to_ascii_lowercase().as_str() {
            "close" => false,
            "ohlc" => true,
            other => bail!("unknown --target `{other}` for backtests; expected `close` or `ohlc`"),
        };
        let interval: Vec<f32> = self
            .interval
            .split(',')
            .map(|v| v.trim().parse::<f32>())
            .collect::<Result<_, _>>()
            .ok()
            .filter(|v: &Vec<f32>| v.len() == 2 && v[0] < v[1])
            .with_context(|| {
                format!(
                    "cannot read --interval `{}`; expected two levels like 0.1,0.9",
                    self.interval
                )
            })?;
        let allowed = chronos2_backtest::walkforward::LEVELS;
        if !interval.iter().all(|l| allowed.iter().any(|a| (a - l).abs() < 1e-6)) {
            bail!("--interval levels must be among {allowed:?}");
        }
        let first_origin = match &self.first_origin {
            None => None,
            Some(text) => Some(match text.parse::<usize>() {
                Ok(index) => index,
                Err(_) => first_bar_at_or_after(bars, text).map_err(|e| match e {
                    DatedOriginError::Unreadable => {
                        anyhow!("cannot read --first-origin `{text}`; expected a bar index or a date")
                    }
                    DatedOriginError::AfterLastBar => anyhow!("--first-origin {text} is after the last bar"),
                })?,
            }),
        };
        let options = BacktestOptions {
            context: self.context,
            horizon: self.horizon,
            windows: self.windows,
            step: self.step,
            first_origin,
            season: self.season,
            joint_ohlc,
            batch_size: self.batch_size,
            strategy: StrategyOptions {
                trade_step: self.trade_step,
                threshold: self.threshold,
                interval: (interval[0], interval[1]),
                long_only: self.long_only,
                sim: SimConfig {
                    fraction: self.fraction,
                    fee_bps: self.fee_bps,
                    slippage_bps: self.slippage_bps,
                    hold: self.trade_step,
                    initial_equity: 10_000.0,
                },
            },
        };
        options.validate()?;
        Ok(options)
    }
}

/// Runs a backtest with an already built engine (shared with `compare`).
pub fn backtest(args: &Args, engine: &chronos2_engine::Engine, label: &str) -> Result<BacktestRun> {
    let source = args.data_source();
    let load = args.load_options()?;
    // Timestamps for a dated --first-origin (the first series' bars).
    let probe = source.load(&LoadOptions {
        columns: vec!["close".into()],
        ..load.clone()
    })?;
    let first = probe.series.first().context("the data holds no series")?;
    let options = args.options(&first.timestamps)?;
    let total = probe.series.len().saturating_mul(options.windows);
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} windows {elapsed} (eta {eta})").expect("valid template"),
    );
    if total < 50 {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let run = run_backtest(engine, label, source, &load, &options, &mut |done, _| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    Ok(run)
}

/// Runs the command.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    // Fail before the work, not after it.
    let dir = args.out_dir("backtest-out");
    check_output_dir(&dir)?;
    let settings = args.engine.settings()?;
    let loaded = load_engine(&args.model, &settings)?;
    let run = backtest(args, &loaded.engine, &loaded.label)?;
    for note in &run.data_notes {
        crate::common::stderr_line(format_args!("note: {note}"));
    }
    write!(out, "{}", summary(&run))?;
    let files = write_outputs(&run, &dir, "")?;
    writeln!(
        out,
        "\nwrote {}",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    Ok(())
}
