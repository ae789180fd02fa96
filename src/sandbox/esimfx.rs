//! Simulator for esimfx. Filled in by the vendor-layer work.
