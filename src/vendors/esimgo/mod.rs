//! Adapter for esimgo: see `shared/vendors/esimgo.md`. Filled in by the vendor-layer work.
