//! Waiting for a condition with a deadline instead of sleeping a fixed time: the one poll
//! loop of the suites. A test that needs time to *pass* for the engine moves a
//! [`ManualClock`](pratica_engine::clock::ManualClock) instead.

use std::time::Duration;

/// How often [`eventually`] probes.
const POLL: Duration = Duration::from_millis(20);

/// Runs `probe` until it returns `Ok`, every 20 ms, for at most `within`; on the deadline it
/// returns the last `Err` (what was seen instead), for the caller's assertion message.
pub async fn eventually<T, E>(within: Duration, probe: impl AsyncFnMut() -> Result<T, E>) -> Result<T, E> {
    eventually_every(POLL, within, probe).await
}

/// [`eventually`], probing every `every` (for probes that are expensive, such as counting a
/// thousand instances).
pub async fn eventually_every<T, E>(every: Duration, within: Duration, mut probe: impl AsyncFnMut() -> Result<T, E>) -> Result<T, E> {
    let give_up = tokio::time::Instant::now() + within;
    loop {
        match probe().await {
            Ok(value) => return Ok(value),
            Err(seen) if tokio::time::Instant::now() >= give_up => return Err(seen),
            Err(_) => tokio::time::sleep(every).await,
        }
    }
}

/// Polls `ready` until it is true, for at most `within`; panics naming `what` otherwise.
pub async fn wait_until(what: &str, within: Duration, mut ready: impl AsyncFnMut() -> bool) {
    let ready = eventually(within, async || if ready().await { Ok(()) } else { Err(()) });
    assert!(ready.await.is_ok(), "timed out after {within:?} waiting for {what}");
}
