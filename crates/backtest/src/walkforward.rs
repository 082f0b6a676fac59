//! The walk-forward protocol: rolling origins over a series, every window forecast in batches
//! from the bars before its origin only, scored against exactly the bars it forecasts, next
//! to naive, seasonal-naive and drift baselines, and traded.

use std::time::Instant;

use chronos2::ForwardPass;
use chronos2_data::Series;
use chronos2_forecast::{at_levels, predict, PredictOptions, Task};
use serde::Serialize;

use crate::metrics::{
    coverage, interval_coverage, mae, mape, mase, mean, msis, rmse, seasonal_scale, smape, sql, wape, wql,
};
use crate::significance::{diebold_mariano, DieboldMariano};
use crate::trading::{buy_and_hold, simulate, Signal, SimConfig, SimResult, TradingMetrics};
use crate::BacktestError;

/// Quantile levels scored and reported (the model's trained levels include them).
pub const LEVELS: [f32; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// How to trade the forecasts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StrategyOptions {
    /// Forecast step traded (1 = the next bar); positions are held this many bars.
    pub trade_step: usize,
    /// Threshold strategy: long if the predicted return exceeds it, short below its negative.
    pub threshold: f64,
    /// Lower and upper levels of the confidence strategy's interval.
    pub interval: (f32, f32),
    /// Never short.
    pub long_only: bool,
    /// Sizing and costs.
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
    /// Seasonal period for MASE, SQL, MSIS and the seasonal-naive baseline.
    pub season: usize,
    /// Forecast open, high, low and close jointly (one 4-variate group) instead of close alone.
    pub joint_ohlc: bool,
    /// Rows per model call.
    pub batch_size: usize,
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
    /// Last close the forecast saw (bar `origin - 1`).
    pub last_close: f64,
    /// Actual closes over the horizon.
    pub actual: Vec<f64>,
    /// Median forecast.
    pub median: Vec<f64>,
    /// Forecast at each of [`LEVELS`].
    pub quantiles: Vec<Vec<f64>>,
    /// Baselines: naive, seasonal naive, drift.
    pub naive: Vec<f64>,
    /// Seasonal naive.
    pub seasonal_naive: Vec<f64>,
    /// Drift.
    pub drift: Vec<f64>,
    /// In-sample seasonal scale (MASE denominator).
    pub scale: f64,
    /// Threshold strategy's decision.
    pub threshold_signal: i8,
    /// Confidence strategy's decision.
    pub confidence_signal: i8,
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
    /// Share of windows whose predicted direction at the traded step was right.
    pub direction_hit_rate: f64,
}

