//! Builds the guest workspace (guest/) with its own target dir, so the
//! default guest can be embedded in the host binary and the test guests are
//! at hand for the tests. The default guest is built for
//! wasm32-unknown-unknown and made a component here (it needs no WASI, and
//! a component without WASI imports is cheaper to instantiate for every
//! fetch); the others are built for wasm32-wasip2, as a third party's would.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// Guest crates (package name, output file stem). The first is the default
/// guest, embedded in the binary; the others are for tests and examples.
const GUESTS: &[(&str, &str)] = &[
    ("wfetch-guest-http", "wfetch_guest_http"),
    ("wfetch-guest-gopher", "wfetch_guest_gopher"),
    ("wfetch-guest-template", "wfetch_guest_template"),
    ("wfetch-guest-probe", "wfetch_guest_probe"),
    ("wfetch-guest-hostile", "wfetch_guest_hostile"),
];

/// The default guest's target: no WASI imports at all.
const DEFAULT_TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    // Relative relocations packed as DT_RELR (glibc 2.36+; the linker
    // leaves them as they are for an older glibc): the dynamic loader read
    // and applied 35,000 RELA entries (820 KB) at every start, 1.5 million
    // cycles against 0.2 million packed, about 0.2 ms of a 4 ms warm start
    // (bench/RESULTS.md).
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let guest_ws = root.join("guest");
    let target_dir = env::var_os("WFETCH_GUEST_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target").join("guest"));

    println!("cargo:rerun-if-changed={}", guest_ws.join("Cargo.toml").display());
    println!("cargo:rerun-if-changed={}", guest_ws.join("Cargo.lock").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!(
        "cargo:rerun-if-changed={}",
        guest_ws.join(".cargo").join("config.toml").display()
    );
    println!("cargo:rerun-if-env-changed=WFETCH_GUEST_TARGET_DIR");

    let (default_pkg, default_stem) = GUESTS[0];
    // The test guests (WASI), then the default guest (no WASI).
    cargo_build(
        &guest_ws,
        &target_dir,
        "wasm32-wasip2",
        &["--workspace", "--exclude", default_pkg],
    );
    cargo_build(&guest_ws, &target_dir, DEFAULT_TARGET, &["-p", default_pkg]);

    let wasip2_dir = target_dir.join("wasm32-wasip2").join("release");
    let default_dir = target_dir.join(DEFAULT_TARGET).join("release");
    for (i, (_, stem)) in GUESTS.iter().enumerate() {
        let wasm = if i == 0 {
            componentize(&default_dir.join(format!("{default_stem}.wasm")))
        } else {
            wasip2_dir.join(format!("{stem}.wasm"))
        };
        assert!(wasm.exists(), "guest build produced no {}", wasm.display());
        let var = format!(
            "WFETCH_GUEST_{}",
            stem.trim_start_matches("wfetch_guest_").to_uppercase()
        );
        println!("cargo:rustc-env={var}={}", wasm.display());
        if i == 0 {
            println!("cargo:rustc-env=WFETCH_DEFAULT_GUEST={}", wasm.display());
            // The embedded guest's SHA-256 (its cache key), so that no run
            // hashes half a megabyte again: cache.rs includes these bytes.
            let bytes = std::fs::read(&wasm).unwrap_or_else(|e| panic!("cannot read {}: {e}", wasm.display()));
            let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("default-guest.sha256");
            std::fs::write(&out, Sha256::digest(&bytes))
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
            rerun_from_dep_info(&default_dir.join(format!("{stem}.d")));
        } else {
            rerun_from_dep_info(&wasip2_dir.join(format!("{stem}.d")));
        }
    }
    emit_versions(&root);
}

