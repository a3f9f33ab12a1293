//! The one layout of a label page: a list of positioned items (text, cut
//! lines, the QR code) in millimetres on an A4 page, origin at the top left.
//! Both backends draw exactly this list, so the SVG and the PDF cannot
//! drift apart; text is fitted here, with Helvetica's widths, because the
//! PDF has no other font and the SVG asks for Helvetica or a metric twin
//! (Arial, Liberation Sans).

use super::LabelData;

/// A4, in millimetres.
pub const PAGE_W: f32 = 210.0;
pub const PAGE_H: f32 = 297.0;

/// The disc face: a 120 mm disc with a 15 mm hub hole.
const DISC_CX: f32 = 105.0;
const DISC_CY: f32 = 78.0;
const DISC_R: f32 = 60.0;
const HUB_R: f32 = 7.5;

/// The case insert: a 120 mm square (the front of a jewel case).
const CASE_X: f32 = 45.0;
const CASE_Y: f32 = 150.0;
const CASE_SIDE: f32 = 120.0;
const MARGIN: f32 = 8.0;

/// Modules of light margin around a QR code, as the standard asks.
pub const QUIET_ZONE: usize = 4;

/// Line width of cut lines, in millimetres.
pub const CUT_LINE: f32 = 0.25;

/// Points per millimetre.
pub const PT_PER_MM: f32 = 72.0 / 25.4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

/// One thing drawn on the page.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A line of text, its baseline at `y`; `text` is already printable
    /// (no control characters); backends only encode it.
    Text {
        x: f32,
        y: f32,
        /// Font size in points.
        size: f32,
        bold: bool,
        anchor: Anchor,
        text: String,
    },
    /// An outlined rectangle (a cut line).
    Rect { x: f32, y: f32, w: f32, h: f32 },
    /// An outlined circle (a cut line).
    Circle { cx: f32, cy: f32, r: f32 },
    /// A QR code whose top-left corner, quiet zone included, is at `x`,
    /// `y`; `width` modules a side without the quiet zone, `dark` row by row.
    Qr {
        x: f32,
        y: f32,
        module: f32,
        width: usize,
        dark: Vec<bool>,
    },
}

impl Item {
    /// The QR code's side with its quiet zone, in millimetres.
    pub fn qr_side(module: f32, width: usize) -> f32 {
        module * (width + 2 * QUIET_ZONE) as f32
    }
}

/// The page of one disc's label: the disc face above, the case insert below.
pub fn page(data: &LabelData, qr_width: usize, qr_dark: &[bool]) -> Vec<Item> {
    let mut items = Vec::new();
    let text =
        |x: f32, y: f32, size: f32, bold: bool, anchor: Anchor, s: &str, max: f32| Item::Text {
            x,
            y,
            size,
            bold,
            anchor,
            text: fit(s, max, size, bold),
        };
    let qr = |x: f32, y: f32, side: f32| Item::Qr {
        x,
        y,
        module: side / (qr_width + 2 * QUIET_ZONE) as f32,
        width: qr_width,
        dark: qr_dark.to_vec(),
    };

    // The disc face. Text is centred; each line gets the chord of the
    // printable ring at its height, less a margin.
    items.push(Item::Circle {
        cx: DISC_CX,
        cy: DISC_CY,
        r: DISC_R,
    });
    items.push(Item::Circle {
        cx: DISC_CX,
        cy: DISC_CY,
        r: HUB_R,
    });
    let chord = |y: f32| {
        let dy = (y - DISC_CY).abs() + 3.0;
        2.0 * (DISC_R * DISC_R - dy * dy).max(0.0).sqrt() - 10.0
    };
    let mid = |y: f32, size: f32, bold: bool, s: &str| {
        text(DISC_CX, y, size, bold, Anchor::Middle, s, chord(y))
    };
    items.push(mid(33.0, 13.0, true, &data.set_name));
    items.push(mid(43.0, 20.0, true, &data.title));
    for (i, line) in data.facts.iter().take(3).enumerate() {
        items.push(mid(50.0 + 5.0 * i as f32, 8.5, false, line));
    }
    let qr_side = 24.0;
    items.push(qr(DISC_CX - qr_side / 2.0, DISC_CY + HUB_R + 5.0, qr_side));
    if !data.folders.is_empty() {
        let names: Vec<&str> = data.folders.iter().map(|f| f.0.as_str()).collect();
        items.push(mid(121.0, 7.0, false, &names.join(", ")));
    }
    items.push(mid(127.5, 6.0, false, &data.uuid));

    // The case insert.
    items.push(Item::Rect {
        x: CASE_X,
        y: CASE_Y,
        w: CASE_SIDE,
        h: CASE_SIDE,
    });
    let left = CASE_X + MARGIN;
    let right = CASE_X + CASE_SIDE - MARGIN;
    let width = right - left;
    items.push(text(
        left,
        CASE_Y + 14.0,
        16.0,
        true,
        Anchor::Start,
        &data.set_name,
        width,
    ));
    items.push(text(
        left,
        CASE_Y + 26.0,
        24.0,
        true,
        Anchor::Start,
        &data.title,
        width,
    ));
    let mut y = CASE_Y + 35.0;
    for line in &data.case_facts {
        items.push(text(left, y, 10.0, false, Anchor::Start, line, width));
        y += 5.5;
    }
    let qr_side = 34.0;
    let qr_top = CASE_Y + 54.0;
    items.push(qr(right - qr_side, qr_top, qr_side));
    if !data.folders.is_empty() || data.more_folders > 0 {
        let col_right = right - qr_side - 5.0;
        let heading_y = (y + 3.0).max(qr_top + 4.0);
        items.push(text(
            left,
            heading_y,
            10.0,
            true,
            Anchor::Start,
            &data.folders_heading,
            col_right - left,
        ));
        let line_h = 4.6;
        let first = heading_y + 6.0;
        let last = CASE_Y + CASE_SIDE - MARGIN - 9.0;
        // Bounded by the lines that fit and by the folders there are.
        let fits = (((last - first) / line_h).floor() as usize + 1).max(1);
        let total = data.folders.len();
        let shown = if total + usize::from(data.more_folders > 0) <= fits {
            total
        } else {
            fits - 1
        };
        let more = (total - shown) as u64 + data.more_folders;
        let mut y = first;
        for (name, size) in data.folders.iter().take(shown) {
            let size_w = text_width(size, 9.0, false);
            items.push(Item::Text {
                x: col_right,
                y,
                size: 9.0,
                bold: false,
                anchor: Anchor::End,
                text: size.clone(),
            });
            items.push(text(
                left,
                y,
                9.0,
                false,
                Anchor::Start,
                name,
                col_right - left - size_w - 3.0,
            ));
            y += line_h;
        }
        if more > 0 {
            items.push(text(
                left,
                y,
                9.0,
                false,
                Anchor::Start,
                &format!("and {more} more"),
                col_right - left,
            ));
        }
    }
    items.push(text(
        left,
        CASE_Y + CASE_SIDE - MARGIN,
        7.0,
        false,
        Anchor::Start,
        &format!("Set {}", data.uuid),
        width,
    ));
    items
}

