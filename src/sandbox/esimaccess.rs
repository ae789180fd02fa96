//! Simulator for esimaccess. Filled in by the vendor-layer work.
