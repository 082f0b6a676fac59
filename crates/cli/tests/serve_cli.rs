//! `chronos2 serve` end to end over 127.0.0.1: start, health, a forecast, SIGTERM with a
//! request in flight (answered, then a clean exit), and refused flags.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chronos2_server::client;
use serde_json::json;

mod common;
use common::{chronos2, tiny_model};

/// Starts the server on a free port (chosen through the environment variable) and returns
/// the child, its address and the rest of its stderr.
fn start(extra: &[&str]) -> (Child, SocketAddr, BufReader<std::process::ChildStderr>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chronos2"))
        .args(["serve", "--model", &tiny_model()])
        .args(extra)
        .env("CHRONOS2_PORT", "0")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the server exited before listening"
        );
        if let Some(rest) = line.trim().strip_prefix("chronos2: listening on http://") {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    (child, addr, stderr)
}

fn get(addr: SocketAddr, path: &str) -> client::HttpResponse {
    client::send(addr, "GET", path, "", b"", Duration::from_secs(30)).unwrap()
}

/// Whether the model is running a batch: one has started (batch rows observed) and no
/// series has been answered yet.
fn busy(addr: SocketAddr) -> bool {
    let metrics = get(addr, "/metrics").body;
    metrics.contains("chronos2_batch_rows_count 1") && metrics.contains("chronos2_series_forecast_total 0")
}

#[test]
fn serve_answers_then_stops_on_sigterm_after_answering_in_flight_requests() {
    let (mut child, addr, mut stderr) = start(&["--mode", "compiled", "--max-batch-rows", "8"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(addr, "/ping").status != 200 {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    let info = get(addr, "/info").json().unwrap();
    assert_eq!(info["mode"], "compiled");
    assert_eq!(info["server"]["max_batch_rows"], 8);
    // A large request keeps the model busy while SIGTERM arrives.
    let target: Vec<f64> = (0..512)
        .map(|t| ((50.0 + (t as f64 / 9.0).sin()) * 100.0).round() / 100.0)
        .collect();
    let body =
        json!({"inputs": vec![json!({"target": target}); 1000], "parameters": {"prediction_length": 64}}).to_string();
    let in_flight = std::thread::spawn(move || {
        let response = client::send(
            addr,
            "POST",
            "/invocations",
            "application/json",
            body.as_bytes(),
            Duration::from_secs(120),
        );
        (response.unwrap(), Instant::now())
    });
    while !get(addr, "/metrics").body.contains("chronos2_queue_depth 0") || !busy(addr) {
        assert!(
            !in_flight.is_finished(),
            "the request was answered before the model got busy"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let signalled = Instant::now();
    assert!(killed.success());
    let (response, answered) = in_flight.join().unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(
        answered > signalled,
        "the request was answered before SIGTERM; it was not in flight"
    );
    assert_eq!(response.json().unwrap()["predictions"].as_array().unwrap().len(), 1000);
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(status.success(), "{rest}");
    assert!(rest.contains("chronos2: stopped"), "{rest}");
}

#[test]
fn serve_refuses_bad_flags_and_unloadable_models() {
    let (ok, _, stderr) = chronos2(&["serve", "--max-batch-rows", "0"]);
    assert!(
        !ok && stderr.contains("--max-batch-rows must be at least 1"),
        "{stderr}"
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (ok, _, stderr) = chronos2(&["serve", "--model", &tiny_model(), "--port", &port]);
    assert!(
        !ok && stderr.contains("cannot listen on 127.0.0.1:") && stderr.contains("--port"),
        "{stderr}"
    );
    let (ok, _, stderr) = chronos2(&["serve", "--model", "/nonexistent/model", "--port", "0", "--offline"]);
    assert!(!ok && stderr.contains("cannot load the model"), "{stderr}");
}
