//! The `wfetch` command: parse the arguments, run, exit with curl's codes.
//! `wfetch inspect FILE.wasm` describes a guest component instead.

fn main() -> std::process::ExitCode {
    let mut argv = std::env::args_os();
    if let (Some(_), Some(first)) = (argv.next(), argv.next()) {
        if first == "inspect" {
            return wfetch::cli::inspect_command(argv.collect());
        }
    }
    let args = wfetch::cli::Args::parse_ordered();
    wfetch::cli::run(args)
}
