//! The eager-vs-compiled decision, by explicit criteria (the original system's rule: speedup
//! above 1.5x, 100 % success, MAE difference < 2 %, equal or better profitability), each shown as
//! pass/fail with its measured value. Profitability is compared as a difference of total
//! returns in percentage points with a stated tolerance, never as a ratio: the original
//! `x > 1.1 · y` rule misranks negative returns (with y = -10 %, x = -10.5 % passes it).

use serde::Serialize;

/// Thresholds of the decision (all configurable).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Thresholds {
    /// Compiled must be more than this many times faster (ratio of median latencies).
    pub min_speedup: f64,
    /// Minimum success rate of the compiled mode, in %.
    pub min_success_pct: f64,
    /// Maximum |MAE_compiled - MAE_eager| / MAE_eager, in %.
    pub max_mae_difference_pct: f64,
    /// Compiled total return may trail eager's by at most this many percentage points.
    pub return_tolerance_pp: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_speedup: 1.5,
            min_success_pct: 100.0,
            max_mae_difference_pct: 2.0,
            return_tolerance_pp: 0.0,
        }
    }
}

/// What was measured for one setup.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Measurements {
    /// Median eager latency / median compiled latency.
    pub speedup: f64,
    /// Success rate of the eager mode, %.
    pub eager_success_pct: f64,
    /// Success rate of the compiled mode, %.
    pub compiled_success_pct: f64,
    /// MAE of each mode (same windows).
    pub eager_mae: f64,
    /// MAE of the compiled mode.
    pub compiled_mae: f64,
    /// Total return of each mode's strategy, as a fraction.
    pub eager_return: f64,
    /// Total return of the compiled mode's strategy.
    pub compiled_return: f64,
}

/// One criterion's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Criterion {
    /// What is tested.
    pub name: String,
    /// The measured value, formatted with its unit.
    pub measured: String,
    /// The rule, formatted.
    pub rule: String,
    /// Whether it holds.
    pub pass: bool,
}

/// The decision.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    /// Every criterion.
    pub criteria: Vec<Criterion>,
    /// All criteria hold: enable compiled mode.
    pub enable_compiled: bool,
}

/// `(compiled - eager) / eager` in %; 0 when both are 0, infinite when only eager is 0.
pub fn relative_difference_pct(eager: f64, compiled: f64) -> f64 {
    if eager == compiled {
        0.0
    } else if eager == 0.0 {
        f64::INFINITY
    } else {
        100.0 * (compiled - eager) / eager.abs()
    }
}

/// Decides eager against compiled by the criteria. A NaN measurement fails its criterion.
pub fn decide(m: &Measurements, t: &Thresholds) -> Verdict {
    decide_between(m, t, ["eager", "compiled"])
}

/// Decides by the criteria, the measurements' `eager`/`compiled` fields standing for the
/// baseline and the candidate named by `labels`.
pub fn decide_between(m: &Measurements, t: &Thresholds, labels: [&str; 2]) -> Verdict {
    let [baseline, candidate] = labels;
    let mae_difference = relative_difference_pct(m.eager_mae, m.compiled_mae);
    let return_difference_pp = 100.0 * (m.compiled_return - m.eager_return);
    let criteria = vec![
        Criterion {
            name: "speedup".into(),
            measured: format!("{:.2}x", m.speedup),
            rule: format!("> {:.2}x", t.min_speedup),
            pass: m.speedup > t.min_speedup,
        },
        Criterion {
            name: "success rate".into(),
            measured: format!(
                "{candidate} {:.1}%, {baseline} {:.1}%",
                m.compiled_success_pct, m.eager_success_pct
            ),
            rule: format!(">= {:.1}%", t.min_success_pct),
            pass: m.compiled_success_pct >= t.min_success_pct,
        },
        Criterion {
            name: "MAE difference".into(),
            measured: format!("{mae_difference:+.4}%"),
            rule: format!("abs. difference < {:.2}%", t.max_mae_difference_pct),
            pass: mae_difference.abs() < t.max_mae_difference_pct,
        },
        Criterion {
            name: "profitability".into(),
            measured: format!(
                "{candidate} {:+.2}% vs {baseline} {:+.2}%: {return_difference_pp:+.3} pp",
                100.0 * m.compiled_return,
                100.0 * m.eager_return
            ),
            rule: format!("difference >= -{:.3} pp", t.return_tolerance_pp),
            pass: return_difference_pp >= -t.return_tolerance_pp,
        },
    ];
    Verdict {
        enable_compiled: criteria.iter().all(|c| c.pass),
        criteria,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Measurements {
        Measurements {
            speedup: 2.0,
            eager_success_pct: 100.0,
            compiled_success_pct: 100.0,
            eager_mae: 100.0,
            compiled_mae: 100.5,
            eager_return: 0.05,
            compiled_return: 0.05,
        }
    }

    #[test]
    fn all_pass_enables_compiled() {
        let v = decide(&base(), &Thresholds::default());
        assert!(v.enable_compiled, "{v:?}");
    }

    #[test]
    fn each_threshold_can_fail() {
        let t = Thresholds::default();
        let slow = Measurements { speedup: 1.5, ..base() };
        assert!(!decide(&slow, &t).criteria[0].pass, "1.5x is not > 1.5x");
        let flaky = Measurements {
            compiled_success_pct: 99.9,
            ..base()
        };
        assert!(!decide(&flaky, &t).enable_compiled);
        let drift = Measurements {
            compiled_mae: 102.0,
            ..base()
        };
        assert!(!decide(&drift, &t).criteria[2].pass, "2% is not < 2%");
        let nan = Measurements {
            speedup: f64::NAN,
            ..base()
        };
        assert!(!decide(&nan, &t).enable_compiled);
    }

    #[test]
    fn negative_returns_compare_by_difference() {
        let t = Thresholds::default();
        // -5% vs -10%: compiled is better by 5 pp (a ratio rule 1.1·x would get this wrong).
        let better = Measurements {
            eager_return: -0.10,
            compiled_return: -0.05,
            ..base()
        };
        assert!(decide(&better, &t).criteria[3].pass);
        let worse = Measurements {
            eager_return: -0.05,
            compiled_return: -0.10,
            ..base()
        };
        let v = decide(&worse, &t);
        assert!(!v.criteria[3].pass);
        assert!(
            v.criteria[3].measured.contains("-5.000 pp"),
            "{}",
            v.criteria[3].measured
        );
        // Sign change: eager -1%, compiled +1%: +2 pp.
        let flip = Measurements {
            eager_return: -0.01,
            compiled_return: 0.01,
            ..base()
        };
        assert!(decide(&flip, &t).criteria[3].pass);
    }

    #[test]
    fn ties_pass_and_tolerance_applies() {
        let t = Thresholds::default();
        let tie = Measurements {
            compiled_return: -0.03,
            eager_return: -0.03,
            compiled_mae: 100.0,
            ..base()
        };
        let v = decide(&tie, &t);
        assert!(v.criteria[2].pass && v.criteria[3].pass);
        let slightly_worse = Measurements {
            compiled_return: 0.0499,
            ..base()
        };
        assert!(!decide(&slightly_worse, &t).criteria[3].pass);
        let tolerant = Thresholds {
            return_tolerance_pp: 0.05,
            ..t
        };
        assert!(decide(&slightly_worse, &tolerant).criteria[3].pass);
        assert_eq!(relative_difference_pct(0.0, 0.0), 0.0);
    }
}
