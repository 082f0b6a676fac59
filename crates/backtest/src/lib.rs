//! Walk-forward evaluation of Chronos-2 forecasts and the trading they would have done.
//!
//! * [`walkforward`]: rolling origins, batched forecasts that see only the bars before their
//!   origin, metrics against exactly the bars forecast, baselines, Diebold-Mariano, trading.
//! * [`metrics`], [`trading`], [`significance`]: one small pure function per formula, each
//!   documented and tested against hand-computed values.
//! * [`report`]: terminal summary, JSON with every figure, CSVs, self-contained HTML.
//! * [`table`]: the aligned plain-text (and HTML) tables of every report.
//!
//! ```
//! use chronos2_backtest::trading::{simulate, SimConfig, Signal, TradingMetrics};
//! let closes = [100.0, 110.0, 121.0];
//! let config = SimConfig { fraction: 1.0, fee_bps: 0.0, slippage_bps: 0.0, hold: 1, initial_equity: 100.0 };
//! let path = simulate(&closes, &[Signal { origin: 1, direction: 1 }], 1, 3, &config);
//! let metrics = TradingMetrics::of(&path, 100.0, 365.0);
//! assert!((metrics.total_return - 0.1).abs() < 1e-12);
//! ```

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod metrics;
pub mod report;
pub mod significance;
pub mod table;
pub mod trading;
pub mod walkforward;

use std::time::Instant;

use chronos2::ForwardPass;
use chronos2_data::{DataSource, Dataset, LoadOptions};
use chronos2_forecast::ForecastError;
use serde::Serialize;

pub use walkforward::{backtest_series, BacktestOptions, SeriesBacktest, StrategyOptions, Timing};

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

/// A whole run over one data file.
#[derive(Clone, Debug, Serialize)]
pub struct BacktestRun {
    /// The data file (or `bundled <name>`).
    pub data: String,
    /// The model's label.
    pub model: String,
    /// The setup.
    pub options: BacktestOptions,
    /// One result per series in the file.
    pub series: Vec<SeriesBacktest>,
    /// Time in the model and overall.
    pub timing: Timing,
    /// What loading the data did.
    pub data_notes: Vec<String>,
}

/// Loads `source` and backtests every series in it. `progress` gets (windows done, total).
///
/// # Errors
/// [`BacktestError`] for unreadable data, an impossible setup or a model failure.
pub fn run_backtest(
    model: &dyn ForwardPass,
    model_label: &str,
    source: DataSource<'_>,
    load: &LoadOptions,
    options: &BacktestOptions,
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
    load.columns = if options.joint_ohlc {
        vec!["open".into(), "high".into(), "low".into(), "close".into()]
    } else {
        vec!["close".into()]
    };
    let data: Dataset = source.load(&load)?;
    let stem = source.stem();
    let mut timing = Timing::default();
    let total = data.series.len().saturating_mul(options.windows);
    let mut series = Vec::with_capacity(data.series.len());
    for (i, s) in data.series.iter().enumerate() {
        let offset = i.saturating_mul(options.windows);
        let mut report = |done: usize, _| progress(offset + done, total);
        series.push(backtest_series(
            model,
            s,
            &s.label(&stem),
            options,
            &mut report,
            &mut timing,
        )?);
    }
    timing.total_seconds = started.elapsed().as_secs_f64();
    Ok(BacktestRun {
        data: source.to_string(),
        model: model_label.to_string(),
        options: options.clone(),
        series,
        timing,
        data_notes: data.report.notes.into_iter().chain(notes).collect(),
    })
}
