//! The initiator session against byte fixtures written from the offsets in
//! reference/srp-cm-sa-dm.md §1.1 and §1.2 (not from this crate's emitters): login,
//! credits, tags, commands, responses, target requests, logout and drain, plus a
//! seeded random run of received IUs.

use std::collections::HashMap;

use fabboot_srp::Error;
use fabboot_srp::cmd::{DataDir, TaskAttr};
use fabboot_srp::desc::{BufferFormats, DirectDesc};
use fabboot_srp::error::Field;
use fabboot_srp::iu::IuType;
use fabboot_srp::login::RejectReason;
use fabboot_srp::session::{
    CmdError, Command, IT_IU_LEN_LADDER, Incoming, Login, LoginError, LoginField, LoginOutcome,
    LoginParams, MAX_SENSE_LEN, Negotiated, Session, SessionError, StartError, Tag,
};
use fabboot_srp::tsk::TaskFunction;

const LOGIN_TAG: u64 = 0x0102_0304_0506_0708;
const LUN0: [u8; 8] = [0; 8];
const LUN3: [u8; 8] = [0x00, 0x03, 0, 0, 0, 0, 0, 0];
const READ10: [u8; 10] = [0x28, 0, 0, 0, 0, 0x10, 0, 0, 0x08, 0];
const IU_ADDR: u64 = 0x0000_0001_2345_6000;
const IU_RKEY: u32 = 0x0000_5A5A;

fn ids() -> ([u8; 16], [u8; 16]) {
    let mut initiator = [0u8; 16];
    let mut target = [0u8; 16];
    for i in 0..16u8 {
        initiator[usize::from(i)] = 0x10 + i;
        target[usize::from(i)] = 0x20 + i;
    }
    (initiator, target)
}

fn params(it_iu_len: u32, formats: BufferFormats) -> LoginParams {
    let (initiator_port_id, target_port_id) = ids();
    LoginParams {
        initiator_port_id,
        target_port_id,
        it_iu_len,
        formats,
    }
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn get64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

/// SRP_LOGIN_RSP (reference §1.1): 0 opcode, 4 delta, 8 tag, 16 max IT, 20 max TI,
/// 24 formats, 26 flags (TERMINATED here), 27..52 reserved.
fn login_rsp(tag: u64, req_lim: u32, max_it: u32, max_ti: u32, fmt: u16) -> [u8; 52] {
    let mut b = [0u8; 52];
    b[0] = 0xC0;
    put32(&mut b, 4, req_lim);
    put64(&mut b, 8, tag);
    put32(&mut b, 16, max_it);
    put32(&mut b, 20, max_ti);
    b[24..26].copy_from_slice(&fmt.to_be_bytes());
    b[26] = 0x01;
    b
}

/// SRP_LOGIN_REJ (reference §1.1): 0 opcode, 4 reason, 8 tag, 24 formats.
fn login_rej(tag: u64, reason: u32, fmt: u16) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[0] = 0xC2;
    put32(&mut b, 4, reason);
    put64(&mut b, 8, tag);
    b[24..26].copy_from_slice(&fmt.to_be_bytes());
    b
}

/// SRP_RSP (reference §1.1): 4 delta, 8 tag, 18 flags, 19 status, 20 DATA-OUT
/// residual, 24 DATA-IN residual, 28 sense length, 32 response length, 36 response
/// data then sense data. Lengths are written as given, whatever the flags.
struct RspIu<'a> {
    delta: u32,
    tag: u64,
    flags: u8,
    status: u8,
    out_res: u32,
    in_res: u32,
    resp: &'a [u8],
    sense: &'a [u8],
}

impl RspIu<'_> {
    fn ok(tag: u64) -> RspIu<'static> {
        RspIu {
            delta: 1,
            tag,
            flags: 0,
            status: 0,
            out_res: 0,
            in_res: 0,
            resp: &[],
            sense: &[],
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; 36];
        b[0] = 0xC1;
        put32(&mut b, 4, self.delta);
        put64(&mut b, 8, self.tag);
        b[18] = self.flags;
        b[19] = self.status;
        put32(&mut b, 20, self.out_res);
        put32(&mut b, 24, self.in_res);
        put32(&mut b, 28, self.sense.len() as u32);
        put32(&mut b, 32, self.resp.len() as u32);
        b.extend_from_slice(self.resp);
        b.extend_from_slice(self.sense);
        b
    }
}

const RSPVALID: u8 = 0x01;
const SNSVALID: u8 = 0x02;
const DOOVER: u8 = 0x04;
const DOUNDER: u8 = 0x08;
const DIOVER: u8 = 0x10;
const DIUNDER: u8 = 0x20;

/// The 16-byte target IUs (reference §1.1): opcode, 4..8 delta or reason, 8..16 tag.
fn iu16(opcode: u8, word: u32, tag: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0] = opcode;
    put32(&mut b, 4, word);
    put64(&mut b, 8, tag);
    b
}

/// SRP_AER_REQ (reference §1.1): 4 delta, 8 tag, 20 LUN, 28 sense length, 36 sense.
fn aer_req(delta: u32, tag: u64, sense: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 36];
    b[0] = 0x82;
    put32(&mut b, 4, delta);
    put64(&mut b, 8, tag);
    b[20..28].copy_from_slice(&LUN3);
    put32(&mut b, 28, sense.len() as u32);
    b.extend_from_slice(sense);
    b
}

fn negotiated(req_lim: u32, max_it_iu_len: u32, formats: BufferFormats) -> Negotiated {
    let login = Login::new(params(max_it_iu_len, formats), LOGIN_TAG);
    login
        .on_response(&login_rsp(
            LOGIN_TAG,
            req_lim,
            max_it_iu_len,
            max_it_iu_len,
            formats.0,
        ))
        .unwrap()
}

fn session<const N: usize>(req_lim: u32) -> Session<N> {
    Session::new(negotiated(
        req_lim,
        2116,
        BufferFormats::DIRECT_AND_INDIRECT,
    ))
}

fn read(segments: &[DirectDesc]) -> Command<'_> {
    Command {
        lun: LUN0,
        cdb: &READ10,
        dir: DataDir::In,
        task_attr: TaskAttr::Simple,
        segments,
    }
}

fn segs(n: usize) -> Vec<DirectDesc> {
    (0..n)
        .map(|i| DirectDesc {
            va: 0x1000_0000 + (i as u64) * 0x1000,
            rkey: 0x77,
            len: 512,
        })
        .collect()
}

