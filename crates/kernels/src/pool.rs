//! A small fork-join thread pool that allocates nothing per call and never waits for a
//! worker that has not started.
//!
//! [`Pool::parallel_for`] publishes one borrowed closure and a task count; the caller and the
//! workers claim task indices from one atomic counter until none are left. Work is therefore
//! claimed, not assigned: if the machine is busy and a worker is not scheduled, the caller
//! simply runs that worker's share itself instead of waiting a scheduler time slice for it.
//! The caller waits only for tasks already running on another thread.
//!
//! Idle workers first spin (regions of one forward pass follow each other within
//! microseconds), then keep polling while yielding the core to any other runnable thread (so
//! a busy machine loses little to them), and after a bounded time sleep on a condition
//! variable, so a pool between calls costs no CPU. A pool of one thread has no workers:
//! everything runs on the caller.
//!
//! One pool serves a whole engine: its size is the `--threads` setting, and every parallel
//! kernel (the packed GEMM, the eager `matmul`, row-wise ops, attention) takes it explicitly.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A borrowed job with its lifetime erased (see the safety argument in [`Pool::parallel_for`]).
#[derive(Clone, Copy)]
struct Job(*const (dyn Fn(usize) + Sync));
// SAFETY: the pointee is `Sync` and outlives every use (the publishing call waits for every
// worker that entered the job before returning), so sending the pointer to workers is sound.
unsafe impl Send for Job {}

/// State changed under the mutex: the published job and the sleepers.
struct State {
    generation: u64,
    job: Option<Job>,
    tasks: usize,
    sleepers: usize,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Mirror of `state.generation`, read while spinning.
    generation: AtomicU64,
    /// Whether the current job still accepts workers.
    open: AtomicBool,
    /// Workers inside the current job (entered and not yet left).
    active: AtomicUsize,
    /// Next unclaimed task index of the current job.
    next: AtomicUsize,
}

/// How long an idle worker (or a caller waiting for one) spins before it starts yielding.
const SPIN: Duration = Duration::from_micros(20);

/// How long an idle worker polls, yielding between polls, before it sleeps.
const POLL: Duration = Duration::from_micros(500);

/// A fixed set of worker threads for fork-join regions.
pub struct Pool {
    shared: Arc<Shared>,
    threads: usize,
    handles: Vec<JoinHandle<()>>,
    /// Serialises callers: one region at a time.
    caller: Mutex<()>,
}

