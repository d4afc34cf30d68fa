//! PortInfo and P_Key table blocks (`PortInfo::parse`/`parse_smp`,
//! `PkeyBlock::parse`/`parse_smp`), src/ib/port_info.rs.
//!
//! Round trips: `PortInfo` (the fields it does not keep, IBTA vol. 1 §14.2.5.6
//! DiagCode, counters and so on, are emitted as zero) and `PkeyBlock` fully. The
//! `parse_smp` forms have no emitter: they must equal `parse` of the SMP data
//! (bytes 64..128) of the same MAD.
#![no_main]

use fabboot::ib::mad::SMP_DATA;
use fabboot::ib::port_info::{PkeyBlock, PortInfo};
use fabboot_fuzz::round_trip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = PortInfo::parse(data) {
        round_trip!(PortInfo, info, PortInfo::LEN);
    }
    if let Ok(block) = PkeyBlock::parse(data) {
        round_trip!(PkeyBlock, block, PkeyBlock::LEN);
        // `find` is total: any key, found or not, without panicking.
        for &key in block.entries.iter().take(2) {
            let _ = block.find(key);
        }
    }
    if let Ok(info) = PortInfo::parse_smp(data) {
        assert_eq!(PortInfo::parse(&data[SMP_DATA]), Ok(info));
    }
    if let Ok(block) = PkeyBlock::parse_smp(data) {
        assert_eq!(PkeyBlock::parse(&data[SMP_DATA]), Ok(block));
    }
});
