//! [`CompiledModel`]: the plan cache, the one-way fallback to eager, and the counters.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chronos2::encoder::{Optimizations, Pass};
use chronos2::executor::{GroupLayout, Precision};
use chronos2::{Chronos2Model, Config, ForwardPass, ModelInput, ModelOutput};
use chronos2_kernels::pool::Pool;

use crate::cache::{self, CacheOutcome, CachePolicy};
use crate::packed_model::PackedModel;
use crate::plan::Plan;
use crate::settings::CompileMode;
use crate::EngineError;

/// Counters of a compiled model (a snapshot).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineStats {
    /// Plans built so far (our "compilations"; a new shape bucket builds one).
    pub plans_built: usize,
    /// Time spent building plans.
    pub planning_time: Duration,
    /// Time spent preparing the weights at load: repacking them, or mapping and checking a
    /// compile-cache entry.
    pub packing_time: Duration,
    /// What the compile cache did at load.
    pub cache: CacheOutcome,
    /// Bytes of repacked weights held (halved for the blocks in bf16).
    pub packed_bytes: usize,
    /// Precision of the encoder blocks.
    pub precision: Precision,
    /// Plans currently cached.
    pub plans_cached: usize,
    /// Forward calls served.
    pub calls: usize,
    /// Times the engine fell back to eager (at most 1: the fallback is one-way).
    pub fallbacks: usize,
    /// Why it fell back, if it did.
    pub fallback_reason: Option<String>,
}

/// How a [`CompiledModel`] plans and computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompileOptions {
    /// Plan cache policy and autotuning.
    pub mode: CompileMode,
    /// Exact rewrites of the pass.
    pub optimizations: Optimizations,
    /// Precision of the encoder blocks' linear layers.
    pub precision: Precision,
}

impl Default for CompileOptions {
    fn default() -> Self {
        Self {
            mode: CompileMode::ReduceOverhead,
            optimizations: Optimizations::ALL,
            precision: Precision::Float32,
        }
    }
}

/// The plan cache and the matching scratch (kept together under one lock).
struct Cache {
    plans: Vec<Plan>,
    clock: u64,
    /// Scratch for canonicalising group ids without allocating: (id, row) pairs.
    pairs: Vec<(i64, usize)>,
    /// Scratch: first row of each row's group.
    first_rows: Vec<usize>,
}

/// The compiled (planned) Chronos-2 engine: the model description run by the planned
/// executor.
///
/// Weights are repacked once at construction. Each shape bucket gets a plan on first use
/// (or at [`warm_up`](Self::warm_up)); later calls with that bucket allocate nothing and plan
/// nothing. A call that fails, or produces a non-finite value the eager model does not, switches
/// the process to the eager model for good, logs the reason once and counts it.
pub struct CompiledModel {
    eager: Arc<Chronos2Model>,
    packed: PackedModel,
    pool: Arc<Pool>,
    options: CompileOptions,
    cache: Mutex<Cache>,
    max_plan_bytes: usize,
    fallen_back: AtomicBool,
    fallback_reason: Mutex<Option<String>>,
    plans_built: AtomicUsize,
    planning_nanos: AtomicU64,
    packing_time: Duration,
    cache_outcome: CacheOutcome,
    calls: AtomicUsize,
}

impl CompiledModel {
    /// Repacks the weights of `eager` for the planned executor, every optimisation on, in
    /// f32; all kernels run on `pool`.
    pub fn new(eager: Arc<Chronos2Model>, mode: CompileMode, pool: Arc<Pool>) -> Self {
        Self::with_options(
            eager,
            CompileOptions {
                mode,
                ..CompileOptions::default()
            },
            pool,
        )
    }