impl Pool {
    /// A pool of `threads` threads in total (the caller counts as one; 0 is taken as 1).
    /// Returns once every worker has started, so that no thread start-up work (which
    /// allocates) happens later, inside a region.
    ///
    /// # Panics
    /// If the operating system refuses to start a thread.
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                generation: 0,
                job: None,
                tasks: 0,
                sleepers: 0,
                shutdown: false,
            }),
            wake: Condvar::new(),
            generation: AtomicU64::new(0),
            open: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
        });
        let started = Arc::new(Barrier::new(threads));
        let handles = (1..threads)
            .map(|index| {
                let (shared, started) = (Arc::clone(&shared), Arc::clone(&started));
                std::thread::Builder::new()
                    .name(format!("chronos2-worker-{index}"))
                    .spawn(move || {
                        started.wait();
                        worker(&shared);
                    })
                    .expect("spawning a worker thread")
            })
            .collect();
        started.wait();
        Self {
            shared,
            threads,
            handles,
            caller: Mutex::new(()),
        }
    }

    /// The one-thread pool: every region runs on the caller.
    pub fn serial() -> &'static Pool {
        static SERIAL: OnceLock<Pool> = OnceLock::new();
        SERIAL.get_or_init(|| Pool::new(1))
    }

    /// A process-wide pool of all cores, created on first use, for callers that bring no pool
    /// of their own (the model's plain `forward`). Engines size their own from `--threads`.
    pub fn global() -> &'static Pool {
        static GLOBAL: OnceLock<Pool> = OnceLock::new();
        GLOBAL.get_or_init(|| Pool::new(std::thread::available_parallelism().map_or(1, |n| n.get())))
    }

    /// Threads in the pool, the caller included.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `task(i)` for every `i` in `0..tasks`, each exactly once, on the caller and the
    /// workers, and returns when all have finished. Tasks are claimed in increasing order from
    /// a shared counter. A panic in a worker aborts the process (unwinding across the erased
    /// borrow would be unsound).
    pub fn parallel_for(&self, tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        if self.threads == 1 || tasks <= 1 {
            (0..tasks).for_each(task);
            return;
        }
        let _serial = self.caller.lock().unwrap_or_else(|e| e.into_inner());
        let shared = &*self.shared;
        // SAFETY: the transmute only erases the lifetime of the borrowed closure. A worker
        // dereferences it only after registering in `active` and then seeing `open`; this
        // function clears `open` and waits for `active` to reach 0 before it returns, so the
        // closure outlives every use.
        let erased = Job(unsafe {
            std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), *const (dyn Fn(usize) + Sync + 'static)>(task)
        });
        shared.next.store(0, Ordering::SeqCst);
        let wake = {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            state.job = Some(erased);
            state.tasks = tasks;
            state.generation += 1;
            shared.open.store(true, Ordering::SeqCst);
            shared.generation.store(state.generation, Ordering::SeqCst);
            state.sleepers > 0
        };
        if wake {
            shared.wake.notify_all();
        }
        claim_tasks(shared, tasks, task);
        // Close the job, then wait for the workers that entered it (they are running a task
        // or about to find the counter exhausted). A worker that had not entered never will.
        shared.open.store(false, Ordering::SeqCst);
        let started = Instant::now();
        while shared.active.load(Ordering::SeqCst) > 0 {
            if started.elapsed() < SPIN {
                std::hint::spin_loop();
            } else {
                // The worker was preempted mid-task: give it the core.
                std::thread::yield_now();
            }
        }
        let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state.job = None;
    }

    /// Splits `data` into chunks of `chunk` elements and calls `f(index, chunk)` for each. The
    /// chunks are handed out as one contiguous run per thread (neighbouring chunks stay on one
    /// thread, as their data is neighbouring too).
    pub fn for_each_chunk<T: Send>(&self, data: &mut [T], chunk: usize, f: &(dyn Fn(usize, &mut [T]) + Sync)) {
        let chunk = chunk.max(1);
        let len = data.len();
        let chunks = len.div_ceil(chunk);
        let runs = chunks.min(self.threads);
        let base = SharedMut::new(data);
        self.parallel_for(runs, &|run| {
            for index in chunks * run / runs..chunks * (run + 1) / runs {
                let start = index * chunk;
                let end = (start + chunk).min(len);
                // SAFETY: chunk ranges are disjoint across indices, lie inside `data`, whose
                // unique borrow is held for the whole call, and each index is in exactly one run,
                // which runs exactly once.
                let part = unsafe { std::slice::from_raw_parts_mut(base.get().add(start), end - start) };
                f(index, part);
            }
        });
    }
}

/// A task of [`Pool::for_each_task_with_scratch`]: `(task, its output, its run's scratch)`.
pub type TaskWithScratch<'a> = dyn Fn(usize, &mut [f32], &mut [f32]) + Sync + 'a;

impl Pool {
    /// Runs `f(task, out, scratch)` for every task in `0..output.len() / out_len`: `out` is
    /// the task's own `out_len` chunk of `output`; `scratch` is a `scratch_len` chunk of
    /// `scratch` owned by the run executing the task. Tasks are split into
    /// `scratch.len() / scratch_len` contiguous runs (so that many tasks share little
    /// scratch), claimed as [`parallel_for`](Self::parallel_for) claims.
    ///
    /// # Panics
    /// If `scratch` holds no run (`scratch.len() < scratch_len`) while there are tasks.
    pub fn for_each_task_with_scratch(
        &self,
        output: &mut [f32],
        out_len: usize,
        scratch: &mut [f32],
        scratch_len: usize,
        f: &TaskWithScratch<'_>,
    ) {
        let out_len = out_len.max(1);
        let tasks = output.len() / out_len;
        if tasks == 0 {
            return;
        }
        let runs = (scratch.len() / scratch_len.max(1)).min(tasks);
        assert!(runs > 0, "for_each_task_with_scratch: scratch holds no run");
        let (out_base, scratch_base) = (SharedMut::new(output), SharedMut::new(scratch));
        self.parallel_for(runs, &|run| {
            // SAFETY: each run owns its scratch chunk `[run·scratch_len, (run+1)·scratch_len)`
            // (inside `scratch`, runs < scratch.len() / scratch_len), each task its output chunk
            // (inside `output`), each task is in exactly one run and each run runs once; both
            // unique borrows are held for the whole call.
            let area =
                unsafe { std::slice::from_raw_parts_mut(scratch_base.get().add(run * scratch_len), scratch_len) };
            for task in tasks * run / runs..tasks * (run + 1) / runs {
                // SAFETY: as above.
                let out = unsafe { std::slice::from_raw_parts_mut(out_base.get().add(task * out_len), out_len) };
                f(task, out, area);
            }
        });
    }
}

