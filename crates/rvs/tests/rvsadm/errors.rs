//! One test per ipvsadm error message: exact stderr, empty stdout, exit code, and no request
//! reaching the daemon for validation failures.

use crate::backend::{new_state, run, run_argv};

/// Asserts that `line` fails with exactly `stderr` and `code`, sending nothing to rvsd.
fn check(line: &str, stderr: &str, code: i32) {
    let st = new_state();
    let o = run(&st, line);
    assert_eq!(
        (o.code, o.stderr.as_str(), o.stdout.as_str()),
        (code, stderr, ""),
        "rvsadm {line}"
    );
    assert_eq!(
        st.borrow().connects,
        0,
        "rvsadm {line} must fail before contacting rvsd"
    );
}

macro_rules! error_case {
    ($name:ident, $line:expr, $stderr:expr, $code:expr) => {
        #[test]
        fn $name() {
            check($line, $stderr, $code);
        }
    };
}

// --- §1.1 popt and command placement ---
error_case!(
    second_command_is_invalid_option,
    "-A -L",
    "invalid option `-L'\n",
    2
);
error_case!(
    second_command_names_its_argument,
    "-L --start-daemon master",
    "invalid option `master'\n",
    2
);
error_case!(
    second_help_is_invalid_option,
    "-L -h",
    "invalid option `-h'\n",
    2
);
error_case!(
    no_command_word,
    "foo",
    "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n",
    255
);
error_case!(
    no_command_option,
    "-X",
    "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n",
    255
);
error_case!(
    unknown_first_long,
    "--list=x",
    "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n",
    255
);
error_case!(missing_argument, "-A -t", "-t: missing argument\n", 255);
error_case!(
    missing_argument_bundled,
    "-At",
    "-At: missing argument\n",
    255
);
error_case!(
    unknown_option,
    "-A -t 1.2.3.4:80 --bogus",
    "--bogus: unknown option\n",
    255
);
error_case!(unknown_short_in_bundle, "-Lq", "-Lq: unknown option\n", 255);
error_case!(
    unwanted_argument,
    "-Ln=3",
    "-Ln=3: option does not take an argument\n",
    255
);
error_case!(
    negative_number_is_an_option,
    "--set -1 0 0",
    "-1: unknown option\n",
    255
);
error_case!(
    leftover_before_command,
    "foo -L",
    "unexpected argument foo\n",
    2
);
error_case!(
    leftover_after_double_dash,
    "-L -- -n",
    "unexpected argument -n\n",
    2
);
error_case!(
    multiple_numeric,
    "-L -n -n",
    "multiple 'numeric' options specified\n",
    2
);
error_case!(
    multiple_forward,
    "-a -t 10.0.0.1:80 -r 192.168.1.1 -m -g",
    "multiple 'forwarding-method' options specified\n",
    2
);
error_case!(
    multiple_service,
    "-A -t 10.0.0.1:80 -u 10.0.0.1:53",
    "multiple 'service-address' options specified\n",
    2
);
error_case!(
    multiple_persistent,
    "-A -t 1.1.1.1:80 -p -p",
    "multiple 'persistent' options specified\n",
    2
);

