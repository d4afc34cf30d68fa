//! Byte fixtures for every SRP IU, written from the offsets in
//! reference/srp-cm-sa-dm.md §1.1 and §1.2 (not from this crate's encoder), plus
//! truncation and random-input tests for every parser.

use fabboot_srp::aer::{AerReq, AerRsp};
use fabboot_srp::cmd::{CmdIu, DataBuffer, DataDir, SrpCmd, TaskAttr, max_sg_entries};
use fabboot_srp::cred::{CredReq, CredRsp};
use fabboot_srp::desc::{BufferFormats, DirectDesc};
use fabboot_srp::iu::IuType;
use fabboot_srp::login::{
    LoginRej, LoginReq, LoginRsp, MultiChannelAction, MultiChannelResult, RejectReason,
};
use fabboot_srp::logout::{ILogout, TLogout};
use fabboot_srp::rsp::{Rsp, RspFlags};
use fabboot_srp::tsk::{TaskFunction, TskMgmt};
use fabboot_srp::{Error, Field};

/// A buffer of `n` bytes of 0xA5, so that a byte an emitter forgets shows up.
fn a5(n: usize) -> Vec<u8> {
    vec![0xA5; n]
}

const TAG: [u8; 8] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08];
const TAG_U64: u64 = 0x0102_0304_0506_0708;
const LUN: [u8; 8] = [0x00, 0x03, 0, 0, 0, 0, 0, 0];

// ---------------------------------------------------------------- SRP_LOGIN_REQ

#[rustfmt::skip]
const LOGIN_REQ: [u8; 64] = [
    0x00, 0, 0, 0, 0, 0, 0, 0,                       // 0: opcode, 1..8 reserved
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // 8: tag
    0x00, 0x00, 0x08, 0x44,                          // 16: req_it_iu_len 2116
    0, 0, 0, 0,                                      // 20: reserved
    0x00, 0x06,                                      // 24: DIRECT | INDIRECT
    0x40,                                            // 26: single channel, AESOLNT
    0,                                               // 27: reserved
    0x00, 0x00,                                      // 28: no immediate data offset
    0, 0,                                            // 30: reserved
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,  // 32: initiator port ID
    0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F,
    0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27,  // 48: target port ID
    0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F,
];

fn login_req() -> LoginReq {
    let mut initiator_port_id = [0u8; 16];
    let mut target_port_id = [0u8; 16];
    for i in 0..16u8 {
        initiator_port_id[usize::from(i)] = 0x10 + i;
        target_port_id[usize::from(i)] = 0x20 + i;
    }
    LoginReq {
        tag: TAG_U64,
        req_it_iu_len: 2116,
        req_buf_fmt: BufferFormats::DIRECT_AND_INDIRECT,
        multi_channel: MultiChannelAction::Single,
        solicited: LoginReq::AESOLNT,
        immediate_data_offset: None,
        initiator_port_id,
        target_port_id,
    }
}

#[test]
fn login_req_emits_the_fixture() {
    let mut buf = a5(80);
    assert_eq!(login_req().emit(&mut buf), Ok(64));
    assert_eq!(buf[..64], LOGIN_REQ);
    assert!(buf[64..].iter().all(|&b| b == 0xA5), "wrote past the IU");
    assert_eq!(LoginReq::parse(&LOGIN_REQ), Ok(login_req()));
}

#[test]
fn login_req_with_immediate_data_and_multichannel() {
    let mut expected = LOGIN_REQ;
    expected[26] = 0x80 | 0x01; // IMMEDIATE DATA REQUESTED, MULTIPLE
    expected[28..30].copy_from_slice(&[0x00, 0x50]); // offset 80
    let req = LoginReq {
        multi_channel: MultiChannelAction::Multiple,
        solicited: 0,
        immediate_data_offset: Some(80),
        ..login_req()
    };
    let mut buf = a5(64);
    assert_eq!(req.emit(&mut buf), Ok(64));
    assert_eq!(buf, expected);
    assert_eq!(LoginReq::parse(&expected), Ok(req));
}

#[test]
fn emitters_refuse_short_buffers() {
    let mut buf = a5(63);
    assert_eq!(
        login_req().emit(&mut buf),
        Err(Error::BufferTooShort {
            iu: IuType::LoginReq,
            needed: 64,
            got: 63
        })
    );
    let mut buf = a5(15);
    assert_eq!(
        CredRsp { tag: 1 }.emit(&mut buf),
        Err(Error::BufferTooShort {
            iu: IuType::CredRsp,
            needed: 16,
            got: 15
        })
    );
}

// ---------------------------------------------------------------- SRP_LOGIN_RSP

