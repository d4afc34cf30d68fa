//! The SA PathRecord client (`fabboot::ib::path`) and the CM active side
//! (`fabboot::ib::connect`) driven with MADs built here byte by byte at the offsets of
//! `reference/srp-cm-sa-dm.md` §1.3–§1.5, never with the crate's own encoders, and
//! their outgoing MADs read back at those offsets. Timing expectations come from the
//! documented formulas, computed here independently. Then both machines meet 20,000
//! random and mutated MADs each.
#![allow(
    clippy::identity_op,
    reason = "fixtures spell out zero-valued bit fields at their positions"
)]

use fabboot::ib::Mtu;
use fabboot::ib::cm::RejReason;
use fabboot::ib::connect::{
    ConnectError, ConnectParams, ConnectStep, Connector, QpParams, State, drep_for_stray_dreq,
    stale_retry_delay_us,
};
use fabboot::ib::path::{PathClient, PathError, PathParams, PathStep};
use fabboot::ib::sa::PathRecord;
use fabboot_srp::desc::BufferFormats;
use fabboot_srp::login::RejectReason;

// ------------------------------------------------------------------------ helpers

/// Writes `bytes` at `at`.
fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(b[at..at + 2].try_into().unwrap())
}

fn be24(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([0, b[at], b[at + 1], b[at + 2]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

/// A MAD common header (reference §1.3).
fn mad(class: u8, cv: u8, method: u8, status: u16, tid: u64, attr: u16) -> [u8; 256] {
    let mut b = [0u8; 256];
    b[0] = 1;
    b[1] = class;
    b[2] = cv;
    b[3] = method;
    put(&mut b, 4, &status.to_be_bytes());
    put(&mut b, 8, &tid.to_be_bytes());
    put(&mut b, 16, &attr.to_be_bytes());
    b
}

/// 4.096 µs × 2^code in µs, rounded up (the IB time value, reference §1.4).
fn ib_us(code: u8) -> u64 {
    let ns = 4096u128 << code;
    u64::try_from(ns.div_ceil(1000)).unwrap_or(u64::MAX)
}

/// xorshift64* (no crates): deterministic, seeded.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SGID: [u8; 16] = [
    0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 0xC9, 0x03, 0x00, 0x0A, 0xBC, 0xDF,
];
const DGID: [u8; 16] = [
    0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 0xC9, 0x03, 0x00, 0x01, 0x23, 0x45,
];

// ------------------------------------------------------------- SA (reference §1.5)

const TID_BASE: u64 = 0x0000_00A5_0001_3700;
const SERVICE_ID: u64 = 0x0002_C903_0001_2345;

fn path_params(subnet_timeout: u8, max_attempts: u8) -> PathParams {
    PathParams {
        sgid: SGID,
        dgid: DGID,
        pkey: 0xFFFF,
        service_id: Some(SERVICE_ID),
        subnet_timeout,
        max_attempts,
    }
}

/// What the SA's record says, laid out at MAD byte 56 + the offsets of §1.5.
#[derive(Clone, Copy)]
struct Rec {
    sgid: [u8; 16],
    dgid: [u8; 16],
    dlid: u16,
    slid: u16,
    hop_limit: u8,
    pkey: u16,
    sl: u8,
    mtu: u8,
    rate: u8,
    life: u8,
}

const REC: Rec = Rec {
    sgid: SGID,
    dgid: DGID,
    dlid: 0x0017,
    slid: 0x0003,
    hop_limit: 0,
    pkey: 0x8001,
    sl: 5,
    mtu: 4,
    rate: 7,
    life: 14,
};

/// A SubnAdmGetResp(PathRecord), class version 2.
fn sa_reply(tid: u64, status: u16, rec: Option<Rec>) -> [u8; 256] {
    let mut b = mad(0x03, 2, 0x81, status, tid, 0x0035);
    put(&mut b, 44, &8u16.to_be_bytes()); // AttributeOffset
    if let Some(r) = rec {
        let a = 56;
        put(&mut b, a, &SERVICE_ID.to_be_bytes());
        put(&mut b, a + 8, &r.dgid);
        put(&mut b, a + 24, &r.sgid);
        put(&mut b, a + 40, &r.dlid.to_be_bytes());
        put(&mut b, a + 42, &r.slid.to_be_bytes());
        b[a + 47] = r.hop_limit;
        b[a + 49] = 0x80 | 1; // reversible, NumbPath 1
        put(&mut b, a + 50, &r.pkey.to_be_bytes());
        b[a + 53] = r.sl;
        b[a + 54] = (2 << 6) | r.mtu;
        b[a + 55] = (2 << 6) | r.rate;
        b[a + 56] = (2 << 6) | r.life;
    }
    b
}

fn out() -> [u8; 256] {
    [0xA5; 256]
}

#[test]
fn path_get_carries_the_query_and_the_reply_is_returned_as_it_stands() {
    let mut c = PathClient::new(path_params(10, 4), TID_BASE, 7);
    let mut o = out();
    assert_eq!(c.poll(1_000, &mut o), PathStep::Send);
    // Common header: SubnAdm, version 2, Get, status 0, attempt 0's TID, PathRecord.
    assert_eq!(&o[0..4], &[1, 0x03, 2, 0x01]);
    assert_eq!(be16(&o, 4), 0);
    assert_eq!(be64(&o, 8), TID_BASE);
    assert_eq!(be16(&o, 16), 0x0035);
    // ComponentMask: ServiceID (bits 0, 1), DGID 2, SGID 3, NumbPath 12, P_Key 13.
    let mask = be64(&o, 48);
    for bit in [0, 1, 2, 3, 12, 13] {
        assert_ne!(mask & (1 << bit), 0, "mask bit {bit}");
    }
    for bit in [4, 5, 15, 17, 19, 21] {
        assert_eq!(mask & (1 << bit), 0, "mask bit {bit}");
    }
    assert_eq!(be64(&o, 56), SERVICE_ID);
    assert_eq!(&o[64..80], &DGID);
    assert_eq!(&o[80..96], &SGID);
    assert_eq!(o[105] & 0x7F, 1, "NumbPath");
    assert_eq!(be16(&o, 106), 0xFFFF);
    assert!(o[120..].iter().all(|&b| b == 0), "reserved tail written");

    let timeout = 2 * ib_us(10);
    assert_eq!(
        c.poll(1_500, &mut o),
        PathStep::Wait {
            until_us: 1_000 + timeout
        }
    );
    assert!(c.on_mad(2_000, &sa_reply(TID_BASE, 0, Some(REC))));
    let PathStep::Done(r) = c.poll(2_000, &mut o) else {
        panic!("no record");
    };
    assert_eq!((r.sgid, r.dgid), (SGID, DGID));
    assert_eq!((r.dlid, r.slid, r.pkey, r.sl), (0x17, 3, 0x8001, 5));
    assert_eq!((r.mtu, r.rate, r.packet_life_time), (Mtu::Mtu2048, 7, 14));
    // Done is sticky; a repeat of the reply is no longer this query's.
    assert_eq!(c.poll(10_000_000, &mut o), PathStep::Done(r));
    assert!(!c.on_mad(2_100, &sa_reply(TID_BASE, 0, Some(REC))));
    let s = c.stats();
    assert_eq!((s.sent, s.replies, s.timeouts, s.stale), (1, 1, 0, 1));
}

/// Drives `c` through timeouts only; returns each back-off (resend time minus the
/// expired deadline) and the final step.
fn run_timeouts(c: &mut PathClient, timeout: u64) -> (Vec<u64>, PathStep) {
    let mut o = out();
    let mut now = 0;
    let mut backoffs = vec![];
    let mut attempt = 0u64;
    loop {
        assert_eq!(c.poll(now, &mut o), PathStep::Send);
        assert_eq!(be64(&o, 8), TID_BASE | attempt, "new TID per attempt");
        attempt += 1;
        let deadline = now + timeout;
        assert_eq!(
            c.poll(deadline - 1, &mut o),
            PathStep::Wait { until_us: deadline }
        );
        match c.poll(deadline, &mut o) {
            PathStep::Wait { until_us } => {
                backoffs.push(until_us - deadline);
                assert_eq!(c.poll(until_us - 1, &mut o), PathStep::Wait { until_us });
                now = until_us;
            }
            end => return (backoffs, end),
        }
    }
}

#[test]
fn path_timeouts_retry_with_growing_jittered_backoff() {
    let timeout = 2 * ib_us(10);
    let mut firsts = vec![];
    for seed in 1..=16u32 {
        let mut c = PathClient::new(path_params(10, 6), TID_BASE, seed);
        assert_eq!(c.attempt_timeout_us(), timeout);
        let (backoffs, end) = run_timeouts(&mut c, timeout);
        assert_eq!(end, PathStep::Failed(PathError::Timeout { attempts: 6 }));
        assert_eq!(backoffs.len(), 5);
        for (n, &b) in backoffs.iter().enumerate() {
            let d = timeout << n;
            assert!(
                b >= d && b <= d + d / 4,
                "retry {n}: {b} outside [{d}, 5d/4]"
            );
        }
        assert!(backoffs.windows(2).all(|w| w[1] > w[0]), "{backoffs:?}");
        let s = c.stats();
        assert_eq!((s.sent, s.timeouts, s.replies), (6, 6, 0));
        firsts.push(backoffs[0]);
    }
    firsts.sort_unstable();
    firsts.dedup();
    assert!(
        firsts.len() > 8,
        "jitter barely varies with the seed: {firsts:?}"
    );
}

#[test]
fn path_timeout_and_backoff_are_capped() {
    // SubnetTimeOut 18: 2 × 1.07 s, clamped to 2 s; back-off bases 2 s, 4 s, 4 s.
    let mut c = PathClient::new(path_params(18, 4), TID_BASE, 99);
    assert_eq!(c.attempt_timeout_us(), 2_000_000);
    let (backoffs, end) = run_timeouts(&mut c, 2_000_000);
    assert_eq!(end, PathStep::Failed(PathError::Timeout { attempts: 4 }));
    let bases = [2_000_000u64, 4_000_000, 4_000_000];
    for (&b, &d) in backoffs.iter().zip(&bases) {
        assert!(b >= d && b <= d + d / 4, "{b} vs {d}");
    }
    // SubnetTimeOut 0: 8 µs, raised to 1 ms.
    assert_eq!(
        PathClient::new(path_params(0, 4), 0, 1).attempt_timeout_us(),
        1_000
    );
}

#[test]
fn path_busy_then_success() {
    let mut c = PathClient::new(path_params(10, 4), TID_BASE, 3);
    let timeout = c.attempt_timeout_us();
    let mut o = out();
    assert_eq!(c.poll(0, &mut o), PathStep::Send);
    assert!(c.on_mad(500, &sa_reply(TID_BASE, 0x0001, None)));
    let PathStep::Wait { until_us } = c.poll(500, &mut o) else {
        panic!("busy must back off");
    };
    assert!(until_us >= 500 + timeout && until_us <= 500 + timeout + timeout / 4);
    assert_eq!(c.poll(until_us, &mut o), PathStep::Send);
    assert_eq!(be64(&o, 8), TID_BASE | 1);
    assert!(c.on_mad(until_us + 10, &sa_reply(TID_BASE | 1, 0, Some(REC))));
    assert!(matches!(c.poll(until_us + 10, &mut o), PathStep::Done(_)));
    let s = c.stats();
    assert_eq!((s.sent, s.replies, s.busy, s.timeouts), (2, 2, 1, 0));
}

#[test]
fn path_busy_every_time_fails_busy() {
    let mut c = PathClient::new(path_params(10, 3), TID_BASE, 3);
    let mut o = out();
    let mut now = 0;
    for attempt in 0..3u64 {
        assert_eq!(c.poll(now, &mut o), PathStep::Send);
        assert!(c.on_mad(now + 1, &sa_reply(TID_BASE | attempt, 0x0001, None)));
        match c.poll(now + 1, &mut o) {
            PathStep::Wait { until_us } => now = until_us,
            PathStep::Failed(e) => {
                assert_eq!(attempt, 2);
                assert_eq!(e, PathError::Busy { attempts: 3 });
                return;
            }
            other => panic!("{other:?}"),
        }
    }
    panic!("never failed");
}

#[test]
fn path_error_status_fails_with_the_status() {
    for status in [0x0200u16, 0x001C, 0x0700, 0x0002] {
        let mut c = PathClient::new(path_params(10, 4), TID_BASE, 3);
        let mut o = out();
        c.poll(0, &mut o);
        assert!(c.on_mad(1, &sa_reply(TID_BASE, status, None)));
        assert_eq!(
            c.poll(1, &mut o),
            PathStep::Failed(PathError::Status { status })
        );
        assert_eq!(c.stats().sent, 1, "no retry after {status:#x}");
    }
}

#[test]
fn path_no_records() {
    let mut c = PathClient::new(path_params(10, 4), TID_BASE, 3);
    let mut o = out();
    c.poll(0, &mut o);
    assert!(c.on_mad(1, &sa_reply(TID_BASE, 0x0300, None)));
    assert_eq!(c.poll(1, &mut o), PathStep::Failed(PathError::NoRecord));
}

#[test]
fn path_late_reply_for_an_old_tid_is_ignored() {
    let mut c = PathClient::new(path_params(10, 4), TID_BASE, 3);
    let timeout = c.attempt_timeout_us();
    let mut o = out();
    c.poll(0, &mut o);
    let PathStep::Wait { until_us } = c.poll(timeout, &mut o) else {
        panic!()
    };
    assert_eq!(c.poll(until_us, &mut o), PathStep::Send);
    let deadline = until_us + timeout;
    // Attempt 0's answer arrives late: not accepted, even with a good record.
    assert!(!c.on_mad(until_us + 1, &sa_reply(TID_BASE, 0, Some(REC))));
    assert_eq!(c.stats().stale, 1);
    // A TID that was never ours, and a future attempt's, are not counted as stale.
    assert!(!c.on_mad(until_us + 1, &sa_reply(0x1234, 0, Some(REC))));
    assert!(!c.on_mad(until_us + 1, &sa_reply(TID_BASE | 5, 0, Some(REC))));
    assert_eq!(c.stats().stale, 1);
    assert_eq!(
        c.poll(until_us + 2, &mut o),
        PathStep::Wait { until_us: deadline }
    );
    let rec = Rec { dlid: 0x42, ..REC };
    assert!(c.on_mad(until_us + 3, &sa_reply(TID_BASE | 1, 0, Some(rec))));
    let PathStep::Done(r) = c.poll(until_us + 3, &mut o) else {
        panic!()
    };
    assert_eq!(r.dlid, 0x42);
}

#[test]
fn path_mismatching_or_malformed_reply_is_ignored() {
    let mut c = PathClient::new(path_params(10, 4), TID_BASE, 3);
    let timeout = c.attempt_timeout_us();
    let mut o = out();
    c.poll(0, &mut o);
    let wait = PathStep::Wait { until_us: timeout };
    // A record for other GIDs (swapped, then a foreign DGID).
    let swapped = Rec {
        sgid: DGID,
        dgid: SGID,
        ..REC
    };
    assert!(c.on_mad(1, &sa_reply(TID_BASE, 0, Some(swapped))));
    let mut other = DGID;
    other[15] ^= 1;
    assert!(c.on_mad(1, &sa_reply(TID_BASE, 0, Some(Rec { dgid: other, ..REC }))));
    // Class version 1, and a reply cut short.
    let mut v1 = sa_reply(TID_BASE, 0, Some(REC));
    v1[2] = 1;
    assert!(c.on_mad(1, &v1));
    assert!(c.on_mad(1, &sa_reply(TID_BASE, 0, Some(REC))[..200]));
    assert_eq!(c.stats().ignored, 4);
    assert_eq!(c.poll(2, &mut o), wait);
    // Not SA, not GetResp, not PathRecord: not ours at all.
    let mut cm = sa_reply(TID_BASE, 0, Some(REC));
    cm[1] = 0x07;
    assert!(!c.on_mad(2, &cm));
    let mut get = sa_reply(TID_BASE, 0, Some(REC));
    get[3] = 0x01;
    assert!(!c.on_mad(2, &get));
    let mut attr = sa_reply(TID_BASE, 0, Some(REC));
    put(&mut attr, 16, &0x0038u16.to_be_bytes());
    assert!(!c.on_mad(2, &attr));
    assert_eq!(c.stats().ignored, 4);
    assert_eq!(c.poll(3, &mut o), wait);
    // The attempt still times out and retries as usual.
    assert!(matches!(c.poll(timeout, &mut o), PathStep::Wait { .. }));
    assert_eq!(c.stats().timeouts, 1);
}

// ------------------------------------------------------------- CM (reference §1.4)

const COMM_ID: u32 = 0x1234_5678;
const TARGET_COMM_ID: u32 = 0xCAFE_0001;
const CA_GUID: u64 = 0x0002_C903_000A_BCDE;
const TARGET_GUID: u64 = 0x0002_C903_0001_2345;
const QPN: u32 = 0x00_ABCD;
const TARGET_QPN: u32 = 0x00_0777;
const PSN: u32 = 0x12_3456;
const TARGET_PSN: u32 = 0x0A_BCDE;
const LIFE: u8 = 14;
const SUBNET_TIMEOUT: u8 = 16;

fn path_record() -> PathRecord {
    PathRecord {
        service_id: SERVICE_ID,
        dgid: DGID,
        sgid: SGID,
        dlid: 7,
        slid: 3,
        hop_limit: 0,
        pkey: 0xFFFF,
        sl: 2,
        mtu: Mtu::Mtu2048,
        rate: 3,
        packet_life_time: LIFE,
        numb_path: 1,
        reversible: true,
        ..PathRecord::default()
    }
}

fn login_req() -> [u8; 64] {
    let mut l = [0u8; 64];
    for (i, b) in l.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(13).wrapping_add(1);
    }
    l[0] = 0x00; // SRP_LOGIN_REQ opcode
    l
}

fn connect_params() -> ConnectParams {
    ConnectParams {
        local_comm_id: COMM_ID,
        service_id: SERVICE_ID,
        local_ca_guid: CA_GUID,
        local_qpn: QPN,
        starting_psn: PSN,
        path: path_record(),
        local_gid: SGID,
        subnet_timeout: SUBNET_TIMEOUT,
        ca_ack_delay: 15,
        private_data: login_req(),
        max_cm_retries: 15,
    }
}

/// The REQ retransmit timeout, from reference §1.4: 2 × packet lifetime + remote CM
/// response timeout (SubnetTimeOut + 2).
fn req_timeout() -> u64 {
    2 * ib_us(LIFE) + ib_us(SUBNET_TIMEOUT + 2)
}

const REQ_TID: u64 = (COMM_ID as u64) << 32 | 1;

fn cm(attr: u16, tid: u64) -> [u8; 256] {
    mad(0x07, 2, 0x03, 0, tid, attr)
}

const LOGIN_RSP_TAG: u8 = 0xC0;

/// A REP as ib_srpt sends it (reference §3.3), payload offsets of §1.4 plus 24.
fn rep(local: u32, remote: u32) -> [u8; 256] {
    let mut b = cm(0x0013, 0x77);
    put(&mut b, 24, &local.to_be_bytes());
    put(&mut b, 28, &remote.to_be_bytes());
    put(&mut b, 36, &TARGET_QPN.to_be_bytes()[1..]);
    put(&mut b, 44, &TARGET_PSN.to_be_bytes()[1..]);
    b[48] = 4; // responder resources
    b[49] = 4; // initiator depth
    b[50] = (20 << 3) | (0 << 1) | 1; // target ACK delay 20, failover 0, flow control
    b[51] = (7 << 5) | 0x10; // RNR retry 7, SRQ
    put(&mut b, 52, &TARGET_GUID.to_be_bytes());
    b[60] = LOGIN_RSP_TAG; // SRP_LOGIN_RSP opcode
    put(&mut b, 64, &128u32.to_be_bytes()); // request limit delta
    b
}

fn rej(remote: u32, reason: u16, ari: &[u8], private: &[u8]) -> [u8; 256] {
    let mut b = cm(0x0012, 0x78);
    put(&mut b, 24, &TARGET_COMM_ID.to_be_bytes());
    put(&mut b, 28, &remote.to_be_bytes());
    b[32] = 0 << 6; // REQ rejected
    b[33] = (ari.len() as u8) << 1;
    put(&mut b, 34, &reason.to_be_bytes());
    put(&mut b, 36, ari);
    put(&mut b, 108, private);
    b
}

fn mra(msg: u8, service_timeout: u8) -> [u8; 256] {
    let mut b = cm(0x0011, 0x79);
    put(&mut b, 24, &TARGET_COMM_ID.to_be_bytes());
    put(&mut b, 28, &COMM_ID.to_be_bytes());
    b[32] = msg << 6;
    b[33] = service_timeout << 3;
    b
}

fn dreq(tid: u64, remote_qpn: u32) -> [u8; 256] {
    let mut b = cm(0x0015, tid);
    put(&mut b, 24, &TARGET_COMM_ID.to_be_bytes());
    put(&mut b, 28, &COMM_ID.to_be_bytes());
    put(&mut b, 32, &remote_qpn.to_be_bytes()[1..]);
    b
}

fn drep() -> [u8; 256] {
    let mut b = cm(0x0016, 0x7A);
    put(&mut b, 24, &TARGET_COMM_ID.to_be_bytes());
    put(&mut b, 28, &COMM_ID.to_be_bytes());
    b
}

/// Checks a CM MAD header and returns its TID.
fn cm_header(o: &[u8], attr: u16) -> u64 {
    assert_eq!(&o[0..4], &[1, 0x07, 2, 0x03], "CM Send header");
    assert_eq!(be16(o, 4), 0);
    assert_eq!(be16(o, 16), attr);
    be64(o, 8)
}

/// A connector past the REQ at t = 0.
fn sent_req() -> (Connector, [u8; 256]) {
    let mut c = Connector::new(connect_params());
    let mut o = out();
    assert_eq!(c.poll(0, &mut o), ConnectStep::Send);
    (c, o)
}

/// A connector with the REP at t = 10 and the RTU written.
fn established() -> Connector {
    let (mut c, _) = sent_req();
    let mut o = out();
    assert!(matches!(
        c.on_mad(10, &rep(TARGET_COMM_ID, COMM_ID), &mut o),
        Some(ConnectStep::Rep(_))
    ));
    assert_eq!(c.established(20, &mut o), ConnectStep::Send);
    assert_eq!(c.state(), State::Established);
    c
}

#[test]
fn req_carries_what_ib_srp_sends() {
    let (c, o) = sent_req();
    assert_eq!(c.state(), State::ReqSent);
    assert_eq!(cm_header(&o, 0x0010), REQ_TID);
    let p = &o[24..];
    assert_eq!(be32(p, 0), COMM_ID);
    assert_eq!(be64(p, 8), SERVICE_ID);
    assert_eq!(be64(p, 16), CA_GUID);
    assert_eq!(be24(p, 32), QPN);
    assert_eq!(p[35], 4, "responder resources");
    assert_eq!(p[39], 0, "initiator depth");
    let cm_to = SUBNET_TIMEOUT + 2;
    assert_eq!(
        p[43],
        (cm_to << 3) | (0 << 1) | 1,
        "remote CM timeout, RC, FC"
    );
    assert_eq!(be24(p, 44), PSN);
    assert_eq!(p[47], (cm_to << 3) | 7, "local CM timeout, retry 7");
    assert_eq!(be16(p, 48), 0xFFFF);
    assert_eq!(p[50], (4 << 4) | 7, "MTU 2048, RNR retry 7");
    assert_eq!(p[51], 15 << 4, "max CM retries");
    // Primary path: hop limit 0, so LIDs from the record and Subnet Local.
    assert_eq!((be16(p, 52), be16(p, 54)), (3, 7));
    assert_eq!(&p[56..72], &SGID);
    assert_eq!(&p[72..88], &DGID);
    assert_eq!(be32(p, 88) & 0x3F, 3, "packet rate");
    assert_eq!(p[94], (2 << 4) | 0x08, "SL 2, subnet local");
    // Local ACK timeout: lifetime 14 + 1 = 15 ≥ ACK delay 15, and the delay is within
    // one step of it, so 16.
    assert_eq!(p[95] >> 3, 16);
    assert!(p[96..140].iter().all(|&b| b == 0), "no alternate path");
    assert_eq!(&p[140..204], &login_req());
    assert!(p[204..232].iter().all(|&b| b == 0));
}

#[test]
fn local_ack_timeout_follows_the_ca_ack_delay() {
    // Lifetime 14 + 1 = 15 below the delay 20, not within one step: the delay, 20.
    let mut c = Connector::new(ConnectParams {
        ca_ack_delay: 20,
        ..connect_params()
    });
    let mut o = out();
    c.poll(0, &mut o);
    assert_eq!(o[24 + 95] >> 3, 20);
    assert_eq!(c.req_local_ack_timeout(), 20);
}

#[test]
fn rep_gives_qp_attributes_and_rtu_follows() {
    let (mut c, _) = sent_req();
    let mut o = out();
    let Some(ConnectStep::Rep(info)) = c.on_mad(10, &rep(TARGET_COMM_ID, COMM_ID), &mut o) else {
        panic!("REP not delivered");
    };
    assert_eq!(
        (info.remote_qpn, info.remote_comm_id, info.starting_psn),
        (TARGET_QPN, TARGET_COMM_ID, TARGET_PSN)
    );
    assert_eq!(
        (
            info.responder_resources,
            info.initiator_depth,
            info.target_ack_delay
        ),
        (4, 4, 20)
    );
    assert_eq!((info.rnr_retry, info.remote_ca_guid), (7, TARGET_GUID));
    assert_eq!(info.private_data[0], LOGIN_RSP_TAG);
    assert_eq!(be32(&info.private_data, 4), 128);
    assert_eq!(
        info.qp,
        QpParams {
            rlid: 7,
            sl: 2,
            static_rate: 3,
            grh: false,
            dgid: DGID,
            flow_label: 0,
            hop_limit: 0,
            traffic_class: 0,
            pkey: 0xFFFF,
            mtu: Mtu::Mtu2048,
            dest_qpn: TARGET_QPN,
            rq_psn: TARGET_PSN,
            // Our responder resources: the REP's initiator depth 4, within our 4.
            max_dest_rd_atomic: 4,
            min_rnr_timer: 0,
            sq_psn: PSN,
            // Lifetime 14 + 1 = 15 far below the target ACK delay 20: 20.
            ack_timeout: 20,
            retry_count: 7,
            rnr_retry: 7,
            // Our initiator depth: the REP's responder resources, capped by our 0.
            max_rd_atomic: 0,
        }
    );
    assert_eq!(c.state(), State::RepReceived);
    assert_eq!(c.poll(1_000_000_000, &mut o), ConnectStep::Idle, "no timer");
    // A repeated REP before our RTU: consumed, nothing to do.
    let mut o2 = out();
    assert_eq!(
        c.on_mad(11, &rep(TARGET_COMM_ID, COMM_ID), &mut o2),
        Some(ConnectStep::Idle)
    );
    assert_eq!(c.established(20, &mut o), ConnectStep::Send);
    assert_eq!(cm_header(&o, 0x0014), REQ_TID);
    assert_eq!((be32(&o, 24), be32(&o, 28)), (COMM_ID, TARGET_COMM_ID));
    assert_eq!(c.state(), State::Established);
    // The RTU was lost: the REP comes again and the RTU is resent.
    let mut o3 = out();
    assert_eq!(
        c.on_mad(30, &rep(TARGET_COMM_ID, COMM_ID), &mut o3),
        Some(ConnectStep::Send)
    );
    assert_eq!(o3, o);
    assert_eq!(c.stats().duplicates, 2);
    // established() twice is refused and changes nothing.
    assert_eq!(
        c.established(40, &mut o),
        ConnectStep::Failed(ConnectError::WrongState {
            call: "established",
            state: State::Established
        })
    );
    assert_eq!(c.state(), State::Established);
}

#[test]
fn rep_for_another_comm_id_is_ignored() {
    let (mut c, _) = sent_req();
    let mut o = out();
    assert_eq!(
        c.on_mad(10, &rep(TARGET_COMM_ID, COMM_ID ^ 1), &mut o),
        None
    );
    assert_eq!(c.state(), State::ReqSent);
    assert_eq!(c.stats().ignored, 1);
    assert_eq!(
        c.poll(11, &mut o),
        ConnectStep::Wait {
            until_us: req_timeout()
        }
    );
    // Once the REP named the target's comm ID, a REP from another one is not ours.
    assert!(matches!(
        c.on_mad(12, &rep(TARGET_COMM_ID, COMM_ID), &mut o),
        Some(ConnectStep::Rep(_))
    ));
    assert_eq!(
        c.on_mad(13, &rep(TARGET_COMM_ID + 1, COMM_ID), &mut o),
        None
    );
}

#[test]
fn req_is_retransmitted_then_times_out() {
    let (mut c, first) = sent_req();
    let t = req_timeout();
    assert_eq!(c.retransmit_timeout_us(), t);
    let mut o = out();
    let mut deadline = t;
    for retry in 1..=15 {
        assert_eq!(
            c.poll(deadline - 1, &mut o),
            ConnectStep::Wait { until_us: deadline }
        );
        assert_eq!(c.poll(deadline, &mut o), ConnectStep::Send, "retry {retry}");
        assert_eq!(o, first, "same REQ, same TID");
        deadline += t;
    }
    assert_eq!(
        c.poll(deadline, &mut o),
        ConnectStep::Failed(ConnectError::Timeout { sends: 16 })
    );
    assert_eq!(c.state(), State::Failed);
    assert_eq!(c.stats().retransmits, 15);
    assert_eq!(
        c.poll(deadline * 2, &mut o),
        ConnectStep::Failed(ConnectError::Timeout { sends: 16 })
    );
}

#[test]
fn mra_extends_the_wait_and_holds_retransmission() {
    let (mut c, first) = sent_req();
    let mut o = out();
    // An MRA for the REP (not ours to wait on) changes nothing.
    assert_eq!(
        c.on_mad(100, &mra(1, 20), &mut o),
        Some(ConnectStep::Wait {
            until_us: req_timeout()
        })
    );
    let until = 1_000 + ib_us(20) + ib_us(LIFE);
    assert!(until > req_timeout());
    assert_eq!(
        c.on_mad(1_000, &mra(0, 20), &mut o),
        Some(ConnectStep::Wait { until_us: until })
    );
    assert_eq!(c.state(), State::MraWait);
    assert_eq!(
        c.poll(req_timeout(), &mut o),
        ConnectStep::Wait { until_us: until }
    );
    assert_eq!(c.poll(until, &mut o), ConnectStep::Send);
    assert_eq!(o, first);
    assert_eq!(c.state(), State::ReqSent);
    assert_eq!(
        c.poll(until + 1, &mut o),
        ConnectStep::Wait {
            until_us: until + req_timeout()
        }
    );
    assert_eq!(c.stats().mra, 1);
}

#[test]
fn rej_28_carries_the_srp_login_rej() {
    let (mut c, _) = sent_req();
    let mut login_rej = [0u8; 32];
    login_rej[0] = 0xC2;
    put(&mut login_rej, 4, &0x0001_0002u32.to_be_bytes());
    put(&mut login_rej, 8, &0x1122_3344_5566_7788u64.to_be_bytes());
    put(&mut login_rej, 24, &0x0006u16.to_be_bytes());
    let mut o = out();
    let Some(ConnectStep::Rejected(r)) = c.on_mad(10, &rej(COMM_ID, 28, &[], &login_rej), &mut o)
    else {
        panic!("not rejected");
    };
    assert_eq!(r.reason, RejReason::ConsumerDefined);
    assert_eq!(r.msg_rejected, 0);
    assert!(!r.is_stale());
    let l = r.login_rej.expect("SRP_LOGIN_REJ");
    assert_eq!(l.reason, RejectReason::ItIuLenTooLarge);
    assert_eq!(l.tag, 0x1122_3344_5566_7788);
    assert_eq!(l.sup_buf_fmt, BufferFormats(6));
    assert_eq!(c.state(), State::Rejected);
    assert_eq!(c.poll(1 << 40, &mut o), ConnectStep::Rejected(r));
}

#[test]
fn rej_10_is_stale_and_other_reasons_keep_their_ari() {
    let (mut c, _) = sent_req();
    let mut o = out();
    let Some(ConnectStep::Rejected(r)) = c.on_mad(10, &rej(COMM_ID, 10, &[], &[]), &mut o) else {
        panic!()
    };
    assert!(r.is_stale());
    assert_eq!(r.login_rej, None);
    assert!(stale_retry_delay_us(0) >= 1_000_000);
    assert!(stale_retry_delay_us(1) > stale_retry_delay_us(0));

    // Reason 8 with an ARI; the private data is not read as SRP outside reason 28.
    let (mut c, _) = sent_req();
    let mut login_rej = [0u8; 32];
    login_rej[0] = 0xC2;
    let ari = [9u8, 8, 7, 6, 5];
    let Some(ConnectStep::Rejected(r)) = c.on_mad(10, &rej(COMM_ID, 8, &ari, &login_rej), &mut o)
    else {
        panic!()
    };
    assert_eq!(r.reason, RejReason::InvalidServiceId);
    assert_eq!(r.ari(), &ari);
    assert_eq!(r.ari_len, 5);
    assert_eq!(r.login_rej, None);
    // A REJ for someone else's REQ is not ours.
    let (mut c, _) = sent_req();
    assert_eq!(c.on_mad(10, &rej(COMM_ID + 1, 10, &[], &[]), &mut o), None);
    assert_eq!(c.state(), State::ReqSent);
}

#[test]
fn dreq_from_the_target_is_answered_with_drep() {
    let mut c = established();
    let mut o = out();
    // A DREQ naming another QP of ours is not for this connection.
    assert_eq!(c.on_mad(100, &dreq(0xD1, QPN + 1), &mut o), None);
    assert_eq!(
        c.on_mad(100, &dreq(0xD1, QPN), &mut o),
        Some(ConnectStep::Disconnected { drep: true })
    );
    assert_eq!(
        cm_header(&o, 0x0016),
        0xD1,
        "DREP answers in the DREQ's TID"
    );
    assert_eq!((be32(&o, 24), be32(&o, 28)), (COMM_ID, TARGET_COMM_ID));
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.poll(200, &mut o), ConnectStep::Idle);
    // The DREP was lost: the target repeats its DREQ and gets the DREP again.
    let mut o2 = out();
    assert_eq!(
        c.on_mad(300, &dreq(0xD1, QPN), &mut o2),
        Some(ConnectStep::Send)
    );
    assert_eq!(o2, o);
}

