//! `rvs`: the namespace lab, real-server preparation, test servers, data-plane counters.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use rvs::bench::{self, GenSpec};
use rvs::lab::demo::{DemoSpec, demo};
use rvs::lab::topology::LabMode;
use rvs::lab::{DirectorPolicy, LabSpec, down, status, tool, up};
use rvs::realserver::{self, Mode, Options};
use rvs::testsrv::{HttpServer, UdpServer};
use rvs_io::xdp::XdpMode;

/// rvs: namespace lab, real-server preparation and test servers for rvs (LVS on XDP).
#[derive(Debug, Parser)]
#[command(name = "rvs", version)]
struct Cli {
    #[command(subcommand)]
    command: Top,
}

#[derive(Debug, Subcommand)]
enum Top {
    /// A network-namespace lab: client, router, director (rvsd), three real servers.
    #[command(subcommand)]
    Lab(LabCmd),
    /// Prepare this host as an LVS real server (VIP on lo, ARP hiding, TUN decapsulation).
    #[command(subcommand)]
    Realserver(RealServerCmd),
    /// Test servers that answer with their name.
    #[command(subcommand)]
    Testsrv(TestSrvCmd),
    /// Benchmark helpers driven by bench/run.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// rvsd's data-plane counters: XDP steering, AF_XDP sockets, engine drops, connections.
    /// One `name value` line per counter.
    Stats(StatsArgs),
}

#[derive(Debug, Args)]
struct StatsArgs {
    /// rvsd's control socket.
    #[arg(long, default_value = rvs_api::DEFAULT_SOCKET_PATH)]
    socket: PathBuf,
    /// Print one JSON object `{"name": value, ...}` instead.
    #[arg(long)]
    json: bool,
}