/// What ib_srpt answers (reference §3.3): 128 credits, its max request size 8276, our
/// own length echoed, both formats, existing channels terminated.
#[rustfmt::skip]
const LOGIN_RSP: [u8; 52] = [
    0xC0, 0, 0, 0,                                   // 0: opcode, reserved
    0x00, 0x00, 0x00, 0x80,                          // 4: req_lim_delta 128
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // 8: tag
    0x00, 0x00, 0x20, 0x54,                          // 16: max_it_iu_len 8276
    0x00, 0x00, 0x08, 0x44,                          // 20: max_ti_iu_len 2116
    0x00, 0x06,                                      // 24: DIRECT | INDIRECT
    0x81,                                            // 26: IMMED_SUPP, TERMINATED
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,           // 27..52 reserved
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

fn login_rsp() -> LoginRsp {
    LoginRsp {
        req_lim_delta: 128,
        tag: TAG_U64,
        max_it_iu_len: 8276,
        max_ti_iu_len: 2116,
        sup_buf_fmt: BufferFormats::DIRECT_AND_INDIRECT,
        multi_channel: MultiChannelResult::Terminated,
        immediate_data: true,
    }
}

#[test]
fn login_rsp_parses_the_fixture() {
    assert_eq!(LoginRsp::parse(&LOGIN_RSP), Ok(login_rsp()));
    // The REP private data is 196 bytes; the rest is ignored.
    let mut private = [0xEEu8; 196];
    private[..52].copy_from_slice(&LOGIN_RSP);
    assert_eq!(LoginRsp::parse(&private), Ok(login_rsp()));
    let mut buf = a5(52);
    assert_eq!(login_rsp().emit(&mut buf), Ok(52));
    assert_eq!(buf, LOGIN_RSP);
}

#[test]
fn login_rsp_multichannel_results() {
    for (bits, result) in [
        (0u8, MultiChannelResult::NoExistingChannel),
        (1, MultiChannelResult::Terminated),
        (2, MultiChannelResult::Maintained),
        (3, MultiChannelResult::Reserved(3)),
    ] {
        let mut iu = LOGIN_RSP;
        iu[26] = bits;
        let rsp = LoginRsp::parse(&iu).unwrap();
        assert_eq!(rsp.multi_channel, result);
        assert!(!rsp.immediate_data);
    }
}

// ---------------------------------------------------------------- SRP_LOGIN_REJ

#[rustfmt::skip]
const LOGIN_REJ: [u8; 32] = [
    0xC2, 0, 0, 0,                                   // 0: opcode, reserved
    0x00, 0x01, 0x00, 0x04,                          // 4: reason: formats unsupported
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // 8: tag
    0, 0, 0, 0, 0, 0, 0, 0,                          // 16: reserved
    0x00, 0x02,                                      // 24: DIRECT only
    0, 0, 0, 0, 0, 0,                                // 26: reserved
];

#[test]
fn login_rej_parses_the_fixture() {
    let rej = LoginRej::parse(&LOGIN_REJ).unwrap();
    assert_eq!(
        rej,
        LoginRej {
            reason: RejectReason::UnsupportedDescriptorFormats,
            tag: TAG_U64,
            sup_buf_fmt: BufferFormats::DIRECT,
        }
    );
    assert!(!rej.sup_buf_fmt.contains(BufferFormats::INDIRECT));
    let mut buf = a5(32);
    assert_eq!(rej.emit(&mut buf), Ok(32));
    assert_eq!(buf, LOGIN_REJ);
    // Inside the 148-byte CM REJ private data.
    let mut private = [0u8; 148];
    private[..32].copy_from_slice(&LOGIN_REJ);
    assert_eq!(LoginRej::parse(&private), Ok(rej));
}

#[test]
fn login_rej_every_reason() {
    let known = [
        (0x0001_0000u32, RejectReason::NoReason),
        (0x0001_0001, RejectReason::InsufficientResources),
        (0x0001_0002, RejectReason::ItIuLenTooLarge),
        (0x0001_0003, RejectReason::UnableToAssociate),
        (0x0001_0004, RejectReason::UnsupportedDescriptorFormats),
        (0x0001_0005, RejectReason::MultiChannelUnsupported),
        (0x0001_0006, RejectReason::ChannelLimitReached),
        (0x0001_0007, RejectReason::Unknown(0x0001_0007)),
        (0, RejectReason::Unknown(0)),
        (0xFFFF_FFFF, RejectReason::Unknown(0xFFFF_FFFF)),
    ];
    for (code, reason) in known {
        let mut iu = LOGIN_REJ;
        iu[4..8].copy_from_slice(&code.to_be_bytes());
        assert_eq!(LoginRej::parse(&iu).unwrap().reason, reason, "{code:#x}");
    }
}

// ---------------------------------------------------------------- SRP_TSK_MGMT

#[rustfmt::skip]
const TSK_MGMT_ABORT: [u8; 48] = [
    0x01, 0, 0, 0, 0, 0, 0, 0,                       // 0: opcode, sol_not, reserved
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // 8: tag
    0, 0, 0, 0,                                      // 16: reserved
    0x00, 0x03, 0, 0, 0, 0, 0, 0,                    // 20: LUN 3
    0, 0,                                            // 28: reserved
    0x01,                                            // 30: ABORT TASK
    0,                                               // 31: reserved
    0, 0, 0, 0, 0, 0, 0x12, 0x34,                    // 32: task tag 0x1234
    0, 0, 0, 0, 0, 0, 0, 0,                          // 40: reserved
];

#[test]
fn tsk_mgmt_emits_the_fixture() {
    let abort = TskMgmt {
        sol_not: 0,
        tag: TAG_U64,
        lun: LUN,
        function: TaskFunction::AbortTask,
        task_tag: 0x1234,
    };
    let mut buf = a5(48);
    assert_eq!(abort.emit(&mut buf), Ok(48));
    assert_eq!(buf, TSK_MGMT_ABORT);
    assert_eq!(TskMgmt::parse(&TSK_MGMT_ABORT), Ok(abort));

    let reset = TskMgmt {
        function: TaskFunction::LogicalUnitReset,
        task_tag: 0,
        ..abort
    };
    let mut expected = TSK_MGMT_ABORT;
    expected[30] = 0x08;
    expected[32..40].fill(0);
    assert_eq!(reset.emit(&mut buf), Ok(48));
    assert_eq!(buf, expected);
}

// ---------------------------------------------------------------- 16-byte IUs

/// opcode, then `b1` at byte 1, `word` at 4..8, and the tag at 8..16.
fn iu16(opcode: u8, b1: u8, word: u32) -> [u8; 16] {
    let mut iu = [0u8; 16];
    iu[0] = opcode;
    iu[1] = b1;
    iu[4..8].copy_from_slice(&word.to_be_bytes());
    iu[8..16].copy_from_slice(&TAG);
    iu
}

#[test]
fn initiator_16_byte_ius_emit_their_fixtures() {
    let mut buf = a5(16);
    assert_eq!(ILogout { tag: TAG_U64 }.emit(&mut buf), Ok(16));
    assert_eq!(buf, iu16(0x03, 0, 0));
    assert_eq!(ILogout::parse(&buf), Ok(ILogout { tag: TAG_U64 }));

    let mut buf = a5(16);
    assert_eq!(CredRsp { tag: TAG_U64 }.emit(&mut buf), Ok(16));
    assert_eq!(buf, iu16(0x41, 0, 0));
    assert_eq!(CredRsp::parse(&buf), Ok(CredRsp { tag: TAG_U64 }));

    let mut buf = a5(16);
    assert_eq!(AerRsp { tag: TAG_U64 }.emit(&mut buf), Ok(16));
    assert_eq!(buf, iu16(0x42, 0, 0));
    assert_eq!(AerRsp::parse(&buf), Ok(AerRsp { tag: TAG_U64 }));
}

#[test]
fn t_logout_parses() {
    let iu = iu16(0x80, 0x01, 0x0000_0002);
    let t = TLogout::parse(&iu).unwrap();
    assert_eq!(
        t,
        TLogout {
            sol_not: 1,
            reason: 2,
            tag: TAG_U64
        }
    );
    let mut buf = a5(16);
    assert_eq!(t.emit(&mut buf), Ok(16));
    assert_eq!(buf, iu);
}

#[test]
fn cred_req_parses() {
    let iu = iu16(0x81, 0, 5);
    let c = CredReq::parse(&iu).unwrap();
    assert_eq!(
        c,
        CredReq {
            sol_not: 0,
            req_lim_delta: 5,
            tag: TAG_U64
        }
    );
    let mut buf = a5(16);
    assert_eq!(c.emit(&mut buf), Ok(16));
    assert_eq!(buf, iu);
}

// ---------------------------------------------------------------- SRP_AER_REQ

/// Fixed sense data: current error, UNIT ATTENTION, ASC/ASCQ 0x3F/0x0E (REPORTED LUNS
/// DATA HAS CHANGED).
const SENSE: [u8; 18] = [
    0x70, 0, 0x06, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x3F, 0x0E, 0, 0, 0, 0,
];

fn aer_req_fixture() -> Vec<u8> {
    let mut iu = vec![0u8; 36];
    iu[0] = 0x82;
    iu[4..8].copy_from_slice(&1u32.to_be_bytes()); // req_lim_delta
    iu[8..16].copy_from_slice(&TAG);
    iu[20..28].copy_from_slice(&LUN);
    iu[28..32].copy_from_slice(&18u32.to_be_bytes()); // sense data length
    iu.extend_from_slice(&SENSE);
    iu
}

#[test]
fn aer_req_parses() {
    let iu = aer_req_fixture();
    let aer = AerReq::parse(&iu).unwrap();
    assert_eq!(
        aer,
        AerReq {
            sol_not: 0,
            req_lim_delta: 1,
            tag: TAG_U64,
            lun: LUN,
            sense_data: &SENSE,
        }
    );
    let mut buf = a5(64);
    assert_eq!(aer.emit(&mut buf), Ok(54));
    assert_eq!(buf[..54], iu[..]);
    assert!(buf[54..].iter().all(|&b| b == 0xA5));
}

#[test]
fn aer_req_sense_longer_than_the_iu() {
    let mut iu = aer_req_fixture();
    iu[28..32].copy_from_slice(&19u32.to_be_bytes());
    assert_eq!(
        AerReq::parse(&iu),
        Err(Error::LengthBeyondIu {
            iu: IuType::AerReq,
            field: Field::SenseDataLen,
            needed: 55,
            got: 54
        })
    );
    iu[28..32].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        AerReq::parse(&iu),
        Err(Error::LengthBeyondIu { .. })
    ));
}

