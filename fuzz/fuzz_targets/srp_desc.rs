//! Data buffer descriptors (`DirectDesc::parse`, `IndirectHeader::parse`),
//! srp/src/desc.rs.
//!
//! Round trips: both, byte for byte (neither has reserved bits, reference §1.2), so
//! the emitted bytes must also equal the input's first 16 or 20 bytes.
#![no_main]

use fabboot_fuzz::round_trip;
use fabboot_srp::desc::{DirectDesc, IndirectHeader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = DirectDesc::parse(data) {
        round_trip!(DirectDesc, d, DirectDesc::LEN);
        let mut b = [0u8; DirectDesc::LEN];
        d.emit(&mut b).expect("a parsed descriptor emits");
        assert_eq!(&b[..], &data[..DirectDesc::LEN], "DirectDesc: bytes differ");
    }
    if let Ok(h) = IndirectHeader::parse(data) {
        round_trip!(IndirectHeader, h, IndirectHeader::LEN);
        let mut b = [0u8; IndirectHeader::LEN];
        h.emit(&mut b).expect("a parsed header emits");
        assert_eq!(
            &b[..],
            &data[..IndirectHeader::LEN],
            "IndirectHeader: bytes differ"
        );
    }
});
