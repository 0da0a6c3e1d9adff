//! Property: any table rvsadm can express survives `-S -n` | `-R` into an empty rvsd unchanged,
//! and saving the restored table prints the same text. Both daemons are the real engine: the
//! generated table is loaded into one with control requests, saved with rvsadm, restored with
//! rvsadm into a fresh one, and the two engines' listings are compared.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use rvs_api::{
    DestEntry, DestSpec, Family, ForwardMethod, Netmask, Protocol, Rates, Request, Response,
    ServiceEntry, ServiceKey, ServiceSpec, Stats, TunnelType, svc_flags,
};

use crate::backend::{Shared, new_state, run, run_argv};

const SCHEDULERS: [&str; 15] = [
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
    "none",
];

/// ipvsadm sorts with wrapping `int` differences of 32-bit words, which is not a total order
/// once two values are 2^31 or more apart. With `no_wrap`, every 32-bit word (and mark) stays
/// below 2^31 so the listing order is a true sort and `-S` output can be compared byte for byte.
fn word_mask(no_wrap: bool) -> u32 {
    if no_wrap { 0x7fff_ffff } else { u32::MAX }
}

fn v4(no_wrap: bool) -> impl Strategy<Value = IpAddr> {
    any::<u32>().prop_map(move |a| IpAddr::V4(Ipv4Addr::from(a & word_mask(no_wrap))))
}

fn v6(no_wrap: bool) -> impl Strategy<Value = IpAddr> {
    let m = u128::from(word_mask(no_wrap));
    let mask = m | (m << 32) | (m << 64) | (m << 96);
    // Mostly 2001:db8::/32 with a few small interface ids, plus random addresses.
    prop_oneof![
        (0u16..4, 0u16..3)
            .prop_map(|(a, b)| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, a, 0, 0, 0, b))),
        any::<u128>().prop_map(move |a| IpAddr::V6(Ipv6Addr::from(a & mask))),
    ]
}

fn key(no_wrap: bool) -> impl Strategy<Value = ServiceKey> {
    let proto = prop_oneof![
        Just(Protocol::Tcp),
        Just(Protocol::Udp),
        Just(Protocol::Sctp)
    ];
    prop_oneof![
        (proto.clone(), v4(no_wrap), any::<u16>()).prop_map(|(protocol, addr, port)| {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            }
        }),
        (proto, v6(no_wrap), any::<u16>()).prop_map(|(protocol, addr, port)| ServiceKey::Addr {
            protocol,
            addr,
            port
        }),
        (
            1u32..=word_mask(no_wrap),
            prop_oneof![Just(Family::Inet), Just(Family::Inet6)]
        )
            .prop_map(|(mark, family)| ServiceKey::Fwmark { mark, family }),
    ]
}

/// A service spec ipvsadm can express for this key.
fn spec(key: ServiceKey) -> impl Strategy<Value = ServiceSpec> {
    let fam = key.family();
    (
        prop::sample::select(SCHEDULERS.to_vec()),
        prop::option::of(1u32..=2_678_400),
        any::<u32>(),
        1u8..=128,
        any::<bool>(),
        0u32..8,
    )
        .prop_map(move |(sched, persistent, mask4, mask6, ops, sched_bits)| {
            let mut s = ServiceSpec::new(key);
            s.scheduler = sched.to_owned();
            if let Some(t) = persistent {
                s.flags |= svc_flags::PERSISTENT;
                s.timeout = t;
                s.netmask = match fam {
                    Family::Inet => Netmask::V4(Ipv4Addr::from(mask4)),
                    Family::Inet6 => Netmask::V6(mask6),
                };
            } else if key.port() == 0 && matches!(key, ServiceKey::Addr { .. }) {
                s.flags |= svc_flags::PERSISTENT;
                s.timeout = 360;
            }
            let udp_or_fwmark = matches!(
                key,
                ServiceKey::Fwmark { .. }
                    | ServiceKey::Addr {
                        protocol: Protocol::Udp,
                        ..
                    }
            );
            if ops && udp_or_fwmark {
                s.flags |= svc_flags::ONEPACKET;
            }
            // sh/mh have no name for SCHED3, so it cannot be written with -b.
            let allowed = if matches!(sched, "sh" | "mh") {
                0x18
            } else {
                0x38
            };
            s.flags |= (sched_bits << 3) & allowed;
            s
        })
}

/// Whether IPVS accepts `addr` as a real server: unicast (`inet_addr_type` LOCAL or UNICAST,
/// `ipv6_addr_type` UNICAST and not link-local). 0.0.0.0/8 and IPv4-mapped IPv6 addresses are
/// left out too: IPVS's answer for them depends on the kernel's address classification.
fn unicast(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => !(a.is_multicast() || a.is_broadcast() || a.octets()[0] == 0),
        IpAddr::V6(a) => {
            !(a.is_multicast()
                || a.is_unspecified()
                || a.is_unicast_link_local()
                || a.to_ipv4_mapped().is_some())
        }
    }
}

