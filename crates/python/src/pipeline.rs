//! `NativePipeline`: a loaded engine and the pipeline calls over it. The Python class
//! `chronos2.Chronos2Pipeline` turns the reference's inputs into tasks and calls these.

use std::sync::Arc;

use chronos2_engine::{Engine, Settings, SettingsFlags};
use chronos2_forecast::{at_levels, predict, Covariate, CovariateValues, PredictOptions, Prediction, Task};
use chronos2_hub::{resolve, ResolveOptions};
use numpy::ndarray::{Array2, Array3};
use numpy::{IntoPyArray, PyArray2, PyArray3, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::errors::{engine_error, forecast_error, hub_error};

/// A model loaded as the CLI loads it, run by the engine the settings ask for. Safe to share
/// between Python threads: calls release the GIL and the engine serialises its pool.
#[pyclass(frozen, module = "chronos2._native")]
pub struct NativePipeline {
    /// The engine (eager or compiled).
    pub(crate) engine: Engine,
    /// What reports call the model.
    #[pyo3(get)]
    pub(crate) label: String,
    /// The resolved settings, as the CLI prints them.
    #[pyo3(get)]
    settings: String,
    /// Notes from resolving the model and the settings (the CLI prints them on stderr).
    #[pyo3(get)]
    notes: Vec<String>,
}

/// The options of one `predict` call, read from a dict with these keys.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct PredictArgs {
    prediction_length: usize,
    batch_size: usize,
    context_length: Option<usize>,
    cross_learning: bool,
    max_output_patches: Option<usize>,
    unrolled_quantiles: Option<Vec<f32>>,
    limit_prediction_length: bool,
}

impl PredictArgs {
    fn options(&self) -> PredictOptions {
        let mut options = PredictOptions::new(self.prediction_length);
        options.batch_size = self.batch_size;
        options.context_length = self.context_length;
        options.cross_learning = self.cross_learning;
        options.max_output_patches = self.max_output_patches;
        if let Some(levels) = &self.unrolled_quantiles {
            options.unrolled_quantiles = levels.clone();
        }
        options.limit_prediction_length = self.limit_prediction_length;
        options
    }
}

/// Rows of a `(rows, T)` float32 array; a C-contiguous array is read in place (one copy,
/// into the task), any other layout element by element.
fn read_rows(array: &PyReadonlyArray2<'_, f32>) -> Vec<Vec<f32>> {
    let columns = array.shape()[1];
    match array.as_slice() {
        Ok(values) if columns > 0 => values.chunks(columns).map(<[f32]>::to_vec).collect(),
        _ => array.as_array().rows().into_iter().map(|r| r.to_vec()).collect(),
    }
}

/// A covariate's values: a float32 array (numeric) or a list of `str | None` (categorical).
fn read_values(values: &Bound<'_, PyAny>, name: &str) -> PyResult<CovariateValues> {
    if let Ok(array) = values.extract::<PyReadonlyArray1<'_, f32>>() {
        return Ok(CovariateValues::Numeric(array.as_array().to_vec()));
    }
    values
        .extract::<Vec<Option<String>>>()
        .map(CovariateValues::Categorical)
        .map_err(|_| PyValueError::new_err(format!("covariate `{name}`: expected numbers or strings")))
}

/// A covariate as Python passes it: name, past values, future values or `None`.
type PyCovariate<'py> = (String, Bound<'py, PyAny>, Option<Bound<'py, PyAny>>);

/// One array per task.
type Arrays<'py, A> = Vec<Bound<'py, A>>;

/// Per task the quantiles `(n_targets, H, L)` and the median `(n_targets, H)`, and the warnings.
type LevelArrays<'py> = (Arrays<'py, PyArray3<f32>>, Arrays<'py, PyArray2<f32>>, Vec<String>);

