//! esimgo adapter against its simulator.
