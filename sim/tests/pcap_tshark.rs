//! The fabric's capture format against an independent reader: a pcap of the packets
//! an SRP boot puts on the wire (an SMP, an SA PathRecord query, a CM REQ, RC SEND
//! and ACK, RDMA WRITE, RDMA READ request and response, and one global packet),
//! built from IBTA byte layouts here rather than from any driver code, written with
//! `fabboot_sim::wire::PcapWriter` and dissected by tshark.
//!
//! tshark 4.0's InfiniBand dissector shows the ICRC and VCRC but does not check them,
//! so the CRCs tshark finds at the end of each packet are checked against a
//! bit-serial CRC written here from the IBTA description (a shift register fed
//! least significant bit first), not against the crate's table-driven one. tshark
//! 4.0 also does not map link type 247 to the dissector; if it refuses the file, the
//! same records are read with a user link type mapped to it (see `capture_for_tshark`).
//!
//! tshark is required: without it this test fails (ci/setup.sh installs it).

use std::net::Ipv6Addr;
use std::path::PathBuf;

mod common;

use common::tshark::*;
use fabboot_sim::wire::pcap::{FILE_HEADER_LEN, RECORD_HEADER_LEN};
use fabboot_sim::wire::{
    AethRepr, BthRepr, DethRepr, ExtHeaders, Gid, GrhRepr, IbPacket, ImmDt, LINKTYPE_INFINIBAND,
    Lnh, LrhRepr, Opcode, PcapWriter, RethRepr, TimeResolution, WireError,
};

// The fabric: a subnet manager, an initiator and a target on one subnet.
const SUBNET: u64 = 0xfe80_0000_0000_0000;
const SM_LID: u16 = 1;
const INITIATOR_LID: u16 = 2;
const TARGET_LID: u16 = 3;
const INITIATOR_GUID: u64 = 0x0002_c903_0000_2222;
const TARGET_GUID: u64 = 0x0002_c903_0000_3333;
const INITIATOR_QPN: u32 = 0x00_0100;
const TARGET_QPN: u32 = 0x00_0200;
/// The SRP target's service ID (its I/O controller GUID).
const SERVICE_ID: u64 = 0x0002_c903_00ab_cdef;
/// The well-known Q_Key of QP1 (GSI).
const GSI_QKEY: u32 = 0x8001_0000;
const DEFAULT_PKEY: u16 = 0xffff;
const INITIATOR_PSN: u32 = 0x00_0123;
const TARGET_PSN: u32 = 0x00_0456;

fn initiator_gid() -> Gid {
    Gid::new(SUBNET, INITIATOR_GUID)
}

fn target_gid() -> Gid {
    Gid::new(SUBNET, TARGET_GUID)
}

fn put16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn put32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn put64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

/// A 256-byte MAD with its 24-byte common header filled in (IBTA §13.4): base
/// version 1, class, class version, method, status 0, transaction ID, attribute ID,
/// attribute modifier.
fn mad(class: u8, class_version: u8, method: u8, tid: u64, attr: u16, modifier: u32) -> Vec<u8> {
    let mut m = vec![0u8; 256];
    m[0] = 1;
    m[1] = class;
    m[2] = class_version;
    m[3] = method;
    put64(&mut m, 8, tid);
    put16(&mut m, 16, attr);
    put32(&mut m, 20, modifier);
    m
}

/// SubnGet(PortInfo) for port 1, LID-routed (class 0x01, version 1, method Get, attribute
/// 0x0015, modifier = port number; M_Key at byte 24, SMP data at 64).
fn smp_get_portinfo() -> Vec<u8> {
    let mut m = mad(0x01, 1, 0x01, 0x0000_0000_0000_1001, 0x0015, 1);
    put64(&mut m, 24, 0); // M_Key
    m
}

/// SubnAdmGet(PathRecord) from the initiator to the target (class 0x03, version 2):
/// the SA header (RMPP 24..36, SM_Key 36..44, AttributeOffset 44, ComponentMask
/// 48..56), then the record at 56: DGID at +8, SGID at +24, Reversible/NumbPath at +49,
/// P_Key at +50.
fn sa_path_record_get() -> Vec<u8> {
    let mut m = mad(0x03, 2, 0x01, 0x0000_0001_0000_0001, 0x0035, 0);
    let mask: u64 = (1 << 2) | (1 << 3) | (1 << 12) | (1 << 13); // DGID SGID NumbPath P_Key
    put64(&mut m, 48, mask);
    let rec = 56;
    m[rec + 8..rec + 24].copy_from_slice(&target_gid().0);
    m[rec + 24..rec + 40].copy_from_slice(&initiator_gid().0);
    m[rec + 49] = 0x80 | 1; // Reversible, NumbPath 1
    put16(&mut m, rec + 50, DEFAULT_PKEY);
    m
}

