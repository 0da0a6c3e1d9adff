//! Running iproute2, ethtool, sysctl and curl, inside lab namespaces.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use super::LabError;

/// Runs `program args…`; returns stdout, or an error carrying stderr.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<String, LabError> {
    let out = output(program, args)?;
    check(program, args, &out)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `program args…` and returns its output whatever the exit status.
pub(crate) fn output(program: &str, args: &[&str]) -> Result<Output, LabError> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LabError::io(format!("run {program}"), e))
}

fn check(program: &str, args: &[&str], out: &Output) -> Result<(), LabError> {
    if out.status.success() {
        return Ok(());
    }
    Err(LabError::Command {
        cmd: format!("{program} {}", args.join(" ")),
        status: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

/// `ip -n <ns> args…`.
pub(crate) fn ip(ns: &str, args: &[&str]) -> Result<String, LabError> {
    let mut full = vec!["-n", ns];
    full.extend_from_slice(args);
    run("ip", &full)
}

/// `ip -n <ns> -batch -` with `lines` on stdin: many changes for one process spawn. Stops at the
/// first failing line.
pub(crate) fn ip_batch(ns: &str, lines: &[String]) -> Result<(), LabError> {
    if lines.is_empty() {
        return Ok(());
    }
    let args = ["-n", ns, "-batch", "-"];
    let mut child = Command::new("ip")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| LabError::io("run ip -batch", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        let text = lines.join("\n") + "\n";
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| LabError::io("write to ip -batch", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| LabError::io("wait for ip -batch", e))?;
    check("ip", &args, &out).map_err(|e| match e {
        LabError::Command { status, stderr, .. } => LabError::Command {
            cmd: format!("ip -n {ns} -batch: {}", lines.join("; ")),
            status,
            stderr,
        },
        other => other,
    })
}

/// `ip netns exec <ns> program args…`; returns stdout.
pub(crate) fn netns_exec(ns: &str, program: &str, args: &[&str]) -> Result<String, LabError> {
    let out = netns_output(ns, program, args)?;
    let mut full = vec!["netns", "exec", ns, program];
    full.extend_from_slice(args);
    check("ip", &full, &out)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip netns exec <ns> program args…`, output whatever the status.
pub(crate) fn netns_output(ns: &str, program: &str, args: &[&str]) -> Result<Output, LabError> {
    let mut full = vec!["netns", "exec", ns, program];
    full.extend_from_slice(args);
    output("ip", &full)
}

/// Names of the existing named network namespaces (`ip netns list`).
pub(crate) fn netns_list() -> Result<Vec<String>, LabError> {
    let out = run("ip", &["netns", "list"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// Whether `program` can be run (found in `PATH`).
pub(crate) fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
