//! The native half of the `chronos2` Python package (`chronos2._native`): thin conversions
//! between Python objects and the Rust library, nothing more. Model resolution is
//! `chronos2_hub`'s, settings `chronos2_engine`'s, forecasts `chronos2_forecast::predict`'s and
//! the backtest `chronos2_backtest::run_backtest`'s, exactly as the CLI calls them. The Python
//! sources in `python/chronos2` give them the reference's API (`Chronos2Pipeline`).
//!
//! Every call that computes releases the GIL; every library error becomes a Python exception
//! (see [`errors`]).

#![deny(missing_docs)]
#![deny(unsafe_code)]

mod backtest;
mod errors;
mod pipeline;

use pyo3::prelude::*;

/// The extension module `chronos2._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<pipeline::NativePipeline>()?;
    m.add_function(wrap_pyfunction!(backtest::backtest, m)?)?;
    m.add_function(wrap_pyfunction!(backtest::future_timestamps, m)?)?;
    m.add("BACKTEST_LEVELS", chronos2_backtest::walkforward::LEVELS.to_vec())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
