//! Compiles the XDP programs in `bpf/` (C) with clang into `OUT_DIR`, where `src/xdp.rs`
//! embeds them. C is used only because stable Rust cannot build BPF objects here.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The programs to build: `bpf/<name>.bpf.c` becomes `$OUT_DIR/<name>.bpf.o`.
const PROGRAMS: &[&str] = &["steer", "tun_decap", "xdp_pass", "xdp_gen"];
/// Headers the programs include; a change rebuilds them.
const HEADERS: &[&str] = &["rvs_bpf.h"];

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let bpf_dir = manifest.join("../../bpf");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    println!("cargo:rerun-if-env-changed=CLANG");

    if Command::new(&clang).arg("--version").output().is_err() {
        panic!(
            "rvs-io needs clang to compile the XDP programs in bpf/ (tried `{clang}`).\n\
             Install it with: apt-get install clang libbpf-dev   (or run scripts/deps)"
        );
    }
    if !Path::new("/usr/include/bpf/bpf_helpers.h").exists() {
        panic!(
            "rvs-io needs libbpf's BPF headers (/usr/include/bpf/bpf_helpers.h).\n\
             Install them with: apt-get install clang libbpf-dev   (or run scripts/deps)"
        );
    }

    for h in HEADERS {
        println!("cargo:rerun-if-changed={}", bpf_dir.join(h).display());
    }
    for name in PROGRAMS {
        let src = bpf_dir.join(format!("{name}.bpf.c"));
        let obj = out_dir.join(format!("{name}.bpf.o"));
        println!("cargo:rerun-if-changed={}", src.display());
        let output = Command::new(&clang)
            .args([
                "-O2",
                "-g",
                "-Wall",
                "-Werror",
                "-target",
                "bpf",
                "-D__TARGET_ARCH_x86",
            ])
            // asm/types.h lives in the multiarch directory on Debian.
            .arg("-I/usr/include/x86_64-linux-gnu")
            .arg("-c")
            .arg(&src)
            .arg("-o")
            .arg(&obj)
            .output()
            .unwrap_or_else(|e| panic!("running {clang}: {e}"));
        if !output.status.success() {
            panic!(
                "clang failed on {}:\n{}{}",
                src.display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}