/// Dark runs of a QR matrix: (row, first column, length), so each run is
/// one rectangle and neighbouring modules leave no hairline between them.
pub fn runs(dark: &[bool], width: usize) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    for (row, line) in dark.chunks(width.max(1)).enumerate() {
        let mut col = 0;
        // Bounded by the row's modules: each pass moves `col` on.
        while col < line.len() {
            if line[col] {
                let start = col;
                while col < line.len() && line[col] {
                    col += 1;
                }
                out.push((row, start, col - start));
            } else {
                col += 1;
            }
        }
    }
    out
}

/// `s`, cut to fit `max` millimetres at `size` points (ending in `…` when cut).
pub fn fit(s: &str, max: f32, size: f32, bold: bool) -> String {
    if text_width(s, size, bold) <= max {
        return s.to_string();
    }
    let ellipsis = text_width("…", size, bold);
    let mut out = String::new();
    let mut used = 0.0;
    // Bounded by the characters of `s`.
    for c in s.chars() {
        let w = char_width(c, bold) * size / 1000.0 / PT_PER_MM;
        if used + w + ellipsis > max {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// The width of `s` in millimetres at `size` points, by Helvetica's
/// metrics; a character Helvetica lacks counts as a full em (the SVG may
/// show it from another font, the PDF shows `?`).
pub fn text_width(s: &str, size: f32, bold: bool) -> f32 {
    let units: f32 = s.chars().map(|c| char_width(c, bold)).sum();
    units * size / 1000.0 / PT_PER_MM
}

/// Helvetica's advance widths (thousandths of an em) for ASCII 32..=126.
const REGULAR: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // ' '../
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, // 0..?
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // @..O
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, // P.._
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, // `..o
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, // p..~
];

/// Helvetica-Bold's advance widths for ASCII 32..=126.
const BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, // ' '../
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, // 0..?
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778, // @..O
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556, // P.._
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, // `..o
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, // p..~
];

/// The advance width of one character, in thousandths of an em.
pub fn char_width(c: char, bold: bool) -> f32 {
    let table = if bold { &BOLD } else { &REGULAR };
    match c as u32 {
        n @ 32..=126 => f32::from(table[(n - 32) as usize]),
        0x2026 => 1000.0,
        0x2013 => 556.0,
        0x2014 => 1000.0,
        // Latin-1 and the rest of WinAnsi: about a capital letter.
        0xa0..=0xff => 667.0,
        _ if super::pdf::win_ansi(c).is_some() => 667.0,
        _ => 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_cuts_long_text_and_keeps_short() {
        assert_eq!(fit("Disc 3", 100.0, 10.0, false), "Disc 3");
        let long = "x".repeat(500);
        let cut = fit(&long, 50.0, 10.0, false);
        assert!(cut.ends_with('…'));
        assert!(text_width(&cut, 10.0, false) <= 50.0);
        // Nothing fits: just the ellipsis, never a panic.
        assert_eq!(fit("abc", 0.0, 10.0, false), "…");
    }

    #[test]
    fn widths_follow_helvetica() {
        // H (722) and i (222): at 1000 pt, 944 pt wide.
        let w = text_width("Hi", 1000.0, false) * PT_PER_MM;
        assert!((w - 944.0).abs() < 0.5, "{w}");
    }

    #[test]
    fn runs_cover_every_dark_module() {
        let dark = [true, true, false, true, false, false, true, true, true];
        assert_eq!(runs(&dark, 3), vec![(0, 0, 2), (1, 0, 1), (2, 0, 3)]);
        assert!(runs(&[], 0).is_empty());
    }
}
