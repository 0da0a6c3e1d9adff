//! Name resolution with the system resolver, using only entries every Debian machine has
//! (`localhost` in /etc/hosts, `http`/`https`/`domain` in /etc/services): no network needed.

use std::net::{IpAddr, Ipv4Addr};

use rvs::rvsadm::names::{Services, addrport_to_anyname, parse_port, parse_service};
use rvs::rvsadm::{Resolver, SystemResolver};

#[test]
fn system_services_file() {
    let r = SystemResolver::new();
    assert_eq!(r.service_to_port("http", "tcp"), Some(80));
    assert_eq!(r.service_to_port("www", "tcp"), Some(80));
    assert_eq!(r.service_to_port("domain", "udp"), Some(53));
    assert_eq!(r.port_to_service(443, "tcp").as_deref(), Some("https"));
    assert_eq!(r.service_to_port("no-such-service-name", "tcp"), None);
}

#[test]
fn localhost_both_ways() {
    let r = SystemResolver::new();
    assert_eq!(r.host_to_ipv4("localhost"), Some(Ipv4Addr::LOCALHOST));
    assert_eq!(
        r.addr_to_host(IpAddr::V4(Ipv4Addr::LOCALHOST)).as_deref(),
        Some("localhost")
    );
    let p = parse_service("localhost:http", 6, &r).unwrap();
    assert_eq!(
        (p.addr, p.port),
        (IpAddr::V4(Ipv4Addr::LOCALHOST), Some(80))
    );
    assert_eq!(
        addrport_to_anyname(&p.addr, 443, 6, false, &r),
        "localhost:https"
    );
    assert_eq!(
        addrport_to_anyname(&p.addr, 443, 6, true, &r),
        "127.0.0.1:443"
    );
    // Protocol 0 (a persistence template) never gets a service name.
    assert_eq!(
        addrport_to_anyname(&p.addr, 80, 0, false, &r),
        "localhost:80"
    );
}

#[test]
fn ports_are_per_protocol() {
    let r = SystemResolver::with_services_file("/nonexistent/services");
    assert_eq!(parse_port("8080", 17, &r), Some(8080));
    assert_eq!(parse_port("http", 6, &r), None);
    let s = Services::parse("foo 7/tcp\n");
    assert_eq!(s.port_of("foo", "udp"), None);
}

#[test]
fn system_resolver_in_a_listing() {
    // `rvsadm -L` without -n through the system resolver.
    let st = crate::backend::new_state();
    crate::backend::ok(&st, "-A -t 127.0.0.1:443");
    crate::backend::ok(&st, "-a -t 127.0.0.1:443 -r 127.0.0.1:80 -m");
    let argv: Vec<std::ffi::OsString> = ["ipvsadm", "-S"].iter().map(Into::into).collect();
    let mut connect = || -> Result<Box<dyn rvs::rvsadm::Backend>, rvs::rvsadm::BackendError> {
        Ok(Box::new(crate::backend::MemBackend(st.clone())))
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = rvs::rvsadm::run(&argv, &mut connect, &mut &b""[..], &mut out, &mut err);
    assert_eq!(code, 0);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "-A -t localhost:https -s wlc\n-a -t localhost:https -r localhost:http -m -w 1\n"
    );
}
