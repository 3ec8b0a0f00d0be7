//! wfetch's integration tests: the real binary and the library against a
//! real nginx, real TLS and test servers on 127.0.0.1.

mod util;

mod cli_errors;
mod fetch_nginx;
mod fetch_server;
mod probe;
mod streams;