fn dest(key: ServiceKey, no_wrap: bool) -> impl Strategy<Value = DestSpec> {
    let fam = key.family();
    (
        prop_oneof![v4(no_wrap), v6(no_wrap)].prop_filter("real servers are unicast", unicast),
        any::<u16>(),
        prop_oneof![
            Just(ForwardMethod::Masq),
            Just(ForwardMethod::Route),
            Just(ForwardMethod::Tunnel)
        ],
        0u32..=65535,
        prop_oneof![
            Just(TunnelType::Ipip),
            Just(TunnelType::Gue),
            Just(TunnelType::Gre)
        ],
        1u16..,
        0u16..3,
    )
        .prop_map(
            move |(addr, port, fwd, weight, tun_type, tun_port, tun_flags)| {
                let same_family = Family::of(&addr) == fam;
                let fwd = if same_family {
                    fwd
                } else {
                    ForwardMethod::Tunnel
                };
                let port = match (key, fwd) {
                    (
                        ServiceKey::Addr { port: svc_port, .. },
                        ForwardMethod::Route | ForwardMethod::Tunnel,
                    ) => svc_port,
                    _ => port,
                };
                let mut d = DestSpec::new(addr, port);
                d.fwd_method = fwd;
                d.weight = weight;
                if fwd == ForwardMethod::Tunnel {
                    d.tun_type = tun_type;
                    match tun_type {
                        TunnelType::Ipip => {}
                        TunnelType::Gue => {
                            d.tun_port = tun_port;
                            d.tun_flags = tun_flags;
                        }
                        TunnelType::Gre => d.tun_flags = tun_flags.min(1),
                    }
                }
                d
            },
        )
}

fn service(no_wrap: bool) -> impl Strategy<Value = ServiceEntry> {
    key(no_wrap).prop_flat_map(move |k| {
        (spec(k), prop::collection::vec(dest(k, no_wrap), 0..4)).prop_map(|(spec, dests)| {
            let mut seen = Vec::new();
            let dests = dests
                .into_iter()
                .filter(|d| {
                    let id = (d.addr, d.port);
                    let fresh = !seen.contains(&id);
                    seen.push(id);
                    fresh
                })
                .map(|spec| DestEntry {
                    spec,
                    activeconns: 0,
                    inactconns: 0,
                    persistconns: 0,
                    stats: Stats::default(),
                    rates: Rates::default(),
                })
                .collect();
            ServiceEntry {
                spec,
                stats: Stats::default(),
                rates: Rates::default(),
                dests,
            }
        })
    })
}

fn table(no_wrap: bool) -> impl Strategy<Value = Vec<ServiceEntry>> {
    prop::collection::vec(service(no_wrap), 0..6).prop_map(|mut v| {
        let mut seen = Vec::new();
        v.retain(|s| {
            let fresh = !seen.contains(&s.spec.key);
            seen.push(s.spec.key);
            fresh
        });
        v
    })
}

/// Services and their real servers in a canonical order, for comparison.
fn canonical(mut v: Vec<ServiceEntry>) -> Vec<ServiceEntry> {
    for s in &mut v {
        s.dests.sort_by_key(|d| (d.spec.addr, d.spec.port));
    }
    v.sort_by_key(|s| format!("{:?}", s.spec.key));
    v
}

/// An engine holding `services`, loaded with control requests (real servers in reverse so the
/// engine's newest-first order is the generated order).
fn load(services: &[ServiceEntry]) -> Shared {
    let st = new_state();
    for s in services {
        let r = st.borrow_mut().handle(Request::AddService {
            spec: s.spec.clone(),
        });
        assert_eq!(r, Response::Ok, "{:?}", s.spec);
        for d in s.dests.iter().rev() {
            let r = st.borrow_mut().handle(Request::AddDest {
                service: s.spec.key,
                dest: d.spec.clone(),
            });
            assert_eq!(r, Response::Ok, "{:?} {:?}", s.spec.key, d.spec);
        }
    }
    st
}

/// Saves `services` with `-S -n`, restores the text with `-R` into an empty engine, and returns
/// the saved text, the restored table and the text saved from the restored table.
fn round_trip(services: &[ServiceEntry]) -> (String, Vec<ServiceEntry>, String) {
    let src = load(services);
    assert_eq!(
        canonical(src.borrow_mut().services()),
        canonical(services.to_vec())
    );
    let saved = run(&src, "-S -n");
    assert_eq!(saved.code, 0);
    let dst = new_state();
    let restored = run_argv(&dst, &["-R"], &saved.stdout);
    assert_eq!(
        (restored.code, restored.stderr.as_str()),
        (0, ""),
        "input:\n{}",
        saved.stdout
    );
    let table = dst.borrow_mut().services();
    (saved.stdout, table, run(&dst, "-S -n").stdout)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Any table, marks and addresses over the whole range: the restored table is the same.
    #[test]
    fn save_then_restore_keeps_the_table(services in table(false)) {
        let (_, restored, _) = round_trip(&services);
        prop_assert_eq!(canonical(restored), canonical(services));
    }

    /// Tables whose listing order is a total order: the saved text is identical too.
    #[test]
    fn save_restore_save_is_identical(services in table(true)) {
        let (saved, restored, saved_again) = round_trip(&services);
        prop_assert_eq!(canonical(restored), canonical(services));
        prop_assert_eq!(saved_again, saved);
    }
}
