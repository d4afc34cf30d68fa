//! SRP_I_LOGOUT and SRP_T_LOGOUT (`ILogout`, `TLogout` `::parse`), srp/src/logout.rs.
//!
//! Round trips: both; reserved bytes are emitted as zero (SRP_I_LOGOUT keeps only its
//! tag, so its byte 1 is among them).
#![no_main]

use fabboot_fuzz::round_trip;
use fabboot_srp::logout::{ILogout, TLogout};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(iu) = ILogout::parse(data) {
        round_trip!(ILogout, iu, iu.buffer_len());
    }
    if let Ok(iu) = TLogout::parse(data) {
        round_trip!(TLogout, iu, iu.buffer_len());
    }
});
