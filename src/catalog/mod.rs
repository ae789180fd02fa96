//! The catalogue: vendor offers in, normalized and priced plans out.

pub mod build;
pub mod normalize;
pub mod pricing;
pub mod snapshot;
pub mod sync;
pub mod view;
