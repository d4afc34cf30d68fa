//! `fabboot::ib` wire formats against byte fixtures written from the published
//! offsets (`reference/srp-cm-sa-dm.md` §1.3–§1.5 for MAD, CM and SA; IBTA vol. 1
//! §14.2.5.6 for PortInfo), not from our own encoder: every fixture is laid down byte
//! by byte at the offsets the reference gives, then parsed and compared with the
//! expected `Repr`, and every `Repr` is emitted over a 0xA5-filled buffer and compared
//! with the fixture. Then every parser meets every truncation and random input.
#![allow(
    clippy::identity_op,
    reason = "fixtures spell out zero-valued bit fields at their positions"
)]

use fabboot::ib::Error;
use fabboot::ib::Mtu;
use fabboot::ib::cm::{
    CmMessage, CmPath, Drep, Dreq, Mra, MsgMraed, MsgRejected, Rej, RejReason, Rep, Req, Rtu,
    TransportType,
};
use fabboot::ib::mad::{MadHeader, MadStatus, SmpGet};
use fabboot::ib::port_info::{PhysState, PkeyBlock, PortInfo, PortState};
use fabboot::ib::sa::{PathQuery, PathRecord, PathReply, SaHeader, SaStatus, Selector};

/// Writes `bytes` at `at`: the fixtures' only tool.
fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

/// A MAD common header laid out per reference §1.3.
fn mad_header(
    class: u8,
    cv: u8,
    method: u8,
    status: u16,
    tid: u64,
    attr: u16,
    m: u32,
) -> [u8; 256] {
    let mut b = [0u8; 256];
    b[0] = 1; // BaseVersion
    b[1] = class;
    b[2] = cv;
    b[3] = method;
    put(&mut b, 4, &status.to_be_bytes());
    put(&mut b, 8, &tid.to_be_bytes());
    put(&mut b, 16, &attr.to_be_bytes());
    put(&mut b, 20, &m.to_be_bytes());
    b
}

const TID: u64 = 0x0000_0001_0000_002A;
const LOCAL_GID: [u8; 16] = [
    0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 0xC9, 0x03, 0x00, 0x0A, 0xBC, 0xDF,
];
const REMOTE_GID: [u8; 16] = [
    0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 0xC9, 0x03, 0x00, 0x01, 0x23, 0x45,
];

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

// ---------------------------------------------------------------- CM (reference §1.4)

/// A REQ as ib_srp sends it (reference §2.2), at the payload offsets of §1.4.
fn req_fixture(login: &[u8]) -> [u8; 232] {
    let mut p = [0u8; 232];
    put(&mut p, 0, &0x1122_3344u32.to_be_bytes()); // Local Comm ID
    put(&mut p, 8, &0x0002_C903_0000_1234u64.to_be_bytes()); // Service ID
    put(&mut p, 16, &0x0002_C903_000A_BCDEu64.to_be_bytes()); // Local CA GUID
    put(&mut p, 28, &0x0102_0304u32.to_be_bytes()); // Local Q_Key
    put(&mut p, 32, &[0x00, 0x0A, 0xBC]); // Local QPN
    p[35] = 4; // Responder Resources
    p[39] = 0; // Initiator Depth
    p[43] = (20 << 3) | (0 << 1) | 1; // remote CM timeout 20, RC, flow control
    put(&mut p, 44, &[0x12, 0x34, 0x56]); // Starting PSN
    p[47] = (20 << 3) | 7; // local CM timeout 20, retry 7
    put(&mut p, 48, &[0xFF, 0xFF]); // P_Key
    p[50] = (4 << 4) | 7; // MTU 2048, no RDC, RNR retry 7
    p[51] = 15 << 4; // Max CM retries 15
    put(&mut p, 52, &[0x00, 0x05]); // primary local LID
    put(&mut p, 54, &[0x00, 0x09]); // primary remote LID
    put(&mut p, 56, &LOCAL_GID);
    put(&mut p, 72, &REMOTE_GID);
    put(&mut p, 88, &((0x12345u32 << 12) | 3).to_be_bytes()); // flow label, rate
    p[92] = 0x20; // traffic class
    p[93] = 1; // hop limit
    p[94] = (3 << 4) | 0x08; // SL 3, subnet local
    p[95] = 18 << 3; // local ACK timeout
    put(&mut p, 140, login);
    p
}

fn req_repr(login: &[u8]) -> Req<'_> {
    Req {
        local_comm_id: 0x1122_3344,
        service_id: 0x0002_C903_0000_1234,
        local_ca_guid: 0x0002_C903_000A_BCDE,
        local_qkey: 0x0102_0304,
        local_qpn: 0x000ABC,
        responder_resources: 4,
        local_eecn: 0,
        initiator_depth: 0,
        remote_eecn: 0,
        remote_cm_response_timeout: 20,
        transport_type: TransportType::Rc,
        end_to_end_flow_control: true,
        starting_psn: 0x123456,
        local_cm_response_timeout: 20,
        retry_count: 7,
        pkey: 0xFFFF,
        path_mtu: Mtu::Mtu2048,
        rdc_exists: false,
        rnr_retry_count: 7,
        max_cm_retries: 15,
        srq: false,
        extended_transport_type: 0,
        primary: CmPath {
            local_lid: 5,
            remote_lid: 9,
            local_gid: LOCAL_GID,
            remote_gid: REMOTE_GID,
            flow_label: 0x12345,
            packet_rate: 3,
            traffic_class: 0x20,
            hop_limit: 1,
            sl: 3,
            subnet_local: true,
            local_ack_timeout: 18,
        },
        alternate: None,
        private_data: login,
    }
}