/// Starts and builds a one-segment READ for `user`; returns its tag.
fn send<const N: usize>(s: &mut Session<N>, user: u32, lun: [u8; 8]) -> Tag {
    let tag = s.start(user).unwrap();
    let seg = segs(1);
    let cmd = Command { lun, ..read(&seg) };
    let mut buf = [0u8; 2116];
    assert_eq!(s.build_cmd(tag, &cmd, IU_ADDR, IU_RKEY, &mut buf), Ok(64));
    tag
}

fn completed<const N: usize>(s: &mut Session<N>, iu: &[u8]) -> fabboot_srp::session::Completion {
    match s.on_iu(iu, &mut [0u8; 16]) {
        Ok(Incoming::Completed(c)) => c,
        other => panic!("expected a completion, got {other:?}"),
    }
}

// ---------------------------------------------------------------- login

#[test]
fn login_request_bytes() {
    let login = Login::new(params(2116, BufferFormats::DIRECT_AND_INDIRECT), LOGIN_TAG);
    let req = login.request();
    let (initiator, target) = ids();
    let mut expected = [0u8; 64];
    expected[0] = 0x00; // SRP_LOGIN_REQ
    put64(&mut expected, 8, LOGIN_TAG);
    put32(&mut expected, 16, 2116);
    expected[24..26].copy_from_slice(&[0x00, 0x06]); // DIRECT | INDIRECT
    expected[26] = 0x00; // MULTI-CHANNEL ACTION single, no solicited bits, no imm.
    expected[32..48].copy_from_slice(&initiator);
    expected[48..64].copy_from_slice(&target);
    assert_eq!(req, expected);

    // Direct is always required; bits outside DIRECT | INDIRECT are dropped.
    let odd = Login::new(params(2116, BufferFormats(0x8004)), LOGIN_TAG);
    assert_eq!(odd.request()[24..26], [0x00, 0x06]);
    assert_eq!(odd.params().formats, BufferFormats::DIRECT_AND_INDIRECT);
}

#[test]
fn login_response_negotiates_the_sg_limit_per_iu_length() {
    // Reference §1.2 / §3.3: 48-byte fixed part, 20-byte indirect header, 16 bytes per
    // entry, at most 255 entries (one-byte count); one direct descriptor needs 64.
    for (target_max, want_sg) in [
        (4148u32, 255usize),
        (2116, 128),
        (1024, 59),
        (276, 13),
        (64, 1),
    ] {
        assert!(want_sg == 1 || 68 + 16 * want_sg <= target_max as usize);
        assert!(want_sg == 255 || 68 + 16 * (want_sg + 1) > target_max as usize);
        let login = Login::new(params(8276, BufferFormats::DIRECT_AND_INDIRECT), 9);
        let n = login
            .on_response(&login_rsp(9, 128, target_max, 8276, 0x0006))
            .unwrap();
        assert_eq!(n.max_it_iu_len, target_max);
        assert_eq!(n.max_ti_iu_len, 8276);
        assert_eq!(n.req_lim, 128);
        assert_eq!(n.formats, BufferFormats::DIRECT_AND_INDIRECT);
        assert_eq!(n.max_sg, want_sg, "max_it_iu_len {target_max}");
    }
}

#[test]
fn login_response_takes_the_smaller_iu_and_the_common_formats() {
    // We ask 1024, the target could take 8276 (ib_srpt, reference §3.3).
    let login = Login::new(params(1024, BufferFormats::DIRECT_AND_INDIRECT), 1);
    let n = login
        .on_response(&login_rsp(1, 128, 8276, 1024, 0x0006))
        .unwrap();
    assert_eq!(n.max_it_iu_len, 1024);
    assert_eq!(n.max_sg, (1024 - 68) / 16);

    // A direct-only target: one segment per command, whatever the IU length.
    let n = login
        .on_response(&login_rsp(1, 128, 8276, 1024, 0x0002))
        .unwrap();
    assert_eq!(n.formats, BufferFormats::DIRECT);
    assert_eq!(n.max_sg, 1);

    // We asked direct only.
    let direct = Login::new(params(4148, BufferFormats::DIRECT), 1);
    let n = direct
        .on_response(&login_rsp(1, 128, 8276, 4148, 0x0006))
        .unwrap();
    assert_eq!((n.formats, n.max_sg), (BufferFormats::DIRECT, 1));

    // A target that leaves SUPPORTED BUFFER FORMATS zero accepted what we required.
    let n = login
        .on_response(&login_rsp(1, 128, 8276, 1024, 0))
        .unwrap();
    assert_eq!(n.formats, BufferFormats::DIRECT_AND_INDIRECT);

    // The REP private data is 196 bytes; what follows the 52 is ignored.
    let mut private = [0xEEu8; 196];
    private[..52].copy_from_slice(&login_rsp(1, 128, 8276, 1024, 0x0006));
    assert_eq!(login.on_response(&private).unwrap().max_it_iu_len, 1024);
}

#[test]
fn login_response_errors() {
    let login = Login::new(params(2116, BufferFormats::DIRECT_AND_INDIRECT), 5);
    let invalid = |field, value| Err(LoginError::Invalid { field, value });
    assert_eq!(
        login.on_response(&login_rsp(6, 128, 2116, 2116, 6)),
        Err(LoginError::TagMismatch {
            expected: 5,
            got: 6
        })
    );
    assert_eq!(
        login.on_response(&login_rsp(5, 128, 2116, 2116, 6)[..51]),
        Err(LoginError::Wire(Error::Truncated {
            iu: IuType::LoginRsp,
            needed: 52,
            got: 51
        }))
    );
    let mut rej = [0u8; 148]; // CM REJ private data
    rej[..32].copy_from_slice(&login_rej(5, 0x0001_0001, 6));
    assert_eq!(
        login.on_response(&rej),
        Err(LoginError::Wire(Error::WrongType {
            expected: IuType::LoginRsp,
            got: IuType::LoginRej
        }))
    );
    assert_eq!(
        login.on_response(&login_rsp(5, 128, 63, 2116, 6)),
        invalid(LoginField::MaxItIuLen, 63)
    );
    assert_eq!(
        login.on_response(&login_rsp(5, 128, 2116, 35, 6)),
        invalid(LoginField::MaxTiIuLen, 35)
    );
    assert_eq!(
        login.on_response(&login_rsp(5, 0, 2116, 2116, 6)),
        invalid(LoginField::RequestLimit, 0)
    );
    assert_eq!(
        login.on_response(&login_rsp(5, 0x8000_0000, 2116, 2116, 6)),
        invalid(LoginField::RequestLimit, 0x8000_0000)
    );
    assert_eq!(
        login.on_response(&login_rsp(5, 128, 2116, 2116, 0x0004)),
        invalid(LoginField::BufferFormats, 4)
    );
    // The smallest working login: 64 bytes, 36-byte responses, 1 credit.
    let tiny = Login::new(params(64, BufferFormats::DIRECT), 5);
    let n = tiny.on_response(&login_rsp(5, 1, 64, 36, 2)).unwrap();
    assert_eq!(
        (n.max_it_iu_len, n.max_ti_iu_len, n.req_lim, n.max_sg),
        (64, 36, 1, 1)
    );
}

