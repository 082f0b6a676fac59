//! `chronos2 backtest`: walk-forward evaluation of a universe of symbols, baselines, the
//! seed system's strategies under market rules, a portfolio, and the tear sheet.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use chronos2_backtest::portfolio::read_weights;
use chronos2_backtest::report::{check_output_dir, summary, write_outputs};
use chronos2_backtest::strategy::NAMES;
use chronos2_backtest::trading::{FillAt, SimConfig};
use chronos2_backtest::walkforward::{first_bar_at_or_after, DatedOriginError};
use chronos2_backtest::{run_backtest, BacktestOptions, BacktestRun, StrategyOptions, Target};
use chronos2_data::{DataSource, LoadOptions};
use chronos2_forecast::parse_quantile_levels;
use indicatif::{ProgressBar, ProgressStyle};

use crate::common::{load_engine, EngineArgs, ModelArgs};
use crate::data_args::DataArgs;

/// The data the README's main command uses when `--data` is not given, built into the
/// binary so that it works wherever it is installed.
const BUNDLED_DATA: DataSource<'static> = DataSource::Bundled {
    name: "BTCUSD.csv",
    bytes: include_bytes!("../../../../data/BTCUSD.csv"),
};

/// Walk-forward backtest of one or more symbols (several `--data` files, a glob such as
/// `--data 'bars/*.csv'`, or a long file with an id column): forecasts from rolling origins
/// batched across symbols and windows, scored against the bars they forecast next to naive /
/// seasonal-naive / drift baselines with a Diebold-Mariano test; the seed system's strategies
/// traded with fees, slippage and spread; per-symbol results, an equal-weight (or
/// `--weights`) portfolio, and a report (terminal, JSON, CSV, HTML tear sheet) in --out.
#[derive(clap::Args, Clone)]
#[group(id = "backtest_args")]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Context bars per window.
    #[arg(long, default_value_t = 512)]
    pub context: usize,
    /// Forecast horizon in bars.
    #[arg(long, default_value_t = 7)]
    pub horizon: usize,
    /// Number of windows (origins) per symbol.
    #[arg(long, default_value_t = 100)]
    pub windows: usize,
    /// Bars between origins.
    #[arg(long, default_value_t = 1)]
    pub step: usize,
    /// First origin: a bar index or a date (`2023-01-31`); default: the last windows of the data.
    #[arg(long)]
    pub first_origin: Option<String>,
    /// Seasonal period for MASE, scaled losses and the seasonal-naive baseline; default: by
    /// each symbol's calendar: the bars of a trading day for intraday bars (24 for hourly bars
    /// of a 24-hour market, 78 for 5-minute bars of a 6.5-hour session), else 1.
    #[arg(long)]
    pub season: Option<usize>,
    /// Bars per year for annualised figures (Sharpe, Sortino, CAGR); default: measured per
    /// symbol: bars of a trading day as the data has them x 252 trading days (weekday data) or
    /// 365 days (e.g. 19656 for 5-minute equity bars of 6.5-hour sessions).
    #[arg(long)]
    pub periods_per_year: Option<f64>,
    /// Covariate columns given to the model with each context, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub covariates: Vec<String>,
    /// The covariates whose values over the horizon are known in advance (read from the
    /// file's later bars, as a schedule would give them), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub future_covariates: Vec<String>,
    /// Quantile levels scored and reported (columns named by the level, `0.1`, as in
    /// `forecast` and Python's `predict_df`).
    #[arg(long, default_value = "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9")]
    pub quantiles: String,
    /// Strategies, comma-separated: threshold, confidence, simple, all_signals,
    /// entry_takeprofit, highlow, maxdiff (the last four need `--target ohlc`); default: every
    /// strategy the target can run.
    #[arg(long, value_delimiter = ',')]
    pub strategies: Vec<String>,
    /// Forecast step the strategies trade (positions are held this many bars).
    #[arg(long, default_value_t = 1)]
    pub trade_step: usize,
    /// Threshold strategy: go long above +threshold predicted return, short below -threshold.
    #[arg(long, default_value_t = 0.005)]
    pub threshold: f64,
    /// Confidence strategy's interval, `low,high` quantile levels (among --quantiles).
    #[arg(long, default_value = "0.1,0.9")]
    pub interval: String,
    /// Never go short (the seed system's rule for crypto): short signals stay flat.
    #[arg(long = "no-short", visible_alias = "long-only")]
    pub no_short: bool,
    /// Position size as a fraction of equity, at most 10 (10x leverage); equity that reaches
    /// zero ends trading (bankruptcy, -100%).
    #[arg(long, default_value_t = 1.0)]
    pub fraction: f64,
    /// Fee per fill, basis points (0 to 1000); charged only when the position changes.
    #[arg(long, default_value_t = 10.0)]
    pub fee_bps: f64,
    /// Slippage per fill, basis points (0 to 1000).
    #[arg(long, default_value_t = 5.0)]
    pub slippage_bps: f64,
    /// Bid-ask spread, basis points (0 to 1000); each fill pays half of it.
    #[arg(long, default_value_t = 0.0)]
    pub spread_bps: f64,
    /// Where market orders fill: `close` (the close the decision is made on) or `next-open`
    /// (the next bar's open; needs `--target ohlc`).
    #[arg(long, default_value = "close")]
    pub fill_at: String,
    /// Portfolio weights: a CSV file of `symbol,weight` lines (normalised to sum 1); default:
    /// equal weights.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Fail when a symbol is too short for the windows (default: skip it with a note).
    #[arg(long)]
    pub strict: bool,
    /// Rows per model call.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
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
    pub fn data_source(&self) -> Result<DataSource<'_>> {
        self.data.single_source(Some(BUNDLED_DATA))
    }

    /// Reading options for the data file.
    pub fn load_options(&self) -> Result<LoadOptions> {
        self.data.load_options()
    }

    /// What is forecast: `ohlc` (or `open,high,low,close`) or one column.
    pub fn target(&self) -> Result<Target> {
        let text = self.data.target.trim();
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        if parts.len() == 1 {
            return Ok(Target::from_name(text));
        }
        let ohlc = ["open", "high", "low", "close"];
        if parts.len() == 4 && parts.iter().zip(ohlc).all(|(p, o)| p.eq_ignore_ascii_case(o)) {
            return Ok(Target::Ohlc);
        }
        bail!("--target `{text}`: a backtest forecasts one column (e.g. `close`, `Adj Close`) or `ohlc` (open, high, low and close jointly)")
    }

    /// The walk-forward options; `bars` gives the first symbol's bar times for a dated
    /// `--first-origin`.
    pub fn options(&self, bars: &dyn Fn() -> Result<Vec<i64>>) -> Result<BacktestOptions> {
        let interval: Vec<f32> = self
            .interval
            .split(',')
            .map(|v| v.trim().parse::<f32>())
            .collect::<Result<_, _>>()
            .ok()
            .filter(|v: &Vec<f32>| v.len() == 2 && v[0] < v[1])
            .with_context(|| {
                format!(
                    "cannot read --interval `{}`; expected two increasing levels like 0.1,0.9",
                    self.interval
                )
            })?;
        let quantiles: Vec<f32> = parse_quantile_levels(&self.quantiles)
            .with_context(|| format!("--quantiles `{}`", self.quantiles))?
            .iter()
            .map(|q| q.level)
            .collect();
        let fill_at = FillAt::from_name(&self.fill_at)
            .with_context(|| format!("unknown --fill-at `{}`; expected `close` or `next-open`", self.fill_at))?;
        let strategies: Vec<String> = self.strategies.iter().map(|s| s.trim().to_string()).collect();
        if let Some(unknown) = strategies.iter().find(|s| !NAMES.contains(&s.as_str())) {
            bail!(
                "unknown strategy `{unknown}` in --strategies; expected some of {}",
                NAMES.join(", ")
            );
        }
        let first_origin = match &self.first_origin {
            None => None,
            Some(text) => Some(match text.parse::<usize>() {
                Ok(index) => index,
                Err(_) => first_bar_at_or_after(&bars()?, text).map_err(|e| match e {
                    DatedOriginError::Unreadable => {
                        anyhow!("cannot read --first-origin `{text}`; expected a bar index or a date")
                    }
                    DatedOriginError::AfterLastBar => anyhow!("--first-origin {text} is after the last bar"),
                })?,
            }),
        };
        let trim_all = |v: &[String]| v.iter().map(|c| c.trim().to_string()).collect::<Vec<_>>();
        let options = BacktestOptions {
            context: self.context,
            horizon: self.horizon,
            windows: self.windows,
            step: self.step,
            first_origin,
            season: self.season,
            periods_per_year: self.periods_per_year,
            target: self.target()?,
            covariates: trim_all(&self.covariates),
            future_covariates: trim_all(&self.future_covariates),
            quantiles,
            batch_size: self.batch_size,
            strict: self.strict,
            strategy: StrategyOptions {
                trade_step: self.trade_step,
                threshold: self.threshold,
                interval: (interval[0], interval[1]),
                no_short: self.no_short,
                strategies,
                sim: SimConfig {
                    fraction: self.fraction,
                    fee_bps: self.fee_bps,
                    slippage_bps: self.slippage_bps,
                    spread_bps: self.spread_bps,
                    hold: self.trade_step,
                    initial_equity: 10_000.0,
                    fill_at,
                },
            },
        };
        options.validate()?;
        Ok(options)
    }
}

