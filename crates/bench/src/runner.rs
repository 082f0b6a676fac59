//! The benchmark loops: fixed-shape cases with warm-up reported apart, and long runs on
//! varying inputs.

use std::time::{Duration, Instant};

use chronos2::{Config, ForwardPass, ModelInput};
use serde::Serialize;

use crate::machine::current_rss_bytes;
use crate::stats::Summary;

/// A named input shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ShapeCase {
    /// Name (`A`..`D`).
    pub name: &'static str,
    /// Series (rows).
    pub rows: usize,
    /// Context length per series.
    pub context: usize,
    /// Horizon.
    pub horizon: usize,
    /// All rows one group (a multivariate task) instead of one group each.
    pub grouped: bool,
}

/// The cases of the performance targets: A = 1 series, context 512, horizon 16;
/// B = 1 series, 2048, 64; C = 32 series, 512, 16; D = one 4-variate group (OHLC), 512, 16;
/// E = 256 series, 512, 16 (the backtest's default batch); F = one group of 256 rows
/// (cross-learning), 512, 16; G = 1 series, context 8192, horizon 16.
pub const SHAPE_CASES: [ShapeCase; 7] = [
    ShapeCase {
        name: "A",
        rows: 1,
        context: 512,
        horizon: 16,
        grouped: false,
    },
    ShapeCase {
        name: "B",
        rows: 1,
        context: 2048,
        horizon: 64,
        grouped: false,
    },
    ShapeCase {
        name: "C",
        rows: 32,
        context: 512,
        horizon: 16,
        grouped: false,
    },
    ShapeCase {
        name: "D",
        rows: 4,
        context: 512,
        horizon: 16,
        grouped: true,
    },
    ShapeCase {
        name: "E",
        rows: 256,
        context: 512,
        horizon: 16,
        grouped: false,
    },
    ShapeCase {
        name: "F",
        rows: 256,
        context: 512,
        horizon: 16,
        grouped: true,
    },
    ShapeCase {
        name: "G",
        rows: 1,
        context: 8192,
        horizon: 16,
        grouped: false,
    },
];

/// The case named `name` (case-insensitive).
pub fn shape_case(name: &str) -> Option<ShapeCase> {
    SHAPE_CASES.iter().copied().find(|c| c.name.eq_ignore_ascii_case(name))
}

impl ShapeCase {
    /// The model input for this case, from `series` (each at least `context` long; the last
    /// `context` values of series `r % len` are row r) or a synthetic price path.
    pub fn input(&self, config: &Config, series: &[Vec<f32>]) -> ModelInput {
        let rows: Vec<Vec<f32>> = (0..self.rows)
            .map(|r| match series.get(r % series.len().max(1)) {
                Some(s) if s.len() >= self.context => s[s.len() - self.context..].to_vec(),
                _ => (0..self.context)
                    .map(|t| 100.0 + ((t + 13 * r) as f32 * 0.05).sin() * 3.0 + t as f32 * 0.01)
                    .collect(),
            })
            .collect();
        let input = ModelInput::from_rows(&rows)
            .expect("cases have rows")
            .with_output_patches(self.horizon.div_ceil(config.patch_size).min(config.max_output_patches));
        if self.grouped {
            input.with_group_ids(vec![0; self.rows])
        } else {
            input
        }
    }
}

/// FLOPs the reference performs for one forward pass (full B×B group attention, all tokens
/// through every layer), so GFLOP/s compare across engines: `rows` series of `patches`
/// context patches and `m` output patches.
pub fn model_flops(config: &Config, rows: usize, patches: usize, m: usize) -> f64 {
    let (d, i, f, h, dk) = (
        config.d_model as f64,
        config.inner_dim() as f64,
        config.d_ff as f64,
        config.num_heads as f64,
        config.d_kv as f64,
    );
    let (p, qp) = (
        config.patch_size as f64,
        (config.num_quantiles() * config.patch_size) as f64,
    );
    let s = (patches + usize::from(config.use_reg_token) + m) as f64;
    let b = rows as f64;
    let t = b * s;
    let projections = 2.0 * t * d * 3.0 * i + 2.0 * t * i * d;
    let time_scores = 2.0 * b * h * s * s * dk * 2.0;
    let group_scores = 2.0 * s * h * b * b * dk * 2.0;
    let ffn = 2.0 * t * d * f * 2.0;
    let layer = 2.0 * projections + time_scores + group_scores + ffn;
    let embed = 2.0 * b * (patches + m) as f64 * (3.0 * p * f + f * d + 3.0 * p * d);
    let head = 2.0 * b * m as f64 * (d * f + f * qp + d * qp);
    config.num_layers as f64 * layer + embed + head
}

