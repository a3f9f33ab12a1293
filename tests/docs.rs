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
        if shell_ok("groff") || std::path::Path::new("/usr/bin/groff").exists() {
            let out = std::process::Command::new("groff")
                .args(["-ww", "-man", "-Tutf8"])
                .arg(root.join(format!("man/{name}.1")))
                .output()
                .unwrap();
            assert!(out.status.success());
            assert!(
                out.stderr.is_empty(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
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
