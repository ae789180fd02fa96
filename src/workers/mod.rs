//! Background loops. Each coordinates through Postgres (advisory locks, `SKIP LOCKED`) so
//! several gateway replicas can run them at once.

pub mod balances;
pub mod callbacks;
pub mod catalog_sync;
pub mod outbox;
pub mod provisioner;
pub mod webhook_dns;
