//! The `pratica` command's sub-commands, one module each.

pub mod bench;
pub mod classify;
#[cfg(feature = "demo")]
pub mod demo;
pub mod graph;
pub mod history;
pub mod run;
pub mod serve;
pub mod test;
pub mod token;
pub mod validate;
