//! CM MADs (`CmMessage::parse_mad`) and each CM payload (`Req`, `Rep`, `Rej`, `Rtu`,
//! `Mra`, `Dreq`, `Drep` `::parse`), src/ib/cm.rs.
//!
//! The input goes to `parse_mad` as a whole MAD and to every payload parser as a bare
//! 232-byte payload. Round trips: all of them. A REQ alternate path whose fields are
//! all zero (reserved bits aside) reads as `None` and is emitted as zeros; reserved
//! fields (IBTA vol. 1 Tables 106–113) are emitted as zero, and `parse_mad` keeps only
//! the TID of the MAD header.
#![no_main]

use fabboot::ib::cm::{CM_PAYLOAD, CmMessage, Drep, Dreq, Mra, Rej, Rep, Req, Rtu};
use fabboot::ib::mad::MAD_LEN;
use fabboot_fuzz::{emit_checked, round_trip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((tid, msg)) = CmMessage::parse_mad(data) {
        let bytes = emit_checked("CmMessage", MAD_LEN, |b| msg.emit_mad(tid, b));
        let again = match CmMessage::parse_mad(&bytes) {
            Ok(v) => v,
            Err(e) => panic!("CmMessage: emitted MAD does not parse: {e:?}\nvalue: {msg:?}"),
        };
        assert_eq!((tid, msg), again, "CmMessage: parse(emit(v)) != v");
        let (tid2, msg2) = again;
        let bytes2 = emit_checked("CmMessage", MAD_LEN, |b| msg2.emit_mad(tid2, b));
        assert_eq!(bytes, bytes2, "CmMessage: emit(parse(emit(v))) != emit(v)");
        // The MAD parser and the payload parser agree.
        let payload = &data[CM_PAYLOAD];
        let same = match msg {
            CmMessage::Req(m) => Req::parse(payload) == Ok(m),
            CmMessage::Rep(m) => Rep::parse(payload) == Ok(m),
            CmMessage::Rej(m) => Rej::parse(payload) == Ok(m),
            CmMessage::Rtu(m) => Rtu::parse(payload) == Ok(m),
            CmMessage::Mra(m) => Mra::parse(payload) == Ok(m),
            CmMessage::Dreq(m) => Dreq::parse(payload) == Ok(m),
            CmMessage::Drep(m) => Drep::parse(payload) == Ok(m),
        };
        assert!(same, "CmMessage: parse_mad and the payload parser disagree");
    }
    if let Ok(m) = Req::parse(data) {
        round_trip!(Req, m, Req::LEN);
    }
    if let Ok(m) = Rep::parse(data) {
        round_trip!(Rep, m, Rep::LEN);
    }
    if let Ok(m) = Rej::parse(data) {
        round_trip!(Rej, m, Rej::LEN);
    }
    if let Ok(m) = Rtu::parse(data) {
        round_trip!(Rtu, m, Rtu::LEN);
    }
    if let Ok(m) = Mra::parse(data) {
        round_trip!(Mra, m, Mra::LEN);
    }
    if let Ok(m) = Dreq::parse(data) {
        round_trip!(Dreq, m, Dreq::LEN);
    }
    if let Ok(m) = Drep::parse(data) {
        round_trip!(Drep, m, Drep::LEN);
    }
});
