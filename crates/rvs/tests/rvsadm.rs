//! rvsadm: ipvsadm 1.31 compatibility tests, run in-process against the real engine.
//!
//! `backend` puts `rvs_engine::Engine::control` behind rvsadm (canned tables only for golden
//! formats that need counters the engine cannot produce cheaply); the other modules group the
//! tests: command-line errors (ipvs.md §1, checklist 1–25), output formats with golden snapshots
//! (§2, checklist 26–39), table semantics with traffic (§1.7, §4), `-R`/`-S`, name resolution,
//! the control socket, and a save/restore property test.

#[path = "rvsadm/backend.rs"]
mod backend;
#[path = "rvsadm/errors.rs"]
mod errors;
#[path = "rvsadm/formats.rs"]
mod formats;
#[path = "rvsadm/names.rs"]
mod names;
#[path = "rvsadm/props.rs"]
mod props;
#[path = "rvsadm/requests.rs"]
mod requests;
#[path = "rvsadm/restore.rs"]
mod restore;
#[path = "rvsadm/semantics.rs"]
mod semantics;
#[path = "rvsadm/socket.rs"]
mod socket;
