//! Who may do what: `api_tokens` (only the SHA-256 of a token's text is stored), `users`
//! (console users with argon2id hashes), `console_sessions` (durable sessions by hashed id)
//! and `login_throttle` (failed sign-ins counted per key).

use sqlx::{AssertSqlSafe, QueryBuilder};

use super::{Store, StoreError, Tx};
use crate::clock::Millis;

/// An API token: only the SHA-256 of its text is stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TokenRow {
    pub name: String,
    /// SHA-256 of the token text, hex encoded.
    pub hash: String,
    pub role: String,
    /// JSON array of office codes.
    pub offices: String,
    /// JSON array of the task roles (candidate groups) whose human tasks it may work.
    pub task_roles: String,
    /// JSON array of the external-task topics it may fetch and complete (empty: any).
    pub topics: String,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
}

impl TokenRow {
    /// The columns of a [`TokenRow`], in field order.
    const COLUMNS: &'static str = "name, hash, role, offices, task_roles, topics, created_at, revoked_at";
}

/// A console user with an argon2id password hash (PHC string).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UserRow {
    pub username: String,
    pub password_hash: String,
    pub role: String,
    /// JSON array of office codes.
    pub offices: String,
    /// JSON array of the task roles (candidate groups) whose human tasks the user may work.
    pub task_roles: String,
    pub created_at: Millis,
    pub disabled_at: Option<Millis>,
}

impl UserRow {
    /// The columns of a [`UserRow`], in field order.
    const COLUMNS: &'static str = "username, password_hash, role, offices, task_roles, created_at, disabled_at";
}

/// An active console user or API token by name (users first): who a task can be delegated to.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Principal {
    pub name: String,
    pub role: String,
    /// JSON array of office codes.
    pub offices: String,
    /// JSON array of task roles.
    pub task_roles: String,
}

/// A console session. Only the SHA-256 (hex) of the random session id is stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsoleSession {
    pub id_hash: String,
    pub username: String,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// What a failed console sign-in did to one throttling key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct LoginFailures {
    /// Failures counted in the key's current window, this one included.
    pub failures: i64,
    /// When the key's lock ends, if it is locked.
    pub locked_until: Option<Millis>,
}

/// An insert's result, with a unique-constraint violation as a [`StoreError::Conflict`] on
/// `entity` `id` (a name already used).
fn conflict_on_unique(done: Result<(), sqlx::Error>, entity: &'static str, id: &str) -> Result<(), StoreError> {
    match done.map_err(StoreError::from) {
        Err(e) if e.is_unique_violation() => Err(StoreError::Conflict { entity, id: id.to_string() }),
        other => other,
    }
}

impl Store {
    // ---- API tokens ----

    /// Stores a new API token; a name already used is a [`StoreError::Conflict`].
    pub async fn insert_token(&self, t: &TokenRow) -> Result<(), StoreError> {
        let sql = AssertSqlSafe(format!("INSERT INTO api_tokens ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", TokenRow::COLUMNS));
        let done = on_pool!(self, |conn| {
            sqlx::query(sql)
                .bind(&t.name)
                .bind(&t.hash)
                .bind(&t.role)
                .bind(&t.offices)
                .bind(&t.task_roles)
                .bind(&t.topics)
                .bind(t.created_at)
                .bind(t.revoked_at)
                .execute(conn)
                .await
                .map(|_| ())
        });
        conflict_on_unique(done, "token", &t.name)
    }

    /// The token whose text hashes to `hash` (revoked or not).
    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>, StoreError> {
        let sql = AssertSqlSafe(format!("SELECT {} FROM api_tokens WHERE hash = $1", TokenRow::COLUMNS));
        Ok(on_pool!(self, |conn| sqlx::query_as::<_, TokenRow>(sql).bind(hash).fetch_optional(conn).await?))
    }

