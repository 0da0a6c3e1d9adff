//! Many concurrent real connections through the VIP, both families at once, with a long-lived
//! stream held open throughout: every request is answered and the distribution over the real
//! servers is exactly the scheduler's, both from the answers and from rvsd's counters.

use std::thread;
use std::time::{Duration, Instant};

use rvs::lab::topology::LabMode;

use super::lab::{Fam, Lab};
use super::traffic::{self, Answer, Stream, StreamEnd};

/// HTTP requests per family; with the stream, 216 new connections: 36 whole wrr 3:2:1 cycles and
/// 72 rr rounds.
const HTTP_REQUESTS: usize = 215;
/// Parallel client connections per family (two families at once: 20 in all).
const HTTP_THREADS: usize = 10;
/// UDP queries per family, each from its own source port (a new connection each).
const UDP_QUERIES: u16 = 60;

/// `total` connections split exactly by `weights` (`total` is a multiple of their sum).
fn expected(total: u64, weights: [u32; 3]) -> [u64; 3] {
    let sum: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    assert_eq!(total % sum, 0, "{total} is not whole cycles of {weights:?}");
    weights.map(|w| total * u64::from(w) / sum)
}

fn sub(a: [u64; 3], b: [u64; 3]) -> [u64; 3] {
    std::array::from_fn(|i| a[i] - b[i])
}

