//! Dynamic batching: requests wait in a bounded queue; one worker thread owns the model,
//! merges compatible requests into one pipeline call of at most `max_batch_rows` rows
//! (waiting at most `max_wait` after the oldest one arrived), never splitting a request, and
//! answers each request with its own forecasts.
//!
//! Merging never changes an answer beyond float rounding: requests share a call only when
//! they share horizon, target width and covariates, and never with cross-learning or with
//! ordinal-coded categorical covariates (see [`ForecastRequest::mergeable`]). Every series
//! keeps its own group, so the model never mixes them.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chronos2::{Config, ForwardPass};
use chronos2_forecast::{at_levels, outside_trained_range, predict, ForecastError, LevelForecast, PredictOptions};
use tokio::sync::oneshot;

use crate::contract::ForecastRequest;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// A loaded model and how to describe it at `/info`.
pub struct LoadedModel {
    /// The executor (eager model or compiled engine), planned and ready.
    pub model: Box<dyn ForwardPass + Send>,
    /// What the model is called (directory, repo id or `chronos2-mini`).
    pub label: String,
    /// `eager` or `compiled`.
    pub mode: String,
    /// The compute dtype.
    pub dtype: String,
}

/// Loads the model on the worker thread, so the server answers `/ping` with 503 meanwhile.
pub type Loader = Box<dyn FnOnce() -> Result<LoadedModel, String> + Send>;

/// What `/info` reports once the model is loaded.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    /// The model's label.
    pub label: String,
    /// `eager` or `compiled`.
    pub mode: String,
    /// The compute dtype.
    pub dtype: String,
    /// The model's configuration.
    pub config: Config,
}

/// Limits of the queue and of merged calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most model rows per merged call (a larger request runs alone, in chunks of its
    /// `batch_size`).
    pub max_batch_rows: usize,
    /// Longest wait for more requests after the oldest of a batch arrived.
    pub max_wait: Duration,
    /// Most requests waiting; more are refused with 429.
    pub max_queue: usize,
}

/// One request's answer: its forecasts at its levels, and the warnings the reference logs.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// One per series, in request order.
    pub forecasts: Vec<LevelForecast>,
    /// Long horizon, clamped quantile levels, ...
    pub warnings: Vec<String>,
}

type Reply = oneshot::Sender<Result<Answer, ApiError>>;

struct Job {
    request: Arc<ForecastRequest>,
    enqueued: Instant,
    reply: Reply,
}

/// The handle requests are submitted through (cheap to clone). The worker stops once every
/// handle is dropped and the queue is drained.
#[derive(Clone)]
pub struct Batcher {
    sender: Sender<Job>,
    waiting: Arc<AtomicUsize>,
    info: Arc<OnceLock<ModelInfo>>,
    limits: BatchLimits,
    metrics: Metrics,
}

impl Batcher {
    /// Starts the worker thread: it runs `loader`, then serves the queue. The thread's result
    /// is the loader's error, if loading failed.
    pub fn start(loader: Loader, limits: BatchLimits, metrics: Metrics) -> (Self, JoinHandle<Result<(), String>>) {
        let (sender, receiver) = mpsc::channel();
        let batcher = Self {
            sender,
            waiting: Arc::new(AtomicUsize::new(0)),
            info: Arc::new(OnceLock::new()),
            limits,
            metrics,
        };
        let worker = Worker {
            receiver,
            waiting: Arc::clone(&batcher.waiting),
            limits,
            metrics: batcher.metrics.clone(),
            pending: VecDeque::new(),
        };
        let info = Arc::clone(&batcher.info);
        let handle = std::thread::Builder::new()
            .name("chronos2-batcher".into())
            .spawn(move || worker.run(loader, &info))
            .expect("the OS can start a thread");
        (batcher, handle)
    }

    /// The loaded model's description; `None` while loading.
    pub fn info(&self) -> Option<&ModelInfo> {
        self.info.get()
    }

    /// The queue and batch limits.
    pub fn limits(&self) -> BatchLimits {
        self.limits
    }

    /// Queues a request; the receiver gets its answer.
    ///
    /// # Errors
    /// 503 while the model loads, 429 when `max_queue` requests are waiting.
    pub fn submit(
        &self,
        request: Arc<ForecastRequest>,
    ) -> Result<oneshot::Receiver<Result<Answer, ApiError>>, ApiError> {
        if self.info().is_none() {
            return Err(ApiError::Unavailable(
                "the model is still loading; retry when /ping answers 200".into(),
            ));
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.limits.max_queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::QueueFull(format!(
                "{} requests are already waiting for the model (--max-queue); retry later",
                self.limits.max_queue
            )));
        }
        self.metrics.queue_depth.inc();
        let (reply, answer) = oneshot::channel();
        let job = Job {
            request,
            enqueued: Instant::now(),
            reply,
        };
        if self.sender.send(job).is_err() {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            self.metrics.queue_depth.dec();
            return Err(ApiError::Unavailable("the server is shutting down".into()));
        }
        Ok(answer)
    }
}

/// The worker thread's state.
struct Worker {
    receiver: Receiver<Job>,
    waiting: Arc<AtomicUsize>,
    limits: BatchLimits,
    metrics: Metrics,
    /// Requests taken off the channel that did not fit the batch being built.
    pending: VecDeque<Job>,
}