#[test]
fn reject_of_indirect_retries_direct_only() {
    let login = Login::new(params(2116, BufferFormats::DIRECT_AND_INDIRECT), LOGIN_TAG);
    let LoginOutcome::Retry(retry) = login.on_reject(&login_rej(LOGIN_TAG, 0x0001_0004, 2)) else {
        panic!("no retry");
    };
    assert_eq!(retry.params().formats, BufferFormats::DIRECT);
    assert_eq!(retry.params().it_iu_len, 2116);
    assert_eq!(retry.tag(), LOGIN_TAG + 1);
    let req = retry.request();
    assert_eq!(req[24..26], [0x00, 0x02]);
    assert_eq!(get64(&req, 8), LOGIN_TAG + 1);

    // Already direct only: nothing left to drop.
    assert_eq!(
        retry.on_reject(&login_rej(LOGIN_TAG + 1, 0x0001_0004, 0)),
        LoginOutcome::Fail(LoginError::Rejected(
            RejectReason::UnsupportedDescriptorFormats
        ))
    );
    // A reject of the retry carrying the old tag is not ours.
    assert_eq!(
        retry.on_reject(&login_rej(LOGIN_TAG, 0x0001_0004, 0)),
        LoginOutcome::Fail(LoginError::TagMismatch {
            expected: LOGIN_TAG + 1,
            got: LOGIN_TAG
        })
    );
}

#[test]
fn reject_of_iu_length_walks_the_ladder_down_to_64() {
    let mut login = Login::new(params(8260, BufferFormats::DIRECT_AND_INDIRECT), 100);
    let mut asked = vec![login.params().it_iu_len];
    loop {
        let private = login_rej(login.tag(), 0x0001_0002, 6);
        match login.on_reject(&private) {
            LoginOutcome::Retry(next) => {
                assert!(next.params().it_iu_len < login.params().it_iu_len);
                assert_eq!(next.params().formats, login.params().formats);
                assert_eq!(get32(&next.request(), 16), next.params().it_iu_len);
                login = next;
                asked.push(login.params().it_iu_len);
            }
            LoginOutcome::Fail(e) => {
                assert_eq!(e, LoginError::Rejected(RejectReason::ItIuLenTooLarge));
                break;
            }
        }
    }
    assert_eq!(asked, [8260, 4148, 2116, 1024, 276, 64]);
    assert_eq!(asked[1..], IT_IU_LEN_LADDER);

    // From between the rungs: the next rung below.
    let login = Login::new(params(3000, BufferFormats::DIRECT), 1);
    match login.on_reject(&login_rej(1, 0x0001_0002, 2)) {
        LoginOutcome::Retry(next) => assert_eq!(next.params().it_iu_len, 2116),
        other => panic!("{other:?}"),
    }
}

#[test]
fn other_rejects_fail_with_their_reason() {
    let login = Login::new(params(2116, BufferFormats::DIRECT_AND_INDIRECT), 7);
    for (code, reason) in [
        (0x0001_0000, RejectReason::NoReason),
        (0x0001_0001, RejectReason::InsufficientResources),
        (0x0001_0003, RejectReason::UnableToAssociate),
        (0x0001_0005, RejectReason::MultiChannelUnsupported),
        (0x0001_0006, RejectReason::ChannelLimitReached),
        (0x0002_0000, RejectReason::Unknown(0x0002_0000)),
    ] {
        assert_eq!(
            login.on_reject(&login_rej(7, code, 6)),
            LoginOutcome::Fail(LoginError::Rejected(reason)),
            "{code:#x}"
        );
    }
    assert!(matches!(
        login.on_reject(&[0xC2; 31]),
        LoginOutcome::Fail(LoginError::Wire(Error::Truncated { .. }))
    ));
    assert_eq!(
        login.on_reject(&login_rej(8, 0x0001_0002, 6)),
        LoginOutcome::Fail(LoginError::TagMismatch {
            expected: 7,
            got: 8
        })
    );
}

// ---------------------------------------------------------------- credits and tags

#[test]
fn the_last_credit_is_kept_for_task_management() {
    let mut s = session::<32>(3);
    let a = send(&mut s, 1, LUN0);
    let b = send(&mut s, 2, LUN0);
    assert_eq!(s.credits(), 1);
    assert_eq!(s.start(3), Err(StartError::NoCredit { credits: 1 }));
    assert_eq!(s.stats().no_credit, 1);
    assert_eq!(s.outstanding(), 2);

    let mut tm = [0u8; 48];
    let (t, len) = s
        .start_task_mgmt(90, LUN0, TaskFunction::AbortTask, Some(a), &mut tm)
        .unwrap();
    assert_eq!(len, 48);
    assert!(t.is_task_mgmt());
    assert_eq!(s.credits(), 0);
    assert!(s.task_mgmt_outstanding());
    // SRP_TSK_MGMT (reference §1.1): tag 8, LUN 20, function 30, task tag 32.
    assert_eq!(tm[0], 0x01);
    assert_eq!(get64(&tm, 8), t.wire());
    assert_eq!(tm[30], 0x01);
    assert_eq!(get64(&tm, 32), a.wire());
    assert_eq!(
        s.start_task_mgmt(91, LUN0, TaskFunction::LogicalUnitReset, None, &mut tm),
        Err(StartError::NoCredit { credits: 0 })
    );

    // Each response gives its REQUEST LIMIT DELTA back.
    let c = completed(&mut s, &RspIu::ok(b.wire()).bytes());
    assert_eq!((c.user, c.tag), (2, b));
    assert_eq!(s.credits(), 1);
    assert_eq!(s.start(3), Err(StartError::NoCredit { credits: 1 }));
    let c = completed(&mut s, &RspIu::ok(t.wire()).bytes());
    assert_eq!((c.user, c.tag), (90, t));
    assert_eq!(s.credits(), 2);
    assert!(!s.task_mgmt_outstanding());
    assert!(s.start(3).is_ok());
    assert_eq!(s.credits(), 1);
}