// ---------------------------------------------------------------- SRP_RSP

/// An SRP_RSP fixture: `flags`, `status`, residuals, and the two data lists with the
/// lengths written in the fields given (which may lie).
fn rsp_fixture(flags: u8, status: u8, resp: &[u8], sense: &[u8], lens: (u32, u32)) -> Vec<u8> {
    let mut iu = vec![0u8; 36];
    iu[0] = 0xC1;
    iu[4..8].copy_from_slice(&1u32.to_be_bytes()); // req_lim_delta
    iu[8..16].copy_from_slice(&TAG);
    iu[18] = flags;
    iu[19] = status;
    iu[20..24].copy_from_slice(&0x100u32.to_be_bytes()); // DATA-OUT residual
    iu[24..28].copy_from_slice(&0x200u32.to_be_bytes()); // DATA-IN residual
    iu[28..32].copy_from_slice(&lens.1.to_be_bytes()); // sense data length
    iu[32..36].copy_from_slice(&lens.0.to_be_bytes()); // response data length
    iu.extend_from_slice(resp);
    iu.extend_from_slice(sense);
    iu
}

#[test]
fn rsp_check_condition_with_sense_and_underflow() {
    let iu = rsp_fixture(0x02 | 0x20, 0x02, &[], &SENSE, (0, 18));
    let rsp = Rsp::parse(&iu).unwrap();
    assert_eq!(rsp.status, 0x02);
    assert_eq!(rsp.tag, TAG_U64);
    assert_eq!(rsp.req_lim_delta, 1);
    assert!(rsp.flags.contains(RspFlags::SNSVALID));
    assert!(rsp.flags.contains(RspFlags::DIUNDER));
    assert!(!rsp.flags.contains(RspFlags::RSPVALID));
    assert_eq!(rsp.data_in_residual, 0x200);
    assert_eq!(rsp.data_out_residual, 0x100);
    assert_eq!(rsp.sense_data, &SENSE);
    assert!(rsp.response_data.is_empty());
    let mut buf = a5(iu.len());
    assert_eq!(rsp.emit(&mut buf), Ok(iu.len()));
    assert_eq!(buf, iu);
}

