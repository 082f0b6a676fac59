//! [`CompiledModel`]: the plan cache, the one-way fallback to eager, and the counters.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chronos2::forward::context_patches;
use chronos2::{Chronos2Model, Config, ModelInput, ModelOutput};

use crate::packed_model::PackedModel;
use crate::plan::{autotune, Plan, PlanKey};
use crate::settings::CompileMode;
use crate::EngineError;

/// Counters of a compiled model (a snapshot).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineStats {
    /// Plans built so far (our "compilations"; a new shape bucket builds one).
    pub plans_built: usize,
    /// Time spent building plans.
    pub planning_time: Duration,
    /// Time spent repacking the weights at load.
    pub packing_time: Duration,
    /// Plans currently cached.
    pub plans_cached: usize,
    /// Forward calls served.
    pub calls: usize,
    /// Times the engine fell back to eager (at most 1: the fallback is one-way).
    pub fallbacks: usize,
    /// Why it fell back, if it did.
    pub fallback_reason: Option<String>,
}

/// The plan cache and the matching scratch (kept together under one lock).
struct Cache {
    plans: Vec<Plan>,
    clock: u64,
    /// Scratch for canonicalising group ids without allocating: (id, row) pairs.
    pairs: Vec<(i64, usize)>,
    /// Scratch: first row of each row's group.
    group_of: Vec<usize>,
}

/// The compiled (planned) Chronos-2 engine.
///
/// Weights are repacked once at construction. Each shape bucket gets a plan on first use
/// (or at [`warm_up`](Self::warm_up)); later calls with that bucket allocate nothing and plan
/// nothing. A call that fails or produces a non-finite value switches the process to the eager
/// model for good, logs the reason once and counts it.
pub struct CompiledModel {
    eager: Arc<Chronos2Model>,
    packed: PackedModel,
    mode: CompileMode,
    cache: Mutex<Cache>,
    max_plan_bytes: usize,
    fallen_back: AtomicBool,
    fallback_reason: Mutex<Option<String>>,
    plans_built: AtomicUsize,
    planning_nanos: AtomicU64,
    packing_time: Duration,
    calls: AtomicUsize,
}

impl CompiledModel {
    /// Repacks the weights of `eager` for the compiled kernels.
    pub fn new(eager: Arc<Chronos2Model>, mode: CompileMode) -> Self {
        let started = Instant::now();
        let packed = PackedModel::new(eager.config(), eager.weights());
        Self {
            packing_time: started.elapsed(),
            eager,
            packed,
            mode,
            cache: Mutex::new(Cache {
                plans: Vec::new(),
                clock: 0,
                pairs: Vec::new(),
                group_of: Vec::new(),
            }),
            max_plan_bytes: usize::MAX,
            fallen_back: AtomicBool::new(false),
            fallback_reason: Mutex::new(None),
            plans_built: AtomicUsize::new(0),
            planning_nanos: AtomicU64::new(0),
            calls: AtomicUsize::new(0),
        }
    }

    /// Refuses to plan buckets whose arena would exceed `bytes` (such calls fall back to eager).
    pub fn with_max_plan_bytes(mut self, bytes: usize) -> Self {
        self.max_plan_bytes = bytes;
        self
    }

    /// The model configuration.
    pub fn config(&self) -> &Config {
        self.eager.config()
    }

    /// The eager model this engine falls back to.
    pub fn eager(&self) -> &Arc<Chronos2Model> {
        &self.eager
    }

    /// The compile mode.
    pub fn mode(&self) -> CompileMode {
        self.mode
    }

