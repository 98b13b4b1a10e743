//! Helpers shared by Pratica's cross-crate test suites.

use std::path::{Path, PathBuf};

/// The repository root (the workspace directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ lives in the repository root").to_path_buf()
}

/// A path inside the repository.
pub fn repo_path(relative: &str) -> PathBuf {
    repo_root().join(relative)
}

/// The `pratica` binary built by `cargo test --workspace` (or `cargo nextest run --workspace`),
/// which builds every target of the workspace before running tests.
pub fn pratica_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    // target/debug/deps/<test> → target/debug/pratica
    let path = exe.parent().and_then(Path::parent).expect("test binaries live in target/<profile>/deps").join("pratica");
    assert!(path.is_file(), "{} is missing: build it first (`cargo build --workspace --bins`, which ./scripts/test does)", path.display());
    path
}

pub mod app;
pub mod backend;
pub mod naspi;
pub mod scripted;
pub mod sink;
pub mod wait;
