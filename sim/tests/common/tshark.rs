//! tshark and an independent CRC, shared by the capture tests.
//!
//! tshark 4.0's InfiniBand dissector shows the ICRC and VCRC but does not check them,
//! so the CRCs at the end of each packet are checked against a bit-serial CRC written
//! here from the IBTA description (a shift register fed least significant bit first),
//! not against the crate's table-driven one. tshark 4.0 also does not map link type
//! 247 to the dissector; if it refuses the file, the same records are read with a
//! user link type mapped to it (see `capture_for_tshark`).

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use fabboot_sim::wire::pcap::{FILE_HEADER_LEN, LINKTYPE_USER0, RECORD_HEADER_LEN};

// An independent CRC, from the IBTA description (vol. 1 §7.8): a shift register
// preset to ones, fed the bits of each byte least significant first, XORing in the
// polynomial when the bit shifted out differs from the bit fed in; the remainder is
// complemented and sent highest-order term first, least significant bit of each
// byte first. Written bit by bit and MSB-first on purpose: nothing like the crate's
// reflected table.

pub fn serial_crc(data: &[u8], width: u32, poly: u64) -> Vec<u8> {
    let mask = (1u64 << width) - 1;
    let mut reg = mask;
    for &byte in data {
        for i in 0..8 {
            let input = u64::from((byte >> i) & 1);
            let top = (reg >> (width - 1)) & 1;
            reg = (reg << 1) & mask;
            if top ^ input == 1 {
                reg ^= poly;
            }
        }
    }
    reg ^= mask;
    // Byte k of the field holds terms x^(width-1-8k) .. x^(width-8-8k), the highest
    // in bit 0.
    (0..width / 8)
        .map(|k| {
            let b = ((reg >> (width - 8 - 8 * k)) & 0xff) as u8;
            b.reverse_bits()
        })
        .collect()
}

/// The ICRC field bytes for `frame` (a whole packet, VCRC included): the invariant
/// fields with the variant ones set to ones (IBTA §7.8.1).
pub fn reference_icrc(frame: &[u8]) -> Vec<u8> {
    let mut m = frame[..frame.len() - 6].to_vec();
    let global = m[1] & 0x03 == 0x03;
    if global {
        m[..8].fill(0xff); // the LRH
        m[8] |= 0x0f; // TClass
        m[9..12].fill(0xff); // TClass, FlowLabel
        m[15] = 0xff; // HopLmt
        m[48 + 4] = 0xff; // BTH resv8a
    } else {
        m[0] |= 0xf0; // VL
        m[8 + 4] = 0xff; // BTH resv8a
    }
    serial_crc(&m, 32, 0x04c1_1db7)
}

/// The VCRC field bytes for `frame` (IBTA §7.8.2).
pub fn reference_vcrc(frame: &[u8]) -> Vec<u8> {
    serial_crc(&frame[..frame.len() - 2], 16, 0x100b)
}

// ---------------------------------------------------------------------------------
// tshark

/// tshark, or a failed test that says how to get it.
pub fn tshark() -> PathBuf {
    let path = std::env::var_os("TSHARK")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("tshark"));
    match Command::new(&path).arg("--version").output() {
        Ok(out) if out.status.success() => path,
        Ok(out) => panic!(
            "{} --version failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "tshark is required by this test and could not be run ({}: {e}); install it \
             (Debian: apt-get install tshark; ci/setup.sh does) or set TSHARK to its path",
            path.display()
        ),
    }
}

/// Arguments that make tshark read `pcap` with its InfiniBand dissector. tshark 4.0
/// refuses link type 247; then the same file with LINKTYPE_USER0 in its header is
/// read with that link type mapped to the dissector.
pub fn capture_for_tshark(tshark: &Path, pcap: &Path) -> Vec<String> {
    let probe = Command::new(tshark)
        .arg("-r")
        .arg(pcap)
        .args(["-c", "1", "-T", "fields", "-e", "infiniband.bth.opcode"])
        .output()
        .expect("run tshark");
    if probe.status.success() && !probe.stdout.trim_ascii().is_empty() {
        return vec!["-r".into(), pcap.display().to_string()];
    }
    let stderr = String::from_utf8_lossy(&probe.stderr);
    assert!(
        stderr.contains("network type 247 unknown or unsupported"),
        "tshark could not read {}: {stderr}",
        pcap.display()
    );
    let mut file = std::fs::read(pcap).unwrap();
    file[20..24].copy_from_slice(&LINKTYPE_USER0.to_le_bytes());
    let user = pcap.with_extension("user0.pcap");
    std::fs::write(&user, file).unwrap();
    vec![
        "-o".into(),
        r#"uat:user_dlts:"User 0 (DLT=147)","infiniband","0","","0","""#.into(),
        "-r".into(),
        user.display().to_string(),
    ]
}

