//! `vipdrift`: the command-line front end of the vipdrift engine.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod admin_cli;
mod fwd;
mod gen;
mod lab;
mod lab_template;
mod logging;
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
    /// Show the running daemon's groups, their states and masters, and its interfaces.
    Status(admin_cli::StatusArgs),
    /// Show the running daemon's counters and rates per queue and group (--watch: every second).
    Stats(admin_cli::StatsArgs),
    /// Change the running daemon: maintenance, priority, reload.
    Ctl(admin_cli::CtlArgs),
    /// Check a configuration file as `vipdrift run` would, touching no interface or socket.
    CheckConfig(admin_cli::CheckConfigArgs),
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
        Command::Status(args) => admin_cli::status(args),
        Command::Stats(args) => admin_cli::stats(args),
        Command::Ctl(args) => admin_cli::ctl(args),
        Command::CheckConfig(args) => admin_cli::check_config(args),
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
