//! Evaluator threads: where transitions evaluate user-written expressions and templates.
//!
//! They are plain OS threads with large stacks, outside the async runtime: an evaluation
//! that uses its whole time budget delays only the work queued behind it on these threads,
//! never the HTTP API, `/healthz` or connector calls in flight. One pool serves the process.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, LazyLock, Mutex};

/// Stack of an evaluator thread (address space; only the pages an evaluation touches are
/// committed).
const STACK_SIZE: usize = 1 << 30;
/// Stack an evaluation may use on an evaluator thread. The rest is headroom for what runs
/// after the meter stops: dropping what the evaluation built (a chain as long as its fuel
/// allowed) recurses as deep as it was built.
const STACK_ALLOWANCE: usize = 384 << 20;

thread_local! {
    static ON_EVALUATOR: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the current thread is an evaluator thread.
pub(crate) fn on_evaluator() -> bool {
    ON_EVALUATOR.get()
}

type Work = Box<dyn FnOnce() + Send>;

/// The process's evaluator threads.
#[derive(Clone)]
pub struct Evaluator {
    queue: Sender<Work>,
}

/// The evaluation could not run: its thread panicked outside the budget (a bug), or the
/// pool is gone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the evaluator failed unexpectedly")]
pub struct EvaluatorGone;

static SHARED: LazyLock<Evaluator> = LazyLock::new(|| {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
    Evaluator::start(threads)
});

impl Evaluator {
    /// The process-wide pool (as many threads as cores, at least two).
    pub fn shared() -> &'static Evaluator {
        &SHARED
    }

    fn start(threads: usize) -> Self {
        let (queue, work) = channel::<Work>();
        let work = Arc::new(Mutex::new(work));
        for i in 0..threads {
            let work = Arc::clone(&work);
            let spawned =
                std::thread::Builder::new().name(format!("pratica-eval-{i}")).stack_size(STACK_SIZE).spawn(move || run_queue(&work));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start an evaluator thread");
            }
        }
        Self { queue }
    }

    /// Runs `f` on an evaluator thread and waits for its result without blocking the async
    /// runtime.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, EvaluatorGone> {
        let (done, result) = tokio::sync::oneshot::channel();
        let work: Work = Box::new(move || {
            let _ = done.send(catch_unwind(AssertUnwindSafe(f)));
        });
        self.queue.send(work).map_err(|_| EvaluatorGone)?;
        match result.await {
            Ok(Ok(value)) => Ok(value),
            _ => Err(EvaluatorGone),
        }
    }

    /// Runs `f` on an evaluator thread, blocking the calling thread until it is done (for
    /// synchronous callers that are not on one: tests, the CLI).
    pub fn run_blocking<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, EvaluatorGone> {
        let (done, result) = std::sync::mpsc::sync_channel(1);
        let work: Work = Box::new(move || {
            let _ = done.send(catch_unwind(AssertUnwindSafe(f)));
        });
        self.queue.send(work).map_err(|_| EvaluatorGone)?;
        match result.recv() {
            Ok(Ok(value)) => Ok(value),
            _ => Err(EvaluatorGone),
        }
    }
}

fn run_queue(work: &Mutex<Receiver<Work>>) {
    super::set_stack_allowance(STACK_ALLOWANCE);
    ON_EVALUATOR.set(true);
    loop {
        let next = match work.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match next {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_work_off_the_runtime_and_survives_a_panic() {
        let pool = Evaluator::shared();
        let name = pool.run(|| std::thread::current().name().map(str::to_string)).await.unwrap();
        assert!(name.unwrap().starts_with("pratica-eval-"));
        assert_eq!(pool.run(|| -> u8 { panic!("bug") }).await, Err(EvaluatorGone));
        assert_eq!(pool.run(|| 7).await, Ok(7));
    }

    #[tokio::test]
    async fn evaluations_may_recurse_deeply_on_evaluator_threads() {
        fn recurse(n: u64) -> u64 {
            super::super::tick();
            let pad = std::hint::black_box([0u8; 256]);
            if n == 0 { 0 } else { recurse(n - 1) + u64::from(pad[0]) }
        }
        let r = Evaluator::shared().run(|| super::super::metered(|| recurse(100_000))).await.unwrap();
        assert_eq!(r, Ok(0));
    }
}