/// Probabilistic metrics of the model, averaged over windows.
#[derive(Clone, Debug, Default, Serialize)]
pub struct QuantileMetrics {
    /// Weighted quantile loss over [`LEVELS`] (fev, 2 × pinball).
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
    /// Metrics.
    pub metrics: TradingMetrics,
    /// The simulated path.
    pub path: SimResult,
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
    /// Strategies: threshold, confidence, buy and hold.
    pub strategies: Vec<StrategyResult>,
    /// Bars per year (from the calendar).
    pub periods_per_year: f64,
    /// Closes from `history_start` to the end of the last window (for charts).
    pub history: Vec<f64>,
    /// Bar index of `history[0]`.
    pub history_start: usize,
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

/// Bars per year for a calendar: 365 (or 252 without weekends) times bars per day.
pub fn periods_per_year(series: &Series) -> f64 {
    let per_day = 86_400.0 / series.calendar.step as f64;
    (if series.calendar.weekdays_only { 252.0 } else { 365.0 }) * per_day
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
        for (flag, value) in [
            ("--context", self.context),
            ("--horizon", self.horizon),
            ("--windows", self.windows),
            ("--step", self.step),
            ("--season", self.season),
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
        let in_levels = |l: f32| LEVELS.iter().any(|&x| (x - l).abs() < 1e-6);
        let (lo, hi) = strategy.interval;
        if !(in_levels(lo) && in_levels(hi) && lo < hi) {
            return setup(format!(
                "the confidence interval ({lo}, {hi}) must be two increasing levels among {LEVELS:?}"
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
        direction_hit_rate: mean(windows.iter().map(|w| {
            let predicted = pick(w)[k] - w.last_close;
            let actual = w.actual[k] - w.last_close;
            f64::from(u8::from(predicted.signum() == actual.signum() && predicted != 0.0))
        })),
    }
}

fn quantile_metrics(windows: &[Window], options: &BacktestOptions) -> QuantileMetrics {
    let levels: Vec<f64> = LEVELS.iter().map(|&l| f64::from(l)).collect();
    let (lo, hi) = options.strategy.interval;
    let index = |level: f32| {
        LEVELS
            .iter()
            .position(|&l| (l - level).abs() < 1e-6)
            .expect("interval levels are in LEVELS")
    };
    let (li, hi_i) = (index(lo), index(hi));
    let alpha = 1.0 - f64::from(hi - lo);
    QuantileMetrics {
        wql: mean(windows.iter().map(|w| wql(&w.actual, &w.quantiles, &levels))),
        sql: mean(windows.iter().map(|w| sql(&w.actual, &w.quantiles, &levels, w.scale))),
        coverage: LEVELS
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

/// Runs the walk-forward backtest of `series` (which must have a `close` column, and
/// `open`, `high`, `low` for joint OHLC). `progress` is called with (windows done, total).
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
    let closes = series
        .column("close")
        .ok_or_else(|| BacktestError::Setup(format!("{label}: no `close` column")))?;
    let columns: Vec<&[f64]> = if options.joint_ohlc {
        ["open", "high", "low", "close"]
            .iter()
            .map(|c| series.column(c).ok_or_else(|| missing_column(label, c)))
            .collect::<Result<_, _>>()?
    } else {
        vec![closes]
    };
    options.validate()?;
    let strategy = &options.strategy;
    let origins = origins(closes.len(), options)?;
    // Scoring and trading need every close from the bar before the first origin to the end of
    // the last window; contexts may have gaps (the model handles NaN).
    let scored = origins[0] - 1..(origins[origins.len() - 1] + options.horizon).min(closes.len());
    let at =
        |bar: usize| chronos2_data::format_timestamp(series.timestamps[bar], chronos2_data::TimestampStyle::DateTime);
    if let Some(bar) = scored.clone().find(|&i| !closes[i].is_finite()) {
        return Err(BacktestError::Setup(format!(
            "{label}: the close at bar {bar} ({}) is missing; scoring and trading need every close from the first origin on: fill gaps (--fill forward) or start after it (--first-origin)",
            at(bar)
        )));
    }
    if let Some(bar) = scored.clone().find(|&i| closes[i] <= 0.0) {
        return Err(BacktestError::Setup(format!(
            "{label}: the close at bar {bar} ({}) is {}; returns and trading need positive prices: fix the data or start after it (--first-origin)",
            at(bar),
            closes[bar]
        )));
    }
    // The model reads f32: a value beyond its range would silently become infinite.
    let context_start = origins[0].saturating_sub(options.context);
    for column in &columns {
        if let Some(bar) =
            (context_start..scored.end).find(|&i| column[i].is_infinite() || (column[i] as f32).is_infinite())
        {
            return Err(BacktestError::Setup(format!(
                "{label}: the value at bar {bar} ({}) is {}, outside the model's range (|x| < 3.4e38); fix the data or start after it (--first-origin)",
                at(bar),
                column[bar]
            )));
        }
    }
    let config = model.config();
    let median_index = config
        .median_index()
        .ok_or_else(|| BacktestError::Setup("the model has no 0.5 quantile".into()))?;
    let target_row = columns.len() - 1; // close is the last row

    // Forecast in chunks of tasks (progress between chunks); each task sees only [o - C, o).
    let chunk = (options.batch_size / columns.len()).max(1) * 4;
    let mut windows = Vec::with_capacity(origins.len());
    for (done, batch) in origins.chunks(chunk).enumerate() {
        let tasks: Vec<Task> = batch
            .iter()
            .map(|&o| {
                let from = o.saturating_sub(options.context);
                let rows = columns
                    .iter()
                    .map(|c| c[from..o].iter().map(|&v| v as f32).collect())
                    .collect();
                Task::multivariate(rows)
            })
            .collect();
        let mut predict_options = PredictOptions::new(options.horizon);
        predict_options.batch_size = options.batch_size;
        let started = Instant::now();
        let prediction = predict(model, &tasks, &predict_options)?;
        timing.model_seconds += started.elapsed().as_secs_f64();
        timing.model_calls += prediction.model_calls;
        for (&o, forecast) in batch.iter().zip(&prediction.forecasts) {
            let read = at_levels(forecast, &config.quantiles, &LEVELS, median_index);
            let from = o.saturating_sub(options.context);
            let context = &closes[from..o];
            let actual = closes[o..o + options.horizon].to_vec();
            let median: Vec<f64> = read.median(target_row).iter().map(|&v| f64::from(v)).collect();
            let quantiles: Vec<Vec<f64>> = (0..LEVELS.len())
                .map(|l| read.series(target_row, l).into_iter().map(f64::from).collect())
                .collect();
            let [naive, seasonal_naive, drift] = baselines(context, options.horizon, options.season);
            let last_close = closes[o - 1];
            let k = strategy.trade_step - 1;
            let level = |l: f32| &quantiles[LEVELS.iter().position(|&x| (x - l).abs() < 1e-6).expect("level")];
            let predicted = median[k] / last_close - 1.0;
            let mut threshold_signal: i8 = if predicted > strategy.threshold {
                1
            } else if predicted < -strategy.threshold {
                -1
            } else {
                0
            };
            let (lo, hi) = (
                level(strategy.interval.0)[k] / last_close - 1.0,
                level(strategy.interval.1)[k] / last_close - 1.0,
            );
            let mut confidence_signal: i8 = if lo > 0.0 {
                1
            } else if hi < 0.0 {
                -1
            } else {
                0
            };
            if strategy.long_only {
                threshold_signal = threshold_signal.max(0);
                confidence_signal = confidence_signal.max(0);
            }
            windows.push(Window {
                origin: o,
                origin_time: series.timestamps[o],
                last_close,
                scale: seasonal_scale(context, options.season),
                actual,
                median,
                quantiles,
                naive,
                seasonal_naive,
                drift,
                threshold_signal,
                confidence_signal,
            });
        }
        progress((done * chunk + batch.len()).min(origins.len()), origins.len());
    }

    let model_metrics = point_metrics(&windows, |w| &w.median, strategy.trade_step);
    let baselines = vec![
        (
            "naive".to_string(),
            point_metrics(&windows, |w| &w.naive, strategy.trade_step),
        ),
        (
            "seasonal_naive".to_string(),
            point_metrics(&windows, |w| &w.seasonal_naive, strategy.trade_step),
        ),
        (
            "drift".to_string(),
            point_metrics(&windows, |w| &w.drift, strategy.trade_step),
        ),
    ];
    let k = strategy.trade_step - 1;
    let model_errors: Vec<f64> = windows.iter().map(|w| (w.actual[k] - w.median[k]).abs()).collect();
    let naive_errors: Vec<f64> = windows.iter().map(|w| (w.actual[k] - w.naive[k]).abs()).collect();
    let ppy = periods_per_year(series);
    let span_start = origins[0];
    let span_end = origins[origins.len() - 1] + strategy.trade_step;
    let sim = SimConfig {
        hold: strategy.trade_step,
        ..strategy.sim
    };
    let run = |name: &str, pick: fn(&Window) -> i8| {
        let signals: Vec<Signal> = windows
            .iter()
            .map(|w| Signal {
                origin: w.origin,
                direction: pick(w),
            })
            .collect();
        let path = simulate(closes, &signals, span_start, span_end, &sim);
        StrategyResult {
            name: name.to_string(),
            metrics: TradingMetrics::of(&path, sim.initial_equity, ppy),
            path,
        }
    };
    let hold_path = buy_and_hold(closes, span_start, span_end, &sim);
    let strategies = vec![
        run("threshold", |w| w.threshold_signal),
        run("confidence", |w| w.confidence_signal),
        StrategyResult {
            name: "buy_and_hold".into(),
            metrics: TradingMetrics::of(&hold_path, sim.initial_equity, ppy),
            path: hold_path,
        },
    ];
    let history_start = span_start.saturating_sub(3 * options.horizon);
    let history_end = (origins[origins.len() - 1] + options.horizon).min(closes.len());
    Ok(SeriesBacktest {
        history: closes[history_start..history_end].to_vec(),
        history_start,
        label: label.to_string(),
        skill_vs_naive: 1.0 - ratio_or_nan(model_metrics.mae, baselines[0].1.mae),
        dm_vs_naive: diebold_mariano(&model_errors, &naive_errors, strategy.trade_step),
        quantile: quantile_metrics(&windows, options),
        model: model_metrics,
        baselines,
        strategies,
        periods_per_year: ppy,
        windows,
    })
}

/// The error for a column joint OHLC needs but the data lacks.
fn missing_column(label: &str, column: &str) -> BacktestError {
    BacktestError::Setup(format!(
        "{label}: joint OHLC needs a `{column}` column; pass `--target close` to forecast closes alone"
    ))
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
}
