//! The `wfetch` command: parse the arguments, run, exit with curl's codes.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = wfetch::cli::Args::parse();
    wfetch::cli::run(args)
}