/// Claims and runs tasks of the current job until the counter passes `tasks`.
fn claim_tasks(shared: &Shared, tasks: usize, task: &(dyn Fn(usize) + Sync)) {
    loop {
        let index = shared.next.fetch_add(1, Ordering::SeqCst);
        if index >= tasks {
            return;
        }
        task(index);
    }
}

/// The base pointer of a buffer whose disjoint parts the tasks of one parallel region write
/// (chunks in [`Pool::for_each_chunk`], output tiles in the GEMMs): every user derives only
/// its own part from it while the buffer's unique borrow is held for the whole region.
pub(crate) struct SharedMut<T>(*mut T);
impl<T> Clone for SharedMut<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SharedMut<T> {}
// SAFETY: each task derives a disjoint part from it (see the type's contract), and the
// elements may be sent to another thread (`T: Send`).
unsafe impl<T: Send> Send for SharedMut<T> {}
unsafe impl<T: Send> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    /// Shares `data`'s base pointer.
    pub(crate) fn new(data: &mut [T]) -> Self {
        Self(data.as_mut_ptr())
    }

    /// The base pointer.
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        {
            let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            state.shutdown = true;
        }
        self.shared.wake.notify_all();
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

fn worker(shared: &Shared) {
    let mut seen = 0u64;
    loop {
        // Spin briefly for the next region, poll while yielding, then sleep until one is
        // published. The clock is read only every 256 polls, so a new region is noticed within
        // a few hundred nanoseconds.
        let started = Instant::now();
        let mut polls = 0u32;
        while shared.generation.load(Ordering::SeqCst) == seen {
            polls = polls.wrapping_add(1);
            if !polls.is_multiple_of(256) {
                std::hint::spin_loop();
                continue;
            }
            let idle = started.elapsed();
            if idle >= POLL {
                break;
            }
            if idle >= SPIN {
                std::thread::yield_now();
            }
        }
        if shared.generation.load(Ordering::SeqCst) == seen {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            state.sleepers += 1;
            while state.generation == seen && !state.shutdown {
                state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            state.sleepers -= 1;
            if state.shutdown {
                return;
            }
        }
        // Enter, then check that the job is still open (the caller closes it before waiting
        // for `active`, so either it sees us or we see it closed).
        let observed = shared.generation.load(Ordering::SeqCst);
        shared.active.fetch_add(1, Ordering::SeqCst);
        if shared.open.load(Ordering::SeqCst) {
            let (generation, job, tasks) = {
                let state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                (state.generation, state.job, state.tasks)
            };
            seen = generation;
            if let Some(job) = job {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    // SAFETY: we are registered in `active` and saw the job open, so its
                    // publishing call has not returned and keeps the closure alive.
                    claim_tasks(shared, tasks, unsafe { &*job.0 });
                }));
                if outcome.is_err() {
                    eprintln!("fatal: a chronos2 worker thread panicked");
                    std::process::abort();
                }
            }
        } else {
            seen = observed;
        }
        shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_task_runs_exactly_once() {
        for threads in [1, 2, 3] {
            let pool = Pool::new(threads);
            let hits: Vec<AtomicUsize> = (0..37).map(|_| AtomicUsize::new(0)).collect();
            for _ in 0..200 {
                pool.parallel_for(hits.len(), &|i| {
                    hits[i].fetch_add(1, Ordering::SeqCst);
                });
            }
            assert!(
                hits.iter().all(|h| h.load(Ordering::SeqCst) == 200),
                "{threads} threads"
            );
        }
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

    #[test]
    fn tasks_get_their_own_output_and_a_run_of_scratch() {
        let pool = Pool::new(2);
        let mut out = vec![0.0f32; 10 * 3];
        let mut scratch = vec![0.0f32; 4 * 5];
        pool.for_each_task_with_scratch(&mut out, 3, &mut scratch, 5, &|task, out, scratch| {
            scratch.fill(task as f32);
            out.fill(task as f32 + scratch[4]);
        });
        for (i, v) in out.iter().enumerate() {
            assert_eq!(*v, 2.0 * (i / 3) as f32);
        }
    }

    #[test]
    fn a_pool_of_n_uses_at_most_n_threads() {
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads);
            let ids = Mutex::new(std::collections::HashSet::new());
            for _ in 0..50 {
                pool.parallel_for(64, &|_| {
                    ids.lock().unwrap().insert(std::thread::current().id());
                    std::thread::sleep(Duration::from_micros(20));
                });
            }
            let used = ids.lock().unwrap().len();
            assert!(used <= threads, "{threads}-thread pool ran on {used} threads");
            assert!(used >= 1);
        }
    }
}
