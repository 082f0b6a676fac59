//! The walk-forward protocol: rolling origins over a series, every window forecast in batches
//! (across series and windows) from the bars before its origin only, scored against exactly
//! the bars it forecasts, next to naive, seasonal-naive and drift baselines, and traded by
//! each [`Strategy`].
//!
//! A run is three steps per series: [`prepare`] checks the data and places the origins,
//! [`forecast_windows`] forecasts every window of every prepared series in model calls of
//! `batch_size` rows, and [`Prepared::finish`] scores and trades them.

use std::time::Instant;

use chronos2::ForwardPass;
use chronos2_data::{Calendar, Series};
use chronos2_forecast::{at_levels, predict, Covariate, CovariateValues, PredictOptions, Task};
use serde::Serialize;

use crate::metrics::{
    coverage, interval_coverage, mae, mape, mase, mean, msis, rmse, seasonal_scale, smape, sql, wape, wql,
};
use crate::significance::{diebold_mariano, DieboldMariano};
use crate::strategy::{self, Outlook, Strategy};
use crate::trading::{buy_and_hold, simulate, Bars, FillAt, SimConfig, SimResult, TradingMetrics};
use crate::BacktestError;

/// Default quantile levels scored and reported (`--quantiles`; the model's trained levels
/// include them).
pub const LEVELS: [f32; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// What is forecast and traded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Open, high, low and close forecast jointly (one 4-variate group); close is scored and
    /// traded, high and low feed the strategies that need them.
    Ohlc,
    /// One column forecast alone, scored and traded (e.g. `close`, `Adj Close`, `Price`).
    Column(String),
}

impl Target {
    /// `ohlc` (any case) or a column name.
    pub fn from_name(name: &str) -> Self {
        if name.eq_ignore_ascii_case("ohlc") {
            Self::Ohlc
        } else {
            Self::Column(name.to_string())
        }
    }

    /// The columns forecast, in task row order (the traded one last).
    pub fn columns(&self) -> Vec<String> {
        match self {
            Self::Ohlc => ["open", "high", "low", "close"].map(String::from).to_vec(),
            Self::Column(name) => vec![name.clone()],
        }
    }

    /// The column scored and traded.
    pub fn traded(&self) -> &str {
        match self {
            Self::Ohlc => "close",
            Self::Column(name) => name,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ohlc => write!(f, "ohlc"),
            Self::Column(name) => write!(f, "{name}"),
        }
    }
}

/// How to trade the forecasts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StrategyOptions {
    /// Forecast step traded (1 = the next bar); positions are held this many bars.
    pub trade_step: usize,
    /// Threshold strategy: long if the predicted return exceeds it, short below its negative.
    pub threshold: f64,
    /// Lower and upper levels of the confidence strategy's interval.
    pub interval: (f32, f32),
    /// Never short (`--no-short`, alias `--long-only`): short orders become flat.
    pub no_short: bool,
    /// Strategies to run, by name ([`strategy::NAMES`]); empty = every strategy the target
    /// can run.
    pub strategies: Vec<String>,
    /// Sizing, costs and fills.
    pub sim: SimConfig,
}

/// The walk-forward setup.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BacktestOptions {
    /// Context bars per window.
    pub context: usize,
    /// Forecast horizon.
    pub horizon: usize,
    /// Number of windows.
    pub windows: usize,
    /// Bars between consecutive origins.
    pub step: usize,
    /// First origin (bar index); default: the last `windows` origins that still have a full
    /// horizon of actual bars.
    pub first_origin: Option<usize>,
    /// Seasonal period for MASE, SQL, MSIS and the seasonal-naive baseline; `None` = by the
    /// series' calendar ([`default_season`]).
    pub season: Option<usize>,
    /// Bars per year for annualising; `None` = measured from each series ([`annualisation`]).
    pub periods_per_year: Option<f64>,
    /// What is forecast and traded.
    pub target: Target,
    /// Covariate columns given to the model with each window's context.
    pub covariates: Vec<String>,
    /// The covariates among them whose values over the horizon are known in advance (read
    /// from the file's bars after the origin, as a schedule would give them).
    pub future_covariates: Vec<String>,
    /// Quantile levels scored and reported.
    pub quantiles: Vec<f32>,
    /// Rows per model call.
    pub batch_size: usize,
    /// Fail the run when a series is too short for the windows (default: skip it with a note).
    pub strict: bool,
    /// Trading.
    pub strategy: StrategyOptions,
}

/// One window: what was forecast and what happened.
#[derive(Clone, Debug, Serialize)]
pub struct Window {
    /// Origin bar (first forecast bar).
    pub origin: usize,
    /// Timestamp of the origin bar.
    pub origin_time: i64,
    /// Timestamps of the first and last context bars.
    pub context_times: (i64, i64),
    /// Last value the forecast saw (bar `origin - 1`).
    pub last_close: f64,
    /// Actual values over the horizon.
    pub actual: Vec<f64>,
    /// Median forecast.
    pub median: Vec<f64>,
    /// Forecast at each of the run's quantile levels.
    pub quantiles: Vec<Vec<f64>>,
    /// Median forecast highs (joint OHLC only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high: Option<Vec<f64>>,
    /// Median forecast lows (joint OHLC only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low: Option<Vec<f64>>,
    /// Baselines: naive, seasonal naive, drift.
    pub naive: Vec<f64>,
    /// Seasonal naive.
    pub seasonal_naive: Vec<f64>,
    /// Drift.
    pub drift: Vec<f64>,
    /// In-sample seasonal scale (MASE denominator).
    pub scale: f64,
}

