//! The server over 127.0.0.1: the hosted endpoint's request/response examples, every error
//! code, batching equality, health before and after load, graceful shutdown and a short
//! load test at concurrency 1, 8 and 64.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use chronos2_forecast::{at_levels, predict, Covariate, CovariateValues, PredictOptions, Task};
use chronos2_server::load::{self, LoadSpec};
use chronos2_server::{BatchLimits, LoadedModel, ServeError, ServerOptions};
use common::{loader, options, series, TestModel, TestServer, FAIL, PANIC};
use serde_json::{json, Value};

fn f32s(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&v| v as f32).collect()
}

/// One series' forecast: the mean per variate, and per level the values per variate.
type Expected = (Vec<Vec<f32>>, Vec<Vec<Vec<f32>>>);

/// Forecasts `tasks` with the library directly.
fn library(tasks: &[Task], horizon: usize, levels: &[f32]) -> Vec<Expected> {
    let model = TestModel::new(Duration::ZERO);
    let prediction = predict(&model, tasks, &PredictOptions::new(horizon)).unwrap();
    let config = chronos2::ForwardPass::config(&model);
    prediction
        .forecasts
        .iter()
        .map(|f| {
            let read = at_levels(f, &config.quantiles, levels, config.median_index().unwrap());
            let means = (0..read.n_targets).map(|v| read.median(v).to_vec()).collect();
            let by_level = (0..levels.len())
                .map(|l| (0..read.n_targets).map(|v| read.series(v, l)).collect())
                .collect();
            (means, by_level)
        })
        .collect()
}

/// The numbers of a JSON list (or of each list of a list of lists).
fn rows(value: &Value) -> Vec<Vec<f32>> {
    let list = value.as_array().expect("a list");
    if list.first().is_some_and(Value::is_array) {
        list.iter().flat_map(rows).collect()
    } else {
        vec![list.iter().map(|v| v.as_f64().expect("a number") as f32).collect()]
    }
}

fn assert_close(actual: &[Vec<f32>], expected: &[Vec<f32>], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: variates");
    for (a, e) in actual.iter().zip(expected) {
        assert_eq!(a.len(), e.len(), "{what}: horizon");
        for (x, y) in a.iter().zip(e) {
            assert!((x - y).abs() <= 1e-4 * y.abs().max(1.0), "{what}: {x} vs {y}");
        }
    }
}

/// Checks one prediction against the library's forecast of the same task.
fn check_prediction(prediction: &Value, expected: &Expected, labels: &[&str]) {
    assert_close(&rows(&prediction["mean"]), &expected.0, "mean");
    for (label, levels) in labels.iter().zip(&expected.1) {
        assert_close(&rows(&prediction[*label]), levels, label);
    }
}

#[test]
fn univariate_example_matches_the_library() {
    let server = TestServer::ready(options(), Duration::ZERO);
    let target = series(50, 0.0);
    let response = server.post(&json!({
        "inputs": [{"target": target}],
        "parameters": {"prediction_length": 8, "quantile_levels": [0.1, 0.5, 0.9]}
    }));
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(response.content_type.starts_with("application/json"));
    let body = response.json().unwrap();
    let prediction = &body["predictions"][0];
    let mut keys: Vec<&String> = prediction.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["0.1", "0.5", "0.9", "mean"]);
    assert_eq!(
        prediction["mean"], prediction["0.5"],
        "the mean is the median, as the reference answers"
    );
    let expected = library(&[Task::univariate(f32s(&target))], 8, &[0.1, 0.5, 0.9]);
    check_prediction(prediction, &expected[0], &["0.1", "0.5", "0.9"]);
}

