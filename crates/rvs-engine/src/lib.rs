//! The rvs load-balancing engine (being written).
#![forbid(unsafe_code)]

pub mod dest;
pub mod sched;
pub mod stats;
