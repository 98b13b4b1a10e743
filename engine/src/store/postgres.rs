//! PostgreSQL: several processes share the work. Claims use `FOR UPDATE SKIP LOCKED`;
//! transitions lock their instance row. `?schema=NAME` in the URL selects (and creates) a
//! schema, which is how each test run gets its own.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};

shared_queries!(sqlx::Postgres, PgRow, "FOR UPDATE", "FOR UPDATE SKIP LOCKED");

pub(super) async fn begin_write(pool: &sqlx::PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    pool.begin().await
}

pub(super) async fn connect(url: &str) -> Result<sqlx::PgPool, StoreError> {
    let (base, schema) = split_schema(url);
    let mut options = PgConnectOptions::from_str(&base)?;
    if let Some(schema) = &schema {
        if !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(StoreError::Url(format!("schema `{schema}`: use letters, digits and underscores")));
        }
        let setup = PgPoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        // `schema` was checked above to be letters, digits and underscores.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {schema}"))).execute(&setup).await?;
        setup.close().await;
        options = options.options([("search_path", schema.as_str())]);
    }
    Ok(PgPoolOptions::new().max_connections(8).connect_with(options).await?)
}

fn split_schema(url: &str) -> (String, Option<String>) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| match p.strip_prefix("schema=") {
            Some(v) => {
                schema = Some(v.to_string());
                false
            }
            None => true,
        })
        .collect();
    let base = if rest.is_empty() { path.to_string() } else { format!("{path}?{}", rest.join("&")) };
    (base, schema)
}
