//! Simulator for esimgo. Filled in by the vendor-layer work.