/// A task from `(targets (n, T) float32, [(name, past, future | None), ...])`.
fn read_task(task: &Bound<'_, PyAny>) -> PyResult<Task> {
    let (targets, covariates): (PyReadonlyArray2<'_, f32>, Vec<PyCovariate<'_>>) = task.extract()?;
    let covariates = covariates
        .into_iter()
        .map(|(name, past, future)| {
            Ok(Covariate {
                past: read_values(&past, &name)?,
                future: future.map(|f| read_values(&f, &name)).transpose()?,
                name,
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok(Task {
        targets: read_rows(&targets),
        covariates,
    })
}

impl NativePipeline {
    /// Reads the tasks (GIL held), then forecasts with the GIL released.
    fn run(&self, py: Python<'_>, tasks: &Bound<'_, PyList>, args: &PredictArgs) -> PyResult<Prediction> {
        let tasks = tasks.iter().map(|t| read_task(&t)).collect::<PyResult<Vec<Task>>>()?;
        let options = args.options();
        let engine = &self.engine;
        py.detach(|| predict(engine, &tasks, &options)).map_err(forecast_error)
    }
}

#[pymethods]
impl NativePipeline {
    /// Resolves `model` as the CLI does (directory, Hugging Face id from the cache or
    /// downloaded, `builtin`; default CHRONOS2_MODEL, else the built-in model) and builds the
    /// engine from the settings (arguments beat TORCH_COMPILED / CHRONOS_* variables).
    #[staticmethod]
    #[pyo3(signature = (model=None, mode=None, compile_mode=None, backend=None, dtype=None, threads=None, offline=false, device=None, compile_cache=None))]
    #[allow(clippy::too_many_arguments, reason = "the CLI's model and engine flags")]
    fn load(
        py: Python<'_>,
        model: Option<String>,
        mode: Option<String>,
        compile_mode: Option<String>,
        backend: Option<String>,
        dtype: Option<String>,
        threads: Option<usize>,
        offline: bool,
        device: Option<String>,
        compile_cache: Option<String>,
    ) -> PyResult<Self> {
        let flags = SettingsFlags {
            mode,
            compile_mode,
            backend,
            dtype,
            threads,
            compile_cache,
            device,
        };
        py.detach(|| {
            let settings = Settings::resolve(&flags).map_err(engine_error)?;
            let resolved = resolve(model.as_deref(), &ResolveOptions::from_env(offline)).map_err(hub_error)?;
            let eager = resolved.load().map_err(hub_error)?;
            let notes = resolved.notice.iter().chain(&settings.notes).cloned().collect();
            Ok(Self {
                engine: Engine::new(Arc::new(eager), &settings).map_err(engine_error)?,
                label: resolved.label,
                settings: settings.to_string(),
                notes,
            })
        })
    }

    /// The model's quantile levels.
    #[getter]
    fn quantiles(&self) -> Vec<f32> {
        self.engine.model_config().quantiles.clone()
    }

    /// The model's context length.
    #[getter]
    fn context_length(&self) -> usize {
        self.engine.model_config().context_length
    }

    /// Steps per output patch.
    #[getter]
    fn output_patch_size(&self) -> usize {
        self.engine.model_config().patch_size
    }

    /// Output patches per forward pass.
    #[getter]
    fn max_output_patches(&self) -> usize {
        self.engine.model_config().max_output_patches
    }

    /// Threads that run the model.
    #[getter]
    fn threads(&self) -> usize {
        self.engine.threads()
    }

    /// Execution plans built so far (compiled mode).
    #[getter]
    fn plans_built(&self) -> usize {
        self.engine.stats().map_or(0, |s| s.plans_built)
    }

    /// Forecasts at the model's levels: one `(n_targets, Q, H)` float32 array per task, and
    /// the warnings the reference would give.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        tasks: &Bound<'py, PyList>,
        args: PredictArgs,
    ) -> PyResult<(Arrays<'py, PyArray3<f32>>, Vec<String>)> {
        let prediction = self.run(py, tasks, &args)?;
        let arrays = prediction
            .forecasts
            .into_iter()
            .map(|f| {
                Array3::from_shape_vec((f.n_targets, f.num_quantiles, f.horizon), f.values)
                    .expect("forecast values are (n_targets, Q, H)")
                    .into_pyarray(py)
            })
            .collect();
        Ok((arrays, prediction.warnings))
    }

    /// Forecasts at `levels`: per task the quantiles `(n_targets, H, L)` and the median
    /// `(n_targets, H)` (the reference's "mean"), and the warnings.
    fn predict_quantiles<'py>(
        &self,
        py: Python<'py>,
        tasks: &Bound<'py, PyList>,
        args: PredictArgs,
        levels: Vec<f32>,
    ) -> PyResult<LevelArrays<'py>> {
        if let Some(bad) = levels.iter().find(|l| !(**l > 0.0 && **l < 1.0)) {
            return Err(PyValueError::new_err(format!(
                "quantile level {bad} is not strictly between 0 and 1"
            )));
        }
        let prediction = self.run(py, tasks, &args)?;
        let config = self.engine.model_config();
        let median = config
            .median_index()
            .ok_or_else(|| PyValueError::new_err("the model has no 0.5 quantile level to use as the point forecast"))?;
        let mut quantiles = Vec::with_capacity(prediction.forecasts.len());
        let mut means = Vec::with_capacity(prediction.forecasts.len());
        for forecast in &prediction.forecasts {
            let read = at_levels(forecast, &config.quantiles, &levels, median);
            let (n, h, l) = (read.n_targets, read.horizon, read.levels.len());
            quantiles.push(
                Array3::from_shape_vec((n, h, l), read.quantiles)
                    .expect("levels are (n_targets, H, L)")
                    .into_pyarray(py),
            );
            means.push(
                Array2::from_shape_vec((n, h), read.mean)
                    .expect("the median is (n_targets, H)")
                    .into_pyarray(py),
            );
        }
        Ok((quantiles, means, prediction.warnings))
    }
}
