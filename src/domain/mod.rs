//! Pure types and rules: no IO. Values are parsed once at the edge so invalid states cannot
//! travel further in.
pub mod api_key;
pub mod attempt;
pub mod country;
pub mod data;
pub mod esim;
pub mod ids;
pub mod mode;
pub mod money;
pub mod order;
pub mod plan;
pub mod qr;
pub mod scenario;
pub mod secret;
pub mod vendor;
pub mod webhook_url;