/// Runs the load and checks it. `scheduler` is `rr` or `wrr` (exact per cycle).
pub(crate) fn check(lab: &Lab, scheduler: &str) {
    let mode = lab.mode;
    let weights = if scheduler == "rr" {
        [1, 1, 1]
    } else {
        lab.weights
    };
    let client = lab.plan.client.clone();
    let tcp_before = Fam::BOTH.map(|f| lab.dest_conns(f.tcp(), f));
    let udp_before = Fam::BOTH.map(|f| lab.dest_conns(f.udp(), f));
    let out_before = Fam::BOTH.map(|f| lab.service(f.tcp()).stats.outpkts);

    // The long-lived streams come first: each is one scheduled connection of its service.
    let streams = Fam::BOTH.map(|f| Stream::open(&client, f.vip(), 120, Duration::from_secs(5)));
    for s in &streams {
        s.wait_lines(2, 10.0);
    }

    let started = Instant::now();
    let (http, udp) = thread::scope(|sc| {
        let http: Vec<_> = Fam::BOTH
            .iter()
            .map(|f| {
                let client = &client;
                sc.spawn(move || traffic::http_burst(client, f.vip(), HTTP_REQUESTS, HTTP_THREADS))
            })
            .collect();
        let udp: Vec<_> = Fam::BOTH
            .iter()
            .map(|f| {
                let client = &client;
                sc.spawn(move || traffic::udp_queries(client, f.vip(), UDP_QUERIES))
            })
            .collect();
        (
            http.into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>(),
            udp.into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>(),
        )
    });
    let load_end = Instant::now();
    let load_time = load_end - started;

    // The streams were open during the whole run and are still flowing.
    thread::sleep(Duration::from_millis(300));
    let logs = streams.map(|s| {
        let log = s.log();
        assert!(
            log.end.is_none(),
            "stream ended during the load: {:?}",
            log.end
        );
        let last = log.lines.last().unwrap().0;
        assert!(
            last > load_end,
            "the stream made no progress after the load ended"
        );
        let log = s.stop();
        assert_eq!(log.end.as_ref().map(|e| &e.1), Some(&StreamEnd::Stopped));
        log
    });

    for (i, fam) in Fam::BOTH.into_iter().enumerate() {
        let log = &logs[i];
        log.check_sequence()
            .unwrap_or_else(|e| panic!("{mode} {fam} stream: {e}"));
        assert!(
            log.lines[0].0 < started,
            "{mode} {fam}: the stream was not open before the load"
        );
        assert!(
            log.max_gap() < Duration::from_secs(1),
            "{mode} {fam}: the stream stalled for {:?} during the load",
            log.max_gap()
        );
        let stream_server = Answer {
            server: log.server().unwrap().to_owned(),
            port: 0,
        };

        let failed: Vec<&String> = http[i].iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(
            failed.is_empty(),
            "{mode} {fam}: {} of {HTTP_REQUESTS} HTTP requests failed: {failed:?}",
            failed.len()
        );
        let answers: Vec<&Answer> = http[i].iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(answers.len(), HTTP_REQUESTS);
        let tcp = traffic::tally(answers.into_iter().chain([&stream_server]));
        let tcp_want = expected(HTTP_REQUESTS as u64 + 1, weights);
        assert_eq!(
            tcp, tcp_want,
            "{mode} {fam}: TCP answers per real server (rs1/rs2/rs3) vs {scheduler} {weights:?}"
        );
        let tcp_rvsd = sub(lab.dest_conns(fam.tcp(), fam), tcp_before[i]);
        assert_eq!(
            tcp_rvsd, tcp,
            "{mode} {fam}: rvsd's per-real-server connection counters disagree with the answers"
        );

        let udp_failed: Vec<&String> = udp[i].iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(
            udp_failed.is_empty(),
            "{mode} {fam}: UDP queries failed: {udp_failed:?}"
        );
        let retried = udp[i]
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|(_, t)| *t > 1))
            .count();
        let udp_answers: Vec<&Answer> = udp[i]
            .iter()
            .filter_map(|r| r.as_ref().ok().map(|(a, _)| a))
            .collect();
        let udp_tally = traffic::tally(udp_answers);
        let udp_want = expected(u64::from(UDP_QUERIES), weights);
        assert_eq!(
            udp_tally, udp_want,
            "{mode} {fam}: UDP answers per real server vs {scheduler} {weights:?}"
        );
        let udp_rvsd = sub(lab.dest_conns(fam.udp(), fam), udp_before[i]);
        if udp_rvsd != udp_tally {
            // Which datagrams rvsd sent where, against who answered them.
            let conns = lab.conns();
            let wrong: Vec<String> = udp[i]
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .filter_map(|(a, tries)| {
                    let e = conns
                        .iter()
                        .find(|c| c.protocol == 17 && c.cport == a.port && c.vaddr == fam.vip());
                    let rs = e.map(|e| (0..3).find(|&k| lab.rip(fam, k) == e.daddr));
                    (rs != Some(Some(lab.rs_index(&a.server)))).then(|| {
                        format!(
                            "port {} answered by {} after {tries} tries, entry {e:?}",
                            a.port, a.server
                        )
                    })
                })
                .collect();
            eprintln!("{mode} {fam}: UDP datagrams whose entry names another server: {wrong:#?}");
        }
        assert_eq!(
            udp_rvsd, udp_tally,
            "{mode} {fam}: rvsd's UDP connection counters disagree with the answers"
        );

        let stats = lab.service(fam.tcp()).stats;
        match mode {
            LabMode::Nat => assert!(
                stats.outpkts > out_before[i],
                "{mode} {fam}: NAT replies must pass the director (outpkts {} → {})",
                out_before[i],
                stats.outpkts
            ),
            LabMode::Dr | LabMode::Tun => assert_eq!(
                stats.outpkts, 0,
                "{mode} {fam}: replies must bypass the director"
            ),
        }
        eprintln!(
            "[{mode}] {fam}: {} HTTP + 1 stream → {tcp:?} (rvsd {tcp_rvsd:?}), {UDP_QUERIES} UDP → \
             {udp_tally:?} ({retried} retried), stream {} lines max gap {:?}, load {:.1}s, \
             service in/out pkts {}/{}",
            HTTP_REQUESTS,
            log.lines.len(),
            log.max_gap(),
            load_time.as_secs_f64(),
            stats.inpkts,
            stats.outpkts
        );
    }
}