/// Point-forecast metrics, averaged over windows.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PointMetrics {
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// MAPE, %.
    pub mape: f64,
    /// sMAPE, %.
    pub smape: f64,
    /// Mean absolute scaled error.
    pub mase: f64,
    /// Weighted absolute percentage error.
    pub wape: f64,
    /// MAE of the cumulative return from the last close.
    pub return_mae: f64,
    /// RMSE of the cumulative return from the last close.
    pub return_rmse: f64,
    /// Share of windows with a predicted move at the traded step whose direction was right
    /// (NaN when no window predicts a move, as the naive forecast never does).
    pub direction_hit_rate: f64,
}

/// Probabilistic metrics of the model, averaged over windows.
#[derive(Clone, Debug, Default, Serialize)]
pub struct QuantileMetrics {
    /// Weighted quantile loss over the run's levels (fev, 2 × pinball).
    pub wql: f64,
    /// Scaled quantile loss.
    pub sql: f64,
    /// Share of actuals at or below each level's forecast, per level.
    pub coverage: Vec<(f32, f64)>,
    /// Share inside the central interval.
    pub interval_coverage: f64,
    /// The central interval's levels.
    pub interval: (f32, f32),
    /// Mean scaled interval score of the central interval.
    pub msis: f64,
}

/// The trading results of one strategy.
#[derive(Clone, Debug, Serialize)]
pub struct StrategyResult {
    /// Name.
    pub name: String,
    /// Its rule in one line.
    pub rule: String,
    /// Metrics.
    pub metrics: TradingMetrics,
    /// Why it made no trade, when it made none.
    pub no_trades: Option<String>,
    /// The simulated path.
    pub path: SimResult,
}

/// A strategy that could not run on a series, and why.
#[derive(Clone, Debug, Serialize)]
pub struct SkippedStrategy {
    /// Name.
    pub name: String,
    /// Why, with the fix.
    pub reason: String,
}

/// Everything a walk-forward run produced for one series.
#[derive(Clone, Debug, Serialize)]
pub struct SeriesBacktest {
    /// Series label.
    pub label: String,
    /// Windows in origin order.
    pub windows: Vec<Window>,
    /// The model's point metrics.
    pub model: PointMetrics,
    /// Baseline metrics: naive, seasonal naive, drift.
    pub baselines: Vec<(String, PointMetrics)>,
    /// The model's quantile metrics.
    pub quantile: QuantileMetrics,
    /// `1 - MAE_model / MAE_naive` (positive: better than naive).
    pub skill_vs_naive: f64,
    /// Diebold-Mariano test of the absolute errors at the traded step, model vs naive.
    pub dm_vs_naive: DieboldMariano,
    /// The requested strategies that ran, then buy and hold.
    pub strategies: Vec<StrategyResult>,
    /// Requested strategies that cannot run on this target.
    pub skipped: Vec<SkippedStrategy>,
    /// Bars per year, for annualising ([`annualisation`]).
    pub periods_per_year: f64,
    /// How `periods_per_year` was found, in words.
    pub annualised_by: String,
    /// The seasonal period used.
    pub season: usize,
    /// Traded values from `history_start` to the end of the last window (for charts).
    pub history: Vec<f64>,
    /// Their timestamps.
    pub times: Vec<i64>,
    /// Bar index of `history[0]`.
    pub history_start: usize,
    /// Bars of context of the first window: less than `--context` where the series starts
    /// too late for it (the later windows have more, up to `--context`).
    pub shortest_context: usize,
}

impl SeriesBacktest {
    /// The timestamp of bar `bar` (within the history span).
    pub fn time_of(&self, bar: usize) -> Option<i64> {
        bar.checked_sub(self.history_start)
            .and_then(|k| self.times.get(k).copied())
    }
}

/// Timing of a run.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Timing {
    /// Inside the model (forward passes and the pipeline around them).
    pub model_seconds: f64,
    /// Everything.
    pub total_seconds: f64,
    /// Forward passes.
    pub model_calls: usize,
}

/// Bars per year for annualising returns, and its basis in words: `given`
/// (`--periods-per-year`), else for intraday bars the bars of a trading day as the data has
/// them (the median over its days: 78 for a 6.5-hour session of 5-minute bars, 288 for a
/// 24-hour market) times the days a year the calendar trades (252 on weekdays only, else 365);
/// for daily and longer bars, a year's days over the bar's length.
pub fn annualisation(series: &Series, given: Option<f64>) -> (f64, String) {
    if let Some(given) = given {
        return (given, format!("--periods-per-year {given}"));
    }
    let (days, which) = if series.calendar.weekdays_only {
        (252.0, "trading days")
    } else {
        (365.0, "days")
    };
    match session_bars(series) {
        Some(per_day) => (
            per_day as f64 * days,
            format!("{per_day} bars a day (measured) x {days} {which} a year"),
        ),
        None => {
            let per_day = 86_400.0 / series.calendar.step as f64;
            (
                per_day * days,
                format!("{days} {which} a year / {} s bars", series.calendar.step),
            )
        }
    }
}