#[test]
fn our_dreq_waits_for_drep_then_idle() {
    let mut c = established();
    let mut o = out();
    assert_eq!(c.disconnect(1_000, &mut o), ConnectStep::Send);
    let tid = cm_header(&o, 0x0015);
    assert_eq!(tid, (COMM_ID as u64) << 32 | 2);
    assert_eq!((be32(&o, 24), be32(&o, 28)), (COMM_ID, TARGET_COMM_ID));
    assert_eq!(be24(&o, 32), TARGET_QPN);
    assert_eq!(c.state(), State::DreqSent);
    let first = o;
    let deadline = 1_000 + req_timeout();
    assert_eq!(
        c.poll(deadline - 1, &mut o),
        ConnectStep::Wait { until_us: deadline }
    );
    assert_eq!(c.poll(deadline, &mut o), ConnectStep::Send);
    assert_eq!(o, first);
    assert_eq!(
        c.on_mad(deadline + 5, &drep(), &mut o),
        Some(ConnectStep::Idle)
    );
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.poll(deadline * 4, &mut o), ConnectStep::Idle);
}

#[test]
fn our_dreq_gives_up_after_its_retries() {
    let mut c = established();
    let mut o = out();
    assert_eq!(c.disconnect(0, &mut o), ConnectStep::Send);
    let mut now = 0;
    let mut sends = 1;
    loop {
        now += req_timeout();
        match c.poll(now, &mut o) {
            ConnectStep::Send => sends += 1,
            ConnectStep::Idle => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(sends, 1 + 3);
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn crossing_dreq_is_answered() {
    let mut c = established();
    let mut o = out();
    c.disconnect(0, &mut o);
    assert_eq!(
        c.on_mad(5, &dreq(0xD2, QPN), &mut o),
        Some(ConnectStep::Disconnected { drep: true })
    );
    assert_eq!(cm_header(&o, 0x0016), 0xD2);
    assert_eq!(c.state(), State::Closed);
    // Its DREP to our DREQ, arriving afterwards, is consumed and changes nothing.
    assert_eq!(c.on_mad(6, &drep(), &mut o), Some(ConnectStep::Idle));
}

#[test]
fn rej_after_rtu_means_disconnected() {
    let mut c = established();
    let mut o = out();
    let mut r = rej(COMM_ID, 4, &[], &[]);
    r[32] = 1 << 6; // REP rejected: the target never saw our RTU.
    assert_eq!(
        c.on_mad(50, &r, &mut o),
        Some(ConnectStep::Disconnected { drep: false })
    );
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn disconnect_before_established_rejects() {
    // REQ out: REJ "timeout" with our CA GUID as ARI.
    let (mut c, _) = sent_req();
    let mut o = out();
    assert_eq!(c.disconnect(5, &mut o), ConnectStep::Send);
    assert_eq!(cm_header(&o, 0x0012), REQ_TID);
    assert_eq!((be32(&o, 24), be32(&o, 28)), (COMM_ID, 0));
    assert_eq!((o[32] >> 6, o[33] >> 1, be16(&o, 34)), (0, 8, 4));
    assert_eq!(be64(&o, 36), CA_GUID);
    assert_eq!(c.state(), State::Closed);
    // REP received but the QP could not be readied: REJ the REP, consumer defined.
    let (mut c, _) = sent_req();
    c.on_mad(10, &rep(TARGET_COMM_ID, COMM_ID), &mut o);
    assert_eq!(c.disconnect(20, &mut o), ConnectStep::Send);
    assert_eq!(cm_header(&o, 0x0012), REQ_TID);
    assert_eq!((be32(&o, 24), be32(&o, 28)), (COMM_ID, TARGET_COMM_ID));
    assert_eq!((o[32] >> 6, be16(&o, 34)), (1, 28));
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn stray_dreq_gets_a_drep() {
    let mut o = out();
    let mut d = dreq(0xD3, 0x99);
    put(&mut d, 24, &0x0BAD_0001u32.to_be_bytes());
    put(&mut d, 28, &0x0BAD_0002u32.to_be_bytes());
    assert!(drep_for_stray_dreq(&d, &mut o));
    assert_eq!(cm_header(&o, 0x0016), 0xD3);
    assert_eq!((be32(&o, 24), be32(&o, 28)), (0x0BAD_0002, 0x0BAD_0001));
    assert!(!drep_for_stray_dreq(&drep(), &mut o));
    assert!(!drep_for_stray_dreq(&d[..100], &mut o));
}

// ------------------------------------------------------------------ robustness

/// Flips a few random bytes of `m`, sometimes truncates it.
fn mutate(rng: &mut Rng, m: &[u8; 256]) -> Vec<u8> {
    let mut v = m.to_vec();
    for _ in 0..rng.below(4) {
        let i = rng.below(256) as usize;
        v[i] = rng.next() as u8;
    }
    if rng.below(16) == 0 {
        v.truncate(rng.below(256) as usize);
    }
    v
}

fn random_bytes(rng: &mut Rng) -> Vec<u8> {
    let n = rng.below(300) as usize;
    (0..n).map(|_| rng.next() as u8).collect()
}

#[test]
fn path_client_survives_random_mads() {
    let mut rng = Rng(0x5EED_0001_D00D_F00D);
    let mut now = 0u64;
    let mut o = out();
    let mut c = PathClient::new(path_params(3, 5), TID_BASE, 1);
    let mut tid = None;
    let mut finished = 0;
    for i in 0..20_000 {
        now += rng.below(20_000);
        let step = c.poll(now, &mut o);
        match step {
            PathStep::Send => {
                let t = be64(&o, 8);
                assert_eq!(t & !0xFF, TID_BASE);
                assert_eq!(t & 0xFF, u64::from(c.attempts() - 1));
                tid = Some(t);
            }
            PathStep::Wait { until_us } => assert!(until_us > now),
            PathStep::Done(r) => {
                assert_eq!((r.sgid, r.dgid), (SGID, DGID));
            }
            PathStep::Failed(_) => {}
        }
        if matches!(step, PathStep::Done(_) | PathStep::Failed(_)) {
            // Final outcomes are stable, then a fresh client takes over.
            assert_eq!(c.poll(now + 1_000_000, &mut o), step);
            finished += 1;
            c = PathClient::new(path_params(3, 5), TID_BASE, i);
            tid = None;
            continue;
        }
        let t = tid.unwrap_or(TID_BASE);
        let status = [0u16, 0, 0, 1, 0x0300, 0x0200, 0x0101][rng.below(7) as usize];
        let base = sa_reply(t, status, Some(REC));
        let m = match rng.below(4) {
            0 => random_bytes(&mut rng),
            1 => base.to_vec(),
            _ => mutate(&mut rng, &base),
        };
        let before = c.stats();
        let consumed = c.on_mad(now, &m);
        let s = c.stats();
        if consumed {
            assert_eq!(be64(&m, 8), t, "consumed a reply for another TID");
            assert_eq!(s.replies, before.replies + 1);
        } else {
            assert_eq!(s.replies, before.replies);
        }
        assert!(s.busy + s.ignored <= s.replies);
        assert!(u32::from(c.attempts()) == s.sent && s.sent <= 5);
        assert!(s.timeouts <= s.sent);
    }
    assert!(finished > 100, "the run should reach outcomes: {finished}");
}

fn rank(s: State) -> u8 {
    match s {
        State::Start => 0,
        State::ReqSent | State::MraWait => 1,
        State::RepReceived => 2,
        State::Established => 3,
        State::DreqSent => 4,
        State::Closed | State::Rejected | State::Failed => 5,
    }
}

#[test]
fn connector_survives_random_mads() {
    let mut rng = Rng(0x5EED_0002_BEEF_CAFE);
    let mut now = 0u64;
    let mut o = out();
    let params = ConnectParams {
        subnet_timeout: 4,
        path: PathRecord {
            packet_life_time: 4,
            ..path_record()
        },
        ..connect_params()
    };
    let mut c = Connector::new(params);
    let mut seen = [0u32; 9];
    for _ in 0..20_000 {
        now += rng.below(30_000);
        let before = c.state();
        // Mostly poll; call established() and disconnect() now and then, more often
        // where they apply, so that every stage is reached.
        let call = match before {
            State::RepReceived => rng.below(3),
            State::Established => [2, 1, 2, 2][rng.below(4) as usize],
            _ => 2 + rng.below(38),
        };
        let step = match call {
            0 => c.established(now, &mut o),
            1 => c.disconnect(now, &mut o),
            _ => c.poll(now, &mut o),
        };
        check_step(&c, before, step, &o);
        if rank(c.state()) == 5 && rng.below(8) == 0 {
            c = Connector::new(params);
            continue;
        }
        let base = match rng.below(6) {
            0 => rep(TARGET_COMM_ID, COMM_ID),
            1 => rej(
                COMM_ID,
                [10u16, 28, 8, 4][rng.below(4) as usize],
                &[1, 2],
                &[0xC2],
            ),
            2 => mra(rng.below(3) as u8, rng.below(32) as u8),
            3 => dreq(rng.next(), QPN),
            4 => drep(),
            _ => cm(0x0014, 1),
        };
        let m = match rng.below(4) {
            0 => random_bytes(&mut rng),
            1 => base.to_vec(),
            _ => mutate(&mut rng, &base),
        };
        let before = c.state();
        match c.on_mad(now, &m, &mut o) {
            Some(step) => {
                // Consumed: a CM message naming our comm ID as its remote one.
                assert_eq!(&m[0..4], &[1, 0x07, 2, 0x03]);
                assert_eq!(be32(&m, 28), COMM_ID);
                check_step(&c, before, step, &o);
            }
            None => assert_eq!(c.state(), before, "an ignored MAD changed the state"),
        }
        seen[rank(c.state()) as usize] += 1;
    }
    // The run reaches every stage, so the checks above mean something.
    assert!(seen[1..6].iter().all(|&n| n > 20), "{seen:?}");
}

/// What a step must be consistent with: the state moved forward only, finals stay,
/// and every MAD written is a CM message from our comm ID.
fn check_step(c: &Connector, before: State, step: ConnectStep, o: &[u8; 256]) {
    let after = c.state();
    if let ConnectStep::Failed(ConnectError::WrongState { state, .. }) = step {
        assert_eq!(state, before);
        assert_eq!(after, before);
        return;
    }
    assert!(rank(after) >= rank(before), "{before:?} -> {after:?}");
    if rank(before) == 5 {
        assert_eq!(after, before, "left a final state");
    }
    match step {
        ConnectStep::Send | ConnectStep::Disconnected { drep: true } => {
            assert_eq!(&o[0..4], &[1, 0x07, 2, 0x03]);
            assert_eq!(be32(o, 24), COMM_ID);
        }
        ConnectStep::Rep(info) => {
            assert_eq!(after, State::RepReceived);
            assert!(matches!(before, State::ReqSent | State::MraWait));
            assert_eq!(info.qp.sq_psn, PSN);
        }
        ConnectStep::Rejected(_) => assert_eq!(after, State::Rejected),
        ConnectStep::Failed(_) => assert_eq!(after, State::Failed),
        ConnectStep::Disconnected { drep: false } => assert_eq!(after, State::Closed),
        ConnectStep::Wait { until_us } => {
            assert!(matches!(
                after,
                State::ReqSent | State::MraWait | State::DreqSent
            ));
            let _ = until_us;
        }
        ConnectStep::Idle => assert!(matches!(
            after,
            State::Start | State::RepReceived | State::Established | State::Closed
        )),
    }
}
