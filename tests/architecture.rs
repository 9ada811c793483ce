//! No two files in `src/` import each other (issue 23): dependencies between files point one
//! way, so a parent module declares, re-exports and dispatches, and what its children share
//! lives in a sibling file they import (`cli/error.rs`, `engine/queue.rs`), never in the
//! parent. New method families (`ode/sde/`, `ode/stiff/`, `ode/events/`) keep this shape
//! because this test reads every file under `src/` on each run.
//!
//! What counts as a reference from file A to file B (a plain text scan, no parser):
//! - a path that starts with `crate::`, `super::` or `self::`, anywhere in A's text (`use`
//!   lines, expressions, doc links), resolved the way rustc resolves it and then cut back to
//!   the longest prefix that is a file: in `src/cli/fit.rs`, `super::error::CliError` names
//!   `src/cli/error.rs` and `super::CliError` names `src/cli/mod.rs`;
//! - each name in a group, `use super::{a, b::C}` (up to the first `}`), taken as
//!   `super::a`, `super::b` and `super::C`;
//! - `child::x` in a file that declares `mod child;` (a parent calling its child).
//!
//! A file's own unit tests (from a line `#[cfg(test)]` followed by a line starting
//! `mod tests`, to the end of the file) do not count, and neither does the crate root
//! (`lib.rs`): everything may use the top-level re-exports. `foo.rs` and `foo/mod.rs` are
//! both the module `foo`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A module's path from the crate root: `src/cli/bench/ode.rs` is `["cli", "bench", "ode"]`.
type ModPath = Vec<String>;

fn module_of(relative: &str) -> ModPath {
    let mut segs: ModPath = relative
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if matches!(
        segs.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        segs.pop();
    }
    segs
}

/// The file (as a module path) that `path`, written in module `from`, points into.
fn resolve(from: &[String], path: &[&str], files: &BTreeSet<ModPath>) -> Option<ModPath> {
    let mut full: ModPath = from.to_vec();
    let mut segs = path;
    if segs.first() == Some(&"crate") {
        full.clear();
        segs = &segs[1..];
    } else {
        while let Some(&first) = segs.first() {
            match first {
                "super" => {
                    full.pop();
                }
                "self" => {}
                _ => break,
            }
            segs = &segs[1..];
        }
    }
    full.extend(segs.iter().map(|s| s.to_string()));
    // The longest prefix that is a file; never the crate root.
    (1..=full.len())
        .rev()
        .map(|k| full[..k].to_vec())
        .find(|prefix| files.contains(prefix))
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The identifier starting at `at`, if one does.
fn ident_at(text: &[u8], at: usize) -> Option<&str> {
    let first = *text.get(at)?;
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return None;
    }
    let end = (at..text.len())
        .find(|&i| !is_word(text[i]))
        .unwrap_or(text.len());
    std::str::from_utf8(&text[at..end]).ok()
}

/// Every `crate::`/`super::`/`self::` path in `text`, with each member of a `::{...}` group
/// as a path of its own.
fn rooted_paths(text: &str) -> Vec<Vec<&str>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let at_word_start = i == 0 || !is_word(bytes[i - 1]);
        let Some(word) = ident_at(bytes, i).filter(|_| at_word_start) else {
            i += 1;
            continue;
        };
        let mut end = i + word.len();
        if !matches!(word, "crate" | "super" | "self") {
            i = end;
            continue;
        }
        let mut path = vec![word];
        while bytes[end..].starts_with(b"::") {
            let Some(seg) = ident_at(bytes, end + 2) else {
                break;
            };
            path.push(seg);
            end += 2 + seg.len();
        }
        if path.len() > 1 {
            found.push(path.clone());
        }
        if bytes[end..].starts_with(b"::{")
            && let Some(close) = text[end..].find('}')
        {
            let group = &bytes[end + 3..end + close];
            let mut j = 0;
            while j < group.len() {
                match ident_at(group, j).filter(|_| j == 0 || !is_word(group[j - 1])) {
                    Some(item) => {
                        let mut member = path.clone();
                        member.push(item);
                        found.push(member);
                        j += item.len();
                    }
                    None => j += 1,
                }
            }
        }
        i = end;
    }
    found
}

/// The child modules a file declares without a body: `mod x;`, `pub mod x;`, `pub(crate) mod x;`.
fn declared_children(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|line| {
            let mut rest = line.trim_start();
            if let Some(after) = rest.strip_prefix("pub") {
                rest = match after.strip_prefix('(') {
                    Some(scope) => {
                        let (name, after) = scope.split_once(')')?;
                        if name.is_empty() || !name.bytes().all(|c| c.is_ascii_lowercase()) {
                            return None;
                        }
                        after
                    }
                    None => after,
                };
                if !rest.starts_with(char::is_whitespace) {
                    return None;
                }
                rest = rest.trim_start();
            }
            let rest = rest.strip_prefix("mod")?;
            if !rest.starts_with(char::is_whitespace) {
                return None;
            }
            let rest = rest.trim_start();
            let name = ident_at(rest.as_bytes(), 0)?;
            rest[name.len()..]
                .trim_start()
                .starts_with(';')
                .then_some(name)
        })
        .collect()
}

