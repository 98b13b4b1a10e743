//! The durable runtime on both backends: every construct, retries and timeouts with a
//! controllable clock, catch and compensation, tasks, messages, sub-workflows, fencing,
//! idempotent starts, and the audit chain.

mod cli;
mod constructs;
mod crash;
mod durability;
mod external;
mod http_connector;
mod machine_properties;
mod secrets;