    /// As [`new`](Self::new), with chosen options: the compile mode, the optimisations (each
    /// is exact; switching one off shows what it gains, and its parity is tested on its own)
    /// and the precision of the encoder blocks.
    pub fn with_options(eager: Arc<Chronos2Model>, options: CompileOptions, pool: Arc<Pool>) -> Self {
        match Self::with_cache(eager, options, pool, CachePolicy::Never, None) {
            Ok(model) => model,
            Err(never) => unreachable!("without a cache, preparing cannot fail: {never}"),
        }
    }

    /// As [`with_options`](Self::with_options), the prepared weights read from (or written
    /// to) the compile cache in `dir` as `policy` says (see [`crate::cache`]); any warning
    /// (a stale entry rebuilt, a directory that cannot be written) is printed once on stderr
    /// and kept in [`EngineStats::cache`].
    ///
    /// # Errors
    /// [`EngineError::Cache`] when `policy` is `only` and there is no valid entry.
    pub fn with_cache(
        eager: Arc<Chronos2Model>,
        options: CompileOptions,
        pool: Arc<Pool>,
        policy: CachePolicy,
        dir: Option<&std::path::Path>,
    ) -> Result<Self, EngineError> {
        let started = Instant::now();
        let prepared = cache::prepare(
            &eager,
            options.optimizations.fused_qkv,
            options.precision,
            &pool,
            policy,
            dir,
        )?;
        for note in prepared.rejected.iter().chain(prepared.outcome.warning().as_ref()) {
            let _ = writeln!(std::io::stderr(), "warning: {note}");
        }
        Ok(Self {
            packing_time: started.elapsed(),
            cache_outcome: prepared.outcome,
            eager,
            packed: prepared.model,
            pool,
            options,
            cache: Mutex::new(Cache {
                plans: Vec::new(),
                clock: 0,
                pairs: Vec::new(),
                first_rows: Vec::new(),
            }),
            max_plan_bytes: usize::MAX,
            fallen_back: AtomicBool::new(false),
            fallback_reason: Mutex::new(None),
            plans_built: AtomicUsize::new(0),
            planning_nanos: AtomicU64::new(0),
            calls: AtomicUsize::new(0),
        })
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
        self.options.mode
    }

    /// The optimisations applied.
    pub fn optimizations(&self) -> Optimizations {
        self.options.optimizations
    }

    /// The precision of the encoder blocks.
    pub fn precision(&self) -> Precision {
        self.options.precision
    }

