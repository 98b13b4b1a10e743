//! The budget of user-written code: every `${ }` expression and `{{ }}` template a workflow
//! author wrote is evaluated under limits, so that no definition can stop, freeze or exhaust
//! the server.
//!
//! An evaluation runs inside [`metered`], which arms a meter on the current thread: fuel
//! (evaluation steps), a wall-clock deadline, memory (bytes allocated and still live, counted
//! by [`MeteredAllocator`] when the program installs it) and native stack. The interpreters
//! call [`tick`] at every step (jq: every term evaluated; handlebars: every helper call and
//! write); when a limit is passed, `tick` unwinds back to `metered` with the limit that was
//! hit, and the evaluation fails with [`Exceeded`] — a step error (`expression.budget`,
//! `template.budget`), never a crash. Evaluation itself runs on [`Evaluator`] threads (large
//! stacks, off the async runtime), so a slow expression never blocks HTTP or other instances.
//!
//! The limits are [`Limits`]; a transition sets them (and the engine's clock, which jq's `now`
//! reads) for everything it evaluates with [`in_scope`].

mod alloc;
mod pool;
mod static_check;

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::{Duration, Instant};

pub use alloc::MeteredAllocator;
pub use pool::{Evaluator, EvaluatorGone};
pub use static_check::never_terminates;

#[cfg(panic = "abort")]
compile_error!("the expression budget unwinds out of the interpreters: build with panic = \"unwind\"");

/// Limits on one evaluation of an expression or a template, and on the values a step writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Evaluation steps (jq terms evaluated, handlebars helper calls and writes).
    pub fuel: u64,
    /// Wall-clock time of one evaluation.
    pub time: Duration,
    /// Bytes allocated and still live during one evaluation (enforced when the program
    /// installs [`MeteredAllocator`], as `pratica` does).
    pub memory: usize,
    /// Size of the JSON an expression returns, or of the text a template renders.
    pub output: usize,
    /// Nesting depth of the value an expression returns.
    pub depth: usize,
    /// Size of one step output, variable or message payload written into the state.
    pub value: usize,
    /// Size of an instance's whole state document.
    pub state: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 2_000_000,
            time: Duration::from_secs(1),
            memory: 64 << 20,
            output: 1 << 20,
            depth: 128,
            value: 1 << 20,
            state: 16 << 20,
        }
    }
}

/// Which limit an evaluation passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    Fuel(u64),
    Time(Duration),
    Memory(usize),
    Stack,
    Output(usize),
    Depth(usize),
    /// A string repetition (`"x" * n`) would build a string longer than this many bytes.
    Repetition(usize),
    /// The interpreter failed unexpectedly (a bug in it); the process is unharmed.
    Interrupted,
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exceeded::Fuel(n) => write!(f, "it did not finish within its budget of {n} evaluation steps"),
            Exceeded::Time(t) => write!(f, "it did not finish within its time budget of {} ms", t.as_millis()),
            Exceeded::Memory(b) => write!(f, "it used more than its memory budget of {} MiB", b >> 20),
            Exceeded::Stack => f.write_str("it recursed too deeply"),
            Exceeded::Output(b) => write!(f, "its result is larger than {} KiB", b >> 10),
            Exceeded::Depth(d) => write!(f, "its result is nested deeper than {d} levels"),
            Exceeded::Repetition(b) => write!(f, "it repeated a string past {} MiB", b >> 20),
            Exceeded::Interrupted => f.write_str("its evaluation failed unexpectedly"),
        }
    }
}

/// Native stack an evaluation may use on a thread that is not an [`Evaluator`] thread (a
/// test, the CLI): enough for any reasonable expression, far from a 2 MiB thread's end.
const DEFAULT_STACK_ALLOWANCE: usize = 1 << 20;
/// How many ticks pass between two looks at the clock.
const CLOCK_EVERY: u64 = 256;