/// Runs tshark with `read` (from [`capture_for_tshark`]) and `args`; its stdout.
pub fn run(tshark: &Path, read: &[String], args: &[&str]) -> String {
    let out = Command::new(tshark)
        .args(read)
        .args(args)
        .output()
        .expect("run tshark");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).expect("tshark prints UTF-8")
}

/// Every field tshark reports per frame.
pub const FIELDS: &[&str] = &[
    "frame.number",
    "frame.len",
    "_ws.malformed",
    "_ws.expert.message",
    "infiniband.lrh.vl",
    "infiniband.lrh.lver",
    "infiniband.lrh.sl",
    "infiniband.lrh.lnh",
    "infiniband.lrh.dlid",
    "infiniband.lrh.pktlen",
    "infiniband.lrh.slid",
    "infiniband.grh.ipver",
    "infiniband.grh.tclass",
    "infiniband.grh.flowlabel",
    "infiniband.grh.paylen",
    "infiniband.grh.nxthdr",
    "infiniband.grh.hoplmt",
    "infiniband.grh.sgid",
    "infiniband.grh.dgid",
    "infiniband.bth.opcode",
    "infiniband.bth.se",
    "infiniband.bth.m",
    "infiniband.bth.padcnt",
    "infiniband.bth.tver",
    "infiniband.bth.p_key",
    "infiniband.bth.destqp",
    "infiniband.bth.a",
    "infiniband.bth.psn",
    "infiniband.deth.q_key",
    "infiniband.deth.srcqp",
    "infiniband.reth.va",
    "infiniband.reth.r_key",
    "infiniband.reth.dmalen",
    "infiniband.aeth.syndrome",
    "infiniband.aeth.msn",
    "infiniband.immdt",
    "infiniband.invariant.crc",
    "infiniband.variant.crc",
    "infiniband.mad.baseversion",
    "infiniband.mad.mgmtclass",
    "infiniband.mad.classversion",
    "infiniband.mad.method",
    "infiniband.mad.transactionid",
    "infiniband.mad.attributeid",
    "infiniband.mad.attributemodifier",
    "infiniband.smplid.mkey",
    "infiniband.sa.componentmask",
    "infiniband.pathrecord.dgid",
    "infiniband.pathrecord.sgid",
    "infiniband.cm.req.serviceid",
    "infiniband.cm.req.localqpn",
    "infiniband.cm.req.startpsn",
    "infiniband.cm.req.localcaguid",
];

pub type Frame = HashMap<&'static str, String>;

/// One map of field to value per frame.
pub fn dissect(tshark: &Path, read: &[String]) -> Vec<Frame> {
    let mut args = vec!["-T", "fields", "-E", "separator=\t", "-E", "occurrence=a"];
    for f in FIELDS {
        args.extend(["-e", f]);
    }
    run(tshark, read, &args)
        .lines()
        .map(|line| {
            let values: Vec<&str> = line.split('\t').collect();
            assert_eq!(values.len(), FIELDS.len(), "one column per field: {line}");
            FIELDS
                .iter()
                .zip(values)
                .filter(|(_, v)| !v.is_empty())
                .map(|(f, v)| (*f, v.to_string()))
                .collect()
        })
        .collect()
}

/// A number as tshark prints it: hexadecimal with 0x, or decimal.
pub fn num(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .unwrap_or_else(|e| panic!("{s:?} is not a number: {e}"))
}

/// The value of `field` in `frame` as a number; a missing field fails the test.
pub fn get(frame: &Frame, field: &str) -> u64 {
    let v = frame
        .get(field)
        .unwrap_or_else(|| panic!("frame {:?} has no {field}", frame.get("frame.number")));
    num(v)
}

/// A boolean as tshark prints it.
pub fn flag(frame: &Frame, field: &str) -> bool {
    match frame.get(field).map(String::as_str) {
        Some("1") | Some("True") => true,
        Some("0") | Some("False") => false,
        other => panic!("{field}: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------
// Reading the file back, independently of the writer.

pub struct Record {
    pub seconds: u32,
    pub fraction: u32,
    pub data: Vec<u8>,
}

pub fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// The link type and records of a little-endian nanosecond pcap.
pub fn read_pcap(file: &[u8]) -> (u32, Vec<Record>) {
    assert_eq!(le32(file, 0), 0xa1b2_3c4d, "nanosecond magic");
    assert_eq!(&file[4..8], &[2, 0, 4, 0], "version 2.4");
    let mut records = Vec::new();
    let mut at = FILE_HEADER_LEN;
    while at < file.len() {
        let incl = le32(file, at + 8) as usize;
        assert_eq!(le32(file, at + 12) as usize, incl, "nothing cut");
        let data = file[at + RECORD_HEADER_LEN..at + RECORD_HEADER_LEN + incl].to_vec();
        records.push(Record {
            seconds: le32(file, at),
            fraction: le32(file, at + 4),
            data,
        });
        at += RECORD_HEADER_LEN + incl;
    }
    assert_eq!(at, file.len(), "the last record ends the file");
    (le32(file, 20), records)
}