#[test]
fn tags_run_out_before_credits() {
    let mut s = session::<2>(128);
    send(&mut s, 1, LUN0);
    s.start(2).unwrap();
    assert_eq!(s.start(3), Err(StartError::NoTag));
    assert_eq!(s.stats().no_tag, 1);
    assert_eq!(s.credits(), 126);
    assert_eq!(s.outstanding(), 2);
}

#[test]
fn a_reused_slot_gets_a_new_generation_and_the_old_tag_is_refused() {
    let mut s = session::<1>(16);
    let old = send(&mut s, 1, LUN0);
    completed(&mut s, &RspIu::ok(old.wire()).bytes());
    // Same slot (there is one), new generation.
    let new = send(&mut s, 2, LUN0);
    assert_ne!(new, old);
    assert_eq!(new.wire() & 0xFFFF, old.wire() & 0xFFFF);

    let credits = s.credits();
    assert_eq!(
        s.on_iu(&RspIu::ok(old.wire()).bytes(), &mut []),
        Err(SessionError::UnknownTag { tag: old.wire() })
    );
    // The stale response's delta still counts (the target sent it), the new command
    // is untouched.
    assert_eq!(s.credits(), credits + 1);
    assert_eq!(s.outstanding(), 1);
    let c = completed(&mut s, &RspIu::ok(new.wire()).bytes());
    assert_eq!(c.user, 2);
    // A duplicate of that response: the slot has nothing in flight.
    assert_eq!(
        s.on_iu(&RspIu::ok(new.wire()).bytes(), &mut []),
        Err(SessionError::NotInFlight { tag: new.wire() })
    );
    assert_eq!(s.stats().unknown_tags, 2);
    // An old tag cannot be built either.
    let seg = segs(1);
    assert_eq!(
        s.build_cmd(old, &read(&seg), IU_ADDR, IU_RKEY, &mut [0u8; 64]),
        Err(CmdError::NotReserved { tag: old.wire() })
    );
}

// ---------------------------------------------------------------- SRP_CMD

#[test]
fn build_cmd_writes_a_direct_descriptor_for_one_segment() {
    let mut s = session::<4>(8);
    let tag = s.start(1).unwrap();
    let seg = segs(1);
    let mut buf = [0xA5u8; 2116];
    let len = s
        .build_cmd(
            tag,
            &Command {
                lun: LUN3,
                ..read(&seg)
            },
            IU_ADDR,
            IU_RKEY,
            &mut buf,
        )
        .unwrap();
    assert_eq!(len, 64);
    // SRP_CMD (reference §1.1): 0 opcode, 5 formats (DATA-IN in bits 3..0), 6/7 counts,
    // 8 tag, 20 LUN, 29 task attribute, 31 additional CDB length, 32 CDB, 48 descriptor.
    let mut want = [0u8; 64];
    want[0] = 0x02;
    want[5] = 0x01;
    put64(&mut want, 8, tag.wire());
    want[20..28].copy_from_slice(&LUN3);
    want[32..42].copy_from_slice(&READ10);
    put64(&mut want, 48, seg[0].va);
    put32(&mut want, 56, seg[0].rkey);
    put32(&mut want, 60, seg[0].len);
    assert_eq!(buf[..64], want);
    assert!(buf[64..].iter().all(|&b| b == 0xA5));
    assert_eq!(s.stats().commands, 1);
}

#[test]
fn build_cmd_writes_an_inline_indirect_table_for_more() {
    let mut s = session::<4>(8);
    let tag = s.start(1).unwrap();
    let seg = segs(3);
    let write = Command {
        dir: DataDir::Out,
        cdb: &[0x2A, 0, 0, 0, 0, 0x10, 0, 0, 0x03, 0],
        ..read(&seg)
    };
    let mut buf = [0u8; 2116];
    let len = s
        .build_cmd(tag, &write, IU_ADDR, IU_RKEY, &mut buf)
        .unwrap();
    assert_eq!(len, 48 + 20 + 3 * 16);
    assert_eq!(buf[5], 0x20, "DATA-OUT indirect");
    assert_eq!((buf[6], buf[7]), (3, 0));
    // Indirect header (reference §1.2): table descriptor at IU + 68, 48 bytes, then the
    // total length, then the entries.
    assert_eq!(get64(&buf, 48), IU_ADDR + 68);
    assert_eq!(get32(&buf, 56), IU_RKEY);
    assert_eq!(get32(&buf, 60), 48);
    assert_eq!(get32(&buf, 64), 3 * 512);
    for (i, d) in seg.iter().enumerate() {
        let at = 68 + 16 * i;
        assert_eq!(
            (get64(&buf, at), get32(&buf, at + 8), get32(&buf, at + 12)),
            (d.va, d.rkey, d.len)
        );
    }
}

#[test]
fn build_cmd_errors_give_the_tag_and_credit_back() {
    // 276 bytes: 13 descriptors (reference §2.2 step 4).
    let mut s = Session::<4>::new(negotiated(8, 276, BufferFormats::DIRECT_AND_INDIRECT));
    assert_eq!(s.negotiated().max_sg, 13);
    let mut buf = [0u8; 4096]; // longer than max_it_iu_len: only 276 bytes are used
    let too_many = segs(14);
    let tag = s.start(1).unwrap();
    assert_eq!(s.credits(), 7);
    assert_eq!(
        s.build_cmd(tag, &read(&too_many), IU_ADDR, IU_RKEY, &mut buf),
        Err(CmdError::TooManySegments {
            segments: 14,
            max: 13
        })
    );
    assert_eq!((s.credits(), s.outstanding()), (8, 0));
    // The tag is gone: it cannot be built now.
    let one = segs(1);
    assert_eq!(
        s.build_cmd(tag, &read(&one), IU_ADDR, IU_RKEY, &mut buf),
        Err(CmdError::NotReserved { tag: tag.wire() })
    );

    let tag = s.start(2).unwrap();
    let long_cdb = [0u8; 17];
    assert_eq!(
        s.build_cmd(
            tag,
            &Command {
                cdb: &long_cdb,
                ..read(&one)
            },
            IU_ADDR,
            IU_RKEY,
            &mut buf
        ),
        Err(CmdError::Wire(Error::Invalid {
            iu: IuType::Cmd,
            field: Field::Cdb,
            value: 17
        }))
    );
    assert_eq!((s.credits(), s.outstanding()), (8, 0));

    let tag = s.start(3).unwrap();
    assert!(matches!(
        s.build_cmd(tag, &read(&segs(13)), IU_ADDR, IU_RKEY, &mut buf[..200]),
        Err(CmdError::Wire(Error::TooManySegments { segments: 13, .. }))
    ));
    assert_eq!((s.credits(), s.outstanding()), (8, 0));

    // Built once; a second build of the same tag is refused and changes nothing.
    let tag = s.start(4).unwrap();
    assert_eq!(
        s.build_cmd(tag, &read(&segs(13)), IU_ADDR, IU_RKEY, &mut buf),
        Ok(276)
    );
    assert_eq!(
        s.build_cmd(tag, &read(&one), IU_ADDR, IU_RKEY, &mut buf),
        Err(CmdError::NotReserved { tag: tag.wire() })
    );
    assert_eq!((s.credits(), s.outstanding()), (7, 1));

    // Direct only: two segments cannot go.
    let mut d = Session::<4>::new(negotiated(8, 2116, BufferFormats::DIRECT));
    let tag = d.start(1).unwrap();
    assert_eq!(
        d.build_cmd(tag, &read(&segs(2)), IU_ADDR, IU_RKEY, &mut buf),
        Err(CmdError::IndirectNotNegotiated { segments: 2 })
    );
    assert_eq!((d.credits(), d.outstanding()), (8, 0));
}

