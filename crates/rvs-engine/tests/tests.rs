//! rvs-engine integration tests: frames in, frames out, through the public API only.

mod badinput;
mod control;
mod conversation;
mod features;
mod golden;
mod protocols;
mod sched;
mod util;