#[test]
fn rsp_task_management_response_then_sense() {
    // ib_srpt: RSPVALID with 4 bytes, RSP_CODE in the 4th (reference §3.3).
    let iu = rsp_fixture(0x01 | 0x02, 0, &[0, 0, 0, 0x04], &SENSE[..8], (4, 8));
    let rsp = Rsp::parse(&iu).unwrap();
    assert_eq!(rsp.response_data, &[0, 0, 0, 0x04]);
    assert_eq!(rsp.task_mgmt_rsp_code(), Some(0x04));
    assert_eq!(rsp.sense_data, &SENSE[..8]);
    let mut buf = a5(iu.len());
    assert_eq!(rsp.emit(&mut buf), Ok(iu.len()));
    assert_eq!(buf, iu);
}

#[test]
fn rsp_every_flag_bit() {
    for (bit, flag) in [
        (0x01u8, RspFlags::RSPVALID),
        (0x02, RspFlags::SNSVALID),
        (0x04, RspFlags::DOOVER),
        (0x08, RspFlags::DOUNDER),
        (0x10, RspFlags::DIOVER),
        (0x20, RspFlags::DIUNDER),
    ] {
        let iu = rsp_fixture(bit, 0, &[], &[], (0, 0));
        let rsp = Rsp::parse(&iu).unwrap();
        assert_eq!(rsp.flags, flag);
        assert_eq!(rsp.flags.0, bit);
    }
}

