//! The hosted Chronos-2 endpoint's JSON contract: reading and validating a payload into
//! forecast tasks, and writing the answer.
//!
//! Request: `{"inputs": [{"target": [...] | [[...], ...], "item_id"?, "start"?,
//! "past_covariates"?: {name: [...]}, "future_covariates"?: {name: [...]}}], "parameters":
//! {"prediction_length", "quantile_levels", "freq", "batch_size", "cross_learning"}}`.
//! A multivariate target is a list of variates, each a list of T values. `null` is a missing
//! value (the reference's NaN); covariate values are numbers or, for a categorical covariate,
//! strings.
//!
//! Answer: `{"predictions": [{"mean": [...], "0.1": [...], ..., "item_id"?, "start"?}]}`, with
//! one list per variate (a list of lists) for a multivariate target. `start` is the timestamp of
//! the first forecast step.

use std::collections::{BTreeMap, BTreeSet};

use chrono::DateTime;
use chronos2_data::{parse_timestamp, TimestampStyle};
use chronos2_forecast::{Covariate, CovariateValues, LevelForecast, Task};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::freq::{Freq, SUPPORTED};

/// Fewest observations per target series.
pub const MIN_POINTS: usize = 5;
/// Longest horizon a request may ask for.
pub const MAX_PREDICTION_LENGTH: usize = 1024;
/// Most series per request.
pub const MAX_SERIES: usize = 1000;
/// Levels answered when the request names none.
pub const DEFAULT_LEVELS: [f64; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
/// Rows per model call when the request does not say.
pub const DEFAULT_BATCH_SIZE: usize = 256;

const TOP_KEYS: [&str; 2] = ["inputs", "parameters"];
const INPUT_KEYS: [&str; 5] = ["target", "item_id", "start", "past_covariates", "future_covariates"];
const PARAMETER_KEYS: [&str; 6] = [
    "prediction_length",
    "quantile_levels",
    "freq",
    "batch_size",
    "cross_learning",
    "predict_batches_jointly",
];

/// A requested quantile level with the key it is answered under (`"0.1"`).
#[derive(Clone, Debug, PartialEq)]
pub struct Level {
    /// The answer's key.
    pub label: String,
    /// The level in (0, 1).
    pub level: f32,
}

/// A validated request: the tasks to forecast and how to answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ForecastRequest {
    /// One task per input series, in order.
    pub tasks: Vec<Task>,
    /// Per series, whether its target was written as a list of variates.
    pub nested: Vec<bool>,
    /// The item ids as sent (all or none).
    pub item_ids: Option<Vec<Value>>,
    /// Per series, the timestamp of its first forecast step (when `start` was sent).
    pub starts: Option<Vec<String>>,
    /// The levels to answer.
    pub levels: Vec<Level>,
    /// Horizon H.
    pub prediction_length: usize,
    /// Rows per model call.
    pub batch_size: usize,
    /// One group for the whole batch (the series inform each other).
    pub cross_learning: bool,
}

/// What must agree for two requests to share a model call: horizon, target width and the
/// covariates (name, known in the future, categorical).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    prediction_length: usize,
    targets: usize,
    covariates: Vec<(String, bool, bool)>,
}

impl ForecastRequest {
    /// Model rows this request fills (targets and covariates of every series).
    pub fn rows(&self) -> usize {
        self.tasks.iter().map(|t| t.targets.len() + t.covariates.len()).sum()
    }

    /// The schema requests must share to be merged.
    pub fn schema(&self) -> Schema {
        Schema {
            prediction_length: self.prediction_length,
            targets: self.tasks[0].targets.len(),
            covariates: covariate_schema(&self.tasks[0]),
        }
    }

    /// Whether merging this request with others leaves its answer unchanged: not with
    /// cross-learning (the batch is one group), nor with categorical covariates of a
    /// multivariate target (their ordinal codes are assigned over the whole call).
    pub fn mergeable(&self) -> bool {
        let schema = self.schema();
        let ordinal_categories = schema.targets > 1 && schema.covariates.iter().any(|c| c.2);
        !(self.cross_learning || ordinal_categories)
    }
}

