//! Shared code of the rvs binaries (being written).

pub mod bench;
pub mod daemon;
pub mod lab;
pub mod realserver;
pub mod rvsadm;
pub mod testsrv;
