//! Each adapter against its simulator on a loopback port: every operation, every fault
//! class, and proof that the simulator refuses wrong credentials. No database needed.

mod contract;
mod esimaccess;
mod esimfx;
mod esimgo;
mod esimgo_openapi;
mod microesim;
mod multiverse;
