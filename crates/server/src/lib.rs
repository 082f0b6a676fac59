//! `chronos2 serve`: a forecast server with the hosted (SageMaker) Chronos-2 endpoint's JSON
//! contract, dynamic batching and Prometheus metrics. It owns HTTP and queueing only; the
//! forecasts come from [`chronos2_forecast::predict`] over any [`chronos2::ForwardPass`].
//!
//! * [`contract`]: the payload (`inputs`, `parameters`), its validation rules and limits, and
//!   the answer (`predictions`).
//! * [`Batcher`]: the bounded queue and the worker thread that owns the model and merges
//!   concurrent requests into model calls without changing any answer.
//! * [`routes`]: `POST /invocations` (`/predict`), `GET /ping` (`/health`), `/info`, `/metrics`.
//! * [`serve`]: binds the routes to a listener and shuts down gracefully, answering requests
//!   in flight.
//!
//! ```no_run
//! use chronos2::{Chronos2Model, Config, RandomInit};
//! use chronos2_server::{serve, termination, LoadedModel, ServerOptions};
//! # async fn run() -> Result<(), chronos2_server::ServeError> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let loader = Box::new(|| {
//!     Ok(LoadedModel {
//!         model: Box::new(Chronos2Model::random(Config::tiny(), 0, RandomInit::Default)),
//!         label: "tiny random".into(),
//!         mode: "eager".into(),
//!         dtype: "float32".into(),
//!     })
//! });
//! serve(listener, ServerOptions::default(), loader, termination()).await
//! # }
//! ```

#![deny(missing_docs)]
#![deny(unsafe_code)]

mod batcher;
pub mod client;
pub mod contract;
mod error;
pub mod freq;
pub mod load;
mod metrics;
pub mod routes;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use batcher::{Answer, BatchLimits, Batcher, LoadedModel, Loader, ModelInfo};
pub use error::ApiError;
pub use metrics::Metrics;

/// The server's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// Queue and batching limits.
    pub limits: BatchLimits,
    /// Largest request body; larger ones are answered 413.
    pub max_payload_bytes: usize,
}

impl Default for ServerOptions {
    /// 32 rows per call, 2 ms wait, 256 waiting requests, 6 MiB bodies (SageMaker's limit).
    fn default() -> Self {
        Self {
            limits: BatchLimits {
                max_batch_rows: 32,
                max_wait: Duration::from_millis(2),
                max_queue: 256,
            },
            max_payload_bytes: 6 << 20,
        }
    }
}

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The model could not be loaded.
    #[error("cannot load the model: {0}")]
    Load(String),
    /// The listener failed.
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves on `listener` until `shutdown` completes: the model loads on the worker thread
/// (`/ping` answers 503 meanwhile), then requests are answered. On shutdown the listener
/// closes, requests in flight are answered, and the worker drains the queue.
///
/// # Errors
/// [`ServeError::Load`] when `loader` fails (the server then stops), [`ServeError::Io`] when
/// the listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    options: ServerOptions,
    loader: Loader,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (failed, load_failure) = tokio::sync::oneshot::channel::<()>();
    let loader: Loader = Box::new(move || {
        loader().inspect_err(|_| {
            let _ = failed.send(());
        })
    });
    let metrics = Metrics::new();
    let (batcher, worker) = Batcher::start(loader, options.limits, metrics.clone());
    let state = Arc::new(routes::AppState {
        batcher,
        metrics,
        max_payload_bytes: options.max_payload_bytes,
    });
    let stop = async move {
        tokio::select! {
            () = shutdown => {}
            Ok(()) = load_failure => {}
        }
    };
    axum::serve(listener, routes::router(state))
        .with_graceful_shutdown(stop)
        .await?;
    // Every handle to the queue is gone with the router: the worker drains and stops.
    let outcome = tokio::task::spawn_blocking(move || worker.join())
        .await
        .map_err(|e| ServeError::Load(e.to_string()))?;
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(message)) => Err(ServeError::Load(message)),
        Err(_) => Err(ServeError::Load("the model worker panicked".into())),
    }
}

/// Completes on SIGTERM or Ctrl-C (SIGINT).
pub async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
