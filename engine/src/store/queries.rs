//! The SQL both backends share, written once. `shared_queries!` expands to a set of
//! functions for one sqlx database type; `$lock` is the row-locking suffix of that dialect
//! (`FOR UPDATE` on PostgreSQL, nothing on SQLite, whose write transactions are exclusive).
//! SQLite accepts PostgreSQL's `$1` placeholders, so the statements are identical.

macro_rules! shared_queries {
    ($Db:ty, $Row:ty, $lock:literal, $skip_locked:literal) => {
        use sqlx::{AssertSqlSafe, Pool, QueryBuilder, Row as _, Transaction};

        use super::records::*;
        use super::access::*;
        use super::StoreError;
        use crate::clock::Millis;

        type Tx = Transaction<'static, $Db>;

        const INSTANCE_COLUMNS: &str = "id, workflow, version, status, business_key, request_id, input, state, output, error, \
             parent_id, parent_token, parent_epoch, started_at, updated_at, ended_at, history_seq, history_head";
        const TASK_COLUMNS: &str = "id, instance_id, token, epoch, step_id, status, title, description, assignee, role, office, form, \
             outcomes, reason_required, excluded_actors, due_at, created_at, completed_by, completed_at, result, delegated_by, escalated_at";

        fn instance_row(r: &$Row) -> Result<InstanceRow, sqlx::Error> {
            Ok(InstanceRow {
                id: r.try_get("id")?,
                workflow: r.try_get("workflow")?,
                version: r.try_get("version")?,
                status: r.try_get("status")?,
                business_key: r.try_get("business_key")?,
                request_id: r.try_get("request_id")?,
                input: r.try_get("input")?,
                state: r.try_get("state")?,
                output: r.try_get("output")?,
                error: r.try_get("error")?,
                parent_id: r.try_get("parent_id")?,
                parent_token: r.try_get("parent_token")?,
                parent_epoch: r.try_get("parent_epoch")?,
                started_at: r.try_get("started_at")?,
                updated_at: r.try_get("updated_at")?,
                ended_at: r.try_get("ended_at")?,
                history_seq: r.try_get("history_seq")?,
                history_head: r.try_get("history_head")?,
            })
        }

        fn task_row(r: &$Row) -> Result<TaskRow, sqlx::Error> {
            Ok(TaskRow {
                id: r.try_get("id")?,
                instance_id: r.try_get("instance_id")?,
                token: r.try_get("token")?,
                epoch: r.try_get("epoch")?,
                step_id: r.try_get("step_id")?,
                status: r.try_get("status")?,
                title: r.try_get("title")?,
                description: r.try_get("description")?,
                assignee: r.try_get("assignee")?,
                role: r.try_get("role")?,
                office: r.try_get("office")?,
                form: r.try_get("form")?,
                outcomes: r.try_get("outcomes")?,
                reason_required: r.try_get("reason_required")?,
                excluded_actors: r.try_get("excluded_actors")?,
                due_at: r.try_get("due_at")?,
                created_at: r.try_get("created_at")?,
                completed_by: r.try_get("completed_by")?,
                completed_at: r.try_get("completed_at")?,
                result: r.try_get("result")?,
                delegated_by: r.try_get("delegated_by")?,
                escalated_at: r.try_get("escalated_at")?,
            })
        }

        fn workflow_row(r: &$Row) -> Result<WorkflowRow, sqlx::Error> {
            Ok(WorkflowRow {
                name: r.try_get("name")?,
                version: r.try_get("version")?,
                hash: r.try_get("hash")?,
                source: r.try_get("source")?,
                deployed_at: r.try_get("deployed_at")?,
            })
        }

        pub(super) fn job_row(r: &$Row) -> Result<Job, sqlx::Error> {
            Ok(Job {
                id: r.try_get("id")?,
                instance_id: r.try_get("instance_id")?,
                token: r.try_get("token")?,
                kind: r.try_get("kind")?,
                payload: r.try_get("payload")?,
                due_at: r.try_get("due_at")?,
                fence: r.try_get("fence")?,
                topic: r.try_get("topic")?,
                lease_until: r.try_get("lease_until")?,
                // Only the internal claim returns it.
                claims: r.try_get("claims").unwrap_or(0),
            })
        }

        /// Leases due jobs to `owner`: the internal ones (`topic` None), or the external tasks
        /// of one topic. Each claim bumps the fence.
        pub(super) async fn claim(
            pool: &Pool<$Db>,
            owner: &str,
            topic: Option<&str>,
            now: Millis,
            lease_until: Millis,
            limit: i64,
        ) -> Result<Vec<Job>, StoreError> {
            let filter = if topic.is_some() { "topic = $5" } else { "topic IS NULL" };
            let sql = format!(
                "UPDATE jobs SET lease_owner = $1, lease_until = $2, fence = fence + 1, claims = claims + 1 WHERE id IN ( \
                    SELECT id FROM jobs WHERE {filter} AND due_at <= $3 AND (lease_until IS NULL OR lease_until < $3) \
                    ORDER BY due_at, id LIMIT $4 {}) \
                 RETURNING id, instance_id, token, kind, payload, due_at, fence, topic, lease_until, claims",
                $skip_locked
            );
            let mut tx = begin_write(pool).await?;
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(owner).bind(lease_until).bind(now).bind(limit);
            if let Some(topic) = topic {
                query = query.bind(topic);
            }
            let rows = query.fetch_all(&mut *tx).await?;
            tx.commit().await?;
            let mut jobs: Vec<Job> = rows.iter().map(job_row).collect::<Result<_, _>>()?;
            jobs.sort_by_key(|j| (j.due_at, j.id));
            Ok(jobs)
        }

        /// Applies the embedded migrations not applied yet, in one transaction; `guard` is a
        /// statement run first (PostgreSQL takes an advisory lock so that processes starting
        /// together migrate one at a time).
        pub(super) async fn migrate(pool: &Pool<$Db>, migrations: &[(i64, &'static str)], guard: Option<&'static str>) -> Result<(), StoreError> {
            let mut tx = begin_write(pool).await?;
            if let Some(guard) = guard {
                sqlx::query(guard).execute(&mut *tx).await?;
            }
            sqlx::query("CREATE TABLE IF NOT EXISTS pratica_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
                .execute(&mut *tx)
                .await?;
            for (version, sql) in migrations {
                let done: Option<i64> =
                    sqlx::query_scalar("SELECT version FROM pratica_migrations WHERE version = $1").bind(version).fetch_optional(&mut *tx).await?;
                if done.is_none() {
                    sqlx::raw_sql(*sql).execute(&mut *tx).await?;
                    sqlx::query("INSERT INTO pratica_migrations (version, applied_at) VALUES ($1, $2)")
                        .bind(version)
                        .bind(chrono::Utc::now().timestamp_millis())
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok(())
        }

        // ---- set-based writes: one statement for many rows (group commit) ----

        /// Most rows per multi-row statement (SQLite allows 32,766 parameters).
        const ROWS_PER_STATEMENT: usize = 400;

        pub(super) async fn insert_history_rows(tx: &mut Tx, rows: &[HistoryRow]) -> Result<(), StoreError> {
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::<$Db>::new("INSERT INTO history (instance_id, seq, at, kind, step, data, actor, prev_hash, hash) ");
                q.push_values(chunk, |mut b, h| {
                    b.push_bind(h.instance_id.clone())
                        .push_bind(h.seq)
                        .push_bind(h.at)
                        .push_bind(h.kind.clone())
                        .push_bind(h.step.clone())
                        .push_bind(h.data.clone())
                        .push_bind(h.actor.clone())
                        .push_bind(h.prev_hash.clone())
                        .push_bind(h.hash.clone());
                });
                q.build().execute(&mut **tx).await?;
            }
            Ok(())
        }

        pub(super) async fn insert_job_rows(tx: &mut Tx, jobs: &[NewJob]) -> Result<(), StoreError> {
            for chunk in jobs.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::<$Db>::new("INSERT INTO jobs (instance_id, token, kind, payload, due_at, created_at, topic) ");
                q.push_values(chunk, |mut b, j| {
                    b.push_bind(j.instance_id.clone())
                        .push_bind(j.token)
                        .push_bind(j.kind.clone())
                        .push_bind(j.payload.clone())
                        .push_bind(j.due_at)
                        .push_bind(j.created_at)
                        .push_bind(j.topic.clone());
                });
                q.build().execute(&mut **tx).await?;
            }
            Ok(())
        }

        /// Deletes the claimed jobs whose fence is unchanged; returns the ids deleted.
        pub(super) async fn finish_jobs(tx: &mut Tx, claims: &[(i64, i64)]) -> Result<Vec<i64>, StoreError> {
            let mut done = Vec::with_capacity(claims.len());
            for chunk in claims.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::<$Db>::new("DELETE FROM jobs WHERE (id, fence) IN (");
                let mut first = true;
                for (id, fence) in chunk {
                    q.push(if first { "(" } else { ", (" }).push_bind(*id).push(", ").push_bind(*fence).push(")");
                    first = false;
                }
                q.push(") RETURNING id");
                let rows = q.build().fetch_all(&mut **tx).await?;
                for r in &rows {
                    done.push(r.try_get::<i64, _>("id")?);
                }
            }
            Ok(done)
        }

        /// Loads (and on PostgreSQL locks, in id order) several instances at once.
        pub(super) async fn instances_for_update(tx: &mut Tx, ids: &[String]) -> Result<Vec<InstanceRow>, StoreError> {
            let mut out = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::<$Db>::new(format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE id IN ("));
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(id.clone());
                }
                q.push(format!(") ORDER BY id {}", $lock));
                let rows = q.build().fetch_all(&mut **tx).await?;
                for r in &rows {
                    out.push(instance_row(r)?);
                }
            }
            Ok(out)
        }

        // ---- reads on the pool ----

        pub(super) async fn get_instance(pool: &Pool<$Db>, id: &str) -> Result<Option<InstanceRow>, StoreError> {
            let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE id = $1");
            let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await?;
            Ok(row.as_ref().map(instance_row).transpose()?)
        }

        /// Several instances by id, without locking (the worker computes transitions from
        /// them before its transaction, and checks them again inside it).
        pub(super) async fn get_instances(pool: &Pool<$Db>, ids: &[String]) -> Result<Vec<InstanceRow>, StoreError> {
            let mut out = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::<$Db>::new(format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE id IN ("));
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(id.clone());
                }
                q.push(")");
                for r in &q.build().fetch_all(pool).await? {
                    out.push(instance_row(r)?);
                }
            }
            Ok(out)
        }

        pub(super) async fn list_instances(pool: &Pool<$Db>, f: &InstanceFilter) -> Result<Vec<InstanceRow>, StoreError> {
            let mut q = QueryBuilder::<$Db>::new(format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE 1 = 1"));
            if let Some(w) = &f.workflow {
                q.push(" AND workflow = ").push_bind(w.clone());
            }
            if let Some(s) = &f.status {
                q.push(" AND status = ").push_bind(s.clone());
            }
            if let Some(k) = &f.business_key {
                q.push(" AND business_key = ").push_bind(k.clone());
            }
            q.push(" ORDER BY started_at, id LIMIT ").push_bind(f.limit.unwrap_or(1000));
            let rows = q.build().fetch_all(pool).await?;
            Ok(rows.iter().map(instance_row).collect::<Result<_, _>>()?)
        }

        pub(super) async fn all_instance_ids(pool: &Pool<$Db>) -> Result<Vec<String>, StoreError> {
            let rows = sqlx::query("SELECT id FROM instances ORDER BY started_at, id").fetch_all(pool).await?;
            Ok(rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?)
        }

        pub(super) async fn history(pool: &Pool<$Db>, instance: &str) -> Result<Vec<HistoryRow>, StoreError> {
            let rows = sqlx::query(
                "SELECT instance_id, seq, at, kind, step, data, actor, prev_hash, hash FROM history WHERE instance_id = $1 ORDER BY seq",
            )
            .bind(instance)
            .fetch_all(pool)
            .await?;
            let map = |r: &$Row| -> Result<HistoryRow, sqlx::Error> {
                Ok(HistoryRow {
                    instance_id: r.try_get("instance_id")?,
                    seq: r.try_get("seq")?,
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    step: r.try_get("step")?,
                    data: r.try_get("data")?,
                    actor: r.try_get("actor")?,
                    prev_hash: r.try_get("prev_hash")?,
                    hash: r.try_get("hash")?,
                })
            };
            Ok(rows.iter().map(map).collect::<Result<_, _>>()?)
        }

        pub(super) async fn get_workflow(pool: &Pool<$Db>, name: &str, version: Option<i64>) -> Result<Option<WorkflowRow>, StoreError> {
            let row = match version {
                Some(v) => {
                    sqlx::query("SELECT name, version, hash, source, deployed_at FROM workflows WHERE name = $1 AND version = $2")
                        .bind(name)
                        .bind(v)
                        .fetch_optional(pool)
                        .await?
                }
                None => {
                    sqlx::query("SELECT name, version, hash, source, deployed_at FROM workflows WHERE name = $1 ORDER BY version DESC LIMIT 1")
                        .bind(name)
                        .fetch_optional(pool)
                        .await?
                }
            };
            Ok(row.as_ref().map(workflow_row).transpose()?)
        }

        pub(super) async fn list_workflows(pool: &Pool<$Db>) -> Result<Vec<WorkflowRow>, StoreError> {
            let rows = sqlx::query("SELECT name, version, hash, source, deployed_at FROM workflows ORDER BY name, version").fetch_all(pool).await?;
            Ok(rows.iter().map(workflow_row).collect::<Result<_, _>>()?)
        }

        pub(super) async fn get_task(pool: &Pool<$Db>, id: &str) -> Result<Option<TaskRow>, StoreError> {
            let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1");
            let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await?;
            Ok(row.as_ref().map(task_row).transpose()?)
        }

        pub(super) async fn list_tasks(pool: &Pool<$Db>, f: &TaskFilter) -> Result<Vec<TaskRow>, StoreError> {
            let mut q = QueryBuilder::<$Db>::new(format!("SELECT {TASK_COLUMNS} FROM tasks WHERE 1 = 1"));
            if let Some(s) = &f.status {
                q.push(" AND status = ").push_bind(s.clone());
            }
            if let Some(o) = &f.office {
                q.push(" AND office = ").push_bind(o.clone());
            }
            if let Some(r) = &f.role {
                q.push(" AND role = ").push_bind(r.clone());
            }
            if let Some(i) = &f.instance_id {
                q.push(" AND instance_id = ").push_bind(i.clone());
            }
            q.push(" ORDER BY due_at, created_at, id LIMIT ").push_bind(f.limit.unwrap_or(1000));
            let rows = q.build().fetch_all(pool).await?;
            Ok(rows.iter().map(task_row).collect::<Result<_, _>>()?)
        }

        pub(super) async fn job_count(pool: &Pool<$Db>) -> Result<i64, StoreError> {
            Ok(sqlx::query("SELECT COUNT(*) AS n FROM jobs").fetch_one(pool).await?.try_get("n")?)
        }

        pub(super) async fn execute_raw(pool: &Pool<$Db>, sql: &str) -> Result<u64, StoreError> {
            Ok(sqlx::query(AssertSqlSafe(sql.to_string())).execute(pool).await?.rows_affected())
        }

        pub(super) async fn next_wakeup(pool: &Pool<$Db>) -> Result<Option<Millis>, StoreError> {
            let row = sqlx::query("SELECT MIN(CASE WHEN lease_until IS NULL THEN due_at ELSE lease_until END) AS t FROM jobs WHERE topic IS NULL")
                .fetch_one(pool)
                .await?;
            Ok(row.try_get("t")?)
        }

        /// Gives claimed jobs back (still held under `fence`), undoing their claim count.
        pub(super) async fn release_jobs(pool: &Pool<$Db>, claims: &[(i64, i64)]) -> Result<u64, StoreError> {
            let mut released = 0;
            for chunk in claims.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::<$Db>::new(
                    "UPDATE jobs SET lease_owner = NULL, lease_until = NULL, fence = fence + 1, claims = claims - 1 WHERE (id, fence) IN (",
                );
                let mut first = true;
                for (id, fence) in chunk {
                    q.push(if first { "(" } else { ", (" }).push_bind(*id).push(", ").push_bind(*fence).push(")");
                    first = false;
                }
                q.push(")");
                released += q.build().execute(pool).await?.rows_affected();
            }
            Ok(released)
        }

        pub(super) async fn release_all_leases(pool: &Pool<$Db>) -> Result<u64, StoreError> {
            let done = sqlx::query("UPDATE jobs SET lease_owner = NULL, lease_until = NULL, fence = fence + 1 WHERE lease_owner IS NOT NULL AND topic IS NULL")
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        }

        // ---- API tokens, console users, paged listings (the HTTP API) ----

        fn token_row(r: &$Row) -> Result<TokenRow, sqlx::Error> {
            Ok(TokenRow {
                name: r.try_get("name")?,
                hash: r.try_get("hash")?,
                role: r.try_get("role")?,
                offices: r.try_get("offices")?,
                task_roles: r.try_get("task_roles")?,
                topics: r.try_get("topics")?,
                created_at: r.try_get("created_at")?,
                revoked_at: r.try_get("revoked_at")?,
            })
        }

        fn user_row(r: &$Row) -> Result<UserRow, sqlx::Error> {
            Ok(UserRow {
                username: r.try_get("username")?,
                password_hash: r.try_get("password_hash")?,
                role: r.try_get("role")?,
                offices: r.try_get("offices")?,
                task_roles: r.try_get("task_roles")?,
                created_at: r.try_get("created_at")?,
                disabled_at: r.try_get("disabled_at")?,
            })
        }

        pub(super) async fn insert_token(pool: &Pool<$Db>, t: &TokenRow) -> Result<(), StoreError> {
            sqlx::query("INSERT INTO api_tokens (name, hash, role, offices, created_at, revoked_at, task_roles, topics) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(&t.name)
                .bind(&t.hash)
                .bind(&t.role)
                .bind(&t.offices)
                .bind(t.created_at)
                .bind(t.revoked_at)
                .bind(&t.task_roles)
                .bind(&t.topics)
                .execute(pool)
                .await?;
            Ok(())
        }

        pub(super) async fn token_by_hash(pool: &Pool<$Db>, hash: &str) -> Result<Option<TokenRow>, StoreError> {
            let row = sqlx::query("SELECT name, hash, role, offices, task_roles, topics, created_at, revoked_at FROM api_tokens WHERE hash = $1")
                .bind(hash)
                .fetch_optional(pool)
                .await?;
            Ok(row.as_ref().map(token_row).transpose()?)
        }

        pub(super) async fn list_tokens(pool: &Pool<$Db>) -> Result<Vec<TokenRow>, StoreError> {
            let rows = sqlx::query("SELECT name, hash, role, offices, task_roles, topics, created_at, revoked_at FROM api_tokens ORDER BY name").fetch_all(pool).await?;
            Ok(rows.iter().map(token_row).collect::<Result<_, _>>()?)
        }

        pub(super) async fn revoke_token(pool: &Pool<$Db>, name: &str, now: Millis) -> Result<bool, StoreError> {
            let done = sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL").bind(name).bind(now).execute(pool).await?;
            Ok(done.rows_affected() == 1)
        }

        pub(super) async fn insert_user(pool: &Pool<$Db>, u: &UserRow) -> Result<(), StoreError> {
            sqlx::query("INSERT INTO users (username, password_hash, role, offices, created_at, disabled_at, task_roles) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(&u.username)
                .bind(&u.password_hash)
                .bind(&u.role)
                .bind(&u.offices)
                .bind(u.created_at)
                .bind(u.disabled_at)
                .bind(&u.task_roles)
                .execute(pool)
                .await?;
            Ok(())
        }

        pub(super) async fn get_user(pool: &Pool<$Db>, username: &str) -> Result<Option<UserRow>, StoreError> {
            let row = sqlx::query("SELECT username, password_hash, role, offices, task_roles, created_at, disabled_at FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(pool)
                .await?;
            Ok(row.as_ref().map(user_row).transpose()?)
        }

        pub(super) async fn applied_migrations(pool: &Pool<$Db>) -> Result<Vec<i64>, StoreError> {
            let rows = sqlx::query("SELECT version FROM pratica_migrations ORDER BY version").fetch_all(pool).await?;
            Ok(rows.iter().map(|r| r.try_get("version")).collect::<Result<_, _>>()?)
        }

        pub(super) async fn page_instances(pool: &Pool<$Db>, f: &InstanceQuery) -> Result<Vec<InstanceRow>, StoreError> {
            let mut q = QueryBuilder::<$Db>::new(format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE 1 = 1"));
            if let Some(w) = &f.workflow {
                q.push(" AND workflow = ").push_bind(w.clone());
            }
            if let Some(v) = f.version {
                q.push(" AND version = ").push_bind(v);
            }
            if let Some(s) = &f.status {
                q.push(" AND status = ").push_bind(s.clone());
            }
            if let Some(k) = &f.business_key {
                q.push(" AND business_key = ").push_bind(k.clone());
            }
            if let Some(t) = f.started_after {
                q.push(" AND started_at >= ").push_bind(t);
            }
            if let Some(t) = f.started_before {
                q.push(" AND started_at < ").push_bind(t);
            }
            if let Some(t) = f.ended_after {
                q.push(" AND ended_at >= ").push_bind(t);
            }
            if let Some(t) = f.ended_before {
                q.push(" AND ended_at < ").push_bind(t);
            }
            if let Some(v) = &f.visible_to {
                push_instance_visibility(&mut q, v, "instances.");
            }
            if let Some((at, id)) = &f.after {
                q.push(" AND (started_at > ").push_bind(*at).push(" OR (started_at = ").push_bind(*at).push(" AND id > ").push_bind(id.clone()).push("))");
            }
            q.push(" ORDER BY started_at, id LIMIT ").push_bind(f.limit);
            let rows = q.build().fetch_all(pool).await?;
            Ok(rows.iter().map(instance_row).collect::<Result<_, _>>()?)
        }

        /// The task-visibility rule of an operator, as one parenthesised condition on the
        /// columns of `tasks` (qualified by `table`, e.g. `"t."`, or `""`): a task assigned to
        /// them, or of one of their offices whose role is one of their task roles or that names
        /// no role. The API's task list, the console inbox and the office scope of instances
        /// (an instance is visible when one of its tasks is) all use it.
        pub(super) fn push_task_visibility(q: &mut QueryBuilder<$Db>, v: &TaskVisibility, table: &str) {
            q.push(format!(" ({table}assignee = ")).push_bind(v.user.clone());
            if !v.offices.is_empty() {
                q.push(format!(" OR ({table}office IN ("));
                let mut list = q.separated(", ");
                for o in &v.offices {
                    list.push_bind(o.clone());
                }
                q.push(format!(") AND ({table}role IS NULL"));
                if !v.task_roles.is_empty() {
                    q.push(format!(" OR {table}role IN ("));
                    let mut list = q.separated(", ");
                    for r in &v.task_roles {
                        list.push_bind(r.clone());
                    }
                    q.push(")");
                }
                q.push("))");
            }
            q.push(")");
        }

        /// `AND` an instance (column `id` of `instances`, qualified by `instances`) has a task,
        /// of any status, visible to `v`.
        fn push_instance_visibility(q: &mut QueryBuilder<$Db>, v: &TaskVisibility, instances: &str) {
            q.push(format!(" AND EXISTS (SELECT 1 FROM tasks vt WHERE vt.instance_id = {instances}id AND"));
            push_task_visibility(q, v, "vt.");
            q.push(")");
        }

        /// Which of the instances `ids` have a task visible to `v`.
        pub(super) async fn visible_instance_ids(pool: &Pool<$Db>, ids: &[String], v: &TaskVisibility) -> Result<Vec<String>, StoreError> {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut q = QueryBuilder::<$Db>::new("SELECT DISTINCT instance_id FROM tasks WHERE instance_id IN (");
            let mut list = q.separated(", ");
            for id in ids {
                list.push_bind(id.clone());
            }
            q.push(") AND");
            push_task_visibility(&mut q, v, "");
            let rows = q.build().fetch_all(pool).await?;
            Ok(rows.iter().map(|r| r.try_get("instance_id")).collect::<Result<_, _>>()?)
        }

        pub(super) async fn query_tasks(pool: &Pool<$Db>, f: &TaskQuery, to: Option<&TaskVisibility>) -> Result<Vec<TaskRow>, StoreError> {
            let mut q = QueryBuilder::<$Db>::new(format!("SELECT {TASK_COLUMNS} FROM tasks WHERE 1 = 1"));
            if let Some(v) = to {
                q.push(" AND");
                push_task_visibility(&mut q, v, "");
            }
            if let Some(s) = &f.status {
                q.push(" AND status = ").push_bind(s.clone());
            }
            if let Some(offices) = &f.offices {
                if offices.is_empty() {
                    q.push(" AND 1 = 0");
                } else {
                    q.push(" AND office IN (");
                    let mut list = q.separated(", ");
                    for o in offices {
                        list.push_bind(o.clone());
                    }
                    q.push(")");
                }
            }
            if let Some(r) = &f.role {
                q.push(" AND role = ").push_bind(r.clone());
            }
            if let Some(a) = &f.assignee {
                q.push(" AND assignee = ").push_bind(a.clone());
            }
            q.push(" ORDER BY due_at, created_at, id LIMIT ").push_bind(f.limit);
            let rows = q.build().fetch_all(pool).await?;
            Ok(rows.iter().map(task_row).collect::<Result<_, _>>()?)
        }

        // ---- end of the HTTP API block ----

        // ---- writes in a transaction ----

        pub(super) async fn instance_for_update(tx: &mut Tx, id: &str) -> Result<Option<InstanceRow>, StoreError> {
            let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE id = $1 {}", $lock);
            let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(&mut **tx).await?;
            Ok(row.as_ref().map(instance_row).transpose()?)
        }

        pub(super) async fn insert_instance(tx: &mut Tx, r: &InstanceRow) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO instances (id, workflow, version, status, business_key, request_id, input, state, output, error, \
                 parent_id, parent_token, parent_epoch, started_at, updated_at, ended_at, history_seq, history_head) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
            )
            .bind(&r.id)
            .bind(&r.workflow)
            .bind(r.version)
            .bind(&r.status)
            .bind(&r.business_key)
            .bind(&r.request_id)
            .bind(&r.input)
            .bind(&r.state)
            .bind(&r.output)
            .bind(&r.error)
            .bind(&r.parent_id)
            .bind(r.parent_token)
            .bind(r.parent_epoch)
            .bind(r.started_at)
            .bind(r.updated_at)
            .bind(r.ended_at)
            .bind(r.history_seq)
            .bind(&r.history_head)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        pub(super) async fn find_by_request_id(tx: &mut Tx, workflow: &str, request_id: &str) -> Result<Option<String>, StoreError> {
            let row = sqlx::query("SELECT id FROM instances WHERE workflow = $1 AND request_id = $2")
                .bind(workflow)
                .bind(request_id)
                .fetch_optional(&mut **tx)
                .await?;
            Ok(row.map(|r| r.try_get("id")).transpose()?)
        }

        pub(super) async fn update_instance(tx: &mut Tx, r: &InstanceRow) -> Result<(), StoreError> {
            sqlx::query(
                "UPDATE instances SET status = $2, state = $3, output = $4, error = $5, updated_at = $6, ended_at = $7, \
                 history_seq = $8, history_head = $9 WHERE id = $1",
            )
            .bind(&r.id)
            .bind(&r.status)
            .bind(&r.state)
            .bind(&r.output)
            .bind(&r.error)
            .bind(r.updated_at)
            .bind(r.ended_at)
            .bind(r.history_seq)
            .bind(&r.history_head)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        /// Locks up to `limit` due external tasks of `topic` for `holder`, each with a new
        /// random lock id, in one transaction (nobody sees a task leased without its new id).
        pub(super) async fn claim_external(
            pool: &Pool<$Db>,
            holder: LockHolder<'_>,
            topic: &str,
            now: Millis,
            lease_until: Millis,
            limit: i64,
        ) -> Result<Vec<LockedJob>, StoreError> {
            let sql = format!(
                "UPDATE jobs SET lease_owner = $1, lease_until = $2, fence = fence + 1, locked_by = $5, lock_id = NULL WHERE id IN ( \
                    SELECT id FROM jobs WHERE topic = $6 AND due_at <= $3 AND (lease_until IS NULL OR lease_until < $3) \
                    ORDER BY due_at, id LIMIT $4 {}) \
                 RETURNING id, instance_id, token, kind, payload, due_at, fence, topic, lease_until",
                $skip_locked
            );
            let mut tx = begin_write(pool).await?;
            let rows = sqlx::query(AssertSqlSafe(sql))
                .bind(holder.worker)
                .bind(lease_until)
                .bind(now)
                .bind(limit)
                .bind(holder.token)
                .bind(topic)
                .fetch_all(&mut *tx)
                .await?;
            let mut jobs: Vec<Job> = rows.iter().map(job_row).collect::<Result<_, _>>()?;
            jobs.sort_by_key(|j| (j.due_at, j.id));
            let mut locked = Vec::with_capacity(jobs.len());
            for job in jobs {
                let lock_id = super::new_lock_id()?;
                sqlx::query("UPDATE jobs SET lock_id = $1 WHERE id = $2").bind(&lock_id).bind(job.id).execute(&mut *tx).await?;
                locked.push(LockedJob { job, lock_id });
            }
            tx.commit().await?;
            Ok(locked)
        }

        /// Removes an external task if `holder` still holds it under `lock` (not expired),
        /// returning it.
        pub(super) async fn finish_external(tx: &mut Tx, id: i64, lock: &str, holder: LockHolder<'_>, now: Millis) -> Result<Option<Job>, StoreError> {
            let row = sqlx::query(
                "DELETE FROM jobs WHERE id = $1 AND lock_id = $2 AND locked_by = $3 AND lease_owner = $4 AND lease_until >= $5 AND topic IS NOT NULL \
                 RETURNING id, instance_id, token, kind, payload, due_at, fence, topic, lease_until",
            )
            .bind(id)
            .bind(lock)
            .bind(holder.token)
            .bind(holder.worker)
            .bind(now)
            .fetch_optional(&mut **tx)
            .await?;
            Ok(row.as_ref().map(job_row).transpose()?)
        }

        pub(super) async fn extend_external_lock(tx: &mut Tx, id: i64, lock: &str, holder: LockHolder<'_>, now: Millis, until: Millis) -> Result<Option<String>, StoreError> {
            let row = sqlx::query(
                "UPDATE jobs SET lease_until = $6 WHERE id = $1 AND lock_id = $2 AND locked_by = $3 AND lease_owner = $4 AND lease_until >= $5 AND topic IS NOT NULL \
                 RETURNING topic",
            )
            .bind(id)
            .bind(lock)
            .bind(holder.token)
            .bind(holder.worker)
            .bind(now)
            .bind(until)
            .fetch_optional(&mut **tx)
            .await?;
            Ok(row.map(|r| r.try_get("topic")).transpose()?)
        }

        pub(super) async fn external_lock(pool: &Pool<$Db>, id: i64) -> Result<Option<ExternalLock>, StoreError> {
            let row = sqlx::query("SELECT lock_id, locked_by, topic FROM jobs WHERE id = $1 AND topic IS NOT NULL").bind(id).fetch_optional(pool).await?;
            let Some(r) = row else { return Ok(None) };
            Ok(Some(ExternalLock { lock_id: r.try_get("lock_id")?, locked_by: r.try_get("locked_by")?, topic: r.try_get("topic")? }))
        }

        pub(super) async fn finish_job(tx: &mut Tx, id: i64, fence: i64) -> Result<bool, StoreError> {
            let done = sqlx::query("DELETE FROM jobs WHERE id = $1 AND fence = $2").bind(id).bind(fence).execute(&mut **tx).await?;
            Ok(done.rows_affected() == 1)
        }

        pub(super) async fn discard_token(tx: &mut Tx, instance: &str, token: i64, now: Millis) -> Result<(), StoreError> {
            sqlx::query("DELETE FROM jobs WHERE instance_id = $1 AND token = $2 AND kind <> 'notify_parent'")
                .bind(instance)
                .bind(token)
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM subscriptions WHERE instance_id = $1 AND token = $2").bind(instance).bind(token).execute(&mut **tx).await?;
            sqlx::query("UPDATE tasks SET status = 'cancelled', completed_at = $3 WHERE instance_id = $1 AND token = $2 AND status IN ('open', 'claimed')")
                .bind(instance)
                .bind(token)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        pub(super) async fn principal(tx: &mut Tx, name: &str) -> Result<Option<Principal>, StoreError> {
            let row = sqlx::query(
                "SELECT username AS name, role, offices, task_roles FROM users WHERE username = $1 AND disabled_at IS NULL \
                 UNION ALL SELECT name, role, offices, task_roles FROM api_tokens WHERE name = $1 AND revoked_at IS NULL",
            )
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?;
            let Some(r) = row else { return Ok(None) };
            Ok(Some(Principal {
                name: r.try_get("name")?,
                role: r.try_get("role")?,
                offices: r.try_get("offices")?,
                task_roles: r.try_get("task_roles")?,
            }))
        }

        pub(super) async fn running_children(tx: &mut Tx, instance: &str, token: i64) -> Result<Vec<String>, StoreError> {
            let rows = sqlx::query("SELECT id FROM instances WHERE parent_id = $1 AND parent_token = $2 AND status IN ('running', 'compensating')")
                .bind(instance)
                .bind(token)
                .fetch_all(&mut **tx)
                .await?;
            Ok(rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?)
        }

        pub(super) async fn insert_workflow(tx: &mut Tx, w: &WorkflowRow) -> Result<(), StoreError> {
            sqlx::query("INSERT INTO workflows (name, version, hash, source, deployed_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&w.name)
                .bind(w.version)
                .bind(&w.hash)
                .bind(&w.source)
                .bind(w.deployed_at)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        pub(super) async fn workflow_versions(tx: &mut Tx, name: &str) -> Result<Vec<WorkflowRow>, StoreError> {
            let rows = sqlx::query("SELECT name, version, hash, source, deployed_at FROM workflows WHERE name = $1 ORDER BY version")
                .bind(name)
                .fetch_all(&mut **tx)
                .await?;
            Ok(rows.iter().map(workflow_row).collect::<Result<_, _>>()?)
        }

        pub(super) async fn insert_task(tx: &mut Tx, t: &TaskRow) -> Result<(), StoreError> {
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO tasks ({TASK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
            )))
            .bind(&t.id)
            .bind(&t.instance_id)
            .bind(t.token)
            .bind(t.epoch)
            .bind(&t.step_id)
            .bind(&t.status)
            .bind(&t.title)
            .bind(&t.description)
            .bind(&t.assignee)
            .bind(&t.role)
            .bind(&t.office)
            .bind(&t.form)
            .bind(&t.outcomes)
            .bind(&t.reason_required)
            .bind(&t.excluded_actors)
            .bind(t.due_at)
            .bind(t.created_at)
            .bind(&t.completed_by)
            .bind(t.completed_at)
            .bind(&t.result)
            .bind(&t.delegated_by)
            .bind(t.escalated_at)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        pub(super) async fn task_for_update(tx: &mut Tx, id: &str) -> Result<Option<TaskRow>, StoreError> {
            let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1 {}", $lock);
            let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(&mut **tx).await?;
            Ok(row.as_ref().map(task_row).transpose()?)
        }

        pub(super) async fn update_task(tx: &mut Tx, t: &TaskRow) -> Result<(), StoreError> {
            sqlx::query("UPDATE tasks SET status = $2, assignee = $3, completed_by = $4, completed_at = $5, result = $6, role = $7, office = $8, delegated_by = $9, escalated_at = $10 WHERE id = $1")
                .bind(&t.id)
                .bind(&t.status)
                .bind(&t.assignee)
                .bind(&t.completed_by)
                .bind(t.completed_at)
                .bind(&t.result)
                .bind(&t.role)
                .bind(&t.office)
                .bind(&t.delegated_by)
                .bind(t.escalated_at)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        pub(super) async fn insert_subscription(tx: &mut Tx, s: &Subscription) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO subscriptions (instance_id, token, epoch, message, key, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (instance_id, token) DO UPDATE SET epoch = $3, message = $4, key = $5, created_at = $6",
            )
            .bind(&s.instance_id)
            .bind(s.token)
            .bind(s.epoch)
            .bind(&s.message)
            .bind(&s.key)
            .bind(s.created_at)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        /// The oldest subscription waiting for `(message, key)` — the one a message is delivered to.
        const FIRST_SUBSCRIPTION: &str = "SELECT instance_id, token, epoch, message, key, created_at FROM subscriptions \
             WHERE message = $1 AND key = $2 ORDER BY created_at LIMIT 1";

        /// A `subscriptions` row (`SELECT instance_id, token, epoch, message, key, created_at`).
        fn subscription_row(r: &$Row) -> Result<Subscription, sqlx::Error> {
            Ok(Subscription {
                instance_id: r.try_get("instance_id")?,
                token: r.try_get("token")?,
                epoch: r.try_get("epoch")?,
                message: r.try_get("message")?,
                key: r.try_get("key")?,
                created_at: r.try_get("created_at")?,
            })
        }

        /// The subscription a message `(message, key)` would be delivered to now (read only).
        pub(super) async fn subscription(pool: &Pool<$Db>, message: &str, key: &str) -> Result<Option<Subscription>, StoreError> {
            let row = sqlx::query(FIRST_SUBSCRIPTION).bind(message).bind(key).fetch_optional(pool).await?;
            Ok(row.as_ref().map(subscription_row).transpose()?)
        }

        pub(super) async fn take_subscription(tx: &mut Tx, message: &str, key: &str) -> Result<Option<Subscription>, StoreError> {
            let sql = format!("{FIRST_SUBSCRIPTION} {}", $lock);
            let Some(r) = sqlx::query(AssertSqlSafe(sql)).bind(message).bind(key).fetch_optional(&mut **tx).await? else { return Ok(None) };
            let s = subscription_row(&r)?;
            sqlx::query("DELETE FROM subscriptions WHERE instance_id = $1 AND token = $2").bind(&s.instance_id).bind(s.token).execute(&mut **tx).await?;
            Ok(Some(s))
        }

        pub(super) async fn insert_message(tx: &mut Tx, m: &MessageRow) -> Result<(), StoreError> {
            sqlx::query("INSERT INTO messages (id, name, key, payload, published_at, expires_at, consumed_by) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(&m.id)
                .bind(&m.name)
                .bind(&m.key)
                .bind(&m.payload)
                .bind(m.published_at)
                .bind(m.expires_at)
                .bind(&m.consumed_by)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        /// A `messages` row (`SELECT id, name, key, payload, published_at, expires_at, consumed_by`).
        pub(super) fn message_row(r: &$Row) -> Result<MessageRow, sqlx::Error> {
            Ok(MessageRow {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                key: r.try_get("key")?,
                payload: r.try_get("payload")?,
                published_at: r.try_get("published_at")?,
                expires_at: r.try_get("expires_at")?,
                consumed_by: r.try_get("consumed_by")?,
            })
        }

        pub(super) async fn take_message(tx: &mut Tx, name: &str, key: &str, now: Millis, consumer: &str) -> Result<Option<MessageRow>, StoreError> {
            let sql = format!(
                "SELECT id, name, key, payload, published_at, expires_at, consumed_by FROM messages \
                 WHERE name = $1 AND key = $2 AND consumed_by IS NULL AND expires_at > $3 ORDER BY published_at, id LIMIT 1 {}",
                $lock
            );
            let Some(r) = sqlx::query(AssertSqlSafe(sql)).bind(name).bind(key).bind(now).fetch_optional(&mut **tx).await? else { return Ok(None) };
            let m = MessageRow { consumed_by: Some(consumer.to_string()), ..message_row(&r)? };
            sqlx::query("UPDATE messages SET consumed_by = $2 WHERE id = $1").bind(&m.id).bind(consumer).execute(&mut **tx).await?;
            Ok(Some(m))
        }

        // ---- triggers: cron schedules and webhook/message names (crate::trigger) ----

        fn schedule_row(r: &$Row) -> Result<crate::store::ScheduleRow, sqlx::Error> {
            Ok(crate::store::ScheduleRow {
                id: r.try_get("id")?,
                workflow: r.try_get("workflow")?,
                version: r.try_get("version")?,
                trigger_ix: r.try_get("trigger_ix")?,
                schedule: r.try_get("schedule")?,
                timezone: r.try_get("timezone")?,
                next_fire_at: r.try_get("next_fire_at")?,
                created_at: r.try_get("created_at")?,
            })
        }

        const SCHEDULE_COLUMNS: &str = "id, workflow, version, trigger_ix, schedule, timezone, next_fire_at, created_at";

        pub(super) async fn replace_triggers(
            tx: &mut Tx,
            workflow: &str,
            schedules: &[crate::store::ScheduleRow],
            names: &[crate::store::TriggerName],
        ) -> Result<(), StoreError> {
            sqlx::query("DELETE FROM schedules WHERE workflow = $1").bind(workflow).execute(&mut **tx).await?;
            sqlx::query("DELETE FROM trigger_names WHERE workflow = $1").bind(workflow).execute(&mut **tx).await?;
            for s in schedules {
                sqlx::query(AssertSqlSafe(format!("INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")))
                    .bind(&s.id)
                    .bind(&s.workflow)
                    .bind(s.version)
                    .bind(s.trigger_ix)
                    .bind(&s.schedule)
                    .bind(&s.timezone)
                    .bind(s.next_fire_at)
                    .bind(s.created_at)
                    .execute(&mut **tx)
                    .await?;
            }
            for n in names {
                sqlx::query("INSERT INTO trigger_names (kind, name, workflow, version, trigger_ix) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&n.kind)
                    .bind(&n.name)
                    .bind(&n.workflow)
                    .bind(n.version)
                    .bind(n.trigger_ix)
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(())
        }

        fn trigger_name_row(r: &$Row) -> Result<crate::store::TriggerName, sqlx::Error> {
            Ok(crate::store::TriggerName {
                kind: r.try_get("kind")?,
                name: r.try_get("name")?,
                workflow: r.try_get("workflow")?,
                version: r.try_get("version")?,
                trigger_ix: r.try_get("trigger_ix")?,
            })
        }

        const TRIGGERS_NAMED: &str =
            "SELECT kind, name, workflow, version, trigger_ix FROM trigger_names WHERE kind = $1 AND name = $2 ORDER BY workflow, trigger_ix";

        pub(super) async fn triggers_named(tx: &mut Tx, kind: &str, name: &str) -> Result<Vec<crate::store::TriggerName>, StoreError> {
            let rows = sqlx::query(TRIGGERS_NAMED).bind(kind).bind(name).fetch_all(&mut **tx).await?;
            Ok(rows.iter().map(trigger_name_row).collect::<Result<_, _>>()?)
        }

        pub(super) async fn list_triggers_named(pool: &Pool<$Db>, kind: &str, name: &str) -> Result<Vec<crate::store::TriggerName>, StoreError> {
            let rows = sqlx::query(TRIGGERS_NAMED).bind(kind).bind(name).fetch_all(pool).await?;
            Ok(rows.iter().map(trigger_name_row).collect::<Result<_, _>>()?)
        }

        /// Moves a due schedule to its next fire time if it is still due at `due`: the
        /// claim that makes each due time fire once across processes.
        pub(super) async fn claim_schedule(tx: &mut Tx, id: &str, due: Millis, next: Millis) -> Result<bool, StoreError> {
            let done = sqlx::query("UPDATE schedules SET next_fire_at = $3 WHERE id = $1 AND next_fire_at = $2")
                .bind(id)
                .bind(due)
                .bind(next)
                .execute(&mut **tx)
                .await?;
            Ok(done.rows_affected() == 1)
        }

        pub(super) async fn delete_schedule(tx: &mut Tx, id: &str, due: Millis) -> Result<bool, StoreError> {
            let done = sqlx::query("DELETE FROM schedules WHERE id = $1 AND next_fire_at = $2").bind(id).bind(due).execute(&mut **tx).await?;
            Ok(done.rows_affected() == 1)
        }

        pub(super) async fn due_schedules(pool: &Pool<$Db>, now: Millis, limit: i64) -> Result<Vec<crate::store::ScheduleRow>, StoreError> {
            let sql = format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE next_fire_at <= $1 ORDER BY next_fire_at, id LIMIT $2");
            let rows = sqlx::query(AssertSqlSafe(sql)).bind(now).bind(limit).fetch_all(pool).await?;
            Ok(rows.iter().map(schedule_row).collect::<Result<_, _>>()?)
        }

        pub(super) async fn list_schedules(pool: &Pool<$Db>) -> Result<Vec<crate::store::ScheduleRow>, StoreError> {
            let sql = format!("SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY workflow, trigger_ix");
            let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(pool).await?;
            Ok(rows.iter().map(schedule_row).collect::<Result<_, _>>()?)
        }

        pub(super) async fn next_schedule_at(pool: &Pool<$Db>) -> Result<Option<Millis>, StoreError> {
            Ok(sqlx::query("SELECT MIN(next_fire_at) AS t FROM schedules").fetch_one(pool).await?.try_get("t")?)
        }

        /// Records the signature of an accepted webhook delivery until `expires_at`; `false`
        /// when it is already recorded (a replay). `ON CONFLICT DO NOTHING` on the primary key:
        /// a concurrent transaction inserting the same signature waits for this one and then
        /// inserts nothing.
        pub(super) async fn remember_webhook_signature(tx: &mut Tx, webhook: &str, signature: &str, expires_at: Millis) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "INSERT INTO webhook_signatures (webhook, signature, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (webhook, signature) DO NOTHING",
            )
            .bind(webhook)
            .bind(signature)
            .bind(expires_at)
            .execute(&mut **tx)
            .await?;
            Ok(done.rows_affected() == 1)
        }

        pub(super) async fn purge_webhook_signatures(pool: &Pool<$Db>, now: Millis) -> Result<u64, StoreError> {
            let done = sqlx::query("DELETE FROM webhook_signatures WHERE expires_at <= $1").bind(now).execute(pool).await?;
            Ok(done.rows_affected())
        }

        // ---- end of the triggers block ----

        // ---- metrics block: read-only gauges computed at scrape time ----

        pub(super) async fn job_stats(pool: &Pool<$Db>, now: Millis) -> Result<(i64, Option<Millis>), StoreError> {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n, MIN(due_at) AS oldest FROM jobs \
                 WHERE topic IS NULL AND due_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)",
            )
            .bind(now)
            .fetch_one(pool)
            .await?;
            Ok((row.try_get("n")?, row.try_get("oldest")?))
        }

        pub(super) async fn open_tasks_by_office(pool: &Pool<$Db>) -> Result<Vec<(String, i64)>, StoreError> {
            let rows = sqlx::query(
                "SELECT COALESCE(office, '') AS office, COUNT(*) AS n FROM tasks \
                 WHERE status IN ('open', 'claimed') GROUP BY COALESCE(office, '') ORDER BY 1",
            )
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| Ok((r.try_get("office")?, r.try_get("n")?))).collect()
        }

        // ---- end of the metrics block ----
    };
}
