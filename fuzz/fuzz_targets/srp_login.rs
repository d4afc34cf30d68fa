//! SRP_LOGIN_REQ, SRP_LOGIN_RSP and SRP_LOGIN_REJ (`LoginReq`, `LoginRsp`, `LoginRej`
//! `::parse`), srp/src/login.rs.
//!
//! Byte 0 picks at most one of the three; every parser sees every input. Round trips:
//! all three. Reserved bytes and flag bits outside the kept fields (reference §1.1)
//! are emitted as zero; a LOGIN_REQ IMMEDIATE DATA OFFSET is kept only with
//! IMMEDIATE DATA REQUESTED set.
#![no_main]

use fabboot_fuzz::round_trip;
use fabboot_srp::login::{LoginRej, LoginReq, LoginRsp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(iu) = LoginReq::parse(data) {
        round_trip!(LoginReq, iu, iu.buffer_len());
    }
    if let Ok(iu) = LoginRsp::parse(data) {
        round_trip!(LoginRsp, iu, iu.buffer_len());
    }
    if let Ok(iu) = LoginRej::parse(data) {
        round_trip!(LoginRej, iu, iu.buffer_len());
    }
});
