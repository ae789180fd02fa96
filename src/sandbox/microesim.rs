//! Simulator for microesim. Filled in by the vendor-layer work.
