//! `softbus-bench`, run as `softbus bench`: end-to-end measurements over
//! loopback, each against a baseline measured in the same run (BENCHMARKS.md).
#![forbid(unsafe_code)]

mod abuse;
mod harness;
mod load;
mod placement;
mod relay;
mod rtc_load;

use clap::Parser;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "softbus bench",
    bin_name = "softbus bench",
    version,
    about = "Measure throughput, discovery rate and per-session memory against baselines"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    args: harness::BenchArgs,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Run issue 7's attacks in parallel against one node while paired clients
    /// discover, authenticate and echo; compare with the same clients unattacked.
    Abuse(abuse::AbuseArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,sctp_proto=off".into()),
        )
        .init();
    if let Some(Cmd::Abuse(a)) = cli.cmd {
        // The node and its web side on the server CPU; the clients, and the
        // attackers (a low-priority process), on the client CPU.
        let r = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(tokio::task::LocalSet::new().run_until(abuse::run(a)))
        })
        .join()
        .unwrap_or_else(|_| Err("the abuse run panicked".into()));
        return match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => failure(format!("abuse: {e}")),
        };
    }
    // The client runs on one thread, like each server it measures.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return failure(format!("cannot start the runtime: {e}")),
    };
    rt.block_on(harness::run(cli.args))
}

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("softbus bench: {msg}");
    ExitCode::from(2)
}

fn failure(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("softbus bench: {msg}");
    ExitCode::from(1)
}
