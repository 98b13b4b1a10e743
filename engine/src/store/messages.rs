//! The `messages` and `subscriptions` tables: published messages buffered until consumed or
//! expired, and the instances waiting for a message `(name, key)`. A publication and an
//! instance starting to wait pair up under [`Tx::lock_correlation`].

use sqlx::{AssertSqlSafe, QueryBuilder};

use super::{Store, StoreError, Tx, TxInner, postgres};
use crate::clock::Millis;

/// An instance token waiting for a message.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Subscription {
    pub instance_id: String,
    pub token: i64,
    pub epoch: i64,
    pub message: String,
    pub key: String,
    pub created_at: Millis,
}

impl Subscription {
    /// The columns of a [`Subscription`], in field order.
    const COLUMNS: &'static str = "instance_id, token, epoch, message, key, created_at";
}

/// A published message.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct MessageRow {
    pub id: String,
    pub name: String,
    pub key: String,
    pub payload: String,
    pub published_at: Millis,
    pub expires_at: Millis,
    pub consumed_by: Option<String>,
}

impl MessageRow {
    /// The columns of a [`MessageRow`], in field order.
    const COLUMNS: &'static str = "id, name, key, payload, published_at, expires_at, consumed_by";
}

/// The oldest subscription waiting for `(message $1, key $2)`: the one a message is
/// delivered to (followed by the dialect's lock suffix inside a transaction).
fn first_subscription(lock: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(format!(
        "SELECT {} FROM subscriptions WHERE message = $1 AND key = $2 ORDER BY created_at LIMIT 1 {lock}",
        Subscription::COLUMNS
    ))
}

impl Store {
    /// The subscription a message `(message, key)` would be delivered to now; the delivery
    /// itself takes it inside a transaction ([`Tx::take_subscription`]).
    pub async fn subscription(&self, message: &str, key: &str) -> Result<Option<Subscription>, StoreError> {
        Ok(on_pool!(self, |conn| sqlx::query_as::<_, Subscription>(first_subscription(""))
            .bind(message)
            .bind(key)
            .fetch_optional(conn)
            .await?))
    }

    /// Messages published with correlation key `key`, oldest first.
    pub async fn messages_with_key(&self, key: &str, limit: i64) -> Result<Vec<MessageRow>, StoreError> {
        let sql = AssertSqlSafe(format!("SELECT {} FROM messages WHERE key = $1 ORDER BY published_at, id LIMIT $2", MessageRow::COLUMNS));
        Ok(on_pool!(self, |conn| sqlx::query_as::<_, MessageRow>(sql).bind(key).bind(limit).fetch_all(conn).await?))
    }
}

impl Tx {
    /// Makes `(s.instance_id, s.token)` wait for `(s.message, s.key)` (replacing what that
    /// token waited for before).
    pub async fn insert_subscription(&mut self, s: &Subscription) -> Result<(), StoreError> {
        on_tx!(self, |conn| {
            let mut q = QueryBuilder::new(format!("INSERT INTO subscriptions ({}) ", Subscription::COLUMNS));
            q.push_values([s], |mut b, s| {
                b.push_bind(s.instance_id.clone())
                    .push_bind(s.token)
                    .push_bind(s.epoch)
                    .push_bind(s.message.clone())
                    .push_bind(s.key.clone())
                    .push_bind(s.created_at);
            });
            q.push(
                " ON CONFLICT (instance_id, token) DO UPDATE SET epoch = excluded.epoch, message = excluded.message, \
                 key = excluded.key, created_at = excluded.created_at",
            );
            q.build().execute(&mut *conn).await?;
        });
        Ok(())
    }

    /// Serialises, until the end of the transaction, everything that pairs messages named
    /// `message` and keyed `key` with their subscriptions, so that a publication and an
    /// instance starting to wait cannot miss each other (PostgreSQL; SQLite write
    /// transactions are exclusive already).
    pub async fn lock_correlation(&mut self, message: &str, key: &str) -> Result<(), StoreError> {
        if let TxInner::Postgres(t) = &mut self.inner {
            postgres::lock_correlation(t, message, key).await?;
        }
        Ok(())
    }

    /// Removes and returns the oldest subscription waiting for `message` with `key`.
    pub async fn take_subscription(&mut self, message: &str, key: &str) -> Result<Option<Subscription>, StoreError> {
        const DELETE: &str = "DELETE FROM subscriptions WHERE instance_id = $1 AND token = $2";
        Ok(on_tx!(self, |conn, dialect| {
            let taken = sqlx::query_as::<_, Subscription>(first_subscription(dialect.for_update))
                .bind(message)
                .bind(key)
                .fetch_optional(&mut *conn)
                .await?;
            if let Some(s) = &taken {
                sqlx::query(DELETE).bind(&s.instance_id).bind(s.token).execute(&mut *conn).await?;
            }
            taken
        }))
    }

    /// Buffers a published message.
    pub async fn insert_message(&mut self, m: &MessageRow) -> Result<(), StoreError> {
        on_tx!(self, |conn| {
            let mut q = QueryBuilder::new(format!("INSERT INTO messages ({}) ", MessageRow::COLUMNS));
            q.push_values([m], |mut b, m| {
                b.push_bind(m.id.clone())
                    .push_bind(m.name.clone())
                    .push_bind(m.key.clone())
                    .push_bind(m.payload.clone())
                    .push_bind(m.published_at)
                    .push_bind(m.expires_at)
                    .push_bind(m.consumed_by.clone());
            });
            q.build().execute(&mut *conn).await?;
        });
        Ok(())
    }

    /// Marks consumed and returns the oldest unexpired buffered message for `name`/`key`.
    pub async fn take_message(&mut self, name: &str, key: &str, now: Millis, consumer: &str) -> Result<Option<MessageRow>, StoreError> {
        const CONSUME: &str = "UPDATE messages SET consumed_by = $2 WHERE id = $1";
        Ok(on_tx!(self, |conn, dialect| {
            let sql = AssertSqlSafe(format!(
                "SELECT {} FROM messages WHERE name = $1 AND key = $2 AND consumed_by IS NULL AND expires_at > $3 \
                 ORDER BY published_at, id LIMIT 1 {}",
                MessageRow::COLUMNS,
                dialect.for_update
            ));
            match sqlx::query_as::<_, MessageRow>(sql).bind(name).bind(key).bind(now).fetch_optional(&mut *conn).await? {
                Some(m) => {
                    sqlx::query(CONSUME).bind(&m.id).bind(consumer).execute(&mut *conn).await?;
                    Some(MessageRow { consumed_by: Some(consumer.to_string()), ..m })
                }
                None => None,
            }
        }))
    }
}