/// For intraday bars, the bars of a day with bars: the median over the data's UTC days (the
/// partial first and last days do not move it); `None` for daily and longer bars.
pub fn session_bars(series: &Series) -> Option<usize> {
    const DAY: i64 = 86_400;
    if series.calendar.step <= 0 || series.calendar.step >= DAY {
        return None;
    }
    let mut counts: Vec<usize> = Vec::new();
    let mut current = None;
    for &t in &series.timestamps {
        let day = t.div_euclid(DAY);
        if current == Some(day) {
            *counts.last_mut()? += 1;
        } else {
            counts.push(1);
            current = Some(day);
        }
    }
    counts.sort_unstable();
    counts.get(counts.len() / 2).copied()
}

/// The default seasonal period: for intraday bars the bars of a trading day (`session`, from
/// [`session_bars`]; else bars per 24 hours where they divide a day), so that the seasonal
/// naive forecast looks one session back; else 1 (daily and longer bars: prices show no
/// reliable weekly cycle, and MASE against the naive forecast is the usual scale).
pub fn default_season(calendar: &Calendar, session: Option<usize>) -> usize {
    const DAY: i64 = 86_400;
    if calendar.step > 0 && calendar.step < DAY {
        match session {
            Some(bars) => bars.max(1),
            None if DAY % calendar.step == 0 => (DAY / calendar.step) as usize,
            None => 1,
        }
    } else {
        1
    }
}

impl BacktestOptions {
    /// Checks every setting that does not depend on the data or the model: horizon, windows,
    /// step, season, batch size and context at least 1, the traded step within the horizon,
    /// a finite non-negative threshold, the interval among [`LEVELS`], and the trading
    /// settings ([`SimConfig::validate`]). Each message names the flag.
    ///
    /// # Errors
    /// [`BacktestError::Setup`] naming the flag, the value and what is allowed.
    pub fn validate(&self) -> Result<(), BacktestError> {
        let setup = |message: String| Err(BacktestError::Setup(message));
        if let Some(p) = self.periods_per_year.filter(|p| !(p.is_finite() && *p > 0.0)) {
            return setup(format!(
                "--periods-per-year {p} must be a positive number of bars a year"
            ));
        }
        for (flag, value) in [
            ("--context", self.context),
            ("--horizon", self.horizon),
            ("--windows", self.windows),
            ("--step", self.step),
            ("--season", self.season.unwrap_or(1)),
            ("--batch-size", self.batch_size),
        ] {
            if value == 0 {
                return setup(format!("{flag} must be at least 1, found 0"));
            }
        }
        let strategy = &self.strategy;
        if strategy.trade_step == 0 || strategy.trade_step > self.horizon {
            return setup(format!(
                "--trade-step must be between 1 and the horizon ({}), found {}",
                self.horizon, strategy.trade_step
            ));
        }
        if !(strategy.threshold.is_finite() && strategy.threshold >= 0.0) {
            return setup(format!(
                "--threshold must be a non-negative number (a predicted return, e.g. 0.005), found {}",
                strategy.threshold
            ));
        }
        if self.quantiles.is_empty() || self.quantiles.iter().any(|&l| !(l > 0.0 && l < 1.0)) {
            return setup(format!(
                "--quantiles must be levels strictly between 0 and 1, found {:?}",
                self.quantiles
            ));
        }
        let in_levels = |l: f32| self.quantiles.iter().any(|&x| (x - l).abs() < 1e-6);
        let (lo, hi) = strategy.interval;
        if !(in_levels(lo) && in_levels(hi) && lo < hi) {
            return setup(format!(
                "the confidence interval ({lo}, {hi}) must be two increasing levels among --quantiles {:?}; add them to --quantiles or change --interval",
                self.quantiles
            ));
        }
        if let Some(name) = strategy
            .strategies
            .iter()
            .find(|n| !strategy::NAMES.contains(&n.as_str()))
        {
            return setup(format!(
                "unknown strategy `{name}` in --strategies; expected some of {}",
                strategy::NAMES.join(", ")
            ));
        }
        if let Some(name) = self.future_covariates.iter().find(|f| !self.covariates.contains(f)) {
            return setup(format!(
                "--future-covariates `{name}` is not among --covariates {:?}; list it there too",
                self.covariates
            ));
        }
        if strategy.sim.fill_at == FillAt::NextOpen && self.target != Target::Ohlc {
            return setup(format!(
                "--fill-at next-open needs the bars' opens; pass `--target ohlc` (found --target {})",
                self.target
            ));
        }
        strategy.sim.validate().map_err(BacktestError::Setup)
    }
}

/// Why a dated first origin cannot be placed on the bars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatedOriginError {
    /// The text is not a date or timestamp the data reader understands.
    Unreadable,
    /// Every bar is before that date.
    AfterLastBar,
}

/// The first origin for a date: the index of the first bar (timestamps `bars`, ascending) at
/// or after `date`, in any form the data reader accepts.
///
/// # Errors
/// [`DatedOriginError`]; the caller names its own flag or argument in the message.
pub fn first_bar_at_or_after(bars: &[i64], date: &str) -> Result<usize, DatedOriginError> {
    let (t, _) = chronos2_data::parse_timestamp(date).ok_or(DatedOriginError::Unreadable)?;
    bars.iter().position(|&b| b >= t).ok_or(DatedOriginError::AfterLastBar)
}

