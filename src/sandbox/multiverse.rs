//! Simulator for multiverse. Filled in by the vendor-layer work.
