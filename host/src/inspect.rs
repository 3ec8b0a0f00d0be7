//! `wfetch inspect FILE.wasm`: a component's world (exports, imports,
//! packages, size) and whether this host can run it.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;

use wasmtime::component::types::{ComponentExtern, ComponentItem};
use wasmtime::component::Component;

use crate::engine::Runtime;
use crate::Error;

/// What `inspect` found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The component's size in bytes.
    pub size: usize,
    /// Export names with the functions each instance exports.
    pub exports: Vec<(String, Vec<String>)>,
    /// Import names with the functions each instance imports.
    pub imports: Vec<(String, Vec<String>)>,
    /// `namespace:name@version` of every interface named.
    pub packages: BTreeSet<String>,
    /// Ok, or why this host refuses it.
    pub runnable: Result<(), String>,
}

/// Inspect a component.
pub fn inspect(runtime: &Arc<Runtime>, name: &str, wasm: &[u8]) -> Result<Report, Error> {
    let engine = runtime.engine();
    let component = Component::new(engine, wasm).map_err(|e| Error::Guest {
        name: name.to_string(),
        why: format!("not a valid component: {e:#}"),
    })?;
    let ty = component.component_type();
    let items = |it: &mut dyn Iterator<Item = (&str, ComponentExtern<'_>)>| -> Vec<(String, Vec<String>)> {
        it.map(|(n, item)| {
            let members = match item.ty {
                ComponentItem::ComponentInstance(i) => i.exports(engine).map(|(m, _)| m.to_string()).collect(),
                _ => Vec::new(),
            };
            (n.to_string(), members)
        })
        .collect()
    };
    let exports = items(&mut ty.exports(engine));
    let imports = items(&mut ty.imports(engine));
    let packages = exports
        .iter()
        .chain(imports.iter())
        .filter_map(|(n, _)| package_of(n))
        .collect();
    let runnable = runtime.load(name, wasm).map(|_| ()).map_err(|e| match e {
        Error::Guest { why, .. } => why,
        other => other.to_string(),
    });
    Ok(Report {
        size: wasm.len(),
        exports,
        imports,
        packages,
        runnable,
    })
}

/// "wasi:cli/environment@0.2.6" -> "wasi:cli@0.2.6".
fn package_of(name: &str) -> Option<String> {
    let (pkg, rest) = name.split_once('/')?;
    let version = rest.split_once('@').map(|(_, v)| format!("@{v}")).unwrap_or_default();
    Some(format!("{pkg}{version}"))
}

impl Report {
    /// The human-readable form printed by `wfetch inspect`.
    pub fn render(&self, file: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "file: {file} ({} bytes)", self.size);
        let _ = writeln!(
            out,
            "packages: {}",
            self.packages.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        for (title, list) in [("exports", &self.exports), ("imports", &self.imports)] {
            let _ = writeln!(out, "{title}:");
            for (name, members) in list {
                if members.is_empty() {
                    let _ = writeln!(out, "  {name}");
                } else {
                    let _ = writeln!(out, "  {name}: {}", members.join(", "));
                }
            }
        }
        match &self.runnable {
            Ok(()) => {
                let _ = writeln!(out, "runs on this host: yes (wfetch:fetch/fetch-guest)");
            }
            Err(why) => {
                let _ = writeln!(out, "runs on this host: no: {why}");
            }
        }
        out
    }
}
