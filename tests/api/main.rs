//! Integration tests: one binary (faster to link), one module per area.

mod helpers;
mod sandbox_app;
mod test_db;

mod auth;
mod catalog;
mod docs;
mod errors;
mod leases_and_states;
mod operations;
mod orders;
mod outbox;
mod sandbox_catalog;
mod shutdown;
mod webhooks;