#[test]
fn a_started_command_can_be_abandoned_before_it_is_built() {
    let mut s = session::<4>(4);
    let tag = s.start(11).unwrap();
    assert_eq!(s.credits(), 3);
    // A response cannot complete what was never sent.
    assert_eq!(
        s.on_iu(
            &RspIu {
                delta: 0,
                ..RspIu::ok(tag.wire())
            }
            .bytes(),
            &mut []
        ),
        Err(SessionError::NotInFlight { tag: tag.wire() })
    );
    assert_eq!(s.abandon(tag), Some(11));
    assert_eq!((s.credits(), s.outstanding()), (4, 0));
    assert_eq!(s.abandon(tag), None);
}

// ---------------------------------------------------------------- SRP_RSP

#[test]
fn responses_carry_status_sense_and_signed_residuals() {
    let mut s = session::<8>(16);
    let tag = send(&mut s, 42, LUN0);
    let sense = [
        0x70, 0, 0x05, 0, 0, 0, 0, 0x0A, 0, 0, 0, 0, 0x24, 0, 0, 0, 0, 0,
    ];
    let iu = RspIu {
        delta: 3,
        flags: SNSVALID | DIUNDER | DOOVER,
        status: 0x02,
        out_res: 100,
        in_res: 4096,
        sense: &sense,
        ..RspIu::ok(tag.wire())
    }
    .bytes();
    let before = s.credits();
    let c = completed(&mut s, &iu);
    assert_eq!(c.user, 42);
    assert_eq!(c.status, 0x02);
    assert_eq!(c.data_in_residual, 4096);
    assert_eq!(c.data_out_residual, -100);
    let span = c.sense.unwrap();
    assert_eq!(span.offset, 36);
    assert_eq!(span.of(&iu), sense);
    assert_eq!(c.response_code, None);
    assert_eq!(s.credits(), before + 3);
    assert_eq!(s.outstanding(), 0);
    assert_eq!(s.stats().completed, 1);

    // Response data first, then sense; the other direction's flags.
    let tag = send(&mut s, 43, LUN0);
    let iu = RspIu {
        flags: RSPVALID | SNSVALID | DIOVER | DOUNDER,
        out_res: 7,
        in_res: u32::MAX,
        resp: &[0, 0, 0, 0],
        sense: &sense[..8],
        ..RspIu::ok(tag.wire())
    }
    .bytes();
    let c = completed(&mut s, &iu);
    assert_eq!(c.data_in_residual, -i64::from(u32::MAX));
    assert_eq!(c.data_out_residual, 7);
    assert_eq!(c.response_code, Some(0));
    assert_eq!(c.sense.unwrap().offset, 40);
    assert_eq!(c.sense.unwrap().of(&iu), &sense[..8]);

    // Without the flags, residual counts and lengths mean nothing.
    let tag = send(&mut s, 44, LUN0);
    let mut iu = RspIu {
        out_res: 5,
        in_res: 6,
        ..RspIu::ok(tag.wire())
    }
    .bytes();
    put32(&mut iu, 28, 0xFFFF_FFFF);
    let c = completed(&mut s, &iu);
    assert_eq!(
        (c.data_in_residual, c.data_out_residual, c.sense),
        (0, 0, None)
    );
}

#[test]
fn malformed_ius_are_typed_errors_and_the_session_goes_on() {
    let mut s = session::<8>(16);
    let tag = send(&mut s, 1, LUN0);
    let w = tag.wire();
    let mut reply = [0u8; 16];
    let long_sense = [0x70u8; MAX_SENSE_LEN + 1];
    let short_rsp = RspIu::ok(w).bytes()[..20].to_vec();
    let mut beyond = RspIu {
        flags: SNSVALID,
        sense: &[0x70; 18],
        ..RspIu::ok(w)
    }
    .bytes();
    beyond.truncate(36 + 10);
    let cases: Vec<(Vec<u8>, SessionError)> = vec![
        (vec![], SessionError::Empty),
        (
            short_rsp,
            SessionError::Wire(Error::Truncated {
                iu: IuType::Rsp,
                needed: 36,
                got: 20,
            }),
        ),
        (
            beyond,
            SessionError::Wire(Error::LengthBeyondIu {
                iu: IuType::Rsp,
                field: Field::SenseDataLen,
                needed: 36 + 18,
                got: 36 + 10,
            }),
        ),
        (
            RspIu {
                flags: SNSVALID,
                sense: &long_sense,
                ..RspIu::ok(w)
            }
            .bytes(),
            SessionError::SenseTooLong {
                tag: w,
                len: MAX_SENSE_LEN + 1,
            },
        ),
        (
            RspIu {
                flags: DIUNDER | DIOVER,
                ..RspIu::ok(w)
            }
            .bytes(),
            SessionError::ResidualFlags {
                tag: w,
                flags: DIUNDER | DIOVER,
            },
        ),
        (
            RspIu::ok(0xDEAD_BEEF_0000_0001).bytes(),
            SessionError::UnknownTag {
                tag: 0xDEAD_BEEF_0000_0001,
            },
        ),
        (
            RspIu::ok(w + 1).bytes(), // the next slot, idle
            SessionError::UnknownTag { tag: w + 1 },
        ),
        (
            RspIu::ok(w | 1 << 63).bytes(), // the command's tag with the task-management bit
            SessionError::UnknownTag { tag: w | 1 << 63 },
        ),
        (
            iu16(0x55, 0, w).to_vec(),
            SessionError::UnexpectedIu(IuType::Unknown(0x55)),
        ),
        (
            iu16(0x02, 0, w).to_vec(),
            SessionError::UnexpectedIu(IuType::Cmd),
        ),
        (
            login_rsp(w, 1, 64, 64, 2).to_vec(),
            SessionError::UnexpectedIu(IuType::LoginRsp),
        ),
        (
            iu16(0x81, 0, w)[..15].to_vec(),
            SessionError::Wire(Error::Truncated {
                iu: IuType::CredReq,
                needed: 16,
                got: 15,
            }),
        ),
    ];
    for (i, (iu, want)) in cases.iter().enumerate() {
        assert_eq!(s.on_iu(iu, &mut reply), Err(*want), "case {i}");
        assert_eq!(s.outstanding(), 1, "case {i}");
    }
    assert_eq!(s.stats().errors, cases.len() as u64);
    assert_eq!(s.stats().received, cases.len() as u64);

    // Longer than the target announced (2116 here).
    let mut huge = RspIu::ok(w).bytes();
    huge.resize(2117, 0);
    assert_eq!(
        s.on_iu(&huge, &mut reply),
        Err(SessionError::IuTooLong {
            iu: IuType::Rsp,
            len: 2117,
            max: 2116
        })
    );

    // After all that, the command still completes.
    let c = completed(&mut s, &RspIu::ok(w).bytes());
    assert_eq!(c.user, 1);
    assert_eq!(s.outstanding(), 0);
}

