//! Compiles the board profiles in (`boards/*.toml` at the workspace root) and records what the
//! build is for.
//!
//! - `$OUT_DIR/boards.rs`: `PROFILE_SOURCES`, every profile's name and text, sorted by name, for
//!   `src/board.rs`. Listing the directory here, rather than naming each file in the source,
//!   means a new profile needs no code change.
//! - `SHOAL_TARGET`: the target triple, for `shoal version`.
//! - `SHOAL_BOARD` (optional, set by `cargo xtask dist`): checked against the profiles, so a
//!   bundle can never carry a board name its binary does not know.

use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let boards = Path::new(&manifest).join("../../boards");
    println!("cargo:rerun-if-changed=build.rs");
    // A directory here makes cargo rerun when any file in it changes, appears or goes.
    println!("cargo:rerun-if-changed={}", boards.display());
    println!("cargo:rerun-if-env-changed=SHOAL_BOARD");

    let mut profiles: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(&boards)
        .unwrap_or_else(|e| panic!("cannot list the board profiles in {}: {e}", boards.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .map(|path| {
            let name = path.file_stem().and_then(|s| s.to_str()).expect("UTF-8 profile name").to_owned();
            let path = path.canonicalize().expect("profile path");
            (name, path)
        })
        .collect();
    profiles.sort();
    assert!(
        profiles.iter().any(|(name, _)| name == "generic"),
        "boards/generic.toml is missing: it is the default profile"
    );

    if let Ok(board) = std::env::var("SHOAL_BOARD") {
        let names: Vec<&str> = profiles.iter().map(|(name, _)| name.as_str()).collect();
        assert!(
            names.contains(&board.as_str()),
            "SHOAL_BOARD={board} names no profile in boards/; known boards: {}",
            names.join(", ")
        );
    }

    let mut source = String::from(
        "/// Every profile in `boards/`: its name (the file name) and its text, sorted by name.\n\
         const PROFILE_SOURCES: &[(&str, &str)] = &[\n",
    );
    for (name, path) in &profiles {
        source.push_str(&format!("    ({name:?}, include_str!({:?})),\n", path.display().to_string()));
    }
    source.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("boards.rs");
    std::fs::write(&out, source).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));

    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    println!("cargo:rustc-env=SHOAL_TARGET={target}");
}
