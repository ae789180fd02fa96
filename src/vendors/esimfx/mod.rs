//! Adapter for esimfx: see `shared/vendors/esimfx.md`. Filled in by the vendor-layer work.
