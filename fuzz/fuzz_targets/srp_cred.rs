//! SRP_CRED_REQ and SRP_CRED_RSP (`CredReq`, `CredRsp` `::parse`), srp/src/cred.rs.
//!
//! Round trips: both; reserved bytes are emitted as zero.
#![no_main]

use fabboot_fuzz::round_trip;
use fabboot_srp::cred::{CredReq, CredRsp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(iu) = CredReq::parse(data) {
        round_trip!(CredReq, iu, iu.buffer_len());
    }
    if let Ok(iu) = CredRsp::parse(data) {
        round_trip!(CredRsp, iu, iu.buffer_len());
    }
});
