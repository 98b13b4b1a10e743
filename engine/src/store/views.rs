//! The operator console's cross-table reads: the business keys of an inbox page and the
//! case file's business-key search (office-scoped by the task-visibility rule). The
//! console's sessions and sign-in throttling live in [`super::access`], its messages in
//! [`super::messages`].

use std::collections::HashMap;

use sqlx::QueryBuilder;

use super::instances::push_instance_visibility;
use super::{ROWS_PER_STATEMENT, Store, StoreError, TaskVisibility};

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
    pub async fn business_keys_of(&self, ids: &[String]) -> Result<HashMap<String, Option<String>>, StoreError> {
        let mut keys = HashMap::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            on_pool!(self, |conn| {
                let mut q = QueryBuilder::new("SELECT id, business_key FROM instances WHERE id IN (");
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(id.clone());
                }
                q.push(")");
                keys.extend(q.build_query_as::<(String, Option<String>)>().fetch_all(conn).await?);
            });
        }
        Ok(keys)
    }

    /// Business keys starting with `text` (case-insensitive), the most recently started first;
    /// with `to`, only keys of instances with a task visible to that operator.
    pub async fn business_keys_starting_with(
        &self,
        text: &str,
        limit: i64,
        to: Option<&TaskVisibility>,
    ) -> Result<Vec<String>, StoreError> {
        Ok(on_pool!(self, |conn| {
            let mut q =
                QueryBuilder::new("SELECT business_key FROM instances WHERE business_key IS NOT NULL AND UPPER(business_key) LIKE ");
            q.push_bind(prefix_pattern(text)).push(" ESCAPE '\\'");
            if let Some(v) = to {
                push_instance_visibility(&mut q, v, "instances.");
            }
            q.push(" GROUP BY business_key ORDER BY MAX(started_at) DESC, business_key LIMIT ").push_bind(limit);
            q.build_query_scalar::<String>().fetch_all(conn).await?
        }))
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
