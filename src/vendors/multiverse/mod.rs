//! Adapter for multiverse: see `shared/vendors/multiverse.md`. Filled in by the vendor-layer work.
