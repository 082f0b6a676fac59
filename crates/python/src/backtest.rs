//! `chronos2.backtest` and the CLI's bar calendar, over `chronos2_backtest::run_backtest` and
//! `chronos2_data` exactly as `chronos2 backtest` and `chronos2 forecast` use them.

use std::fmt::Write as _;
use std::path::PathBuf;

use chronos2_backtest::report::{check_output_dir, write_outputs};
use chronos2_backtest::trading::{FillAt, SimConfig};
use chronos2_backtest::walkforward::{first_bar_at_or_after, DatedOriginError, LEVELS};
use chronos2_backtest::{run_backtest, BacktestOptions, StrategyOptions, Target};
use chronos2_data::{format_timestamp, DataSource, IdColumn, LoadOptions, TimestampStyle};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{backtest_data_error, backtest_error, data_error};
use crate::pipeline::NativePipeline;

/// A bar index or a date.
#[derive(FromPyObject)]
pub enum FirstOrigin {
    /// A bar index.
    Index(usize),
    /// A date such as `2023-01-31`.
    Date(String),
}

/// The CLI's backtest flags, read from a dict with these keys (same names, same defaults in
/// the Python wrapper).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct BacktestArgs {
    target: String,
    context: usize,
    horizon: usize,
    windows: usize,
    step: usize,
    first_origin: Option<FirstOrigin>,
    season: Option<usize>,
    periods_per_year: Option<f64>,
    trade_step: usize,
    threshold: f64,
    interval: (f32, f32),
    long_only: bool,
    strategies: Vec<String>,
    fraction: f64,
    fee_bps: f64,
    slippage_bps: f64,
    spread_bps: f64,
    fill_at: String,
    strict: bool,
    batch_size: usize,
    id_column: Option<String>,
    fill: String,
    keep_last: bool,
}

impl BacktestArgs {
    /// How to read the data (`--id-column`, `--keep-last`, `--fill`).
    fn load_options(&self) -> PyResult<LoadOptions> {
        LoadOptions::from_choices(self.id_column.as_deref(), &self.fill, self.keep_last).map_err(PyValueError::new_err)
    }

    /// The walk-forward options; a dated `first_origin` is resolved against `bars`
    /// (`run_backtest` checks the rest, with the CLI's messages).
    fn options(&self, bars: &[i64]) -> PyResult<BacktestOptions> {
        let fill_at = FillAt::from_name(&self.fill_at).ok_or_else(|| {
            PyValueError::new_err(format!(
                "unknown fill_at `{}`; expected `close` or `next-open`",
                self.fill_at
            ))
        })?;
        let first_origin = match &self.first_origin {
            None => None,
            Some(FirstOrigin::Index(index)) => Some(*index),
            Some(FirstOrigin::Date(text)) => Some(first_bar_at_or_after(bars, text).map_err(|e| {
                PyValueError::new_err(match e {
                    DatedOriginError::Unreadable => {
                        format!("cannot read first_origin `{text}`; expected a bar index or a date")
                    }
                    DatedOriginError::AfterLastBar => format!("first_origin {text} is after the last bar"),
                })
            })?),
        };
        Ok(BacktestOptions {
            context: self.context,
            horizon: self.horizon,
            windows: self.windows,
            step: self.step,
            first_origin,
            season: self.season,
            periods_per_year: self.periods_per_year,
            target: Target::from_name(&self.target),
            covariates: Vec::new(),
            future_covariates: Vec::new(),
            quantiles: LEVELS.to_vec(),
            batch_size: self.batch_size,
            strict: self.strict,
            strategy: StrategyOptions {
                trade_step: self.trade_step,
                threshold: self.threshold,
                interval: self.interval,
                no_short: self.long_only,
                strategies: self.strategies.clone(),
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
        })
    }
}

/// The report as JSON (report.json's text) and each series' label and bar times (seconds
/// since the epoch, UTC; bar `i` of the report is `times[i]`).
type BacktestResult = (String, Vec<(String, Vec<i64>)>);

/// Runs `chronos2 backtest` on a CSV/Parquet file (`path`) or on CSV text (`csv`, named
/// `name` in messages and reports); with `out`, also writes the CLI's report files there.
#[pyfunction]
#[pyo3(signature = (pipeline, args, path=None, csv=None, name=String::from("dataframe.csv"), out=None))]
pub fn backtest(
    py: Python<'_>,
    pipeline: &NativePipeline,
    args: BacktestArgs,
    path: Option<PathBuf>,
    csv: Option<Bound<'_, PyBytes>>,
    name: String,
    out: Option<PathBuf>,
) -> PyResult<BacktestResult> {
    let source = match (&path, &csv) {
        (Some(path), None) => DataSource::File(path),
        (None, Some(bytes)) => DataSource::Bundled {
            name: &name,
            bytes: bytes.as_bytes(),
        },
        _ => {
            return Err(PyValueError::new_err(
                "give the data as a file path or as CSV text, not both",
            ))
        }
    };
    let load = args.load_options()?;
    // A DataFrame travels as CSV text under this name; errors call it by its own.
    let frame = csv.is_some().then_some(name.as_str());
    let engine = &pipeline.engine;
    let label = pipeline.label.as_str();
    // `csv` borrows Python bytes, which stay alive (and immutable) while the GIL is released.
    py.detach(|| {
        if let Some(dir) = &out {
            check_output_dir(dir).map_err(|e| backtest_error(e, None))?;
        }
        // The bar times (and a dated first origin) from the close column, as the CLI reads them.
        let probe = source
            .load(&LoadOptions {
                columns: vec![Target::from_name(&args.target).traded().to_string()],
                ..load.clone()
            })
            .map_err(|e| backtest_data_error(e, frame))?;
        let options = args.options(&probe.series[0].timestamps)?;
        let run = run_backtest(engine, label, &[source], &load, &options, None, &mut |_, _| {})
            .map_err(|e| backtest_error(e, frame))?;
        if let Some(dir) = &out {
            write_outputs(&run, dir, "").map_err(|e| backtest_error(e, None))?;
        }
        let stem = source.stem();
        let times = probe
            .series
            .into_iter()
            .map(|s| (s.label(&stem), s.timestamps))
            .collect();
        Ok((serde_json::to_string(&run).expect("the report serialises"), times))
    })
}

/// The `horizon` bar times after `times` (seconds, UTC, ascending) on the calendar the CLI
/// infers for a series: its most common step, skipping weekends when the bars never fall on
/// one (stocks, FX). `label` names the series in errors.
#[pyfunction]
pub fn future_timestamps(py: Python<'_>, times: Vec<i64>, horizon: usize, label: String) -> PyResult<Vec<i64>> {
    py.detach(|| {
        let mut csv = String::from("timestamp,value\n");
        for &t in &times {
            let _ = writeln!(csv, "{},0", format_timestamp(t, TimestampStyle::DateTime));
        }
        let options = LoadOptions {
            id_column: IdColumn::None,
            ..LoadOptions::columns(&["value"])
        };
        let data = DataSource::Bundled {
            name: &label,
            bytes: csv.as_bytes(),
        }
        .load(&options)
        .map_err(data_error)?;
        let series = &data.series[0];
        let last = *series.timestamps.last().expect("a loaded series has bars");
        Ok(series.calendar.future(last, horizon))
    })
}
