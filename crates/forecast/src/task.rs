//! Forecasting tasks in users' terms (target series and covariates) and their conversion into
//! model rows, as the reference's `preprocess.from_list_of_dicts` / `from_data_frame` do.
//!
//! A task's rows are, in order: its targets, its past-only covariates, its known-future
//! covariates. Categorical covariates are encoded over all tasks at once: target encoding when
//! tasks have exactly one target, ordinal codes otherwise.

use std::collections::BTreeMap;

use crate::error::ForecastError;

/// Values of one covariate.
#[derive(Clone, Debug, PartialEq)]
pub enum CovariateValues {
    /// Numbers; NaN = missing.
    Numeric(Vec<f32>),
    /// Categories; `None` = missing (a category of its own, as in the reference).
    Categorical(Vec<Option<String>>),
}

impl CovariateValues {
    fn len(&self) -> usize {
        match self {
            Self::Numeric(v) => v.len(),
            Self::Categorical(v) => v.len(),
        }
    }
}

/// A named covariate: its past values (aligned with the target) and, for a known-future
/// covariate, its values over the forecast horizon.
#[derive(Clone, Debug, PartialEq)]
pub struct Covariate {
    /// Column name.
    pub name: String,
    /// Values over the context, same length as the target.
    pub past: CovariateValues,
    /// Values over the horizon (length H) when known in advance; `None` for past-only.
    pub future: Option<CovariateValues>,
}

/// One forecasting task: one or more target series forecast jointly (a multivariate group),
/// with optional covariates.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// Target rows, all of the same length T (NaN = missing).
    pub targets: Vec<Vec<f32>>,
    /// Covariates (any order; past-only ones are placed before known-future ones).
    pub covariates: Vec<Covariate>,
}

impl Task {
    /// A univariate task.
    pub fn univariate(series: Vec<f32>) -> Self {
        Self {
            targets: vec![series],
            covariates: Vec::new(),
        }
    }

    /// A multivariate task (rows share a group).
    pub fn multivariate(rows: Vec<Vec<f32>>) -> Self {
        Self {
            targets: rows,
            covariates: Vec::new(),
        }
    }

    /// Adds a covariate.
    pub fn with_covariate(mut self, covariate: Covariate) -> Self {
        self.covariates.push(covariate);
        self
    }

    /// History length T.
    pub fn length(&self) -> usize {
        self.targets.first().map_or(0, Vec::len)
    }
}

/// A task converted to model rows (the reference's `PreparedInput`).
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedTask {
    /// `(rows, T)`: targets, past-only covariates, known-future covariates.
    pub context: Vec<Vec<f32>>,
    /// `(rows, H)`: NaN for targets and past-only covariates, values for known-future ones.
    pub future: Vec<Vec<f32>>,
    /// Number of target rows (the first rows).
    pub n_targets: usize,
}

/// The categories of a covariate already known to be categorical.
fn categorical(values: &CovariateValues) -> &Vec<Option<String>> {
    match values {
        CovariateValues::Categorical(x) => x,
        CovariateValues::Numeric(_) => unreachable!("the schema was validated: this covariate is categorical"),
    }
}

/// The input rule: NaN is a missing value, an infinite value (or one beyond f32's range,
/// which became infinite on conversion) is refused, naming where it is, before the engine
/// sees it.
fn check_finite(values: &[f32], what: &str) -> Result<(), String> {
    match values.iter().position(|v| v.is_infinite()) {
        None => Ok(()),
        Some(at) => Err(format!(
            "{what} has {} at position {at} of {}; values must be finite numbers within ±3.4e38 (use an empty cell or NaN for a missing value)",
            values[at],
            values.len()
        )),
    }
}

