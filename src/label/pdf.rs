//! The PDF backend: one A4 page drawn from the layout with `pdf-writer`,
//! text in Helvetica (a base-14 font, not embedded) through WinAnsiEncoding.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use super::layout::{self, Anchor, Item, PAGE_H, PAGE_W, PT_PER_MM, QUIET_ZONE};

/// The PDF of a page of items.
pub fn render(items: &[Item], title: &str) -> Vec<u8> {
    let catalog = Ref::new(1);
    let pages = Ref::new(2);
    let page = Ref::new(3);
    let regular = Ref::new(4);
    let bold = Ref::new(5);
    let contents = Ref::new(6);
    let info = Ref::new(7);
    let f_regular = Name(b"F1");
    let f_bold = Name(b"F2");

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(pages);
    pdf.pages(pages).kids([page]).count(1);
    let mut p = pdf.page(page);
    p.media_box(Rect::new(0.0, 0.0, mm(PAGE_W), mm(PAGE_H)));
    p.parent(pages);
    p.contents(contents);
    {
        let mut res = p.resources();
        let mut fonts = res.fonts();
        fonts.pair(f_regular, regular);
        fonts.pair(f_bold, bold);
    }
    p.finish();
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.document_info(info)
        .title(TextStr(title))
        .producer(TextStr(concat!("dbackup ", env!("CARGO_PKG_VERSION"))));

    let mut c = Content::new();
    for item in items {
        match item {
            Item::Text {
                x,
                y,
                size,
                bold,
                anchor,
                text,
            } => {
                let bytes = encode(text);
                let width: f32 = text
                    .chars()
                    .map(|c| win_ansi(c).map_or('?', |_| c))
                    .map(|c| layout::char_width(c, *bold))
                    .sum::<f32>()
                    * size
                    / 1000.0;
                let x = mm(*x)
                    - match anchor {
                        Anchor::Start => 0.0,
                        Anchor::Middle => width / 2.0,
                        Anchor::End => width,
                    };
                c.set_fill_gray(0.0);
                c.begin_text();
                c.set_font(if *bold { f_bold } else { f_regular }, *size);
                c.next_line(x, mm(PAGE_H - y));
                c.show(Str(&bytes));
                c.end_text();
            }
            Item::Rect { x, y, w, h } => {
                cut_line(&mut c);
                c.rect(mm(*x), mm(PAGE_H - y - h), mm(*w), mm(*h));
                c.stroke();
            }
            Item::Circle { cx, cy, r } => {
                cut_line(&mut c);
                circle(&mut c, mm(*cx), mm(PAGE_H - cy), mm(*r));
                c.stroke();
            }
            Item::Qr {
                x,
                y,
                module,
                width,
                dark,
            } => {
                let side = Item::qr_side(*module, *width);
                c.set_fill_gray(1.0);
                c.rect(mm(*x), mm(PAGE_H - y - side), mm(side), mm(side));
                c.fill_nonzero();
                c.set_fill_gray(0.0);
                for (row, col, run) in layout::runs(dark, *width) {
                    let mx = x + module * (QUIET_ZONE + col) as f32;
                    let my = y + module * (QUIET_ZONE + row) as f32;
                    c.rect(
                        mm(mx),
                        mm(PAGE_H - my - module),
                        mm(module * run as f32),
                        mm(*module),
                    );
                }
                c.fill_nonzero();
            }
        }
    }
    pdf.stream(contents, &c.finish());
    pdf.finish()
}

fn cut_line(c: &mut Content) {
    c.set_line_width(mm(layout::CUT_LINE));
    c.set_stroke_gray(0.45);
}

/// A circle as four Bézier arcs.
fn circle(c: &mut Content, cx: f32, cy: f32, r: f32) {
    const K: f32 = 0.552_284_8;
    let k = r * K;
    c.move_to(cx + r, cy);
    c.cubic_to(cx + r, cy + k, cx + k, cy + r, cx, cy + r);
    c.cubic_to(cx - k, cy + r, cx - r, cy + k, cx - r, cy);
    c.cubic_to(cx - r, cy - k, cx - k, cy - r, cx, cy - r);
    c.cubic_to(cx + k, cy - r, cx + r, cy - k, cx + r, cy);
    c.close_path();
}

fn mm(v: f32) -> f32 {
    v * PT_PER_MM
}

/// `text` in WinAnsiEncoding; a character it lacks becomes `?`.
pub fn encode(text: &str) -> Vec<u8> {
    text.chars().map(|c| win_ansi(c).unwrap_or(b'?')).collect()
}

/// The WinAnsiEncoding byte of `c`, if it has one.
pub fn win_ansi(c: char) -> Option<u8> {
    let n = c as u32;
    match n {
        0x20..=0x7e | 0xa0..=0xff => Some(n as u8),
        _ => Some(match c {
            '€' => 0x80,
            '‚' => 0x82,
            'ƒ' => 0x83,
            '„' => 0x84,
            '…' => 0x85,
            '†' => 0x86,
            '‡' => 0x87,
            'ˆ' => 0x88,
            '‰' => 0x89,
            'Š' => 0x8a,
            '‹' => 0x8b,
            'Œ' => 0x8c,
            'Ž' => 0x8e,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            '˜' => 0x98,
            '™' => 0x99,
            'š' => 0x9a,
            '›' => 0x9b,
            'œ' => 0x9c,
            'ž' => 0x9e,
            'Ÿ' => 0x9f,
            _ => return None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn win_ansi_keeps_latin_and_marks_the_rest() {
        assert_eq!(encode("Café – 5 €"), b"Caf\xe9 \x96 5 \x80");
        assert_eq!(encode("写真 ok"), b"?? ok");
        assert_eq!(encode("a\u{7f}b"), b"a?b");
    }
}
