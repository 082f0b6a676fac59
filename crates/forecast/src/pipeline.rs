//! The forecast pipeline with the semantics of the reference `Chronos2Pipeline.predict`:
//! per-task context truncation, batching by rows without splitting a task, left NaN padding
//! to the longest row of a batch, group ids per task (or one group with cross-learning), and
//! horizons beyond one forward pass through the multi-quantile autoregressive unroll.

use chronos2::{Config, ForwardPass, ModelInput, ModelOutput};

use crate::error::ForecastError;
use crate::quantiles::{interpolate, probability_mass, weighted_quantile};
use crate::task::{prepare_tasks, PreparedTask, Task};

/// Options of [`predict`], with the reference's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct PredictOptions {
    /// Horizon H in steps.
    pub prediction_length: usize,
    /// Rows per model call; a task is never split, so a batch may overshoot.
    pub batch_size: usize,
    /// Context cut per task (default and maximum: the model's `context_length`).
    pub context_length: Option<usize>,
    /// One group for the whole batch instead of one per task.
    pub cross_learning: bool,
    /// Most output patches per forward pass (default: the model's `max_output_patches`).
    pub max_output_patches: Option<usize>,
    /// Levels appended to the context in the long-horizon unroll (subset of the model's).
    pub unrolled_quantiles: Vec<f32>,
    /// Reject horizons beyond one forward pass instead of unrolling.
    pub limit_prediction_length: bool,
}

impl PredictOptions {
    /// Defaults for a horizon of `prediction_length` steps.
    pub fn new(prediction_length: usize) -> Self {
        Self {
            prediction_length,
            batch_size: 256,
            context_length: None,
            cross_learning: false,
            max_output_patches: None,
            unrolled_quantiles: vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
            limit_prediction_length: false,
        }
    }
}

/// The forecast of one task: `(n_targets, Q, H)` at the model's quantile levels.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskForecast {
    /// `(n_targets, Q, H)`, row-major.
    pub values: Vec<f32>,
    /// Target rows.
    pub n_targets: usize,
    /// Model quantile levels Q.
    pub num_quantiles: usize,
    /// Horizon H.
    pub horizon: usize,
}

impl TaskForecast {
    /// The forecast of target `target` at model quantile index `quantile`, `(H)`.
    pub fn series(&self, target: usize, quantile: usize) -> &[f32] {
        let start = (target * self.num_quantiles + quantile) * self.horizon;
        &self.values[start..start + self.horizon]
    }
}

/// Everything [`predict`] produced, with the warnings the reference would log.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// One forecast per task, in input order.
    pub forecasts: Vec<TaskForecast>,
    /// Human-readable warnings (long horizon, clamped context length, ...).
    pub warnings: Vec<String>,
    /// Number of forward passes run.
    pub model_calls: usize,
}

/// Row-major `(rows, cols)` matrix used while a batch is in flight.
#[derive(Clone, Debug)]
struct Rows {
    data: Vec<f32>,
    cols: usize,
}