#[test]
fn req_fixture_parse_and_emit() {
    let login = pattern(64, 0); // 64-byte SRP_LOGIN_REQ-sized private data
    let p = req_fixture(&login);
    let r = Req::parse(&p).unwrap();
    let mut padded = login.clone();
    padded.resize(92, 0);
    assert_eq!(r, req_repr(&padded));
    assert_eq!(r.private_data.len(), 92);

    let mut out = [0xA5u8; 232];
    req_repr(&login).emit(&mut out).unwrap();
    assert_eq!(out, p);
}

#[test]
fn req_alternate_path_layout() {
    let login = [0u8; 0];
    let mut p = req_fixture(&login);
    // Alternate path at +44 (reference §1.4): local LID 96, remote LID 98, GIDs 100/116,
    // flow label/rate 132, TC 136, hop limit 137, SL 138, ACK timeout 139.
    put(&mut p, 96, &[0x00, 0x15]);
    put(&mut p, 98, &[0x00, 0x19]);
    put(&mut p, 100, &REMOTE_GID);
    put(&mut p, 116, &LOCAL_GID);
    put(&mut p, 132, &((0xFEDCBu32 << 12) | 6).to_be_bytes());
    p[136] = 7;
    p[137] = 0x40;
    p[138] = 0xF0;
    p[139] = 31 << 3;
    let r = Req::parse(&p).unwrap();
    let alt = CmPath {
        local_lid: 0x15,
        remote_lid: 0x19,
        local_gid: REMOTE_GID,
        remote_gid: LOCAL_GID,
        flow_label: 0xFEDCB,
        packet_rate: 6,
        traffic_class: 7,
        hop_limit: 0x40,
        sl: 15,
        subnet_local: false,
        local_ack_timeout: 31,
    };
    assert_eq!(r.alternate, Some(alt));
    let mut out = [0xA5u8; 232];
    Req {
        alternate: Some(alt),
        ..req_repr(&login)
    }
    .emit(&mut out)
    .unwrap();
    assert_eq!(out, p);
}

#[test]
fn req_emit_rejects_values_wider_than_their_fields() {
    let login = [0u8; 4];
    let cases: [(Req, &str, u64); 6] = [
        (
            Req {
                local_qpn: 1 << 24,
                ..req_repr(&login)
            },
            "LocalQPN",
            1 << 24,
        ),
        (
            Req {
                starting_psn: 0x100_0000,
                ..req_repr(&login)
            },
            "StartingPSN",
            0x100_0000,
        ),
        (
            Req {
                retry_count: 8,
                ..req_repr(&login)
            },
            "RetryCount",
            8,
        ),
        (
            Req {
                rnr_retry_count: 9,
                ..req_repr(&login)
            },
            "RNRRetryCount",
            9,
        ),
        (
            Req {
                max_cm_retries: 16,
                ..req_repr(&login)
            },
            "MaxCMRetries",
            16,
        ),
        (
            Req {
                remote_cm_response_timeout: 32,
                ..req_repr(&login)
            },
            "RemoteCMResponseTimeout",
            32,
        ),
    ];
    for (req, field, value) in cases {
        let mut out = [0u8; 232];
        assert_eq!(
            req.emit(&mut out),
            Err(Error::Field {
                what: "CM REQ",
                field,
                value
            })
        );
    }
    let long = [0u8; 93];
    let mut out = [0u8; 232];
    assert_eq!(
        req_repr(&long).emit(&mut out),
        Err(Error::TooLong {
            what: "CM REQ",
            field: "PrivateData",
            max: 92,
            got: 93
        })
    );
}

fn rep_fixture(rsp: &[u8]) -> [u8; 232] {
    let mut p = [0u8; 232];
    put(&mut p, 0, &0xAABB_CCDDu32.to_be_bytes());
    put(&mut p, 4, &0x1122_3344u32.to_be_bytes());
    put(&mut p, 8, &0u32.to_be_bytes()); // Local Q_Key
    put(&mut p, 12, &[0x00, 0x04, 0xD2]); // Local QPN
    put(&mut p, 16, &[0x00, 0x00, 0x00]); // Local EECN
    put(&mut p, 20, &[0xAB, 0xCD, 0xEF]); // Starting PSN
    p[24] = 0; // Responder Resources
    p[25] = 4; // Initiator Depth
    p[26] = (15 << 3) | (1 << 1) | 1; // Target ACK delay 15, failover 1, flow control
    p[27] = (7 << 5) | 0x10; // RNR retry 7, SRQ
    put(&mut p, 28, &0x0002_C903_0001_2345u64.to_be_bytes());
    put(&mut p, 36, rsp);
    p
}

fn rep_repr(rsp: &[u8]) -> Rep<'_> {
    Rep {
        local_comm_id: 0xAABB_CCDD,
        remote_comm_id: 0x1122_3344,
        local_qkey: 0,
        local_qpn: 0x0004D2,
        local_eecn: 0,
        starting_psn: 0xABCDEF,
        responder_resources: 0,
        initiator_depth: 4,
        target_ack_delay: 15,
        failover_accepted: 1,
        end_to_end_flow_control: true,
        rnr_retry_count: 7,
        srq: true,
        local_ca_guid: 0x0002_C903_0001_2345,
        private_data: rsp,
    }
}

#[test]
fn rep_fixture_parse_and_emit() {
    let mut rsp = pattern(52, 0xC0); // SRP_LOGIN_RSP-sized
    rsp[0] = 0xC0;
    let p = rep_fixture(&rsp);
    let mut padded = rsp.clone();
    padded.resize(196, 0);
    assert_eq!(Rep::parse(&p).unwrap(), rep_repr(&padded));
    let mut out = [0xA5u8; 232];
    rep_repr(&rsp).emit(&mut out).unwrap();
    assert_eq!(out, p);
}

