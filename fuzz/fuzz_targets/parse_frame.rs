//! Feeds arbitrary bytes, as an Ethernet frame, through `PacketMeta::parse`, every
//! rvs-wire view and `Repr`, the reply builders and tunnel encap/decap, then does it again
//! with the checksums repaired so the fuzzer gets past them. The checks live in
//! `crates/rvs-wire/tests/exercise/mod.rs`, shared with the stable corpus replay test.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../crates/rvs-wire/tests/exercise/mod.rs"]
mod exercise;

fuzz_target!(|data: &[u8]| {
    exercise::frame(data);
    let mut repaired = data.to_vec();
    exercise::repair_checksums(&mut repaired);
    exercise::frame(&repaired);
});
