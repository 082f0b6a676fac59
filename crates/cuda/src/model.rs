//! [`CudaModel`]: the model description run on a GPU, one bucket (device arena, and in
//! compiled mode one CUDA graph) per shape, with a one-way fallback to the CPU eager executor.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chronos2::encoder::{self, Optimizations, Pass};
use chronos2::executor::{GroupLayout, Precision};
use chronos2::{Chronos2Model, Config, ForwardPass, ModelInput, ModelOutput};
use chronos2_kernels::pool::Pool;
use cudarc::driver::sys::{CUgraphInstantiate_flags, CUstreamCaptureMode};
use cudarc::driver::CudaGraph;

use crate::error::CudaError;
use crate::executor::{BucketMemory, CudaExecutor};
use crate::gpu::Gpu;
use crate::weights::DeviceWeights;

/// How a [`CudaModel`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CudaOptions {
    /// The GPU (`cuda:N`).
    pub ordinal: usize,
    /// Precision of the encoder blocks' products (bf16: bf16 × bf16 → f32 in cuBLAS).
    pub precision: Precision,
    /// Compiled mode: one CUDA graph per shape bucket, captured on the bucket's first call
    /// (after one warm-up pass) and replayed; `false` is GPU eager mode, the same steps
    /// launched one by one.
    pub graphs: bool,
    /// Exact rewrites of the pass (as the CPU's compiled mode).
    pub optimizations: Optimizations,
}

impl Default for CudaOptions {
    fn default() -> Self {
        Self {
            ordinal: 0,
            precision: Precision::Float32,
            graphs: true,
            optimizations: Optimizations::ALL,
        }
    }
}

/// Counters of a [`CudaModel`] (a snapshot).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CudaStats {
    /// The GPU's name, once opened.
    pub device_name: Option<String>,
    /// Bytes of weights on the GPU.
    pub weight_bytes: usize,
    /// Shape buckets set up (device arena allocated).
    pub buckets: usize,
    /// CUDA graphs captured.
    pub graphs_captured: usize,
    /// Time of the calls that set up a bucket (allocation, warm-up pass, capture, first replay).
    pub first_call_time: Duration,
    /// Forward calls served.
    pub calls: usize,
    /// Times the model fell back to the CPU (at most 1: the fallback is one-way).
    pub fallbacks: usize,
    /// Why it fell back, if it did.
    pub fallback_reason: Option<String>,
}

/// A captured graph.
struct Graph(CudaGraph);

// SAFETY: a CUDA graph may be launched from any thread as long as calls on it are
// serialised; every use is under the model's mutex.
unsafe impl Send for Graph {}

/// One shape bucket: its pass, memory and graph.
struct Bucket {
    pass: Pass,
    memory: BucketMemory,
    graph: Option<Graph>,
}

/// What lives on the GPU.
struct GpuState {
    gpu: Gpu,
    weights: DeviceWeights,
    buckets: Vec<Bucket>,
    pairs: Vec<(i64, usize)>,
    first_rows: Vec<usize>,
}

/// Why a GPU call did not produce an answer.
enum Failure {
    /// The input is wrong (reported to the caller, no fallback).
    Input(chronos2::Error),
    /// The GPU failed (fall back).
    Gpu(CudaError),
}

impl From<CudaError> for Failure {
    fn from(e: CudaError) -> Self {
        Self::Gpu(e)
    }
}

impl From<cudarc::driver::DriverError> for Failure {
    fn from(e: cudarc::driver::DriverError) -> Self {
        Self::Gpu(e.into())
    }
}

/// Chronos-2 on an NVIDIA GPU: the model description ([`chronos2::encoder`]) run by the CUDA
/// executor, weights uploaded once. Any GPU error (no driver, out of memory, a failed launch)
/// switches the process to the CPU eager executor for good, with one warning, counted.
pub struct CudaModel {
    eager: Arc<Chronos2Model>,
    fallback: OnceLock<Arc<Chronos2Model>>,
    pool: Arc<Pool>,
    options: CudaOptions,
    state: Mutex<Option<GpuState>>,
    fallen_back: AtomicBool,
    reason: Mutex<Option<String>>,
    calls: AtomicUsize,
    stats: Mutex<CudaStats>,
}

