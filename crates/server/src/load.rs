//! A bounded-time load generator: `concurrency` clients send the same request back to back
//! for `duration`, each waiting for its answer; the report gives throughput and latency
//! percentiles. Used by the load test and by `examples/load.rs`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client;

/// What to send.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// The server.
    pub addr: SocketAddr,
    /// The route, e.g. `/invocations`.
    pub path: String,
    /// The JSON payload.
    pub body: Arc<Vec<u8>>,
    /// Series per request (for series/s).
    pub series_per_request: usize,
    /// Clients sending at once.
    pub concurrency: usize,
    /// How long to send.
    pub duration: Duration,
}

/// The outcome of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadReport {
    /// Clients sending at once.
    pub concurrency: usize,
    /// Requests answered 200.
    pub ok: usize,
    /// Requests answered otherwise, by status (0: connection error).
    pub errors: BTreeMap<u16, usize>,
    /// Wall time from the first request to the last answer.
    pub elapsed: Duration,
    /// Latency of the successful requests, sorted.
    pub latencies: Vec<Duration>,
    /// Series per request.
    pub series_per_request: usize,
}

impl LoadReport {
    /// Failed requests.
    pub fn failed(&self) -> usize {
        self.errors.values().sum()
    }

    /// Successful requests per second.
    pub fn requests_per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Series answered per second.
    pub fn series_per_second(&self) -> f64 {
        self.requests_per_second() * self.series_per_request as f64
    }

    /// The `p`-th percentile latency (nearest rank, `p` in 0..=100); zero without answers.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }

    /// One line: concurrency, requests, errors, throughput, p50 and p99.
    pub fn summary(&self) -> String {
        format!(
            "concurrency {:>3}: {} ok, {} failed, {:.1} req/s, {:.1} series/s, p50 {:.1} ms, p99 {:.1} ms",
            self.concurrency,
            self.ok,
            self.failed(),
            self.requests_per_second(),
            self.series_per_second(),
            self.percentile(50.0).as_secs_f64() * 1e3,
            self.percentile(99.0).as_secs_f64() * 1e3
        )
    }
}

/// Runs the load: every client stops sending at `duration` and waits for its last answer.
pub fn run(spec: &LoadSpec) -> LoadReport {
    let started = Instant::now();
    let deadline = started + spec.duration;
    let clients: Vec<_> = (0..spec.concurrency)
        .map(|_| {
            let spec = spec.clone();
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut errors = BTreeMap::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let response = client::send(
                        spec.addr,
                        "POST",
                        &spec.path,
                        "application/json",
                        &spec.body,
                        Duration::from_secs(600),
                    );
                    match response {
                        Ok(r) if r.status == 200 => latencies.push(sent.elapsed()),
                        Ok(r) => *errors.entry(r.status).or_insert(0) += 1,
                        Err(_) => *errors.entry(0).or_insert(0) += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = BTreeMap::new();
    for client in clients {
        let (l, e) = client.join().expect("a load client panicked");
        latencies.extend(l);
        for (status, count) in e {
            *errors.entry(status).or_insert(0) += count;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    LoadReport {
        concurrency: spec.concurrency,
        ok: latencies.len(),
        errors,
        elapsed,
        latencies,
        series_per_request: spec.series_per_request,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let report = LoadReport {
            concurrency: 1,
            ok: 4,
            errors: BTreeMap::from([(429, 1)]),
            elapsed: Duration::from_secs(2),
            latencies: [10, 20, 30, 40].map(Duration::from_millis).to_vec(),
            series_per_request: 3,
        };
        // 50 % of 4 = rank 2 -> 20 ms; 99 % of 4 = rank 3.96 -> 4 -> 40 ms.
        assert_eq!(report.percentile(50.0), Duration::from_millis(20));
        assert_eq!(report.percentile(99.0), Duration::from_millis(40));
        assert_eq!((report.requests_per_second(), report.series_per_second()), (2.0, 6.0));
        assert_eq!(report.failed(), 1);
    }
}
