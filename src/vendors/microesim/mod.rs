//! Adapter for microesim: see `shared/vendors/microesim.md`. Filled in by the vendor-layer work.
