//! SRP_AER_REQ and SRP_AER_RSP (`AerReq`, `AerRsp` `::parse`), srp/src/aer.rs.
//!
//! Round trips: both. SRP_AER_REQ is emitted into `buffer_len()` bytes (36 plus the
//! sense data); bytes after the sense data are not kept, reserved bytes go out zero.
#![no_main]

use fabboot_fuzz::round_trip;
use fabboot_srp::aer::{AerReq, AerRsp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(iu) = AerReq::parse(data) {
        round_trip!(AerReq, iu, iu.buffer_len());
    }
    if let Ok(iu) = AerRsp::parse(data) {
        round_trip!(AerRsp, iu, iu.buffer_len());
    }
});