/// Origins of the windows for a series of `bars` bars. The arithmetic is checked, so huge
/// `--windows`, `--step`, `--horizon` or `--first-origin` values are refused, never wrapped.
///
/// # Errors
/// [`BacktestError::Setup`] when the data cannot hold the windows.
pub fn origins(bars: usize, options: &BacktestOptions) -> Result<Vec<usize>, BacktestError> {
    let (h, w, step) = (options.horizon, options.windows, options.step);
    if h == 0 || w == 0 || step == 0 {
        return Err(BacktestError::Setup(
            "--horizon, --windows and --step must be at least 1".into(),
        ));
    }
    let too_many = || {
        BacktestError::Setup(format!(
            "{bars} bars cannot hold {w} windows {step} bars apart with a horizon of {h}; use fewer windows, a smaller step or a shorter horizon"
        ))
    };
    // Bars from the first origin to the end of the last window.
    let needed = (w - 1)
        .checked_mul(step)
        .and_then(|span| span.checked_add(h))
        .filter(|&needed| needed <= bars)
        .ok_or_else(too_many)?;
    let span = needed - h;
    let first = match options.first_origin {
        Some(first) => first,
        None => bars - needed,
    };
    if first < 16.min(options.context) || first.checked_add(needed).is_none_or(|end| end > bars) {
        return Err(BacktestError::Setup(format!(
            "origins {first}..={} with horizon {h} do not fit {bars} bars (each window needs context before it and {h} actual bars after)",
            first.saturating_add(span)
        )));
    }
    Ok((0..w).map(|i| first + i * step).collect())
}

fn ratio_or_nan(a: f64, b: f64) -> f64 {
    if b == 0.0 || !b.is_finite() {
        f64::NAN
    } else {
        a / b
    }
}

/// The three baselines from a context: naive (last observed value), seasonal naive (the value
/// `m` bars before, repeated), drift (the line through the first and last observed values).
/// Missing values (NaN) are skipped by naive and drift.
pub fn baselines(context: &[f64], horizon: usize, season: usize) -> [Vec<f64>; 3] {
    let n = context.len();
    let observed = || context.iter().enumerate().filter(|(_, v)| v.is_finite());
    let (first_at, first) = observed().next().map_or((0, f64::NAN), |(i, &v)| (i, v));
    let (last_at, last) = observed().next_back().map_or((0, f64::NAN), |(i, &v)| (i, v));
    let naive = vec![last; horizon];
    let m = season.max(1).min(n);
    let seasonal = (0..horizon).map(|k| context[n - m + k % m]).collect();
    let slope = if last_at > first_at {
        (last - first) / (last_at - first_at) as f64
    } else {
        0.0
    };
    let drift = (1..=horizon)
        .map(|k| last + slope * (n - last_at - 1 + k) as f64)
        .collect();
    [naive, seasonal, drift]
}

fn point_metrics(windows: &[Window], pick: impl Fn(&Window) -> &[f64], trade_step: usize) -> PointMetrics {
    let cumulative = |w: &Window, v: &[f64]| -> Vec<f64> { v.iter().map(|x| x / w.last_close - 1.0).collect() };
    let k = trade_step - 1;
    PointMetrics {
        mae: mean(windows.iter().map(|w| mae(&w.actual, pick(w)))),
        rmse: mean(windows.iter().map(|w| rmse(&w.actual, pick(w)))),
        mape: mean(windows.iter().map(|w| mape(&w.actual, pick(w)))),
        smape: mean(windows.iter().map(|w| smape(&w.actual, pick(w)))),
        mase: mean(windows.iter().map(|w| mase(&w.actual, pick(w), w.scale))),
        wape: mean(windows.iter().map(|w| wape(&w.actual, pick(w)))),
        return_mae: mean(
            windows
                .iter()
                .map(|w| mae(&cumulative(w, &w.actual), &cumulative(w, pick(w)))),
        ),
        return_rmse: mean(
            windows
                .iter()
                .map(|w| rmse(&cumulative(w, &w.actual), &cumulative(w, pick(w)))),
        ),
        direction_hit_rate: mean(windows.iter().filter_map(|w| {
            let predicted = pick(w)[k] - w.last_close;
            let actual = w.actual[k] - w.last_close;
            (predicted != 0.0).then(|| f64::from(u8::from(predicted.signum() == actual.signum())))
        })),
    }
}

fn quantile_metrics(windows: &[Window], options: &BacktestOptions) -> QuantileMetrics {
    let levels: Vec<f64> = options.quantiles.iter().map(|&l| f64::from(l)).collect();
    let (lo, hi) = options.strategy.interval;
    let index = |level: f32| level_index(&options.quantiles, level).expect("validated: interval levels are quantiles");
    let (li, hi_i) = (index(lo), index(hi));
    let alpha = 1.0 - f64::from(hi - lo);
    QuantileMetrics {
        wql: mean(windows.iter().map(|w| wql(&w.actual, &w.quantiles, &levels))),
        sql: mean(windows.iter().map(|w| sql(&w.actual, &w.quantiles, &levels, w.scale))),
        coverage: options
            .quantiles
            .iter()
            .enumerate()
            .map(|(i, &l)| (l, mean(windows.iter().map(|w| coverage(&w.actual, &w.quantiles[i])))))
            .collect(),
        interval_coverage: mean(
            windows
                .iter()
                .map(|w| interval_coverage(&w.actual, &w.quantiles[li], &w.quantiles[hi_i])),
        ),
        interval: (lo, hi),
        msis: mean(
            windows
                .iter()
                .map(|w| msis(&w.actual, &w.quantiles[li], &w.quantiles[hi_i], alpha, w.scale)),
        ),
    }
}