// --- §1.3 option values ---
error_case!(
    bad_service_name,
    "-A -t 10.0.0.1:foo",
    "illegal virtual server address[:port] specified\n",
    2
);
error_case!(
    bad_service_port,
    "-A -t 10.0.0.1:70000",
    "illegal virtual server address[:port] specified\n",
    2
);
error_case!(
    bad_service_addr,
    "-A -t 300.0.0.1:80",
    "illegal virtual server address[:port] specified\n",
    2
);
error_case!(
    all_digit_service,
    "-A -t 80",
    "illegal virtual server address[:port] specified\n",
    2
);
error_case!(
    empty_port,
    "-A -t 10.0.0.1:",
    "illegal virtual server address[:port] specified\n",
    2
);
error_case!(
    bracket_without_port,
    "-A -t [2001:db8::1]",
    "illegal virtual server address[:port] specified\n",
    2
);
error_case!(
    udp_name_is_per_protocol,
    "-A -u 10.0.0.1:http-alt",
    "illegal virtual server address[:port] specified\n",
    2
);
error_case!(
    bad_real_server,
    "-a -t 10.0.0.1:80 -r 1.2.3.4:x",
    "illegal real server address[:port] specified\n",
    2
);
error_case!(
    real_server_name_needs_protocol,
    "-a -r 1.2.3.4:http -t 10.0.0.1:80",
    "illegal real server address[:port] specified\n",
    2
);
error_case!(
    fwmark_zero,
    "-A -f 0",
    "invalid fwmark value `0' specified\n",
    2
);
error_case!(
    fwmark_too_big,
    "-A -f 4294967296",
    "invalid fwmark value `4294967296' specified\n",
    2
);
error_case!(
    fwmark_negative,
    "-A -f -5",
    "invalid fwmark value `-5' specified\n",
    2
);
error_case!(ipv6_before_fwmark, "-A -6 -f 1", "-6 used before -f\n\n", 2);
error_case!(
    ipv6_netmask,
    "-A -t [2001:db8::1]:80 -p -M 129",
    "illegal ipv6 netmask specified\n",
    2
);
error_case!(
    ipv4_netmask,
    "-A -t 10.0.0.1:80 -p -M 255.255.255.256",
    "illegal virtual server persistent mask specified\n",
    2
);
error_case!(
    persistent_timeout,
    "-A -t 1.1.1.1:80 -p 2678401",
    "invalid timeout value `2678401' specified\n",
    2
);
error_case!(
    persistent_timeout_zero,
    "-A -t 1.1.1.1:80 -p 0",
    "invalid timeout value `0' specified\n",
    2
);
error_case!(
    persistent_timeout_bundled,
    "-A -t 1.1.1.1:80 -pw",
    "invalid timeout value `w' specified\n",
    2
);
error_case!(
    weight_too_big,
    "-a -t 10.0.0.1:80 -r 192.168.1.1 -w 65536",
    "illegal weight specified\n",
    2
);
error_case!(
    weight_negative,
    "-a -t 10.0.0.1:80 -r 192.168.1.1 -w -1",
    "illegal weight specified\n",
    2
);
error_case!(
    u_threshold,
    "-a -t 10.0.0.1:80 -r 192.168.1.1 -x 2147483648",
    "illegal u_threshold specified\n",
    2
);
error_case!(
    l_threshold,
    "-a -t 10.0.0.1:80 -r 192.168.1.1 -y x",
    "illegal l_threshold specified\n",
    2
);
error_case!(
    tun_type,
    "-a -t 10.0.0.1:80 -r 1.1.1.1 -i --tun-type vxlan",
    "illegal tunnel type specified\n",
    2
);
error_case!(
    tun_port,
    "-a -t 10.0.0.1:80 -r 1.1.1.1 -i --tun-port 0",
    "illegal tunnel port specified\n",
    2
);
error_case!(
    syncid,
    "--start-daemon master --syncid 256",
    "illegal syncid specified\n",
    2
);
error_case!(
    sync_maxlen,
    "--start-daemon master --sync-maxlen 65508",
    "illegal sync-maxlen specified\n",
    2
);
error_case!(
    mcast_port,
    "--start-daemon master --mcast-port 0",
    "illegal mcast-port specified\n",
    2
);
error_case!(
    mcast_ttl,
    "--start-daemon master --mcast-ttl 256",
    "illegal mcast-ttl specified\n",
    2
);
error_case!(
    mcast_group_v4,
    "--start-daemon backup --mcast-group 10.0.0.1",
    "invalid IPv4 mcast-group `10.0.0.1'\n",
    2
);
error_case!(
    mcast_group_v6,
    "--start-daemon backup --mcast-group 2001:db8::1",
    "invalid IPv6 mcast-group `2001:db8::1'\n",
    2
);
error_case!(
    start_daemon_role,
    "--start-daemon slave",
    "illegal start-daemon parameter specified\n",
    2
);
error_case!(
    stop_daemon_role,
    "--stop-daemon slave",
    "illegal start_daemon specified\n",
    2
);
error_case!(
    sched_flag_incompatible,
    "-A -t 10.0.0.1:80 -b sh-port",
    "incompatible scheduler flag `sh-port'\n",
    2
);
error_case!(
    sched_flag_invalid,
    "-A -t 10.0.0.1:80 -s rr -b foo",
    "invalid scheduler flag `foo'\n",
    2
);
error_case!(
    sched_flag_parsed_before_table,
    "-L -b foo",
    "invalid scheduler flag `foo'\n",
    2
);
error_case!(
    sched_flag_only_commas,
    "-A -t 10.0.0.1:80 -b ,",
    "invalid scheduler flag `,'\n",
    2
);

