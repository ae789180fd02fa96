//! Integration tests: one binary (faster to link), one module per area.

mod helpers;
mod test_db;

mod auth;
mod catalog;
mod docs;
mod errors;
mod operations;
mod outbox;
mod shutdown;
