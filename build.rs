//! Embeds `shaders/**/*.wgsl` and `systems/*.toml` into the binary, so the built-in catalog
//! and kernels need no files at run time, while staying plain data in the repository.

use std::fmt::Write;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

fn table(name: &str, root: &Path, ext: &str) -> String {
    let mut files = Vec::new();
    collect(root, ext, &mut files);
    files.sort();
    let mut s = format!("pub static {name}: &[(&str, &str)] = &[\n");
    for f in files {
        let rel = f
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let _ = writeln!(
            s,
            "    ({rel:?}, include_str!({:?})),",
            f.display().to_string()
        );
    }
    s.push_str("];\n");
    s
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("embedded.rs");
    let code = table("SHADERS", &root.join("shaders"), "wgsl")
        + &table("SYSTEMS", &root.join("systems"), "toml");
    std::fs::write(out, code).unwrap();
    println!("cargo:rerun-if-changed=shaders");
    println!("cargo:rerun-if-changed=systems");
    commit(&root);
    dependency_versions(&root);
}

/// The wgpu and naga versions the lock file pins, for benchmark reports
/// (`PHASEFLOW_WGPU_VERSION`, `PHASEFLOW_NAGA_VERSION`).
fn dependency_versions(root: &Path) {
    let lock = root.join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    for name in ["wgpu", "naga"] {
        let entry = format!("name = \"{name}\"\nversion = \"");
        let version = text
            .find(&entry)
            .map(|at| &text[at + entry.len()..])
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("unknown");
        println!(
            "cargo:rustc-env=PHASEFLOW_{}_VERSION={version}",
            name.to_uppercase()
        );
    }
}

/// The git commit the binary is built from, for benchmark reports (`PHASEFLOW_COMMIT`;
/// "unknown" outside a git checkout). Rebuilt when HEAD or the branch it names moves.
fn commit(root: &Path) {
    let git = root.join(".git");
    if let Ok(head) = std::fs::read_to_string(git.join("HEAD")) {
        println!("cargo:rerun-if-changed={}", git.join("HEAD").display());
        // A branch lives in its own file or, packed, in packed-refs; a missing file would
        // make cargo rerun this script on every build.
        if let Some(branch) = head.trim().strip_prefix("ref: ") {
            let loose = git.join(branch);
            let file = if loose.exists() {
                loose
            } else {
                git.join("packed-refs")
            };
            if file.exists() {
                println!("cargo:rerun-if-changed={}", file.display());
            }
        }
    }
    let hash = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PHASEFLOW_COMMIT={hash}");
}
