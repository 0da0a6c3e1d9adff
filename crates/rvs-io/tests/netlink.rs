//! The synchronous rtnetlink client against a real kernel, inside test namespaces.

use std::net::IpAddr;
use std::time::Duration;

use rvs_io::IoError;
use rvs_io::netlink::{NeighState, Netlink};

use crate::util::{Netns, ipaddr, skip_unless_root, veth, wait_for};

#[test]
fn links_addresses_routes_and_neighbours() {
    if skip_unless_root("netlink") {
        return;
    }
    let a = Netns::new("nla");
    let b = Netns::new("nlb");
    veth(
        &a,
        "n0",
        &["198.18.2.1/24", "2001:db8:2::1/64"],
        &b,
        "n1",
        &["198.18.2.2/24", "2001:db8:2::2/64"],
    );
    a.ip(&["route", "add", "198.19.0.0/16", "via", "198.18.2.2"]);
    let peer_mac = b.mac("n1");

    a.run(|| {
        let mut nl = Netlink::open().unwrap();

        // Links.
        let n0 = nl.link_by_name("n0").unwrap();
        assert!(n0.ifindex > 0 && n0.up && n0.mtu == 1500 && n0.mac.is_some());
        assert_eq!(n0.xdp, None);
        assert_eq!(nl.link_by_index(n0.ifindex).unwrap().name, "n0");
        assert!(matches!(
            nl.link_by_name("nope0"),
            Err(IoError::NoSuchInterface(_))
        ));
        let names: Vec<String> = nl.links().unwrap().into_iter().map(|l| l.name).collect();
        assert!(
            names.contains(&"lo".to_owned()) && names.contains(&"n0".to_owned()),
            "{names:?}"
        );
        let running = wait_for(Duration::from_secs(2), || {
            nl.link_by_name("n0").unwrap().running.then_some(())
        });
        assert!(running.is_some(), "carrier comes up once both ends are up");

        // Addresses: a DR real server's VIPs on lo.
        let lo = nl.link_by_name("lo").unwrap().ifindex;
        for (vip, plen) in [
            (ipaddr("198.18.2.100"), 32),
            (ipaddr("2001:db8:2::100"), 128),
        ] {
            assert!(nl.add_address(lo, vip, plen).unwrap());
            assert!(
                !nl.add_address(lo, vip, plen).unwrap(),
                "second add reports 'already there'"
            );
            let on_lo = nl.addresses(Some(lo)).unwrap();
            assert!(
                on_lo.iter().any(|x| x.addr == vip && x.prefix_len == plen),
                "{on_lo:?}"
            );
            assert!(nl.addresses(None).unwrap().iter().any(|x| x.addr == vip));
            // IPv6 installs the local route from a work queue, a moment after the ack.
            let local = wait_for(Duration::from_secs(1), || {
                nl.route_get(vip).unwrap().is_local().then_some(())
            });
            assert!(local.is_some(), "{:?}", nl.route_get(vip));
            assert!(nl.del_address(lo, vip, plen).unwrap());
            assert!(!nl.del_address(lo, vip, plen).unwrap());
            assert!(
                !nl.addresses(Some(lo))
                    .unwrap()
                    .iter()
                    .any(|x| x.addr == vip)
            );
        }
        assert!(nl.add_address(lo, ipaddr("198.18.2.100"), 33).is_err());

        // Routes.
        let r = nl.route_get(ipaddr("198.18.2.2")).unwrap();
        assert_eq!(
            (r.oif, r.gateway, r.prefsrc),
            (Some(n0.ifindex), None, Some(ipaddr("198.18.2.1")))
        );
        assert!(!r.is_local());
        let r = nl.route_get(ipaddr("198.19.7.7")).unwrap();
        assert_eq!(
            (r.oif, r.gateway),
            (Some(n0.ifindex), Some(ipaddr("198.18.2.2")))
        );
        let r = nl.route_get(ipaddr("2001:db8:2::2")).unwrap();
        assert_eq!(
            (r.oif, r.prefsrc),
            (Some(n0.ifindex), Some(ipaddr("2001:db8:2::1")))
        );
        let unreachable = nl.route_get(ipaddr("203.0.113.1")).unwrap_err();
        assert!(
            matches!(unreachable, IoError::Netlink { .. }),
            "{unreachable}"
        );

        // Neighbours: resolution on demand, for both families.
        for peer in [ipaddr("198.18.2.2"), ipaddr("2001:db8:2::2")] {
            assert!(
                nl.neighbour(n0.ifindex, peer)
                    .unwrap()
                    .is_none_or(|n| !n.state.is_valid())
            );
            nl.resolve_neighbour(n0.ifindex, peer).unwrap();
            let n = wait_for(Duration::from_secs(3), || {
                nl.neighbour(n0.ifindex, peer)
                    .unwrap()
                    .filter(|n| n.state.is_valid())
            })
            .unwrap_or_else(|| panic!("{peer} resolved"));
            assert_eq!(n.mac, Some(peer_mac));
        }
        // Static entries.
        let fake: IpAddr = ipaddr("198.18.2.50");
        nl.set_neighbour(n0.ifindex, fake, [2, 0, 0, 0, 0, 0x50], true)
            .unwrap();
        let n = nl.neighbour(n0.ifindex, fake).unwrap().unwrap();
        assert_eq!(
            (n.state, n.mac),
            (NeighState::PERMANENT, Some([2, 0, 0, 0, 0, 0x50]))
        );
        assert!(nl.neighbours().unwrap().iter().any(|x| x.ip == fake));
        assert!(nl.del_neighbour(n0.ifindex, fake).unwrap());
        assert!(!nl.del_neighbour(n0.ifindex, fake).unwrap());

        // Last, as taking a link down flushes its routes.
        nl.set_link_up(n0.ifindex, false).unwrap();
        assert!(!nl.link_by_name("n0").unwrap().up);
        nl.set_link_up(n0.ifindex, true).unwrap();
        assert!(nl.link_by_name("n0").unwrap().up);
    });
}