    /// The pool every kernel runs on.
    pub fn pool(&self) -> &Pool {
        &self.pool
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
            cache: self.cache_outcome.clone(),
            packed_bytes: self.packed.bytes(),
            precision: self.options.precision,
            plans_cached: self.cache.lock().map(|c| c.plans.len()).unwrap_or(0),
            calls: self.calls.load(Ordering::SeqCst),
            fallbacks: usize::from(self.has_fallen_back()),
            fallback_reason: self.fallback_reason.lock().ok().and_then(|r| r.clone()),
        }
    }

    /// Builds the plans for these shapes ahead of time: `(rows, context length, horizon)`,
    /// each row its own group, no covariates, and runs each new plan once on a flat synthetic
    /// series, so that its buffers (and the packed weights) are in memory before the first
    /// real call: a warmed process neither faults pages in nor grows later. Returns the time
    /// spent.
    ///
    /// # Errors
    /// [`EngineError::Plan`] if a bucket exceeds the plan memory limit;
    /// [`EngineError::Model`] for a shape the model refuses.
    pub fn warm_up(&self, shapes: &[(usize, usize, usize)]) -> Result<Duration, EngineError> {
        let started = Instant::now();
        let config = self.config();
        for &(rows, length, horizon) in shapes {
            let output_patches = horizon.div_ceil(config.patch_size).clamp(1, config.max_output_patches);
            let layout = GroupLayout::from_first_rows((0..rows).collect());
            let pass = Pass::new(
                config,
                length,
                output_patches,
                false,
                layout,
                self.options.optimizations,
            );
            let mut cache = self.cache.lock().map_err(|_| EngineError::Poisoned)?;
            if !cache
                .plans
                .iter()
                .any(|p| p.pass.layout == pass.layout && same_bucket(&p.pass, &pass))
            {
                let mut plan = self.build(pass)?;
                let input = ModelInput::new(vec![0.0; rows * length], rows)?.with_output_patches(output_patches);
                input.validate(config)?;
                plan.run(config, &self.packed, &self.pool, &input, &mut ModelOutput::empty())?;
                cache.plans.push(plan);
            }
        }
        Ok(started.elapsed())
    }

    fn build(&self, pass: Pass) -> Result<Plan, EngineError> {
        let bytes = Plan::bytes(self.config(), &pass, self.pool.threads(), self.options.precision);
        if bytes > self.max_plan_bytes {
            return Err(EngineError::Plan(format!(
                "a plan for {} rows x {} patches needs {bytes} bytes, over the limit of {}",
                pass.rows, pass.patches, self.max_plan_bytes
            )));
        }
        let started = Instant::now();
        let mut plan = Plan::new(self.config(), pass, self.pool.threads(), self.options.precision);
        if self.options.mode == CompileMode::MaxAutotune {
            plan.autotune(self.config(), &self.packed, &self.pool);
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
                Ok(()) => {
                    // A non-finite value is the engine's fault only if the reference path
                    // computes a finite answer; otherwise the input (or the weights) caused
                    // it, and the caller's input checks report it.
                    *out = self.eager.forward_with(input, &self.pool)?;
                    if out.quantile_preds.iter().all(|v| v.is_finite()) {
                        self.fall_back("the compiled pass produced a non-finite value".into());
                    }
                    return Ok(());
                }
                Err(EngineError::Model(e)) => return Err(EngineError::Model(e)),
                Err(e) => self.fall_back(e.to_string()),
            }
        }
        *out = self.eager.forward_with(input, &self.pool)?;
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
            // Never panic on a closed or full stderr (`eprintln!` would).
            let _ = writeln!(
                std::io::stderr(),
                "warning: compiled engine failed ({reason}); using eager mode for the rest of this process"
            );
            if let Ok(mut slot) = self.fallback_reason.lock() {
                *slot = Some(reason);
            }
        }
    }

    fn run_compiled(&self, input: &ModelInput, out: &mut ModelOutput) -> Result<(), EngineError> {
        let config = self.config();
        let mut cache = self.cache.lock().map_err(|_| EngineError::Poisoned)?;
        let cache = &mut *cache;
        GroupLayout::first_rows_into(input, &mut cache.pairs, &mut cache.first_rows);
        let found = cache
            .plans
            .iter()
            .position(|p| p.fits(config, input, &cache.first_rows));
        let index = match found {
            Some(i) => i,
            None => {
                let layout = GroupLayout::from_first_rows(cache.first_rows.clone());
                let covariates = input.future_covariates().is_some();
                let pass = Pass::new(
                    config,
                    input.length(),
                    input.num_output_patches(),
                    covariates,
                    layout,
                    self.options.optimizations,
                );
                let plan = self.build(pass)?;
                if cache.plans.len() >= self.options.mode.plan_cache_limit() {
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
        plan.run(config, &self.packed, &self.pool, input, out)
    }
}

/// Whether two passes have the same sizes (the layout is compared apart).
fn same_bucket(a: &Pass, b: &Pass) -> bool {
    (a.rows, a.patches, a.output_patches, a.covariates) == (b.rows, b.patches, b.output_patches, b.covariates)
}

impl ForwardPass for CompiledModel {
    fn config(&self) -> &Config {
        CompiledModel::config(self)
    }

    fn forward(&self, input: &ModelInput) -> Result<ModelOutput, chronos2::Error> {
        CompiledModel::forward(self, input).map_err(EngineError::into_model_error)
    }

    fn plans_built(&self) -> usize {
        self.plans_built.load(Ordering::SeqCst)
    }

    fn fallbacks(&self) -> usize {
        usize::from(self.has_fallen_back())
    }
}