/// A task's covariates as sorted (name, known in the future, categorical).
fn covariate_schema(task: &Task) -> Vec<(String, bool, bool)> {
    let mut schema: Vec<_> = task
        .covariates
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                c.future.is_some(),
                matches!(c.past, CovariateValues::Categorical(_)),
            )
        })
        .collect();
    schema.sort();
    schema
}

/// Reads one JSON payload.
///
/// # Errors
/// [`ApiError::Malformed`] when the body is not JSON, [`ApiError::Invalid`] naming the field
/// that breaks a rule.
pub fn parse_payload(body: &[u8]) -> Result<ForecastRequest, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::Malformed(format!(
            "the body is not valid JSON ({e}); send {{\"inputs\": [...], \"parameters\": {{...}}}} and write missing values as null"
        ))
    })?;
    from_value(&value)
}

/// Reads a JSON Lines body: one payload per non-empty line.
///
/// # Errors
/// As [`parse_payload`], prefixed with the line number.
pub fn parse_json_lines(body: &[u8]) -> Result<Vec<ForecastRequest>, ApiError> {
    let requests: Vec<ForecastRequest> = body
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .map(|(i, line)| parse_payload(line).map_err(|e| e.on_line(i + 1)))
        .collect::<Result<_, _>>()?;
    if requests.is_empty() {
        return Err(ApiError::Invalid("the JSON Lines body has no payload lines".into()));
    }
    Ok(requests)
}

fn invalid<T>(message: String) -> Result<T, ApiError> {
    Err(ApiError::Invalid(message))
}

/// Refuses keys outside `allowed`, naming the first unknown one.
fn known_keys(object: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), ApiError> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => invalid(format!(
            "unknown key `{key}` in {what}; expected one of: {}",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

/// A JSON type name for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A list of numbers; `null` is a missing value (NaN).
fn numbers(value: &Value, what: &str) -> Result<Vec<f32>, ApiError> {
    let Value::Array(items) = value else {
        return invalid(format!("{what} must be a list of numbers, found {}", kind(value)));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Null => Ok(f32::NAN),
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(f64::INFINITY) as f32;
                if x.is_finite() {
                    Ok(x)
                } else {
                    invalid(format!(
                        "{what}[{i}] = {n} does not fit in 32-bit floats; scale the series"
                    ))
                }
            }
            other => invalid(format!(
                "{what}[{i}] must be a number or null (missing), found {}",
                kind(other)
            )),
        })
        .collect()
}

/// A covariate's values: numbers (and nulls) or strings (and nulls) for a categorical one.
fn covariate_values(value: &Value, what: &str) -> Result<CovariateValues, ApiError> {
    let Value::Array(items) = value else {
        return invalid(format!("{what} must be a list, found {}", kind(value)));
    };
    if !items.iter().any(Value::is_string) {
        return numbers(value, what).map(CovariateValues::Numeric);
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            other => invalid(format!(
                "{what}[{i}] is {} but the covariate is categorical (it has strings); use strings or null throughout",
                kind(other)
            )),
        })
        .collect::<Result<_, _>>()
        .map(CovariateValues::Categorical)
}

fn values_len(values: &CovariateValues) -> usize {
    match values {
        CovariateValues::Numeric(v) => v.len(),
        CovariateValues::Categorical(v) => v.len(),
    }
}

/// The target: a list of numbers, or a list of variates (lists of equal length).
fn target(value: &Value, what: &str) -> Result<(Vec<Vec<f32>>, bool), ApiError> {
    let Value::Array(items) = value else {
        return invalid(format!(
            "{what} must be a list of numbers or a list of lists, found {}",
            kind(value)
        ));
    };
    let nested = items.first().is_some_and(Value::is_array);
    let rows = if nested {
        items
            .iter()
            .enumerate()
            .map(|(v, row)| numbers(row, &format!("{what}[{v}]")))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        vec![numbers(value, what)?]
    };
    let length = rows[0].len();
    if let Some(v) = rows.iter().position(|r| r.len() != length) {
        return invalid(format!(
            "{what}[{v}] has {} values but {what}[0] has {length}; every variate needs the same length",
            rows[v].len()
        ));
    }
    if length < MIN_POINTS {
        return invalid(format!("{what} has {length} values; at least {MIN_POINTS} are needed"));
    }
    Ok((rows, nested))
}