#[test]
fn rsp_lengths_without_valid_bits_are_ignored() {
    // The fields claim data, the flags say there is none: nothing is read.
    let iu = rsp_fixture(0, 0, &[], &[], (100, 100));
    let rsp = Rsp::parse(&iu).unwrap();
    assert!(rsp.response_data.is_empty() && rsp.sense_data.is_empty());
}

#[test]
fn rsp_sense_longer_than_the_iu() {
    let iu = rsp_fixture(0x02, 0x02, &[], &SENSE, (0, 19));
    assert_eq!(
        Rsp::parse(&iu),
        Err(Error::LengthBeyondIu {
            iu: IuType::Rsp,
            field: Field::SenseDataLen,
            needed: 36 + 19,
            got: 36 + 18
        })
    );
    // A sense length near 2^32 must not wrap around.
    let iu = rsp_fixture(0x02, 0x02, &[], &SENSE, (0, u32::MAX));
    assert!(matches!(
        Rsp::parse(&iu),
        Err(Error::LengthBeyondIu {
            field: Field::SenseDataLen,
            ..
        })
    ));
    // Response data running over the end.
    let iu = rsp_fixture(0x01, 0, &[0, 0, 0, 0], &[], (5, 0));
    assert!(matches!(
        Rsp::parse(&iu),
        Err(Error::LengthBeyondIu {
            field: Field::ResponseDataLen,
            ..
        })
    ));
    // Response and sense each fit alone but not together.
    let iu = rsp_fixture(0x03, 0, &[0, 0, 0, 0], &SENSE, (4, 20));
    assert!(matches!(
        Rsp::parse(&iu),
        Err(Error::LengthBeyondIu {
            field: Field::SenseDataLen,
            ..
        })
    ));
}

#[test]
fn rsp_emit_refuses_data_without_its_flag() {
    let rsp = Rsp {
        sol_not: 0,
        req_lim_delta: 1,
        tag: 1,
        flags: RspFlags::RSPVALID,
        status: 2,
        data_out_residual: 0,
        data_in_residual: 0,
        response_data: &[],
        sense_data: &SENSE,
    };
    let mut buf = a5(100);
    assert_eq!(
        rsp.emit(&mut buf),
        Err(Error::Invalid {
            iu: IuType::Rsp,
            field: Field::SenseDataLen,
            value: 18
        })
    );
}

// ---------------------------------------------------------------- SRP_CMD

const READ16: [u8; 16] = [0x88, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0x08, 0];
const IU_ADDR: u64 = 0x0000_0001_2345_6000;
const IU_RKEY: u32 = 0x0000_0100;

/// The segments of a test command: `n` segments of 4 KiB at distinct addresses.
fn segments(n: usize) -> Vec<DirectDesc> {
    (0..n)
        .map(|i| DirectDesc {
            va: 0x1_0000_0000 + 0x1_0000 * i as u64,
            rkey: 0xABCD_0000 + i as u32,
            len: 4096 + i as u32,
        })
        .collect()
}

/// The expected SRP_CMD bytes for `segs`, from the reference offsets: §1.1 for the
/// fixed part, §1.2 for the descriptors; the indirect count equals the table entries
/// (§1.2), a direct descriptor's count is left 0 as in Linux.
fn expected_cmd(dir: DataDir, segs: &[DirectDesc]) -> Vec<u8> {
    let n = segs.len();
    let len = match n {
        0 => 48,
        1 => 64,
        _ => 68 + 16 * n,
    };
    let mut iu = vec![0u8; len];
    iu[0] = 0x02;
    let fmt: u8 = match n {
        0 => 0,
        1 => 1,
        _ => 2,
    };
    match dir {
        DataDir::Out => iu[5] = fmt << 4,
        DataDir::In => iu[5] = fmt,
        DataDir::None => {}
    }
    if n > 1 {
        let count_at = if dir == DataDir::Out { 6 } else { 7 };
        iu[count_at] = n as u8;
    }
    iu[8..16].copy_from_slice(&TAG);
    iu[20..28].copy_from_slice(&LUN);
    iu[29] = 2; // ORDERED
    iu[32..48].copy_from_slice(&READ16);
    let put_desc = |iu: &mut [u8], at: usize, d: &DirectDesc| {
        iu[at..at + 8].copy_from_slice(&d.va.to_be_bytes());
        iu[at + 8..at + 12].copy_from_slice(&d.rkey.to_be_bytes());
        iu[at + 12..at + 16].copy_from_slice(&d.len.to_be_bytes());
    };
    if n == 1 {
        put_desc(&mut iu, 48, &segs[0]);
    } else if n > 1 {
        let table = DirectDesc {
            va: IU_ADDR + 68,
            rkey: IU_RKEY,
            len: 16 * n as u32,
        };
        put_desc(&mut iu, 48, &table);
        let total: u32 = segs.iter().map(|s| s.len).sum();
        iu[64..68].copy_from_slice(&total.to_be_bytes());
        for (i, s) in segs.iter().enumerate() {
            put_desc(&mut iu, 68 + 16 * i, s);
        }
    }
    iu
}

