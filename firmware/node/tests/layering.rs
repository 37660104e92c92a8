//! The daemon's modules stand on floors (docs/ARCHITECTURE.md, "The daemon's floors"): a module
//! may name only modules on floors below its own, so no import circle can form. This test reads
//! every `crate::<module>` path in `src/` (outside comments and `#[cfg(test)]` code) and fails
//! on a path that points sideways or up, or on a module that has no floor yet.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every top-level module of the crate and its floor, bottom first.
const FLOORS: &[(&str, u32)] = &[
    // Vocabulary: what every other floor speaks. `model`, `admin` and `lineup` are the
    // shoal-model crate, re-exported: a crate boundary, so they cannot name the daemon at all.
    ("model", 1),
    ("keys", 1),
    ("logging", 1),
    ("admin", 1),
    ("board", 1),
    // The lineup: channels with their parsed sources, inputs, origin URLs, the relay policy.
    ("lineup", 2),
    // The config file, into the vocabulary and the lineup.
    ("config", 3),
    // The HTTP client, and what a source runs on: origins, broadcast inputs, the test card.
    ("origin", 4),
    ("testcard", 4),
    ("broadcast", 5),
    ("guide", 5),
    ("discovery", 5),
    // The disk tier (uses origin to refill a segment no peer has).
    ("vod", 6),
    // The supervisor that runs a source per ingested channel.
    ("source", 7),
    // The swarm driver and the HTTP server: never each other.
    ("swarm", 8),
    ("http", 8),
    // The app: the status LED (asks the driver), the operator commands, what the HTTP server
    // sees of the box, one box wired, and the commands that start boxes.
    ("status_led", 9),
    ("status_cli", 9),
    ("prefill_cli", 10),
    ("backend", 10),
    ("app", 11),
    ("daemon", 12),
    ("demo", 12),
    ("cli", 12),
];

fn floor(module: &str) -> Option<u32> {
    FLOORS.iter().find(|(m, _)| *m == module).map(|&(_, f)| f)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/http/tv.rs` → `http`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("under src/");
    let first = relative.components().next().expect("a path").as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_owned()
}

/// The modules a file names with `crate::x`, `crate::{x, y::z}`, outside comments and tests.
fn named_modules(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("#[cfg(test)]") {
            break;
        }
        if code.starts_with("//") {
            continue;
        }
        let code = code.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name: String =
                        item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if !name.is_empty() {
                        found.push((number + 1, name));
                    }
                }
            } else {
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    found.push((number + 1, name));
                }
            }
        }
    }
    found
}

#[test]
fn every_module_names_only_modules_on_lower_floors() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    let mut edges: BTreeMap<(String, String), usize> = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(own) = floor(&module) else {
            wrong.push(format!("{}: module `{module}` has no floor in FLOORS", file.display()));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("readable");
        for (line, named) in named_modules(&text) {
            if named == module {
                continue;
            }
            *edges.entry((module.clone(), named.clone())).or_default() += 1;
            match floor(&named) {
                Some(theirs) if theirs < own => {}
                Some(theirs) => wrong.push(format!(
                    "{}:{line}: `{module}` (floor {own}) names `{named}` (floor {theirs})",
                    file.display()
                )),
                None => wrong.push(format!("{}:{line}: `{named}` has no floor in FLOORS", file.display())),
            }
        }
    }
    assert!(!edges.is_empty(), "no crate:: path found: the scan is broken");
    assert!(wrong.is_empty(), "imports against the floors:\n{}", wrong.join("\n"));
}

#[test]
fn the_scan_sees_grouped_and_inline_paths_and_skips_comments_and_tests() {
    let text = "use crate::{model::Window, lineup};\n// crate::http\nfn f() { crate::swarm::x(); }\n\
                #[cfg(test)]\nmod tests { use crate::daemon; }\n";
    let names: Vec<String> = named_modules(text).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["model", "lineup", "swarm"]);
}
