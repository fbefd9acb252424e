//! `softbus bench` (filled in below).
#[derive(clap::Args, Debug)]
pub struct BenchArgs {}

pub async fn run(_a: BenchArgs) -> std::process::ExitCode {
    eprintln!("softbus: bench is not available yet");
    std::process::ExitCode::from(1)
}