/// The request's parameters, with the endpoint's defaults.
struct Parameters {
    prediction_length: usize,
    levels: Vec<Level>,
    freq: Option<Freq>,
    batch_size: usize,
    cross_learning: bool,
}

fn parameters(value: Option<&Value>) -> Result<Parameters, ApiError> {
    let empty = Map::new();
    let object = match value {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(o)) => o,
        Some(other) => return invalid(format!("`parameters` must be an object, found {}", kind(other))),
    };
    known_keys(object, &PARAMETER_KEYS, "`parameters`")?;
    let integer = |key: &str, default: usize, max: usize| -> Result<usize, ApiError> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 && n <= max as u64 => Ok(n as usize),
                _ => invalid(format!("parameters.{key} must be an integer in 1..={max}, found {v}")),
            },
        }
    };
    let prediction_length = integer("prediction_length", 1, MAX_PREDICTION_LENGTH)?;
    let batch_size = integer("batch_size", DEFAULT_BATCH_SIZE, usize::MAX)?;
    let levels = match object.get("quantile_levels") {
        None | Some(Value::Null) => DEFAULT_LEVELS.iter().map(|&l| level(l)).collect(),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|item| match item.as_f64() {
                Some(l) if l > 0.0 && l < 1.0 => Ok(level(l)),
                _ => invalid(format!(
                    "parameters.quantile_levels must be numbers strictly between 0 and 1, found {item}"
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return invalid(format!(
                "parameters.quantile_levels must be a non-empty list of numbers in (0, 1), found {other}"
            ))
        }
    };
    let mut seen = BTreeSet::new();
    if let Some(dup) = levels.iter().find(|l| !seen.insert(l.label.as_str())) {
        return invalid(format!("parameters.quantile_levels lists {} twice", dup.label));
    }
    let freq = match object.get("freq") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Freq::parse(s).ok_or_else(|| {
            ApiError::Invalid(format!(
                "parameters.freq `{s}` is not a frequency this server knows; use one of: {SUPPORTED}"
            ))
        })?),
        Some(other) => {
            return invalid(format!(
                "parameters.freq must be a string such as \"D\" or \"h\", found {other}"
            ))
        }
    };
    let flag = |key: &str| -> Result<Option<bool>, ApiError> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => invalid(format!("parameters.{key} must be true or false, found {other}")),
        }
    };
    let cross_learning = match (flag("cross_learning")?, flag("predict_batches_jointly")?) {
        (Some(a), Some(b)) if a != b => {
            return invalid(
                "parameters.cross_learning and its deprecated alias predict_batches_jointly disagree; send one".into(),
            )
        }
        (a, b) => a.or(b).unwrap_or(false),
    };
    Ok(Parameters {
        prediction_length,
        levels,
        freq,
        batch_size,
        cross_learning,
    })
}

/// A level answered under Python's spelling of the float (`0.1`, `0.25`).
fn level(l: f64) -> Level {
    Level {
        label: format!("{l:?}"),
        level: l as f32,
    }
}

/// Checks a field present for every series or for none; returns whether present.
fn all_or_none(inputs: &[Value], key: &str, hint: &str) -> Result<bool, ApiError> {
    let given = inputs
        .iter()
        .filter(|i| i.get(key).is_some_and(|v| !v.is_null()))
        .count();
    if given != 0 && given != inputs.len() {
        return invalid(format!(
            "`{key}` is given for {given} of {} series; give it for all of them or none{hint}",
            inputs.len()
        ));
    }
    Ok(given > 0)
}

