//! Adapter for esimaccess: see `shared/vendors/esimaccess.md`. Filled in by the vendor-layer work.