#[test]
fn ohlc_group_example_answers_one_list_per_variate() {
    let server = TestServer::ready(options(), Duration::ZERO);
    let ohlc: Vec<Vec<f64>> = (0..4).map(|v| series(60, v as f64)).collect();
    let response = server.post(&json!({
        "inputs": [{"target": ohlc, "item_id": "GOOG"}],
        "parameters": {"prediction_length": 5, "quantile_levels": [0.05, 0.5, 0.95]}
    }));
    assert_eq!(response.status, 200, "{}", response.body);
    let prediction = &response.json().unwrap()["predictions"][0];
    assert_eq!(prediction["item_id"], "GOOG");
    assert_eq!(prediction["mean"].as_array().unwrap().len(), 4);
    let task = Task::multivariate(ohlc.iter().map(|r| f32s(r)).collect());
    let expected = library(&[task], 5, &[0.05, 0.5, 0.95]);
    check_prediction(prediction, &expected[0], &["0.05", "0.5", "0.95"]);
}

#[test]
fn covariates_example_matches_the_library() {
    let server = TestServer::ready(options(), Duration::ZERO);
    let days = ["mon", "tue", "wed", "thu", "fri"];
    let weekday =
        |n: usize, offset: usize| -> Vec<String> { (0..n).map(|t| days[(t + offset) % 5].to_string()).collect() };
    let promo = |n: usize, offset: usize| -> Vec<f64> { (0..n).map(|t| ((t + offset) / 3 % 2) as f64).collect() };
    let (a, b) = (series(40, 0.0), series(45, 2.0));
    let payload = json!({
        "inputs": [
            {"target": a, "past_covariates": {"price": series(40, 1.0), "promo": promo(40, 0), "weekday": weekday(40, 0)},
             "future_covariates": {"promo": promo(3, 40), "weekday": weekday(3, 40)}},
            {"target": b, "past_covariates": {"price": series(45, 3.0), "promo": promo(45, 0), "weekday": weekday(45, 0)},
             "future_covariates": {"promo": promo(3, 45), "weekday": weekday(3, 45)}}
        ],
        "parameters": {"prediction_length": 3, "quantile_levels": [0.1, 0.9]}
    });
    let response = server.post(&payload);
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json().unwrap();
    let task = |target: &[f64], n: usize| {
        let categories = |v: Vec<String>| CovariateValues::Categorical(v.into_iter().map(Some).collect());
        Task::univariate(f32s(target))
            .with_covariate(Covariate {
                name: "price".into(),
                past: CovariateValues::Numeric(f32s(&series(n, if n == 40 { 1.0 } else { 3.0 }))),
                future: None,
            })
            .with_covariate(Covariate {
                name: "promo".into(),
                past: CovariateValues::Numeric(f32s(&promo(n, 0))),
                future: Some(CovariateValues::Numeric(f32s(&promo(3, n)))),
            })
            .with_covariate(Covariate {
                name: "weekday".into(),
                past: categories(weekday(n, 0)),
                future: Some(categories(weekday(3, n))),
            })
    };
    let expected = library(&[task(&a, 40), task(&b, 45)], 3, &[0.1, 0.9]);
    for (i, expected) in expected.iter().enumerate() {
        check_prediction(&body["predictions"][i], expected, &["0.1", "0.9"]);
    }
}

#[test]
fn item_id_start_and_freq_example() {
    let server = TestServer::ready(options(), Duration::ZERO);
    let response = server.post(&json!({
        "inputs": [
            {"target": series(24, 0.0), "item_id": "product_A", "start": "2024-01-01T00:00:00"},
            {"target": series(30, 1.0), "item_id": "product_B", "start": "2024-01-01T00:00:00"}
        ],
        "parameters": {"prediction_length": 4, "freq": "h"}
    }));
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json().unwrap();
    let predictions = body["predictions"].as_array().unwrap();
    assert_eq!(predictions[0]["item_id"], "product_A");
    assert_eq!(predictions[0]["start"], "2024-01-02T00:00:00");
    assert_eq!(predictions[1]["item_id"], "product_B");
    assert_eq!(predictions[1]["start"], "2024-01-02T06:00:00");
    // The default levels: 0.1 .. 0.9 and the mean.
    assert_eq!(predictions[0].as_object().unwrap().len(), 9 + 1 + 2);
    assert_eq!(predictions[1]["0.7"].as_array().unwrap().len(), 4);
}