/// The item ids, all or none, unique, strings or integers.
fn item_ids(inputs: &[Value]) -> Result<Option<Vec<Value>>, ApiError> {
    if !all_or_none(inputs, "item_id", "")? {
        return Ok(None);
    }
    let mut seen = BTreeMap::new();
    let mut ids = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        let id = &input["item_id"];
        if !(id.is_string() || id.is_number()) {
            return invalid(format!(
                "inputs[{i}].item_id must be a string or a number, found {}",
                kind(id)
            ));
        }
        if let Some(first) = seen.insert(id.to_string(), i) {
            return invalid(format!(
                "inputs[{i}].item_id {id} repeats inputs[{first}]'s; item ids must be unique"
            ));
        }
        ids.push(id.clone());
    }
    Ok(Some(ids))
}

/// The first forecast step of a series with `length` points starting at `start`, in ISO form
/// (`2024-01-01T11:00:00`, with `+00:00` when `start` had an offset).
fn forecast_start(start: &Value, freq: &Freq, length: usize, what: &str) -> Result<String, ApiError> {
    let text = start.as_str().ok_or_else(|| {
        ApiError::Invalid(format!(
            "{what} must be a timestamp string such as \"2024-01-01T00:00:00\", found {start}"
        ))
    })?;
    let (seconds, style) = parse_timestamp(text).ok_or_else(|| {
        ApiError::Invalid(format!(
            "{what} `{text}` is not a timestamp; use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (optionally with +00:00)"
        ))
    })?;
    let first = DateTime::from_timestamp(seconds, 0).map(|t| t.naive_utc());
    let step = first.and_then(|t| freq.advance(t, length)).ok_or_else(|| {
        ApiError::Invalid(format!(
            "{what} `{text}` plus {length} steps is past the calendar's end"
        ))
    })?;
    let offset = if style == TimestampStyle::DateTimeUtcOffset {
        "+00:00"
    } else {
        ""
    };
    Ok(format!("{}{offset}", step.format("%Y-%m-%dT%H:%M:%S")))
}

/// Reads one series' covariates (`past_covariates`, `future_covariates`).
fn covariates(input: &Map<String, Value>, i: usize, length: usize, horizon: usize) -> Result<Vec<Covariate>, ApiError> {
    let object = |key: &str| -> Result<Map<String, Value>, ApiError> {
        match input.get(key) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(o)) => Ok(o.clone()),
            Some(other) => invalid(format!(
                "inputs[{i}].{key} must be an object of name: list, found {}",
                kind(other)
            )),
        }
    };
    let (past, future) = (object("past_covariates")?, object("future_covariates")?);
    if let Some(name) = future.keys().find(|k| !past.contains_key(*k)) {
        return invalid(format!(
            "inputs[{i}].future_covariates has `{name}`, which past_covariates lacks; every future covariate needs its past values too"
        ));
    }
    past.iter()
        .map(|(name, values)| {
            let what = format!("inputs[{i}].past_covariates.{name}");
            let past_values = covariate_values(values, &what)?;
            if values_len(&past_values) != length {
                return invalid(format!(
                    "{what} has {} values, the target has {length}",
                    values_len(&past_values)
                ));
            }
            let future_values = match future.get(name) {
                None => None,
                Some(values) => {
                    let what = format!("inputs[{i}].future_covariates.{name}");
                    let v = match (&past_values, covariate_values(values, &what)?) {
                        // All-null future values of a categorical covariate are missing categories.
                        (CovariateValues::Categorical(_), CovariateValues::Numeric(x))
                            if x.iter().all(|x| x.is_nan()) =>
                        {
                            CovariateValues::Categorical(vec![None; x.len()])
                        }
                        (past, v) if std::mem::discriminant(past) != std::mem::discriminant(&v) => {
                            return invalid(format!(
                                "{what} is categorical in the future but numeric in the past, or the reverse"
                            ))
                        }
                        (_, v) => v,
                    };
                    if values_len(&v) != horizon {
                        return invalid(format!(
                            "{what} has {} values, prediction_length is {horizon}",
                            values_len(&v)
                        ));
                    }
                    Some(v)
                }
            };
            Ok(Covariate {
                name: name.clone(),
                past: past_values,
                future: future_values,
            })
        })
        .collect()
}

