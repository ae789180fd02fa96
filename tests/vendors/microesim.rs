//! microesim adapter against its simulator.