thread_local! {
    static SCOPE: Cell<Scope> = const { Cell::new(Scope::NONE) };
    static METER: Cell<Meter> = const { Cell::new(Meter::OFF) };
    static STACK_ALLOWANCE: Cell<usize> = const { Cell::new(DEFAULT_STACK_ALLOWANCE) };
}

/// What a transition sets for everything evaluated in it.
#[derive(Debug, Clone, Copy)]
struct Scope {
    limits: Option<Limits>,
    /// The engine's clock, in milliseconds since the epoch (jq's `now`).
    now: Option<i64>,
}

impl Scope {
    const NONE: Scope = Scope { limits: None, now: None };
}

#[derive(Debug, Clone, Copy)]
struct Meter {
    active: bool,
    fuel_left: u64,
    fuel: u64,
    started: Option<Instant>,
    time: Duration,
    memory_base: isize,
    memory: usize,
    stack_floor: usize,
}

impl Meter {
    const OFF: Meter =
        Meter { active: false, fuel_left: 0, fuel: 0, started: None, time: Duration::ZERO, memory_base: 0, memory: 0, stack_floor: 0 };
}

/// Runs `f` with `limits` and the engine's clock `now_ms` in force for every evaluation in it.
pub fn in_scope<T>(limits: Limits, now_ms: i64, f: impl FnOnce() -> T) -> T {
    let previous = SCOPE.replace(Scope { limits: Some(limits), now: Some(now_ms) });
    struct Restore(Scope);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPE.set(self.0);
        }
    }
    let _restore = Restore(previous);
    f()
}

/// The limits in force on this thread (the scope's, or the defaults).
pub fn limits() -> Limits {
    SCOPE.get().limits.unwrap_or_default()
}

/// The engine's clock in force, if a transition set one.
pub fn now_ms() -> Option<i64> {
    SCOPE.get().now
}

/// Evaluates `f` under the limits in force. `f` calls [`tick`] as it works; passing a limit
/// ends it with the limit it passed. A panic inside `f` (an interpreter bug) is contained too.
pub fn metered<T>(f: impl FnOnce() -> T) -> Result<T, Exceeded> {
    let limits = limits();
    let here = stack_address();
    let previous = METER.replace(Meter {
        active: true,
        fuel_left: limits.fuel,
        fuel: limits.fuel,
        started: Some(Instant::now()),
        time: limits.time,
        memory_base: alloc::live_bytes(),
        memory: limits.memory,
        stack_floor: here.saturating_sub(STACK_ALLOWANCE.get()),
    });
    let result = catch_unwind(AssertUnwindSafe(f));
    METER.set(previous);
    match result {
        Ok(value) => Ok(value),
        Err(payload) => match payload.downcast::<Exceeded>() {
            Ok(exceeded) => Err(*exceeded),
            Err(_) => Err(Exceeded::Interrupted),
        },
    }
}

/// Evaluates `f` under the limits in force, on an evaluator thread: here when this is one,
/// otherwise on the shared pool with this thread's scope (limits, clock), waiting for it.
/// Everything that evaluates user-written code goes through here.
pub fn isolated<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Exceeded> {
    if pool::on_evaluator() {
        return metered(f);
    }
    let scope = SCOPE.get();
    Evaluator::shared()
        .run_blocking(move || {
            SCOPE.set(scope);
            metered(f)
        })
        .unwrap_or(Err(Exceeded::Interrupted))
}

