//! The `wfetch` command: parse the arguments, run, exit with curl's codes.
//! `wfetch inspect FILE.wasm` describes a guest component instead.

// mimalloc instead of glibc's malloc: a fetch allocates and frees many
// small blocks on two threads with -Z, where glibc grew the second
// thread's arena a page at a time (an mprotect each) and spent a tenth of
// the run in its bookkeeping: -10 % wall time and -13 % CPU for 1,000
// small files with -Z (bench/RESULTS.md).
// Without transparent huge pages (`no_thp`): with them the arenas' RSS
// rose past the 64 MiB target for 1,000 concurrent fetches. The library
// leaves the choice of allocator to the program that embeds it.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Copied once: a batch of -Z transfers has thousands of arguments.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|first| first == "inspect") {
        return wfetch::cli::inspect_command(argv.into_iter().skip(2).collect());
    }
    // The engine is made while the arguments are parsed.
    let early = wfetch::cli::EarlyRuntime::start(&argv);
    let args = wfetch::cli::Args::parse_ordered(argv);
    wfetch::cli::run(args, early)
}
