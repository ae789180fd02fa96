//! esimfx adapter against its simulator.
