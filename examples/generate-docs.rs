//! Regenerates the man pages (`man/`) and shell completions
//! (`completions/`) from the clap definitions:
//! `cargo run --example generate-docs`.

#[path = "../tools/docs.rs"]
mod docs;

fn main() -> std::io::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    docs::write_all(root)?;
    eprintln!("man pages and completions written under {}", root.display());
    Ok(())
}
