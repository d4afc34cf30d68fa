//! The sBFT (`Sbft::parse`, `sbft::scan`), src/bootcfg/sbft.rs.
//!
//! There is no emitter: the checks are the parser's own promises. A table that parses
//! lies inside the input, sums to zero, names a LUN the driver takes, and is what a
//! scan of the same bytes finds first.
#![no_main]

use fabboot::bootcfg::MAX_LUN;
use fabboot::bootcfg::sbft::{Sbft, Scan, scan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = Sbft::parse(data);
    if let Ok(t) = parsed {
        assert!(t.length <= data.len(), "table longer than the input");
        let sum = data[..t.length].iter().fold(0u8, |s, &x| s.wrapping_add(x));
        assert_eq!(sum, 0, "a parsed table sums to zero");
        assert!(t.config.lun <= MAX_LUN);
    }
    match (scan(data), parsed) {
        (Scan::Found { at: 0, table }, Ok(t)) => assert_eq!(table, t),
        (Scan::Found { at, .. }, Ok(_)) => panic!("the scan passed a valid table at 0 for {at}"),
        (Scan::Found { at, .. }, Err(_)) => assert!(at > 0 && at % 16 == 0),
        _ => {}
    }
});
