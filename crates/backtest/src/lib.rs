//! Walk-forward evaluation of Chronos-2 forecasts and the trading they would have done, over
//! one series or a universe of symbols.
//!
//! * [`walkforward`]: rolling origins, forecasts batched across symbols and windows that see
//!   only the bars before their origin, metrics against exactly the bars forecast, baselines,
//!   Diebold-Mariano, trading.
//! * [`strategy`]: the [`Strategy`](strategy::Strategy) trait and the seed system's
//!   strategies (threshold, confidence, simple, all_signals, entry_takeprofit, highlow,
//!   maxdiff).
//! * [`trading`]: the simulator (market, limit and take-profit fills, fees on position
//!   changes, spread, `--fill-at`) and its metrics; [`portfolio`](mod@portfolio): the universe's portfolio.
//! * [`metrics`], [`significance`]: one small pure function per formula, each documented and
//!   tested against hand-computed values.
//! * [`report`]: terminal summary, JSON with every figure, CSVs, the self-contained HTML
//!   tear sheet; [`table`]: the aligned plain-text (and HTML) tables of every report.
//!
//! ```
//! use chronos2_backtest::trading::{simulate, Bars, FillAt, Order, SimConfig, TradingMetrics};
//! let closes = [100.0, 110.0, 121.0];
//! let config = SimConfig {
//!     fraction: 1.0, fee_bps: 0.0, slippage_bps: 0.0, spread_bps: 0.0, hold: 1,
//!     initial_equity: 100.0, fill_at: FillAt::Close,
//! };
//! let path = simulate(&Bars::closes(&closes), &[Order::market(1, 1)], 1, 3, &config);
//! let metrics = TradingMetrics::of(&path, 100.0, 365.0);
//! assert!((metrics.total_return - 0.1).abs() < 1e-12);
//! ```

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod metrics;
pub mod portfolio;
pub mod report;
pub mod significance;
pub mod strategy;
pub mod table;
pub mod tearsheet;
pub mod trading;
pub mod walkforward;
pub mod written;

use std::time::Instant;

use chronos2::ForwardPass;
use chronos2_data::{DataSource, LoadOptions, Zone};
use chronos2_forecast::ForecastError;
use serde::Serialize;

use crate::portfolio::{portfolio, weights_for, Portfolio};
use crate::walkforward::{forecast_windows, prepare, PrepareError};
pub use walkforward::{backtest_series, BacktestOptions, SeriesBacktest, StrategyOptions, Target, Timing};

