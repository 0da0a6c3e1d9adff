//! `rvsadm`: the ipvsadm 1.31-compatible administration CLI of rvs (see `rvs::rvsadm`).

use std::io::{self, Write};
use std::process::ExitCode;

use rvs::rvsadm::{self, Backend, BackendError, UnixBackend};

fn main() -> ExitCode {
    let argv: Vec<_> = std::env::args_os().collect();
    let path = rvsadm::socket_path();
    let mut connect =
        || -> Result<Box<dyn Backend>, BackendError> { Ok(Box::new(UnixBackend::connect(&path)?)) };
    let stdin = io::stdin();
    let mut stdin = stdin.lock();
    let stdout = io::stdout();
    let mut stdout = io::BufWriter::new(stdout.lock());
    let stderr = io::stderr();
    let mut stderr = stderr.lock();
    let code = rvsadm::run(&argv, &mut connect, &mut stdin, &mut stdout, &mut stderr);
    let _ = stdout.flush();
    ExitCode::from(code as u8)
}