// --- --set ---
error_case!(
    set_two_values,
    "--set 1 2",
    "--set option requires 3 timeout values\n",
    2
);
error_case!(
    set_four_values,
    "--set 10 20 30 40",
    "unexpected argument 40\n",
    2
);
error_case!(
    set_too_big,
    "--set 2678401 0 0",
    "invalid timeout value `2678401' specified\n",
    2
);

// --- §1.4 command × option table ---
error_case!(
    missing_service,
    "-A",
    "You need to supply the 'service-address' option for the 'add-service' command\n",
    2
);
error_case!(
    missing_real_server,
    "-a -t 10.0.0.1:80",
    "You need to supply the 'real-server' option for the 'add-server' command\n",
    2
);
error_case!(
    illegal_scheduler,
    "-D -t 10.0.0.1:80 -s rr",
    "Illegal 'scheduler' option with the 'delete-service' command\n",
    2
);
error_case!(
    illegal_numeric_zero,
    "-Z -n",
    "Illegal 'numeric' option with the 'zero' command\n",
    2
);
error_case!(
    illegal_numeric_restore,
    "-R -n",
    "Illegal 'numeric' option with the 'restore' command\n",
    2
);
error_case!(
    illegal_first_in_bit_order,
    "-A -t 1.1.1.1:80 -w 3 -n",
    "Illegal 'numeric' option with the 'add-service' command\n",
    2
);
error_case!(
    illegal_nosort_save,
    "-S --nosort",
    "Illegal 'nosort' option with the 'save' command\n",
    2
);
error_case!(
    illegal_json_add,
    "-A --json -t 1.1.1.1:1",
    "Illegal 'json' option with the 'add-service' command\n",
    2
);
error_case!(
    exclusive_later_named_first,
    "-L -c --timeout",
    "The option 'timeout' conflicts with the 'connection' option in the 'list' command\n",
    2
);
error_case!(
    exclusive_service_daemon,
    "-L --daemon -t 10.0.0.1:80",
    "The option 'daemon' conflicts with the 'service-address' option in the 'list' command\n",
    2
);
error_case!(
    list_conflict_stats,
    "-L -c --stats",
    "options conflicts in the list command\n",
    2
);
error_case!(
    list_conflict_persistent_conn,
    "-L --timeout --persistent-conn",
    "options conflicts in the list command\n",
    2
);

