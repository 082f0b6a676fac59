//! The server's Prometheus metrics, served at `/metrics` in the text exposition format.
//!
//! | metric | type | what |
//! |---|---|---|
//! | `chronos2_requests_total{route,status}` | counter | answered requests |
//! | `chronos2_request_duration_seconds{route}` | histogram | time from request to answer |
//! | `chronos2_model_call_duration_seconds` | histogram | one batch through the pipeline |
//! | `chronos2_batch_rows` | histogram | model rows per batch |
//! | `chronos2_batch_requests` | histogram | requests merged per batch |
//! | `chronos2_queue_depth` | gauge | requests waiting for the model |
//! | `chronos2_series_forecast_total` | counter | series answered |
//! | `chronos2_model_ready` | gauge | 1 once the model is loaded and planned |

use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// Every metric of the server, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Answered requests by route and status.
    pub requests: IntCounterVec,
    /// Request latency by route.
    pub request_duration: HistogramVec,
    /// Latency of one batch through the pipeline.
    pub model_call_duration: Histogram,
    /// Model rows per batch.
    pub batch_rows: Histogram,
    /// Requests per batch.
    pub batch_requests: Histogram,
    /// Requests waiting for the model.
    pub queue_depth: IntGauge,
    /// Series answered.
    pub series: IntCounter,
    /// 1 once the model is ready.
    pub ready: IntGauge,
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn new() -> Self {
        let registry = Registry::new();
        // 1 ms .. ~65 s.
        let seconds = exponential_buckets(0.001, 2.0, 17).expect("valid buckets");
        let requests = IntCounterVec::new(
            Opts::new("chronos2_requests_total", "Requests answered, by route and HTTP status"),
            &["route", "status"],
        )
        .expect("valid metric");
        let request_duration = HistogramVec::new(
            HistogramOpts::new("chronos2_request_duration_seconds", "Time from request to answer")
                .buckets(seconds.clone()),
            &["route"],
        )
        .expect("valid metric");
        let model_call_duration = Histogram::with_opts(
            HistogramOpts::new(
                "chronos2_model_call_duration_seconds",
                "One batch through the forecast pipeline",
            )
            .buckets(seconds),
        )
        .expect("valid metric");
        let counts = exponential_buckets(1.0, 2.0, 11).expect("valid buckets");
        let batch_rows = Histogram::with_opts(
            HistogramOpts::new("chronos2_batch_rows", "Model rows per batch").buckets(counts.clone()),
        )
        .expect("valid metric");
        let batch_requests = Histogram::with_opts(
            HistogramOpts::new("chronos2_batch_requests", "Requests merged into one batch").buckets(counts),
        )
        .expect("valid metric");
        let queue_depth =
            IntGauge::new("chronos2_queue_depth", "Requests waiting for the model").expect("valid metric");
        let series = IntCounter::new("chronos2_series_forecast_total", "Series answered").expect("valid metric");
        let ready =
            IntGauge::new("chronos2_model_ready", "1 once the model is loaded and planned").expect("valid metric");
        for metric in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(request_duration.clone()),
            Box::new(model_call_duration.clone()),
            Box::new(batch_rows.clone()),
            Box::new(batch_requests.clone()),
            Box::new(queue_depth.clone()),
            Box::new(series.clone()),
            Box::new(ready.clone()),
        ] {
            registry.register(metric).expect("metric names are unique");
        }
        Self {
            registry,
            requests,
            request_duration,
            model_call_duration,
            batch_rows,
            batch_requests,
            queue_depth,
            series,
            ready,
        }
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("the text encoder writes to memory");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