impl CudaModel {
    /// Opens the GPU, compiles the kernels and uploads the weights of `eager`; the CPU
    /// fallback runs on `pool`. If the GPU cannot be used the model starts fallen back (one
    /// warning, counted): it never fails.
    pub fn new(eager: Arc<Chronos2Model>, options: CudaOptions, pool: Arc<Pool>) -> Self {
        let model = Self {
            eager,
            fallback: OnceLock::new(),
            pool,
            options,
            state: Mutex::new(None),
            fallen_back: AtomicBool::new(false),
            reason: Mutex::new(None),
            calls: AtomicUsize::new(0),
            stats: Mutex::new(CudaStats::default()),
        };
        match model.open() {
            Ok(state) => {
                if let Ok(mut stats) = model.stats.lock() {
                    stats.device_name = Some(state.gpu.name().to_string());
                    stats.weight_bytes = state.weights.bytes();
                }
                if let Ok(mut slot) = model.state.lock() {
                    *slot = Some(state);
                }
            }
            Err(e) => model.fall_back(&e),
        }
        model
    }

    fn open(&self) -> Result<GpuState, CudaError> {
        let config = self.eager.config();
        let gpu = Gpu::open(self.options.ordinal, config.d_kv)?;
        let weights = DeviceWeights::upload(&gpu, self.eager.weights(), self.options.precision)?;
        gpu.synchronize()?;
        Ok(GpuState {
            gpu,
            weights,
            buckets: Vec::new(),
            pairs: Vec::new(),
            first_rows: Vec::new(),
        })
    }

    /// The model configuration.
    pub fn config(&self) -> &Config {
        self.eager.config()
    }

    /// The options.
    pub fn options(&self) -> CudaOptions {
        self.options
    }

    /// The eager model (the fallback's weights).
    pub fn eager(&self) -> &Arc<Chronos2Model> {
        &self.eager
    }

    /// Whether the model has fallen back to the CPU for the rest of the process.
    pub fn has_fallen_back(&self) -> bool {
        self.fallen_back.load(Ordering::SeqCst)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> CudaStats {
        let mut stats = self.stats.lock().map(|s| s.clone()).unwrap_or_default();
        stats.calls = self.calls.load(Ordering::SeqCst);
        stats.fallbacks = usize::from(self.has_fallen_back());
        stats.fallback_reason = self.reason.lock().ok().and_then(|r| r.clone());
        stats
    }

    /// Switches to the CPU for good, warning once.
    fn fall_back(&self, error: &CudaError) {
        if !self.fallen_back.swap(true, Ordering::SeqCst) {
            // Never panic on a closed or full stderr (`eprintln!` would).
            let _ = writeln!(
                std::io::stderr(),
                "warning: GPU executor failed ({error}); using the CPU eager executor for the rest of this process"
            );
            if let Ok(mut slot) = self.reason.lock() {
                *slot = Some(error.to_string());
            }
            if let Ok(mut state) = self.state.lock() {
                *state = None;
            }
        }
    }

    /// Makes the model fail as a GPU error would, so the fallback can be tested on machines
    /// with and without a GPU.
    pub fn simulate_gpu_failure(&self, what: &str) {
        self.fall_back(&CudaError::Driver(format!("simulated: {what}")));
    }

    /// The CPU eager forward pass in this model's precision.
    fn cpu(&self, input: &ModelInput) -> Result<ModelOutput, chronos2::Error> {
        let model = match self.options.precision {
            Precision::BFloat16 => self.fallback.get_or_init(|| Arc::new(self.eager.rounded_to_bf16())),
            _ => &self.eager,
        };
        model.forward_in(input, &self.pool, self.options.precision)
    }

    /// The forward pass into `out` (its allocation reused).
    ///
    /// # Errors
    /// Input errors; GPU errors never surface: they switch to the CPU.
    pub fn forward_into(&self, input: &ModelInput, out: &mut ModelOutput) -> Result<(), chronos2::Error> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if !self.has_fallen_back() {
            input.validate(self.config())?;
            match self.run_gpu(input, out) {
                Ok(()) => return Ok(()),
                Err(Failure::Input(e)) => return Err(e),
                Err(Failure::Gpu(e)) => self.fall_back(&e),
            }
        }
        *out = self.cpu(input)?;
        Ok(())
    }