fn rej_fixture(reason: u16, ari: &[u8], private: &[u8]) -> [u8; 232] {
    let mut p = [0u8; 232];
    put(&mut p, 0, &0x5566_7788u32.to_be_bytes());
    put(&mut p, 4, &0x1122_3344u32.to_be_bytes());
    p[8] = 0 << 6; // Message REJected: REQ
    p[9] = (ari.len() as u8) << 1; // Reject Info Length
    put(&mut p, 10, &reason.to_be_bytes());
    put(&mut p, 12, ari);
    put(&mut p, 84, private);
    p
}

#[test]
fn rej_consumer_defined_carries_srp_login_rej() {
    // SRP_LOGIN_REJ (reference §1.1): opcode 0xC2 at 0, reason at 4..8, tag at 8..16,
    // buffer formats at 24..26.
    let mut login_rej = [0u8; 32];
    login_rej[0] = 0xC2;
    put(&mut login_rej, 4, &0x0001_0002u32.to_be_bytes());
    put(&mut login_rej, 8, &0x0123_4567_89AB_CDEFu64.to_be_bytes());
    put(&mut login_rej, 24, &[0x00, 0x06]);
    let p = rej_fixture(28, &[], &login_rej);
    let r = Rej::parse(&p).unwrap();
    assert_eq!(r.local_comm_id, 0x5566_7788);
    assert_eq!(r.remote_comm_id, 0x1122_3344);
    assert_eq!(r.msg_rejected, MsgRejected::Req);
    assert_eq!(r.reason, RejReason::ConsumerDefined);
    assert!(r.ari.is_empty());
    assert_eq!(r.private_data.len(), 148);
    assert_eq!(&r.private_data[..32], &login_rej);
    assert_eq!(
        u32::from_be_bytes(r.private_data[4..8].try_into().unwrap()),
        0x0001_0002
    );
    let mut out = [0xA5u8; 232];
    Rej {
        private_data: &login_rej,
        ..r
    }
    .emit(&mut out)
    .unwrap();
    assert_eq!(out, p);
}

