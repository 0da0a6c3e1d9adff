//! The rvs binaries' code: thin wiring around the pure crates.
//!
//! * [`daemon`] — `rvsd`: XDP steering and AF_XDP workers feeding `rvs-engine`, netlink sync,
//!   the control socket, the XDP fast path's maps.
//! * [`rvsadm`] — the ipvsadm 1.31-compatible administration CLI.
//! * [`lab`] — `rvs lab`: a network-namespace lab (client, router, director, real servers) and
//!   its demo.
//! * [`realserver`] — `rvs realserver dr|tun`: prepares a real server (VIP on `lo`, ARP
//!   suppression, tunnel decapsulation) and undoes exactly what it changed.
//! * [`testsrv`] — `rvs testsrv http|udp`: servers that answer with their own name.
//! * [`bench`] — `rvs bench gen`: the benchmark's live-frame generator.

pub mod bench;
pub mod daemon;
pub mod lab;
pub mod realserver;
pub mod rvsadm;
pub mod testsrv;
