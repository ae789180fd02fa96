//! esimaccess adapter against its simulator.