/// Result of one fixed-shape case in one engine.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    /// Each warm-up call, in ms (the first includes planning in compiled mode).
    pub warmup_ms: Vec<f64>,
    /// Plans built during warm-up.
    pub plans_built_in_warmup: usize,
    /// Steady-state latency, ms.
    pub steady_ms: Summary,
    /// Plans built during the steady-state calls (0 for fixed shapes).
    pub plans_built_after_warmup: usize,
    /// Fallbacks to eager during the whole case.
    pub fallbacks: usize,
    /// Steady-state calls whose output had a NaN or infinity.
    pub non_finite: usize,
    /// Steady-state calls that failed.
    pub errors: usize,
    /// Reference FLOPs per call / median time.
    pub gflops: f64,
}

/// Runs `warmup` untimed-for-stats calls (each timed and reported apart), then `runs` timed
/// calls of the same input.
pub fn run_case(engine: &dyn ForwardPass, input: &ModelInput, flops: f64, warmup: usize, runs: usize) -> CaseResult {
    let plans_at_start = engine.plans_built();
    let fallbacks_at_start = engine.fallbacks();
    let warmup_ms = (0..warmup)
        .map(|_| {
            let started = Instant::now();
            let _ = engine.forward(input);
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let plans_after_warmup = engine.plans_built();
    let (mut times, mut non_finite, mut errors) = (Vec::with_capacity(runs), 0, 0);
    for _ in 0..runs {
        let started = Instant::now();
        let outcome = engine.forward(input);
        times.push(started.elapsed().as_secs_f64() * 1e3);
        match outcome {
            Ok(out) if out.quantile_preds.iter().all(|v| v.is_finite()) => {}
            Ok(_) => non_finite += 1,
            Err(_) => errors += 1,
        }
    }
    let steady_ms = Summary::of(&times);
    CaseResult {
        warmup_ms,
        plans_built_in_warmup: plans_after_warmup - plans_at_start,
        gflops: flops / (steady_ms.median / 1e3) / 1e9,
        steady_ms,
        plans_built_after_warmup: engine.plans_built() - plans_after_warmup,
        fallbacks: engine.fallbacks() - fallbacks_at_start,
        non_finite,
        errors,
    }
}

/// Result of a long run on varying inputs.
#[derive(Clone, Debug, Serialize)]
pub struct DurationResult {
    /// Wall time of the timed loop, s.
    pub seconds: f64,
    /// Calls made.
    pub calls: usize,
    /// Calls that returned a finite forecast.
    pub successes: usize,
    /// Calls that failed.
    pub errors: usize,
    /// Calls with a non-finite value in the output.
    pub non_finite: usize,
    /// `successes / calls`, in %.
    pub success_rate_pct: f64,
    /// Calls per second.
    pub throughput_per_s: f64,
    /// Latency, ms.
    pub latency_ms: Summary,
    /// Plans built after the warm-up call.
    pub plans_built_after_warmup: usize,
    /// Fallbacks to eager.
    pub fallbacks: usize,
    /// Largest resident memory sampled in the first 10 s, bytes.
    pub rss_first_10s: Option<u64>,
    /// Largest resident memory sampled in the last 10 s, bytes.
    pub rss_last_10s: Option<u64>,
}

/// Calls the engine with `next_input(i)` for `duration` (after one warm-up call with input 0),
/// as a live trading loop would, sampling memory every call.
pub fn run_for(
    engine: &dyn ForwardPass,
    mut next_input: impl FnMut(usize) -> ModelInput,
    duration: Duration,
) -> DurationResult {
    let _ = engine.forward(&next_input(0));
    let plans_after_warmup = engine.plans_built();
    let fallbacks_at_start = engine.fallbacks();
    let started = Instant::now();
    let (mut times, mut successes, mut errors, mut non_finite) = (Vec::new(), 0, 0, 0);
    let mut rss: Vec<(f64, u64)> = Vec::new();
    let mut i = 1;
    while started.elapsed() < duration {
        let input = next_input(i);
        let call_started = Instant::now();
        let outcome = engine.forward(&input);
        times.push(call_started.elapsed().as_secs_f64() * 1e3);
        match outcome {
            Ok(out) if out.quantile_preds.iter().all(|v| v.is_finite()) => successes += 1,
            Ok(_) => non_finite += 1,
            Err(_) => errors += 1,
        }
        if let Some(bytes) = current_rss_bytes() {
            rss.push((started.elapsed().as_secs_f64(), bytes));
        }
        i += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    let calls = times.len();
    let window_max = |from: f64, to: f64| {
        rss.iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .map(|(_, b)| *b)
            .max()
    };
    DurationResult {
        seconds,
        calls,
        successes,
        errors,
        non_finite,
        success_rate_pct: if calls == 0 {
            f64::NAN
        } else {
            100.0 * successes as f64 / calls as f64
        },
        throughput_per_s: calls as f64 / seconds,
        latency_ms: Summary::of(&times),
        plans_built_after_warmup: engine.plans_built() - plans_after_warmup,
        fallbacks: engine.fallbacks() - fallbacks_at_start,
        rss_first_10s: window_max(0.0, 10.0),
        rss_last_10s: window_max((seconds - 10.0).max(0.0), seconds),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronos2::ModelOutput;
    use std::cell::Cell;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A model that counts its calls and echoes the input's first value (so a cached answer
    /// would show up as a stale value).
    struct Counting {
        calls: AtomicUsize,
        config: Config,
    }

    impl Counting {
        fn new() -> Self {
            Self {
                calls: AtomicUsize::new(0),
                config: Config::tiny(),
            }
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl ForwardPass for Counting {
        fn config(&self) -> &Config {
            &self.config
        }

        fn forward(&self, input: &ModelInput) -> Result<ModelOutput, chronos2::Error> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(ModelOutput {
                quantile_preds: vec![input.context()[0]],
                rows: 1,
                num_quantiles: 1,
                horizon: 1,
                loc: vec![0.0],
                scale: vec![1.0],
            })
        }
    }

    #[test]
    fn every_timed_call_reaches_the_model() {
        let model = Counting::new();
        let input = ModelInput::new(vec![1.0, 2.0], 1).unwrap();
        let result = run_case(&model, &input, 1e9, 2, 25);
        assert_eq!(
            model.calls(),
            27,
            "2 warm-up + 25 timed calls, none served from a cache"
        );
        assert_eq!((result.warmup_ms.len(), result.steady_ms.count), (2, 25));
    }

    #[test]
    fn long_runs_call_the_model_with_each_new_input() {
        let model = Counting::new();
        let seen = Cell::new(0usize);
        let result = run_for(
            &model,
            |i| {
                seen.set(i);
                ModelInput::new(vec![i as f32, 0.0], 1).unwrap()
            },
            Duration::from_millis(30),
        );
        assert_eq!(model.calls(), result.calls + 1);
        assert_eq!(seen.get(), result.calls);
        assert_eq!(result.success_rate_pct, 100.0);
    }

    #[test]
    fn flops_of_the_released_shape() {
        // Per row-token per layer the projections and FFN are 2·(8·D² + 2·D·d_ff) = 18.9 MFLOP.
        let config = Config::chronos2();
        let per_token_layer: f64 = 2.0 * (8.0 * 768.0 * 768.0 + 2.0 * 768.0 * 3072.0);
        assert!((per_token_layer / 1e6 - 18.87).abs() < 0.01);
        let flops = model_flops(&config, 1, 32, 1);
        // Case A: 34 tokens x 12 layers of that, plus attention, embeddings and head.
        assert!(flops > 34.0 * 12.0 * per_token_layer && flops < 1.1 * 34.0 * 12.0 * per_token_layer);
    }
}
