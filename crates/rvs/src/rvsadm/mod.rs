//! `rvsadm`: the ipvsadm 1.31-compatible administration CLI of rvs.
//!
//! The command line goes through two stages: [`args::parse`] emulates ipvsadm's popt scan into
//! [`args::LowArgs`], and `Command::try_from` makes ipvsadm's semantic checks and yields a typed
//! [`command::Command`], which maps onto [`rvs_api::Request`]s. [`format`] prints every output
//! ipvsadm prints, [`names`] parses and prints addresses and ports, [`restore`] reads `-R` input
//! and [`client`] talks to `rvsd`.
//!
//! [`run`] drives one invocation and returns the exit code; the binary only wires it to the
//! process's argv, stdio and the control socket, so tests run everything in-process with a
//! [`client::Backend`] of their own. Unlike ipvsadm, which opens the kernel interface before
//! parsing anything, rvsadm connects to `rvsd` only when a command needs it: `-h`, `-v` and
//! command lines that fail validation work without a daemon.

pub mod args;
pub mod client;
pub mod command;
pub mod format;
pub mod names;
pub mod restore;

use std::ffi::OsString;
use std::io::{BufRead, Write};

use rvs_api::{ApiError, Request, Response, ServiceEntry};

pub use client::{Backend, BackendError, UnixBackend, socket_path};
pub use names::{Resolver, SystemResolver};

use args::ArgsError;
use command::{Command, ListFormat, ListWhat};
use format::Printer;

/// Opens the link to `rvsd` on first use.
pub type Connector<'a> = dyn FnMut() -> Result<Box<dyn Backend>, BackendError> + 'a;

/// Runs one rvsadm invocation with the system resolver. `argv[0]` is the program name.
/// Returns the exit code (0, 1, 2 or 255, as ipvsadm).
pub fn run(
    argv: &[OsString],
    connect: &mut Connector<'_>,
    stdin: &mut dyn BufRead,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    run_with_resolver(argv, connect, &SystemResolver::new(), stdin, stdout, stderr)
}

/// [`run`] with a given name resolver.
pub fn run_with_resolver(
    argv: &[OsString],
    connect: &mut Connector<'_>,
    resolver: &dyn Resolver,
    stdin: &mut dyn BufRead,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    let argv: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let prog = argv.first().cloned().unwrap_or_else(|| "rvsadm".to_owned());
    let mut session = Session {
        prog,
        connect,
        backend: None,
        resolver,
        stdin,
        stdout,
        stderr,
    };
    let code = if argv.len() <= 1 {
        match session.list_all(ListFormat::default()) {
            Ok(()) => 0,
            Err(Exit(code)) => code,
        }
    } else {
        match session.process(&argv, false) {
            Ok(code) | Err(Exit(code)) => code,
        }
    };
    let _ = session.stdout.flush();
    let _ = session.stderr.flush();
    code
}

/// Ends the whole invocation (and a restore in progress) with this exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Exit(i32);

/// Exit code of a failed daemon operation (ipvsadm returns -1 from main).
const OP_FAILED: i32 = 255;

struct Session<'a, 'c> {
    prog: String,
    connect: &'a mut Connector<'c>,
    backend: Option<Box<dyn Backend>>,
    resolver: &'a dyn Resolver,
    stdin: &'a mut dyn BufRead,
    stdout: &'a mut dyn Write,
    stderr: &'a mut dyn Write,
}

impl Session<'_, '_> {
    fn out(&mut self, s: &str) {
        // Like ipvsadm's printf, output errors (a closed pipe) do not change the outcome.
        let _ = self.stdout.write_all(s.as_bytes());
    }

    fn err(&mut self, s: &str) {
        let _ = self.stderr.write_all(s.as_bytes());
    }

