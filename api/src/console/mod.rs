//! The operator console: server-rendered, accessible HTML pages served by `pratica serve`
//! under `/console`, in Italian and English.
//!
//! # Layout
//! - [`i18n`]: the console's languages and how a request picks one.

pub mod i18n;
