//! Integration tests: one binary (faster to link), one module per area.

mod helpers;
mod sandbox_app;
mod test_db;

mod auth;
mod balances;
mod breaker;
mod callback_abuse;
mod catalog;
mod docs;
mod errors;
mod exactly_once;
mod hostile_input;
mod leases_and_states;
mod modes;
mod operations;
mod order_path;
mod orders;
mod outbox;
mod query_plans;
mod read_cache;
mod routing;
mod sandbox_catalog;
mod scenarios;
mod server_limits;
mod shutdown;
mod topups;
mod transactions;
mod webhooks;
