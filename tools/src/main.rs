//! `vipdrift`: the command-line front end of the vipdrift engine.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod fwd;
mod gen;
mod lab;
mod port_args;
mod probe;
mod report;
mod run;
mod serve;
mod udp_frame;

/// A poll-mode packet engine on AF_XDP with a virtual-MAC failover service.
#[derive(Parser)]
#[command(name = "vipdrift", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Transmit UDP/IPv4 frames (packet generator), through AF_XDP or BPF_PROG_RUN live frames.
    Gen(gen::GenArgs),
    /// Receive through AF_XDP and drop, swap MACs and send back, or forward (reflector).
    Fwd(fwd::FwdArgs),
    /// Run the daemon: VRRPv3 groups and their VIPs, from a TOML configuration.
    Run(run::RunArgs),
    /// Serve VIPs as their static owner: ARP, NDP and ping answered by the engine.
    Serve(serve::ServeArgs),
    /// Measure a failover's dark time: ICMP echo (or UDP to an echo server) on a fixed schedule, gaps reported.
    Probe(probe::ProbeArgs),
    /// A failover lab in network namespaces (a client, two nodes, a bridge): demo, up, down.
    Lab(lab::LabArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Gen(args) => gen::run(args),
        Command::Fwd(args) => fwd::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Probe(args) => probe::run(args),
        Command::Run(args) => run::run(args),
        Command::Lab(args) => lab::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("vipdrift: {message}");
            ExitCode::FAILURE
        }
    }
}
