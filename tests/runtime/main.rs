//! The durable runtime on both backends: every construct, retries and timeouts with a
//! controllable clock, catch and compensation, tasks, messages, sub-workflows, fencing,
//! idempotent starts, and the audit chain.

mod api;
mod appio_connector;
mod cli;
mod console;
mod constructs;
mod crash;
mod custom_connector;
mod dashboard;
mod durability;
mod e2e_naspi;
mod email_connector;
mod external;
mod external_http;
mod hostile;
mod http_connector;
mod human_tasks;
mod machine_properties;
mod metrics;
mod naspi_rules;
mod openapi;
mod pec_routing;
mod proactive_notification;
mod secrets;
mod security_access;
mod security_connectors;
mod triggers;