fn cmd<'a>(dir: DataDir, segs: &'a [DirectDesc]) -> SrpCmd<'a> {
    SrpCmd {
        tag: TAG_U64,
        lun: LUN,
        task_attr: TaskAttr::Ordered,
        cdb: &READ16,
        dir,
        segments: segs,
        iu_addr: IU_ADDR,
        iu_rkey: IU_RKEY,
    }
}

/// Descriptors that fit an IU of `len` bytes, by the arithmetic of reference §1.1/§1.2:
/// none below 48 + 16; one direct descriptor from there; otherwise
/// (len − 48 − 20) / 16 table entries, at most 255 (one-byte count fields).
fn fit(len: u32) -> usize {
    if len < 48 + 16 {
        0
    } else {
        (len.saturating_sub(48 + 20) / 16).clamp(1, 255) as usize
    }
}

#[test]
fn max_sg_entries_by_arithmetic() {
    for (len, want) in [(64u32, 1usize), (276, 13), (1024, 59), (8260, 255)] {
        assert_eq!(fit(len), want, "the test's own arithmetic, {len}");
        assert_eq!(max_sg_entries(len), want, "it_iu_len {len}");
    }
    // (8260 − 68) / 16 = 512 entries would fit, but a count field holds 255.
    assert_eq!((8260 - 68) / 16, 512);
    for len in 0..10_000u32 {
        assert_eq!(max_sg_entries(len), fit(len), "it_iu_len {len}");
    }
}

#[test]
fn cmd_direct_and_indirect_for_each_iu_length() {
    for it_iu_len in [64usize, 276, 1024, 8260] {
        let max = max_sg_entries(it_iu_len as u32);
        for dir in [DataDir::In, DataDir::Out] {
            let mut counts = vec![1, 2, max];
            counts.dedup();
            for n in counts.into_iter().filter(|&n| n <= max) {
                let segs = segments(n);
                let expected = expected_cmd(dir, &segs);
                let mut buf = a5(it_iu_len);
                let c = cmd(dir, &segs);
                assert_eq!(c.buffer_len(), expected.len());
                assert_eq!(
                    c.emit(&mut buf),
                    Ok(expected.len()),
                    "{it_iu_len} {dir:?} {n}"
                );
                assert_eq!(
                    buf[..expected.len()],
                    expected[..],
                    "{it_iu_len} {dir:?} {n}"
                );
                assert!(buf[expected.len()..].iter().all(|&b| b == 0xA5));

                // What a target would read back.
                let parsed = CmdIu::parse(&buf[..expected.len()]).unwrap();
                assert_eq!(parsed.tag, TAG_U64);
                assert_eq!(parsed.cdb, READ16);
                assert_eq!(parsed.task_attr, TaskAttr::Ordered);
                let (this, other) = match dir {
                    DataDir::In => (parsed.data_in, parsed.data_out),
                    _ => (parsed.data_out, parsed.data_in),
                };
                assert_eq!(other, DataBuffer::None);
                match this {
                    DataBuffer::Direct(d) => assert_eq!((n, d), (1, segs[0])),
                    DataBuffer::Indirect(t) => {
                        assert_eq!(t.len(), n);
                        assert!(t.entries().eq(segs.iter().copied()));
                        assert_eq!(t.header.table.len as usize, 16 * n);
                    }
                    DataBuffer::None => panic!("no data buffer"),
                }
            }
            // One more than fits.
            let segs = segments(max + 1);
            let mut buf = a5(it_iu_len);
            assert_eq!(
                cmd(dir, &segs).emit(&mut buf),
                Err(Error::TooManySegments {
                    segments: max + 1,
                    max
                })
            );
        }
    }
}

#[test]
fn cmd_without_data() {
    let expected = expected_cmd(DataDir::None, &[]);
    let mut buf = a5(64);
    assert_eq!(cmd(DataDir::None, &[]).emit(&mut buf), Ok(48));
    assert_eq!(buf[..48], expected[..]);
    // A short CDB is zero-padded.
    let short = SrpCmd {
        cdb: &[0x00; 6],
        ..cmd(DataDir::None, &[])
    };
    assert_eq!(short.emit(&mut buf), Ok(48));
    assert!(buf[32..48].iter().all(|&b| b == 0));
    let parsed = CmdIu::parse(&buf[..48]).unwrap();
    assert_eq!(
        (parsed.data_in, parsed.data_out),
        (DataBuffer::None, DataBuffer::None)
    );
}

