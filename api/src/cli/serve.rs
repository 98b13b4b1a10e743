//! `pratica serve`: deploy a directory of workflows and run the workers until stopped.

use std::path::Path;

use pratica_engine::runtime::Engine;

use crate::cli::validate;
use crate::config::Config;

/// Deploys every valid workflow under `dir`, reporting invalid files without stopping.
/// Returns how many files were refused.
pub async fn deploy_directory(engine: &Engine, dir: &Path, config: &Config) -> anyhow::Result<usize> {
    let reports = validate::validate_paths(&[dir.to_path_buf()], config, None)?;
    let mut refused = 0;
    // Children before parents is not required: sub-workflows resolve when the step runs.
    for r in &reports {
        if !r.valid {
            refused += 1;
            tracing::error!(file = %r.file, problems = r.diagnostics.len(), "workflow file refused: {}", r.diagnostics.first().map(|d| d.message.clone()).unwrap_or_default());
            continue;
        }
        let source = std::fs::read_to_string(&r.file)?;
        match engine.deploy(&source).await {
            Ok(d) if d.created => tracing::info!(workflow = %d.workflow, version = d.version, "deployed"),
            Ok(d) => tracing::debug!(workflow = %d.workflow, version = d.version, "already deployed"),
            Err(e) => {
                refused += 1;
                tracing::error!(file = %r.file, error = %e, "workflow file refused");
            }
        }
    }
    Ok(refused)
}

/// Resolves when the process receives SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Runs the HTTP API (REST and console) on `listener` and the engine's workers until the
/// same SIGINT/SIGTERM; task forms are validated against the schemas in `schemas`, webhook
/// timestamps within `config`'s `[webhooks] tolerance`.
pub async fn http_and_workers(
    engine: Engine,
    listener: tokio::net::TcpListener,
    schemas: Option<std::path::PathBuf>,
    config: &Config,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        stop.send_replace(true);
    });
    let signal = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let tolerance = config.webhooks.tolerance().map_err(anyhow::Error::msg)?;
    let mut state = crate::app::AppState::new(engine.clone()).with_webhook_tolerance(tolerance);
    if let Some(dir) = schemas {
        state = state.with_schemas(dir);
    }
    tokio::try_join!(
        async { crate::http::serve(listener, state, signal(stopped.clone())).await.context("the HTTP server failed") },
        async { engine.run_until_stopped(signal(stopped.clone())).await.map_err(anyhow::Error::from) },
    )?;
    Ok(())
}
