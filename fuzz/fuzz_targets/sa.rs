//! SA header with its RMPP header (`SaHeader::parse`), PathRecord
//! (`PathRecord::parse`) and the PathRecord GetResp MAD (`PathReply::parse`),
//! src/ib/sa.rs.
//!
//! Round trips: all three. `PathReply` keeps the TID, status, SA header and record of
//! the MAD; its other header fields (ClassSpecific, AttributeModifier) are emitted as
//! zero, and the record area is emitted as zero when the status is not Ok (the record
//! is then not read: IBTA vol. 1 §15.2.1.1).
#![no_main]

use fabboot::ib::mad::MAD_LEN;
use fabboot::ib::sa::{PathRecord, PathReply, SaHeader};
use fabboot_fuzz::round_trip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sa) = SaHeader::parse(data) {
        round_trip!(SaHeader, sa, SaHeader::LEN);
    }
    if let Ok(rec) = PathRecord::parse(data) {
        round_trip!(PathRecord, rec, PathRecord::LEN);
    }
    if let Ok(reply) = PathReply::parse(data) {
        round_trip!(PathReply, reply, MAD_LEN);
    }
});
