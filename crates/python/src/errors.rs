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
    data_error_in(error, &|message| message)
}

/// [`data_error`] with its message passed through `words`.
fn data_error_in(error: DataError, words: &dyn Fn(String) -> String) -> PyErr {
    let message = words(error.to_string());
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

/// An error of `backtest()` in its own words ([`in_backtest_words`]; `data` is the DataFrame's
/// name, or `None` for a file).
pub fn backtest_error(error: BacktestError, data: Option<&str>) -> PyErr {
    let words = |message: String| in_backtest_words(&message, data);
    let message = words(error.to_string());
    match error {
        BacktestError::Setup(_) => PyValueError::new_err(message),
        BacktestError::Data(e) => data_error_in(e, &words),
        BacktestError::Forecast(e) => forecast_error(e),
        BacktestError::Write { source, .. } => io_error(source.kind(), message),
    }
}

/// [`data_error`] of `backtest()`, in its words.
pub fn backtest_data_error(error: DataError, data: Option<&str>) -> PyErr {
    data_error_in(error, &|message| in_backtest_words(&message, data))
}

/// The CLI flags of `chronos2 backtest` that `backtest()` takes as keyword arguments: the
/// flag, the keyword, and whether the flag is a switch (`True` when given).
const BACKTEST_KEYWORDS: [(&str, &str, bool); 24] = [
    ("--periods-per-year", "periods_per_year", false),
    ("--first-origin", "first_origin", false),
    ("--slippage-bps", "slippage_bps", false),
    ("--spread-bps", "spread_bps", false),
    ("--batch-size", "batch_size", false),
    ("--trade-step", "trade_step", false),
    ("--strategies", "strategies", false),
    ("--id-column", "id_column", false),
    ("--keep-last", "keep_last", true),
    ("--threshold", "threshold", false),
    ("--fee-bps", "fee_bps", false),
    ("--interval", "interval", false),
    ("--fraction", "fraction", false),
    ("--no-short", "long_only", true),
    ("--fill-at", "fill_at", false),
    ("--windows", "windows", false),
    ("--context", "context", false),
    ("--horizon", "horizon", false),
    ("--season", "season", false),
    ("--target", "target", false),
    ("--strict", "strict", true),
    ("--model", "model", false),
    ("--step", "step", false),
    ("--fill", "fill", false),
];

/// A message of the shared library as `backtest()` should say it: the CLI's flags as its
/// keyword arguments (`--target <column>` as `target=<column>`, `--strict` as `strict=True`,
/// `--no-short` as `long_only=True`) and a DataFrame by its name instead of the bundled file
/// it travels as (`bundled dataframe.csv` as the DataFrame `dataframe`). Flags it has no
/// keyword for (and other programs' flags, such as cargo's) stay as they are.
pub fn in_backtest_words(message: &str, data: Option<&str>) -> String {
    let mut text = message.to_string();
    if let Some(name) = data {
        text = text.replace(
            &format!("bundled {name}"),
            &format!("the DataFrame `{}`", name.trim_end_matches(".csv")),
        );
    }
    // Longest flags first, so that `--fill` does not take the start of `--fill-at`.
    for (flag, keyword, switch) in BACKTEST_KEYWORDS {
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(at) = rest.find(flag) {
            let after = &rest[at + flag.len()..];
            // A whole flag only: not the start of a longer one.
            if after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-') {
                out.push_str(&rest[..at + flag.len()]);
                rest = after;
                continue;
            }
            out.push_str(&rest[..at]);
            if switch {
                out.push_str(keyword);
                out.push_str("=True");
                rest = after;
            } else {
                out.push_str(keyword);
                out.push('=');
                rest = after.strip_prefix(' ').unwrap_or(after);
            }
        }
        out.push_str(rest);
        text = out;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::in_backtest_words;

    #[test]
    fn backtest_messages_speak_keyword_arguments() {
        assert_eq!(
            in_backtest_words(
                "bundled prices.csv: column `close` not found (found: Date, Price2); pass `--target <column>` with one of the columns above",
                Some("prices.csv")
            ),
            "the DataFrame `prices`: column `close` not found (found: Date, Price2); pass `target=<column>` with one of the columns above"
        );
        assert_eq!(
            in_backtest_words(
                "remove them or pass `--keep-last`; or `--fill forward`, `--fill-at next-open`",
                None
            ),
            "remove them or pass `keep_last=True`; or `fill=forward`, `fill_at=next-open`"
        );
        assert_eq!(
            in_backtest_words("leave out --strict (--first-origin)", None),
            "leave out strict=True (first_origin=)"
        );
        assert_eq!(
            in_backtest_words("rebuild with `--features cuda`", None),
            "rebuild with `--features cuda`"
        );
    }
}