/// CM REQ from the initiator (class 0x07, version 2, method Send, attribute 0x0010);
/// the REQ fields at 24 + their offset in IBTA Table 106 ("REQ Message Contents"),
/// with an SRP_LOGIN_REQ at the start of the private data (REQ offset 140).
fn cm_req() -> Vec<u8> {
    let mut m = mad(0x07, 2, 0x03, 0x0000_0002_0000_0001, 0x0010, 0);
    let req = 24;
    put32(&mut m, req, 0x1234_5678); // Local Communication ID
    put64(&mut m, req + 8, SERVICE_ID);
    put64(&mut m, req + 16, INITIATOR_GUID); // Local CA GUID
    m[req + 32..req + 35].copy_from_slice(&INITIATOR_QPN.to_be_bytes()[1..]);
    m[req + 35] = 4; // Responder Resources
    m[req + 39] = 4; // Initiator Depth
    m[req + 43] = 20 << 3; // Remote CM Response Timeout; RC; no E2E flow control
    m[req + 44..req + 47].copy_from_slice(&INITIATOR_PSN.to_be_bytes()[1..]);
    m[req + 47] = (20 << 3) | 7; // Local CM Response Timeout, Retry Count
    put16(&mut m, req + 48, DEFAULT_PKEY);
    m[req + 50] = (4 << 4) | 7; // MTU 2048, RNR Retry Count 7
    m[req + 51] = 15 << 4; // Max CM Retries
    put16(&mut m, req + 52, INITIATOR_LID);
    put16(&mut m, req + 54, TARGET_LID);
    m[req + 56..req + 72].copy_from_slice(&initiator_gid().0);
    m[req + 72..req + 88].copy_from_slice(&target_gid().0);
    put32(&mut m, req + 88, 3); // Flow Label 0, Packet Rate 3 (10 Gb/s)
    m[req + 93] = 0; // Hop Limit
    m[req + 94] = 0x08; // SL 0, Subnet Local
    m[req + 95] = 18 << 3; // Local ACK Timeout
    let login = req + 140; // SRP_LOGIN_REQ: opcode 0, tag, max IU length
    m[login] = 0x00;
    put64(&mut m, login + 8, 0x0000_0000_0000_0001);
    put32(&mut m, login + 16, 0x0000_0104);
    m
}

/// An SRP_CMD-shaped SEND payload (opcode 0x02, tag, a READ(10) CDB at byte 32).
fn srp_cmd() -> Vec<u8> {
    let mut s = vec![0u8; 64];
    s[0] = 0x02;
    put64(&mut s, 8, 0x0000_0000_0000_0002);
    s[32] = 0x28;
    put32(&mut s, 34, 2048); // LBA
    put16(&mut s, 39, 1); // one block
    s
}

fn lrh(vl: u8, dlid: u16, slid: u16) -> LrhRepr {
    LrhRepr {
        vl,
        lver: 0,
        sl: 0,
        lnh: Lnh::Local,
        dlid,
        pkt_len: 0,
        slid,
    }
}

fn bth(opcode: Opcode, dest_qp: u32, psn: u32, ack_req: bool) -> BthRepr {
    BthRepr {
        opcode,
        se: false,
        mig_req: false,
        pad_cnt: 0,
        tver: 0,
        p_key: DEFAULT_PKEY,
        dest_qp,
        ack_req,
        psn,
    }
}

fn ud(lrh: LrhRepr, dest_qp: u32, q_key: u32, src_qp: u32, mad: Vec<u8>) -> IbPacket {
    IbPacket {
        lrh,
        grh: None,
        bth: bth(Opcode::UD_SEND_ONLY, dest_qp, 0, false),
        ext: ExtHeaders::Deth(DethRepr { q_key, src_qp }),
        payload: mad,
    }
}

