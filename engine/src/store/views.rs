//! The operator console's store functions: durable console sessions, login throttling, and
//! the read queries of its pages (the case file's business-key search and messages). The SQL
//! runs unchanged on SQLite and PostgreSQL; [`view_queries!`] instantiates it once per
//! backend.

use super::{MessageRow, Store, StoreError, TaskVisibility};
use crate::clock::Millis;

/// A console session. Only the SHA-256 (hex) of the random session id is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub id_hash: String,
    pub username: String,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// What a failed console sign-in did to one throttling key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailures {
    /// Failures counted in the key's current window, this one included.
    pub failures: i64,
    /// When the key's lock ends, if it is locked.
    pub locked_until: Option<Millis>,
}

macro_rules! view_queries {
    ($Db:ty, $Row:ty, $message_row:path, $visibility:path) => {
        use sqlx::{Pool, QueryBuilder, Row as _};

        use super::{ConsoleSession, LoginFailures, MessageRow, StoreError, TaskVisibility};
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

        pub(super) async fn business_keys_like(
            pool: &Pool<$Db>,
            pattern: &str,
            limit: i64,
            to: Option<&TaskVisibility>,
        ) -> Result<Vec<String>, StoreError> {
            let mut q = QueryBuilder::<$Db>::new(
                "SELECT business_key, MAX(started_at) AS latest FROM instances \
                 WHERE business_key IS NOT NULL AND UPPER(business_key) LIKE ",
            );
            q.push_bind(pattern.to_string()).push(" ESCAPE '\\'");
            if let Some(v) = to {
                q.push(" AND EXISTS (SELECT 1 FROM tasks vt WHERE vt.instance_id = instances.id AND");
                $visibility(&mut q, v, "vt.");
                q.push(")");
            }
            q.push(" GROUP BY business_key ORDER BY latest DESC, business_key LIMIT ").push_bind(limit);
            let rows = q.build().fetch_all(pool).await?;
            Ok(rows.iter().map(|r| r.try_get("business_key")).collect::<Result<_, _>>()?)
        }

        pub(super) async fn login_locked_until(pool: &Pool<$Db>, keys: &[&str], now: Millis) -> Result<Option<Millis>, StoreError> {
            let mut q = QueryBuilder::<$Db>::new("SELECT MAX(locked_until) AS until FROM login_throttle WHERE key IN (");
            let mut list = q.separated(", ");
            for key in keys {
                list.push_bind(key.to_string());
            }
            q.push(") AND locked_until > ").push_bind(now);
            Ok(q.build().fetch_one(pool).await?.try_get("until")?)
        }

        /// Counts a failure for `key` in one statement: a window that started at or before
        /// `stale` starts again with this failure.
        pub(super) async fn record_login_failure(
            pool: &Pool<$Db>,
            key: &str,
            now: Millis,
            stale: Millis,
        ) -> Result<LoginFailures, StoreError> {
            let row = sqlx::query(
                "INSERT INTO login_throttle (key, failures, window_start, locked_until) VALUES ($1, 1, $2, NULL) \
                 ON CONFLICT (key) DO UPDATE SET \
                   failures = CASE WHEN login_throttle.window_start <= $3 THEN 1 ELSE login_throttle.failures + 1 END, \
                   window_start = CASE WHEN login_throttle.window_start <= $3 THEN $2 ELSE login_throttle.window_start END \
                 RETURNING failures, locked_until",
            )
            .bind(key)
            .bind(now)
            .bind(stale)
            .fetch_one(pool)
            .await?;
            Ok(LoginFailures { failures: row.try_get("failures")?, locked_until: row.try_get("locked_until")? })
        }

        /// Locks `key` until `until`; its count starts again after the lock.
        pub(super) async fn lock_login(pool: &Pool<$Db>, key: &str, until: Millis) -> Result<(), StoreError> {
            sqlx::query("UPDATE login_throttle SET locked_until = $2, failures = 0, window_start = $2 WHERE key = $1")
                .bind(key)
                .bind(until)
                .execute(pool)
                .await?;
            Ok(())
        }

        pub(super) async fn clear_login_failures(pool: &Pool<$Db>, key: &str) -> Result<(), StoreError> {
            sqlx::query("DELETE FROM login_throttle WHERE key = $1").bind(key).execute(pool).await?;
            Ok(())
        }

        /// Removes keys whose window started at or before `stale` and that are not locked.
        pub(super) async fn purge_login_failures(pool: &Pool<$Db>, now: Millis, stale: Millis) -> Result<u64, StoreError> {
            let done = sqlx::query("DELETE FROM login_throttle WHERE window_start <= $1 AND (locked_until IS NULL OR locked_until <= $2)")
                .bind(stale)
                .bind(now)
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
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
    view_queries!(sqlx::Sqlite, sqlx::sqlite::SqliteRow, crate::store::sqlite::message_row, crate::store::sqlite::push_task_visibility);
}

mod postgres_views {
    view_queries!(sqlx::Postgres, sqlx::postgres::PgRow, crate::store::postgres::message_row, crate::store::postgres::push_task_visibility);
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

    // ---- operator console: login throttling ----

    /// When the latest lock of any of `keys` ends, if one is locked at `now`.
    pub async fn login_locked_until(&self, keys: &[&str], now: Millis) -> Result<Option<Millis>, StoreError> {
        on_views!(self, login_locked_until(keys, now))
    }

    /// Counts a failed sign-in for `key` (atomically); a window that started at or before
    /// `stale` starts again.
    pub async fn record_login_failure(&self, key: &str, now: Millis, stale: Millis) -> Result<LoginFailures, StoreError> {
        on_views!(self, record_login_failure(key, now, stale))
    }

    /// Locks `key` until `until`.
    pub async fn lock_login(&self, key: &str, until: Millis) -> Result<(), StoreError> {
        on_views!(self, lock_login(key, until))
    }

    /// Forgets the failures counted for `key` (after a successful sign-in).
    pub async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        on_views!(self, clear_login_failures(key))
    }

    /// Removes unlocked keys whose window started at or before `stale`.
    pub async fn purge_login_failures(&self, now: Millis, stale: Millis) -> Result<u64, StoreError> {
        on_views!(self, purge_login_failures(now, stale))
    }

    // ---- operator console: case file ----

    /// Business keys starting with `text` (case-insensitive), the most recently started first;
    /// with `to`, only keys of instances with a task visible to that operator.
    pub async fn business_keys_starting_with(
        &self,
        text: &str,
        limit: i64,
        to: Option<&TaskVisibility>,
    ) -> Result<Vec<String>, StoreError> {
        on_views!(self, business_keys_like(&prefix_pattern(text), limit, to))
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