#[test]
fn cmd_emit_errors() {
    let segs = segments(3);
    let mut buf = a5(1024);
    let long_cdb = [0u8; 17];
    assert_eq!(
        SrpCmd {
            cdb: &long_cdb,
            ..cmd(DataDir::In, &segs)
        }
        .emit(&mut buf),
        Err(Error::Invalid {
            iu: IuType::Cmd,
            field: Field::Cdb,
            value: 17
        })
    );
    assert_eq!(
        cmd(DataDir::None, &segs).emit(&mut buf),
        Err(Error::Invalid {
            iu: IuType::Cmd,
            field: Field::DataDirection,
            value: 3
        })
    );
    let mut small = a5(47);
    assert_eq!(
        cmd(DataDir::None, &[]).emit(&mut small),
        Err(Error::BufferTooShort {
            iu: IuType::Cmd,
            needed: 48,
            got: 47
        })
    );
    let huge = [
        DirectDesc {
            va: 0,
            rkey: 1,
            len: u32::MAX,
        },
        DirectDesc {
            va: 0,
            rkey: 1,
            len: 1,
        },
    ];
    assert!(matches!(
        cmd(DataDir::Out, &huge).emit(&mut buf),
        Err(Error::Invalid {
            field: Field::TotalLength,
            ..
        })
    ));
    let at_top = SrpCmd {
        iu_addr: u64::MAX - 10,
        ..cmd(DataDir::Out, &segs)
    };
    assert!(matches!(
        at_top.emit(&mut buf),
        Err(Error::Invalid {
            field: Field::TableAddress,
            ..
        })
    ));
    // With 300 segments and room for them all, the one-byte count still caps at 255.
    let many = segments(300);
    let mut big = a5(68 + 16 * 300);
    assert_eq!(
        cmd(DataDir::In, &many).emit(&mut big),
        Err(Error::TooManySegments {
            segments: 300,
            max: 255
        })
    );
}

#[test]
fn cmd_parse_rejects_bad_descriptors() {
    let segs = segments(2);
    let good = expected_cmd(DataDir::In, &segs);
    assert!(CmdIu::parse(&good).is_ok());

    let mut immediate = good.clone();
    immediate[5] = 0x30; // DATA-OUT immediate
    assert_eq!(
        CmdIu::parse(&immediate),
        Err(Error::Invalid {
            iu: IuType::Cmd,
            field: Field::BufferFormat,
            value: 3
        })
    );
    let mut zero_count = good.clone();
    zero_count[7] = 0;
    assert_eq!(
        CmdIu::parse(&zero_count),
        Err(Error::Invalid {
            iu: IuType::Cmd,
            field: Field::DataInDescriptors,
            value: 0
        })
    );
    let mut too_many = good.clone();
    too_many[7] = 3; // claims a third entry beyond the IU
    assert_eq!(
        CmdIu::parse(&too_many),
        Err(Error::LengthBeyondIu {
            iu: IuType::Cmd,
            field: Field::DataInDescriptors,
            needed: 68 + 48,
            got: 68 + 32
        })
    );
    let mut external = good.clone();
    external[60..64].copy_from_slice(&48u32.to_be_bytes()); // table of 3, 2 inline
    assert_eq!(
        CmdIu::parse(&external),
        Err(Error::Invalid {
            iu: IuType::Cmd,
            field: Field::TableLength,
            value: 48
        })
    );
    let mut add_cdb = good.clone();
    add_cdb[31] = 16 << 2; // 16 dwords of additional CDB that are not there
    assert!(matches!(
        CmdIu::parse(&add_cdb),
        Err(Error::LengthBeyondIu { .. })
    ));
    // Direct with the count Linux leaves at 0 and with 1; more is wrong.
    let one = expected_cmd(DataDir::Out, &segs[..1]);
    for (count, ok) in [(0u8, true), (1, true), (2, false)] {
        let mut iu = one.clone();
        iu[6] = count;
        assert_eq!(CmdIu::parse(&iu).is_ok(), ok, "direct count {count}");
    }
}

// ---------------------------------------------------------------- every parser

type Parser = fn(&[u8]) -> Result<(), Error>;