fn rc(
    from: u16,
    to: u16,
    opcode: Opcode,
    dest_qp: u32,
    psn: u32,
    ext: ExtHeaders,
    payload: Vec<u8>,
) -> IbPacket {
    IbPacket {
        lrh: lrh(0, to, from),
        grh: None,
        bth: bth(opcode, dest_qp, psn, true),
        ext,
        payload,
    }
}

const ACK: AethRepr = AethRepr {
    syndrome: AethRepr::SYNDROME_ACK_NO_CREDIT,
    msn: 1,
};

/// The capture, in order, with the virtual time of each packet in nanoseconds.
fn scenario() -> Vec<(u64, &'static str, IbPacket)> {
    let write_reth = RethRepr {
        va: 0x0000_0000_1000_0000,
        r_key: 0x0000_1234,
        dma_len: 512,
    };
    let read_reth = RethRepr {
        va: 0x0000_0000_2000_0000,
        r_key: 0x0000_1234,
        dma_len: 1024,
    };
    let mut global = rc(
        TARGET_LID,
        INITIATOR_LID,
        Opcode::RC_SEND_ONLY_IMM,
        INITIATOR_QPN,
        TARGET_PSN + 2,
        ExtHeaders::Imm(ImmDt(0xcafe_f00d)),
        vec![0x41, 0x42, 0x43], // 3 bytes: one pad byte
    );
    global.lrh.lnh = Lnh::Global;
    global.grh = Some(GrhRepr {
        tclass: 0x20,
        flow_label: 0x0_beef,
        pay_len: 0,
        nxt_hdr: 0x1b,
        hop_lmt: 1,
        sgid: target_gid(),
        dgid: initiator_gid(),
    });
    vec![
        (
            1_000,
            "SubnGet(PortInfo)",
            ud(lrh(15, INITIATOR_LID, SM_LID), 0, 0, 0, smp_get_portinfo()),
        ),
        (
            2_000_500,
            "SubnAdmGet(PathRecord)",
            ud(
                lrh(0, SM_LID, INITIATOR_LID),
                1,
                GSI_QKEY,
                1,
                sa_path_record_get(),
            ),
        ),
        (
            3_000_250,
            "CM REQ",
            ud(lrh(0, TARGET_LID, INITIATOR_LID), 1, GSI_QKEY, 1, cm_req()),
        ),
        (
            4_000_000,
            "SEND_ONLY",
            rc(
                INITIATOR_LID,
                TARGET_LID,
                Opcode::RC_SEND_ONLY,
                TARGET_QPN,
                INITIATOR_PSN,
                ExtHeaders::None,
                srp_cmd(),
            ),
        ),
        (
            4_001_000,
            "ACKNOWLEDGE",
            IbPacket {
                bth: bth(Opcode::RC_ACKNOWLEDGE, INITIATOR_QPN, INITIATOR_PSN, false),
                ..rc(
                    TARGET_LID,
                    INITIATOR_LID,
                    Opcode::RC_ACKNOWLEDGE,
                    INITIATOR_QPN,
                    INITIATOR_PSN,
                    ExtHeaders::Aeth(ACK),
                    vec![],
                )
            },
        ),
        (
            5_000_000,
            "RDMA_WRITE_ONLY",
            rc(
                TARGET_LID,
                INITIATOR_LID,
                Opcode::RC_RDMA_WRITE_ONLY,
                INITIATOR_QPN,
                TARGET_PSN,
                ExtHeaders::Reth(write_reth),
                (0..512).map(|i| (i * 7) as u8).collect(),
            ),
        ),
        (
            6_000_000,
            "RDMA_READ_REQUEST",
            rc(
                TARGET_LID,
                INITIATOR_LID,
                Opcode::RC_RDMA_READ_REQUEST,
                INITIATOR_QPN,
                TARGET_PSN + 1,
                ExtHeaders::Reth(read_reth),
                vec![],
            ),
        ),
        (
            6_002_000,
            "RDMA_READ_RESPONSE_ONLY",
            IbPacket {
                bth: bth(
                    Opcode::RC_RDMA_READ_RESPONSE_ONLY,
                    TARGET_QPN,
                    TARGET_PSN + 1,
                    false,
                ),
                ..rc(
                    INITIATOR_LID,
                    TARGET_LID,
                    Opcode::RC_RDMA_READ_RESPONSE_ONLY,
                    TARGET_QPN,
                    TARGET_PSN + 1,
                    ExtHeaders::Aeth(ACK),
                    (0..1024).map(|i| (i % 251) as u8).collect(),
                )
            },
        ),
        (7_000_000, "SEND_ONLY_IMM with GRH", global),
    ]
}