// --- §1.6 semantic checks ---
error_case!(
    zero_port,
    "-A -t 10.0.0.1",
    "Zero port specified for non-persistent service\n",
    2
);
error_case!(
    ops_not_udp,
    "-A -t 10.0.0.1:80 -o",
    "One-Packet Scheduling is only for UDP virtual services\n",
    2
);
error_case!(
    different_family,
    "-a -t 10.0.0.1:80 -r [2001:db8::1]:80 -m",
    "Different address family is allowed only for tunneling servers\n",
    2
);
error_case!(
    tunnel_options_need_tunnel,
    "-a -t 10.0.0.1:80 -r 1.1.1.1 -m --tun-type gre",
    "Tunnel options conflict with forward method\n",
    2
);
error_case!(
    gue_needs_port,
    "-a -t 10.0.0.1:80 -r 1.1.1.1 -i --tun-type gue",
    "You need to supply the 'tun-port' option for the 'gue' tunnel type\n",
    2
);
error_case!(
    gre_no_remcsum,
    "-a -t 10.0.0.1:80 -r 1.1.1.1 -i --tun-type gre --tun-remcsum",
    "Illegal 'tun-remcsum' option with the 'gre' tunnel type\n",
    2
);
error_case!(
    ipip_no_port,
    "-a -t 10.0.0.1:80 -r 1.1.1.1 -i --tun-port 5",
    "Illegal 'tun-port' option with the 'ipip' tunnel type\n",
    2
);
error_case!(
    gue_csum_conflict,
    "-a -t 10.0.0.1:80 -r 1.1.1.1 -i --tun-type gue --tun-port 6080 --tun-csum --tun-remcsum",
    "The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type\n",
    2
);

#[test]
fn restore_inside_restore_is_a_usage_error() {
    let st = new_state();
    let o = run_argv(&st, &["-R"], "-R\n");
    assert_eq!(o.code, 255);
    assert_eq!(
        o.stderr,
        "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n"
    );
}