fn run_stats(a: StatsArgs) -> Result<()> {
    use rvs::rvsadm::{Backend, UnixBackend};
    // The backend's messages already carry their OS error: print them once.
    let counters = match UnixBackend::connect(&a.socket)
        .and_then(|mut b| b.call(rvs_api::Request::GetCounters))
        .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        rvs_api::Response::Counters { counters } => counters,
        rvs_api::Response::Error { error } => bail!("rvsd: {error}"),
        other => bail!("rvsd answered {other:?}"),
    };
    if a.json {
        let map: serde_json::Map<String, serde_json::Value> =
            counters.into_iter().map(|(k, v)| (k, v.into())).collect();
        println!("{}", serde_json::Value::Object(map));
    } else {
        for (name, value) in counters {
            println!("{name} {value}");
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
enum BenchCmd {
    /// 64-byte UDP from many flows at full speed: BPF_PROG_RUN with live frames (rvs-io's
    /// TrafficGen), XDP_TX out of INTERFACE; prints `offered <frames> <seconds> <pps>`.
    Gen(GenArgs),
}

#[derive(Debug, Args)]
struct GenArgs {
    /// Interface to send on (in the current network namespace).
    #[arg(long)]
    interface: String,
    /// Destination MAC (the next hop).
    #[arg(long)]
    dst_mac: String,
    /// Source MAC (default: the interface's).
    #[arg(long)]
    src_mac: Option<String>,
    /// First source address.
    #[arg(long)]
    src: std::net::Ipv4Addr,
    /// Number of source addresses (src, src+1, ...).
    #[arg(long, default_value_t = 1)]
    src_count: u32,
    /// First source port.
    #[arg(long, default_value_t = 1024)]
    src_port: u16,
    /// Number of source ports.
    #[arg(long, default_value_t = 512)]
    port_count: u32,
    /// Destination address.
    #[arg(long)]
    dst: std::net::Ipv4Addr,
    /// Destination port.
    #[arg(long, default_value_t = 53)]
    dst_port: u16,
    /// Frame length without FCS (60 = 64 bytes on the wire).
    #[arg(long, default_value_t = 60)]
    frame_len: usize,
    /// Seconds to send.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Frames per kernel batch (1-256).
    #[arg(long, default_value_t = 64)]
    batch: u32,
}

fn run_bench(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Gen(a) => {
            if !(a.seconds > 0.0 && a.seconds <= 3600.0) {
                bail!("--seconds must be in (0, 3600]");
            }
            let spec = GenSpec {
                interface: a.interface,
                dst_mac: bench::parse_mac(&a.dst_mac)?,
                src_mac: a.src_mac.as_deref().map(bench::parse_mac).transpose()?,
                src: a.src,
                src_count: a.src_count,
                src_port: a.src_port,
                port_count: a.port_count,
                dst: a.dst,
                dst_port: a.dst_port,
                frame_len: a.frame_len,
                duration: Duration::from_secs_f64(a.seconds),
                batch: a.batch,
            };
            let r = bench::run(&spec)?;
            println!(
                "offered {} {:.3} {:.0}",
                r.frames,
                r.elapsed.as_secs_f64(),
                r.pps()
            );
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
struct LabName {
    /// Lab name: namespaces are rvs-<NAME>-*, runtime files /run/rvs/<NAME>*.
    #[arg(long, default_value = "lab")]
    name: String,
}

#[derive(Debug, Args)]
struct DirectorArgs {
    /// rvsd's XDP attach mode.
    #[arg(long, default_value = "auto", value_parser = ["auto", "native", "skb"])]
    xdp_mode: String,
    /// rvsd binary (default: next to rvs, else PATH).
    #[arg(long)]
    rvsd: Option<PathBuf>,
    /// Run rvsd without the XDP fast path (every packet through AF_XDP and the engine).
    #[arg(long)]
    no_fast_path: bool,
}

#[derive(Debug, Subcommand)]
enum LabCmd {
    /// Build the lab, prepare and start the real servers, start rvsd and configure the VIP.
    Up {
        #[command(flatten)]
        name: LabName,
        /// Forwarding method.
        #[arg(long)]
        mode: LabMode,
        /// Scheduler of the virtual services.
        #[arg(long, default_value = "wlc")]
        scheduler: String,
        /// Weights of rs1,rs2,rs3.
        #[arg(long, default_value = "1,1,1", value_delimiter = ',')]
        weights: Vec<u32>,
        /// Also configure the IPv6 services on [2001:db8::100] (the topology is always dual-stack).
        #[arg(long)]
        ipv6: bool,
        #[command(flatten)]
        director: DirectorArgs,
        /// Build and verify the topology without starting rvsd.
        #[arg(long)]
        no_director: bool,
        /// Start rvsd with no virtual services (configure them with rvsadm).
        #[arg(long, conflicts_with = "no_director")]
        no_services: bool,
    },
    /// Stop the lab's processes and delete its namespaces (idempotent).
    Down {
        #[command(flatten)]
        name: LabName,
    },
    /// Show the lab's namespaces, processes and (with rvsd) services and counters.
    Status {
        #[command(flatten)]
        name: LabName,
    },
    /// For each mode and scheduler: lab up, requests through the VIP, distribution verdict, lab down.
    Demo {
        #[command(flatten)]
        name: LabName,
        /// Requests per burst (rounded up to a multiple of 6).
        #[arg(long, default_value_t = 60)]
        requests: u32,
        /// Forwarding methods.
        #[arg(long, default_value = "nat,dr,tun", value_delimiter = ',')]
        modes: Vec<LabMode>,
        /// Schedulers.
        #[arg(long, default_value = "rr,wrr,wlc,sh", value_delimiter = ',')]
        schedulers: Vec<String>,
        /// Also send the traffic to the IPv6 VIP.
        #[arg(long)]
        ipv6: bool,
        /// Show every step of every lab up, not only the verdicts.
        #[arg(long, short)]
        verbose: bool,
        #[command(flatten)]
        director: DirectorArgs,
    },
    /// Probes the lab runs inside its namespaces (internal).
    #[command(subcommand, hide = true)]
    Tool(ToolCmd),
}

#[derive(Debug, Subcommand)]
enum ToolCmd {
    /// Attaches an XDP_PASS program to each interface and holds it until killed (veth peers of
    /// the director must run XDP to receive its XDP_TX / redirected frames).
    XdpPass {
        #[arg(required = true)]
        interfaces: Vec<String>,
    },
    /// Prints `reachable` if ADDR answers TCP (connection or RST), else `unreachable`.
    Reach {
        addr: IpAddr,
        #[arg(long, default_value_t = 9)]
        port: u16,
        #[arg(long, default_value_t = 1)]
        tries: u32,
    },
    /// Resolves TARGET and prints, as JSON, who answered ARP/ND for it.
    NeighProbe {
        #[arg(long)]
        target: IpAddr,
        #[arg(long, default_value_t = 1200)]
        watch_ms: u64,
    },
    /// Sends UDP datagrams and prints the replies, one per line.
    Udp {
        #[arg(long)]
        server: SocketAddr,
        #[arg(long)]
        bind: Option<IpAddr>,
        #[arg(long, default_value_t = 1)]
        count: u32,
        #[arg(long, default_value_t = 1000)]
        timeout_ms: u64,
    },
    /// Sends a UDP query to VIP encapsulated (IPIP / IP6IP6) to RIP; prints the direct reply.
    TunProbe {
        #[arg(long)]
        rip: IpAddr,
        #[arg(long)]
        vip: IpAddr,
        #[arg(long)]
        src: IpAddr,
        #[arg(long, default_value_t = 53)]
        port: u16,
        #[arg(long, default_value = "tun-probe")]
        payload: String,
    },
}

#[derive(Debug, Args)]
struct RealServerArgs {
    /// A VIP (IPv4 or IPv6); repeat for several.
    #[arg(long = "vip", required_unless_present = "undo")]
    vips: Vec<IpAddr>,
    /// Revert exactly what an earlier run recorded.
    #[arg(long)]
    undo: bool,
    /// State file (default /run/rvs/realserver-<mode>-net<netns inode>.json).
    #[arg(long)]
    state: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum RealServerCmd {
    /// Direct routing: VIP on lo as /32 (/128), arp_ignore=1 and arp_announce=2.
    Dr {
        #[command(flatten)]
        args: RealServerArgs,
    },
    /// IP tunnelling: as dr, plus decapsulation (kernel tunl0/ip6tnl0 if present, else rvs's XDP
    /// program, held by this process in the foreground: run it as a service).
    Tun {
        #[command(flatten)]
        args: RealServerArgs,
        /// Interface(s) for the XDP program (default: every non-loopback interface that is up).
        #[arg(long = "interface")]
        interfaces: Vec<String>,
        /// How to attach the XDP program.
        #[arg(long, default_value = "auto", value_parser = ["auto", "native", "skb"])]
        xdp_mode: String,
    },
}

#[derive(Debug, Args)]
struct TestSrvArgs {
    /// Address to listen on, e.g. [::]:80 (IPv4 and IPv6) or 198.18.0.100:53; repeatable.
    #[arg(long = "listen", required = true)]
    listen: Vec<SocketAddr>,
    /// The name to answer with.
    #[arg(long)]
    name: String,
}

#[derive(Debug, Subcommand)]
enum TestSrvCmd {
    /// HTTP/1.1: every request → body `NAME\n`; GET /stream?seconds=N streams a line per 100 ms.
    Http(TestSrvArgs),
    /// UDP: every datagram → `NAME <payload>`.
    Udp(TestSrvArgs),
}

fn lab_spec(name: String, mode: LabMode, director: DirectorArgs) -> Result<LabSpec> {
    let mut spec = LabSpec::new(mode)?;
    spec.name = name;
    spec.xdp_mode = director.xdp_mode;
    spec.rvsd = director.rvsd;
    spec.fast_path = !director.no_fast_path;
    Ok(spec)
}

fn run_lab(cmd: LabCmd) -> Result<()> {
    match cmd {
        LabCmd::Up {
            name,
            mode,
            scheduler,
            weights,
            ipv6,
            director,
            no_director,
            no_services,
        } => {
            let mut spec = lab_spec(name.name, mode, director)?;
            spec.scheduler = scheduler;
            spec.weights = weights;
            spec.ipv6 = ipv6;
            if no_director {
                spec.director = DirectorPolicy::Skip;
            }
            spec.services = !no_services;
            up(&spec)?;
        }
        LabCmd::Down { name } => {
            let report = down(&name.name)?;
            for s in &report.stopped {
                println!("stopped {s}");
            }
            for n in &report.namespaces {
                println!("deleted netns {n}");
            }
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            println!("lab `{}` is down", name.name);
        }
        LabCmd::Status { name } => {
            status(&name.name)?;
        }
        LabCmd::Demo {
            name,
            requests,
            modes,
            schedulers,
            ipv6,
            verbose,
            director,
        } => {
            let base = lab_spec(name.name, LabMode::Nat, director)?;
            demo(&DemoSpec {
                requests,
                modes,
                schedulers,
                ipv6,
                verbose,
                base,
            })?;
        }
        LabCmd::Tool(t) => run_tool(t)?,
    }
    Ok(())
}

fn run_tool(t: ToolCmd) -> Result<()> {
    match t {
        ToolCmd::XdpPass { interfaces } => tool::hold_xdp_pass(&interfaces)?,
        ToolCmd::Reach { addr, port, tries } => {
            let ok = (0..tries.max(1)).any(|_| tool::reach(addr, port, Duration::from_secs(2)));
            println!("{}", if ok { "reachable" } else { "unreachable" });
        }
        ToolCmd::NeighProbe { target, watch_ms } => {
            let probe = tool::neigh_probe(target, Duration::from_millis(watch_ms))?;
            println!("{}", serde_json::to_string(&probe)?);
        }
        ToolCmd::Udp {
            server,
            bind,
            count,
            timeout_ms,
        } => {
            for reply in tool::udp_query(server, bind, count, Duration::from_millis(timeout_ms))? {
                println!("{reply}");
            }
        }
        ToolCmd::TunProbe {
            rip,
            vip,
            src,
            port,
            payload,
        } => match tool::tun_probe(rip, vip, src, port, &payload, Duration::from_secs(1))? {
            Some(reply) => println!("{reply}"),
            None => bail!("no reply from {vip} via {rip}"),
        },
    }
    Ok(())
}

fn run_realserver(cmd: RealServerCmd) -> Result<()> {
    let (mode, args, interfaces, xdp_mode) = match cmd {
        RealServerCmd::Dr { args } => (Mode::Dr, args, Vec::new(), XdpMode::Auto),
        RealServerCmd::Tun {
            args,
            interfaces,
            xdp_mode,
        } => {
            let xdp_mode = match xdp_mode.as_str() {
                "native" => XdpMode::Native,
                "skb" => XdpMode::Skb,
                _ => XdpMode::Auto,
            };
            (Mode::Tun, args, interfaces, xdp_mode)
        }
    };
    if args.undo {
        let undone = realserver::undo(mode, args.state.as_deref())?;
        for c in &undone.changes {
            println!("{c}");
        }
        for n in &undone.notes {
            println!("note: {n}");
        }
        return Ok(());
    }
    let prepared = realserver::prepare(&Options {
        mode,
        vips: args.vips,
        interfaces,
        state_path: args.state,
        xdp_mode,
    })?;
    for c in &prepared.changes {
        println!("{c}");
    }
    for n in &prepared.notes {
        println!("note: {n}");
    }
    if prepared.changes.is_empty() {
        println!("already prepared");
    }
    println!("state: {}", prepared.state_path.display());
    if let Some(hold) = prepared.hold {
        println!(
            "holding XDP decapsulation on {}; stop with SIGTERM, then `rvs realserver tun --undo`",
            hold.interfaces().join(", ")
        );
        // The program stays attached as long as this process lives (bpf_link owned here).
        loop {
            std::thread::park();
        }
    }
    Ok(())
}

fn run_testsrv(cmd: TestSrvCmd) -> Result<()> {
    match cmd {
        TestSrvCmd::Http(a) => {
            let srv = HttpServer::bind(&a.listen, &a.name)?;
            eprintln!(
                "rvs testsrv http `{}` listening on {:?}",
                a.name,
                srv.local_addrs()
            );
            srv.run().context("http server")?;
        }
        TestSrvCmd::Udp(a) => {
            let srv = UdpServer::bind(&a.listen, &a.name)?;
            eprintln!(
                "rvs testsrv udp `{}` listening on {:?}",
                a.name,
                srv.local_addrs()
            );
            srv.run().context("udp server")?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Top::Lab(c) => run_lab(c),
        Top::Realserver(c) => run_realserver(c),
        Top::Testsrv(c) => run_testsrv(c),
        Top::Bench(c) => run_bench(c),
        Top::Stats(a) => run_stats(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvs: {e:#}");
            ExitCode::FAILURE
        }
    }
}