// ---------------------------------------------------------------------------------
/// Whether the CRCs tshark found in `frame` are the reference CRCs of `bytes`.
fn crcs_good(frame: &Frame, bytes: &[u8]) -> (bool, bool) {
    let icrc = get(frame, "infiniband.invariant.crc") as u32;
    let vcrc = get(frame, "infiniband.variant.crc") as u16;
    // tshark shows the fields as big-endian numbers: the bytes in wire order.
    let n = bytes.len();
    assert_eq!(
        icrc.to_be_bytes(),
        bytes[n - 6..n - 2],
        "tshark's ICRC is the packet's"
    );
    assert_eq!(
        vcrc.to_be_bytes(),
        bytes[n - 2..],
        "tshark's VCRC is the packet's"
    );
    (
        icrc.to_be_bytes().as_slice() == reference_icrc(bytes),
        vcrc.to_be_bytes().as_slice() == reference_vcrc(bytes),
    )
}

fn temp_pcap(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("fabboot-{}-{name}.pcap", std::process::id()))
}

#[test]
fn reference_crc_knows_the_standard_check_values() {
    // CRC-32/ISO-HDLC of "123456789" is 0xCBF43926, sent as 26 39 F4 CB.
    assert_eq!(
        serial_crc(b"123456789", 32, 0x04c1_1db7),
        [0x26, 0x39, 0xf4, 0xcb]
    );
    // The 0x100B CRC of "123456789" per python3-crcmod (preset and complement ones,
    // reflected): 0x0A3D, sent as 3D 0A.
    assert_eq!(serial_crc(b"123456789", 16, 0x100b), [0x3d, 0x0a]);
}