#[test]
fn program_name_is_argv0() {
    let st = new_state();
    let argv = [std::ffi::OsString::from("/usr/sbin/rvsadm"), "bogus".into()];
    let mut connect = || -> Result<Box<dyn rvs::rvsadm::Backend>, rvs::rvsadm::BackendError> {
        Ok(Box::new(crate::backend::MemBackend(st.clone())))
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = rvs::rvsadm::run_with_resolver(
        &argv,
        &mut connect,
        &crate::backend::FakeResolver::new(),
        &mut &b""[..],
        &mut out,
        &mut err,
    );
    assert_eq!(code, 255);
    assert_eq!(
        String::from_utf8(err).unwrap(),
        "Try `/usr/sbin/rvsadm -h' or '/usr/sbin/rvsadm --help' for more information.\n"
    );
}

/// `Invalid operation` (EINVAL), as ipvsadm prints it.
const EINVAL: &str =
    "Invalid operation.  Possibly wrong module version, address not unicast, ...\n";

/// Checklist 22: daemon errors print ipvsadm's message and exit 255. The errors come from the
/// engine, in IPVS's order of checks.
#[test]
fn daemon_errors_exit_255() {
    let st = new_state();
    crate::backend::ok(&st, "-A -t 10.0.0.1:80");
    crate::backend::ok(&st, "-A -t [2001:db8::1]:80");
    let cases = [
        ("-A -t 10.0.0.1:80", "Service already exists\n"),
        ("-A -t 10.0.0.1:80 -s bogus", "Service already exists\n"),
        (
            "-A -t 10.0.0.2:80 -s bogus",
            "Scheduler or persistence engine not found\n",
        ),
        (
            "-E -t 10.0.0.1:80 -s bogus",
            "Scheduler or persistence engine not found\n",
        ),
        // rvs has no persistence engine yet: IPVS without ip_vs_pe_sip answers the same.
        (
            "-A -t 10.0.0.2:80 -p --pe sip",
            "Scheduler or persistence engine not found\n",
        ),
        // IPVS finds the service before it looks the persistence engine up.
        ("-A -t 10.0.0.1:80 -p --pe sip", "Service already exists\n"),
        ("-E -t 10.0.0.9:80 -p --pe sip", "No such service\n"),
        ("-E -t 10.0.0.9:80", "No such service\n"),
        ("-E -t 10.0.0.9:80 -s bogus", "No such service\n"),
        ("-D -t 10.0.0.9:80", "No such service\n"),
        ("-Z -t 10.0.0.9:80", "No such service\n"),
        ("-a -t 10.0.0.9:80 -r 192.168.1.1", "Service not defined\n"),
        ("-e -t 10.0.0.9:80 -r 192.168.1.1", "Service not defined\n"),
        ("-d -t 10.0.0.9:80 -r 192.168.1.1", "Service not defined\n"),
        ("-a -f 7 -r 192.168.1.1", "Service not defined\n"),
        ("-e -t 10.0.0.1:80 -r 192.168.1.1", "No such destination\n"),
        ("-d -t 10.0.0.1:80 -r 192.168.1.1", "No such destination\n"),
        (
            "-a -t 10.0.0.1:80 -r 192.168.1.1 -y 5",
            "Numerical result out of range\n",
        ),
        (
            "-a -t 10.0.0.1:80 -r 192.168.1.1 -x 5 -y 6",
            "Numerical result out of range\n",
        ),
        // Real servers must be unicast addresses (checked when one is created).
        ("-a -t 10.0.0.1:80 -r 224.0.0.1 -m", EINVAL),
        ("-a -t 10.0.0.1:80 -r 255.255.255.255 -m", EINVAL),
        ("-a -t 10.0.0.1:80 -r 0.0.0.0 -m", EINVAL),
        ("-a -t [2001:db8::1]:80 -r [ff02::1]:80 -m", EINVAL),
        ("-a -t [2001:db8::1]:80 -r [fe80::1]:80 -m", EINVAL),
        ("-a -t [2001:db8::1]:80 -r [::]:80 -m", EINVAL),
        // Editing looks the real server up first: one that cannot exist is not found.
        ("-e -t 10.0.0.1:80 -r 224.0.0.1 -m", "No such destination\n"),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|&(line, msg)| {
            let o = run(&st, line);
            ((o.code, o.stderr.as_str(), o.stdout.as_str()) != (255, msg, ""))
                .then(|| format!("rvsadm {line}: {o:?}, want {msg:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // None of the failures changed the table.
    assert_eq!(
        run(&st, "-S -n").stdout,
        "-A -t 10.0.0.1:80 -s wlc\n-A -t [2001:db8::1]:80 -s wlc\n"
    );
    crate::backend::ok(&st, "-a -t 10.0.0.1:80 -r 192.168.1.1");
    let o = run(&st, "-a -t 10.0.0.1:80 -r 192.168.1.1");
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (255, "Destination already exists\n")
    );
    let o = run(&st, "-a -t 10.0.0.1:80 -r 192.168.1.1 -m -w 9");
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (255, "Destination already exists\n")
    );
    // A failed edit (thresholds out of range) leaves the real server as it was.
    let o = run(&st, "-e -t 10.0.0.1:80 -r 192.168.1.1 -m -w 4 -x 1 -y 2");
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (255, "Numerical result out of range\n")
    );
    assert_eq!(
        run(&st, "-S -n").stdout,
        "-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 192.168.1.1:80 -g -w 1\n-A -t [2001:db8::1]:80 -s wlc\n"
    );
}

/// Checklist 23.
#[test]
fn list_missing_service_exits_1() {
    let st = new_state();
    let o = run(&st, "-L -t 10.0.0.9:80 -n");
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (1, "", "No such service\n")
    );
}

#[test]
fn sync_daemon_not_supported_is_reported() {
    let st = new_state();
    for line in ["--start-daemon master", "--stop-daemon backup"] {
        let o = run(&st, line);
        assert_eq!(o.code, 255, "{line}");
        assert_eq!(
            o.stderr,
            "connection synchronisation is not implemented in this rvs version\n"
        );
    }
    assert_eq!(run(&st, "-L --daemon").stdout, "");
}
