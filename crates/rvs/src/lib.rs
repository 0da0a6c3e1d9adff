//! Shared code of the rvs binaries (being written).

pub mod lab;
pub mod realserver;
pub mod testsrv;