#[test]
fn tshark_reads_the_capture() {
    let tshark = tshark();
    let packets = scenario();
    let encoded: Vec<Vec<u8>> = packets
        .iter()
        .map(|(_, _, p)| p.encode().unwrap())
        .collect();

    // Write the capture.
    let path = temp_pcap("capture");
    let file = std::fs::File::create(&path).unwrap();
    let mut w =
        PcapWriter::new(std::io::BufWriter::new(file), TimeResolution::Nanoseconds).unwrap();
    for (time, _, p) in &packets {
        w.write_packet(*time, p).unwrap();
    }
    assert_eq!(w.records(), packets.len() as u64);
    w.flush().unwrap();
    drop(w);

    // The file, read back here: header, link type, timestamps, bytes.
    let file = std::fs::read(&path).unwrap();
    let expected_len: usize = FILE_HEADER_LEN
        + encoded
            .iter()
            .map(|e| RECORD_HEADER_LEN + e.len())
            .sum::<usize>();
    assert_eq!(file.len(), expected_len);
    let (link_type, records) = read_pcap(&file);
    assert_eq!(link_type, LINKTYPE_INFINIBAND);
    assert_eq!(records.len(), packets.len());
    for ((time, name, _), (r, bytes)) in packets.iter().zip(records.iter().zip(&encoded)) {
        assert_eq!(
            u64::from(r.seconds) * 1_000_000_000 + u64::from(r.fraction),
            *time,
            "{name}"
        );
        assert_eq!(&r.data, bytes, "{name}");
        assert_eq!(
            reference_icrc(bytes),
            bytes[bytes.len() - 6..bytes.len() - 2],
            "{name}"
        );
        assert_eq!(reference_vcrc(bytes), bytes[bytes.len() - 2..], "{name}");
    }
    eprintln!(
        "capture: {} packets, {} bytes of packets, {} bytes of file",
        packets.len(),
        encoded.iter().map(Vec::len).sum::<usize>(),
        file.len()
    );

    // tshark's view.
    let read = capture_for_tshark(&tshark, &path);
    let verbose = run(&tshark, &read, &["-V"]);
    assert!(!verbose.contains("Malformed"), "{verbose}");
    assert!(!verbose.contains("Exception"), "{verbose}");
    let frames = dissect(&tshark, &read);
    assert_eq!(frames.len(), packets.len());

    for (((_, name, p), bytes), f) in packets.iter().zip(&encoded).zip(&frames) {
        let sealed = p.sealed().unwrap();
        let ctx = format!("{name}: {f:?}");
        assert!(!f.contains_key("_ws.malformed"), "{ctx}");
        assert!(!f.contains_key("_ws.expert.message"), "{ctx}");
        assert_eq!(get(f, "frame.len") as usize, bytes.len(), "{ctx}");

        // LRH
        assert_eq!(
            get(f, "infiniband.lrh.vl"),
            u64::from(sealed.lrh.vl),
            "{ctx}"
        );
        assert_eq!(get(f, "infiniband.lrh.lver"), 0, "{ctx}");
        assert_eq!(
            get(f, "infiniband.lrh.sl"),
            u64::from(sealed.lrh.sl),
            "{ctx}"
        );
        assert_eq!(
            get(f, "infiniband.lrh.lnh"),
            u64::from(sealed.lrh.lnh.bits()),
            "{ctx}"
        );
        assert_eq!(
            get(f, "infiniband.lrh.dlid"),
            u64::from(sealed.lrh.dlid),
            "{ctx}"
        );
        assert_eq!(
            get(f, "infiniband.lrh.slid"),
            u64::from(sealed.lrh.slid),
            "{ctx}"
        );
        assert_eq!(
            get(f, "infiniband.lrh.pktlen") as usize * 4 + 2,
            bytes.len(),
            "{ctx}"
        );

        // GRH
        match &sealed.grh {
            Some(g) => {
                assert_eq!(get(f, "infiniband.grh.ipver"), 6, "{ctx}");
                assert_eq!(
                    get(f, "infiniband.grh.tclass"),
                    u64::from(g.tclass),
                    "{ctx}"
                );
                assert_eq!(
                    get(f, "infiniband.grh.flowlabel"),
                    u64::from(g.flow_label),
                    "{ctx}"
                );
                assert_eq!(
                    get(f, "infiniband.grh.paylen") as usize,
                    bytes.len() - 2 - 48,
                    "{ctx}"
                );
                assert_eq!(get(f, "infiniband.grh.nxthdr"), 0x1b, "{ctx}");
                assert_eq!(
                    get(f, "infiniband.grh.hoplmt"),
                    u64::from(g.hop_lmt),
                    "{ctx}"
                );
                assert_eq!(
                    f["infiniband.grh.sgid"],
                    Ipv6Addr::from(g.sgid.0).to_string()
                );
                assert_eq!(
                    f["infiniband.grh.dgid"],
                    Ipv6Addr::from(g.dgid.0).to_string()
                );
            }
            None => assert!(!f.contains_key("infiniband.grh.ipver"), "{ctx}"),
        }

        // BTH
        let b = &sealed.bth;
        assert_eq!(
            get(f, "infiniband.bth.opcode"),
            u64::from(b.opcode.0),
            "{ctx}"
        );
        assert_eq!(flag(f, "infiniband.bth.se"), b.se, "{ctx}");
        assert_eq!(flag(f, "infiniband.bth.m"), b.mig_req, "{ctx}");
        assert_eq!(
            get(f, "infiniband.bth.padcnt"),
            u64::from(b.pad_cnt),
            "{ctx}"
        );
        assert_eq!(get(f, "infiniband.bth.tver"), 0, "{ctx}");
        assert_eq!(get(f, "infiniband.bth.p_key"), u64::from(b.p_key), "{ctx}");
        assert_eq!(
            get(f, "infiniband.bth.destqp"),
            u64::from(b.dest_qp),
            "{ctx}"
        );
        assert_eq!(flag(f, "infiniband.bth.a"), b.ack_req, "{ctx}");
        assert_eq!(get(f, "infiniband.bth.psn"), u64::from(b.psn), "{ctx}");

        // Extended headers
        let (deth, reth, aeth, imm) = match sealed.ext {
            ExtHeaders::None => (None, None, None, None),
            ExtHeaders::Deth(d) => (Some(d), None, None, None),
            ExtHeaders::DethImm(d, i) => (Some(d), None, None, Some(i)),
            ExtHeaders::Reth(r) => (None, Some(r), None, None),
            ExtHeaders::RethImm(r, i) => (None, Some(r), None, Some(i)),
            ExtHeaders::Aeth(a) => (None, None, Some(a), None),
            ExtHeaders::Imm(i) => (None, None, None, Some(i)),
        };
        match deth {
            Some(d) => {
                assert_eq!(get(f, "infiniband.deth.q_key"), u64::from(d.q_key), "{ctx}");
                assert_eq!(
                    get(f, "infiniband.deth.srcqp"),
                    u64::from(d.src_qp),
                    "{ctx}"
                );
            }
            None => assert!(!f.contains_key("infiniband.deth.q_key"), "{ctx}"),
        }
        match reth {
            Some(r) => {
                assert_eq!(get(f, "infiniband.reth.va"), r.va, "{ctx}");
                assert_eq!(get(f, "infiniband.reth.r_key"), u64::from(r.r_key), "{ctx}");
                assert_eq!(
                    get(f, "infiniband.reth.dmalen"),
                    u64::from(r.dma_len),
                    "{ctx}"
                );
            }
            None => assert!(!f.contains_key("infiniband.reth.va"), "{ctx}"),
        }
        match aeth {
            Some(a) => {
                assert_eq!(
                    get(f, "infiniband.aeth.syndrome"),
                    u64::from(a.syndrome),
                    "{ctx}"
                );
                assert_eq!(get(f, "infiniband.aeth.msn"), u64::from(a.msn), "{ctx}");
            }
            None => assert!(!f.contains_key("infiniband.aeth.msn"), "{ctx}"),
        }
        match imm {
            Some(ImmDt(v)) => {
                // tshark 4.0 adds the ImmDt bytes twice (header and field); every
                // occurrence must be the value.
                let shown = &f["infiniband.immdt"];
                assert!(
                    shown
                        .split(',')
                        .all(|s| s.replace(':', "") == format!("{v:08x}")),
                    "{ctx}"
                );
            }
            None => assert!(!f.contains_key("infiniband.immdt"), "{ctx}"),
        }

        // CRCs: where tshark finds them, and right by the reference.
        assert_eq!(crcs_good(f, bytes), (true, true), "{ctx}");
    }

    // The management datagrams, as tshark decodes them.
    let smp = &frames[0];
    assert_eq!(get(smp, "infiniband.mad.baseversion"), 1);
    assert_eq!(
        get(smp, "infiniband.mad.mgmtclass"),
        0x01,
        "LID-routed SM class"
    );
    assert_eq!(get(smp, "infiniband.mad.classversion"), 1);
    assert_eq!(get(smp, "infiniband.mad.method"), 0x01, "Get");
    assert_eq!(get(smp, "infiniband.mad.attributeid"), 0x0015, "PortInfo");
    assert_eq!(get(smp, "infiniband.mad.attributemodifier"), 1, "port 1");
    assert_eq!(get(smp, "infiniband.mad.transactionid"), 0x1001);
    assert_eq!(get(smp, "infiniband.smplid.mkey"), 0);

    let sa = &frames[1];
    assert_eq!(get(sa, "infiniband.mad.mgmtclass"), 0x03, "SubnAdm");
    assert_eq!(get(sa, "infiniband.mad.classversion"), 2);
    assert_eq!(get(sa, "infiniband.mad.method"), 0x01, "Get");
    assert_eq!(get(sa, "infiniband.mad.attributeid"), 0x0035, "PathRecord");
    assert_eq!(get(sa, "infiniband.sa.componentmask"), 0x300c);
    assert_eq!(sa["infiniband.pathrecord.dgid"], target_gid().to_string());
    assert_eq!(sa["infiniband.pathrecord.dgid"], "fe80::2:c903:0:3333");
    assert_eq!(
        sa["infiniband.pathrecord.sgid"],
        initiator_gid().to_string()
    );

    let req = &frames[2];
    assert_eq!(get(req, "infiniband.mad.mgmtclass"), 0x07, "CM");
    assert_eq!(get(req, "infiniband.mad.classversion"), 2);
    assert_eq!(get(req, "infiniband.mad.method"), 0x03, "Send");
    assert_eq!(get(req, "infiniband.mad.attributeid"), 0x0010, "REQ");
    assert_eq!(get(req, "infiniband.cm.req.serviceid"), SERVICE_ID);
    assert_eq!(get(req, "infiniband.cm.req.localcaguid"), INITIATOR_GUID);
    assert_eq!(
        get(req, "infiniband.cm.req.localqpn"),
        u64::from(INITIATOR_QPN)
    );
    assert_eq!(
        get(req, "infiniband.cm.req.startpsn"),
        u64::from(INITIATOR_PSN)
    );
    for f in &frames[3..] {
        assert!(
            !f.contains_key("infiniband.mad.mgmtclass"),
            "no MAD on RC: {f:?}"
        );
    }

    std::fs::remove_file(&path).ok();
    std::fs::remove_file(path.with_extension("user0.pcap")).ok();
}

