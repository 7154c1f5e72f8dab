//! The RESP3 reader on arbitrary bytes: never panics, never claims more
//! than it was given, and what it claims parses again to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracklock_core::resp::{parse, Frame};

fn walk(f: &Frame<'_>) {
    if let Some(a) = f.as_aggregate() {
        for item in a.iter() {
            walk(&item);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((frame, n))) = parse(rest) {
        assert!(n > 0 && n <= rest.len());
        walk(&frame);
        assert_eq!(parse(&rest[..n]), Ok(Some((frame, n))));
        rest = &rest[n..];
    }
});