    /// Sets up the buckets of these shapes ahead of time, `(rows, context length, horizon)`,
    /// each row its own group, no covariates (in compiled mode: warm-up pass and capture).
    /// Returns the time spent.
    ///
    /// # Errors
    /// Input errors for shapes the model refuses (a GPU failure falls back instead).
    pub fn warm_up(&self, shapes: &[(usize, usize, usize)]) -> Result<Duration, chronos2::Error> {
        let started = Instant::now();
        for &(rows, length, horizon) in shapes {
            let patches = horizon
                .div_ceil(self.config().patch_size)
                .clamp(1, self.config().max_output_patches);
            let input = ModelInput::new(vec![0.0; rows * length], rows)?.with_output_patches(patches);
            self.forward_into(&input, &mut ModelOutput::empty())?;
        }
        Ok(started.elapsed())
    }

    fn run_gpu(&self, input: &ModelInput, out: &mut ModelOutput) -> Result<(), Failure> {
        let config = self.config();
        let mut guard = self
            .state
            .lock()
            .map_err(|_| CudaError::Driver("the GPU state was poisoned".into()))?;
        let Some(state) = guard.as_mut() else {
            return Err(Failure::Gpu(CudaError::Driver("the GPU was released".into())));
        };
        state.gpu.bind()?;
        GroupLayout::first_rows_into(input, &mut state.pairs, &mut state.first_rows);
        let found = state
            .buckets
            .iter()
            .position(|b| fits(config, &b.pass, input, &state.first_rows));
        let started = Instant::now();
        let index = match found {
            Some(index) => index,
            None => {
                let layout = GroupLayout::from_first_rows(state.first_rows.clone());
                let pass = Pass::new(
                    config,
                    input.length(),
                    input.num_output_patches(),
                    input.future_covariates().is_some(),
                    layout,
                    self.options.optimizations,
                );
                let memory = BucketMemory::new(&state.gpu, config, &pass, &state.weights)?;
                state.buckets.push(Bucket {
                    pass,
                    memory,
                    graph: None,
                });
                state.buckets.len() - 1
            }
        };
        let GpuState {
            gpu, weights, buckets, ..
        } = state;
        let bucket = &mut buckets[index];
        let (mut exec, stats, acts) = CudaExecutor::new(gpu, weights, config, &mut bucket.memory);
        let pass = &bucket.pass;
        encoder::load_input(&mut exec, config, pass, input, &acts, stats).map_err(Failure::Input)?;
        exec.finish()?;
        let mut captured = false;
        match (&bucket.graph, self.options.graphs) {
            (Some(graph), _) => graph.0.launch()?,
            (None, false) => encoder::compute(&mut exec, config, pass, &acts),
            (None, true) => {
                // Warm-up pass (cuBLAS picks its kernels, modules load), then the capture.
                encoder::compute(&mut exec, config, pass, &acts);
                exec.finish()?;
                gpu.synchronize()?;
                gpu.stream()
                    .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)?;
                encoder::compute(&mut exec, config, pass, &acts);
                let graph = gpu.stream().end_capture(CUgraphInstantiate_flags(0));
                exec.finish()?;
                let graph = graph?.ok_or_else(|| CudaError::Driver("the stream capture produced no graph".into()))?;
                graph.upload()?;
                graph.launch()?;
                bucket.graph = Some(Graph(graph));
                captured = true;
            }
        }
        encoder::read_output(&mut exec, config, pass, &acts, stats, out);
        exec.finish()?;
        if found.is_none() {
            if let Ok(mut s) = self.stats.lock() {
                s.buckets += 1;
                s.graphs_captured += usize::from(captured);
                s.first_call_time += started.elapsed();
            }
        }
        Ok(())
    }
}

/// Whether `input` (with `first_rows`, its canonical group layout) runs on `pass`'s bucket.
fn fits(config: &Config, pass: &Pass, input: &ModelInput, first_rows: &[usize]) -> bool {
    pass.rows == input.rows()
        && pass.patches == chronos2::patching::context_patches(config, input.length())
        && pass.output_patches == input.num_output_patches()
        && pass.covariates == input.future_covariates().is_some()
        && pass.layout.first_rows() == first_rows
}

impl ForwardPass for CudaModel {
    fn config(&self) -> &Config {
        CudaModel::config(self)
    }

    fn forward(&self, input: &ModelInput) -> Result<ModelOutput, chronos2::Error> {
        let mut out = ModelOutput::empty();
        self.forward_into(input, &mut out)?;
        Ok(out)
    }

    fn plans_built(&self) -> usize {
        self.stats().buckets
    }

    fn fallbacks(&self) -> usize {
        usize::from(self.has_fallen_back())
    }
}