    /// Whether the engine has fallen back to eager for the rest of the process.
    pub fn has_fallen_back(&self) -> bool {
        self.fallen_back.load(Ordering::SeqCst)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            plans_built: self.plans_built.load(Ordering::SeqCst),
            planning_time: Duration::from_nanos(self.planning_nanos.load(Ordering::SeqCst)),
            packing_time: self.packing_time,
            plans_cached: self.cache.lock().map(|c| c.plans.len()).unwrap_or(0),
            calls: self.calls.load(Ordering::SeqCst),
            fallbacks: usize::from(self.has_fallen_back()),
            fallback_reason: self.fallback_reason.lock().ok().and_then(|r| r.clone()),
        }
    }

    /// Builds the plans for these shapes ahead of time: `(rows, context length, horizon)`,
    /// each row its own group, no covariates. Returns the planning time.
    ///
    /// # Errors
    /// [`EngineError::Plan`] if a bucket exceeds the plan memory limit.
    pub fn warm_up(&self, shapes: &[(usize, usize, usize)]) -> Result<Duration, EngineError> {
        let started = Instant::now();
        let config = self.config();
        for &(rows, length, horizon) in shapes {
            let key = PlanKey {
                rows,
                patches: context_patches(config, length),
                output_patches: horizon.div_ceil(config.patch_size).clamp(1, config.max_output_patches),
                covariates: false,
                group_of: (0..rows).collect(),
            };
            let mut cache = self.cache.lock().map_err(|_| EngineError::Poisoned)?;
            if !cache.plans.iter().any(|p| p.key == key) {
                let plan = self.build(key)?;
                cache.plans.push(plan);
            }
        }
        Ok(started.elapsed())
    }

    fn build(&self, key: PlanKey) -> Result<Plan, EngineError> {
        let bytes = Plan::arena_bytes(self.config(), &key);
        if bytes > self.max_plan_bytes {
            return Err(EngineError::Plan(format!(
                "a plan for {} rows x {} patches needs {bytes} bytes, over the limit of {}",
                key.rows, key.patches, self.max_plan_bytes
            )));
        }
        let started = Instant::now();
        let mut plan = Plan::new(self.config(), key);
        if self.mode == CompileMode::MaxAutotune {
            autotune(&self.packed, &mut plan);
        }
        self.plans_built.fetch_add(1, Ordering::SeqCst);
        self.planning_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::SeqCst);
        Ok(plan)
    }

    /// The forward pass into `out` (whose allocation is reused: with a warm plan and a
    /// large-enough `out`, nothing is allocated).
    ///
    /// # Errors
    /// Input errors (as the eager model reports them); engine failures never surface: they
    /// switch to eager.
    pub fn forward_into(&self, input: &ModelInput, out: &mut ModelOutput) -> Result<(), EngineError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if !self.has_fallen_back() {
            input.validate(self.config())?;
            match self.run_compiled(input, out) {
                Ok(()) if out.quantile_preds.iter().all(|v| v.is_finite()) => return Ok(()),
                Ok(()) => self.fall_back("the compiled pass produced a non-finite value".into()),
                Err(EngineError::Model(e)) => return Err(EngineError::Model(e)),
                Err(e) => self.fall_back(e.to_string()),
            }
        }
        *out = self.eager.forward(input)?;
        Ok(())
    }

    /// The forward pass (allocates the output).
    ///
    /// # Errors
    /// As [`forward_into`](Self::forward_into).
    pub fn forward(&self, input: &ModelInput) -> Result<ModelOutput, EngineError> {
        let mut out = ModelOutput::empty();
        self.forward_into(input, &mut out)?;
        Ok(out)
    }

    fn fall_back(&self, reason: String) {
        if !self.fallen_back.swap(true, Ordering::SeqCst) {
            eprintln!("warning: compiled engine failed ({reason}); using eager mode for the rest of this process");
            if let Ok(mut slot) = self.fallback_reason.lock() {
                *slot = Some(reason);
            }
        }
    }

    fn run_compiled(&self, input: &ModelInput, out: &mut ModelOutput) -> Result<(), EngineError> {
        let config = self.config();
        let mut cache = self.cache.lock().map_err(|_| EngineError::Poisoned)?;
        let cache = &mut *cache;
        canonical_groups(input, &mut cache.pairs, &mut cache.group_of);
        let (rows, patches) = (input.rows(), context_patches(config, input.length()));
        let (m, covariates) = (input.num_output_patches(), input.future_covariates().is_some());
        let found = cache.plans.iter().position(|p| {
            let k = &p.key;
            k.rows == rows
                && k.patches == patches
                && k.output_patches == m
                && k.covariates == covariates
                && k.group_of == cache.group_of
        });
        let index = match found {
            Some(i) => i,
            None => {
                let key = PlanKey {
                    rows,
                    patches,
                    output_patches: m,
                    covariates,
                    group_of: cache.group_of.clone(),
                };
                let plan = self.build(key)?;
                if cache.plans.len() >= self.mode.plan_cache_limit() {
                    let oldest = (0..cache.plans.len())
                        .min_by_key(|&i| cache.plans[i].last_used)
                        .unwrap_or(0);
                    cache.plans.swap_remove(oldest);
                }
                cache.plans.push(plan);
                cache.plans.len() - 1
            }
        };
        cache.clock += 1;
        let plan = &mut cache.plans[index];
        plan.last_used = cache.clock;
        plan.run(config, &self.packed, input, out)
    }
}

/// Fills `group_of[r]` with the first row of row r's group, using `pairs` as scratch
/// (allocation-free once the scratch is large enough).
fn canonical_groups(input: &ModelInput, pairs: &mut Vec<(i64, usize)>, group_of: &mut Vec<usize>) {
    let rows = input.rows();
    group_of.clear();
    match input.explicit_group_ids() {
        None => group_of.extend(0..rows),
        Some(ids) => {
            pairs.clear();
            pairs.extend(ids.iter().copied().zip(0..rows));
            pairs.sort_unstable();
            group_of.resize(rows, 0);
            let mut start = 0;
            while start < pairs.len() {
                let id = pairs[start].0;
                let end = pairs[start..]
                    .iter()
                    .position(|p| p.0 != id)
                    .map_or(pairs.len(), |o| start + o);
                // Sorted by (id, row): the first pair of the run has the group's first row.
                let first = pairs[start].1;
                for &(_, row) in &pairs[start..end] {
                    group_of[row] = first;
                }
                start = end;
            }
        }
    }
}