/// The index of `level` among `levels`.
pub fn level_index(levels: &[f32], level: f32) -> Option<usize> {
    levels.iter().position(|&l| (l - level).abs() < 1e-6)
}

/// A series checked and placed for a walk-forward run, collecting its windows.
pub struct Prepared<'a> {
    series: &'a Series,
    label: String,
    origins: Vec<usize>,
    /// Rows forecast (the traded one last).
    targets: Vec<&'a [f64]>,
    /// Covariates: name, values, known in the future.
    covariates: Vec<(String, &'a [f64], bool)>,
    season: usize,
    windows: Vec<Window>,
}

/// Why a series cannot be backtested: too short for the windows (skipped unless `--strict`)
/// or anything else (always an error).
#[derive(Debug)]
pub enum PrepareError {
    /// Too few bars for the requested windows; the message names the series and the bars.
    TooShort(String),
    /// Anything else.
    Other(BacktestError),
}

impl From<BacktestError> for PrepareError {
    fn from(error: BacktestError) -> Self {
        Self::Other(error)
    }
}

impl From<PrepareError> for BacktestError {
    fn from(error: PrepareError) -> Self {
        match error {
            PrepareError::TooShort(message) => BacktestError::Setup(message),
            PrepareError::Other(error) => error,
        }
    }
}

/// Checks `series` against the setup and places its origins.
///
/// # Errors
/// [`PrepareError::TooShort`] when the series cannot hold the windows; otherwise a missing
/// column, a missing or non-positive traded value, or a value beyond the model's range.
pub fn prepare<'a>(series: &'a Series, label: &str, options: &BacktestOptions) -> Result<Prepared<'a>, PrepareError> {
    let column = |name: &str| {
        series.column(name).ok_or_else(|| {
            BacktestError::Setup(match options.target {
                Target::Ohlc => format!(
                    "{label}: --target ohlc needs a `{name}` column; pass `--target close` (or another column) to forecast one column alone"
                ),
                Target::Column(_) => format!("{label}: no `{name}` column"),
            })
        })
    };
    let targets: Vec<&[f64]> = options
        .target
        .columns()
        .iter()
        .map(|c| column(c))
        .collect::<Result<_, _>>()?;
    let covariates = options
        .covariates
        .iter()
        .map(|c| Ok((c.clone(), column(c)?, options.future_covariates.contains(c))))
        .collect::<Result<Vec<_>, BacktestError>>()?;
    let closes = *targets.last().expect("a target has a column");
    let traded = options.target.traded();
    let origins = origins(closes.len(), options).map_err(|e| match e {
        BacktestError::Setup(message) => PrepareError::TooShort(format!("{label}: {message}")),
        other => PrepareError::Other(other),
    })?;
    // Scoring and trading need every traded value from the bar before the first origin to
    // the end of the last window; contexts may have gaps (the model handles NaN).
    let scored = origins[0] - 1..(origins[origins.len() - 1] + options.horizon).min(closes.len());
    let at =
        |bar: usize| chronos2_data::format_timestamp(series.timestamps[bar], chronos2_data::TimestampStyle::DateTime);
    let setup = |message: String| Err(PrepareError::Other(BacktestError::Setup(message)));
    // The traded column, and with joint OHLC the open, high and low that fills use.
    for (name, values) in options.target.columns().iter().zip(&targets) {
        let name = if options.target == Target::Ohlc {
            name.as_str()
        } else {
            traded
        };
        if let Some(bar) = scored.clone().find(|&i| !values[i].is_finite()) {
            return setup(format!(
                "{label}: the {name} at bar {bar} ({}) is missing; scoring and trading need every {name} from the first origin on: carry the last value forward (`--fill forward`), drop the row (`--drop-missing`) or start after it (`--first-origin <bar>`)",
                at(bar)
            ));
        }
        if let Some(bar) = scored.clone().find(|&i| values[i] <= 0.0) {
            return setup(format!(
                "{label}: the {name} at bar {bar} ({}) is {}; returns and trading need positive prices: fix the data or start after it (--first-origin)",
                at(bar),
                values[bar]
            ));
        }
    }
    if options.strict && origins[0] < options.context {
        return setup(format!(
            "{label}: the first window has only {} bars of context, fewer than --context {} (the series starts too late); pass --context {}, fewer --windows, or leave out --strict to run the first windows on the shorter context",
            origins[0], options.context, origins[0]
        ));
    }
    // The model reads f32: a value beyond its range would silently become infinite.
    let context_start = origins[0].saturating_sub(options.context);
    let horizon_end = (origins[origins.len() - 1] + options.horizon).min(closes.len());
    for values in targets.iter().chain(covariates.iter().map(|c| &c.1)) {
        if let Some(bar) =
            (context_start..horizon_end).find(|&i| values[i].is_infinite() || (values[i] as f32).is_infinite())
        {
            return setup(format!(
                "{label}: the value at bar {bar} ({}) is {}, outside the model's range (|x| < 3.4e38); fix the data or start after it (--first-origin)",
                at(bar),
                values[bar]
            ));
        }
    }
    Ok(Prepared {
        series,
        label: label.to_string(),
        windows: Vec::with_capacity(origins.len()),
        origins,
        targets,
        covariates,
        season: options
            .season
            .unwrap_or_else(|| default_season(&series.calendar, session_bars(series))),
    })
}

