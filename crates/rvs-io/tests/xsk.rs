//! AF_XDP socket mechanics on a veth: chunk accounting, frame ownership checks, transmit in
//! batches larger than one copy-mode kick.

use std::time::{Duration, Instant};

use rvs_io::packet::{ETH_P_ALL, PacketSocket};
use rvs_io::xsk::{BindMode, Frame, FrameError, XskConfig, XskSocket};

use crate::util::{Netns, skip_unless_root};

const TEST_ETHERTYPE: u16 = 0x88b5; // IEEE local experimental

#[test]
fn xsk_accounting_ownership_and_batched_tx() {
    if skip_unless_root("xsk") {
        return;
    }
    let ns = Netns::new("xsk");
    ns.ip(&["link", "add", "x0", "type", "veth", "peer", "name", "x1"]);
    ns.ip(&["link", "set", "x0", "up"]);
    ns.ip(&["link", "set", "x1", "up"]);
    let cfg = XskConfig {
        frame_count: 1024,
        rx_size: 512,
        tx_size: 512,
        fill_size: 512,
        comp_size: 512,
        ..XskConfig::default()
    };
    let mut sock = match ns.run(|| XskSocket::open("x0", 0, &cfg)) {
        Ok(s) => s,
        Err(e) if e.raw_os_error() == Some(97) => {
            eprintln!("SKIP xsk: no AF_XDP here: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    assert_eq!(sock.bind_mode(), BindMode::Copy);
    assert!(
        ns.run(|| XskSocket::open("x0", 0, &cfg)).is_err(),
        "one socket per queue"
    );
    let acct = sock.chunk_accounting();
    assert_eq!(acct.free + acct.fill + acct.app + acct.tx, cfg.frame_count);
    assert_eq!(acct.fill, cfg.fill_size, "fill ring filled at open");
    assert!(acct.free >= cfg.frame_count / 4, "a TX reserve stays free");

    // Ownership checks never corrupt the pool.
    let (f, _) = sock.alloc_tx().unwrap();
    assert_eq!(sock.tx_push(f), Err(FrameError::OutOfBounds), "empty frame");
    assert_eq!(sock.reframe(&f, 2040, 100), Err(FrameError::OutOfBounds));
    sock.recycle(f).unwrap();
    assert_eq!(sock.recycle(f), Err(FrameError::NotOwned), "double recycle");
    assert!(sock.buf(&f).is_none());
    let beyond = Frame {
        addr: u64::from(cfg.frame_count) * 2048,
        len: 60,
    };
    assert_eq!(sock.tx_push(beyond), Err(FrameError::OutOfBounds));
    let in_fill_ring = Frame {
        addr: 256 + 2048 * 1023,
        len: 60,
    };
    assert_eq!(sock.tx_push(in_fill_ring), Err(FrameError::NotOwned));
    assert_eq!(sock.chunk_accounting(), acct);

    // Transmit 200 frames in one flush: copy mode sends 32 per kick, flush_tx keeps kicking.
    let rx = ns.run(|| PacketSocket::open("x1", ETH_P_ALL)).unwrap();
    let n = 200u32;
    for i in 0..n {
        let (mut f, buf) = sock.alloc_tx().expect("enough free chunks");
        buf[..6].copy_from_slice(&[0xff; 6]);
        buf[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        buf[12..14].copy_from_slice(&TEST_ETHERTYPE.to_be_bytes());
        buf[14..18].copy_from_slice(&i.to_be_bytes());
        f.len = 60;
        // The same frame described through reframe (what the engine does after rewriting).
        let f = sock.reframe(&f, 256, 60).unwrap();
        sock.tx_push(f).unwrap();
    }
    sock.flush_tx().unwrap();
    let mut seen = vec![false; n as usize];
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(3);
    while seen.iter().any(|s| !s) && Instant::now() < deadline {
        sock.flush_tx().unwrap();
        if let Some(len) = rx.recv(&mut buf, Some(Duration::from_millis(20))).unwrap()
            && len >= 18
            && buf[12..14] == TEST_ETHERTYPE.to_be_bytes()
        {
            let i = u32::from_be_bytes([buf[14], buf[15], buf[16], buf[17]]);
            seen[i as usize] = true;
        }
    }
    assert_eq!(
        seen.iter().filter(|s| **s).count(),
        n as usize,
        "every frame went out"
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while sock.chunk_accounting().tx > 0 && Instant::now() < deadline {
        sock.reclaim_completions();
    }
    let end = sock.chunk_accounting();
    assert_eq!(
        (end.tx, end.app),
        (0, 0),
        "completions returned every chunk"
    );
    assert_eq!(end.free + end.fill, cfg.frame_count);
    let stats = sock.stats().unwrap();
    println!("xsk: {stats:?}");
    assert_eq!(stats.tx_packets, u64::from(n));
    assert!(stats.tx_kicks >= u64::from(n / 32), "{stats:?}");
    assert_eq!(stats.tx_invalid_descs, 0);
}

#[test]
fn xsk_bufs_lends_disjoint_chunks_and_refuses_duplicates() {
    if skip_unless_root("xsk bufs") {
        return;
    }
    let ns = Netns::new("xskb");
    ns.ip(&["link", "add", "x0", "type", "veth", "peer", "name", "x1"]);
    ns.ip(&["link", "set", "x0", "up"]);
    ns.ip(&["link", "set", "x1", "up"]);
    let cfg = XskConfig {
        frame_count: 256,
        rx_size: 64,
        tx_size: 64,
        fill_size: 64,
        comp_size: 64,
        ..XskConfig::default()
    };
    let mut sock = match ns.run(|| XskSocket::open("x0", 0, &cfg)) {
        Ok(s) => s,
        Err(e) if e.raw_os_error() == Some(97) => {
            eprintln!("SKIP xsk bufs: no AF_XDP here: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let frames: Vec<Frame> = (0..4)
        .map(|_| {
            let (f, _) = sock.alloc_tx().unwrap();
            sock.reframe(&f, 256, 60).unwrap()
        })
        .collect();
    let acct = sock.chunk_accounting();
    assert_eq!(acct.app, 4);

    // All four at once: whole chunks, the data where `buf` puts it, writable independently.
    let mut out = Vec::new();
    sock.bufs(&frames, &mut out).unwrap();
    assert_eq!(out.len(), 4);
    for (k, (chunk, off, len)) in out.iter_mut().enumerate() {
        assert_eq!((chunk.len(), *off, *len), (2048, 256, 60));
        chunk[*off..*off + *len].fill(k as u8 + 1);
    }
    drop(out);
    for (k, f) in frames.iter().enumerate() {
        let (chunk, off, len) = sock.buf(f).unwrap();
        assert!(
            chunk[off..off + len].iter().all(|&b| b == k as u8 + 1),
            "frame {k} kept its own bytes: the chunks do not overlap"
        );
    }
    assert_eq!(
        sock.chunk_accounting(),
        acct,
        "lending changes no ownership"
    );

    // Refusals leave nothing appended and nothing marked.
    let refuse = |sock: &mut XskSocket, batch: &[Frame]| {
        let mut out = Vec::new();
        let r = sock.bufs(batch, &mut out);
        assert_eq!(out.len(), if r.is_ok() { batch.len() } else { 0 });
        r
    };
    let [a, b, c, d] = [frames[0], frames[1], frames[2], frames[3]];
    assert_eq!(refuse(&mut sock, &[a, b, a]), Err(FrameError::Duplicate));
    let same_chunk = sock.reframe(&b, 300, 40).unwrap();
    assert_eq!(
        refuse(&mut sock, &[b, same_chunk]),
        Err(FrameError::Duplicate)
    );
    sock.recycle(d).unwrap();
    assert_eq!(refuse(&mut sock, &[a, c, d]), Err(FrameError::NotOwned));
    let beyond = Frame {
        addr: 256 * 2048 + 256,
        len: 60,
    };
    assert_eq!(
        refuse(&mut sock, &[a, beyond]),
        Err(FrameError::OutOfBounds)
    );
    let after = sock.chunk_accounting();
    assert_eq!((after.app, after.free), (3, acct.free + 1));
    assert_eq!(
        refuse(&mut sock, &[a, b, c]),
        Ok(()),
        "marks undone after each refusal"
    );
    for f in [a, b, c] {
        sock.recycle(f).unwrap();
    }
    assert_eq!(sock.chunk_accounting().app, 0);
}