#[test]
fn json_lines_bodies_answer_one_line_per_payload() {
    let server = TestServer::ready(options(), Duration::ZERO);
    let line = |n: usize, h: usize| {
        json!({"inputs": [{"target": series(n, 0.0)}], "parameters": {"prediction_length": h}}).to_string()
    };
    let body = format!("{}\n{}\n", line(20, 2), line(30, 3));
    let response = server.post_raw("/invocations", "application/jsonlines", body.as_bytes());
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.content_type, "application/jsonlines");
    let lines: Vec<Value> = response
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["predictions"][0]["mean"].as_array().unwrap().len(), 2);
    assert_eq!(lines[1]["predictions"][0]["mean"].as_array().unwrap().len(), 3);
    let bad = format!("{}\n{{\"inputs\": []}}\n", line(20, 2));
    let response = server.post_raw("/predict", "application/jsonlines", bad.as_bytes());
    assert_eq!(response.status, 422);
    assert!(response.json().unwrap()["error"]
        .as_str()
        .unwrap()
        .starts_with("line 2: "));
}

/// The `error` message of a JSON error answer, checking its status.
fn error_of(response: &chronos2_server::client::HttpResponse, status: u16) -> String {
    assert_eq!(response.status, status, "{}", response.body);
    let body = response.json().unwrap();
    assert_eq!(body["code"], status);
    body["error"].as_str().unwrap().to_string()
}

#[test]
fn every_error_code_has_a_clear_message_and_the_server_keeps_running() {
    let server = TestServer::ready(
        ServerOptions {
            max_payload_bytes: 4096,
            ..options()
        },
        Duration::ZERO,
    );
    let ok = json!({"inputs": [{"target": series(20, 0.0)}]});
    let message = error_of(
        &server.post_raw("/invocations", "application/json", b"{\"inputs\": [1, 2"),
        400,
    );
    assert!(message.contains("not valid JSON"), "{message}");
    let message = error_of(&server.get("/nowhere"), 404);
    assert!(message.contains("/invocations"), "{message}");
    let message = error_of(&server.get("/invocations"), 405);
    assert_eq!(message, "GET /invocations is not allowed: /invocations takes POST");
    let message = error_of(&server.post_raw("/ping", "application/json", b"{}"), 405);
    assert_eq!(message, "POST /ping is not allowed: /ping takes GET");
    let big = json!({"inputs": [{"target": series(1000, 0.0)}]});
    let message = error_of(&server.post(&big), 413);
    assert!(message.contains("--max-payload-bytes"), "{message}");
    let message = error_of(&server.post(&json!({"inputs": [{"target": [1, 2, 3]}]})), 422);
    assert!(message.contains("at least 5"), "{message}");
    let message = error_of(
        &server.post(&json!({"inputs": [{"target": series(5, 0.0)}], "parameters": {"quantile_levels": [0.0]}})),
        422,
    );
    assert!(message.contains("strictly between 0 and 1"), "{message}");
    let mut failing = series(20, 0.0);
    failing[3] = FAIL as f64;
    let message = error_of(&server.post(&json!({"inputs": [{"target": failing}]})), 500);
    assert!(message.contains("injected failure"), "{message}");
    let mut panicking = series(20, 0.0);
    panicking[3] = PANIC as f64;
    let message = error_of(&server.post(&json!({"inputs": [{"target": panicking}]})), 500);
    assert!(message.contains("injected panic"), "{message}");
    assert_eq!(server.post(&ok).status, 200, "the server answers after a 500");
    let metrics = server.get("/metrics").body;
    for status in ["200", "400", "404", "405", "413", "422", "500"] {
        assert!(
            metrics.contains(&format!("status=\"{status}\"")),
            "{status} missing from\n{metrics}"
        );
    }
}