/// Whether `text` says `child::` other than as the tail of a longer path or name.
fn names_child(text: &str, child: &str) -> bool {
    let needle = format!("{child}::");
    text.match_indices(&needle).any(|(at, _)| {
        at == 0 || !(is_word(text.as_bytes()[at - 1]) || text.as_bytes()[at - 1] == b':')
    })
}

/// `text` without its unit-test module.
fn without_tests(text: &str) -> &str {
    let mut offset = 0;
    let mut lines = text.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        if line.trim_end() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.starts_with("mod tests"))
        {
            return &text[..offset];
        }
        offset += line.len();
    }
    text
}

/// Pairs of files that reference each other, given each file's path under `src/` (with `/`
/// separators) and its text.
fn mutual_imports(sources: &[(String, String)]) -> Vec<(String, String)> {
    let files: BTreeMap<ModPath, &str> = sources
        .iter()
        .map(|(path, _)| (module_of(path), path.as_str()))
        .collect();
    let modules: BTreeSet<ModPath> = files.keys().cloned().collect();
    let mut edges: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (path, text) in sources {
        let from = module_of(path);
        let text = without_tests(text);
        let mut targets: BTreeSet<ModPath> = rooted_paths(text)
            .iter()
            .filter_map(|p| resolve(&from, p, &modules))
            .collect();
        for child in declared_children(text) {
            if names_child(text, child)
                && let Some(target) = resolve(&from, &["self", child], &modules)
            {
                targets.insert(target);
            }
        }
        targets.remove(&from);
        edges.entry(from).or_default().extend(targets);
    }
    let mut pairs = Vec::new();
    for (a, targets) in &edges {
        for b in targets {
            if a < b && edges.get(b).is_some_and(|back| back.contains(a)) {
                pairs.push((files[a].to_string(), files[b].to_string()));
            }
        }
    }
    pairs
}

fn read_tree(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_tree(root, &path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            let relative = path.strip_prefix(root).expect("under src/");
            let relative = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            out.push((relative, text));
        }
    }
}

#[test]
fn no_two_files_in_src_import_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = Vec::new();
    read_tree(&src, &src, &mut sources);
    assert!(
        sources.len() > 50,
        "found only {} files under {}",
        sources.len(),
        src.display()
    );
    let pairs = mutual_imports(&sources);
    let listed: Vec<String> = pairs
        .iter()
        .map(|(a, b)| format!("  src/{a} <-> src/{b}"))
        .collect();
    assert!(
        pairs.is_empty(),
        "{} pairs of files in src/ import each other; move what both need into a sibling \
         file that each imports (see tests/architecture.rs for what counts):\n{}",
        pairs.len(),
        listed.join("\n")
    );
}

fn tree(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

#[test]
fn a_child_that_imports_its_parent_is_found() {
    let sources = tree(&[
        ("lib.rs", "pub mod shop;\n"),
        (
            "shop/mod.rs",
            "mod till;\npub struct Receipt;\npub fn sell() { till::ring() }\n",
        ),
        ("shop/till.rs", "use super::Receipt;\npub fn ring() {}\n"),
    ]);
    assert_eq!(
        mutual_imports(&sources),
        vec![("shop/mod.rs".to_string(), "shop/till.rs".to_string())]
    );
}

#[test]
fn groups_crate_paths_and_file_modules_count() {
    // `bench.rs` is the parent of `bench/ode.rs`; the child names it inside a group.
    let sources = tree(&[
        ("cli/mod.rs", "mod bench;\n"),
        ("cli/bench.rs", "mod ode;\nfn run() { ode::run() }\n"),
        ("cli/bench/ode.rs", "use super::{Row, median};\n"),
        // Two siblings through crate paths, one of them in a doc link.
        ("a.rs", "//! See [`crate::b::B`].\npub struct A;\n"),
        ("b.rs", "use crate::a::A;\npub struct B;\n"),
    ]);
    assert_eq!(
        mutual_imports(&sources),
        vec![
            ("a.rs".to_string(), "b.rs".to_string()),
            ("cli/bench.rs".to_string(), "cli/bench/ode.rs".to_string()),
        ]
    );
}

#[test]
fn a_shared_sibling_and_unit_tests_are_not_cycles() {
    let sources = tree(&[
        (
            "shop/mod.rs",
            "mod receipt;\nmod till;\npub use receipt::Receipt;\npub fn sell() { till::ring() }\n",
        ),
        ("shop/receipt.rs", "pub struct Receipt;\n"),
        (
            "shop/till.rs",
            "use super::receipt::Receipt;\npub fn ring() {}\n\n#[cfg(test)]\nmod tests {\n    \
             use super::super::sell;\n}\n",
        ),
    ]);
    assert_eq!(mutual_imports(&sources), vec![]);
}