/// Validates a parsed payload.
///
/// # Errors
/// [`ApiError::Invalid`] naming the field that breaks a rule.
pub fn from_value(value: &Value) -> Result<ForecastRequest, ApiError> {
    let Value::Object(top) = value else {
        return invalid(format!(
            "the payload must be an object {{\"inputs\": [...]}}, found {}",
            kind(value)
        ));
    };
    known_keys(top, &TOP_KEYS, "the payload")?;
    let inputs = match top.get("inputs") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) => return invalid("`inputs` is empty; send at least one series".into()),
        Some(other) => return invalid(format!("`inputs` must be a list of series, found {}", kind(other))),
        None => return invalid("the payload has no `inputs`".into()),
    };
    if inputs.len() > MAX_SERIES {
        return invalid(format!(
            "{} series in one request; at most {MAX_SERIES} are allowed, split the request",
            inputs.len()
        ));
    }
    let parameters = parameters(top.get("parameters"))?;
    let horizon = parameters.prediction_length;
    let mut tasks = Vec::with_capacity(inputs.len());
    let mut nested = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        let Value::Object(input) = input else {
            return invalid(format!(
                "inputs[{i}] must be an object with a `target`, found {}",
                kind(input)
            ));
        };
        known_keys(input, &INPUT_KEYS, &format!("inputs[{i}]"))?;
        let what = format!("inputs[{i}].target");
        let (targets, is_nested) = target(input.get("target").unwrap_or(&Value::Null), &what)?;
        let length = targets[0].len();
        let task = Task {
            covariates: covariates(input, i, length, horizon)?,
            targets,
        };
        tasks.push(task);
        nested.push(is_nested);
    }
    let schema = covariate_schema;
    let first_schema = schema(&tasks[0]);
    for (i, task) in tasks.iter().enumerate().skip(1) {
        if task.targets.len() != tasks[0].targets.len() {
            return invalid(format!(
                "inputs[{i}].target has {} variates but inputs[0].target has {}; send series of different widths in separate requests",
                task.targets.len(),
                tasks[0].targets.len()
            ));
        }
        if schema(task) != first_schema {
            let names = |s: &[(String, bool, bool)], future: bool| -> Vec<String> {
                s.iter().filter(|c| !future || c.1).map(|c| c.0.clone()).collect()
            };
            let theirs = schema(task);
            return invalid(format!(
                "inputs[{i}] has covariates past {:?} / future {:?} but inputs[0] has past {:?} / future {:?} (or a covariate changes between numeric and categorical); every series needs the same covariate keys",
                names(&theirs, false),
                names(&theirs, true),
                names(&first_schema, false),
                names(&first_schema, true)
            ));
        }
    }
    let item_ids = item_ids(inputs)?;
    let starts = if all_or_none(inputs, "start", " (with parameters.freq)")? {
        let freq = parameters.freq.ok_or_else(|| {
            ApiError::Invalid(
                "`start` is given but parameters.freq is not; send a frequency such as \"D\" or \"h\"".into(),
            )
        })?;
        Some(
            inputs
                .iter()
                .zip(&tasks)
                .enumerate()
                .map(|(i, (input, task))| {
                    forecast_start(&input["start"], &freq, task.length(), &format!("inputs[{i}].start"))
                })
                .collect::<Result<Vec<_>, _>>()?,
        )
    } else {
        None
    };
    Ok(ForecastRequest {
        tasks,
        nested,
        item_ids,
        starts,
        levels: parameters.levels,
        prediction_length: horizon,
        batch_size: parameters.batch_size,
        cross_learning: parameters.cross_learning,
    })
}

