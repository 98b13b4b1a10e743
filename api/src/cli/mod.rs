//! The `pratica` command's sub-commands, one module each.

pub mod graph;
pub mod history;
pub mod run;
pub mod serve;
pub mod validate;