    /// Sends a request, connecting first if needed. A transport failure ends the invocation.
    fn call(&mut self, request: Request) -> Result<Response, Exit> {
        if self.backend.is_none() {
            match (self.connect)() {
                Ok(b) => self.backend = Some(b),
                Err(e) => {
                    self.err(&format!("Can't initialize ipvs: {e} (is rvsd running?)\n"));
                    return Err(Exit(2));
                }
            }
        }
        let Some(backend) = self.backend.as_mut() else {
            return Err(Exit(2));
        };
        match backend.call(request) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.backend = None;
                self.err(&format!("{e}\n"));
                Err(Exit(2))
            }
        }
    }

    /// ipvsadm's `process_options()`: returns the command's result, or ends everything.
    fn process(&mut self, argv: &[String], reading_stdin: bool) -> Result<i32, Exit> {
        let low = match args::parse(argv, self.resolver) {
            Ok(low) => low,
            Err(e) => return self.args_error(e),
        };
        let cmd = match Command::try_from(low) {
            Ok(cmd) => cmd,
            Err(e) => return self.args_error(e),
        };
        match cmd {
            Command::List { what, format } => {
                self.list(what, format)?;
                Ok(0)
            }
            Command::Save { numeric } => {
                let format = ListFormat {
                    numeric,
                    rule: true,
                    ..ListFormat::default()
                };
                self.list_all(format)?;
                Ok(0)
            }
            Command::Restore => {
                if reading_stdin {
                    let hint = format::tryhelp(&self.prog);
                    self.err(&hint);
                    return Err(Exit(255));
                }
                self.restore()
            }
            other => {
                let Some(request) = other.request() else {
                    return Ok(0);
                };
                let is_dest_op = matches!(
                    request,
                    Request::AddDest { .. } | Request::EditDest { .. } | Request::DelDest { .. }
                );
                match self.call(request)? {
                    Response::Ok => Ok(0),
                    Response::Error { error } => {
                        // ESRCH on a real-server operation reads "Service not defined".
                        let error = match error {
                            ApiError::NoSuchService if is_dest_op => ApiError::ServiceNotDefined,
                            e => e,
                        };
                        self.err(&format!("{error}\n"));
                        Ok(OP_FAILED)
                    }
                    _ => {
                        self.err("unexpected response from rvsd\n");
                        Ok(OP_FAILED)
                    }
                }
            }
        }
    }

    fn args_error(&mut self, e: ArgsError) -> Result<i32, Exit> {
        match e {
            ArgsError::Fail(msg) => {
                self.err(&format!("{msg}\n"));
                Err(Exit(2))
            }
            ArgsError::Popt(msg) => {
                self.err(&format!("{msg}\n"));
                Ok(OP_FAILED)
            }
            ArgsError::TryHelp => {
                let hint = format::tryhelp(&self.prog);
                self.err(&hint);
                Err(Exit(255))
            }
            ArgsError::Help => {
                let text = format::usage(&self.prog);
                self.out(&text);
                Err(Exit(0))
            }
            ArgsError::Version => {
                self.out(format::VERSION_LINE);
                Err(Exit(0))
            }
        }
    }

    /// `-R`: every line is a command line; a validation failure stops, a daemon error goes on.
    /// The result is that of the last line.
    fn restore(&mut self) -> Result<i32, Exit> {
        let mut result = 0;
        loop {
            let line = match restore::read_line(&mut *self.stdin) {
                Ok(restore::RestoreLine::Words(words)) => words,
                Ok(restore::RestoreLine::End) => break,
                Err(e) => {
                    self.err(&format!("reading stdin: {e}\n"));
                    return Err(Exit(2));
                }
            };
            if line.is_empty() || restore::is_comment(&line) {
                continue;
            }
            let mut argv = Vec::with_capacity(line.len() + 1);
            argv.push(self.prog.clone());
            argv.extend(line);
            result = self.process(&argv, true)?;
        }
        Ok(result)
    }

    fn printer(&self, format: ListFormat) -> Printer<'_> {
        Printer {
            resolver: self.resolver,
            format,
        }
    }

    fn json<T: serde::Serialize>(&mut self, value: &T) -> Result<(), Exit> {
        match serde_json::to_string_pretty(value) {
            Ok(mut s) => {
                s.push('\n');
                self.out(&s);
                Ok(())
            }
            Err(e) => {
                self.err(&format!("json: {e}\n"));
                Err(Exit(1))
            }
        }
    }

    /// A listing request whose failure prints the daemon's message and exits 1, as ipvsadm's
    /// listing failures do.
    fn list_call(&mut self, request: Request) -> Result<Response, Exit> {
        match self.call(request)? {
            Response::Error { error } => {
                self.err(&format!("{error}\n"));
                Err(Exit(1))
            }
            r => Ok(r),
        }
    }

    fn unexpected(&mut self) -> Exit {
        self.err("unexpected response from rvsd\n");
        Exit(1)
    }

    fn list(&mut self, what: ListWhat, format: ListFormat) -> Result<(), Exit> {
        match what {
            ListWhat::All => self.list_all(format),
            ListWhat::Service(key) => {
                let Response::Services { services } =
                    self.list_call(Request::GetService { key })?
                else {
                    return Err(self.unexpected());
                };
                let services = format::sorted_services(services, format.nosort);
                if format.json {
                    return match services.into_iter().next() {
                        Some(mut s) => {
                            if !format.nosort {
                                format::sort_dests(&mut s);
                            }
                            self.json(&s)
                        }
                        None => Err(self.no_such_service()),
                    };
                }
                let Some(se) = services.first() else {
                    return Err(self.no_such_service());
                };
                let mut text = format::title(&format);
                self.printer(format).service_entry(&mut text, se);
                self.out(&text);
                Ok(())
            }
            ListWhat::Conns => {
                let Response::Conns { conns } = self.list_call(Request::ListConns)? else {
                    return Err(self.unexpected());
                };
                if format.json {
                    return self.json(&conns);
                }
                let mut text = String::new();
                self.printer(format).conns(&mut text, &conns);
                self.out(&text);
                Ok(())
            }
            ListWhat::Timeouts => {
                let Response::Timeouts { timeouts } = self.list_call(Request::GetTimeouts)? else {
                    return Err(self.unexpected());
                };
                if format.json {
                    return self.json(&timeouts);
                }
                self.out(&format::timeouts(&timeouts));
                Ok(())
            }
            ListWhat::Daemons => {
                let Response::Daemons { daemons } = self.list_call(Request::ListDaemons)? else {
                    return Err(self.unexpected());
                };
                if format.json {
                    return self.json(&daemons);
                }
                self.out(&format::daemons(&daemons));
                Ok(())
            }
        }
    }

    fn no_such_service(&mut self) -> Exit {
        self.err(&format!("{}\n", ApiError::NoSuchService));
        Exit(1)
    }

    /// `list_all()`: the header (not for `-S` or `--json`), the titles and every service.
    fn list_all(&mut self, format: ListFormat) -> Result<(), Exit> {
        if !format.rule && !format.json {
            let Response::Info { info } = self.list_call(Request::GetInfo)? else {
                return Err(self.unexpected());
            };
            self.out(&format::header(&info));
        }
        let Response::Services { services } = self.list_call(Request::ListServices)? else {
            return Err(self.unexpected());
        };
        let mut services: Vec<ServiceEntry> = format::sorted_services(services, format.nosort);
        if format.json {
            if !format.nosort {
                services.iter_mut().for_each(format::sort_dests);
            }
            return self.json(&services);
        }
        let printer = self.printer(format);
        let mut text = format::title(&format);
        for se in &services {
            printer.service_entry(&mut text, se);
        }
        self.out(&text);
        Ok(())
    }
}