/// The answer to `request` from one [`LevelForecast`] per series (at `request.levels`).
pub fn render(request: &ForecastRequest, forecasts: &[LevelForecast]) -> Value {
    let predictions: Vec<Value> = forecasts
        .iter()
        .enumerate()
        .map(|(i, forecast)| {
            let shape = |rows: Vec<Vec<f32>>| -> Value {
                if request.nested[i] {
                    Value::from(rows.into_iter().map(Value::from).collect::<Vec<_>>())
                } else {
                    Value::from(rows.into_iter().next().unwrap_or_default())
                }
            };
            let variates = 0..forecast.n_targets;
            let mut entry = Map::new();
            entry.insert(
                "mean".into(),
                shape(variates.clone().map(|v| forecast.median(v).to_vec()).collect()),
            );
            for (l, level) in request.levels.iter().enumerate() {
                entry.insert(
                    level.label.clone(),
                    shape(variates.clone().map(|v| forecast.series(v, l)).collect()),
                );
            }
            if let Some(ids) = &request.item_ids {
                entry.insert("item_id".into(), ids[i].clone());
            }
            if let Some(starts) = &request.starts {
                entry.insert("start".into(), Value::from(starts[i].clone()));
            }
            Value::Object(entry)
        })
        .collect();
    serde_json::json!({ "predictions": predictions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn series(n: usize) -> Vec<f64> {
        (0..n).map(|t| t as f64).collect()
    }

    fn error(payload: Value) -> String {
        match from_value(&payload) {
            Err(ApiError::Invalid(m)) => m,
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn univariate_defaults() {
        let r = from_value(&json!({"inputs": [{"target": [1, 2, null, 4, 5]}]})).unwrap();
        assert_eq!(r.prediction_length, 1);
        assert_eq!(r.levels.len(), 9);
        assert_eq!(r.levels[0].label, "0.1");
        assert!(r.tasks[0].targets[0][2].is_nan());
        assert!(!r.nested[0] && !r.cross_learning && r.batch_size == 256);
    }

    #[test]
    fn multivariate_target_and_covariates() {
        let r = from_value(&json!({
            "inputs": [{"target": [series(6), series(6)],
                        "past_covariates": {"promo": [0, 1, 0, 1, 0, 1], "kind": ["a", "b", null, "a", "b", "a"]},
                        "future_covariates": {"promo": [1, 0]}}],
            "parameters": {"prediction_length": 2}
        }))
        .unwrap();
        let task = &r.tasks[0];
        assert_eq!(task.targets.len(), 2);
        assert!(r.nested[0]);
        let kind = task.covariates.iter().find(|c| c.name == "kind").unwrap();
        assert!(matches!(&kind.past, CovariateValues::Categorical(v) if v[2].is_none()));
        assert!(kind.future.is_none());
        assert_eq!(r.rows(), 4);
        assert!(!r.mergeable(), "ordinal categories of a group depend on the call");
    }

    #[test]
    fn starts_advance_by_the_series_length() {
        let r = from_value(&json!({
            "inputs": [{"target": series(10), "start": "2024-01-01T01:00:00", "item_id": "a"},
                       {"target": series(5), "start": "2024-01-01", "item_id": 7}],
            "parameters": {"freq": "h"}
        }))
        .unwrap();
        assert_eq!(r.starts.unwrap(), vec!["2024-01-01T11:00:00", "2024-01-01T05:00:00"]);
        assert_eq!(r.item_ids.unwrap(), vec![json!("a"), json!(7)]);
    }

    #[test]
    fn each_rule_has_its_message() {
        let cases = [
            (json!({"inputs": [{"target": [1, 2, 3, 4]}]}), "at least 5"),
            (json!({"inputs": []}), "empty"),
            (
                json!({"inputs": [{"target": series(5)}], "parameters": {"prediction_length": 0}}),
                "1..=1024",
            ),
            (
                json!({"inputs": [{"target": series(5)}], "parameters": {"prediction_length": 1025}}),
                "1..=1024",
            ),
            (
                json!({"inputs": [{"target": series(5), "item_id": "a"}, {"target": series(5)}]}),
                "1 of 2",
            ),
            (
                json!({"inputs": [{"target": series(5), "item_id": "a"}, {"target": series(5), "item_id": "a"}]}),
                "unique",
            ),
            (
                json!({"inputs": [{"target": series(5), "start": "2024-01-01"}]}),
                "freq",
            ),
            (
                json!({"inputs": [{"target": series(5), "start": "2024-01-01"}], "parameters": {"freq": "fortnight"}}),
                "not a frequency",
            ),
            (
                json!({"inputs": [{"target": series(5), "start": "yesterday"}], "parameters": {"freq": "D"}}),
                "not a timestamp",
            ),
            (
                json!({"inputs": [{"target": series(5), "past_covariates": {"x": series(5)}}, {"target": series(5)}]}),
                "same covariate keys",
            ),
            (
                json!({"inputs": [{"target": series(5), "past_covariates": {"x": series(5)}, "future_covariates": {"y": [1]}}]}),
                "past_covariates lacks",
            ),
            (
                json!({"inputs": [{"target": series(5), "past_covariates": {"x": series(4)}}]}),
                "has 4 values, the target has 5",
            ),
            (
                json!({"inputs": [{"target": series(5), "past_covariates": {"x": series(5)}, "future_covariates": {"x": [1, 2]}}]}),
                "prediction_length is 1",
            ),
            (
                json!({"inputs": [{"target": series(5)}], "parameters": {"quantile_levels": [0.5, 1.0]}}),
                "strictly between 0 and 1",
            ),
            (
                json!({"inputs": [{"target": series(5)}], "parameters": {"quantile_levels": [0.5, 0.5]}}),
                "twice",
            ),
            (json!({"inputs": [{"target": [1, 2, 3, 4, 1e39]}]}), "32-bit"),
            (
                json!({"inputs": [{"target": [1, 2, "3", 4, 5]}]}),
                "target[2] must be a number or null",
            ),
            (json!({"inputs": [{"target": [series(5), series(6)]}]}), "same length"),
            (
                json!({"inputs": [{"target": series(5)}, {"target": [series(5), series(5)]}]}),
                "variates",
            ),
            (
                json!({"inputs": [{"target": series(5), "past_covariates": {"x": [1, "a", 1, 1, 1]}}]}),
                "categorical",
            ),
            (
                json!({"inputs": [{"target": series(5)}], "parameters": {"horizon": 3}}),
                "unknown key `horizon`",
            ),
            (
                json!({"inputs": [{"target": series(5)}], "parameters": {"cross_learning": true, "predict_batches_jointly": false}}),
                "disagree",
            ),
            (json!({"series": []}), "unknown key `series`"),
        ];
        for (payload, expected) in cases {
            let message = error(payload.clone());
            assert!(message.contains(expected), "{payload}: {message}");
        }
        let many = json!({"inputs": vec![json!({"target": series(5)}); MAX_SERIES + 1]});
        assert!(error(many).contains("at most 1000"));
    }

    #[test]
    fn malformed_json_is_a_400_naming_null() {
        let err = parse_payload(b"{\"inputs\": [{\"target\": [1, NaN]}]}").unwrap_err();
        assert!(matches!(&err, ApiError::Malformed(m) if m.contains("null")), "{err:?}");
    }

    #[test]
    fn json_lines_errors_name_the_line() {
        let body = b"{\"inputs\": [{\"target\": [1,2,3,4,5]}]}\n\n{\"inputs\": [{\"target\": [1]}]}\n";
        let err = parse_json_lines(body).unwrap_err();
        assert!(err.to_string().starts_with("line 3: "), "{err}");
        let ok = parse_json_lines(
            b"{\"inputs\": [{\"target\": [1,2,3,4,5]}]}\r\n{\"inputs\": [{\"target\": [1,2,3,4,5,6]}]}",
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
    }

    #[test]
    fn the_deprecated_alias_sets_cross_learning() {
        let r =
            from_value(&json!({"inputs": [{"target": series(5)}], "parameters": {"predict_batches_jointly": true}}))
                .unwrap();
        assert!(r.cross_learning && !r.mergeable());
    }
}
