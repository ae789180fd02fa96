//! multiverse adapter against its simulator.