#[test]
fn a_full_queue_answers_429() {
    let limits = BatchLimits {
        max_queue: 1,
        ..options().limits
    };
    let server = TestServer::ready(ServerOptions { limits, ..options() }, Duration::from_millis(1000));
    let addr = server.addr;
    let send = move || {
        let body = json!({"inputs": [{"target": series(20, 0.0)}]}).to_string();
        chronos2_server::client::send(
            addr,
            "POST",
            "/invocations",
            "application/json",
            body.as_bytes(),
            Duration::from_secs(30),
        )
        .unwrap()
        .status
    };
    let running = std::thread::spawn(send);
    std::thread::sleep(Duration::from_millis(200)); // taken by the worker
    let queued = std::thread::spawn(send);
    std::thread::sleep(Duration::from_millis(200)); // waiting in the queue
    let message = error_of(&server.post(&json!({"inputs": [{"target": series(20, 0.0)}]})), 429);
    assert!(message.contains("--max-queue"), "{message}");
    assert_eq!((running.join().unwrap(), queued.join().unwrap()), (200, 200));
}

#[test]
fn health_is_503_before_the_model_is_loaded_and_200_after() {
    let (release, gate) = mpsc::channel::<()>();
    let inner = loader(Duration::ZERO);
    let server = TestServer::start(
        options(),
        Box::new(move || {
            gate.recv().map_err(|e| e.to_string())?;
            inner()
        }),
    );
    for path in ["/ping", "/health"] {
        assert_eq!(server.get(path).status, 503, "{path}");
    }
    assert_eq!(server.get("/info").json().unwrap()["ready"], false);
    assert!(server.get("/metrics").body.contains("chronos2_model_ready 0"));
    let message = error_of(&server.post(&json!({"inputs": [{"target": series(20, 0.0)}]})), 503);
    assert!(message.contains("loading"), "{message}");
    release.send(()).unwrap();
    server.wait_ready();
    assert_eq!(server.get("/health").status, 200);
    let info = server.get("/info").json().unwrap();
    assert_eq!(
        (&info["ready"], &info["model"], &info["mode"], &info["dtype"]),
        (
            &json!(true),
            &json!("chronos2-mini"),
            &json!("eager"),
            &json!("float32")
        )
    );
    assert_eq!(info["config"]["context_length"], 512);
    assert_eq!(info["config"]["quantiles"][0], 0.01);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert!(server.get("/metrics").body.contains("chronos2_model_ready 1"));
}

#[test]
fn a_failed_load_stops_the_server_with_the_reason() {
    let server = TestServer::start(
        options(),
        Box::new(|| Err::<LoadedModel, _>("no model at /nowhere".to_string())),
    );
    match server.stop() {
        Err(ServeError::Load(message)) => assert!(message.contains("/nowhere"), "{message}"),
        other => panic!("expected a load error, got {other:?}"),
    }
}

#[test]
fn an_answer_does_not_depend_on_what_it_was_batched_with() {
    let limits = BatchLimits {
        max_batch_rows: 64,
        max_wait: Duration::from_millis(300),
        max_queue: 64,
    };
    let server = TestServer::ready(ServerOptions { limits, ..options() }, Duration::ZERO);
    let request = |n: usize, phase: f64| json!({"inputs": [{"target": series(n, phase)}], "parameters": {"prediction_length": 12}});
    let alone = server.post(&request(40, 0.0)).json().unwrap();
    let addr = server.addr;
    let together: Vec<_> = [(40, 0.0), (100, 3.0), (70, 7.0), (512, 1.0)]
        .into_iter()
        .map(|(n, phase)| {
            let body = request(n, phase).to_string();
            std::thread::spawn(move || {
                chronos2_server::client::send(
                    addr,
                    "POST",
                    "/invocations",
                    "application/json",
                    body.as_bytes(),
                    Duration::from_secs(30),
                )
                .unwrap()
            })
        })
        .collect();
    let answers: Vec<Value> = together
        .into_iter()
        .map(|t| t.join().unwrap().json().unwrap())
        .collect();
    for key in ["mean", "0.1", "0.9"] {
        assert_close(
            &rows(&answers[0]["predictions"][0][key]),
            &rows(&alone["predictions"][0][key]),
            key,
        );
    }
    // The four requests did share model calls.
    let metrics = server.get("/metrics").body;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().parse().unwrap()))
            .unwrap()
    };
    assert!(
        value("chronos2_batch_requests_sum") > value("chronos2_batch_requests_count"),
        "no batch merged requests:\n{metrics}"
    );
}

