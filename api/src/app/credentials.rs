//! Credentials: API tokens (opaque, random, stored only as their SHA-256) and console
//! passwords (argon2id), and the [`Caller`] a token stands for.
//!
//! A token is `prt_` and 32 random bytes (`pratica token create`); a missing, unknown or
//! revoked token authenticates nobody. Console users (`pratica user create`) have argon2id
//! password hashes; [`verify_password`] checks one.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use base64::Engine as _;
use pratica_engine::store::{Store, StoreError};
use sha2::{Digest, Sha256};

use super::principal::{Caller, Role, WorkerTopics};

/// The prefix of every API token, so leaked tokens are easy to recognise.
pub const TOKEN_PREFIX: &str = "prt_";

/// Longest token text looked up (anything longer is refused without a query).
const MAX_TOKEN_LEN: usize = 200;

/// The caller (and its external-task topics) that the token text `token` stands for; `None`
/// for a token that is malformed, unknown, revoked or has an unknown role.
pub async fn caller_for_token(store: &Store, token: &str) -> Result<Option<(Caller, WorkerTopics)>, StoreError> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > MAX_TOKEN_LEN {
        return Ok(None);
    }
    let Some(row) = store.token_by_hash(&hash_token(token)).await?.filter(|r| r.revoked_at.is_none()) else { return Ok(None) };
    let Some(role) = Role::parse(&row.role) else { return Ok(None) };
    let offices = serde_json::from_str(&row.offices).unwrap_or_default();
    let task_roles = serde_json::from_str(&row.task_roles).unwrap_or_default();
    // A topic list that cannot be read limits the token to no topic at all, never to all.
    let topics = serde_json::from_str(&row.topics).unwrap_or_else(|_| vec![String::new()]);
    Ok(Some((Caller { name: row.name, role, offices, task_roles }, WorkerTopics(topics))))
}

/// Creates a token named `name` (no task roles) and returns its text, which is shown only
/// this once.
pub async fn create_token(
    store: &Store,
    name: &str,
    role: Role,
    offices: &[String],
    now: pratica_engine::clock::Millis,
) -> Result<String, StoreError> {
    create_token_with_task_roles(store, name, role, offices, &[], now).await
}

/// Creates a token with task roles (the candidate groups of human tasks it may work).
pub async fn create_token_with_task_roles(
    store: &Store,
    name: &str,
    role: Role,
    offices: &[String],
    task_roles: &[String],
    now: pratica_engine::clock::Millis,
) -> Result<String, StoreError> {
    create_token_with_access(store, name, role, TokenAccess { offices, task_roles, topics: &[] }, now).await
}

/// What a new token may reach besides its role: offices and task roles (operators), and the
/// external-task topics (workers; empty: any).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenAccess<'a> {
    pub offices: &'a [String],
    pub task_roles: &'a [String],
    pub topics: &'a [String],
}

/// Creates a token with its offices, task roles and topics, and returns its text.
pub async fn create_token_with_access(
    store: &Store,
    name: &str,
    role: Role,
    access: TokenAccess<'_>,
    now: pratica_engine::clock::Millis,
) -> Result<String, StoreError> {
    let TokenAccess { offices, task_roles, topics } = access;
    let token = generate_token();
    let row = pratica_engine::store::TokenRow {
        name: name.to_string(),
        hash: hash_token(&token),
        role: role.as_str().to_string(),
        offices: serde_json::to_string(offices).expect("strings serialize"),
        task_roles: serde_json::to_string(task_roles).expect("strings serialize"),
        topics: serde_json::to_string(topics).expect("strings serialize"),
        created_at: now,
        revoked_at: None,
    };
    store.insert_token(&row).await?;
    Ok(token)
}

/// A new token: `prt_` and 32 random bytes, base64url without padding.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a token: SHA-256 of its text, hex encoded.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// An argon2id hash (default parameters, random salt) of a console password, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, String> {
    let hash: PasswordHash = Argon2::default().hash_password(password.as_bytes()).map_err(|e| format!("cannot hash the password: {e}"))?;
    Ok(hash.to_string())
}

/// Whether `password` matches a stored PHC hash (false for a malformed hash).
pub fn verify_password(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(hash) => Argon2::default().verify_password(password.as_bytes(), &hash).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_with_the_right_text() {
        let stored = hash_password("correct horse battery staple").unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(verify_password("correct horse battery staple", &stored));
        assert!(!verify_password("Correct horse battery staple", &stored));
        assert!(!verify_password("anything", "not a hash"));
        assert_ne!(stored, hash_password("correct horse battery staple").unwrap(), "a random salt each time");
    }

    #[test]
    fn tokens_are_prefixed_random_and_stored_hashed() {
        let (a, b) = (generate_token(), generate_token());
        assert!(a.starts_with("prt_") && a.len() == 4 + 43, "{a}");
        assert_ne!(a, b);
        assert_eq!(hash_token(&a).len(), 64);
        assert_ne!(hash_token(&a), hash_token(&b));
    }
}
