//! The committed man pages and completions match the clap definitions.

#[path = "../tools/docs.rs"]
#[allow(dead_code)]
mod docs;

#[test]
fn committed_man_pages_and_completions_are_up_to_date() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for (rel, data) in docs::files() {
        match std::fs::read(root.join(&rel)) {
            Ok(committed) if committed == data => {}
            _ => stale.push(rel),
        }
    }
    assert!(
        stale.is_empty(),
        "stale or missing (run `cargo run --example generate-docs`): {stale:?}"
    );
}

fn shell_ok(shell: &str) -> bool {
    std::process::Command::new(shell)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn completions_load_in_bash_and_fish() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in [
        "dbackup-stage",
        "dbackup-find",
        "dbackup-lost",
        "dbackup-burn",
        "dbackup-mkiso",
    ] {
        let script = root.join("completions/bash").join(name);
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source '{}' && complete -p {name}",
                script.display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "bash: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(name));
        if shell_ok("fish") {
            let script = root.join("completions/fish").join(format!("{name}.fish"));
            let out = std::process::Command::new("fish")
                .arg("-c")
                .arg(format!(
                    "source '{}'; complete -C '{name} --'",
                    script.display()
                ))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "fish: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("--help"),
                "fish completes {name}'s flags"
            );
        } else {
            eprintln!("SKIPPED: fish is not installed (CI installs it)");
        }
    }
}

#[test]
fn man_pages_render_every_section() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for page in docs::pages() {
        let name = page.command.get_name().to_string();
        let text = std::fs::read_to_string(root.join(format!("man/{name}.1"))).unwrap();
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "EXIT STATUS",
            "FILES",
            "EXAMPLES",
            "SEE ALSO",
        ] {
            assert!(
                text.contains(&format!(".SH {section}"))
                    || text.contains(&format!(".SH \"{section}\"")),
                "{name}: {section}"
            );
        }
    }
    // Every shipped page, the subcommands' included, renders without a warning.
    if shell_ok("groff") || std::path::Path::new("/usr/bin/groff").exists() {
        for page in shipped_man_pages() {
            let out = std::process::Command::new("groff")
                .args(["-ww", "-man", "-Tutf8"])
                .arg(root.join("man").join(&page))
                .output()
                .unwrap();
            assert!(out.status.success());
            assert!(
                out.stderr.is_empty(),
                "{page}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    } else {
        eprintln!("SKIPPED: groff is not installed (CI installs it)");
    }
}

/// The README's table of fault points lists every point with exactly the
/// kinds the suite injects there.
#[test]
fn the_readme_lists_every_fault_point_and_its_kinds() {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let rows: Vec<&str> = readme
        .lines()
        .filter(|l| l.starts_with("| `") && l.contains("::"))
        .collect();
    assert_eq!(rows.len(), dbackup::fault::POINTS.len(), "{rows:#?}");
    for p in dbackup::fault::POINTS {
        let row = rows
            .iter()
            .find(|r| r.starts_with(&format!("| `{}` |", p.name)))
            .unwrap_or_else(|| panic!("{} is not in the README's table", p.name));
        let kinds: Vec<&str> = p.kinds.iter().map(|k| k.name()).collect();
        assert!(
            row.trim_end()
                .ends_with(&format!("| {} |", kinds.join(", "))),
            "{row}"
        );
    }
    let total: usize = dbackup::fault::POINTS.iter().map(|p| p.kinds.len()).sum();
    assert!(
        readme.contains(&format!(
            "{} points x 3 kinds, {total} injected faults",
            dbackup::fault::POINTS.len()
        )),
        "the README's count of injected faults"
    );
}

fn shipped_man_pages() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(root.join("man"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `man/` holds the generated pages and nothing else: a page left from a
/// subcommand that is gone is stale too.
#[test]
fn man_holds_exactly_the_generated_pages() {
    let mut generated: Vec<String> = docs::files()
        .into_iter()
        .filter_map(|(rel, _)| rel.strip_prefix("man/").map(str::to_string))
        .collect();
    generated.sort();
    assert_eq!(shipped_man_pages(), generated);
}

/// Every `name(1)` a page refers to is shipped, or is a page of another
/// package the tools name (sqlite3, md5sum, xorriso).
#[test]
fn every_man_page_reference_is_shipped() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = shipped_man_pages();
    let external = ["sqlite3(1)", "md5sum(1)", "xorriso(1)"];
    let mut checked = 0;
    for page in &shipped {
        let text = std::fs::read_to_string(root.join("man").join(page))
            .unwrap()
            .replace("\\-", "-");
        let bytes = text.as_bytes();
        for (at, _) in text.match_indices("(1)") {
            let start = bytes[..at]
                .iter()
                .rposition(|b| !(b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_'))
                .map_or(0, |p| p + 1);
            let reference = &text[start..at + 3];
            checked += 1;
            if external.contains(&reference) {
                continue;
            }
            let file = format!("{}.1", &reference[..reference.len() - 3]);
            assert!(
                shipped.contains(&file),
                "{page} refers to {reference}, which is not shipped"
            );
        }
    }
    assert!(checked > 50, "references found: {checked}");
}

/// Every option of every command and subcommand is in a shipped page.
#[test]
fn every_option_is_in_a_man_page() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    fn walk(cmd: &clap::Command, page: String, root: &std::path::Path) {
        let text = std::fs::read_to_string(root.join("man").join(format!("{page}.1")))
            .unwrap_or_else(|e| panic!("{page}.1: {e}"));
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                let flag = format!("\\-\\-{}", long.replace('-', "\\-"));
                assert!(text.contains(&flag), "{page}.1 lacks --{long}");
            }
        }
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            walk(sub, format!("{page}-{}", sub.get_name()), root);
        }
    }
    for page in docs::pages() {
        let cmd = page.command.clone();
        let name = cmd.get_name().to_string();
        walk(&cmd, name, root);
    }
    let stage_init = std::fs::read_to_string(root.join("man/dbackup-stage-init.1")).unwrap();
    for flag in ["disc\\-size", "exclude", "on\\-disc\\-ready"] {
        assert!(stage_init.contains(&format!("\\-\\-{flag}")), "{flag}");
    }
}

/// The README's exit-code table is the shared contract, and each tool's
/// page lists exactly the codes it returns.
#[test]
fn exit_codes_are_one_contract() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = &readme[readme.find("## Exit codes").unwrap()..];
    let section = &section[..section[3..].find("\n## ").unwrap()];
    let rows: Vec<&str> = section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| code"))
        .collect();
    let want: Vec<String> = dbackup::exit::CONTRACT
        .iter()
        .map(|s| format!("| {} | {} |", s.code, s.describe(None)))
        .collect();
    assert_eq!(rows, want);
    for page in docs::pages() {
        let name = page.command.get_name().to_string();
        let short = name.trim_start_matches("dbackup-");
        let text = std::fs::read_to_string(root.join(format!("man/{name}.1"))).unwrap();
        let exit = &text[text.find(".SH \"EXIT STATUS\"").unwrap()..];
        let exit = &exit[..exit[4..].find(".SH").unwrap() + 4];
        for s in dbackup::exit::CONTRACT {
            let listed = exit.contains(&format!("\\fB{}\\fR", s.code));
            assert_eq!(listed, s.applies_to(short), "{name}: {}", s.code);
        }
    }
}
