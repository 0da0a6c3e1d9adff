//! The Unix control socket: a missing rvsd, a real round trip, and the binary itself.

use std::ffi::OsString;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::Command;

use rvs::rvsadm::{self, Backend, BackendError, UnixBackend};
use rvs_api::{Request, Response};

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rvsadm-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run_socket(path: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let argv: Vec<OsString> = std::iter::once("ipvsadm")
        .chain(args.iter().copied())
        .map(OsString::from)
        .collect();
    let mut connect =
        || -> Result<Box<dyn Backend>, BackendError> { Ok(Box::new(UnixBackend::connect(path)?)) };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = rvsadm::run(&argv, &mut connect, &mut &b""[..], &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn missing_daemon_is_one_clear_line_and_exit_2() {
    let d = temp_dir("missing");
    let sock = d.join("rvsd.sock");
    let (code, out, err) = run_socket(&sock, &["-L", "-n"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(
        err,
        format!(
            "Can't initialize ipvs: cannot connect to rvsd at {}: No such file or directory (is rvsd running?)\n",
            sock.display()
        )
    );
    // Validation failures and help do not need the daemon.
    assert_eq!(run_socket(&sock, &["-A"]).0, 2);
    assert_eq!(run_socket(&sock, &["-h"]).0, 0);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn round_trip_over_a_real_socket() {
    let d = temp_dir("socket");
    let sock = d.join("rvsd.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    // A server holding the engine in its own thread, one connection at a time.
    let server = std::thread::spawn(move || {
        let mut state = crate::backend::State::engine();
        let mut served = 0;
        for stream in listener.incoming().take(2) {
            let mut stream = stream.unwrap();
            while let Ok(req) = rvs_api::read_frame::<Request>(&mut stream) {
                let resp: Response = state.handle(req);
                rvs_api::write_frame(&mut stream, &resp).unwrap();
                served += 1;
            }
        }
        served
    });
    assert_eq!(
        run_socket(&sock, &["-A", "-t", "198.18.0.1:80"]),
        (0, String::new(), String::new())
    );
    let (code, out, err) = run_socket(&sock, &["-S", "-n"]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "-A -t 198.18.0.1:80 -s wlc\n", "")
    );
    assert_eq!(server.join().unwrap(), 2);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn the_binary_uses_rvsadm_socket() {
    let d = temp_dir("bin");
    let sock = d.join("nothing-here.sock");
    let exe = env!("CARGO_BIN_EXE_rvsadm");
    let o = Command::new(exe)
        .args(["-L", "-n"])
        .env("RVSADM_SOCKET", &sock)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.starts_with(&format!(
            "Can't initialize ipvs: cannot connect to rvsd at {}:",
            sock.display()
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    let o = Command::new(exe)
        .arg("-v")
        .env("RVSADM_SOCKET", &sock)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n"
    );
    let o = Command::new(exe)
        .args(["-A", "-t", "1.2.3.4:80", "--bogus"])
        .env("RVSADM_SOCKET", &sock)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(255));
    assert_eq!(
        String::from_utf8(o.stderr).unwrap(),
        "--bogus: unknown option\n"
    );
    let _ = std::fs::remove_dir_all(&d);
}
