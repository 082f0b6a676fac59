//! A server on 127.0.0.1 for tests, and test models wrapped around the built-in one.

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chronos2::{Chronos2Model, Config, ForwardPass, ModelInput, ModelOutput};
use chronos2_server::client::{self, HttpResponse};
use chronos2_server::{serve, LoadedModel, Loader, ServeError, ServerOptions};
use serde_json::Value;

/// A context value that makes [`TestModel`] fail with an execution error.
pub const FAIL: f32 = -999.0;
/// A context value that makes [`TestModel`] panic.
pub const PANIC: f32 = -998.0;

/// The built-in model, optionally slowed down, failing on [`FAIL`] and panicking on [`PANIC`].
pub struct TestModel {
    inner: Chronos2Model,
    delay: Duration,
}

impl TestModel {
    pub fn new(delay: Duration) -> Self {
        Self {
            inner: chronos2_hub::builtin().expect("the built-in model loads"),
            delay,
        }
    }
}

impl ForwardPass for TestModel {
    fn config(&self) -> &Config {
        self.inner.config()
    }

    fn forward(&self, input: &ModelInput) -> Result<ModelOutput, chronos2::Error> {
        std::thread::sleep(self.delay);
        if input.context().contains(&FAIL) {
            return Err(chronos2::Error::Execution("injected failure".into()));
        }
        assert!(!input.context().contains(&PANIC), "injected panic");
        self.inner.forward(input)
    }
}

/// A loader of [`TestModel`].
pub fn loader(delay: Duration) -> Loader {
    Box::new(move || {
        Ok(LoadedModel {
            model: Box::new(TestModel::new(delay)),
            label: "chronos2-mini".into(),
            mode: "eager".into(),
            dtype: "float32".into(),
        })
    })
}

/// A running server; stopped (gracefully) when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), ServeError>>>,
}

impl TestServer {
    pub fn start(options: ServerOptions, loader: Loader) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                serve(listener, options, loader, async move {
                    let _ = stopped.await;
                })
                .await
            })
        });
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Starts a server with the test model and waits until it is ready.
    pub fn ready(options: ServerOptions, delay: Duration) -> Self {
        let server = Self::start(options, loader(delay));
        server.wait_ready();
        server
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.get("/ping").status != 200 {
            assert!(Instant::now() < deadline, "the server never became ready");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        client::send(self.addr, "GET", path, "", b"", Duration::from_secs(60)).unwrap()
    }

    pub fn post_raw(&self, path: &str, content_type: &str, body: &[u8]) -> HttpResponse {
        client::send(self.addr, "POST", path, content_type, body, Duration::from_secs(60)).unwrap()
    }

    pub fn post(&self, body: &Value) -> HttpResponse {
        self.post_raw("/invocations", "application/json", body.to_string().as_bytes())
    }

    /// Stops the server and returns how `serve` ended.
    pub fn stop(mut self) -> Result<(), ServeError> {
        let _ = self.stop.take().unwrap().send(());
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A smooth positive series of `n` points.
pub fn series(n: usize, phase: f64) -> Vec<f64> {
    (0..n)
        .map(|t| 100.0 + 10.0 * ((t as f64 + phase) / 5.0).sin() + t as f64 * 0.1)
        .collect()
}

/// The options tests use unless they say otherwise.
pub fn options() -> ServerOptions {
    ServerOptions::default()
}
