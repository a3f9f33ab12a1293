//! Arbitrary text as a disc size (`--disc-size`) and as a time
//! (`--as-of`): an error or a value, never a panic or an overflow.

#![no_main]

use dbackup::units::{parse_size, parse_when, parse_when_in};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(bytes) = parse_size(&text) {
        assert!(bytes > 0, "a disc size of zero was accepted from {text:?}");
    }
    for when in [
        parse_when(&text),
        parse_when_in(&text, &jiff::tz::TimeZone::UTC),
        parse_when_in(&text, &jiff::tz::TimeZone::fixed(jiff::tz::offset(-12))),
    ] {
        if let Ok(secs) = when {
            assert!(
                secs.is_finite(),
                "a time of {secs} was accepted from {text:?}"
            );
        }
    }
});
