//! wfetch's integration tests: the real binary and the library against a
//! real nginx, real TLS and test servers on 127.0.0.1.

mod util;

mod c_guest;
mod cli_errors;
mod cli_flags;
mod fetch_nginx;
mod fetch_server;
mod gopher;
mod hostile;
mod library;
mod plugin;
mod probe;
mod sandbox;
mod streams;
mod tape;
mod user_input;
