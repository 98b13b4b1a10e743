//! Console sign-in throttling: failed sign-ins are counted durably (table `login_throttle`)
//! per account and per client address; past a limit within a window the key is locked for a
//! while, and sign-ins for it are refused without checking the password.
//!
//! | key | limit | window | lock |
//! |---|---|---|---|
//! | `user:<username as typed>` | [`ACCOUNT`]: 5 failures | 15 minutes | 15 minutes |
//! | `addr:<client IP address>` | [`ADDRESS`]: 20 failures | 15 minutes | 15 minutes |
//!
//! Unknown usernames are counted and locked exactly like existing ones, so neither the
//! answers nor their timing say which accounts exist. A successful sign-in clears its
//! account's count, not its address's (one valid account must not reset the address limit
//! between guesses at others). The window starts at a key's first failure; keys whose
//! window has passed and that are not locked are purged as sign-ins happen. Behind a reverse
//! proxy every client has the proxy's address, so the address limit then counts all
//! sign-ins through it.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use pratica_engine::clock::Millis;
use pratica_engine::store::{Store, StoreError};

/// How many failures within a window lock a key, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub limit: i64,
    pub window_ms: Millis,
    pub lock_ms: Millis,
}

const MINUTE: Millis = 60_000;

/// Per account (the username typed).
pub const ACCOUNT: Policy = Policy { limit: 5, window_ms: 15 * MINUTE, lock_ms: 15 * MINUTE };
/// Per client address.
pub const ADDRESS: Policy = Policy { limit: 20, window_ms: 15 * MINUTE, lock_ms: 15 * MINUTE };

/// Longest username kept in a key (longer ones are cut: they match no account anyway).
const MAX_NAME: usize = 200;

/// The client's IP address, when the server knows it (`pratica serve` does; a router called
/// directly in tests may not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => write!(f, "{ip}"),
            None => f.write_str("unknown"),
        }
    }
}

/// The throttling keys of one sign-in attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    account: String,
    address: Option<String>,
}

impl Keys {
    pub fn new(username: &str, client: ClientAddr) -> Self {
        let name: String = username.chars().take(MAX_NAME).collect();
        Keys { account: format!("user:{name}"), address: client.0.map(|ip| format!("addr:{ip}")) }
    }

    fn with_policies(&self) -> impl Iterator<Item = (&str, Policy)> {
        std::iter::once((self.account.as_str(), ACCOUNT)).chain(self.address.as_deref().map(|a| (a, ADDRESS)))
    }
}

/// When the lock on the attempt's account or address ends, if one is locked at `now`.
pub async fn locked_until(store: &Store, keys: &Keys, now: Millis) -> Result<Option<Millis>, StoreError> {
    let list: Vec<&str> = keys.with_policies().map(|(k, _)| k).collect();
    store.login_locked_until(&list, now).await
}

/// What a recorded failure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// Failures of the account within its window, this one included.
    pub account_failures: i64,
    /// When the lock this failure started (or that was already there) ends.
    pub locked_until: Option<Millis>,
}

/// Counts a failed sign-in against the account and the address, locking what went over its
/// limit.
pub async fn record_failure(store: &Store, keys: &Keys, now: Millis) -> Result<Failure, StoreError> {
    let mut out = Failure { account_failures: 0, locked_until: None };
    for (key, policy) in keys.with_policies() {
        let counted = store.record_login_failure(key, now, now - policy.window_ms).await?;
        if key == keys.account {
            out.account_failures = counted.failures;
        }
        let until = if counted.failures >= policy.limit {
            let until = now + policy.lock_ms;
            store.lock_login(key, until).await?;
            Some(until)
        } else {
            counted.locked_until.filter(|u| *u > now)
        };
        out.locked_until = out.locked_until.max(until);
    }
    store.purge_login_failures(now, now - ACCOUNT.window_ms.max(ADDRESS.window_ms)).await?;
    Ok(out)
}

/// A successful sign-in: the account starts afresh (the address does not).
pub async fn record_success(store: &Store, keys: &Keys) -> Result<(), StoreError> {
    store.clear_login_failures(&keys.account).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_account_and_the_address() {
        let keys = Keys::new("anna", ClientAddr(Some("10.0.0.7".parse().unwrap())));
        assert_eq!(keys.with_policies().collect::<Vec<_>>(), [("user:anna", ACCOUNT), ("addr:10.0.0.7", ADDRESS)]);
        let keys = Keys::new(&"x".repeat(500), ClientAddr(None));
        assert_eq!(keys.with_policies().count(), 1);
        assert_eq!(keys.account.len(), 5 + MAX_NAME);
    }
}
