//! SRP_RSP (`Rsp::parse`), srp/src/rsp.rs.
//!
//! Round trip: full, into `buffer_len()` bytes (36 plus the response and sense data).
//! Not kept, so not re-emitted: bytes after the data lists (a received IU may be
//! longer), a list length whose VALID flag is clear, and reserved bytes 2..4, 16..18.
#![no_main]

use fabboot_fuzz::round_trip;
use fabboot_srp::rsp::Rsp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(iu) = Rsp::parse(data) {
        let _ = iu.task_mgmt_rsp_code();
        round_trip!(Rsp, iu, iu.buffer_len());
    }
});