impl Prepared<'_> {
    /// Bars of context of the first window (the fewest of any window).
    pub fn shortest_context(&self, options: &BacktestOptions) -> usize {
        self.origins[0].min(options.context)
    }

    /// Model rows per window (targets and covariates).
    fn rows(&self) -> usize {
        self.targets.len() + self.covariates.len()
    }

    /// The task of the window at `origin`: the context `[origin - C, origin)` of every target
    /// and covariate, and the known-future covariates over `[origin, origin + H)`.
    fn task(&self, origin: usize, options: &BacktestOptions) -> Task {
        let from = origin.saturating_sub(options.context);
        let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let mut task = Task::multivariate(self.targets.iter().map(|c| f32s(&c[from..origin])).collect());
        for (name, values, future) in &self.covariates {
            task = task.with_covariate(Covariate {
                name: name.clone(),
                past: CovariateValues::Numeric(f32s(&values[from..origin])),
                future: future.then(|| CovariateValues::Numeric(f32s(&values[origin..origin + options.horizon]))),
            });
        }
        task
    }

    /// Records the forecast of the window at `origin`.
    fn accept(&mut self, origin: usize, read: &chronos2_forecast::LevelForecast, options: &BacktestOptions) {
        let target_row = self.targets.len() - 1;
        let closes = self.targets[target_row];
        let from = origin.saturating_sub(options.context);
        let context = &closes[from..origin];
        let to_f64 = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
        let [naive, seasonal_naive, drift] = baselines(context, options.horizon, self.season);
        let joint = options.target == Target::Ohlc;
        self.windows.push(Window {
            origin,
            origin_time: self.series.timestamps[origin],
            context_times: (self.series.timestamps[from], self.series.timestamps[origin - 1]),
            last_close: closes[origin - 1],
            scale: seasonal_scale(context, self.season),
            actual: closes[origin..origin + options.horizon].to_vec(),
            median: to_f64(read.median(target_row)),
            quantiles: (0..options.quantiles.len())
                .map(|l| to_f64(&read.series(target_row, l)))
                .collect(),
            high: joint.then(|| to_f64(read.median(1))),
            low: joint.then(|| to_f64(read.median(2))),
            naive,
            seasonal_naive,
            drift,
        });
    }

    /// Scores and trades the forecast windows.
    pub fn finish(self, options: &BacktestOptions) -> SeriesBacktest {
        let strategy_options = &options.strategy;
        let windows = self.windows;
        let k = strategy_options.trade_step - 1;
        let model_metrics = point_metrics(&windows, |w| &w.median, strategy_options.trade_step);
        let baselines = vec![
            (
                "naive".to_string(),
                point_metrics(&windows, |w| &w.naive, strategy_options.trade_step),
            ),
            (
                "seasonal_naive".to_string(),
                point_metrics(&windows, |w| &w.seasonal_naive, strategy_options.trade_step),
            ),
            (
                "drift".to_string(),
                point_metrics(&windows, |w| &w.drift, strategy_options.trade_step),
            ),
        ];
        let model_errors: Vec<f64> = windows.iter().map(|w| (w.actual[k] - w.median[k]).abs()).collect();
        let naive_errors: Vec<f64> = windows.iter().map(|w| (w.actual[k] - w.naive[k]).abs()).collect();
        let series = self.series;
        let closes = self.targets[self.targets.len() - 1];
        let bars = if options.target == Target::Ohlc {
            Bars {
                open: Some(self.targets[0]),
                high: Some(self.targets[1]),
                low: Some(self.targets[2]),
                close: closes,
            }
        } else {
            Bars::closes(closes)
        };
        let (periods_per_year, annualised_by) = annualisation(series, options.periods_per_year);
        let (strategies, skipped) = trade(&windows, &bars, options, periods_per_year);
        let span_start = windows[0].origin;
        let history_start = span_start.saturating_sub(3 * options.horizon);
        let history_end = (windows[windows.len() - 1].origin + options.horizon).min(closes.len());
        SeriesBacktest {
            history: closes[history_start..history_end].to_vec(),
            times: series.timestamps[history_start..history_end].to_vec(),
            history_start,
            label: self.label,
            skill_vs_naive: 1.0 - ratio_or_nan(model_metrics.mae, baselines[0].1.mae),
            dm_vs_naive: diebold_mariano(&model_errors, &naive_errors, strategy_options.trade_step),
            quantile: quantile_metrics(&windows, options),
            model: model_metrics,
            baselines,
            strategies,
            skipped,
            periods_per_year,
            annualised_by,
            season: self.season,
            shortest_context: self.origins[0].min(options.context),
            windows,
        }
    }
}

/// The outlook of a window at the traded step: the median close, the highest high and
/// lowest low over the held steps, the confidence interval.
fn outlook(w: &Window, options: &BacktestOptions) -> Outlook {
    let k = options.strategy.trade_step - 1;
    let (lo, hi) = options.strategy.interval;
    let at = |level: f32| w.quantiles[level_index(&options.quantiles, level).expect("validated")][k];
    Outlook {
        origin: w.origin,
        last_close: w.last_close,
        close: w.median[k],
        high: w
            .high
            .as_ref()
            .map(|h| h[..=k].iter().copied().fold(f64::NEG_INFINITY, f64::max)),
        low: w
            .low
            .as_ref()
            .map(|l| l[..=k].iter().copied().fold(f64::INFINITY, f64::min)),
        interval: (at(lo), at(hi)),
    }
}