/// Checks that all tasks share one schema and every length fits, and applies the input rule
/// ([`check_finite`]; a target row with no observed value is refused too).
fn validate(tasks: &[Task], horizon: usize) -> Result<(), ForecastError> {
    let first = tasks
        .first()
        .ok_or_else(|| ForecastError::Input("no tasks to forecast".into()))?;
    let schema = |t: &Task| -> Vec<(String, bool)> {
        let mut names: Vec<(String, bool)> = t
            .covariates
            .iter()
            .map(|c| (c.name.clone(), c.future.is_some()))
            .collect();
        names.sort();
        names
    };
    let first_schema = schema(first);
    for (i, task) in tasks.iter().enumerate() {
        let bad = |msg: String| Err(ForecastError::Input(format!("task {i}: {msg}")));
        if task.targets.is_empty() {
            return bad("has no target series".into());
        }
        if task.targets.len() != first.targets.len() {
            return bad(format!(
                "has {} targets but task 0 has {}; all tasks of one call must share a schema",
                task.targets.len(),
                first.targets.len()
            ));
        }
        let t = task.length();
        if t == 0 {
            return bad("target series is empty".into());
        }
        if task.targets.iter().any(|row| row.len() != t) {
            return bad("target rows have different lengths".into());
        }
        for (r, row) in task.targets.iter().enumerate() {
            check_finite(row, &format!("target row {r}")).or_else(bad)?;
            if row.iter().all(|v| v.is_nan()) {
                return bad(format!(
                    "target row {r} has no observed value (all {t} are missing); there is nothing to forecast from"
                ));
            }
        }
        if schema(task) != first_schema {
            return bad("covariates differ from task 0's; all tasks of one call must share a schema".into());
        }
        for c in &task.covariates {
            if c.past.len() != t {
                return bad(format!(
                    "covariate `{}` has {} past values, the target has {t}",
                    c.name,
                    c.past.len()
                ));
            }
            if let CovariateValues::Numeric(past) = &c.past {
                check_finite(past, &format!("covariate `{}`", c.name)).or_else(bad)?;
            }
            if let Some(CovariateValues::Numeric(future)) = &c.future {
                check_finite(future, &format!("the future values of covariate `{}`", c.name)).or_else(bad)?;
            }
            if let Some(future) = &c.future {
                if future.len() != horizon {
                    return bad(format!(
                        "covariate `{}` has {} future values, the horizon is {horizon}",
                        c.name,
                        future.len()
                    ));
                }
                if std::mem::discriminant(future) != std::mem::discriminant(&c.past) {
                    return bad(format!(
                        "covariate `{}` is numeric in the past but not in the future",
                        c.name
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Encodes one categorical covariate across all tasks. Returns per task (past, future) rows.
///
/// Categories are the sorted distinct non-missing past values; missing is its own slot.
/// With `target_encode`, each value becomes the smoothed per-task target mean of its category,
/// `(item_mean + sum) / (1 + count)` over finite target values (unseen future categories fall
/// back to the item mean); otherwise the ordinal code (unseen future categories become NaN).
fn encode_categorical(
    pasts: &[&Vec<Option<String>>],
    futures: &[Option<&Vec<Option<String>>>],
    targets: &[&Vec<f32>],
    target_encode: bool,
) -> Vec<(Vec<f32>, Option<Vec<f32>>)> {
    let mut categories: Vec<&String> = pasts.iter().flat_map(|p| p.iter().flatten()).collect();
    categories.sort();
    categories.dedup();
    let index: BTreeMap<&String, usize> = categories.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    let missing_slot = categories.len();
    let unseen_slot = categories.len() + 1;
    let code = |v: &Option<String>| -> usize {
        match v {
            None => missing_slot,
            Some(s) => index.get(s).copied().unwrap_or(unseen_slot),
        }
    };
    pasts
        .iter()
        .zip(futures)
        .zip(targets)
        .map(|((past, future), target)| {
            let past_codes: Vec<usize> = past.iter().map(code).collect();
            let future_codes: Option<Vec<usize>> = future.map(|f| f.iter().map(code).collect());
            if target_encode {
                // Sums and counts in f64 over finite target values, as numpy's bincount.
                let finite = || target.iter().filter(|v| v.is_finite());
                let count = finite().count();
                let item_mean = if count > 0 {
                    finite().map(|&v| v as f64).sum::<f64>() / count as f64
                } else {
                    0.0
                };
                let mut sums = vec![0.0f64; unseen_slot + 1];
                let mut counts = vec![0.0f64; unseen_slot + 1];
                for (&c, &y) in past_codes.iter().zip(target.iter()) {
                    if y.is_finite() {
                        sums[c] += y as f64;
                        counts[c] += 1.0;
                    }
                }
                let lookup = |c: usize| ((item_mean + sums[c]) / (1.0 + counts[c])) as f32;
                (
                    past_codes.iter().map(|&c| lookup(c)).collect(),
                    future_codes.map(|f| f.iter().map(|&c| lookup(c)).collect()),
                )
            } else {
                let ordinal = |c: usize| if c == unseen_slot { f32::NAN } else { c as f32 };
                (
                    past_codes.iter().map(|&c| c as f32).collect(),
                    future_codes.map(|f| f.iter().map(|&c| ordinal(c)).collect()),
                )
            }
        })
        .collect()
}

/// Converts tasks into model rows for a horizon of `horizon` steps.
///
/// # Errors
/// [`ForecastError::Input`] when tasks are empty, disagree in schema, or have lengths that do
/// not fit.
pub fn prepare_tasks(tasks: &[Task], horizon: usize) -> Result<Vec<PreparedTask>, ForecastError> {
    validate(tasks, horizon)?;
    let n_targets = tasks[0].targets.len();
    let target_encode = n_targets == 1;
    // Column order: past-only covariates then known-future ones, each sorted by name (the
    // reference sorts the keys of list-of-dict inputs).
    let mut columns: Vec<(bool, &str)> = tasks[0]
        .covariates
        .iter()
        .map(|c| (c.future.is_some(), c.name.as_str()))
        .collect();
    columns.sort();
    let mut prepared: Vec<PreparedTask> = tasks
        .iter()
        .map(|t| PreparedTask {
            context: t.targets.clone(),
            future: vec![vec![f32::NAN; horizon]; n_targets],
            n_targets,
        })
        .collect();
    for (_, name) in columns {
        let column: Vec<&Covariate> = tasks
            .iter()
            .map(|t| t.covariates.iter().find(|c| c.name == name).expect("validated schema"))
            .collect();
        let encoded: Vec<(Vec<f32>, Option<Vec<f32>>)> = match &column[0].past {
            CovariateValues::Numeric(_) => column
                .iter()
                .map(|c| {
                    let numeric = |v: &CovariateValues| match v {
                        CovariateValues::Numeric(x) => x.clone(),
                        CovariateValues::Categorical(_) => unreachable!("validated schema"),
                    };
                    (numeric(&c.past), c.future.as_ref().map(numeric))
                })
                .collect(),
            CovariateValues::Categorical(_) => {
                let pasts: Vec<_> = column.iter().map(|c| categorical(&c.past)).collect();
                let futures: Vec<_> = column.iter().map(|c| c.future.as_ref().map(categorical)).collect();
                let targets: Vec<_> = tasks.iter().map(|t| &t.targets[0]).collect();
                encode_categorical(&pasts, &futures, &targets, target_encode)
            }
        };
        for (task, (past, future)) in prepared.iter_mut().zip(encoded) {
            task.context.push(past);
            task.future.push(future.unwrap_or_else(|| vec![f32::NAN; horizon]));
        }
    }
    Ok(prepared)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cats(values: &[Option<&str>]) -> CovariateValues {
        CovariateValues::Categorical(values.iter().map(|v| v.map(String::from)).collect())
    }

    #[test]
    fn rows_are_targets_then_past_only_then_known_future() {
        let task = Task::univariate(vec![1.0, 2.0])
            .with_covariate(Covariate {
                name: "a_future".into(),
                past: CovariateValues::Numeric(vec![5.0, 6.0]),
                future: Some(CovariateValues::Numeric(vec![7.0])),
            })
            .with_covariate(Covariate {
                name: "z_past".into(),
                past: CovariateValues::Numeric(vec![3.0, 4.0]),
                future: None,
            });
        let prepared = prepare_tasks(&[task], 1).unwrap();
        assert_eq!(
            prepared[0].context,
            vec![vec![1.0, 2.0], vec![3.0, 4.0], vec![5.0, 6.0]]
        );
        assert!(prepared[0].future[0][0].is_nan() && prepared[0].future[1][0].is_nan());
        assert_eq!(prepared[0].future[2], vec![7.0]);
    }

    #[test]
    fn target_encoding_by_hand() {
        // target [1, 3, 5, NaN], categories [a, b, a, b]: item mean = 3 (finite values).
        // a: sum 6, count 2 -> (3 + 6) / 3 = 3; b: sum 3, count 1 (NaN skipped) -> (3 + 3) / 2 = 3.
        // future [b, c(unseen), None(missing, never seen)]: b -> 3, c -> item mean 3, None -> 3.
        let task = Task::univariate(vec![1.0, 3.0, 5.0, f32::NAN]).with_covariate(Covariate {
            name: "kind".into(),
            past: cats(&[Some("a"), Some("b"), Some("a"), Some("b")]),
            future: Some(cats(&[Some("b"), Some("c"), None])),
        });
        let prepared = prepare_tasks(&[task], 3).unwrap();
        assert_eq!(prepared[0].context[1], vec![3.0, 3.0, 3.0, 3.0]);
        assert_eq!(prepared[0].future[1], vec![3.0, 3.0, 3.0]);

        let task = Task::univariate(vec![2.0, 4.0, 9.0]).with_covariate(Covariate {
            name: "kind".into(),
            past: cats(&[Some("x"), Some("x"), None]),
            future: None,
        });
        // mean 5; x: (5 + 6) / 3 = 11/3; missing: (5 + 9) / 2 = 7.
        let encoded = &prepare_tasks(&[task], 1).unwrap()[0].context[1];
        assert!((encoded[0] - 11.0 / 3.0).abs() < 1e-6 && encoded[2] == 7.0);
    }

    #[test]
    fn ordinal_codes_for_multivariate_tasks() {
        let task = Task::multivariate(vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]]).with_covariate(Covariate {
            name: "kind".into(),
            past: cats(&[Some("b"), Some("a"), None]),
            future: Some(cats(&[Some("a"), Some("zzz"), None])),
        });
        let prepared = prepare_tasks(&[task], 3).unwrap();
        // Sorted categories [a, b]; missing = 2; unseen in the future = NaN.
        assert_eq!(prepared[0].context[2], vec![1.0, 0.0, 2.0]);
        let future = &prepared[0].future[2];
        assert_eq!((future[0], future[2]), (0.0, 2.0));
        assert!(future[1].is_nan());
    }

    #[test]
    fn schema_mismatch_and_bad_lengths_are_errors() {
        let plain = Task::univariate(vec![1.0; 4]);
        let with_cov = Task::univariate(vec![1.0; 4]).with_covariate(Covariate {
            name: "x".into(),
            past: CovariateValues::Numeric(vec![0.0; 3]),
            future: None,
        });
        let err = prepare_tasks(&[plain.clone(), with_cov.clone()], 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("task 1") && err.contains("schema"), "{err}");
        let err = prepare_tasks(&[with_cov], 2).unwrap_err().to_string();
        assert!(err.contains("covariate `x` has 3 past values"), "{err}");
        assert!(prepare_tasks(&[], 2).is_err());
    }

    /// The input rule: an infinite value (or one beyond f32, which became infinite)
    /// in a target or a numeric covariate is refused before the engine, naming where it is.
    #[test]
    fn infinite_values_are_refused_naming_their_position() {
        for bad in [f32::INFINITY, f32::NEG_INFINITY, 1e308f64 as f32] {
            let mut target = vec![1.0; 6];
            target[4] = bad;
            let err = prepare_tasks(&[Task::univariate(target)], 2).unwrap_err().to_string();
            assert!(
                err.contains("task 0: target row 0 has") && err.contains("position 4 of 6"),
                "{err}"
            );
        }
        let future = Task::univariate(vec![1.0; 4]).with_covariate(Covariate {
            name: "price".into(),
            past: CovariateValues::Numeric(vec![0.0; 4]),
            future: Some(CovariateValues::Numeric(vec![0.0, f32::INFINITY])),
        });
        let err = prepare_tasks(&[future], 2).unwrap_err().to_string();
        assert!(
            err.contains("future values of covariate `price` has inf at position 1"),
            "{err}"
        );
        // NaN stays a missing value.
        assert!(prepare_tasks(&[Task::univariate(vec![1.0, f32::NAN, 2.0])], 2).is_ok());
    }

    /// An all-missing target gets no forecast from nothing.
    #[test]
    fn an_all_missing_target_is_refused() {
        let err = prepare_tasks(&[Task::univariate(vec![f32::NAN; 5])], 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("target row 0 has no observed value"), "{err}");
        let err = prepare_tasks(&[Task::univariate(Vec::new())], 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("empty"), "{err}");
    }
}
