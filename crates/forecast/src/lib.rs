//! The Chronos-2 forecast pipeline: from series and covariates to quantile forecasts, with
//! the semantics of the reference `Chronos2Pipeline` (chronos-forecasting 2.3.2).
//!
//! * [`Task`]: one or more target series (a multivariate group) with optional past-only and
//!   known-future covariates, numeric or categorical.
//! * [`predict`]: batching, context truncation, padding, group ids, cross-learning and the
//!   long-horizon autoregressive unroll, over any [`ForwardPass`](chronos2::ForwardPass) (the eager model or the
//!   compiled engine).
//! * [`at_levels`]: the forecast at the quantile levels a user asked for.
//!
//! ```
//! use chronos2::{Chronos2Model, Config, RandomInit};
//! use chronos2_forecast::{at_levels, predict, PredictOptions, Task};
//!
//! let model = Chronos2Model::random(Config::tiny(), 0, RandomInit::Default);
//! let series: Vec<f32> = (0..100).map(|t| 50.0 + (t as f32 / 7.0).sin()).collect();
//! let prediction = predict(&model, &[Task::univariate(series)], &PredictOptions::new(24))?;
//! let config = model.config();
//! let forecast = at_levels(&prediction.forecasts[0], &config.quantiles, &[0.1, 0.5, 0.9], config.median_index().unwrap());
//! assert_eq!(forecast.median(0).len(), 24);
//! # Ok::<(), chronos2_forecast::ForecastError>(())
//! ```

#![deny(missing_docs)]
#![deny(unsafe_code)]

mod error;
mod file;
mod levels;
mod pipeline;
pub mod quantiles;
mod task;

pub use error::ForecastError;
pub use file::{
    forecast_file, parse_quantile_levels, parse_targets, FileForecast, FileRequest, QuantileLevel, SeriesForecast,
};
pub use levels::{at_levels, outside_trained_range, LevelForecast};
pub use pipeline::{max_prediction_length, predict, PredictOptions, Prediction, TaskForecast, MAX_UNROLL_PASSES};
pub use task::{prepare_tasks, Covariate, CovariateValues, PreparedTask, Task};