impl Worker {
    fn run(mut self, loader: Loader, info: &OnceLock<ModelInfo>) -> Result<(), String> {
        let loaded = loader()?;
        let _ = info.set(ModelInfo {
            label: loaded.label,
            mode: loaded.mode,
            dtype: loaded.dtype,
            config: loaded.model.config().clone(),
        });
        self.metrics.ready.set(1);
        let model = loaded.model;
        while let Some(batch) = self.next_batch() {
            self.waiting.fetch_sub(batch.len(), Ordering::SeqCst);
            self.metrics.queue_depth.sub(batch.len() as i64);
            // Requests whose clients went away are not computed.
            let batch: Vec<Job> = batch.into_iter().filter(|j| !j.reply.is_closed()).collect();
            if !batch.is_empty() {
                self.forecast(&*model, batch);
            }
        }
        Ok(())
    }

    /// The next batch: the oldest request, then compatible ones until the batch is full or
    /// `max_wait` after the oldest arrived. `None` once every handle is dropped.
    fn next_batch(&mut self) -> Option<Vec<Job>> {
        let first = match self.pending.pop_front() {
            Some(job) => job,
            None => self.receiver.recv().ok()?,
        };
        let mut rows = first.request.rows();
        let schema = first.request.schema();
        let deadline = first.enqueued + self.limits.max_wait;
        let mergeable = first.request.mergeable();
        let mut batch = vec![first];
        if !mergeable {
            return Some(batch);
        }
        let max = self.limits.max_batch_rows;
        let compatible = |job: &Job| job.request.mergeable() && job.request.schema() == schema;
        let mut i = 0;
        while i < self.pending.len() && rows < max {
            let job = &self.pending[i];
            if compatible(job) && rows + job.request.rows() <= max {
                rows += job.request.rows();
                batch.extend(self.pending.remove(i));
            } else {
                i += 1;
            }
        }
        while rows < max {
            let left = deadline.saturating_duration_since(Instant::now());
            let job = if left.is_zero() {
                self.receiver.try_recv().map_err(|_| RecvTimeoutError::Timeout)
            } else {
                self.receiver.recv_timeout(left)
            };
            let Ok(job) = job else { break };
            if !compatible(&job) {
                self.pending.push_back(job);
            } else if rows + job.request.rows() <= max {
                rows += job.request.rows();
                batch.push(job);
            } else {
                self.pending.push_back(job);
                break;
            }
        }
        Some(batch)
    }

    /// Runs one batch through the pipeline and answers its requests. When a merged call
    /// fails, each request is retried alone so that one bad request fails alone.
    fn forecast(&self, model: &dyn ForwardPass, batch: Vec<Job>) {
        let first = &batch[0].request;
        let mut options = PredictOptions::new(first.prediction_length);
        options.batch_size = batch.iter().map(|j| j.request.batch_size).min().unwrap_or(1);
        options.cross_learning = first.cross_learning;
        let tasks: Vec<_> = batch.iter().flat_map(|j| j.request.tasks.iter().cloned()).collect();
        let rows: usize = batch.iter().map(|j| j.request.rows()).sum();
        self.metrics.batch_rows.observe(rows as f64);
        self.metrics.batch_requests.observe(batch.len() as f64);
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| predict(model, &tasks, &options)));
        self.metrics
            .model_call_duration
            .observe(started.elapsed().as_secs_f64());
        let prediction = match result {
            Ok(Ok(prediction)) => prediction,
            Ok(Err(_)) | Err(_) if batch.len() > 1 => {
                for job in batch {
                    self.forecast(model, vec![job]);
                }
                return;
            }
            Ok(Err(error)) => return answer_all(batch, Err(api_error(error))),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "no message".into());
                eprintln!("error: the model panicked ({what}); the server keeps running");
                return answer_all(batch, Err(ApiError::Internal(format!("the model failed: {what}"))));
            }
        };
        let config = model.config();
        let Some(median) = config.median_index() else {
            let message = "the model has no 0.5 quantile level to answer the mean with".to_string();
            return answer_all(batch, Err(ApiError::Internal(message)));
        };
        let mut forecasts = prediction.forecasts.into_iter();
        for job in batch {
            let levels: Vec<f32> = job.request.levels.iter().map(|l| l.level).collect();
            let mut warnings = prediction.warnings.clone();
            if outside_trained_range(&levels, &config.quantiles) {
                warnings.push(format!(
                    "quantile levels {levels:?} are not all within the range the model was trained on ([{}, {}]); predictions outside it are set to the outermost trained levels, which may affect their quality",
                    config.quantiles[0],
                    config.quantiles[config.quantiles.len() - 1]
                ));
            }
            for warning in &warnings {
                eprintln!("warning: {warning}");
            }
            let answer = Answer {
                forecasts: forecasts
                    .by_ref()
                    .take(job.request.tasks.len())
                    .map(|f| at_levels(&f, &config.quantiles, &levels, median))
                    .collect(),
                warnings,
            };
            self.metrics.series.inc_by(answer.forecasts.len() as u64);
            let _ = job.reply.send(Ok(answer));
        }
    }
}

/// Sends the same result to every request of a batch.
fn answer_all(batch: Vec<Job>, result: Result<Answer, ApiError>) {
    for job in batch {
        let _ = job.reply.send(result.clone());
    }
}

/// Input errors are the client's (422); anything else is the server's (500).
fn api_error(error: ForecastError) -> ApiError {
    match error {
        ForecastError::Input(message) | ForecastError::Model(chronos2::Error::Input(message)) => {
            ApiError::Invalid(message)
        }
        other => ApiError::Internal(format!("the model failed: {other}")),
    }
}
