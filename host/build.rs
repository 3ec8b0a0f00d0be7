//! Builds the guest workspace (guest/) for wasm32-wasip2 with its own
//! target dir, so the default guest can be embedded in the host binary and
//! the test guests are at hand for the tests.

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

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let guest_ws = root.join("guest");
    let target_dir = env::var_os("WFETCH_GUEST_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target").join("guest"));

    println!("cargo:rerun-if-changed={}", guest_ws.join("Cargo.toml").display());
    println!("cargo:rerun-if-changed={}", guest_ws.join("Cargo.lock").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!("cargo:rerun-if-env-changed=WFETCH_GUEST_TARGET_DIR");

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&guest_ws)
        .args([
            "build",
            "--release",
            "--workspace",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
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
        if stderr.contains("wasm32-wasip2")
            && (stderr.contains("target may not be installed")
                || stderr.contains("can't find crate for `core`")
                || stderr.contains("can't find crate for `std`"))
        {
            panic!("\n\nwfetch: the wasm32-wasip2 target is missing. Add it with:\n\n    rustup target add wasm32-wasip2\n\n");
        }
        panic!("building the guests failed:\n{stderr}");
    }

    let out_dir = target_dir.join("wasm32-wasip2").join("release");
    for (i, (_, stem)) in GUESTS.iter().enumerate() {
        let wasm = out_dir.join(format!("{stem}.wasm"));
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
        }
        rerun_from_dep_info(&out_dir.join(format!("{stem}.d")));
    }
    emit_versions(&root);
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