    /// Every API token (revoked or not), by name.
    pub async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let sql = AssertSqlSafe(format!("SELECT {} FROM api_tokens ORDER BY name", TokenRow::COLUMNS));
        Ok(on_pool!(self, |conn| sqlx::query_as::<_, TokenRow>(sql).fetch_all(conn).await?))
    }

    /// Revokes a token by name; `false` if there is no such active token.
    pub async fn revoke_token(&self, name: &str, now: Millis) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL";
        Ok(on_pool!(self, |conn| sqlx::query(SQL).bind(name).bind(now).execute(conn).await?.rows_affected() == 1))
    }

    // ---- console users ----

    /// Stores a new console user; a name already used is a [`StoreError::Conflict`].
    pub async fn insert_user(&self, u: &UserRow) -> Result<(), StoreError> {
        let sql = AssertSqlSafe(format!("INSERT INTO users ({}) VALUES ($1, $2, $3, $4, $5, $6, $7)", UserRow::COLUMNS));
        let done = on_pool!(self, |conn| {
            sqlx::query(sql)
                .bind(&u.username)
                .bind(&u.password_hash)
                .bind(&u.role)
                .bind(&u.offices)
                .bind(&u.task_roles)
                .bind(u.created_at)
                .bind(u.disabled_at)
                .execute(conn)
                .await
                .map(|_| ())
        });
        conflict_on_unique(done, "user", &u.username)
    }

    /// The console user `username` (disabled or not).
    pub async fn user(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        let sql = AssertSqlSafe(format!("SELECT {} FROM users WHERE username = $1", UserRow::COLUMNS));
        Ok(on_pool!(self, |conn| sqlx::query_as::<_, UserRow>(sql).bind(username).fetch_optional(conn).await?))
    }

    // ---- console sessions ----

    /// Stores a new console session.
    pub async fn insert_console_session(&self, s: &ConsoleSession) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO console_sessions (id_hash, username, created_at, expires_at) VALUES ($1, $2, $3, $4)";
        on_pool!(self, |conn| sqlx::query(SQL)
            .bind(&s.id_hash)
            .bind(&s.username)
            .bind(s.created_at)
            .bind(s.expires_at)
            .execute(conn)
            .await?
            .rows_affected());
        Ok(())
    }

    /// The unexpired session whose id hashes to `id_hash`.
    pub async fn console_session(&self, id_hash: &str, now: Millis) -> Result<Option<ConsoleSession>, StoreError> {
        const SQL: &str = "SELECT id_hash, username, created_at, expires_at FROM console_sessions WHERE id_hash = $1 AND expires_at > $2";
        Ok(on_pool!(self, |conn| sqlx::query_as::<_, ConsoleSession>(SQL).bind(id_hash).bind(now).fetch_optional(conn).await?))
    }

    /// Ends a session (logout); `false` if there was none.
    pub async fn delete_console_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM console_sessions WHERE id_hash = $1";
        Ok(on_pool!(self, |conn| sqlx::query(SQL).bind(id_hash).execute(conn).await?.rows_affected() > 0))
    }

    /// Removes sessions expired at `now`; returns how many.
    pub async fn delete_expired_console_sessions(&self, now: Millis) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM console_sessions WHERE expires_at <= $1";
        Ok(on_pool!(self, |conn| sqlx::query(SQL).bind(now).execute(conn).await?.rows_affected()))
    }

    // ---- console login throttling ----

    /// When the latest lock of any of `keys` ends, if one is locked at `now`.
    pub async fn login_locked_until(&self, keys: &[&str], now: Millis) -> Result<Option<Millis>, StoreError> {
        Ok(on_pool!(self, |conn| {
            let mut q = QueryBuilder::new("SELECT MAX(locked_until) FROM login_throttle WHERE key IN (");
            let mut list = q.separated(", ");
            for key in keys {
                list.push_bind(key.to_string());
            }
            q.push(") AND locked_until > ").push_bind(now);
            q.build_query_scalar::<Option<Millis>>().fetch_one(conn).await?
        }))
    }

    /// Counts a failed sign-in for `key` (atomically, in one statement); a window that
    /// started at or before `stale` starts again with this failure.
    pub async fn record_login_failure(&self, key: &str, now: Millis, stale: Millis) -> Result<LoginFailures, StoreError> {
        const SQL: &str = "INSERT INTO login_throttle (key, failures, window_start, locked_until) VALUES ($1, 1, $2, NULL) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN login_throttle.window_start <= $3 THEN 1 ELSE login_throttle.failures + 1 END, \
               window_start = CASE WHEN login_throttle.window_start <= $3 THEN $2 ELSE login_throttle.window_start END \
             RETURNING failures, locked_until";
        Ok(on_pool!(self, |conn| sqlx::query_as::<_, LoginFailures>(SQL).bind(key).bind(now).bind(stale).fetch_one(conn).await?))
    }

    /// Locks `key` until `until`; its count starts again after the lock.
    pub async fn lock_login(&self, key: &str, until: Millis) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE login_throttle SET locked_until = $2, failures = 0, window_start = $2 WHERE key = $1";
        on_pool!(self, |conn| sqlx::query(SQL).bind(key).bind(until).execute(conn).await?.rows_affected());
        Ok(())
    }

    /// Forgets the failures counted for `key` (after a successful sign-in).
    pub async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        const SQL: &str = "DELETE FROM login_throttle WHERE key = $1";
        on_pool!(self, |conn| sqlx::query(SQL).bind(key).execute(conn).await?.rows_affected());
        Ok(())
    }

    /// Removes unlocked keys whose window started at or before `stale`.
    pub async fn purge_login_failures(&self, now: Millis, stale: Millis) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM login_throttle WHERE window_start <= $1 AND (locked_until IS NULL OR locked_until <= $2)";
        Ok(on_pool!(self, |conn| sqlx::query(SQL).bind(stale).bind(now).execute(conn).await?.rows_affected()))
    }
}

impl Tx {
    /// The active console user or API token named `name` (a user first, if both exist).
    pub async fn principal(&mut self, name: &str) -> Result<Option<Principal>, StoreError> {
        const SQL: &str = "SELECT username AS name, role, offices, task_roles FROM users WHERE username = $1 AND disabled_at IS NULL \
             UNION ALL SELECT name, role, offices, task_roles FROM api_tokens WHERE name = $1 AND revoked_at IS NULL";
        Ok(on_tx!(self, |conn| sqlx::query_as::<_, Principal>(SQL).bind(name).fetch_optional(&mut *conn).await?))
    }
}
