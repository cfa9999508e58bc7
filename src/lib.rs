//! csmport moves customer data in and out of Atlassian Customer Service Management in bulk.
//!
//! `cmd` has one file per subcommand and turns arguments into options; `engine` runs an import
//! stage by stage (intake → plan → journal → send → track → reconcile → report); `site` talks to
//! CSM (`site::api` holds the wire types shared with `sandbox`, the local CSM emulator); `read`
//! turns files into rows; `error` maps failures to exit codes.

pub mod cli;
pub mod cmd;
pub mod config;
pub mod crm;
pub mod engine;
pub mod error;
pub mod export;
pub mod fsx;
pub mod kind;
pub mod kinds;
pub mod map;
pub mod mapfile;
pub mod options;
pub mod profile;
pub use csmport_read as read;
pub mod row;
pub mod say;
pub use csmport_sandbox as sandbox;
pub mod schema;
pub mod site;
pub mod validate;

/// The layers, lowest first: a module uses only its own layer and those below (ARCHITECTURE.md,
/// "Layers"). The test below reads every source file and fails on an import that points up.
#[cfg(test)]
mod layers {
    /// The layer of a module path (`site/api`, `engine/run`, `kinds`, …).
    fn layer(module: &str) -> u8 {
        let top = module.split('/').next().unwrap_or("");
        match top {
            // Crates of their own (`crates/`), re-exported here: the compiler keeps them below
            // everything in this one, and keeps them from pointing up.
            _ if module.starts_with("site/api") => 0,
            "read" | "sandbox" => 0,
            "kind" | "fsx" | "say" | "errln" | "outln" => 0,
            "row" => 2,
            "validate" | "schema" | "map" | "mapfile" => 3,
            "site" | "error" => 4,
            "options" | "export" => 5,
            "kinds" => 6,
            "engine" => 7,
            // cmd, cli, main, config, profile, crm, lib: the commands and their glue.
            _ => 9,
        }
    }

    /// The modules `text` names through `crate::` (`site` with its next segment).
    fn uses(text: &str) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        for (at, _) in text.match_indices("crate::") {
            let rest = &text[at + "crate::".len()..];
            let seg = |s: &str| -> String {
                s.chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                    .collect()
            };
            let first = seg(rest);
            let mut target = first.clone();
            if first == "site"
                && let Some(next) = rest[first.len()..].strip_prefix("::")
            {
                target = format!("site/{}", seg(next));
            }
            let line = text[..at].matches('\n').count() + 1;
            out.push((target, line));
        }
        out
    }

    #[test]
    fn every_import_points_down() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![root.clone()];
        let mut up = Vec::new();
        let mut files = 0;
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                files += 1;
                let rel = path.strip_prefix(&root).unwrap().with_extension("");
                let mut module = rel.to_string_lossy().replace('\\', "/");
                if let Some(m) = module.strip_suffix("/mod") {
                    module = m.to_string();
                }
                let text = std::fs::read_to_string(&path).unwrap();
                // Tests may reach anywhere.
                let code = text.split("#[cfg(test)]").next().unwrap_or("");
                for (target, line) in uses(code) {
                    if layer(&target) > layer(&module) {
                        up.push(format!(
                            "src/{}.rs:{line}: {module} uses {target}",
                            rel.display()
                        ));
                    }
                }
            }
        }
        assert!(files > 50, "read {files} files");
        assert!(
            up.is_empty(),
            "imports that point up a layer:\n{}",
            up.join("\n")
        );
        // No command imports another: what several share is in `cmd/mod.rs` or `cmd/output.rs`.
        let cmd = root.join("cmd");
        let commands: Vec<String> = std::fs::read_dir(&cmd)
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                let stem = p.file_stem()?.to_str()?.to_string();
                (stem != "mod" && stem != "output").then_some(stem)
            })
            .collect();
        for c in &commands {
            let text = std::fs::read_to_string(cmd.join(format!("{c}.rs"))).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for other in commands.iter().filter(|o| *o != c) {
                for pattern in [format!("super::{other}::"), format!("crate::cmd::{other}")] {
                    assert!(
                        !code.contains(&pattern),
                        "src/cmd/{c}.rs uses the command {other} ({pattern})"
                    );
                }
            }
        }
        // Commands are glue: each turns its arguments into options and calls one operation.
        for c in &commands {
            let lines = std::fs::read_to_string(cmd.join(format!("{c}.rs")))
                .unwrap()
                .lines()
                .count();
            assert!(
                lines <= 220,
                "src/cmd/{c}.rs has {lines} lines: its work belongs in the engine, export or site"
            );
        }
        // A kind is given only what it decides by (`KindOptions`), never the run's options.
        for entry in std::fs::read_dir(root.join("kinds")).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                !text.contains("ImportOptions"),
                "{} names ImportOptions: a kind gets KindOptions",
                path.display()
            );
        }
        // A site and its client are set up in one place (`Site::connect`).
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("site/mod.rs")
                    && !path.starts_with(root.join("site/client"))
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let code = text.split("#[cfg(test)]").next().unwrap_or("");
                    assert!(
                        !code.contains("Client::new("),
                        "{} sets a client up itself: use Site::connect",
                        path.display()
                    );
                }
            }
        }
        // The checker itself: an upward use is caught, a downward one is not.
        assert!(layer("kinds") > layer("site/refs") && layer("site/refs") > layer("site/api"));
        assert_eq!(
            uses("use crate::site::refs::x; crate::engine::run"),
            [("site/refs".to_string(), 1), ("engine".to_string(), 1)]
        );
    }
}