/// Why `strategy` made no trade.
fn no_trade_reason(
    strategy: &dyn Strategy,
    orders: &[crate::trading::Order],
    raw_shorts: usize,
    result: &SimResult,
) -> String {
    let wanted = orders.iter().filter(|o| o.direction != 0).count();
    if raw_shorts > 0 && wanted == 0 {
        format!("all {raw_shorts} of its signals were short and --no-short is on")
    } else if wanted > 0 && result.unfilled == wanted {
        format!("its entry price was never reached ({wanted} limit orders unfilled)")
    } else {
        format!("no window met its rule ({})", strategy.rule())
    }
}

/// Runs every requested strategy (and buy and hold) over the windows.
fn trade(
    windows: &[Window],
    bars: &Bars<'_>,
    options: &BacktestOptions,
    ppy: f64,
) -> (Vec<StrategyResult>, Vec<SkippedStrategy>) {
    let s = &options.strategy;
    let span_start = windows[0].origin;
    let span_end = windows[windows.len() - 1].origin + s.trade_step;
    let sim = SimConfig {
        hold: s.trade_step,
        ..s.sim
    };
    let outlooks: Vec<Outlook> = windows.iter().map(|w| outlook(w, options)).collect();
    let explicit = !s.strategies.is_empty();
    let names: Vec<&str> = if explicit {
        s.strategies.iter().map(String::as_str).collect()
    } else {
        strategy::NAMES.to_vec()
    };
    let (mut results, mut skipped) = (Vec::new(), Vec::new());
    for name in names {
        let strategy = strategy::by_name(name, s.threshold).expect("validated strategy names");
        if strategy.needs_high_low() && bars.high.is_none() {
            if explicit {
                skipped.push(SkippedStrategy {
                    name: name.to_string(),
                    reason: format!(
                        "needs high and low forecasts, which only a joint OHLC forecast gives; pass `--target ohlc` (found --target {})",
                        options.target
                    ),
                });
            }
            continue;
        }
        let raw = strategy::orders(strategy.as_ref(), &outlooks, bars, &sim);
        let raw_shorts = raw.iter().filter(|o| o.direction < 0).count();
        let orders: Vec<_> = if s.no_short {
            raw.into_iter().map(strategy::no_short).collect()
        } else {
            raw
        };
        let path = simulate(bars, &orders, span_start, span_end, &sim);
        let no_trades = path.trades.is_empty().then(|| {
            no_trade_reason(
                strategy.as_ref(),
                &orders,
                if s.no_short { raw_shorts } else { 0 },
                &path,
            )
        });
        results.push(StrategyResult {
            name: name.to_string(),
            rule: strategy.rule(),
            metrics: TradingMetrics::of(&path, sim.initial_equity, ppy),
            no_trades,
            path,
        });
    }
    let hold_path = buy_and_hold(bars, span_start, span_end, &sim);
    results.push(StrategyResult {
        name: "buy_and_hold".into(),
        rule: "long from the first origin to the last traded bar".into(),
        metrics: TradingMetrics::of(&hold_path, sim.initial_equity, ppy),
        no_trades: None,
        path: hold_path,
    });
    (results, skipped)
}

