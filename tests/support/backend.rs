//! Test databases: a fresh SQLite file, or a fresh schema in the PostgreSQL at
//! `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`). Outside CI a
//! missing PostgreSQL skips its tests with a message; in CI (`CI=true`) it is an error.

use std::path::PathBuf;

use pratica_engine::store::Store;

/// The engine-only harness lives with the others in [`crate::app`].
pub use crate::app::{TestEngine, test_engine};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A scratch directory removed on drop.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("pratica-test-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Self(dir)
    }
}

impl Default for ScratchDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A database URL for a fresh, empty database of `backend`, or `None` when PostgreSQL is
/// not reachable outside CI.
pub async fn fresh_database(backend: Backend, scratch: &ScratchDir) -> Option<String> {
    match backend {
        Backend::Sqlite => Some(format!("sqlite://{}", scratch.0.join("pratica.db").display())),
        Backend::Postgres => {
            let base = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_POSTGRES.into());
            let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
            let sep = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{sep}schema={schema}");
            match Store::connect(&url).await {
                Ok(store) => {
                    store.close().await;
                    Some(url)
                }
                Err(e) if std::env::var("CI").is_err() => {
                    eprintln!("PostgreSQL not reachable at {base} ({e}); skipping (set CI=true to make this an error)");
                    None
                }
                Err(e) => panic!("PostgreSQL must be reachable in CI at {base}: {e}"),
            }
        }
    }
}

/// 2026-03-01T09:00:00Z: a fixed start for manual clocks.
pub const T0: i64 = 1_772_355_600_000;

/// Defines one async test per backend from one body: `both_backends!(name, |t| async move { ... })`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)($crate::backend::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)($crate::backend::Backend::Postgres).await
            }
        }
    };
}
