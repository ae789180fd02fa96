//! The layout rules of README.md's Architecture section, checked on the source itself, so a
//! change that breaks them fails here rather than in a reviewer's reading:
//!
//! - the top-level modules of `src/` form layers: a module imports only modules of lower
//!   layers (so there is no `use` cycle between them);
//! - HTTP server types (`axum` and its `http` re-export, `hyper`, `tower`) appear only in `src/http/`,
//!   the crate root and the simulators, which are HTTP servers by nature;
//! - SQL appears only in `src/store/`;
//! - every transaction starts through `store::begin`, which a dropped caller cannot leave
//!   open on a pooled connection;
//! - nothing in the repository points at documents outside it.
//!
//! Production code only: a module's `#[cfg(test)]` tail may use anything.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// Each top-level module of `src/` and its layer; a module may import only modules of a
/// strictly lower layer (or its own). A new top-level module must be placed here.
const LAYERS: &[(&str, u8)] = &[
    ("domain", 0),
    ("sandbox", 1),
    ("vendors", 2),
    ("store", 3),
    ("routing", 4),
    ("catalog", 5),
    ("cache", 6),
    ("config", 6),
    ("telemetry", 7),
    ("state", 8),
    ("ordering", 9),
    ("hints", 10),
    ("callbacks", 11),
    ("workers", 12),
    ("http", 13),
];

/// Files allowed to name HTTP server types outside `src/http/`.
fn may_use_http_types(rel: &str) -> bool {
    rel == "lib.rs"
        || rel == "main.rs"
        || rel.starts_with("http/")
        || rel.starts_with("sandbox/")
        || (rel.starts_with("vendors/") && rel.ends_with("/sim.rs"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's production code: comments removed, the `#[cfg(test)]` tail cut off.
fn production_code(text: &str) -> String {
    let mut out = String::new();
    let mut in_block_comment = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if !in_block_comment && trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        let mut code = line;
        if in_block_comment {
            match code.find("*/") {
                Some(end) => {
                    in_block_comment = false;
                    code = &code[end + 2..];
                }
                None => continue,
            }
        }
        if let Some(start) = code.find("/*") {
            in_block_comment = !code[start..].contains("*/");
            code = &code[..start];
        }
        if let Some(start) = code.find("//") {
            code = &code[..start];
        }
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// The top-level module a path under `src/` belongs to (`ordering/place.rs` → `ordering`).
fn top_module(rel: &str) -> &str {
    let first = rel.split('/').next().unwrap_or(rel);
    first.strip_suffix(".rs").unwrap_or(first)
}

/// Top-level modules named by `crate::…` paths, including inside `use crate::{a, b::c}`.
fn crate_imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Only the first segment of each top-level item of the group.
            let mut depth = 0usize;
            let mut item = String::new();
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        push_first_segment(&item, &mut found);
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(ch);
                }
            }
            push_first_segment(&item, &mut found);
        } else {
            push_first_segment(rest, &mut found);
        }
    }
    found
}

fn push_first_segment(path: &str, found: &mut BTreeSet<String>) {
    let name: String = path
        .trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    match name.as_str() {
        "" | "self" => {}
        // Re-exported at the crate root from `state`.
        "AppState" => {
            found.insert("state".into());
        }
        "build_app" | "serve" | "serve_with" => {
            found.insert("lib".into());
        }
        _ => {
            found.insert(name);
        }
    }
}

struct Source {
    rel: String,
    code: String,
}

fn sources() -> Vec<Source> {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let rel = path
                .strip_prefix(&src)
                .expect("under src")
                .to_string_lossy()
                .replace('\\', "/");
            let text = fs::read_to_string(&path).expect("utf-8 source");
            Source {
                rel,
                code: production_code(&text),
            }
        })
        .collect()
}

#[test]
fn top_level_modules_import_only_lower_layers() {
    let layer: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut violations = Vec::new();
    for s in sources() {
        let from = top_module(&s.rel);
        if from == "lib" || from == "main" {
            continue;
        }
        let Some(&from_layer) = layer.get(from) else {
            violations.push(format!(
                "src/{}: top-level module `{from}` is not in LAYERS",
                s.rel
            ));
            continue;
        };
        for to in crate_imports(&s.code) {
            if to == from {
                continue;
            }
            match layer.get(to.as_str()) {
                Some(&to_layer) if to_layer < from_layer => {}
                Some(&to_layer) => violations.push(format!(
                    "src/{}: `{from}` (layer {from_layer}) imports `{to}` (layer {to_layer})",
                    s.rel
                )),
                None => violations.push(format!(
                    "src/{}: `{from}` imports `crate::{to}`, which is not a layered module",
                    s.rel
                )),
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn http_server_types_stay_in_the_http_layer() {
    const NAMES: &[&str] = &[
        "axum::",
        "hyper::",
        "hyper_util::",
        "tower::",
        "tower_http::",
    ];
    let mut violations = Vec::new();
    for s in sources() {
        if may_use_http_types(&s.rel) {
            continue;
        }
        for line in s.code.lines() {
            if NAMES.iter().any(|n| line.contains(n)) {
                violations.push(format!("src/{}: {}", s.rel, line.trim()));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn sql_stays_in_the_store() {
    const NAMES: &[&str] = &[
        "sqlx::query",
        "sqlx::query_as",
        "sqlx::query_scalar",
        "query!(",
        "query_as!(",
    ];
    let mut violations = Vec::new();
    for s in sources() {
        if s.rel.starts_with("store/") {
            continue;
        }
        for line in s.code.lines() {
            if NAMES.iter().any(|n| line.contains(n)) {
                violations.push(format!("src/{}: {}", s.rel, line.trim()));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn every_transaction_starts_through_the_cancel_safe_begin() {
    let mut violations = Vec::new();
    for s in sources() {
        for line in s.code.lines() {
            let plain = line.contains(".begin()")
                && !(s.rel == "store/mod.rs" && line.contains("tokio::spawn"));
            if plain {
                violations.push(format!("src/{}: {}", s.rel, line.trim()));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

/// The repository stands on its own: no file refers to the documents it was built from.
#[test]
fn nothing_points_outside_the_repository() {
    let root = root();
    let mut files = Vec::new();
    for dir in ["src", "tests", "bench", "migrations", "openapi", ".ci"] {
        let path = root.join(dir);
        if path.is_dir() {
            collect(&path, &mut files);
        }
    }
    for file in [
        "README.md",
        "CONTRIBUTING.md",
        "Dockerfile",
        "docker-compose.yml",
    ] {
        let path = root.join(file);
        if path.is_file() {
            files.push(path);
        }
    }
    let this_file = root.join("tests/architecture.rs");
    let needles = ["shared/", "seeds/"];
    let mut violations = Vec::new();
    for path in files {
        if path == this_file {
            continue;
        }
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            if needles.iter().any(|needle| line.contains(needle)) {
                violations.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn the_import_scanner_reads_grouped_and_inline_paths() {
    let code = "use crate::{a::b, c::{d, e}, AppState};\nfn f() { crate::g::h(); }";
    let found: Vec<String> = crate_imports(code).into_iter().collect();
    assert_eq!(found, ["a", "c", "g", "state"]);
    let code = production_code(
        "use crate::x; // crate::y\n/* crate::z */\n#[cfg(test)]\nmod tests { use crate::w; }",
    );
    let found: Vec<String> = crate_imports(&code).into_iter().collect();
    assert_eq!(found, ["x"]);
}
