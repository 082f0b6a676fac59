//! Load a running `chronos2 serve` over loopback and print throughput, p50/p99 and (with
//! `--pid`) the server's resident memory before and after each run.
//!
//! ```sh
//! chronos2 serve --model DIR --mode compiled &
//! cargo run --release -p chronos2-server --example load -- \
//!     --addr 127.0.0.1:8080 --concurrency 1,8,64 --seconds 30 --series 1 --context 512 --horizon 16 --pid $!
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use chronos2_server::load::{run, LoadSpec};
use serde_json::json;

/// The server's resident set in KiB (Linux).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<(), String> {
    let mut addr: SocketAddr = "127.0.0.1:8080".parse().expect("a valid address");
    let (mut levels, mut seconds, mut series, mut context, mut horizon, mut pid) =
        (vec![1usize, 8, 64], 10.0f64, 1usize, 512usize, 16usize, None);
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [flag, value] = pair else {
            return Err(format!("`{}` needs a value", pair[0]));
        };
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--addr" => addr = value.parse().map_err(|e| bad(&e))?,
            "--concurrency" => {
                levels = value
                    .split(',')
                    .map(|c| c.trim().parse().map_err(|e| bad(&e)))
                    .collect::<Result<_, _>>()?
            }
            "--seconds" => seconds = value.parse().map_err(|e| bad(&e))?,
            "--series" => series = value.parse().map_err(|e| bad(&e))?,
            "--context" => context = value.parse().map_err(|e| bad(&e))?,
            "--horizon" => horizon = value.parse().map_err(|e| bad(&e))?,
            "--pid" => pid = Some(value.parse::<u32>().map_err(|e| bad(&e))?),
            other => return Err(format!("unknown flag {other}; see the file's doc comment")),
        }
    }
    let target: Vec<f64> = (0..context)
        .map(|t| 100.0 + 10.0 * (t as f64 / 7.0).sin() + 0.05 * t as f64)
        .collect();
    let body = json!({"inputs": vec![json!({"target": target}); series], "parameters": {"prediction_length": horizon}});
    for concurrency in levels {
        let before = pid.and_then(rss_kib);
        let report = run(&LoadSpec {
            addr,
            path: "/invocations".into(),
            body: body.to_string().into_bytes().into(),
            series_per_request: series,
            concurrency,
            duration: Duration::from_secs_f64(seconds),
        });
        println!("{}", report.summary());
        if !report.errors.is_empty() {
            println!("  errors by status (0 = connection): {:?}", report.errors);
        }
        if let (Some(before), Some(after)) = (before, pid.and_then(rss_kib)) {
            println!(
                "  server RSS {:.1} MiB -> {:.1} MiB ({:+.2} %)",
                before as f64 / 1024.0,
                after as f64 / 1024.0,
                (after as f64 / before as f64 - 1.0) * 100.0
            );
        }
    }
    Ok(())
}