/// Errors of a backtest.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// The setup does not fit the data.
    #[error("{0}")]
    Setup(String),
    /// The data cannot be read.
    #[error(transparent)]
    Data(#[from] chronos2_data::DataError),
    /// Forecasting failed.
    #[error(transparent)]
    Forecast(#[from] ForecastError),
    /// Writing the outputs failed.
    #[error("{path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A series left out of a run, and why.
#[derive(Clone, Debug, Serialize)]
pub struct SkippedSeries {
    /// The series' label.
    pub label: String,
    /// Why, with the numbers.
    pub reason: String,
}

/// A whole run over one or more data files.
#[derive(Clone, Debug, Serialize)]
pub struct BacktestRun {
    /// The data files (or `bundled <name>`), comma-separated.
    pub data: String,
    /// The model's label.
    pub model: String,
    /// The setup.
    pub options: BacktestOptions,
    /// One result per series backtested, in file and id order.
    pub series: Vec<SeriesBacktest>,
    /// Series too short for the windows (skipped without `--strict`).
    pub skipped: Vec<SkippedSeries>,
    /// Capital split across the series.
    pub portfolio: Portfolio,
    /// Time in the model and overall.
    pub timing: Timing,
    /// What loading the data did.
    pub data_notes: Vec<String>,
    /// The zone every output prints times in (`--tz`; `None`: UTC). Times in the JSON stay
    /// seconds since the epoch; `time_zone` names the zone the other outputs used.
    #[serde(rename = "time_zone", serialize_with = "zone_name")]
    pub zone: Option<Zone>,
}

fn zone_name<S: serde::Serializer>(zone: &Option<Zone>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&zone.map_or_else(|| "UTC".to_string(), |z| z.name()))
}

/// The sources for reports: each one, or the first and the count when there are many.
fn describe_sources(sources: &[DataSource<'_>]) -> String {
    match sources {
        [] => String::new(),
        [one] => one.to_string(),
        [first, .., last] if sources.len() > 3 => format!("{} files ({first} .. {last})", sources.len()),
        _ => sources.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
    }
}

/// Loads every source and backtests every series in them as one universe: forecasts batched
/// across series and windows, per-series results and the portfolio (`weights`: `None` =
/// equal weights). A series too short for the windows is skipped with a note naming it, or
/// fails the run with `options.strict`. `progress` gets (windows done, total) after each model
/// call.
///
/// # Errors
/// [`BacktestError`] for unreadable data, an impossible setup or a model failure.
pub fn run_backtest(
    model: &dyn ForwardPass,
    model_label: &str,
    sources: &[DataSource<'_>],
    load: &LoadOptions,
    options: &BacktestOptions,
    weights: Option<&[(String, f64)]>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<BacktestRun, BacktestError> {
    let started = Instant::now();
    options.validate()?;
    let mut notes = Vec::new();
    let mut options = options.clone();
    let limit = model.config().context_length;
    if options.context > limit {
        notes.push(format!(
            "--context {} is more than the model's context length {limit}; using {limit} (reported as such)",
            options.context
        ));
        options.context = limit;
    }
    let options = &options;
    let mut load = load.clone();
    load.columns = options.target.columns();
    for c in &options.covariates {
        if !load.columns.iter().any(|l| l.eq_ignore_ascii_case(c)) {
            load.columns.push(c.clone());
        }
    }
    let mut datasets = Vec::with_capacity(sources.len());
    for source in sources {
        let data = source.load(&load)?;
        notes.extend(data.report.notes.iter().cloned());
        datasets.push((source.stem(), data));
    }
    let mut labels: Vec<String> = Vec::new();
    let mut prepared = Vec::new();
    let mut skipped = Vec::new();
    for (stem, data) in &datasets {
        for s in &data.series {
            let mut label = s.label(stem);
            if labels.contains(&label) {
                label = format!("{stem}/{label}");
            }
            labels.push(label.clone());
            match prepare(s, &label, options) {
                Ok(p) => {
                    let shortest = p.shortest_context(options);
                    if shortest < options.context {
                        notes.push(format!(
                            "{label}: the first windows have only {shortest} bars of context, fewer than --context {} (the series starts too late; --strict refuses this)",
                            options.context
                        ));
                    }
                    prepared.push(p);
                }
                Err(PrepareError::TooShort(reason)) if !options.strict => {
                    notes.push(format!("skipped {reason} (--strict makes this an error)"));
                    skipped.push(SkippedSeries { label, reason });
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
    if prepared.is_empty() {
        let reasons: Vec<&str> = skipped.iter().map(|s| s.reason.as_str()).collect();
        return Err(BacktestError::Setup(format!(
            "no series can hold the windows: {}",
            reasons.join("; ")
        )));
    }
    let mut timing = Timing::default();
    forecast_windows(model, &mut prepared, options, progress, &mut timing)?;
    let series: Vec<SeriesBacktest> = prepared.into_iter().map(|p| p.finish(options)).collect();
    let labels: Vec<&str> = series.iter().map(|s| s.label.as_str()).collect();
    let weights = weights_for(&labels, weights)?;
    let portfolio = portfolio(&series, weights, options.strategy.sim.initial_equity);
    timing.total_seconds = started.elapsed().as_secs_f64();
    Ok(BacktestRun {
        data: describe_sources(sources),
        model: model_label.to_string(),
        options: options.clone(),
        series,
        skipped,
        portfolio,
        timing,
        data_notes: notes,
        zone: load.read.tz,
    })
}
