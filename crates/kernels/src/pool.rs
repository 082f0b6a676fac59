//! A tiny fork-join thread pool that allocates nothing per call.
//!
//! rayon's entry from outside its pool pushes each job onto a crossbeam injector queue, which
//! allocates a new block every few dozen calls; the compiled engine promises allocation-free
//! calls, so its parallel regions run here instead. [`Pool::run`] hands one closure to every
//! worker (the caller is worker 0) and returns when all are done: the workers only ever see a
//! borrowed closure, published under a mutex, never a boxed job.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;

/// A borrowed job with its lifetime erased (see the safety argument in [`Pool::run`]).
#[derive(Clone, Copy)]
struct Job(*const (dyn Fn(usize) + Sync));
// SAFETY: the pointee is `Sync` and outlives every use (the publishing call waits for all
// workers before returning), so sending the pointer to worker threads is sound.
unsafe impl Send for Job {}

struct State {
    generation: u64,
    job: Option<Job>,
    pending: usize,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    start: Condvar,
    done: Condvar,
    /// Mirrors of `state.generation` and `state.pending`, read while spinning so that a region
    /// that follows closely on the previous one does not pay for a sleep and a wake-up.
    generation: AtomicU64,
    pending: AtomicUsize,
}

/// Spin iterations before sleeping on a condition variable (tens of microseconds).
const SPIN: usize = 20_000;

/// A fixed set of worker threads for fork-join regions.
pub struct Pool {
    shared: &'static Shared,
    threads: usize,
    handles: Vec<JoinHandle<()>>,
    /// Serialises callers: one region at a time.
    caller: Mutex<()>,
}

impl Pool {
    /// A pool of `threads` threads in total (the caller counts as one).
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        // The shared state lives for the whole process: pools are created once.
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            state: Mutex::new(State {
                generation: 0,
                job: None,
                pending: 0,
                shutdown: false,
            }),
            start: Condvar::new(),
            done: Condvar::new(),
            generation: AtomicU64::new(0),
            pending: AtomicUsize::new(0),
        }));
        let handles = (1..threads)
            .map(|index| {
                std::thread::Builder::new()
                    .name(format!("chronos2-worker-{index}"))
                    .spawn(move || worker(shared, index))
                    .expect("spawning a worker thread")
            })
            .collect();
        Self {
            shared,
            threads,
            handles,
            caller: Mutex::new(()),
        }
    }

    /// Threads in the pool, the caller included.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `job(i)` for every worker index `i` in `0..threads()`, the caller as worker 0, and
    /// returns when all have finished. A panic in a worker aborts the process (as rayon's
    /// would propagate, but without unwinding through foreign frames).
    pub fn run(&self, job: &(dyn Fn(usize) + Sync)) {
        if self.threads == 1 {
            job(0);
            return;
        }
        let _serial = self.caller.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the transmute only erases the lifetime of the borrowed closure. Workers use
        // the pointer only between being woken for this generation and decrementing `pending`;
        // this function does not return before `pending` is 0 and the job slot is cleared, so
        // the closure outlives every use.
        let erased: Job = Job(unsafe {
            std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), *const (dyn Fn(usize) + Sync + 'static)>(job)
        });
        {
            let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            state.job = Some(erased);
            state.pending = self.threads - 1;
            self.shared.pending.store(self.threads - 1, Ordering::SeqCst);
            state.generation += 1;
            self.shared.generation.store(state.generation, Ordering::SeqCst);
        }
        self.shared.start.notify_all();
        job(0);
        for _ in 0..SPIN {
            if self.shared.pending.load(Ordering::SeqCst) == 0 {
                break;
            }
            std::hint::spin_loop();
        }
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.pending > 0 {
            state = self.shared.done.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.job = None;
    }

    /// Splits `data` into chunks of `chunk` elements and calls `f(index, chunk)` for each,
    /// the chunks spread over the workers in contiguous runs.
    pub fn for_each_chunk(&self, data: &mut [f32], chunk: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
        let chunk = chunk.max(1);
        let count = data.len().div_ceil(chunk);
        let len = data.len();
        let base = SharedSlice(data.as_mut_ptr());
        let workers = self.threads.min(count.max(1));
        self.run(&|worker| {
            if worker >= workers {
                return;
            }
            for index in count * worker / workers..count * (worker + 1) / workers {
                let start = index * chunk;
                let end = (start + chunk).min(len);
                // SAFETY: chunk ranges are disjoint across indices and workers, lie inside
                // `data`, whose unique borrow is held for the whole call.
                let part = unsafe { std::slice::from_raw_parts_mut(base.get().add(start), end - start) };
                f(index, part);
            }
        });
    }
}

/// A slice base pointer shared with the workers of one [`Pool::for_each_chunk`] call.
#[derive(Clone, Copy)]
struct SharedSlice(*mut f32);
// SAFETY: each worker derives disjoint sub-slices from it (see `for_each_chunk`).
unsafe impl Send for SharedSlice {}
unsafe impl Sync for SharedSlice {}

impl SharedSlice {
    fn get(self) -> *mut f32 {
        self.0
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        {
            let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            state.shutdown = true;
        }
        self.shared.start.notify_all();
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

fn worker(shared: &'static Shared, index: usize) {
    let mut seen = 0u64;
    loop {
        for _ in 0..SPIN {
            if shared.generation.load(Ordering::SeqCst) != seen {
                break;
            }
            std::hint::spin_loop();
        }
        let job = {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            while state.generation == seen && !state.shutdown {
                state = shared.start.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            if state.shutdown {
                return;
            }
            seen = state.generation;
            state.job.expect("a new generation always carries a job")
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: the publishing `run` call keeps the closure alive until `pending` reaches
            // 0, which happens only after this call returns.
            unsafe { (*job.0)(index) }
        }));
        if outcome.is_err() {
            eprintln!("fatal: a chronos2 worker thread panicked");
            std::process::abort();
        }
        let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state.pending -= 1;
        shared.pending.store(state.pending, Ordering::SeqCst);
        if state.pending == 0 {
            shared.done.notify_all();
        }
    }
}

static GLOBAL: OnceLock<Pool> = OnceLock::new();

/// Sets the size of the global pool; returns false if it already exists (the first size wins).
pub fn configure_global(threads: usize) -> bool {
    let mut created = false;
    GLOBAL.get_or_init(|| {
        created = true;
        Pool::new(threads)
    });
    created
}

/// The global pool (all cores unless [`configure_global`] ran first).
pub fn global() -> &'static Pool {
    GLOBAL.get_or_init(|| Pool::new(std::thread::available_parallelism().map_or(1, |n| n.get())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_worker_runs_once_per_call() {
        let pool = Pool::new(3);
        let hits = [AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0)];
        for _ in 0..100 {
            pool.run(&|i| {
                hits[i].fetch_add(1, Ordering::SeqCst);
            });
        }
        assert!(hits.iter().all(|h| h.load(Ordering::SeqCst) == 100));
    }

    #[test]
    fn chunks_cover_the_slice_exactly_once() {
        let pool = Pool::new(2);
        let mut data = vec![0.0f32; 1003];
        pool.for_each_chunk(&mut data, 10, &|index, chunk| {
            for v in chunk.iter_mut() {
                *v += 1.0 + index as f32;
            }
        });
        for (i, v) in data.iter().enumerate() {
            assert_eq!(*v, 1.0 + (i / 10) as f32);
        }
    }
}
