//! The `pratica` command's sub-commands, one module each.

pub mod graph;
pub mod validate;