#[test]
fn sense_of_exactly_252_bytes_is_accepted() {
    let mut s = session::<2>(4);
    let tag = send(&mut s, 1, LUN0);
    let sense = [0x72u8; MAX_SENSE_LEN];
    let iu = RspIu {
        flags: SNSVALID,
        sense: &sense,
        ..RspIu::ok(tag.wire())
    }
    .bytes();
    let c = completed(&mut s, &iu);
    assert_eq!(c.sense.unwrap().len, 252);
}

// ---------------------------------------------------------------- target requests

#[test]
fn cred_req_is_answered_and_its_delta_added() {
    let mut s = session::<4>(1);
    assert_eq!(s.start(1), Err(StartError::NoCredit { credits: 1 }));
    let mut reply = [0xA5u8; 20];
    assert_eq!(
        s.on_iu(&iu16(0x81, 5, 0x1122_3344_5566_7788), &mut reply),
        Ok(Incoming::Reply(16))
    );
    // SRP_CRED_RSP (reference §1.1): 0x41, reserved, the request's tag.
    let mut want = [0u8; 16];
    want[0] = 0x41;
    put64(&mut want, 8, 0x1122_3344_5566_7788);
    assert_eq!(reply[..16], want);
    assert_eq!(reply[16..], [0xA5; 4]);
    assert_eq!(s.credits(), 6);
    assert!(s.start(1).is_ok());

    // The delta is signed: 0xFFFF_FFFE takes two back.
    assert_eq!(
        s.on_iu(&iu16(0x81, 0xFFFF_FFFE, 1), &mut reply),
        Ok(Incoming::Reply(16))
    );
    assert_eq!(s.credits(), 3);
    // A hostile extreme in either direction cannot overflow.
    for _ in 0..4 {
        s.on_iu(&iu16(0x81, 0x7FFF_FFFF, 1), &mut reply).unwrap();
    }
    assert_eq!(s.credits(), 3 + 4 * i64::from(i32::MAX));
    s.on_iu(&iu16(0x81, 0x8000_0000, 1), &mut reply).unwrap();
    assert_eq!(
        s.credits(),
        3 + 4 * i64::from(i32::MAX) + i64::from(i32::MIN)
    );

    // No room for the answer: an error, but the credits were granted.
    let before = s.credits();
    assert_eq!(
        s.on_iu(&iu16(0x81, 1, 2), &mut reply[..15]),
        Err(SessionError::Wire(Error::BufferTooShort {
            iu: IuType::CredRsp,
            needed: 16,
            got: 15
        }))
    );
    assert_eq!(s.credits(), before + 1);
    assert_eq!(s.stats().replies, 7);
}

#[test]
fn aer_req_is_answered() {
    let mut s = session::<4>(4);
    let mut reply = [0u8; 16];
    let iu = aer_req(
        2,
        0xAB,
        &[0x70, 0, 0x06, 0, 0, 0, 0, 0x0A, 0, 0, 0, 0, 0x3F, 0x0E],
    );
    assert_eq!(s.on_iu(&iu, &mut reply), Ok(Incoming::Reply(16)));
    let mut want = [0u8; 16];
    want[0] = 0x42;
    put64(&mut want, 8, 0xAB);
    assert_eq!(reply, want);
    assert_eq!(s.credits(), 6);

    // Sense beyond the IU: refused, no answer written, delta counted.
    let mut bad = aer_req(1, 0xAC, &[0x70; 8]);
    put32(&mut bad, 28, 9);
    let mut reply = [0xA5u8; 16];
    assert!(matches!(
        s.on_iu(&bad, &mut reply),
        Err(SessionError::Wire(Error::LengthBeyondIu {
            iu: IuType::AerReq,
            ..
        }))
    ));
    assert_eq!(reply, [0xA5; 16]);
    assert_eq!(s.credits(), 7);
}

// ---------------------------------------------------------------- logout, drain, TM

#[test]
fn t_logout_stops_the_session_and_drain_returns_every_user() {
    let mut s = session::<8>(32);
    for user in [10, 11, 12] {
        send(&mut s, user, LUN0);
    }
    s.start(13).unwrap(); // started, not built
    let mut tm = [0u8; 48];
    s.start_task_mgmt(14, LUN0, TaskFunction::LogicalUnitReset, None, &mut tm)
        .unwrap();
    assert_eq!(
        s.on_iu(&iu16(0x80, 0x0000_0003, 9), &mut []),
        Ok(Incoming::Logout(3))
    );
    assert!(s.is_logged_out());
    assert_eq!(s.start(15), Err(StartError::LoggedOut));
    assert_eq!(
        s.start_task_mgmt(15, LUN0, TaskFunction::LogicalUnitReset, None, &mut tm),
        Err(StartError::LoggedOut)
    );
    let mut users: Vec<u32> = s.drain().collect();
    users.sort_unstable();
    assert_eq!(users, [10, 11, 12, 13, 14]);
    assert_eq!(s.outstanding(), 0);
    assert!(!s.task_mgmt_outstanding());
    assert_eq!(s.drain().count(), 0);
}

