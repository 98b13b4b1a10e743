//! Pratica's outer layer: configuration, the workflow files of a deployment, and the
//! `pratica` command's sub-commands. (The REST API and the operator console live here too.)
//!
//! # Layout
//! - [`config`]: `pratica.toml` — connector instances and their settings.
//! - [`workspace`]: finding workflow files and schemas on disk, and the [`Catalog`] they form.
//! - [`registry`]: the connectors of an installation (built-ins + `pratica.toml`).
//! - [`http`]: the HTTP API (axum): the external-task protocol and health check.
//! - [`console`]: the operator console (server-rendered HTML).
//! - [`cli`]: the sub-commands (`validate`, `graph`, `run`, `serve`, `history`, `audit`).
//!
//! [`Catalog`]: pratica_engine::definition::Catalog

pub mod cli;
pub mod config;
pub mod console;
pub mod http;
pub mod registry;
pub mod workspace;