/// `cargo build --release --target <target> <what>` in the guest workspace.
fn cargo_build(guest_ws: &Path, target_dir: &Path, target: &str, what: &[&str]) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(guest_ws)
        .args(["build", "--release", "--target", target])
        .args(what)
        .arg("--target-dir")
        .arg(target_dir);
    // Variables leaking from the outer build would change (or break) the
    // inner one.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO_PROFILE_")
            || key.starts_with("CARGO_FEATURE_")
            || key.starts_with("CARGO_CFG_")
            || key.starts_with("CARGO_ENCODED_RUSTFLAGS")
            || key.starts_with("CARGO_BUILD_")
            || matches!(
                key.as_str(),
                "RUSTFLAGS"
                    | "CARGO_TARGET_DIR"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "CARGO_MAKEFLAGS"
                    | "CARGO_LLVM_COV"
            )
        {
            cmd.env_remove(&key);
        }
    }
    let output = cmd.output().unwrap_or_else(|e| panic!("cannot run {cargo}: {e}"));
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains(target)
            && (stderr.contains("target may not be installed")
                || stderr.contains("can't find crate for `core`")
                || stderr.contains("can't find crate for `std`"))
        {
            panic!("\n\nwfetch: the {target} target is missing. Add it with:\n\n    rustup target add {target}\n\n");
        }
        panic!("building the guests for {target} failed:\n{stderr}");
    }
}

/// Make a component of the core module `core` (its WIT world is embedded
/// by wit-bindgen), next to it as `<stem>.component.wasm`, and return
/// that path. Written only when the bytes change, so that an unchanged
/// guest does not rebuild the host.
fn componentize(core: &Path) -> PathBuf {
    let module = std::fs::read(core).unwrap_or_else(|e| panic!("cannot read {}: {e}", core.display()));
    let component = wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .and_then(|mut encoder| encoder.encode())
        .unwrap_or_else(|e| panic!("cannot make a component of {}: {e:#}", core.display()));
    let out = core.with_extension("component.wasm");
    if std::fs::read(&out).ok().as_deref() != Some(&component[..]) {
        std::fs::write(&out, &component).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
    }
    out
}

/// `wfetch --version` names the default guest's version and wasmtime's:
/// WFETCH_GUEST_VERSION from guest/http/Cargo.toml, WFETCH_WASMTIME_VERSION
/// from the root Cargo.lock.
fn emit_versions(root: &Path) {
    let manifest = root.join("guest").join("http").join("Cargo.toml");
    let lock = root.join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", manifest.display());
    println!("cargo:rerun-if-changed={}", lock.display());
    let version_after = |text: &str, marker: &str| -> Option<String> {
        let rest = &text[text.find(marker)? + marker.len()..];
        let line = rest.lines().find(|l| l.trim_start().starts_with("version"))?;
        Some(line.split('"').nth(1)?.to_string())
    };
    let guest = std::fs::read_to_string(&manifest)
        .ok()
        .and_then(|t| version_after(&t, "[package]"))
        .unwrap_or_else(|| "unknown".into());
    let wasmtime = std::fs::read_to_string(&lock)
        .ok()
        .and_then(|t| version_after(&t, "name = \"wasmtime\"\n"))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=WFETCH_GUEST_VERSION={guest}");
    println!("cargo:rustc-env=WFETCH_WASMTIME_VERSION={wasmtime}");
}

/// Rebuild when any source the guest was built from changes.
fn rerun_from_dep_info(dep_file: &Path) {
    let Ok(text) = std::fs::read_to_string(dep_file) else {
        return;
    };
    for line in text.lines() {
        let Some((_, deps)) = line.split_once(": ") else {
            continue;
        };
        let mut path = String::new();
        let mut chars = deps.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&' ') => {
                    path.push(' ');
                    chars.next();
                }
                ' ' => {
                    if !path.is_empty() && !path.contains("/.cargo/registry/") {
                        println!("cargo:rerun-if-changed={path}");
                    }
                    path.clear();
                }
                c => path.push(c),
            }
        }
        if !path.is_empty() && !path.contains("/.cargo/registry/") {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
