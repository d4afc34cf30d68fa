//! MAD common header (`MadHeader::parse`), SMP Get (`SmpGet::parse`) and the SMP
//! GetResp data accessor (`smp_response_data`), src/ib/mad.rs.
//!
//! Round trips: `MadHeader` and `SmpGet` fully. `smp_response_data` returns a slice
//! and has no emitter of its own: its result must come back unchanged from a MAD
//! rebuilt with `MadHeader::emit` plus the data at bytes 64..128 (IBTA vol. 1
//! §14.2.1.1). The MAD header's reserved word (bytes 18..20) is not kept.
#![no_main]

use fabboot::ib::mad::{MAD_LEN, MadHeader, SMP_DATA, SmpGet, smp_response_data};
use fabboot_fuzz::round_trip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(hdr) = MadHeader::parse(data) {
        round_trip!(MadHeader, hdr, MadHeader::LEN);
        if let Ok(smp) = smp_response_data(data, hdr.attr_id) {
            assert_eq!(smp.len(), SMP_DATA.len(), "SMP data is 64 bytes");
            let mut mad = [0u8; MAD_LEN];
            hdr.emit(&mut mad).expect("a parsed MAD header emits");
            mad[SMP_DATA].copy_from_slice(smp);
            assert_eq!(smp_response_data(&mad, hdr.attr_id), Ok(smp));
        }
    }
    if let Ok(get) = SmpGet::parse(data) {
        round_trip!(SmpGet, get, SmpGet::LEN);
    }
});
