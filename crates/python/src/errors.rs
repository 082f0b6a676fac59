//! The library's errors as the Python exceptions users expect: `ValueError` for bad input
//! (with the message the CLI prints), `FileNotFoundError` / `PermissionError` / `OSError`
//! for files, `ConnectionError` for downloads, `RuntimeError` for an engine failure.

use std::io::ErrorKind;

use chronos2_backtest::BacktestError;
use chronos2_data::DataError;
use chronos2_engine::EngineError;
use chronos2_forecast::ForecastError;
use chronos2_hub::HubError;
use pyo3::exceptions::{
    PyConnectionError, PyFileNotFoundError, PyOSError, PyPermissionError, PyRuntimeError, PyValueError,
};
use pyo3::PyErr;

/// An OS error with the exception class of its kind.
fn io_error(kind: ErrorKind, message: String) -> PyErr {
    match kind {
        ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
        ErrorKind::PermissionDenied => PyPermissionError::new_err(message),
        _ => PyOSError::new_err(message),
    }
}

/// A model error: unreadable files are OS errors, bad input a `ValueError`, a failed
/// executor a `RuntimeError`, and a checkpoint that does not fit a `ValueError`.
pub fn model_error(error: chronos2::Error) -> PyErr {
    let message = error.to_string();
    match error {
        chronos2::Error::Io { source, .. } => io_error(source.kind(), message),
        chronos2::Error::Execution(_) => PyRuntimeError::new_err(message),
        _ => PyValueError::new_err(message),
    }
}

/// A data-file error.
pub fn data_error(error: DataError) -> PyErr {
    let message = error.to_string();
    match error {
        DataError::Io { source, .. } => io_error(source.kind(), message),
        DataError::Invalid { .. } => PyValueError::new_err(message),
    }
}

/// A pipeline error.
pub fn forecast_error(error: ForecastError) -> PyErr {
    match error {
        ForecastError::Input(message) => PyValueError::new_err(message),
        ForecastError::Data(e) => data_error(e),
        ForecastError::Model(e) => model_error(e),
    }
}

/// A model-resolution error: nothing found is `FileNotFoundError`, a failed download
/// `ConnectionError`.
pub fn hub_error(error: HubError) -> PyErr {
    match error {
        HubError::NotFound(message) => PyFileNotFoundError::new_err(message),
        HubError::Download(message) => PyConnectionError::new_err(message),
        HubError::Model(e) => model_error(e),
    }
}

/// A settings or engine error.
pub fn engine_error(error: EngineError) -> PyErr {
    match error {
        EngineError::Settings(message) | EngineError::Cache(message) => PyValueError::new_err(message),
        other => model_error(other.into_model_error()),
    }
}

/// A backtest error.
pub fn backtest_error(error: BacktestError) -> PyErr {
    let message = error.to_string();
    match error {
        BacktestError::Setup(_) => PyValueError::new_err(message),
        BacktestError::Data(e) => data_error(e),
        BacktestError::Forecast(e) => forecast_error(e),
        BacktestError::Write { source, .. } => io_error(source.kind(), message),
    }
}
