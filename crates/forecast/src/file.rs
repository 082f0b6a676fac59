//! Forecasting the series of a data file: what `chronos2 forecast` runs.
//!
//! Each series of the file becomes one task: its target columns forecast jointly as one
//! multivariate group (the default; OHLC as a 4-variate task, as the original system did), or
//! each column as its own univariate task. Future timestamps follow the series' calendar.

use std::path::Path;

use chronos2::ForwardPass;
use chronos2_data::{load_csv, DataSource, Dataset, LoadOptions};

use crate::error::ForecastError;
use crate::levels::{at_levels, outside_trained_range};
use crate::pipeline::{predict, PredictOptions};
use crate::task::{Covariate, CovariateValues, Task};

/// A requested quantile level and the label the user wrote for it (kept for output keys).
#[derive(Clone, Debug, PartialEq)]
pub struct QuantileLevel {
    /// As written, e.g. `0.10`.
    pub label: String,
    /// The level.
    pub level: f32,
}

/// Parses `0.1,0.5,0.9`.
///
/// # Errors
/// [`ForecastError::Input`] naming the item that is not a level in (0, 1).
pub fn parse_quantile_levels(text: &str) -> Result<Vec<QuantileLevel>, ForecastError> {
    let levels = text
        .split(',')
        .map(|item| {
            let label = item.trim().to_string();
            match label.parse::<f32>() {
                Ok(level) if level > 0.0 && level < 1.0 => Ok(QuantileLevel { label, level }),
                _ => Err(ForecastError::Input(format!(
                    "cannot read quantile level `{label}`: expected numbers strictly between 0 and 1 separated by commas, e.g. 0.1,0.5,0.9"
                ))),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if levels.is_empty() {
        return Err(ForecastError::Input("no quantile levels given".into()));
    }
    if let Some((i, twin)) = levels
        .iter()
        .enumerate()
        .find_map(|(i, a)| levels[..i].iter().find(|b| b.level == a.level).map(|b| (i, b)))
    {
        return Err(ForecastError::Input(format!(
            "quantile level `{}` is given twice (as `{}` and `{}`); each level makes one column, list it once",
            twin.level, twin.label, levels[i].label
        )));
    }
    Ok(levels)
}

/// Expands `ohlc` to `open,high,low,close`; splits comma lists.
pub fn parse_targets(text: &str) -> Vec<String> {
    text.split(',')
        .flat_map(|t| match t.trim().to_ascii_lowercase().as_str() {
            "ohlc" => vec!["open".to_string(), "high".into(), "low".into(), "close".into()],
            _ => vec![t.trim().to_string()],
        })
        .filter(|t| !t.is_empty())
        .collect()
}

/// What to forecast from a file.
#[derive(Clone, Debug)]
pub struct FileRequest {
    /// Target columns (case-insensitive).
    pub targets: Vec<String>,
    /// Forecast the targets of a series jointly (one group) rather than independently.
    pub joint: bool,
    /// Horizon in bars.
    pub horizon: usize,
    /// Context cut (default: the model's context length).
    pub context_length: Option<usize>,
    /// Requested levels.
    pub quantiles: Vec<QuantileLevel>,
    /// Rows per model call.
    pub batch_size: usize,
    /// One group for each whole batch.
    pub cross_learning: bool,
    /// Numeric covariate columns of the data file (past values); those also listed in
    /// `future_covariates` are known in the future (the reference's `predict_df` semantics).
    pub covariates: Vec<String>,
    /// A file with the future values of known-future covariates: same id and timestamp
    /// columns, exactly `horizon` rows per series at the forecast timestamps.
    pub future_data: Option<std::path::PathBuf>,
    /// Which covariates `future_data` holds.
    pub future_covariates: Vec<String>,
    /// How to read the file.
    pub load: LoadOptions,
}

/// Reads the known-future covariate values: per series of `data`, one column per name in
/// `names`, checked against the forecast timestamps.
fn read_future(
    request: &FileRequest,
    path: &Path,
    data: &Dataset,
    names: &[String],
) -> Result<Vec<Vec<Vec<f32>>>, ForecastError> {
    let mut load = request.load.clone();
    load.columns = names.to_vec();
    // The future file has its own header.
    load.read.no_header = false;
    load.read.column_names.clear();
    let future = load_csv(path, &load)?;
    data.series
        .iter()
        .map(|series| {
            let label = series.id.clone().unwrap_or_else(|| "the series".into());
            let found = future
                .series
                .iter()
                .find(|f| f.id == series.id)
                .ok_or_else(|| ForecastError::Input(format!("{}: no rows for {label}", path.display())))?;
            let last = *series.timestamps.last().expect("series have at least MIN_ROWS bars");
            let expected = series.calendar.future(last, request.horizon);
            if found.timestamps != expected {
                return Err(ForecastError::Input(format!(
                    "{}: {label} needs exactly {} rows at the forecast timestamps {} .. {}, found {} rows from {}",
                    path.display(),
                    request.horizon,
                    data.format_time(expected[0]),
                    data.format_time(expected[expected.len() - 1]),
                    found.timestamps.len(),
                    found
                        .timestamps
                        .first()
                        .map_or("nothing".into(), |&t| data.format_time(t))
                )));
            }
            Ok(found
                .columns
                .iter()
                .map(|(_, v)| v.iter().map(|&x| x as f32).collect())
                .collect())
        })
        .collect()
}

/// The forecast of one target of one series.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesForecast {
    /// Series id (the file name for single-series files).
    pub item_id: String,
    /// Target column, as requested.
    pub target_name: String,
    /// Future timestamps, in the file's style and UTC offset.
    pub timestamps: Vec<String>,
    /// The first future timestamp as the hosted endpoint writes `start` (`2024-01-07T00:00:00`).
    pub start: String,
    /// Digits after the decimal mark the target's values have in the file (print precision).
    pub decimals: u32,
    /// The median (the reference's "mean").
    pub mean: Vec<f32>,
    /// One series per requested level, in request order.
    pub quantiles: Vec<Vec<f32>>,
}

/// Everything `chronos2 forecast` reports.
#[derive(Clone, Debug)]
pub struct FileForecast {
    /// The loaded data (for its report).
    pub data: Dataset,
    /// Forecasts, series by series, target by target.
    pub forecasts: Vec<SeriesForecast>,
    /// Requested levels.
    pub levels: Vec<QuantileLevel>,
    /// Warnings (clamped levels, long horizon, ...).
    pub warnings: Vec<String>,
}

/// Loads `source` and forecasts every series in it.
///
/// # Errors
/// [`ForecastError::Data`] for unreadable data, [`ForecastError::Input`] for bad options.
pub fn forecast_file(
    model: &dyn ForwardPass,
    source: DataSource<'_>,
    request: &FileRequest,
) -> Result<FileForecast, ForecastError> {
    if request.horizon == 0 {
        return Err(ForecastError::Input("--horizon must be at least 1".into()));
    }
    if request.targets.is_empty() {
        return Err(ForecastError::Input("no target column given".into()));
    }
    if let Some(name) = request
        .future_covariates
        .iter()
        .find(|f| !request.covariates.iter().any(|c| c.eq_ignore_ascii_case(f)))
    {
        return Err(ForecastError::Input(format!(
            "future covariate `{name}` must also be a covariate of the data file (--covariates)"
        )));
    }
    if request.future_covariates.is_empty() != request.future_data.is_none() {
        return Err(ForecastError::Input(
            "known-future covariates need both --future-data FILE and --future-covariates NAMES".into(),
        ));
    }
    let mut load = request.load.clone();
    load.columns = request.targets.iter().chain(&request.covariates).cloned().collect();
    let data = source.load(&load)?;
    let future = match &request.future_data {
        Some(future_path) => Some(read_future(request, future_path, &data, &request.future_covariates)?),
        None => None,
    };
    let stem = source.stem();

    let mut tasks = Vec::new();
    // (series index, target index) of each task's first target, and its target count.
    let mut owners = Vec::new();
    for (s, series) in data.series.iter().enumerate() {
        let mut rows: Vec<Vec<f32>> = series
            .columns
            .iter()
            .map(|(_, v)| v.iter().map(|&x| x as f32).collect())
            .collect();
        let covariate_rows = rows.split_off(request.targets.len());
        let covariates: Vec<Covariate> = request
            .covariates
            .iter()
            .zip(covariate_rows)
            .map(|(name, past)| Covariate {
                name: name.clone(),
                past: CovariateValues::Numeric(past),
                future: request
                    .future_covariates
                    .iter()
                    .position(|f| f.eq_ignore_ascii_case(name))
                    .and_then(|i| future.as_ref().map(|f| CovariateValues::Numeric(f[s][i].clone()))),
            })
            .collect();
        let with_covariates = |task: Task| covariates.iter().cloned().fold(task, Task::with_covariate);
        if request.joint {
            tasks.push(with_covariates(Task::multivariate(rows)));
            owners.push((s, 0, request.targets.len()));
        } else {
            for (t, row) in rows.into_iter().enumerate() {
                tasks.push(with_covariates(Task::univariate(row)));
                owners.push((s, t, 1));
            }
        }
    }
    let mut options = PredictOptions::new(request.horizon);
    options.batch_size = request.batch_size;
    options.context_length = request.context_length;
    options.cross_learning = request.cross_learning;
    let prediction = predict(model, &tasks, &options)?;
    let config = model.config();
    let levels: Vec<f32> = request.quantiles.iter().map(|q| q.level).collect();
    let mut warnings = prediction.warnings;
    if outside_trained_range(&levels, &config.quantiles) {
        warnings.push(format!(
            "quantile levels outside [{}, {}] are clamped to the outermost trained levels",
            config.quantiles[0],
            config.quantiles[config.quantiles.len() - 1]
        ));
    }
    let median = config.median_index().ok_or_else(|| {
        ForecastError::Input("the model has no 0.5 quantile level to use as the point forecast".into())
    })?;
    let mut forecasts = Vec::new();
    for (forecast, &(s, first_target, count)) in prediction.forecasts.iter().zip(&owners) {
        let series = &data.series[s];
        let read = at_levels(forecast, &config.quantiles, &levels, median);
        let last = *series.timestamps.last().expect("series have at least MIN_ROWS bars");
        let future = series.calendar.future(last, request.horizon);
        let timestamps: Vec<String> = future.iter().map(|&t| data.format_time(t)).collect();
        let start = data.format_iso(future[0]);
        for k in 0..count {
            forecasts.push(SeriesForecast {
                item_id: series.label(&stem),
                target_name: request.targets[first_target + k].clone(),
                timestamps: timestamps.clone(),
                start: start.clone(),
                decimals: data.decimals.get(first_target + k).copied().unwrap_or(4),
                mean: read.median(k).to_vec(),
                quantiles: (0..levels.len()).map(|l| read.series(k, l)).collect(),
            });
        }
    }
    Ok(FileForecast {
        data,
        forecasts,
        levels: request.quantiles.clone(),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--quantiles 0.5,0.5` would give duplicate columns.
    #[test]
    fn duplicate_quantile_levels_are_refused() {
        let msg = parse_quantile_levels("0.1,0.5,0.50").unwrap_err().to_string();
        assert!(msg.contains("given twice") && msg.contains("`0.5` and `0.50`"), "{msg}");
    }

    #[test]
    fn quantile_syntax() {
        let levels = parse_quantile_levels("0.1, 0.50,0.9").unwrap();
        assert_eq!(levels[1].label, "0.50");
        assert_eq!(levels[1].level, 0.5);
        let msg = parse_quantile_levels("0.1;0.9").unwrap_err().to_string();
        assert!(msg.contains("`0.1;0.9`"), "{msg}");
        assert!(parse_quantile_levels("1.5").is_err());
        assert!(parse_quantile_levels("0.1,,0.9").is_err());
    }

    #[test]
    fn ohlc_expands() {
        assert_eq!(parse_targets("OHLC"), ["open", "high", "low", "close"]);
        assert_eq!(parse_targets("close, volume"), ["close", "volume"]);
    }
}