impl Rows {
    fn rows(&self) -> usize {
        self.data.len() / self.cols.max(1)
    }
    fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

/// Most forward passes one long-horizon unroll may chain.
pub const MAX_UNROLL_PASSES: usize = 64;

/// Longest prediction length accepted: [`MAX_UNROLL_PASSES`] times the model's horizon per
/// forward pass (beyond that the unroll is both meaningless and a memory hazard).
pub fn max_prediction_length(config: &Config) -> usize {
    config.max_horizon().saturating_mul(MAX_UNROLL_PASSES)
}

/// Forecasts `tasks` (the reference's `Chronos2Pipeline.predict`).
///
/// # Errors
/// [`ForecastError::Input`] for invalid tasks or options, or the engine's error.
pub fn predict(model: &dyn ForwardPass, tasks: &[Task], options: &PredictOptions) -> Result<Prediction, ForecastError> {
    let config = model.config();
    let h = options.prediction_length;
    if h == 0 {
        return Err(ForecastError::Input("prediction length must be at least 1".into()));
    }
    let limit = max_prediction_length(config);
    if h > limit {
        let bytes = (h as f64) * (config.num_quantiles() as f64) * 4.0 * tasks.len().max(1) as f64;
        return Err(ForecastError::Input(format!(
            "prediction length {h} is over the limit of {limit} ({MAX_UNROLL_PASSES} forward passes of {} steps); its forecasts alone would need {:.1} GB",
            config.max_horizon(),
            bytes / 1e9
        )));
    }
    if options.batch_size == 0 {
        return Err(ForecastError::Input("batch size must be at least 1".into()));
    }
    let mut warnings = Vec::new();
    let max_patches = options.max_output_patches.unwrap_or(config.max_output_patches);
    if max_patches == 0 || max_patches > config.max_output_patches {
        return Err(ForecastError::Input(format!(
            "max_output_patches must be in 1..={}, found {max_patches}",
            config.max_output_patches
        )));
    }
    let model_horizon = config.max_horizon();
    if h > model_horizon {
        let msg = format!(
            "prediction length {h} exceeds the model's {model_horizon} steps per forward pass; longer predictions are unrolled autoregressively and may degrade"
        );
        if options.limit_prediction_length {
            return Err(ForecastError::Input(msg));
        }
        warnings.push(msg);
    }
    if let Some(missing) = options
        .unrolled_quantiles
        .iter()
        .find(|q| !config.quantiles.iter().any(|m| (*m - **q).abs() < 1e-7))
    {
        return Err(ForecastError::Input(format!(
            "unrolled quantile {missing} is not one of the model's quantile levels"
        )));
    }
    let mut context_length = options.context_length.unwrap_or(config.context_length);
    if context_length == 0 {
        return Err(ForecastError::Input("context length must be at least 1".into()));
    }
    if context_length > config.context_length {
        warnings.push(format!(
            "context length {context_length} is greater than the model's {}; using {}",
            config.context_length, config.context_length
        ));
        context_length = config.context_length;
    }

    let prepared = prepare_tasks(tasks, h)?;
    let mut forecasts = Vec::with_capacity(tasks.len());
    let mut model_calls = 0;
    let mut start = 0;
    while start < prepared.len() {
        // Add tasks while the batch has fewer than batch_size rows (it may overshoot).
        let mut end = start;
        let mut rows = 0;
        while end < prepared.len() && rows < options.batch_size {
            rows += prepared[end].context.len();
            end += 1;
        }
        let batch = &prepared[start..end];
        let (preds, calls) = predict_batch(model, batch, context_length, max_patches, options)?;
        model_calls += calls;
        if let Some(k) = preds.iter().position(|p| p.values.iter().any(|v| !v.is_finite())) {
            let task = start + k;
            let largest = batch[k]
                .context
                .iter()
                .flatten()
                .filter(|v| v.is_finite())
                .fold(0.0f32, |m, v| m.max(v.abs()));
            return Err(ForecastError::Input(format!(
                "the model produced non-finite forecasts for task {task}; likely causes: input values too large for f32 arithmetic (largest |value| {largest:e}; rescale the data) or NaN/Inf weights (check the checkpoint with `chronos2 inspect`)"
            )));
        }
        forecasts.extend(preds);
        start = end;
    }
    Ok(Prediction {
        forecasts,
        warnings,
        model_calls,
    })
}

/// Cuts each task to its last `context_length` values, left-pads every row with NaN to the
/// longest in the batch, and stacks the known-future rows. Returns (context, future, group ids).
fn assemble_batch(batch: &[PreparedTask], context_length: usize, cross_learning: bool) -> (Rows, Rows, Vec<i64>) {
    let longest = batch
        .iter()
        .map(|t| t.context[0].len().min(context_length))
        .max()
        .unwrap_or(0);
    let horizon = batch[0].future[0].len();
    let mut context = Vec::new();
    let mut future = Vec::new();
    let mut group_ids = Vec::new();
    for (group, task) in batch.iter().enumerate() {
        for (row, fut) in task.context.iter().zip(&task.future) {
            let kept = &row[row.len().saturating_sub(context_length)..];
            context.extend(std::iter::repeat_n(f32::NAN, longest - kept.len()));
            context.extend_from_slice(kept);
            future.extend_from_slice(fut);
            group_ids.push(if cross_learning { 0 } else { group as i64 });
        }
    }
    (
        Rows {
            data: context,
            cols: longest,
        },
        Rows {
            data: future,
            cols: horizon,
        },
        group_ids,
    )
}

/// One model call on `context` with `future` covariates padded with NaN (or cut) to `M·P`.
fn predict_step(
    model: &dyn ForwardPass,
    context: &Rows,
    future: &Rows,
    group_ids: &[i64],
    num_output_patches: usize,
) -> Result<ModelOutput, ForecastError> {
    let width = num_output_patches * model.config().patch_size;
    let mut covariates = Vec::with_capacity(context.rows() * width);
    for i in 0..context.rows() {
        let row = future.row(i);
        let kept = &row[..row.len().min(width)];
        covariates.extend_from_slice(kept);
        covariates.extend(std::iter::repeat_n(f32::NAN, width - kept.len()));
    }
    let input = ModelInput::new(context.data.clone(), context.rows())?
        .with_group_ids(group_ids.to_vec())
        .with_future_covariates(covariates, width)
        .with_output_patches(num_output_patches);
    Ok(model.forward(&input)?)
}

/// Forecasts one batch; returns the per-task forecasts and the number of model calls.
fn predict_batch(
    model: &dyn ForwardPass,
    batch: &[PreparedTask],
    context_length: usize,
    max_patches: usize,
    options: &PredictOptions,
) -> Result<(Vec<TaskForecast>, usize), ForecastError> {
    let config = model.config();
    let (p, q) = (config.patch_size, config.num_quantiles());
    let h = options.prediction_length;
    let patches_for = |remaining: usize| remaining.div_ceil(p).min(max_patches);
    let (context, future, group_ids) = assemble_batch(batch, context_length, options.cross_learning);
    let b = context.rows();

    let first = predict_step(model, &context, &future, &group_ids, patches_for(h))?;
    let mut calls = 1;
    // Per row and quantile, the forecast steps produced so far.
    let mut steps: Vec<Vec<f32>> = (0..b * q).map(|i| first.series(i / q, i % q).to_vec()).collect();
    if first.horizon < h {
        let remaining = h - first.horizon;
        let rounds = unroll(
            model,
            config,
            context,
            future,
            &group_ids,
            first,
            options,
            remaining,
            &patches_for,
        )?;
        calls += rounds.len();
        for round in rounds {
            for (i, series) in steps.iter_mut().enumerate() {
                series.extend_from_slice(round.series(i / q, i % q));
            }
        }
    }

    let mut forecasts = Vec::with_capacity(batch.len());
    let mut row = 0;
    for task in batch {
        let mut values = Vec::with_capacity(task.n_targets * q * h);
        for target in 0..task.n_targets {
            for level in 0..q {
                values.extend_from_slice(&steps[(row + target) * q + level][..h]);
            }
        }
        forecasts.push(TaskForecast {
            values,
            n_targets: task.n_targets,
            num_quantiles: q,
            horizon: h,
        });
        row += task.context.len();
    }
    Ok((forecasts, calls))
}

/// The long-horizon heuristic (`_autoregressive_unroll_for_long_horizon`): every row becomes K
/// paths, path k appends the k-th unrolled quantile of the current forecast to its context
/// (kept to the model's `context_length`), known future covariates overwrite the appended
/// span and slide left, and the K·Q samples of each step are reduced with weighted quantiles.
#[allow(clippy::too_many_arguments, reason = "the batch state of the unroll")]
fn unroll(
    model: &dyn ForwardPass,
    config: &Config,
    context: Rows,
    future: Rows,
    group_ids: &[i64],
    first: ModelOutput,
    options: &PredictOptions,
    mut remaining: usize,
    patches_for: &dyn Fn(usize) -> usize,
) -> Result<Vec<ModelOutput>, ForecastError> {
    let levels = &options.unrolled_quantiles;
    let k = levels.len();
    let q = config.num_quantiles();
    let b = context.rows();
    // Expand to (B·K) rows; group g·K + k keeps the paths of one task apart.
    let mut paths: Vec<Vec<f32>> = Vec::with_capacity(b * k);
    let mut path_future: Vec<Vec<f32>> = Vec::with_capacity(b * k);
    let mut path_groups = Vec::with_capacity(b * k);
    for (row, &group) in group_ids.iter().enumerate() {
        for path in 0..k {
            paths.push(context.row(row).to_vec());
            path_future.push(future.row(row).to_vec());
            path_groups.push(group * k as i64 + path as i64);
        }
    }
    let unroll_mass = probability_mass(levels);
    let model_mass = probability_mass(&config.quantiles);
    let weights: Vec<f32> = unroll_mass
        .iter()
        .flat_map(|u| model_mass.iter().map(move |m| u * m))
        .collect();

    let mut rounds = Vec::new();
    let mut prediction = first;
    while remaining > 0 {
        let step = prediction.horizon;
        // Append the unrolled levels of the current prediction to each path.
        let mut level_values = vec![0.0f32; k];
        let mut column = vec![0.0f32; q];
        let mut appended: Vec<Vec<f32>> = vec![Vec::with_capacity(step); b * k];
        for row in 0..b {
            for t in 0..step {
                for (level, slot) in column.iter_mut().enumerate() {
                    *slot = prediction.series(row, level)[t];
                }
                interpolate(levels, &config.quantiles, &column, &mut level_values);
                for path in 0..k {
                    appended[row * k + path].push(level_values[path]);
                }
            }
        }
        for ((path, extra), fut) in paths.iter_mut().zip(appended).zip(path_future.iter_mut()) {
            path.extend(extra);
            let excess = path.len().saturating_sub(config.context_length);
            path.drain(..excess);
            // Known future covariate values replace the appended predictions, then slide.
            let known = step.min(fut.len());
            let len = path.len();
            for (slot, &value) in path[len - step..].iter_mut().zip(&fut[..known]) {
                if !value.is_nan() {
                    *slot = value;
                }
            }
            fut.drain(..known);
        }
        let width = paths[0].len();
        let context = Rows {
            data: paths.concat(),
            cols: width,
        };
        let future_cols = path_future[0].len();
        let future = Rows {
            data: path_future.concat(),
            cols: future_cols,
        };
        let output = predict_step(model, &context, &future, &path_groups, patches_for(remaining))?;
        // (B·K, Q, h') -> per row and step, K·Q samples -> weighted quantiles at the Q levels.
        let horizon = output.horizon;
        let mut samples = vec![0.0f32; b * horizon * k * q];
        for row in 0..b {
            for path in 0..k {
                for level in 0..q {
                    let series = output.series(row * k + path, level);
                    for (t, &v) in series.iter().enumerate() {
                        samples[(row * horizon + t) * k * q + path * q + level] = v;
                    }
                }
            }
        }
        let reduced = weighted_quantile(&config.quantiles, &weights, &samples);
        let mut values = vec![0.0f32; b * q * horizon];
        for row in 0..b {
            for t in 0..horizon {
                for level in 0..q {
                    values[(row * q + level) * horizon + t] = reduced[(row * horizon + t) * q + level];
                }
            }
        }
        prediction = ModelOutput {
            quantile_preds: values,
            rows: b,
            num_quantiles: q,
            horizon,
            loc: Vec::new(),
            scale: Vec::new(),
        };
        remaining = remaining.saturating_sub(horizon);
        rounds.push(prediction.clone());
    }
    Ok(rounds)
}
