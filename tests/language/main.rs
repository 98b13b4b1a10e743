//! The workflow language: shipped workflows are valid, every diagnostic code has a fixture
//! with a snapshot of its rendered output, hostile input fails fast, the CLI behaves.

mod cli;
mod fixtures;
mod hostile;
mod scenarios;
mod shipped;