/// Forecasts every window of every prepared series, in model calls of at most `batch_size`
/// rows (windows of different series share calls). `progress` gets (windows done, total)
/// after each call.
///
/// # Errors
/// [`BacktestError::Forecast`] when the model fails.
pub fn forecast_windows(
    model: &dyn ForwardPass,
    prepared: &mut [Prepared<'_>],
    options: &BacktestOptions,
    progress: &mut dyn FnMut(usize, usize),
    timing: &mut Timing,
) -> Result<(), BacktestError> {
    let config = model.config();
    let median_index = config
        .median_index()
        .ok_or_else(|| BacktestError::Setup("the model has no 0.5 quantile".into()))?;
    let jobs: Vec<(usize, usize)> = prepared
        .iter()
        .enumerate()
        .flat_map(|(s, p)| p.origins.iter().map(move |&o| (s, o)))
        .collect();
    let rows = prepared.iter().map(Prepared::rows).max().unwrap_or(1);
    let per_call = (options.batch_size / rows).max(1);
    let mut predict_options = PredictOptions::new(options.horizon);
    predict_options.batch_size = options.batch_size;
    let mut done = 0;
    for chunk in jobs.chunks(per_call) {
        let tasks: Vec<Task> = chunk.iter().map(|&(s, o)| prepared[s].task(o, options)).collect();
        let started = Instant::now();
        let prediction = predict(model, &tasks, &predict_options)?;
        timing.model_seconds += started.elapsed().as_secs_f64();
        timing.model_calls += prediction.model_calls;
        for (&(s, o), forecast) in chunk.iter().zip(&prediction.forecasts) {
            let read = at_levels(forecast, &config.quantiles, &options.quantiles, median_index);
            prepared[s].accept(o, &read, options);
        }
        done += chunk.len();
        progress(done, jobs.len());
    }
    Ok(())
}

/// Runs the walk-forward backtest of one series (which must have the target's columns).
/// `progress` is called with (windows done, total).
///
/// # Errors
/// [`BacktestError`] for an impossible setup or a model failure.
pub fn backtest_series(
    model: &dyn ForwardPass,
    series: &Series,
    label: &str,
    options: &BacktestOptions,
    progress: &mut dyn FnMut(usize, usize),
    timing: &mut Timing,
) -> Result<SeriesBacktest, BacktestError> {
    options.validate()?;
    let mut prepared = [prepare(series, label, options)?];
    forecast_windows(model, &mut prepared, options, progress, timing)?;
    let [prepared] = prepared;
    Ok(prepared.finish(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baselines_by_hand() {
        // context 1, 2, 4, 3 (n = 4), m = 2, h = 3.
        let [naive, seasonal, drift] = baselines(&[1.0, 2.0, 4.0, 3.0], 3, 2);
        assert_eq!(naive, [3.0; 3]);
        assert_eq!(seasonal, [4.0, 3.0, 4.0]);
        // slope (3 - 1) / 3 per bar: 3 + 2/3 k.
        for (k, v) in drift.iter().enumerate() {
            assert!((v - (3.0 + 2.0 / 3.0 * (k + 1) as f64)).abs() < 1e-12);
        }
        // Missing values are skipped: last observed 4 at index 2, first 2 at index 1.
        let [naive, _, drift] = baselines(&[f64::NAN, 2.0, 4.0, f64::NAN], 2, 1);
        assert_eq!(naive, [4.0, 4.0]);
        // slope 2 per bar; the next bars are 2 and 3 bars after index 2.
        assert_eq!(drift, [8.0, 10.0]);
    }

    /// The season follows the calendar: bars per day for intraday bars, else 1.
    /// A series of `days` days (weekdays only with `weekdays_only`) of bars `step` seconds apart
    /// from `open` for `hours` hours a day (UTC).
    fn session_series(step: i64, days: i64, open: i64, hours: i64, weekdays_only: bool) -> Series {
        let mut timestamps = Vec::new();
        // 2024-01-01 was a Monday.
        let monday = 1_704_067_200;
        for day in 0..days {
            if weekdays_only && day % 7 >= 5 {
                continue;
            }
            let start = monday + day * 86_400 + open;
            timestamps.extend((0..hours * 3600 / step).map(|i| start + i * step));
        }
        let n = timestamps.len();
        Series {
            id: None,
            timestamps,
            columns: vec![("close".into(), vec![1.0; n])],
            calendar: Calendar { step, weekdays_only },
            filled: 0,
        }
    }

    #[test]
    fn annualisation_and_season_follow_the_data_calendar() {
        // 5-minute equity bars, 09:30-16:00 (6.5 h), weekdays: 78 bars a session.
        let equity = {
            let mut s = session_series(300, 120, 34_200, 7, true);
            // 6.5 hours: drop the bars from 16:00 on.
            s.timestamps.retain(|t| t.rem_euclid(86_400) < 57_600);
            let n = s.timestamps.len();
            s.columns = vec![("close".into(), vec![1.0; n])];
            s
        };
        assert_eq!(session_bars(&equity), Some(78));
        let (ppy, basis) = annualisation(&equity, None);
        assert_eq!(ppy, 78.0 * 252.0);
        assert_eq!(basis, "78 bars a day (measured) x 252 trading days a year");
        assert_eq!(default_season(&equity.calendar, session_bars(&equity)), 78);
        // Hourly FX, 24 hours on weekdays: 24 x 252.
        let fx = session_series(3600, 60, 0, 24, true);
        assert_eq!(annualisation(&fx, None).0, 24.0 * 252.0);
        assert_eq!(default_season(&fx.calendar, session_bars(&fx)), 24);
        // Daily crypto, every day: 365; weekly bars: 365 / 7.
        let crypto = session_series(86_400, 60, 0, 24, false);
        assert_eq!(session_bars(&crypto), None);
        assert_eq!(annualisation(&crypto, None).0, 365.0);
        assert_eq!(default_season(&crypto.calendar, None), 1);
        let weekly = session_series(7 * 86_400, 140, 0, 24, false);
        assert!((annualisation(&weekly, None).0 - 365.0 / 7.0).abs() < 1e-9);
        // The flag wins, and says so.
        assert_eq!(
            annualisation(&equity, Some(19_656.0)),
            (19_656.0, "--periods-per-year 19656".to_string())
        );
    }

    #[test]
    fn default_season_by_calendar() {
        let calendar = |step: i64, weekdays_only: bool| Calendar { step, weekdays_only };
        assert_eq!(default_season(&calendar(3_600, false), None), 24);
        assert_eq!(default_season(&calendar(900, true), None), 96);
        assert_eq!(default_season(&calendar(86_400, false), None), 1);
        assert_eq!(default_season(&calendar(86_400, true), None), 1);
        assert_eq!(default_season(&calendar(7 * 86_400, false), None), 1);
        assert_eq!(
            default_season(&calendar(7_000, false), None),
            1,
            "does not divide a day"
        );
    }

    #[test]
    fn targets_by_name() {
        assert_eq!(Target::from_name("OHLC"), Target::Ohlc);
        assert_eq!(Target::from_name("Adj Close").columns(), ["Adj Close"]);
        assert_eq!(Target::Ohlc.traded(), "close");
    }
}
