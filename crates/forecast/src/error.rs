//! The error type of the forecast pipeline.

/// What can go wrong while forecasting.
#[derive(Debug, thiserror::Error)]
pub enum ForecastError {
    /// The tasks or options are invalid; the message names the task, column or option.
    #[error("{0}")]
    Input(String),
    /// The data file cannot be used.
    #[error(transparent)]
    Data(#[from] chronos2_data::DataError),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] chronos2::Error),
}
