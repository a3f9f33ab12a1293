//! Error-correction data: dvdisaster RS03 for the preset disc sizes, RS02
//! sized for the medium for any other; a failure carries dvdisaster's
//! reason. Never leaves the image it was given under another name.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The dvdisaster binary, or a clear error: never a silent image without
/// the promised protection.
pub(super) fn ecc_tool() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("dvdisaster");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(Error::Invalid(
        "--ecc needs dvdisaster, which is not installed (e.g. apt-get install dvdisaster); no image was built"
            .into(),
    ))
}

/// The error-correction codec for a disc size and, for RS02, the size of
/// the augmented image in 2 KiB sectors. RS03 always fills the smallest
/// standard medium the image fits (dvdisaster allows no other size), which
/// is right for the presets; any other disc size gets RS02 sized for the
/// medium it stands for (4/3 of it, as a preset leaves 25% of its medium).
pub fn ecc_codec(disc_size: u64) -> (&'static str, Option<u64>) {
    let (num, den) = crate::units::PRESET_SHARE;
    let preset = crate::units::MEDIA
        .iter()
        .any(|(_, cap, _)| cap / den * num == disc_size);
    if preset {
        ("RS03", None)
    } else {
        ("RS02", Some(medium_of(disc_size) / 2048))
    }
}

/// The medium a disc size was chosen for.
pub(super) fn medium_of(disc_size: u64) -> u64 {
    let (num, den) = crate::units::PRESET_SHARE;
    (disc_size as u128 * den as u128 / num as u128) as u64
}

/// What dvdisaster said about its failure: its progress lines overwrite
/// each other with carriage returns, so the reason is the last line with
/// words after the progress is stripped, with any line naming an error.
fn dvdisaster_reason(text: &str) -> String {
    let lines: Vec<&str> = text
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.ends_with('%'))
        .collect();
    let mut picked: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("error") || l.contains("fail") || l.contains("not ")
        })
        .collect();
    if let Some(last) = lines.last() {
        if !picked.contains(last) {
            picked.push(last);
        }
    }
    picked.dedup();
    let reason = picked
        .iter()
        .rev()
        .take(3)
        .rev()
        .copied()
        .collect::<Vec<_>>()
        .join(" / ");
    if reason.is_empty() {
        "dvdisaster gave no reason".into()
    } else {
        reason
    }
}

/// Augments the image with dvdisaster data sized for the set's disc (see
/// [`ecc_codec`]) and tests it; returns the codec used.
pub(super) fn add_ecc(image: &Path, disc_size: u64) -> Result<String> {
    let tool = ecc_tool()?;
    let run = |args: &[&str]| -> Result<String> {
        let out = std::process::Command::new(&tool)
            .arg("-i")
            .arg(image)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| Error::io(&tool, e))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + "\n"
            + &String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            Ok(text)
        } else {
            Err(Error::Invalid(format!(
                "dvdisaster {} failed on {} ({}): {}",
                args.join(" "),
                image.display(),
                out.status,
                dvdisaster_reason(&text)
            )))
        }
    };
    let (codec, sectors) = ecc_codec(disc_size);
    let method = format!("-m{codec}");
    let sectors = sectors.map(|s| s.to_string());
    let mut args = vec![method.as_str()];
    match &sectors {
        Some(s) => args.extend(["-n", s.as_str()]),
        None => args.extend(["-o", "image"]),
    }
    args.push("-c");
    run(&args)?;
    let augmented = std::fs::metadata(image)
        .map_err(|e| Error::io(image, e))?
        .len();
    let medium = medium_of(disc_size);
    if augmented > medium.max(crate::units::MEDIA[0].1) {
        return Err(Error::Invalid(format!(
            "with error-correction data the image of {} is {augmented} bytes, more than the {medium}-byte medium its disc size was chosen for",
            image.display()
        )));
    }
    let test = run(&["-t"])?;
    if !test.contains(codec) {
        return Err(Error::Invalid(format!(
            "dvdisaster did not find {codec} data in {} after adding it: {}",
            image.display(),
            dvdisaster_reason(&test)
        )));
    }
    Ok(codec.into())
}
