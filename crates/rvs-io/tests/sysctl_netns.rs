//! sysctl values and network namespace switching.

use rvs_io::{IoError, netns, sysctl};

use crate::util::{Netns, skip_unless_root};

#[test]
fn sysctl_set_returns_old_value_and_stays_in_its_namespace() {
    if skip_unless_root("sysctl_netns") {
        return;
    }
    let ns = Netns::new("sys");
    let host_id = netns::current_id().unwrap();
    let host_forward = sysctl::get("net.ipv4.conf.lo.forwarding").unwrap();

    let inner_id = ns.run(|| {
        assert_ne!(netns::current_id().unwrap(), host_id);
        let key = "net.ipv4.conf.lo.forwarding";
        let old = sysctl::get(key).unwrap();
        let new = if old == "1" { "0" } else { "1" };
        assert_eq!(sysctl::set(key, new).unwrap(), old);
        assert_eq!(sysctl::get(key).unwrap(), new);
        assert_eq!(sysctl::set(key, &old).unwrap(), new);
        // A slash path reaches the same file.
        assert_eq!(sysctl::get("net/ipv4/conf/lo/forwarding").unwrap(), old);
        sysctl::set("net.ipv4.conf.lo.arp_ignore", "1").unwrap();
        netns::current_id().unwrap()
    });
    // Back in our own namespace; the namespaced value never changed here.
    assert_eq!(netns::current_id().unwrap(), host_id);
    assert_eq!(
        sysctl::get("net.ipv4.conf.lo.forwarding").unwrap(),
        host_forward
    );

    // A thread spawned into the namespace lives there.
    let id = netns::spawn_in(&ns.name, || netns::current_id().unwrap())
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(id, inner_id);
    let arp_ignore = netns::spawn_in(&ns.name, || {
        sysctl::get("net.ipv4.conf.lo.arp_ignore").unwrap()
    });
    assert_eq!(arp_ignore.join().unwrap().unwrap(), "1");

    assert!(matches!(
        netns::enter("rvsio-no-such-ns"),
        Err(IoError::Netns { .. })
    ));
    assert!(matches!(
        sysctl::set("net.ipv4.no_such_knob", "1"),
        Err(IoError::Sysctl { .. })
    ));
}