#[test]
fn graceful_shutdown_answers_requests_in_flight() {
    let server = TestServer::ready(options(), Duration::from_millis(500));
    let addr = server.addr;
    let in_flight = std::thread::spawn(move || {
        let body = json!({"inputs": [{"target": series(20, 0.0)}]}).to_string();
        chronos2_server::client::send(
            addr,
            "POST",
            "/invocations",
            "application/json",
            body.as_bytes(),
            Duration::from_secs(30),
        )
        .unwrap()
    });
    std::thread::sleep(Duration::from_millis(150));
    server.stop().unwrap();
    let response = in_flight.join().unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(std::net::TcpStream::connect(addr).is_err(), "the listener is closed");
}

#[test]
fn load_at_concurrency_1_8_and_64_has_no_errors() {
    let limits = BatchLimits {
        max_queue: 128,
        ..options().limits
    };
    let server = TestServer::ready(ServerOptions { limits, ..options() }, Duration::ZERO);
    let body = json!({"inputs": [{"target": series(512, 0.0)}], "parameters": {"prediction_length": 16}}).to_string();
    for concurrency in [1, 8, 64] {
        let report = load::run(&LoadSpec {
            addr: server.addr,
            path: "/invocations".into(),
            body: body.clone().into_bytes().into(),
            series_per_request: 1,
            concurrency,
            duration: Duration::from_millis(700),
        });
        eprintln!("{}", report.summary());
        assert_eq!(report.failed(), 0, "{:?}", report.errors);
        assert!(report.ok >= concurrency, "{}", report.summary());
        assert!(report.percentile(50.0) <= report.percentile(99.0));
    }
    let metrics = server.get("/metrics").body;
    for name in [
        "chronos2_requests_total",
        "chronos2_request_duration_seconds_bucket",
        "chronos2_model_call_duration_seconds_bucket",
        "chronos2_batch_rows_bucket",
        "chronos2_batch_requests_bucket",
        "chronos2_queue_depth",
        "chronos2_series_forecast_total",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }
    assert!(metrics.contains("chronos2_queue_depth 0"), "the queue drains");
}

#[test]
fn levels_outside_the_trained_range_are_clamped_with_the_reference_warning() {
    let (batcher, _worker) =
        chronos2_server::Batcher::start(loader(Duration::ZERO), options().limits, Default::default());
    let request = chronos2_server::contract::from_value(&json!({
        "inputs": [{"target": series(30, 0.0)}],
        "parameters": {"prediction_length": 4, "quantile_levels": [0.001, 0.01]}
    }))
    .unwrap();
    while batcher.info().is_none() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let answer = batcher
        .submit(request.into())
        .unwrap()
        .blocking_recv()
        .unwrap()
        .unwrap();
    assert!(
        answer.warnings.iter().any(|w| w.contains("trained on ([0.01, 0.99])")),
        "{:?}",
        answer.warnings
    );
    let forecast = &answer.forecasts[0];
    assert_eq!(
        forecast.series(0, 0),
        forecast.series(0, 1),
        "0.001 is read at the lowest trained level"
    );
}