/// Whether a path's file name is a pattern (`*`, `?`).
fn is_pattern(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().contains(['*', '?']))
}

/// Whether `name` matches `pattern` (`*` any run of characters, `?` one character).
fn wildcard_match(pattern: &[char], name: &[char]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some('*'), _) => {
            wildcard_match(&pattern[1..], name) || (!name.is_empty() && wildcard_match(pattern, &name[1..]))
        }
        (Some('?'), Some(_)) => wildcard_match(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => wildcard_match(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// `--data` with patterns in file names (`bars/*.csv`, quoted so that the shell leaves them)
/// replaced by the matching files, sorted.
///
/// # Errors
/// A pattern whose folder cannot be read or that matches no file.
pub fn expand_patterns(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        if !is_pattern(path) {
            out.push(path.clone());
            continue;
        }
        let folder = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let pattern: Vec<char> = path.file_name().unwrap_or_default().to_string_lossy().chars().collect();
        let mut matches: Vec<PathBuf> = std::fs::read_dir(folder)
            .with_context(|| format!("--data {}: cannot read the folder {}", path.display(), folder.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .filter(|p| {
                let name: Vec<char> = p.file_name().unwrap_or_default().to_string_lossy().chars().collect();
                wildcard_match(&pattern, &name)
            })
            .collect();
        if matches.is_empty() {
            bail!(
                "--data {} matches no file; check the folder and the pattern",
                path.display()
            );
        }
        matches.sort();
        out.append(&mut matches);
    }
    Ok(out)
}

/// Runs a backtest with an already built engine (shared with `compare`).
pub fn backtest(args: &Args, engine: &chronos2_engine::Engine, label: &str) -> Result<BacktestRun> {
    let mut data = args.data.clone();
    data.data = expand_patterns(&data.data)?;
    let sources = data.sources(Some(BUNDLED_DATA))?;
    let load = args.load_options()?;
    let target = args.target()?;
    // Bar times of the first symbol, for a dated --first-origin.
    let first_bars = || -> Result<Vec<i64>> {
        let probe = sources[0].load(&LoadOptions {
            columns: vec![target.traded().to_string()],
            ..load.clone()
        })?;
        Ok(probe
            .series
            .first()
            .context("the data holds no series")?
            .timestamps
            .clone())
    };
    let options = args.options(&first_bars)?;
    let weights = args.weights.as_deref().map(read_weights).transpose()?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} windows, {per_sec}, {elapsed} (eta {eta})")
            .expect("valid template"),
    );
    let run = run_backtest(
        engine,
        label,
        &sources,
        &load,
        &options,
        weights.as_deref(),
        &mut |done, total| {
            // Updated after every model call; small runs finish before a bar is worth drawing.
            if total >= 50 {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            }
        },
    )?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_file_names() {
        let m = |p: &str, n: &str| wildcard_match(&p.chars().collect::<Vec<_>>(), &n.chars().collect::<Vec<_>>());
        assert!(m("*.csv", "BTC.csv") && m("B?C*", "BTC.csv") && m("*", ""));
        assert!(!m("*.csv", "BTC.tsv") && !m("?", ""));
    }

    #[test]
    fn patterns_expand_to_sorted_files_and_an_empty_match_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.csv", "a.csv", "c.txt"] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let found = expand_patterns(&[dir.path().join("*.csv"), dir.path().join("c.txt")]).unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.csv", "b.csv", "c.txt"]);
        let err = expand_patterns(&[dir.path().join("*.parquet")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("matches no file"), "{err}");
    }
}
