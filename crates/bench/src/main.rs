//! `softbus-bench`, run as `softbus bench`: end-to-end measurements over
//! loopback, each against a baseline measured in the same run (BENCHMARKS.md).
#![forbid(unsafe_code)]

mod harness;
mod load;
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
struct Cli {
    #[command(flatten)]
    args: harness::BenchArgs,
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
