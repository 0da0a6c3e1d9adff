//! `-R` (checklist 25 and ipvs.md §1.9) and `-S | -R` round trips.

use crate::backend::{new_state, ok, run, run_argv};

fn restore(st: &crate::backend::Shared, input: &str) -> crate::backend::Out {
    run_argv(st, &["-R"], input)
}

#[test]
fn save_restore_round_trip() {
    let st = new_state();
    for line in [
        "-A -t 10.0.0.1:80 -s wlc",
        "-a -t 10.0.0.1:80 -r 192.168.1.1:80 -m",
        "-a -t 10.0.0.1:80 -r 192.168.1.2:8080 -m -w 3",
        "-A -t 10.0.0.1:443 -s sh -p 600 -M 255.255.255.0 -b sh-fallback,sh-port",
        "-a -t 10.0.0.1:443 -r 192.168.1.11 -i -w 3 --tun-type gue --tun-port 6080 --tun-csum",
        "-a -t 10.0.0.1:443 -r 192.168.1.12 -i --tun-type gre --tun-nocsum",
        "-a -t 10.0.0.1:443 -r [2001:db8::9]:443 -i",
        "-A -u 10.0.0.1:53 -s rr -o",
        "-A --sctp-service 10.0.0.2:9999 -s mh -b mh-fallback",
        "-A -t [2001:db8::80]:80 -p 300 -M 64",
        "-A -f 1 -s wrr -p",
        "-a -f 1 -r 192.168.2.1 -g -w 5",
        "-A -f 4000000000 -6",
    ] {
        ok(&st, line);
    }
    let saved = run(&st, "-S -n").stdout;
    // A fwmark above 2^31 is saved unsigned, so it restores (ipvsadm 1.31 printed it negative).
    assert!(saved.contains("-A -f 4000000000 -6 -s wlc\n"), "{saved}");
    let fresh = new_state();
    let o = restore(&fresh, &saved);
    assert_eq!((o.code, o.stderr.as_str(), o.stdout.as_str()), (0, "", ""));
    assert_eq!(run(&fresh, "-S -n").stdout, saved);
    assert_eq!(run(&fresh, "-L -n").stdout, run(&st, "-L -n").stdout);
}

#[test]
fn ipvsadm_words_are_dropped_and_blank_lines_skipped() {
    let st = new_state();
    let o = restore(
        &st,
        "ipvsadm -A -t 10.0.0.1:80\n\n   \n\tipvsadm -a -t 10.0.0.1:80 -r 192.168.1.1:80 -m ipvsadm\r\n",
    );
    assert_eq!((o.code, o.stderr.as_str()), (0, ""));
    assert_eq!(
        run(&st, "-S -n").stdout,
        "-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 192.168.1.1:80 -m -w 1\n"
    );
}

#[test]
fn comment_lines_are_accepted() {
    // rvsadm's additive divergence: ipvsadm 1.31 exits 255 on a `#` line.
    let st = new_state();
    let o = restore(
        &st,
        "# saved by rvsadm\n#-C\n-A -t 10.0.0.1:80\n  # indented\n",
    );
    assert_eq!((o.code, o.stderr.as_str()), (0, ""));
    assert_eq!(run(&st, "-S -n").stdout, "-A -t 10.0.0.1:80 -s wlc\n");
}

#[test]
fn trailing_comment_word_is_still_an_argument() {
    let st = new_state();
    let o = restore(&st, "-A -t 10.0.0.1:80 # web\n-A -t 10.0.0.2:80\n");
    assert_eq!((o.code, o.stderr.as_str()), (2, "unexpected argument #\n"));
    assert!(st.borrow_mut().services().is_empty());
}

#[test]
fn validation_error_aborts_the_restore() {
    let st = new_state();
    let o = restore(
        &st,
        "-A -t 10.0.0.1:80\n-A -t 300.0.0.1:80\n-A -t 10.0.0.2:80\n",
    );
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (2, "illegal virtual server address[:port] specified\n")
    );
    assert_eq!(run(&st, "-S -n").stdout, "-A -t 10.0.0.1:80 -s wlc\n");
}

#[test]
fn daemon_error_continues_and_last_line_decides() {
    let st = new_state();
    let o = restore(
        &st,
        "-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80\n-A -t 10.0.0.2:80\n",
    );
    assert_eq!((o.code, o.stderr.as_str()), (0, "Service already exists\n"));
    assert_eq!(st.borrow_mut().services().len(), 2);
    let o = restore(&st, "-A -t 10.0.0.3:80\n-A -t 10.0.0.1:80\n");
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (255, "Service already exists\n")
    );
}

#[test]
fn popt_error_continues() {
    let st = new_state();
    let o = restore(&st, "-A -t 10.0.0.1:80 --bogus\n-A -t 10.0.0.2:80\n");
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (0, "--bogus: unknown option\n")
    );
    assert_eq!(run(&st, "-S -n").stdout, "-A -t 10.0.0.2:80 -s wlc\n");
}

#[test]
fn usage_error_aborts() {
    let st = new_state();
    let o = restore(&st, "foo\n-A -t 10.0.0.2:80\n");
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (
            255,
            "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n"
        )
    );
    assert!(st.borrow_mut().services().is_empty());
}

#[test]
fn any_command_runs_inside_a_restore() {
    let st = new_state();
    let o = restore(&st, "-A -t 10.0.0.1:80\n-L -n\n-C\n-L -n --timeout\n");
    assert_eq!(o.code, 0);
    assert_eq!(
        o.stdout,
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  10.0.0.1:80 wlc\nTimeout (tcp tcpfin udp): 900 120 300\n"
    );
    assert!(st.borrow_mut().services().is_empty());
}

#[test]
fn restore_connects_once() {
    let st = new_state();
    let o = restore(
        &st,
        "-A -t 10.0.0.1:80\n-A -t 10.0.0.2:80\n-A -t 10.0.0.3:80\n",
    );
    assert_eq!(o.code, 0);
    assert_eq!(st.borrow().connects, 1);
}
