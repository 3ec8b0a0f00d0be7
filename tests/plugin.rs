//! The plugin platform: swapping guests (`--guest`), refusing components
//! that do not fit the world, `wfetch inspect`, and the precompiled cache.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::util::server::{sample_body, server};
use crate::util::{code, ok, tempdir, WFETCH};

/// Run wfetch with a private cache dir and debug logs of the engine.
fn wfetch_cached(cache: &Path, args: &[&str]) -> std::process::Output {
    Command::new(WFETCH)
        .args(args)
        .env("WFETCH_CACHE_DIR", cache)
        .env("WFETCH_LOG", "wfetch::engine=debug")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn entries(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "cwasm"));
    v.sort();
    v
}

#[test]
fn another_guest_file_runs_with_the_same_host() {
    let out = crate::util::wfetch(&["-s", "--guest", env!("WFETCH_GUEST_HTTP"), &server().url("/ok")]);
    ok(&out);
    assert!(out.stdout == sample_body());
}

#[test]
fn first_run_stores_native_code_and_second_run_loads_it() {
    let cache = tempdir();
    let url = server().url("/ok");
    let first = wfetch_cached(cache.path(), &["-s", &url]);
    ok(&first);
    assert!(String::from_utf8_lossy(&first.stderr).contains("cache Stored"));
    let stored = entries(cache.path());
    assert_eq!(stored.len(), 1, "one entry for the embedded guest");
    let before = std::fs::read(&stored[0]).unwrap();

    let second = wfetch_cached(cache.path(), &["-s", &url]);
    ok(&second);
    assert_eq!(second.stdout, sample_body());
    assert!(String::from_utf8_lossy(&second.stderr).contains("cache Hit"));
    assert_eq!(std::fs::read(&stored[0]).unwrap(), before, "a hit does not rewrite");

    // Another guest gets its own entry.
    let other = wfetch_cached(
        cache.path(),
        &["-s", "--guest", env!("WFETCH_GUEST_GOPHER"), "gopher://127.0.0.1:9/"],
    );
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("cache Stored"),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
    assert_eq!(entries(cache.path()).len(), 2);
}

#[test]
fn corrupt_or_truncated_entries_are_rebuilt_not_trusted() {
    let url = server().url("/ok");
    for damage in ["flip", "truncate", "garbage"] {
        let cache = tempdir();
        ok(&wfetch_cached(cache.path(), &["-s", &url]));
        let entry = entries(cache.path()).remove(0);
        let good = std::fs::read(&entry).unwrap();
        let mut bad = good.clone();
        match damage {
            "flip" => {
                let mid = bad.len() / 2;
                bad[mid] ^= 0xff;
            }
            "truncate" => bad.truncate(bad.len() / 3),
            _ => bad = b"not a cache entry".to_vec(),
        }
        std::fs::write(&entry, &bad).unwrap();
        let out = wfetch_cached(cache.path(), &["-s", &url]);
        ok(&out);
        assert_eq!(out.stdout, sample_body(), "{damage}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("cache Rebuilt"),
            "{damage}"
        );
        assert_eq!(std::fs::read(&entry).unwrap(), good, "{damage}: entry rewritten");
    }
}

#[test]
fn no_cache_flag_neither_reads_nor_writes() {
    let cache = tempdir();
    let out = wfetch_cached(cache.path(), &["-s", "--no-cache", &server().url("/ok")]);
    ok(&out);
    assert!(entries(cache.path()).is_empty());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("cache"));
}

/// Components that do not implement the world, written in WAT.
const MISFITS: &[(&str, &str, &str)] = &[
    ("empty", "(component)", "wfetch:fetch/fetcher"),
    (
        "unknown-import",
        r#"(component (import "wfetch:fetch/telepathy@0.1.0" (instance (export "read-mind" (func)))))"#,
        "wfetch:fetch/telepathy@0.1.0",
    ),
    (
        "other-version",
        r#"(component (instance $i) (export "wfetch:fetch/fetcher@0.2.0" (instance $i)))"#,
        "wfetch:fetch/fetcher",
    ),
];

#[test]
fn components_that_do_not_fit_are_refused_before_running() {
    let dir = tempdir();
    for (name, text, missing) in MISFITS {
        let path = dir.path().join(format!("{name}.wasm"));
        std::fs::write(&path, wat::parse_str(text).unwrap()).unwrap();
        let p = path.to_str().unwrap();
        let out = crate::util::wfetch(&["--no-cache", "--guest", p, &server().url("/ok")]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 1, "{name}: {err}");
        assert!(err.contains(missing), "{name}: {err:?} should name {missing}");
        let inspect = crate::util::wfetch(&["inspect", p]);
        assert_eq!(code(&inspect), 1, "{name}");
        let text = String::from_utf8_lossy(&inspect.stdout);
        assert!(text.contains("runs on this host: no"), "{name}: {text}");
        assert!(text.contains(missing), "{name}: {text}");
    }
}

#[test]
fn inspect_describes_the_default_guest() {
    let out = crate::util::wfetch(&["inspect", env!("WFETCH_GUEST_HTTP")]);
    ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    let size = std::fs::metadata(env!("WFETCH_GUEST_HTTP")).unwrap().len();
    assert!(text.contains(&format!("({size} bytes)")), "{text}");
    assert!(
        text.contains("packages: ") && text.contains("wfetch:fetch@0.1.0"),
        "{text}"
    );
    assert!(text.contains("wfetch:fetch/fetcher@0.1.0: "), "{text}");
    assert!(text.contains("build-request, parse-response-head, fetch"), "{text}");
    assert!(text.contains("wfetch:fetch/streams@0.1.0: "), "{text}");
    assert!(text.contains("runs on this host: yes"), "{text}");
    // Built for wasm32-unknown-unknown: nothing of WASI to link per fetch.
    assert!(!text.contains("wasi:"), "the default guest imports no WASI: {text}");
}

#[test]
fn inspect_of_a_missing_file_is_a_clear_error() {
    let out = crate::util::wfetch(&["inspect", "/nonexistent.wasm"]);
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn the_guest_template_builds_and_runs() {
    // guest/template is built with the other guests; it passes the raw
    // response through.
    let out = crate::util::wfetch(&["-s", "--guest", env!("WFETCH_GUEST_TEMPLATE"), &server().url("/ok")]);
    ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(out.stdout.ends_with(&sample_body()));
    let req = server()
        .requests
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.starts_with(b"GET /ok HTTP/1.0\r\n"));
    assert!(req, "the template sends HTTP/1.0");
}
