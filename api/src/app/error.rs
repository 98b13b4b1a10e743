//! [`AppError`]: why a use-case did not happen, in the domain's words.
//!
//! Every variant carries a stable code ([`AppError::code`]) that the surfaces show: the REST
//! API as a problem's `code` (with the HTTP status it chooses), the console as a translated
//! message. Engine errors pass through unchanged ([`AppError::Engine`]) so each surface maps
//! them exactly as it maps an engine error of its own.

use pratica_engine::runtime::EngineError;

/// A use-case refused, or failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// `not_found`: no such thing, or the caller may not see it (the same answer, so an
    /// operator never learns of another office's cases).
    #[error("{0}")]
    NotFound(String),
    /// `forbidden`: the caller's role lacks the permission (the text names the roles that hold it).
    #[error("{0}")]
    Forbidden(String),
    /// `separation_of_duties`: the four-eyes rule refuses this actor.
    #[error("{0}")]
    SeparationOfDuties(String),
    /// `task_claimed`: someone else holds the task.
    #[error("{0}")]
    TaskClaimed(String),
    /// `task_closed`: the task is completed or cancelled.
    #[error("{0}")]
    TaskClosed(String),
    /// `not_retryable`: the instance is not failed, or its failure was compensated.
    #[error("{0}")]
    NotRetryable(String),
    /// `invalid_field`: one input field is missing, empty or out of range.
    #[error("{detail}")]
    InvalidField { field: String, detail: String },
    /// `invalid_form`: a task form does not match its schema; one entry per problem.
    #[error("{detail}")]
    InvalidForm { detail: String, errors: Vec<FieldError> },
    /// `invalid_delegation`: unknown delegate, another office, a role that cannot work tasks.
    #[error("{0}")]
    InvalidDelegation(String),
    /// Anything the engine answered: each surface maps it as any engine error.
    #[error(transparent)]
    Engine(EngineError),
    /// A failure the caller cannot act on (a database error while reading): always internal.
    #[error(transparent)]
    Internal(EngineError),
}

/// One problem with submitted data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON pointer of the value (`/` for the whole document).
    pub field: String,
    pub message: String,
}

impl AppError {
    /// An invalid input field.
    pub fn invalid_field(field: &str, detail: impl Into<String>) -> Self {
        AppError::InvalidField { field: field.to_string(), detail: detail.into() }
    }

    /// A failure reading the store, which the caller cannot act on.
    pub fn internal(error: impl Into<EngineError>) -> Self {
        AppError::Internal(error.into())
    }

    /// The stable code of a refusal (`None` for engine errors, whose code the surface's
    /// mapping decides).
    pub fn code(&self) -> Option<&'static str> {
        Some(match self {
            AppError::NotFound(_) => "not_found",
            AppError::Forbidden(_) => "forbidden",
            AppError::SeparationOfDuties(_) => "separation_of_duties",
            AppError::TaskClaimed(_) => "task_claimed",
            AppError::TaskClosed(_) => "task_closed",
            AppError::NotRetryable(_) => "not_retryable",
            AppError::InvalidField { .. } => "invalid_field",
            AppError::InvalidForm { .. } => "invalid_form",
            AppError::InvalidDelegation(_) => "invalid_delegation",
            AppError::Engine(_) => return None,
            AppError::Internal(_) => "internal",
        })
    }
}

impl From<EngineError> for AppError {
    fn from(error: EngineError) -> Self {
        AppError::Engine(error)
    }
}
