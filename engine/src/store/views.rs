//! The operator console's store functions: durable console sessions and the read queries of
//! its pages (the case file's business-key search and messages). The SQL runs unchanged on
//! SQLite and PostgreSQL; [`view_queries!`] instantiates it once per backend.

use super::{MessageRow, Store, StoreError};
use crate::clock::Millis;

/// A console session. Only the SHA-256 (hex) of the random session id is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub id_hash: String,
    pub username: String,
    pub created_at: Millis,
    pub expires_at: Millis,
}

macro_rules! view_queries {
    ($Db:ty, $Row:ty, $message_row:path) => {
        use sqlx::{Pool, Row as _};

        use super::{ConsoleSession, MessageRow, StoreError};
        use crate::clock::Millis;

        pub(super) async fn insert_session(pool: &Pool<$Db>, s: &ConsoleSession) -> Result<(), StoreError> {
            sqlx::query("INSERT INTO console_sessions (id_hash, username, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(&s.id_hash)
                .bind(&s.username)
                .bind(s.created_at)
                .bind(s.expires_at)
                .execute(pool)
                .await?;
            Ok(())
        }

        pub(super) async fn session(pool: &Pool<$Db>, id_hash: &str, now: Millis) -> Result<Option<ConsoleSession>, StoreError> {
            let row = sqlx::query(
                "SELECT id_hash, username, created_at, expires_at FROM console_sessions WHERE id_hash = $1 AND expires_at > $2",
            )
            .bind(id_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            let map = |r: &$Row| -> Result<ConsoleSession, sqlx::Error> {
                Ok(ConsoleSession {
                    id_hash: r.try_get("id_hash")?,
                    username: r.try_get("username")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                })
            };
            Ok(row.as_ref().map(map).transpose()?)
        }

        pub(super) async fn delete_session(pool: &Pool<$Db>, id_hash: &str) -> Result<bool, StoreError> {
            let done = sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1").bind(id_hash).execute(pool).await?;
            Ok(done.rows_affected() > 0)
        }

        pub(super) async fn delete_expired_sessions(pool: &Pool<$Db>, now: Millis) -> Result<u64, StoreError> {
            let done = sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1").bind(now).execute(pool).await?;
            Ok(done.rows_affected())
        }

        pub(super) async fn business_keys_like(pool: &Pool<$Db>, pattern: &str, limit: i64) -> Result<Vec<String>, StoreError> {
            let rows = sqlx::query(
                "SELECT business_key, MAX(started_at) AS latest FROM instances \
                 WHERE business_key IS NOT NULL AND UPPER(business_key) LIKE $1 ESCAPE '\\' \
                 GROUP BY business_key ORDER BY latest DESC, business_key LIMIT $2",
            )
            .bind(pattern)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(|r| r.try_get("business_key")).collect::<Result<_, _>>()?)
        }

        pub(super) async fn business_keys_of(pool: &Pool<$Db>, ids: &[String]) -> Result<Vec<(String, Option<String>)>, StoreError> {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let placeholders: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
            let sql = format!("SELECT id, business_key FROM instances WHERE id IN ({})", placeholders.join(", "));
            // Only numbered placeholders are formatted into the text; the ids are bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in ids {
                query = query.bind(id);
            }
            let rows = query.fetch_all(pool).await?;
            Ok(rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("business_key")?))).collect::<Result<_, sqlx::Error>>()?)
        }

        pub(super) async fn messages_with_key(pool: &Pool<$Db>, key: &str, limit: i64) -> Result<Vec<MessageRow>, StoreError> {
            let rows = sqlx::query(
                "SELECT id, name, key, payload, published_at, expires_at, consumed_by FROM messages WHERE key = $1 \
                 ORDER BY published_at, id LIMIT $2",
            )
            .bind(key)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map($message_row).collect::<Result<_, _>>()?)
        }
    };
}

mod sqlite_views {
    view_queries!(sqlx::Sqlite, sqlx::sqlite::SqliteRow, crate::store::sqlite::message_row);
}

mod postgres_views {
    view_queries!(sqlx::Postgres, sqlx::postgres::PgRow, crate::store::postgres::message_row);
}

/// Calls the same-named function of the store's backend.
macro_rules! on_views {
    ($store:expr, $f:ident ( $($arg:expr),* )) => {
        match $store {
            Store::Sqlite(p, _) => sqlite_views::$f(p, $($arg),*).await,
            Store::Postgres(p) => postgres_views::$f(p, $($arg),*).await,
        }
    };
}

/// `LIKE` pattern for "starts with `text`", case-insensitive (compared upper-cased), with
/// `%`, `_` and `\` in the text matched literally.
fn prefix_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 1);
    for c in text.trim().to_uppercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Store {
    /// The business key of each of the instances `ids` (absent ids are left out): one query
    /// for a whole inbox page.
    pub async fn business_keys_of(&self, ids: &[String]) -> Result<std::collections::HashMap<String, Option<String>>, StoreError> {
        let mut keys = std::collections::HashMap::new();
        for chunk in ids.chunks(500) {
            keys.extend(on_views!(self, business_keys_of(chunk))?);
        }
        Ok(keys)
    }

    // ---- operator console: sessions ----

    /// Stores a new console session.
    pub async fn insert_console_session(&self, session: &ConsoleSession) -> Result<(), StoreError> {
        on_views!(self, insert_session(session))
    }

    /// The unexpired session whose id hashes to `id_hash`.
    pub async fn console_session(&self, id_hash: &str, now: Millis) -> Result<Option<ConsoleSession>, StoreError> {
        on_views!(self, session(id_hash, now))
    }

    /// Ends a session (logout); `false` if there was none.
    pub async fn delete_console_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        on_views!(self, delete_session(id_hash))
    }

    /// Removes sessions expired at `now`; returns how many.
    pub async fn delete_expired_console_sessions(&self, now: Millis) -> Result<u64, StoreError> {
        on_views!(self, delete_expired_sessions(now))
    }

    // ---- operator console: case file ----

    /// Business keys starting with `text` (case-insensitive), the most recently started first.
    pub async fn business_keys_starting_with(&self, text: &str, limit: i64) -> Result<Vec<String>, StoreError> {
        on_views!(self, business_keys_like(&prefix_pattern(text), limit))
    }

    /// Messages published with correlation key `key`, oldest first.
    pub async fn messages_with_key(&self, key: &str, limit: i64) -> Result<Vec<MessageRow>, StoreError> {
        on_views!(self, messages_with_key(key, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_pattern;

    #[test]
    fn prefix_patterns_escape_wildcards() {
        assert_eq!(prefix_pattern(" rssmra80 "), "RSSMRA80%");
        assert_eq!(prefix_pattern("a%b_c\\"), "A\\%B\\_C\\\\%");
    }
}
