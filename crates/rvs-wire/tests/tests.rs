//! rvs-wire integration tests: the fuzz corpus replayed on stable, and property tests that
//! push random and mutated frames through every parser and builder.

mod exercise;

use std::path::PathBuf;
use std::sync::OnceLock;

use proptest::prelude::*;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/parse_frame")
}

fn corpus() -> &'static [(String, Vec<u8>)] {
    static CORPUS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    CORPUS.get_or_init(load_corpus)
}

fn load_corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir())
        .expect("fuzz/corpus/parse_frame exists")
        .map(|e| {
            let e = e.expect("dir entry");
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).expect("readable"))
        })
        .collect();
    files.sort();
    files
}

/// Every corpus file goes through the same entry points as the fuzz target.
#[test]
fn corpus_replays() {
    let files = corpus();
    assert!(files.len() >= 30, "only {} corpus files", files.len());
    let mut replied = 0;
    let mut tunnelled = 0;
    for (name, data) in files {
        let cov = exercise::frame(data);
        // Seeds from the capture (and VLAN/QinQ/IPIP variants of them) are real frames and
        // must parse; `regress-*` files are fuzzer finds and may be garbage.
        if !name.starts_with("regress-") {
            assert!(
                cov.meta_ok,
                "{name} does not parse: {:?}",
                rvs_wire::PacketMeta::parse(data)
            );
        }
        replied += usize::from(cov.replied);
        tunnelled += cov.tunnelled;
        // The fuzz target also runs a checksum-repaired copy; so does the replay.
        let mut repaired = data.clone();
        exercise::repair_checksums(&mut repaired);
        exercise::frame(&repaired);
    }
    assert!(replied >= 10, "only {replied} seeds produced a reply");
    assert!(tunnelled >= 40, "only {tunnelled} tunnel round trips");
}

/// The derived seeds (VLAN, QinQ, IPIP) parse to what they were built to be.
#[test]
fn derived_seeds_parse_as_built() {
    for (name, data) in corpus() {
        if name.starts_with("regress-") {
            continue;
        }
        let meta = rvs_wire::PacketMeta::parse(data).expect("parses");
        if name.starts_with("vlan-") {
            assert_eq!((meta.vlan_id, meta.l3_offset), (Some(100), 18), "{name}");
        } else if name.starts_with("qinq-") {
            assert_eq!((meta.vlan_id, meta.l3_offset), (Some(10), 22), "{name}");
        } else if name.starts_with("ipip-") {
            assert_eq!(meta.protocol, rvs_wire::IpProtocol::Ipip, "{name}");
            let mut raw = vec![0u8; data.len() + 64];
            raw[64..].copy_from_slice(data);
            let mut buf = rvs_wire::PacketBuf::new(&mut raw, 64, data.len()).unwrap();
            assert_eq!(
                rvs_wire::tunnel::decap(&mut buf, 14),
                Ok(rvs_wire::IpVersion::Ipv4)
            );
            let inner = rvs_wire::PacketMeta::parse(buf.data()).expect("inner parses");
            assert_eq!(inner.ip_version, Some(rvs_wire::IpVersion::Ipv4));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        exercise::frame(&data);
    }

    #[test]
    fn random_bytes_behind_valid_ethernet_never_panic(
        ethertype in prop_oneof![Just(0x0800u16), Just(0x86dd), Just(0x0806), Just(0x8100)],
        first in prop_oneof![Just(0x45u8), Just(0x46), Just(0x4f), Just(0x60), any::<u8>()],
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut data = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0x0a];
        data.extend_from_slice(&ethertype.to_be_bytes());
        data.push(first);
        data.extend_from_slice(&body);
        exercise::frame(&data);
        exercise::repair_checksums(&mut data);
        exercise::frame(&data);
    }

    #[test]
    fn mutated_seeds_never_panic(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut data = which.get(corpus()).1.clone();
        for (at, byte) in edits {
            let i = at.index(data.len());
            data[i] = byte;
        }
        let keep = cut.index(data.len() + 1);
        data.truncate(keep);
        exercise::frame(&data);
        exercise::repair_checksums(&mut data);
        exercise::frame(&data);
    }
}
