//! SRP_TSK_MGMT (`TskMgmt::parse`), srp/src/tsk.rs.
//!
//! Round trip: full; reserved bytes (reference §1.1) are emitted as zero.
#![no_main]

use fabboot_fuzz::round_trip;
use fabboot_srp::tsk::TskMgmt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(iu) = TskMgmt::parse(data) {
        round_trip!(TskMgmt, iu, iu.buffer_len());
    }
});
