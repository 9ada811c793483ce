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
}
