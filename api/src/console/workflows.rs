//! `GET /console/workflows`: the deployed workflows and their versions;
//! `GET /console/workflows/{name}/{version}`: one version's diagram and source.

use axum::extract::{Path, State};
use axum::response::Response;
use maud::html;

use super::Ctx;
use super::instance::diagram_figure;
use super::layout::{Nav, time};
use crate::app::{AppState, Permission, workflows};
use crate::http::ApiError;

pub async fn list(State(state): State<AppState>, ctx: Ctx) -> Response {
    let rows = match workflows::list(&state, &ctx.session.caller).await {
        Ok(rows) => rows,
        Err(e) => return ctx.api_error(e),
    };
    let lang = ctx.lang;
    let t = |it, en| lang.pick(it, en);
    let main = html! {
        h1 { (t("Processi", "Workflows")) }
        @if rows.is_empty() {
            p { (t("Nessun processo pubblicato.", "No workflow deployed.")) }
        } @else {
            div .table-wrap { table #workflows {
                thead { tr {
                    th scope="col" { (t("Processo", "Workflow")) } th scope="col" { (t("Versione", "Version")) }
                    th scope="col" { (t("Pubblicato", "Deployed")) } th scope="col" { "SHA-256" }
                } }
                tbody { @for w in &rows {
                    tr {
                        th scope="row" { (w.name) }
                        td { a href=(format!("/console/workflows/{}/{}", w.name, w.version)) { "v" (w.version) } }
                        td { (time(w.deployed_at)) }
                        td { code { (w.hash.get(..12).unwrap_or(&w.hash)) } }
                    }
                } }
            } }
        }
    };
    ctx.render(ctx.page(t("Processi", "Workflows"), Nav::Workflows), main)
}

pub async fn version(State(state): State<AppState>, ctx: Ctx, Path((name, version)): Path<(String, String)>) -> Response {
    if let Err(e) = ctx.session.caller.require(Permission::ReadWorkflows) {
        return ctx.api_error(e);
    }
    let lang = ctx.lang;
    let t = |it, en| lang.pick(it, en);
    let not_found = || ApiError::NotFound(format!("workflow `{name}` version {version} not found"));
    let Some(number) = version.trim_start_matches('v').parse::<u32>().ok() else { return ctx.api_error(not_found()) };
    let row = match workflows::deployed(&state, &ctx.session.caller, &name, number).await {
        Ok(Some(row)) => row,
        Ok(None) => return ctx.api_error(not_found()),
        Err(e) => return ctx.api_error(e),
    };
    let plan = match workflows::plan(&state, &ctx.session.caller, &name, number).await {
        Ok(plan) => plan,
        Err(e) => return ctx.api_error(e),
    };
    let svg = pratica_engine::graph::to_svg(&plan);
    let title = format!("{name} v{number}");
    let main = html! {
        p .breadcrumb { a href="/console/workflows" { (t("Processi", "Workflows")) } " › " (title) }
        h1 { (title) }
        p .lead { (plan.title) }
        dl .facts {
            dt { (t("Pubblicato", "Deployed")) } dd { (time(row.deployed_at)) }
            dt { "SHA-256" } dd { code { (row.hash) } }
        }
        section aria-labelledby="diagram-heading" {
            h2 #diagram-heading { (t("Diagramma", "Diagram")) }
            (diagram_figure(lang, &svg, &format!("{} {title}", t("Diagramma del processo", "Diagram of workflow"))))
        }
        section aria-labelledby="source-heading" {
            h2 #source-heading { (t("Definizione (YAML)", "Definition (YAML)")) }
            pre .source tabindex="0" { code { (row.source) } }
        }
    };
    ctx.render(ctx.page(&title, Nav::Workflows), main)
}