#[test]
fn rej_stale_connection_and_ari() {
    let ari = [0xFE, 0x80, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
    let mut p = rej_fixture(10, &ari, &[]);
    p[8] = 1 << 6; // REP rejected
    let r = Rej::parse(&p).unwrap();
    assert_eq!(r.reason, RejReason::StaleConnection);
    assert_eq!(r.msg_rejected, MsgRejected::Rep);
    assert_eq!(r.ari, &ari);
    let mut out = [0xA5u8; 232];
    r.emit(&mut out).unwrap();
    assert_eq!(out, p);
}

#[test]
fn rej_reasons_are_the_ibta_numbers() {
    let named: [(u16, RejReason); 34] = [
        (1, RejReason::NoQp),
        (2, RejReason::NoEec),
        (3, RejReason::NoResources),
        (4, RejReason::Timeout),
        (5, RejReason::Unsupported),
        (6, RejReason::InvalidCommId),
        (7, RejReason::InvalidCommInstance),
        (8, RejReason::InvalidServiceId),
        (9, RejReason::InvalidTransportType),
        (10, RejReason::StaleConnection),
        (11, RejReason::RdcNotExist),
        (12, RejReason::InvalidGid),
        (13, RejReason::InvalidLid),
        (14, RejReason::InvalidSl),
        (15, RejReason::InvalidTrafficClass),
        (16, RejReason::InvalidHopLimit),
        (17, RejReason::InvalidPacketRate),
        (18, RejReason::InvalidAltGid),
        (19, RejReason::InvalidAltLid),
        (20, RejReason::InvalidAltSl),
        (21, RejReason::InvalidAltTrafficClass),
        (22, RejReason::InvalidAltHopLimit),
        (23, RejReason::InvalidAltPacketRate),
        (24, RejReason::PortCmRedirect),
        (25, RejReason::PortRedirect),
        (26, RejReason::InvalidMtu),
        (27, RejReason::InsufficientRespResources),
        (28, RejReason::ConsumerDefined),
        (29, RejReason::InvalidRnrRetry),
        (30, RejReason::DuplicateLocalCommId),
        (31, RejReason::InvalidClassVersion),
        (32, RejReason::InvalidFlowLabel),
        (33, RejReason::InvalidAltFlowLabel),
        (35, RejReason::VendorOptionNotSupported),
    ];
    for (code, reason) in named {
        let p = rej_fixture(code, &[], &[]);
        assert_eq!(Rej::parse(&p).unwrap().reason, reason, "code {code}");
        assert_eq!(u16::from(reason), code);
    }
    for code in [0u16, 34, 36, 0xFFFF] {
        let p = rej_fixture(code, &[], &[]);
        assert_eq!(Rej::parse(&p).unwrap().reason, RejReason::Unknown(code));
    }
}

#[test]
fn rej_ari_length_beyond_72_is_an_error() {
    let mut p = rej_fixture(24, &[], &[]);
    p[9] = 73 << 1;
    assert_eq!(
        Rej::parse(&p),
        Err(Error::Field {
            what: "CM REJ",
            field: "RejectInfoLength",
            value: 73
        })
    );
    p[9] = 72 << 1;
    assert_eq!(Rej::parse(&p).unwrap().ari.len(), 72);
    let long = [1u8; 73];
    let r = Rej {
        ari: &long,
        ..Rej::parse(&p).unwrap()
    };
    assert_eq!(
        r.emit(&mut [0u8; 232]),
        Err(Error::TooLong {
            what: "CM REJ",
            field: "ARI",
            max: 72,
            got: 73
        })
    );
}

#[test]
fn mra_rtu_dreq_drep_fixtures() {
    // MRA (reference §1.4): IDs, byte 8 bits 7..6 message MRAed, byte 9 bits 7..3
    // service timeout, private data at 10.
    let mut p = [0u8; 232];
    put(&mut p, 0, &1u32.to_be_bytes());
    put(&mut p, 4, &2u32.to_be_bytes());
    p[8] = 1 << 6;
    p[9] = 23 << 3;
    put(&mut p, 10, &[0xEE; 3]);
    let m = Mra::parse(&p).unwrap();
    assert_eq!(
        (
            m.local_comm_id,
            m.remote_comm_id,
            m.msg_mraed,
            m.service_timeout
        ),
        (1, 2, MsgMraed::Rep, 23)
    );
    assert_eq!(m.private_data.len(), 222);
    assert_eq!(&m.private_data[..4], &[0xEE, 0xEE, 0xEE, 0]);
    let mut out = [0xA5u8; 232];
    Mra {
        private_data: &[0xEE; 3],
        ..m
    }
    .emit(&mut out)
    .unwrap();
    assert_eq!(out, p);

    // RTU: IDs, private data at 8 (224 bytes).
    let mut p = [0u8; 232];
    put(&mut p, 0, &0x0A0B_0C0Du32.to_be_bytes());
    put(&mut p, 4, &0x0102_0304u32.to_be_bytes());
    let r = Rtu::parse(&p).unwrap();
    assert_eq!(
        (r.local_comm_id, r.remote_comm_id),
        (0x0A0B_0C0D, 0x0102_0304)
    );
    assert_eq!(r.private_data.len(), 224);
    let mut out = [0xA5u8; 232];
    Rtu {
        private_data: &[],
        ..r
    }
    .emit(&mut out)
    .unwrap();
    assert_eq!(out, p);

    // DREQ: IDs, remote QPN at 8..11, private data at 12 (220 bytes).
    let mut p = [0u8; 232];
    put(&mut p, 0, &7u32.to_be_bytes());
    put(&mut p, 4, &8u32.to_be_bytes());
    put(&mut p, 8, &[0xAB, 0xCD, 0xEF]);
    put(&mut p, 12, &[0x55]);
    let d = Dreq::parse(&p).unwrap();
    assert_eq!(
        (d.local_comm_id, d.remote_comm_id, d.remote_qpn),
        (7, 8, 0xABCDEF)
    );
    assert_eq!(d.private_data.len(), 220);
    assert_eq!(d.private_data[0], 0x55);
    let mut out = [0xA5u8; 232];
    Dreq {
        private_data: &[0x55],
        ..d
    }
    .emit(&mut out)
    .unwrap();
    assert_eq!(out, p);

    // DREP: IDs, private data at 8.
    let mut p = [0u8; 232];
    put(&mut p, 0, &8u32.to_be_bytes());
    put(&mut p, 4, &7u32.to_be_bytes());
    put(&mut p, 8, &[1, 2]);
    let d = Drep::parse(&p).unwrap();
    assert_eq!((d.local_comm_id, d.remote_comm_id), (8, 7));
    let mut out = [0xA5u8; 232];
    Drep {
        private_data: &[1, 2],
        ..d
    }
    .emit(&mut out)
    .unwrap();
    assert_eq!(out, p);
}

#[test]
fn cm_mad_header_and_dispatch() {
    let login = pattern(64, 3);
    // CM MAD: class 0x07, ClassVersion 2, method Send 0x03, attribute REQ 0x0010.
    let mut mad = mad_header(0x07, 2, 0x03, 0, TID, 0x0010, 0);
    put(&mut mad, 24, &req_fixture(&login));
    let mut out = [0xA5u8; 256];
    CmMessage::Req(req_repr(&login))
        .emit_mad(TID, &mut out)
        .unwrap();
    assert_eq!(out, mad);
    let (tid, msg) = CmMessage::parse_mad(&mad).unwrap();
    assert_eq!(tid, TID);
    assert!(matches!(msg, CmMessage::Req(r) if r.local_comm_id == 0x1122_3344));

    let rsp = [0xC0u8; 1];
    let mut mad = mad_header(0x07, 2, 0x03, 0, TID, 0x0013, 0);
    put(&mut mad, 24, &rep_fixture(&rsp));
    assert!(
        matches!(CmMessage::parse_mad(&mad).unwrap().1, CmMessage::Rep(r) if r.local_qpn == 0x4D2)
    );

    for (attr, want) in [
        (0x11u16, "Mra"),
        (0x12, "Rej"),
        (0x14, "Rtu"),
        (0x15, "Dreq"),
        (0x16, "Drep"),
    ] {
        let mad = mad_header(0x07, 2, 0x03, 0, TID, attr, 0);
        let (_, m) = CmMessage::parse_mad(&mad).unwrap();
        assert!(format!("{m:?}").starts_with(want), "{attr:#x}: {m:?}");
        assert_eq!(m.attr_id(), attr);
    }

    let unexpected = |b: [u8; 256], field, value| {
        assert_eq!(
            CmMessage::parse_mad(&b),
            Err(Error::Unexpected {
                what: "CM MAD",
                field,
                value
            })
        )
    };
    unexpected(mad_header(0x03, 2, 0x03, 0, TID, 0x10, 0), "MgmtClass", 3);
    unexpected(
        mad_header(0x07, 1, 0x03, 0, TID, 0x10, 0),
        "ClassVersion",
        1,
    );
    unexpected(mad_header(0x07, 2, 0x01, 0, TID, 0x10, 0), "Method", 1);
    unexpected(
        mad_header(0x07, 2, 0x03, 0, TID, 0x19, 0),
        "AttributeID",
        0x19,
    ); // LAP
}

// ------------------------------------------------------------ SA (reference §1.5)

#[test]
fn path_query_fixture() {
    // SubnAdmGet(PathRecord): class 0x03, ClassVersion 2, Get, attribute 0x0035.
    let mut mad = mad_header(0x03, 2, 0x01, 0, TID, 0x0035, 0);
    // ComponentMask at 48: ServiceID (bits 0,1) | DGID (2) | SGID (3) | Reversible (11)
    // | NumbPath (12) | P_Key (13).
    put(&mut mad, 48, &0x0000_0000_0000_380Fu64.to_be_bytes());
    let rec = 56;
    put(&mut mad, rec, &0x0002_C903_0000_1234u64.to_be_bytes()); // ServiceID
    put(&mut mad, rec + 8, &REMOTE_GID); // DGID
    put(&mut mad, rec + 24, &LOCAL_GID); // SGID
    mad[rec + 49] = 0x80 | 1; // Reversible, NumbPath 1
    put(&mut mad, rec + 50, &[0xFF, 0xFF]); // P_Key
    let q = PathQuery {
        sgid: LOCAL_GID,
        dgid: REMOTE_GID,
        pkey: 0xFFFF,
        service_id: Some(0x0002_C903_0000_1234),
    };
    let mut out = [0xA5u8; 256];
    q.emit(TID, &mut out).unwrap();
    assert_eq!(out, mad);

    // Without a ServiceID: mask bits 0 and 1 clear, bytes 0..8 zero.
    put(&mut mad, 48, &0x0000_0000_0000_380Cu64.to_be_bytes());
    put(&mut mad, rec, &[0; 8]);
    PathQuery {
        service_id: None,
        ..q
    }
    .emit(TID, &mut out)
    .unwrap();
    assert_eq!(out, mad);
}

fn path_record_fixture() -> [u8; 64] {
    let mut r = [0u8; 64];
    put(&mut r, 0, &0x0002_C903_0000_1234u64.to_be_bytes());
    put(&mut r, 8, &REMOTE_GID);
    put(&mut r, 24, &LOCAL_GID);
    put(&mut r, 40, &[0x00, 0x09]); // DLID
    put(&mut r, 42, &[0x00, 0x05]); // SLID
    // 44: RawTraffic bit 7; FlowLabel in the low nibble of 44, 45, 46; HopLimit at 47.
    put(&mut r, 44, &[0x8A, 0xBC, 0xDE, 0x40]);
    r[48] = 0x20; // TClass
    r[49] = 0x80 | 1; // Reversible, NumbPath 1
    put(&mut r, 50, &[0x80, 0x01]); // P_Key
    put(&mut r, 52, &[0x12, 0x35]); // QoSClass 0x123, SL 5
    r[54] = (2 << 6) | 4; // MTU exactly 2048
    r[55] = (2 << 6) | 3; // rate exactly 10 Gb/s
    r[56] = (2 << 6) | 18; // packet lifetime exactly 18
    r[57] = 1; // Preference
    r
}

fn path_record_repr() -> PathRecord {
    PathRecord {
        service_id: 0x0002_C903_0000_1234,
        dgid: REMOTE_GID,
        sgid: LOCAL_GID,
        dlid: 9,
        slid: 5,
        raw_traffic: true,
        flow_label: 0xABCDE,
        hop_limit: 0x40,
        tclass: 0x20,
        reversible: true,
        numb_path: 1,
        pkey: 0x8001,
        qos_class: 0x123,
        sl: 5,
        mtu_selector: Selector::Exactly,
        mtu: Mtu::Mtu2048,
        rate_selector: Selector::Exactly,
        rate: 3,
        packet_life_time_selector: Selector::Exactly,
        packet_life_time: 18,
        preference: 1,
    }
}

#[test]
fn path_record_fixture_parse_and_emit() {
    let r = path_record_fixture();
    assert_eq!(PathRecord::parse(&r).unwrap(), path_record_repr());
    let mut out = [0xA5u8; 64];
    path_record_repr().emit(&mut out).unwrap();
    assert_eq!(out, r);
    // Reserved bits (44 bits 6..4, 58..63) are ignored on parse.
    let mut noisy = r;
    noisy[44] |= 0x70;
    put(&mut noisy, 58, &[0xFF; 6]);
    assert_eq!(PathRecord::parse(&noisy).unwrap(), path_record_repr());
    assert_eq!(
        PathRecord {
            flow_label: 1 << 20,
            ..path_record_repr()
        }
        .emit(&mut out),
        Err(Error::Field {
            what: "PathRecord",
            field: "FlowLabel",
            value: 1 << 20
        })
    );
}

#[test]
fn path_reply_ok_busy_and_no_records() {
    let mut mad = mad_header(0x03, 2, 0x81, 0, TID, 0x0035, 0);
    put(&mut mad, 44, &[0x00, 0x08]); // AttributeOffset 8 (64 bytes)
    put(&mut mad, 56, &path_record_fixture());
    let r = PathReply::parse(&mad).unwrap();
    assert_eq!(r.tid, TID);
    assert_eq!(r.status, SaStatus::Ok);
    assert_eq!(r.sa.attr_offset, 8);
    assert_eq!(r.record, Some(path_record_repr()));
    let mut out = [0xA5u8; 256];
    r.emit(&mut out).unwrap();
    assert_eq!(out, mad);

    for (status, want) in [
        (0x0001u16, SaStatus::Busy),
        (0x0300, SaStatus::NoRecords),
        (0x0500, SaStatus::InvalidGid),
        (0x0600, SaStatus::InsufficientComponents),
        (0x000C, SaStatus::MethodAttrUnsupported),
        (0x0800, SaStatus::PrioritySuggested),
        (0x0900, SaStatus::Unknown(0x0900)),
    ] {
        put(&mut mad, 4, &status.to_be_bytes());
        let r = PathReply::parse(&mad).unwrap();
        assert_eq!((r.status, r.record), (want, None), "{status:#x}");
    }

    let wrong = mad_header(0x03, 2, 0x92, 0, TID, 0x0035, 0); // GetTableResp
    assert_eq!(
        PathReply::parse(&wrong),
        Err(Error::Unexpected {
            what: "SA PathRecord GetResp",
            field: "Method",
            value: 0x92
        })
    );
}

#[test]
fn sa_header_fixture() {
    // SA header from MAD byte 24 (reference §1.5): RMPP 24..36, SM_Key 36..44,
    // AttributeOffset 44..46, reserved 46..48, ComponentMask 48..56.
    let mut h = [0u8; 32];
    h[0] = 1; // RMPPVersion
    h[1] = 1; // RMPPType DATA
    h[2] = (0x1F << 3) | 0b110; // RRespTime 31, RMPPFlags First (2) | Last (4)
    h[3] = 0;
    put(&mut h, 4, &1u32.to_be_bytes());
    put(&mut h, 8, &200u32.to_be_bytes());
    put(&mut h, 12, &0x0123_4567_89AB_CDEFu64.to_be_bytes());
    put(&mut h, 20, &[0x00, 0x08]);
    put(&mut h, 24, &0x0000_0000_0000_3000u64.to_be_bytes());
    let s = SaHeader::parse(&h).unwrap();
    assert_eq!(
        (
            s.rmpp.version,
            s.rmpp.rmpp_type,
            s.rmpp.resp_time,
            s.rmpp.flags
        ),
        (1, 1, 31, 6)
    );
    assert_eq!((s.rmpp.data1, s.rmpp.data2), (1, 200));
    assert_eq!(
        (s.sm_key, s.attr_offset, s.component_mask),
        (0x0123_4567_89AB_CDEF, 8, 0x3000)
    );
    let mut out = [0xA5u8; 32];
    s.emit(&mut out).unwrap();
    assert_eq!(out, h);
}

// ---------------------------------------- PortInfo (IBTA vol. 1 §14.2.5.6) and P_Keys

fn port_info_fixture() -> [u8; 64] {
    let mut p = [0u8; 64];
    put(&mut p, 8, &0xFE80_0000_0000_0000u64.to_be_bytes()); // GidPrefix
    put(&mut p, 16, &[0x00, 0x05]); // LID
    put(&mut p, 18, &[0x00, 0x01]); // MasterSMLID
    put(&mut p, 20, &0x0050_C048u32.to_be_bytes()); // CapabilityMask (ibsim's)
    put(&mut p, 26, &[0x00, 0x0F]); // M_KeyLeasePeriod
    p[28] = 1; // LocalPortNum
    p[29] = 3; // LinkWidthEnabled
    p[30] = 3; // LinkWidthSupported
    p[31] = 2; // LinkWidthActive 4x
    p[32] = (1 << 4) | 4; // LinkSpeedSupported SDR, PortState Active
    p[33] = (5 << 4) | 2; // PhysicalState LinkUp, LinkDownDefault Polling
    p[34] = (1 << 6) | 2; // M_KeyProtectBits 1, LMC 2
    p[35] = (1 << 4) | 1; // LinkSpeedActive, LinkSpeedEnabled
    p[36] = (5 << 4) | 3; // NeighborMTU 4096, MasterSMSL 3
    p[37] = 4 << 4; // VLCap
    p[41] = 5; // MTUCap 4096
    p[43] = 4 << 4; // OperationalVLs
    p[51] = 0x80 | 18; // ClientReregister, SubnetTimeOut 18
    p[52] = 16; // RespTimeValue
    put(&mut p, 60, &[0x00, 0x02]); // CapabilityMask2
    p[62] = (2 << 4) | 1; // LinkSpeedExtActive, Supported
    p[63] = 0x1E; // LinkSpeedExtEnabled
    p
}

fn port_info_repr() -> PortInfo {
    PortInfo {
        m_key: 0,
        gid_prefix: 0xFE80_0000_0000_0000,
        lid: 5,
        master_sm_lid: 1,
        capability_mask: 0x0050_C048,
        m_key_lease_period: 15,
        local_port_num: 1,
        link_width_enabled: 3,
        link_width_supported: 3,
        link_width_active: 2,
        link_speed_supported: 1,
        port_state: PortState::Active,
        phys_state: PhysState::LinkUp,
        link_down_default_state: 2,
        m_key_protect_bits: 1,
        lmc: 2,
        link_speed_active: 1,
        link_speed_enabled: 1,
        neighbor_mtu: Mtu::Mtu4096,
        master_sm_sl: 3,
        vl_cap: 4,
        init_type: 0,
        init_type_reply: 0,
        mtu_cap: Mtu::Mtu4096,
        operational_vls: 4,
        client_reregister: true,
        subnet_timeout: 18,
        resp_time_value: 16,
        capability_mask2: 2,
        link_speed_ext_active: 2,
        link_speed_ext_supported: 1,
        link_speed_ext_enabled: 0x1E,
    }
}

#[test]
fn port_info_fixture_parse_and_emit() {
    let p = port_info_fixture();
    assert_eq!(PortInfo::parse(&p).unwrap(), port_info_repr());
    let mut out = [0xA5u8; 64];
    port_info_repr().emit(&mut out).unwrap();
    assert_eq!(out, p);
    // Bytes not kept (DiagCode, VL arbitration, counters, latency) do not disturb.
    let mut noisy = p;
    for at in [
        24, 25, 38, 39, 40, 42, 44, 45, 46, 47, 48, 49, 50, 53, 54, 55, 56, 57, 58, 59,
    ] {
        noisy[at] = 0xFF;
    }
    assert_eq!(PortInfo::parse(&noisy).unwrap(), port_info_repr());
}

#[test]
fn port_info_through_an_smp_get_resp() {
    // What MAD_IFC returns: a LID-routed SMP GetResp, attribute data at 64..128.
    let mut mad = mad_header(0x01, 1, 0x81, 0, TID, 0x0015, 1);
    put(&mut mad, 64, &port_info_fixture());
    assert_eq!(PortInfo::parse_smp(&mad).unwrap(), port_info_repr());
    // Directed route: the D bit (status bit 15) is not an error.
    let mut dr = mad;
    dr[1] = 0x81;
    put(&mut dr, 4, &0x8000u16.to_be_bytes());
    assert_eq!(PortInfo::parse_smp(&dr).unwrap().lid, 5);
    // A failed query.
    put(&mut mad, 4, &0x001Cu16.to_be_bytes());
    assert_eq!(
        PortInfo::parse_smp(&mad),
        Err(Error::Unexpected {
            what: "SMP GetResp",
            field: "Status",
            value: 0x1C
        })
    );
    // A P_KeyTable answer is not PortInfo.
    let pk = mad_header(0x01, 1, 0x81, 0, TID, 0x0016, 0);
    assert_eq!(
        PortInfo::parse_smp(&pk),
        Err(Error::Unexpected {
            what: "SMP GetResp",
            field: "AttributeID",
            value: 0x16
        })
    );
}

#[test]
fn smp_get_fixture() {
    // SubnGet(PortInfo) for port 1: class 0x01, ClassVersion 1, Get, M_Key at 24.
    let mut mad = mad_header(0x01, 1, 0x01, 0, TID, 0x0015, 1);
    put(&mut mad, 24, &0x1122_3344_5566_7788u64.to_be_bytes());
    let g = SmpGet {
        tid: TID,
        attr_id: 0x0015,
        attr_mod: 1,
        m_key: 0x1122_3344_5566_7788,
    };
    let mut out = [0xA5u8; 256];
    g.emit(&mut out).unwrap();
    assert_eq!(out, mad);
    assert_eq!(SmpGet::parse(&mad).unwrap(), g);
}

#[test]
fn pkey_block_fixture() {
    let mut b = [0u8; 64];
    put(&mut b, 0, &[0xFF, 0xFF]); // entry 0: default, full
    put(&mut b, 2, &[0x00, 0x01]); // entry 1: partition 1, limited
    put(&mut b, 62, &[0x80, 0x22]); // entry 31: partition 0x22, full
    let mut mad = mad_header(0x01, 1, 0x81, 0, TID, 0x0016, 0);
    put(&mut mad, 64, &b);
    let blk = PkeyBlock::parse_smp(&mad).unwrap();
    assert_eq!(blk.entries[0], 0xFFFF);
    assert_eq!(blk.entries[1], 0x0001);
    assert_eq!(blk.entries[31], 0x8022);
    assert!(blk.entries[2..31].iter().all(|e| *e == 0));
    assert_eq!(blk.find(0xFFFF), Some(0));
    assert_eq!(blk.find(0x7FFF), Some(0));
    assert_eq!(blk.find(0x8001), Some(1));
    assert_eq!(blk.find(0x0022), Some(31));
    assert_eq!(blk.find(0x8000), None); // key 0 is invalid
    assert_eq!(blk.find(0x1234), None);
    let mut out = [0xA5u8; 64];
    blk.emit(&mut out).unwrap();
    assert_eq!(out, b);
}

#[test]
fn mad_status_word() {
    let h = MadHeader::parse(&mad_header(0x03, 2, 0x81, 0x0301, TID, 0x35, 0)).unwrap();
    assert_eq!(h.status, MadStatus(0x0301));
    assert!(h.status.busy());
    assert_eq!(h.status.class_specific(), 3);
}

// ---------------------------------------------------------- truncation, random input

/// Every parser, named, as a function from bytes to "parsed, and the re-emitted bytes
/// parse back to the same thing".
type Check = fn(&[u8]) -> Result<(), Error>;

fn roundtrip<T: PartialEq + core::fmt::Debug>(
    parsed: T,
    emit: impl Fn(&T, &mut [u8]) -> Result<(), Error>,
    reparse: impl Fn(&[u8]) -> Result<T, Error>,
    len: usize,
) -> Result<(), Error> {
    let mut buf = vec![0x5Au8; len];
    emit(&parsed, &mut buf).expect("a parsed value emits");
    assert_eq!(reparse(&buf).expect("emitted bytes parse"), parsed);
    Ok(())
}

fn parsers() -> Vec<(&'static str, usize, Check)> {
    vec![
        ("MAD header", 24, |b| {
            roundtrip(MadHeader::parse(b)?, MadHeader::emit, MadHeader::parse, 24)
        }),
        ("SA header", 32, |b| {
            roundtrip(SaHeader::parse(b)?, SaHeader::emit, SaHeader::parse, 32)
        }),
        ("PathRecord", 64, |b| {
            roundtrip(
                PathRecord::parse(b)?,
                PathRecord::emit,
                PathRecord::parse,
                64,
            )
        }),
        ("SA PathRecord GetResp", 256, |b| {
            roundtrip(PathReply::parse(b)?, PathReply::emit, PathReply::parse, 256)
        }),
        ("PortInfo", 64, |b| {
            roundtrip(PortInfo::parse(b)?, PortInfo::emit, PortInfo::parse, 64)
        }),
        ("PortInfo SMP", 256, |b| PortInfo::parse_smp(b).map(drop)),
        ("P_KeyTable", 64, |b| {
            roundtrip(PkeyBlock::parse(b)?, PkeyBlock::emit, PkeyBlock::parse, 64)
        }),
        ("P_KeyTable SMP", 256, |b| PkeyBlock::parse_smp(b).map(drop)),
        ("SMP", 256, |b| {
            roundtrip(SmpGet::parse(b)?, SmpGet::emit, SmpGet::parse, 256)
        }),
        ("CM path", 44, |b| {
            roundtrip(CmPath::parse(b)?, CmPath::emit, CmPath::parse, 44)
        }),
        ("CM REQ", 232, |b| {
            let r = Req::parse(b)?;
            let mut out = [0u8; 232];
            r.emit(&mut out).unwrap();
            assert_eq!(Req::parse(&out).unwrap(), r);
            Ok(())
        }),
        ("CM REP", 232, |b| {
            let r = Rep::parse(b)?;
            let mut out = [0u8; 232];
            r.emit(&mut out).unwrap();
            assert_eq!(Rep::parse(&out).unwrap(), r);
            Ok(())
        }),
        ("CM REJ", 232, |b| {
            let r = Rej::parse(b)?;
            let mut out = [0u8; 232];
            r.emit(&mut out).unwrap();
            assert_eq!(Rej::parse(&out).unwrap(), r);
            Ok(())
        }),
        ("CM RTU", 232, |b| {
            let r = Rtu::parse(b)?;
            let mut out = [0u8; 232];
            r.emit(&mut out).unwrap();
            assert_eq!(Rtu::parse(&out).unwrap(), r);
            Ok(())
        }),
        ("CM MRA", 232, |b| {
            let r = Mra::parse(b)?;
            let mut out = [0u8; 232];
            r.emit(&mut out).unwrap();
            assert_eq!(Mra::parse(&out).unwrap(), r);
            Ok(())
        }),
        ("CM DREQ", 232, |b| {
            let r = Dreq::parse(b)?;
            let mut out = [0u8; 232];
            r.emit(&mut out).unwrap();
            assert_eq!(Dreq::parse(&out).unwrap(), r);
            Ok(())
        }),
        ("CM DREP", 232, |b| {
            let r = Drep::parse(b)?;
            let mut out = [0u8; 232];
            r.emit(&mut out).unwrap();
            assert_eq!(Drep::parse(&out).unwrap(), r);
            Ok(())
        }),
        ("CM MAD", 256, |b| {
            let (tid, m) = CmMessage::parse_mad(b)?;
            let mut out = [0u8; 256];
            m.emit_mad(tid, &mut out).unwrap();
            assert_eq!(CmMessage::parse_mad(&out).unwrap(), (tid, m));
            Ok(())
        }),
    ]
}

/// Valid inputs for every parser (whole MADs where the parser reads a MAD).
fn valid_inputs() -> Vec<Vec<u8>> {
    let login = pattern(64, 9);
    let mut v = vec![
        mad_header(0x03, 2, 0x81, 0, TID, 0x35, 0).to_vec(),
        path_record_fixture().to_vec(),
        port_info_fixture().to_vec(),
        req_fixture(&login).to_vec(),
        rep_fixture(&login).to_vec(),
        rej_fixture(28, &[1, 2, 3], &login).to_vec(),
    ];
    let mut pr = mad_header(0x03, 2, 0x81, 0, TID, 0x35, 0);
    put(&mut pr, 56, &path_record_fixture());
    v.push(pr.to_vec());
    let mut pi = mad_header(0x01, 1, 0x81, 0, TID, 0x15, 1);
    put(&mut pi, 64, &port_info_fixture());
    v.push(pi.to_vec());
    v.push(mad_header(0x01, 1, 0x81, 0, TID, 0x16, 0).to_vec());
    v.push(mad_header(0x01, 1, 0x01, 0, TID, 0x15, 1).to_vec());
    for attr in 0x10..=0x16u16 {
        let mut m = mad_header(0x07, 2, 0x03, 0, TID, attr, 0);
        put(&mut m, 24, &req_fixture(&login));
        m[24 + 9] = 0x10; // REJ: a short ARI
        v.push(m.to_vec());
    }
    v
}

#[test]
fn every_parser_rejects_every_truncation() {
    let inputs = valid_inputs();
    for (name, len, check) in parsers() {
        // One input the parser accepts in full…
        let full = inputs
            .iter()
            .find(|i| i.len() >= len && check(&i[..len]).is_ok())
            .unwrap_or_else(|| panic!("{name}: no valid fixture"));
        // …and every shorter prefix is a typed truncation naming the length needed.
        for n in 0..len {
            match check(&full[..n]) {
                Err(Error::Truncated { need, got, .. }) => {
                    assert_eq!(got, n, "{name} at {n}");
                    assert!(need > n && need <= len, "{name} at {n}: need {need}");
                }
                other => panic!("{name} truncated to {n}: {other:?}"),
            }
        }
    }
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

#[test]
fn random_and_mutated_input_never_panics_and_round_trips() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let valid = valid_inputs();
    let parsers = parsers();
    let (mut accepted, mut rejected) = (0usize, 0usize);
    for i in 0..20_000 {
        let buf: Vec<u8> = if i % 2 == 0 {
            let len = rng.below(300) as usize;
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            // A valid input with a few bytes changed and sometimes cut: reaches the
            // checks behind the header.
            let mut b = valid[rng.below(valid.len() as u64) as usize].clone();
            for _ in 0..=rng.below(4) {
                let at = rng.below(b.len() as u64) as usize;
                b[at] = rng.next() as u8;
            }
            if rng.below(4) == 0 {
                b.truncate(rng.below(b.len() as u64 + 1) as usize);
            }
            b
        };
        for (_, _, check) in &parsers {
            match check(&buf) {
                Ok(()) => accepted += 1,
                Err(_) => rejected += 1,
            }
        }
    }
    // Both outcomes occur, so the loop exercised the success and the error paths.
    assert!(
        accepted > 10_000 && rejected > 10_000,
        "{accepted} / {rejected}"
    );
}