fn parsers() -> [(&'static str, Parser); 12] {
    [
        ("LoginReq", |b| LoginReq::parse(b).map(drop)),
        ("LoginRsp", |b| LoginRsp::parse(b).map(drop)),
        ("LoginRej", |b| LoginRej::parse(b).map(drop)),
        ("TskMgmt", |b| TskMgmt::parse(b).map(drop)),
        ("Cmd", |b| CmdIu::parse(b).map(drop)),
        ("Rsp", |b| Rsp::parse(b).map(drop)),
        ("ILogout", |b| ILogout::parse(b).map(drop)),
        ("TLogout", |b| TLogout::parse(b).map(drop)),
        ("CredReq", |b| CredReq::parse(b).map(drop)),
        ("CredRsp", |b| CredRsp::parse(b).map(drop)),
        ("AerReq", |b| AerReq::parse(b).map(drop)),
        ("AerRsp", |b| AerRsp::parse(b).map(drop)),
    ]
}

/// A valid fixture for each parser, in the order of [`parsers`].
fn fixtures() -> [Vec<u8>; 12] {
    [
        LOGIN_REQ.to_vec(),
        LOGIN_RSP.to_vec(),
        LOGIN_REJ.to_vec(),
        TSK_MGMT_ABORT.to_vec(),
        expected_cmd(DataDir::In, &segments(3)),
        rsp_fixture(0x03, 0x02, &[0, 0, 0, 0], &SENSE, (4, 18)),
        iu16(0x03, 0, 0).to_vec(),
        iu16(0x80, 0, 1).to_vec(),
        iu16(0x81, 0, 4).to_vec(),
        iu16(0x41, 0, 0).to_vec(),
        aer_req_fixture(),
        iu16(0x42, 0, 0).to_vec(),
    ]
}

#[test]
fn every_parser_rejects_every_truncation() {
    for ((name, parse), full) in parsers().into_iter().zip(fixtures()) {
        assert_eq!(parse(&full), Ok(()), "{name} fixture");
        for len in 0..full.len() {
            match parse(&full[..len]) {
                Err(Error::Truncated { needed, got, .. })
                | Err(Error::LengthBeyondIu { needed, got, .. }) => {
                    assert_eq!(got, len, "{name} at {len}");
                    assert!(needed > len, "{name} at {len}");
                }
                other => panic!("{name} truncated to {len}: {other:?}"),
            }
        }
    }
}

#[test]
fn every_parser_rejects_other_types() {
    for ((name, parse), full) in parsers().into_iter().zip(fixtures()) {
        let own = full[0];
        for byte in (0..=u8::MAX).filter(|&b| b != own) {
            let mut iu = full.clone();
            iu[0] = byte;
            assert_eq!(
                parse(&iu),
                Err(Error::WrongType {
                    expected: IuType::from(own),
                    got: IuType::from(byte)
                }),
                "{name} with type {byte:#04x}"
            );
        }
    }
}

/// xorshift64 (Marsaglia), seeded: the same inputs every run, no crate needed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(0x5EED_0F5A_B007);
    let mut buf = [0u8; 700];
    let mut accepted = [0u32; 12];
    let fixtures = fixtures();
    for round in 0..40_000 {
        let len = (rng.next() % buf.len() as u64) as usize;
        for b in buf.iter_mut() {
            *b = rng.next() as u8;
        }
        for (i, ((name, parse), fixture)) in parsers().into_iter().zip(&fixtures).enumerate() {
            let input = &mut buf[..len];
            // Half the time, start from the valid fixture and corrupt a few bytes, so
            // that the parsers get past their type and length checks.
            if round % 2 == 0 {
                let n = fixture.len().min(len);
                input[..n].copy_from_slice(&fixture[..n]);
                for _ in 0..(rng.next() % 4) {
                    if len > 1 {
                        let at = 1 + (rng.next() as usize % (len - 1));
                        input[at] = rng.next() as u8;
                    }
                }
            }
            let result = parse(input);
            if let Err(e) = result {
                let text = e.to_string();
                assert!(!text.is_empty(), "{name}");
            } else {
                accepted[i] += 1;
            }
        }
    }
    // Every parser both accepted and rejected some inputs.
    for ((name, _), n) in parsers().into_iter().zip(accepted) {
        assert!(n > 0 && n < 40_000, "{name} accepted {n} of 40000");
    }
}

#[test]
fn random_commands_emit_or_fail_cleanly() {
    let mut rng = XorShift(0xC0FF_EE00_1234_5678);
    let all = segments(300);
    for _ in 0..20_000 {
        let n = (rng.next() % 300) as usize;
        let len = (rng.next() % 5000) as usize;
        let dir = match rng.next() % 3 {
            0 => DataDir::None,
            1 => DataDir::In,
            _ => DataDir::Out,
        };
        let mut buf = a5(len);
        let c = cmd(dir, &all[..n]);
        match c.emit(&mut buf) {
            Ok(written) => {
                assert_eq!(written, c.buffer_len());
                assert!(written <= len);
                assert!(n <= max_sg_entries(len as u32));
                let parsed = CmdIu::parse(&buf[..written]).unwrap();
                assert_eq!(parsed.tag, TAG_U64);
            }
            Err(e) => assert!(
                n > max_sg_entries(len as u32)
                    || len < c.buffer_len()
                    || (dir == DataDir::None && n > 0),
                "{e:?}"
            ),
        }
    }
}
