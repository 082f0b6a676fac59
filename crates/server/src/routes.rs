//! The HTTP routes: SageMaker's `/invocations` and `/ping`, their aliases `/predict` and
//! `/health`, `/info` and `/metrics`; a layer that counts and times every request.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::batcher::Batcher;
use crate::contract::{self, ForecastRequest};
use crate::error::ApiError;
use crate::metrics::Metrics;

/// What every handler shares.
pub struct AppState {
    /// The queue to the model.
    pub batcher: Batcher,
    /// The metrics.
    pub metrics: Metrics,
    /// Largest body accepted (`--max-payload-bytes`).
    pub max_payload_bytes: usize,
}

/// The server's routes over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/invocations", post(invocations))
        .route("/predict", post(invocations))
        .route("/ping", get(ping))
        .route("/health", get(ping))
        .route("/info", get(info))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), track))
        .with_state(state)
}

/// Counts and times every request by route and status.
async fn track(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .request_duration
        .with_label_values(&[&route])
        .observe(started.elapsed().as_secs_f64());
    state
        .metrics
        .requests
        .with_label_values(&[&route, response.status().as_str()])
        .inc();
    response
}

/// Whether the body is JSON Lines (one payload per line) rather than one JSON payload.
fn is_json_lines(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .is_some_and(|v| {
            matches!(
                v.as_str(),
                "application/jsonlines"
                    | "application/x-jsonlines"
                    | "application/jsonl"
                    | "application/x-ndjson"
                    | "application/ndjson"
            )
        })
}

/// Reads the body, refusing more than `limit` bytes.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    let too_large = |size: String| {
        ApiError::TooLarge(format!(
            "the body is {size} bytes, over the limit of {limit}; split the request or raise --max-payload-bytes"
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared.filter(|&l| l > limit as u64) {
        return Err(too_large(length.to_string()));
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if e.into_inner().is::<http_body_util::LengthLimitError>() {
            too_large("more than".into())
        } else {
            ApiError::Malformed("the body could not be read to its end".into())
        }
    })
}

/// `POST /invocations`: forecasts one JSON payload, or each line of a JSON Lines body.
async fn invocations(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let bytes = read_body(&headers, body, state.max_payload_bytes).await?;
    let lines = is_json_lines(&headers);
    let requests: Vec<Arc<ForecastRequest>> = if lines {
        contract::parse_json_lines(&bytes)?
    } else {
        vec![contract::parse_payload(&bytes)?]
    }
    .into_iter()
    .map(Arc::new)
    .collect();
    let pending = requests
        .iter()
        .map(|r| state.batcher.submit(Arc::clone(r)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut answers = Vec::with_capacity(requests.len());
    for (request, receiver) in requests.iter().zip(pending) {
        let answer = receiver
            .await
            .map_err(|_| ApiError::Internal("the model worker stopped before answering".into()))??;
        answers.push(contract::render(request, &answer.forecasts));
    }
    if lines {
        let mut text = String::new();
        for answer in &answers {
            text.push_str(&answer.to_string());
            text.push('\n');
        }
        Ok(([(header::CONTENT_TYPE, "application/jsonlines")], text).into_response())
    } else {
        Ok(Json(answers.pop().unwrap_or(Value::Null)).into_response())
    }
}

/// `GET /ping`: 200 once the model is loaded and planned, 503 before.
async fn ping(State(state): State<Arc<AppState>>) -> Response {
    if state.batcher.info().is_some() {
        (StatusCode::OK, Json(json!({"status": "ready"}))).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "loading"}))).into_response()
    }
}

/// `GET /info`: model, configuration, mode, dtype, version and the server's limits.
async fn info(State(state): State<Arc<AppState>>) -> Json<Value> {
    let limits = state.batcher.limits();
    let server = json!({
        "max_batch_rows": limits.max_batch_rows,
        "max_wait_ms": limits.max_wait.as_secs_f64() * 1e3,
        "max_queue": limits.max_queue,
        "max_payload_bytes": state.max_payload_bytes,
        "max_series_per_request": contract::MAX_SERIES,
        "max_prediction_length": contract::MAX_PREDICTION_LENGTH,
    });
    let version = env!("CARGO_PKG_VERSION");
    Json(match state.batcher.info() {
        None => json!({"ready": false, "version": version, "server": server}),
        Some(info) => {
            let c = &info.config;
            json!({
                "ready": true,
                "model": info.label,
                "mode": info.mode,
                "dtype": info.dtype,
                "version": version,
                "config": {
                    "context_length": c.context_length,
                    "patch_size": c.patch_size,
                    "max_output_patches": c.max_output_patches,
                    // f32 levels in their short spelling (0.01, not 0.009999999776482582).
                    "quantiles": c.quantiles.iter().map(|q| q.to_string().parse::<f64>().unwrap_or(f64::from(*q))).collect::<Vec<_>>(),
                    "d_model": c.d_model,
                    "num_layers": c.num_layers,
                    "num_heads": c.num_heads,
                },
                "server": server,
            })
        }
    })
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// The 405 answer: the JSON error body of every other error, naming the method the route
/// takes, and the `Allow` header.
async fn method_not_allowed(request: Request) -> impl IntoResponse {
    let path = request.uri().path();
    let allowed = if matches!(path, "/invocations" | "/predict") {
        "POST"
    } else {
        "GET"
    };
    let error = ApiError::MethodNotAllowed(format!(
        "{} {path} is not allowed: {path} takes {allowed}",
        request.method()
    ));
    ([(header::ALLOW, allowed)], error)
}

async fn not_found(request: Request) -> ApiError {
    ApiError::NotFound(format!(
        "no route {} {}; the routes are POST /invocations, POST /predict, GET /ping, /health, /info, /metrics",
        request.method(),
        request.uri().path()
    ))
}