/// Whether `value`, written as JSON, would take more than `limit` bytes (an estimate that
/// never undercounts by much, and stops walking as soon as the limit is passed).
pub fn json_size_exceeds(value: &serde_json::Value, limit: usize) -> bool {
    fn walk(v: &serde_json::Value, left: &mut usize) -> bool {
        use serde_json::Value::*;
        let own = match v {
            Null | Bool(_) => 5,
            Number(_) => 8,
            String(s) => s.len() + 2,
            Array(items) => {
                if items.iter().any(|i| walk(i, left)) {
                    return true;
                }
                items.len() + 2
            }
            Object(map) => {
                if map.iter().any(|(k, i)| {
                    *left = left.saturating_sub(k.len() + 3);
                    walk(i, left)
                }) {
                    return true;
                }
                2
            }
        };
        match left.checked_sub(own) {
            Some(rest) => {
                *left = rest;
                false
            }
            None => true,
        }
    }
    let mut left = limit;
    walk(value, &mut left) || left == 0
}

/// One evaluation step: ends the evaluation (by unwinding to [`metered`]) when a limit is
/// passed. Outside [`metered`] it does nothing.
#[inline]
pub fn tick() {
    let mut m = METER.get();
    if !m.active {
        return;
    }
    if m.fuel_left == 0 {
        stop(Exceeded::Fuel(m.fuel));
    }
    m.fuel_left -= 1;
    if stack_address() < m.stack_floor {
        stop(Exceeded::Stack);
    }
    if alloc::live_bytes().saturating_sub(m.memory_base) > m.memory as isize {
        stop(Exceeded::Memory(m.memory));
    }
    if m.fuel_left.is_multiple_of(CLOCK_EVERY) && m.started.is_some_and(|s| s.elapsed() > m.time) {
        stop(Exceeded::Time(m.time));
    }
    METER.set(m);
}

/// Ends the running evaluation because of `why`. The meter is switched off first, so the
/// destructors that run while unwinding do not tick again.
fn stop(why: Exceeded) -> ! {
    METER.set(Meter { active: false, ..METER.get() });
    resume_unwind(Box::new(why))
}

/// An address on the current thread's stack (stacks grow down on every platform we run on).
#[inline(always)]
fn stack_address() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// Declares how much native stack evaluations on this thread may use (evaluator threads,
/// which have large stacks).
pub(crate) fn set_stack_allowance(bytes: usize) {
    STACK_ALLOWANCE.set(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spin(n: u64) {
        for _ in 0..n {
            tick();
        }
    }

    #[test]
    fn fuel_ends_an_evaluation_without_harming_the_thread() {
        let limits = Limits { fuel: 1000, ..Limits::default() };
        let r = in_scope(limits, 0, || metered(|| spin(10_000)));
        assert_eq!(r, Err(Exceeded::Fuel(1000)));
        assert_eq!(in_scope(limits, 0, || metered(|| spin(10))), Ok(()));
        // Outside an evaluation, ticks are free.
        spin(10_000);
    }

    #[test]
    fn time_ends_an_evaluation() {
        let limits = Limits { fuel: u64::MAX, time: Duration::from_millis(20), ..Limits::default() };
        let started = Instant::now();
        let r = in_scope(limits, 0, || {
            metered(|| {
                loop {
                    tick();
                }
            })
        });
        assert_eq!(r, Err(Exceeded::Time(Duration::from_millis(20))));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn deep_recursion_is_stopped_before_the_stack_ends() {
        fn recurse(n: u64) -> u64 {
            tick();
            let pad = std::hint::black_box([0u8; 256]);
            // Never true: the budget, not the base case, ends the recursion.
            if std::hint::black_box(n) == u64::MAX {
                return 0;
            }
            recurse(n + 1) + u64::from(pad[0])
        }
        let r = metered(|| recurse(0));
        assert_eq!(r, Err(Exceeded::Stack));
    }

    #[test]
    fn panics_inside_are_contained() {
        let r: Result<(), _> = metered(|| panic!("interpreter bug"));
        assert_eq!(r, Err(Exceeded::Interrupted));
    }

    #[test]
    fn the_scope_sets_the_clock() {
        assert_eq!(now_ms(), None);
        assert_eq!(in_scope(Limits::default(), 42, now_ms), Some(42));
        assert_eq!(now_ms(), None);
    }
}
