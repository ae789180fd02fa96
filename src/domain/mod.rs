//! Pure types and rules: no IO. Values are parsed once at the edge so invalid states cannot
//! travel further in.
pub mod api_key;
pub mod ids;
pub mod money;
pub mod secret;