#[test]
fn lun_reset_then_drain_lun_frees_only_that_lun() {
    let mut s = session::<8>(32);
    let a = send(&mut s, 1, LUN3);
    send(&mut s, 2, LUN0);
    send(&mut s, 3, LUN3);
    let mut tm = [0u8; 48];
    let (t, _) = s
        .start_task_mgmt(50, LUN3, TaskFunction::LogicalUnitReset, None, &mut tm)
        .unwrap();
    assert_eq!(tm[30], 0x08);
    assert_eq!(tm[20..28], LUN3);
    assert_eq!(get64(&tm, 32), 0);
    assert_eq!(tm[8] & 0x80, 0x80, "task-management tags have bit 63 set");
    let c = completed(
        &mut s,
        &RspIu {
            flags: RSPVALID,
            resp: &[0, 0, 0, 0],
            ..RspIu::ok(t.wire())
        }
        .bytes(),
    );
    assert_eq!((c.user, c.response_code), (50, Some(0)));
    let mut users: Vec<u32> = s.drain_lun(LUN3).collect();
    users.sort_unstable();
    assert_eq!(users, [1, 3]);
    assert_eq!(s.outstanding(), 1);
    // A late response for a reset command names nothing in flight.
    assert_eq!(
        s.on_iu(&RspIu::ok(a.wire()).bytes(), &mut []),
        Err(SessionError::NotInFlight { tag: a.wire() })
    );
}

#[test]
fn abort_task_needs_a_command_in_flight() {
    let mut s = session::<4>(8);
    let mut tm = [0u8; 48];
    let reserved = s.start(1).unwrap();
    assert_eq!(
        s.start_task_mgmt(9, LUN0, TaskFunction::AbortTask, Some(reserved), &mut tm),
        Err(StartError::NotInFlight {
            tag: reserved.wire()
        })
    );
    assert_eq!(
        s.start_task_mgmt(9, LUN0, TaskFunction::AbortTask, None, &mut tm),
        Err(StartError::NotInFlight { tag: 0 })
    );
    let sent = send(&mut s, 2, LUN0);
    // Too small a buffer: nothing taken.
    let credits = s.credits();
    assert!(matches!(
        s.start_task_mgmt(9, LUN0, TaskFunction::AbortTask, Some(sent), &mut tm[..47]),
        Err(StartError::Wire(Error::BufferTooShort { .. }))
    ));
    assert_eq!(s.credits(), credits);
    assert!(!s.task_mgmt_outstanding());

    let (t, _) = s
        .start_task_mgmt(9, LUN0, TaskFunction::AbortTask, Some(sent), &mut tm)
        .unwrap();
    assert_eq!(
        s.start_task_mgmt(10, LUN0, TaskFunction::AbortTask, Some(sent), &mut tm),
        Err(StartError::NoTag)
    );
    let c = completed(
        &mut s,
        &RspIu {
            flags: RSPVALID,
            resp: &[0, 0, 0, 5],
            ..RspIu::ok(t.wire())
        }
        .bytes(),
    );
    assert_eq!(c.response_code, Some(5)); // failed: the command stays in flight
    assert_eq!(s.outstanding(), 2);
    let (t, _) = s
        .start_task_mgmt(9, LUN0, TaskFunction::AbortTask, Some(sent), &mut tm)
        .unwrap();
    let c = completed(
        &mut s,
        &RspIu {
            flags: RSPVALID,
            resp: &[0, 0, 0, 0],
            ..RspIu::ok(t.wire())
        }
        .bytes(),
    );
    assert_eq!(c.response_code, Some(0));
    let credits = s.credits();
    assert_eq!(s.abandon(sent), Some(2));
    assert_eq!(
        s.credits(),
        credits,
        "an aborted command's credit comes from the target"
    );
    assert_eq!(s.outstanding(), 1);
}

// ---------------------------------------------------------------- random run

/// xorshift64 (Marsaglia), seeded: the same inputs every run, no crate needed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the test expects of the session, tracked independently of it.
struct Model {
    credits: i64,
    reserved: HashMap<u64, (Tag, u32)>,
    in_flight: HashMap<u64, (Tag, u32)>,
    tm: Option<(Tag, u32)>,
}

impl Model {
    fn new(req_lim: u32) -> Model {
        Model {
            credits: i64::from(req_lim),
            reserved: HashMap::new(),
            in_flight: HashMap::new(),
            tm: None,
        }
    }

    /// The documented credit rule: SRP_RSP, CRED_REQ and AER_REQ add bytes 4..8 as
    /// a signed delta once their fixed part (36, 16, 36 bytes) is there.
    fn received(&mut self, iu: &[u8]) {
        let fixed = match iu.first() {
            Some(0xC1) | Some(0x82) => 36,
            Some(0x81) => 16,
            _ => return,
        };
        if iu.len() >= fixed {
            self.credits += i64::from(get32(iu, 4) as i32);
        }
    }
}

const N: usize = 8;
const MAX_TI: u32 = 512;

