//! `chronos2 serve`: the forecast server, with the hosted Chronos-2 endpoint's contract
//! (`POST /invocations`), `/ping`, `/info` and Prometheus `/metrics`.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chronos2_engine::{Device, Mode, Settings};
use chronos2_server::{serve, termination, BatchLimits, LoadedModel, Loader, ServerOptions};

use crate::common::{load_engine, stderr_line, EngineArgs, ModelArgs};

/// Serve forecasts over HTTP until SIGTERM or Ctrl-C (requests in flight are answered).
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    engine: EngineArgs,
    /// Address to listen on (`0.0.0.0` for every interface).
    #[arg(long, env = "CHRONOS2_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0: any free port, printed at start).
    #[arg(long, env = "CHRONOS2_PORT", default_value_t = 8080)]
    port: u16,
    /// Most model rows per merged call (a larger request runs alone).
    #[arg(long, env = "CHRONOS2_MAX_BATCH_ROWS", default_value_t = 32)]
    max_batch_rows: usize,
    /// Longest wait, in milliseconds after the oldest request of a batch arrived, for more
    /// requests to merge.
    #[arg(long, env = "CHRONOS2_MAX_WAIT_MS", default_value_t = 2)]
    max_wait_ms: u64,
    /// Most requests waiting for the model; more are answered 429.
    #[arg(long, env = "CHRONOS2_MAX_QUEUE", default_value_t = 256)]
    max_queue: usize,
    /// Largest request body in bytes; larger ones are answered 413.
    #[arg(long, env = "CHRONOS2_MAX_PAYLOAD_BYTES", default_value_t = 6 << 20)]
    max_payload_bytes: usize,
}

impl Args {
    fn options(&self) -> Result<ServerOptions> {
        for (flag, value) in [
            ("--max-batch-rows", self.max_batch_rows),
            ("--max-queue", self.max_queue),
            ("--max-payload-bytes", self.max_payload_bytes),
        ] {
            if value == 0 {
                bail!("{flag} must be at least 1");
            }
        }
        Ok(ServerOptions {
            limits: BatchLimits {
                max_batch_rows: self.max_batch_rows,
                max_wait: Duration::from_millis(self.max_wait_ms),
                max_queue: self.max_queue,
            },
            max_payload_bytes: self.max_payload_bytes,
        })
    }
}

/// Row counts planned at start-up in compiled mode without `--warmup`: every batch of
/// 1..=[`WARM_ROWS`] rows, and a full batch, so that no request waits for planning and memory
/// stays flat under load.
const WARM_ROWS: usize = 32;

/// Loads the model and, in compiled mode without `--warmup`, plans the buckets merged
/// requests of one series (context 512 or the model's, horizon 16) fill.
fn loader(model: ModelArgs, settings: Settings, max_batch_rows: usize) -> Loader {
    Box::new(move || {
        let started = Instant::now();
        let loaded = load_engine(&model, &settings).map_err(|e| format!("{e:#}"))?;
        let context = loaded.engine.model_config().context_length.min(512);
        let mut rows: Vec<usize> = (1..=max_batch_rows.min(WARM_ROWS)).collect();
        rows.push(max_batch_rows);
        rows.dedup();
        let shapes: Vec<_> = rows.into_iter().map(|r| (r, context, 16)).collect();
        if let (None, Some(compiled)) = (&settings.warmup, loaded.engine.compiled()) {
            compiled.warm_up(&shapes).map_err(|e| e.to_string())?;
        }
        #[cfg(feature = "cuda")]
        if let (None, Some(gpu)) = (&settings.warmup, loaded.engine.cuda()) {
            // One bucket and CUDA graph per merged batch size, as compiled mode plans them.
            gpu.warm_up(&shapes).map_err(|e| e.to_string())?;
        }
        let planned = chronos2::ForwardPass::plans_built(&loaded.engine);
        stderr_line(format_args!(
            "chronos2: ready in {:.1} s ({}, {planned} bucket(s) planned)",
            started.elapsed().as_secs_f64(),
            loaded.label
        ));
        Ok(LoadedModel {
            model: Box::new(loaded.engine),
            label: loaded.label,
            mode: match (settings.mode, settings.device) {
                (Mode::Eager, Device::Cpu) => "eager".into(),
                (Mode::Compiled, Device::Cpu) => "compiled".into(),
                (mode, gpu) => format!("{} on {}", format!("{mode:?}").to_lowercase(), gpu.name()),
            },
            dtype: "float32".into(),
        })
    })
}

/// Runs the server until SIGTERM or Ctrl-C.
pub fn run(args: &Args, _out: &mut dyn Write) -> Result<()> {
    let options = args.options()?;
    let settings = args.engine.settings()?;
    let listener = std::net::TcpListener::bind((args.host.as_str(), args.port)).with_context(|| {
        format!(
            "cannot listen on {}:{}; pick another --port or --host",
            args.host, args.port
        )
    })?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    stderr_line(format_args!(
        "chronos2: listening on http://{addr} (POST /invocations; /ping answers 503 until the model is ready)"
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let loader = loader(args.model.clone(), settings, options.limits.max_batch_rows);
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        serve(listener, options, loader, termination()).await
    })?;
    stderr_line("chronos2: stopped");
    Ok(())
}