/// Corrupted copies of the capture: tshark still dissects them, and the CRCs it
/// reports no longer check where a bit the CRC covers has changed.
#[test]
fn tshark_shows_corruption_as_bad_crcs() {
    let tshark = tshark();
    let packets = scenario();
    let send = packets[3].2.encode().unwrap();
    let global = packets[8].2.encode().unwrap();

    let refresh_vcrc = |p: &mut Vec<u8>| {
        let n = p.len();
        let v = reference_vcrc(p);
        p[n - 2..].copy_from_slice(&v);
    };

    // 1. A payload byte flipped on the wire: both CRCs are wrong.
    let mut flipped = send.clone();
    flipped[40] ^= 0x04;
    // 2. The same after a link that recomputed the VCRC: only the ICRC is wrong.
    let mut relinked = flipped.clone();
    refresh_vcrc(&mut relinked);
    // 3. A switch moved the packet to VL 7 and recomputed the VCRC: both right, as
    //    the ICRC does not cover the VL.
    let mut revl = send.clone();
    revl[0] = 0x70 | (revl[0] & 0x0f);
    refresh_vcrc(&mut revl);
    // 4. A router rebuilt the LRH and changed TClass, FlowLabel and HopLmt of the
    //    global packet, and recomputed the VCRC: both right.
    let mut routed = global.clone();
    let pkt_len = [routed[4], routed[5]];
    routed[0..8].copy_from_slice(&[0x20, 0x73, 0x00, 0x09, pkt_len[0], pkt_len[1], 0x00, 0x08]);
    routed[8] = 0x60;
    routed[9..12].copy_from_slice(&[0x00, 0x00, 0x00]);
    routed[15] = 0;
    refresh_vcrc(&mut routed);
    // 5. The ICRC itself damaged: only it is wrong.
    let mut bad_icrc = send.clone();
    let n = bad_icrc.len();
    bad_icrc[n - 4] ^= 0x80;
    refresh_vcrc(&mut bad_icrc);
    // 6. The SL of a local packet changed (covered by a local packet's ICRC).
    let mut resl = send.clone();
    resl[1] ^= 0x10;
    refresh_vcrc(&mut resl);

    let cases: [(&str, &Vec<u8>, (bool, bool)); 6] = [
        ("payload bit", &flipped, (false, false)),
        ("payload bit, VCRC recomputed", &relinked, (false, true)),
        ("VL changed", &revl, (true, true)),
        ("routed", &routed, (true, true)),
        ("ICRC bit", &bad_icrc, (false, true)),
        ("local SL changed", &resl, (false, true)),
    ];

    let path = temp_pcap("corrupt");
    let mut w = PcapWriter::new(
        std::fs::File::create(&path).unwrap(),
        TimeResolution::Microseconds,
    )
    .unwrap();
    for (i, (_, bytes, _)) in cases.iter().enumerate() {
        w.write_record(i as u64 * 1_000, bytes).unwrap();
    }
    w.flush().unwrap();
    drop(w);

    let read = capture_for_tshark(&tshark, &path);
    let verbose = run(&tshark, &read, &["-V"]);
    assert!(!verbose.contains("Malformed"), "{verbose}");
    let frames = dissect(&tshark, &read);
    assert_eq!(frames.len(), cases.len());
    for ((name, bytes, want), f) in cases.iter().zip(&frames) {
        assert!(!f.contains_key("_ws.malformed"), "{name}: {f:?}");
        assert_eq!(crcs_good(f, bytes), *want, "{name}");
        // The crate's decoder agrees.
        let decoded = IbPacket::decode(bytes);
        match want {
            (true, true) => assert!(decoded.is_ok(), "{name}: {decoded:?}"),
            (_, false) => assert!(
                matches!(decoded, Err(WireError::BadVcrc { .. })),
                "{name}: {decoded:?}"
            ),
            (false, true) => assert!(
                matches!(decoded, Err(WireError::BadIcrc { .. })),
                "{name}: {decoded:?}"
            ),
        }
    }

    std::fs::remove_file(&path).ok();
    std::fs::remove_file(path.with_extension("user0.pcap")).ok();
}
