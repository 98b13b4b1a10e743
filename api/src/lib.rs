//! Pratica's outer layer: configuration, the workflow files of a deployment, and the
//! `pratica` command's sub-commands. (The REST API and the operator console live here too.)
//!
//! # Layout
//! - [`config`]: `pratica.toml` — connector instances and their settings.
//! - [`workspace`]: finding workflow files and schemas on disk, and the [`Catalog`] they form.
//! - [`registry`]: the connectors of an installation (built-ins + `pratica.toml`).
//! - [`app`]: the application layer every surface shares: the [`AppState`], the caller's
//!   roles and credentials, and the use-cases (authorise, then call the engine) with their
//!   [`AppError`]. No HTTP types.
//! - Surfaces, one module tree each:
//!   - [`http`]: the HTTP API (axum): REST, external-task protocol, webhooks, health, metrics.
//!   - [`console`]: the operator console (server-rendered HTML).
//!   - [`cli`]: the sub-commands (`validate`, `graph`, `run`, `serve`, `history`, `audit`, …;
//!     `demo` with the `demo` feature).
//!
//! [`Catalog`]: pratica_engine::definition::Catalog
//! [`AppState`]: app::AppState
//! [`AppError`]: app::AppError

pub mod app;
pub mod cli;
pub mod config;
pub mod console;
pub mod http;
pub mod registry;
pub mod workspace;
