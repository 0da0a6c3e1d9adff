//! rvs-engine integration tests: frames in, frames out, through the public API only.

mod golden;
mod util;