#[test]
fn twenty_thousand_random_and_mutated_ius() {
    let mut rng = Rng(0x5EED_0F5E_5510_11AB);
    let fresh = || Session::<N>::new(negotiated(6, MAX_TI, BufferFormats::DIRECT_AND_INDIRECT));
    let mut s = fresh();
    let mut m = Model::new(6);
    let mut next_user = 0u32;
    let mut buf = vec![0u8; MAX_TI as usize];
    let mut reply = [0u8; 16];
    let mut completions = 0;
    let mut logouts = 0;

    for step in 0..20_000 {
        // Keep the channel busy: start and build commands while credits allow.
        for _ in 0..rng.below(3) {
            next_user += 1;
            match s.start(next_user) {
                Ok(tag) => {
                    assert!(m.credits > 1, "step {step}: started without credit");
                    m.credits -= 1;
                    m.reserved.insert(tag.wire(), (tag, next_user));
                }
                Err(StartError::NoCredit { credits }) => {
                    assert_eq!(credits, m.credits);
                    assert!(m.credits <= 1);
                }
                Err(StartError::NoTag) => assert_eq!(m.reserved.len() + m.in_flight.len(), N),
                Err(e) => panic!("step {step}: {e:?}"),
            }
        }
        if let Some(&w) = m.reserved.keys().next() {
            let (tag, user) = m.reserved.remove(&w).unwrap();
            let seg = segs(rng.below(8) as usize);
            let dir = if seg.is_empty() {
                DataDir::None
            } else {
                DataDir::In
            };
            let cmd = Command { dir, ..read(&seg) };
            match s.build_cmd(tag, &cmd, IU_ADDR, IU_RKEY, &mut buf) {
                Ok(_) => {
                    m.in_flight.insert(w, (tag, user));
                }
                Err(_) => m.credits += 1, // given back
            }
        }
        if m.tm.is_none()
            && rng.below(50) == 0
            && let Ok((tag, _)) =
                s.start_task_mgmt(999, LUN0, TaskFunction::LogicalUnitReset, None, &mut buf)
        {
            m.credits -= 1;
            m.tm = Some((tag, 999));
        }

        // One received IU: a valid response, a mutated one, or noise.
        let known: Vec<u64> = m
            .in_flight
            .keys()
            .copied()
            .chain(m.tm.map(|(t, _)| t.wire()))
            .collect();
        let tag = match known.len() {
            0 => rng.next(),
            n => known[rng.below(n as u64) as usize],
        };
        let sense = vec![0x70u8; rng.below(40) as usize];
        let mut iu = match rng.below(6) {
            0 => iu16(0x81, rng.below(3) as u32, tag).to_vec(),
            1 => aer_req(rng.below(2) as u32, tag, &sense),
            _ => RspIu {
                delta: rng.below(3) as u32,
                flags: [0, SNSVALID, DIUNDER, DOOVER | SNSVALID][rng.below(4) as usize],
                sense: &sense,
                ..RspIu::ok(tag)
            }
            .bytes(),
        };
        match rng.below(8) {
            0..=3 => {} // as built
            4 => {
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(iu.len() as u64) as usize;
                    iu[at] ^= 1 << rng.below(8);
                }
            }
            5 => iu.truncate(rng.below(iu.len() as u64 + 1) as usize),
            6 => iu.resize(iu.len() + rng.below(600) as usize, rng.next() as u8),
            _ => {
                iu = (0..rng.below(80)).map(|_| rng.next() as u8).collect();
            }
        }
        // Keep random noise from taking back more credits than the run can survive.
        if iu.len() >= 8 && get32(&iu, 4) > 0x10 {
            iu[4..8].copy_from_slice(&[0, 0, 0, 1]);
        }

        m.received(&iu);
        match s.on_iu(&iu, &mut reply) {
            Ok(Incoming::Completed(c)) => {
                let w = c.tag.wire();
                let entry = if c.tag.is_task_mgmt() {
                    m.tm.take().filter(|(t, _)| t.wire() == w)
                } else {
                    m.in_flight.remove(&w)
                };
                let (_, user) = entry.expect("completed a tag not in flight");
                assert_eq!(user, c.user);
                assert_eq!(iu[0], 0xC1);
                if let Some(sense) = c.sense {
                    assert!(sense.len <= MAX_SENSE_LEN);
                    assert!(sense.offset + sense.len <= iu.len());
                }
                completions += 1;
            }
            Ok(Incoming::Reply(len)) => {
                assert_eq!(len, 16);
                assert!(matches!(iu[0], 0x81 | 0x82));
                assert_eq!(reply[8..16], iu[8..16], "reply echoes the tag");
            }
            Ok(Incoming::Logout(_)) => {
                // Reconnect: every outstanding command comes back once.
                let mut want: Vec<u32> = m
                    .reserved
                    .values()
                    .chain(m.in_flight.values())
                    .chain(m.tm.iter())
                    .map(|&(_, u)| u)
                    .collect();
                let mut got: Vec<u32> = s.drain().collect();
                want.sort_unstable();
                got.sort_unstable();
                assert_eq!(got, want);
                s = fresh();
                m = Model::new(6);
                logouts += 1;
            }
            Err(_) => {}
        }

        assert!(s.outstanding() <= N);
        assert_eq!(
            s.outstanding(),
            m.reserved.len() + m.in_flight.len(),
            "step {step}"
        );
        assert_eq!(s.task_mgmt_outstanding(), m.tm.is_some(), "step {step}");
        assert_eq!(s.credits(), m.credits, "step {step}");
        // Recover a channel that noise drained of credits, as a target's CRED_REQ would.
        if m.credits < 2 && m.in_flight.is_empty() && m.tm.is_none() {
            let iu = iu16(0x81, 4, 1);
            m.received(&iu);
            assert_eq!(s.on_iu(&iu, &mut reply), Ok(Incoming::Reply(16)));
        }
    }
    // The run exercised the paths it claims to.
    assert!(completions > 1000, "{completions} completions");
    assert!(s.stats().errors > 0);
    eprintln!("{completions} completions, {logouts} logouts");
}

// ---------------------------------------------------------------- resend

/// A command built on a lost channel is put in flight on a new session under a new
/// tag (the caller rewrites the IU's TAG): its response completes it for the same
/// user, and a LUN reset of its LUN finds it. An unreserved tag is refused.
#[test]
fn a_command_sent_again_on_a_new_session_completes_under_its_new_tag() {
    let mut old = session::<4>(8);
    send(&mut old, 41, LUN3);
    let seg = segs(1);
    let cmd = Command {
        lun: LUN3,
        ..read(&seg)
    };
    let mut iu = [0u8; 2116];
    let first = old.start(42).unwrap();
    let len = old.build_cmd(first, &cmd, IU_ADDR, IU_RKEY, &mut iu);
    assert_eq!(len, Ok(64));

    let mut new = session::<4>(8);
    let tag = new.start(42).unwrap();
    let lun: [u8; 8] = iu[fabboot_srp::cmd::LUN_AT].try_into().unwrap();
    assert_eq!(lun, LUN3);
    assert_eq!(new.resend(tag, lun), Ok(()));
    iu[fabboot_srp::cmd::TAG_AT..fabboot_srp::cmd::TAG_AT + 8]
        .copy_from_slice(&tag.wire().to_be_bytes());
    assert_eq!(get64(&iu, 8), tag.wire());
    assert_eq!(
        iu[fabboot_srp::cmd::BUF_FMT_AT],
        0x01,
        "one direct DATA-IN descriptor"
    );
    assert_eq!(
        new.resend(tag, lun),
        Err(CmdError::NotReserved { tag: tag.wire() }),
        "already in flight"
    );
    let c = completed(&mut new, &RspIu::ok(tag.wire()).bytes());
    assert_eq!((c.user, c.tag), (42, tag));
}
