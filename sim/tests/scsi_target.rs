//! The SCSI side of the simulated SRP target, driven as the SRP layer will drive it:
//! `Target::execute` with an 8-byte LUN, a CDB, data-out bytes and the data-in length
//! the initiator can take. Images live under the temporary directory and are removed.
//! Operation codes, status codes, sense keys, peripheral bytes and version
//! descriptors are checked against Linux's `scsi/scsi_proto.h` (Debian's
//! `linux-headers-*-common`, installed by `ci/setup.sh`), compiled here as an oracle.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use fabboot_sim::target::cdb::op;
use fabboot_sim::target::inquiry::{PERIPHERAL_DISK, PERIPHERAL_NO_LUN, VERSION_DESCRIPTORS};
use fabboot_sim::target::{
    Asc, BlockSize, Image, LogicalUnit, LuIdentity, Lun, Product, Request, Residual, Response,
    Sense, SenseKey, Status, Target,
};

const TIB: u64 = 1 << 40;

/// A unique image path under the temporary directory, removed on drop.
struct TempImage(PathBuf);

impl TempImage {
    fn new(tag: &str) -> TempImage {
        static N: AtomicU32 = AtomicU32::new(0);
        TempImage(std::env::temp_dir().join(format!(
            "fabboot-scsi-target-{tag}-{}-{}.img",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )))
    }
}

impl Drop for TempImage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A target with one LU per `(lun, block size, blocks)`, and the images' paths.
fn target(tag: &str, lus: &[(u16, BlockSize, u64)]) -> (Target, Vec<TempImage>) {
    let mut t = Target::new(Product::simulated());
    let mut files = Vec::new();
    for &(lun, bs, blocks) in lus {
        let f = TempImage::new(tag);
        let image = Image::create(&f.0, bs, blocks).unwrap();
        let lu = LogicalUnit::new(image, LuIdentity::simulated(u32::from(lun)));
        t.add(Lun::new(lun).unwrap(), lu).unwrap();
        files.push(f);
    }
    (t, files)
}

fn lun(n: u16) -> [u8; 8] {
    Lun::new(n).unwrap().to_bytes()
}

fn exec(t: &mut Target, l: u16, cdb: &[u8], data_in_len: u32, data_out: &[u8]) -> Response {
    t.execute(
        lun(l),
        &Request {
            cdb,
            data_in_len,
            data_out,
        },
    )
}

fn rw10(opcode: u8, lba: u32, blocks: u16) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = opcode;
    c[2..6].copy_from_slice(&lba.to_be_bytes());
    c[7..9].copy_from_slice(&blocks.to_be_bytes());
    c
}

fn rw16(opcode: u8, lba: u64, blocks: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = opcode;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&blocks.to_be_bytes());
    c
}

fn read_capacity_16(alloc: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = op::SERVICE_ACTION_IN_16;
    c[1] = op::SA_READ_CAPACITY_16;
    c[10..14].copy_from_slice(&alloc.to_be_bytes());
    c
}

fn inquiry(evpd: bool, page: u8, alloc: u16) -> [u8; 6] {
    let [hi, lo] = alloc.to_be_bytes();
    [op::INQUIRY, u8::from(evpd), page, hi, lo, 0]
}

fn report_luns(alloc: u32) -> [u8; 12] {
    let mut c = [0u8; 12];
    c[0] = op::REPORT_LUNS;
    c[6..10].copy_from_slice(&alloc.to_be_bytes());
    c
}

/// Reads `len` bytes at `offset` of the image file, bypassing the target.
fn file_bytes(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut b = vec![0; len];
    f.read_exact(&mut b).unwrap();
    b
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

/// The fixed-format sense bytes on the wire: (sense key, ASC, ASCQ).
fn wire_sense(r: &Response) -> (u8, u8, u8) {
    let s = r.sense_bytes().expect("CHECK CONDITION carries sense");
    assert_eq!(s[0], 0x70, "fixed format, current error");
    assert_eq!(s[7], 10, "additional sense length");
    (s[2] & 0x0F, s[12], s[13])
}

fn assert_check(r: &Response, key: u8, asc: u8, ascq: u8) {
    assert_eq!(r.status, Status::CheckCondition);
    assert_eq!(r.status.code(), 0x02);
    assert!(r.data_in.is_empty());
    assert_eq!(wire_sense(r), (key, asc, ascq));
}

// ---------------------------------------------------------------------------------
// The header oracle.

/// The newest `scsi/scsi_proto.h` among the installed kernel header packages.
fn scsi_proto_h() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/src")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.path().join("include/scsi/scsi_proto.h"))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().expect(
        "no /usr/src/linux-headers-*/include/scsi/scsi_proto.h: install Debian's \
         linux-headers-amd64 (ci/setup.sh does)",
    )
}

/// Our value for each name `scsi_proto.h` defines.
fn ours() -> Vec<(&'static str, u32)> {
    let mut v = vec![
        ("TEST_UNIT_READY", op::TEST_UNIT_READY),
        ("REQUEST_SENSE", op::REQUEST_SENSE),
        ("INQUIRY", op::INQUIRY),
        ("MODE_SENSE", op::MODE_SENSE_6),
        ("READ_CAPACITY", op::READ_CAPACITY_10),
        ("READ_10", op::READ_10),
        ("WRITE_10", op::WRITE_10),
        ("SYNCHRONIZE_CACHE", op::SYNCHRONIZE_CACHE_10),
        ("MODE_SENSE_10", op::MODE_SENSE_10),
        ("READ_16", op::READ_16),
        ("WRITE_16", op::WRITE_16),
        ("SERVICE_ACTION_IN_16", op::SERVICE_ACTION_IN_16),
        ("SAI_READ_CAPACITY_16", op::SA_READ_CAPACITY_16),
        ("REPORT_LUNS", op::REPORT_LUNS),
        ("SAM_STAT_GOOD", Status::Good.code()),
        ("SAM_STAT_CHECK_CONDITION", Status::CheckCondition.code()),
        ("NO_SENSE", SenseKey::NoSense.code()),
        ("MEDIUM_ERROR", SenseKey::MediumError.code()),
        ("ILLEGAL_REQUEST", SenseKey::IllegalRequest.code()),
        ("DATA_PROTECT", SenseKey::DataProtect.code()),
        ("TYPE_DISK", PERIPHERAL_DISK),
        ("TYPE_NO_LUN", PERIPHERAL_NO_LUN),
    ]
    .into_iter()
    .map(|(n, v)| (n, u32::from(v)))
    .collect::<Vec<_>>();
    for (name, value) in [
        "SCSI_VERSION_DESCRIPTOR_SAM5",
        "SCSI_VERSION_DESCRIPTOR_SRP",
        "SCSI_VERSION_DESCRIPTOR_SPC4",
        "SCSI_VERSION_DESCRIPTOR_SBC3",
    ]
    .into_iter()
    .zip(VERSION_DESCRIPTORS)
    {
        v.push((name, u32::from(value)));
    }
    v
}

/// Compiles and runs a program printing each name's value in `scsi_proto.h`.
fn oracle(names: &[&str], tag: &str) -> BTreeMap<String, u32> {
    let mut c = String::from("#include <stdio.h>\n");
    writeln!(c, "#include \"{}\"", scsi_proto_h().display()).unwrap();
    c.push_str("int main(void) {\n");
    for n in names {
        writeln!(c, "  printf(\"{n} %u\\n\", (unsigned)({n}));").unwrap();
    }
    c.push_str("  return 0;\n}\n");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("scsi_proto_oracle")
        .join(tag);
    std::fs::create_dir_all(&dir).unwrap();
    let (src, exe) = (dir.join("oracle.c"), dir.join("oracle"));
    std::fs::write(&src, c).unwrap();
    let cc = Command::new("cc")
        .args(["-w", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("a C compiler");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let out = Command::new(&exe).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (n, v) = l.split_once(' ').unwrap();
            (n.to_owned(), v.parse().unwrap())
        })
        .collect()
}

fn disagreements(ours: &[(&str, u32)], theirs: &BTreeMap<String, u32>) -> Vec<String> {
    ours.iter()
        .filter(|(n, v)| theirs.get(*n) != Some(v))
        .map(|(n, v)| format!("{n}: ours {v:#x}, scsi_proto.h {:?}", theirs.get(*n)))
        .collect()
}

#[test]
fn codes_match_scsi_proto_h() {
    let ours = ours();
    let names: Vec<&str> = ours.iter().map(|(n, _)| *n).collect();
    let theirs = oracle(&names, "all");
    let d = disagreements(&ours, &theirs);
    assert!(d.is_empty(), "differ from scsi_proto.h:\n{}", d.join("\n"));

    // The target behaves by the header's numbers: every opcode it names is a command
    // the target knows (no INVALID COMMAND OPERATION CODE), and the sense key and
    // status bytes it sends are the header's.
    let (mut t, _f) = target("oracle", &[(0, BlockSize::B512, 64)]);
    for name in [
        "TEST_UNIT_READY",
        "REQUEST_SENSE",
        "INQUIRY",
        "MODE_SENSE",
        "READ_CAPACITY",
        "READ_10",
        "WRITE_10",
        "SYNCHRONIZE_CACHE",
        "MODE_SENSE_10",
        "READ_16",
        "WRITE_16",
        "REPORT_LUNS",
    ] {
        let mut cdb = [0u8; 16];
        cdb[0] = theirs[name] as u8;
        let r = exec(&mut t, 0, &cdb, 0, &[]);
        if r.status != Status::Good {
            assert_ne!(
                wire_sense(&r).1,
                0x20,
                "{name} refused as an unknown opcode"
            );
        }
    }
    let r = exec(&mut t, 0, &read_capacity_16(32), 32, &[]);
    assert_eq!(
        u32::from(r.status.code()),
        theirs["SAM_STAT_GOOD"],
        "SAI_READ_CAPACITY_16"
    );
    let r = exec(&mut t, 0, &rw16(theirs["READ_16"] as u8, 64, 1), 512, &[]);
    assert_eq!(
        u32::from(r.status.code()),
        theirs["SAM_STAT_CHECK_CONDITION"]
    );
    assert_eq!(u32::from(wire_sense(&r).0), theirs["ILLEGAL_REQUEST"]);
    let r = exec(
        &mut t,
        0,
        &[theirs["REQUEST_SENSE"] as u8, 0, 0, 0, 18, 0],
        18,
        &[],
    );
    assert_eq!(u32::from(r.data_in[2]), theirs["ILLEGAL_REQUEST"]);
    let r = exec(
        &mut t,
        0,
        &[theirs["REQUEST_SENSE"] as u8, 0, 0, 0, 18, 0],
        18,
        &[],
    );
    assert_eq!(u32::from(r.data_in[2]), theirs["NO_SENSE"]);
    let r = exec(&mut t, 0, &inquiry(false, 0, 96), 96, &[]);
    assert_eq!(u32::from(r.data_in[0]), theirs["TYPE_DISK"]);
    let r = exec(&mut t, 5, &inquiry(false, 0, 96), 96, &[]);
    assert_eq!(u32::from(r.data_in[0]), theirs["TYPE_NO_LUN"]);
}

#[test]
fn the_oracle_notices_a_wrong_value() {
    let wrong = [("READ_16", 0x89u32), ("ILLEGAL_REQUEST", 0x05)];
    let theirs = oracle(&["READ_16", "ILLEGAL_REQUEST"], "liveness");
    assert_eq!(
        disagreements(&wrong, &theirs),
        ["READ_16: ours 0x89, scsi_proto.h Some(136)"]
    );
}

// ---------------------------------------------------------------------------------
// Data through the file.

#[test]
fn write_then_read_round_trips_through_the_file() {
    for (bs, bytes) in [(BlockSize::B512, 512usize), (BlockSize::B4096, 4096)] {
        let (mut t, f) = target("roundtrip", &[(0, bs, 1000)]);
        let syncs = t.lu(Lun::new(0).unwrap()).unwrap().image().syncs();

        // WRITE (10): 3 blocks at LBA 10.
        let a = pattern(3 * bytes, 1);
        let r = exec(&mut t, 0, &rw10(op::WRITE_10, 10, 3), 0, &a);
        assert_eq!((r.status, r.sense), (Status::Good, None));
        assert_eq!(r.data_out_residual, Residual::None);
        assert_eq!(r.data_in_residual, Residual::None);
        // On disk, read independently of the target, before anything else happens.
        assert_eq!(file_bytes(&f[0].0, 10 * bytes as u64, a.len()), a);

        // WRITE (16): the last 2 blocks.
        let b = pattern(2 * bytes, 2);
        let r = exec(&mut t, 0, &rw16(op::WRITE_16, 998, 2), 0, &b);
        assert_eq!(r.status, Status::Good);
        assert_eq!(file_bytes(&f[0].0, 998 * bytes as u64, b.len()), b);
        let image = t.lu(Lun::new(0).unwrap()).unwrap().image();
        assert_eq!(image.syncs(), syncs + 2, "each write was synced");

        // Back through READ (16) and READ (10).
        let r = exec(&mut t, 0, &rw16(op::READ_16, 10, 3), a.len() as u32, &[]);
        assert_eq!((r.status, &r.data_in), (Status::Good, &a));
        assert_eq!(r.data_in_residual, Residual::None);
        let r = exec(&mut t, 0, &rw10(op::READ_10, 998, 2), b.len() as u32, &[]);
        assert_eq!(r.data_in, b);
        // Unwritten blocks read as zeros, and neighbours were not touched.
        let r = exec(&mut t, 0, &rw10(op::READ_10, 9, 5), 5 * bytes as u32, &[]);
        assert!(r.data_in[..bytes].iter().all(|&x| x == 0));
        assert_eq!(&r.data_in[bytes..4 * bytes], &a[..]);
        assert!(r.data_in[4 * bytes..].iter().all(|&x| x == 0));

        // Zero-length transfers are not errors and move nothing.
        let r = exec(&mut t, 0, &rw10(op::WRITE_10, 5, 0), 0, &[]);
        assert_eq!(
            (r.status, r.data_out_residual),
            (Status::Good, Residual::None)
        );
        let r = exec(&mut t, 0, &rw16(op::READ_16, 5, 0), 0, &[]);
        assert_eq!((r.status, r.data_in.len()), (Status::Good, 0));

        // SYNCHRONIZE CACHE (10) over the whole medium.
        let r = exec(&mut t, 0, &rw10(op::SYNCHRONIZE_CACHE_10, 0, 0), 0, &[]);
        assert_eq!(r.status, Status::Good);
    }
}

#[cfg(unix)]
fn allocated_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks() * 512
}

#[cfg(unix)]
#[test]
fn a_4_tib_image_is_sparse() {
    for (bs, bytes) in [(BlockSize::B512, 512u64), (BlockSize::B4096, 4096)] {
        let (mut t, f) = target("sparse", &[(0, bs, 4 * TIB / bytes)]);
        assert_eq!(std::fs::metadata(&f[0].0).unwrap().len(), 4 * TIB);
        let last = 4 * TIB / bytes - 1;
        let d = pattern(bytes as usize, 3);
        for lba in [0, last / 3, last] {
            let r = exec(&mut t, 0, &rw16(op::WRITE_16, lba, 1), 0, &d);
            assert_eq!(r.status, Status::Good);
            assert_eq!(file_bytes(&f[0].0, lba * bytes, d.len()), d);
            let r = exec(&mut t, 0, &rw16(op::READ_16, lba, 1), bytes as u32, &[]);
            assert_eq!(r.data_in, d);
        }
        let used = allocated_bytes(&f[0].0);
        assert!(used < 1 << 20, "a 4 TiB image uses {used} bytes");
    }
}

#[test]
fn read_capacity_on_large_images() {
    // 4 TiB of 512-byte blocks: the last LBA (2^33 − 1) needs READ CAPACITY (16).
    // 4 TiB of 4096-byte blocks: it fits. Then both sides of the 10-byte limit.
    let cases = [
        (BlockSize::B512, 4 * TIB / 512, 0xFFFF_FFFFu32),
        (BlockSize::B4096, 4 * TIB / 4096, 0x3FFF_FFFF),
        (BlockSize::B512, 0xFFFF_FFFF, 0xFFFF_FFFE),
        (BlockSize::B512, 0x1_0000_0000, 0xFFFF_FFFF),
    ];
    for (bs, blocks, rc10) in cases {
        let (mut t, _f) = target("capacity", &[(0, bs, blocks)]);
        let r = exec(
            &mut t,
            0,
            &[op::READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            8,
            &[],
        );
        assert_eq!(r.status, Status::Good);
        assert_eq!(r.data_in[..4], rc10.to_be_bytes());
        assert_eq!(r.data_in[4..], bs.bytes().to_be_bytes());

        let r = exec(&mut t, 0, &read_capacity_16(32), 32, &[]);
        assert_eq!(r.data_in.len(), 32);
        assert_eq!(r.data_in[..8], (blocks - 1).to_be_bytes());
        assert_eq!(r.data_in[8..12], bs.bytes().to_be_bytes());
        assert!(r.data_in[12..].iter().all(|&b| b == 0));
        assert_eq!(r.data_in_residual, Residual::None);

        // The allocation length bounds the data: 12 bytes asked, 32 expected.
        let r = exec(&mut t, 0, &read_capacity_16(12), 32, &[]);
        assert_eq!(r.data_in.len(), 12);
        assert_eq!(r.data_in_residual, Residual::Underflow(20));
    }
}

// ---------------------------------------------------------------------------------
// Discovery: INQUIRY, VPD, REPORT LUNS, MODE SENSE.

#[test]
fn inquiry_and_vpd_pages() {
    let (mut t, _f) = target("inquiry", &[(2, BlockSize::B4096, 16)]);
    let r = exec(&mut t, 2, &inquiry(false, 0, 255), 255, &[]);
    let d = &r.data_in;
    assert_eq!(d.len(), 96);
    assert_eq!(usize::from(d[4]) + 5, d.len(), "ADDITIONAL LENGTH");
    assert_eq!(d[0], 0x00, "connected direct access block device");
    assert_eq!(d[2], 0x06, "SPC-4");
    assert_eq!(d[3] & 0x0F, 2, "response data format");
    assert_ne!(d[7] & 0x02, 0, "CMDQUE");
    assert_eq!(&d[8..16], b"FABBOOT ");
    assert_eq!(&d[16..32], b"SIM SRP DISK    ");

    // Supported pages: ascending, and each one listed can be read.
    let r = exec(&mut t, 2, &inquiry(true, 0x00, 255), 255, &[]);
    let d = r.data_in.clone();
    assert_eq!(&d[..2], &[0x00, 0x00]);
    let n = usize::from(u16::from_be_bytes([d[2], d[3]]));
    let pages = &d[4..4 + n];
    assert_eq!(pages, &[0x00, 0x80, 0x83]);
    for &p in pages {
        let r = exec(&mut t, 2, &inquiry(true, p, 255), 255, &[]);
        assert_eq!((r.status, r.data_in[1]), (Status::Good, p));
        let len = usize::from(u16::from_be_bytes([r.data_in[2], r.data_in[3]]));
        assert_eq!(len + 4, r.data_in.len(), "page {p:#x} length");
    }

    // Unit serial number.
    let r = exec(&mut t, 2, &inquiry(true, 0x80, 255), 255, &[]);
    let serial = LuIdentity::simulated(2).serial().to_owned();
    assert_eq!(&r.data_in[4..], serial.as_bytes());

    // Device identification: walk the designators; an NAA one, for the LU, binary.
    let r = exec(&mut t, 2, &inquiry(true, 0x83, 255), 255, &[]);
    let mut rest = &r.data_in[4..];
    let mut naa = None;
    let mut t10 = None;
    while let [code_set, kind, _, len, tail @ ..] = rest {
        let (value, next) = tail.split_at(usize::from(*len));
        assert_eq!(kind & 0x30, 0, "association: the logical unit");
        match kind & 0x0F {
            3 => {
                assert_eq!(code_set & 0x0F, 1, "binary");
                naa = Some(value.to_vec());
            }
            1 => {
                assert_eq!(code_set & 0x0F, 2, "ASCII");
                t10 = Some(value.to_vec());
            }
            other => panic!("unexpected designator type {other}"),
        }
        rest = next;
    }
    let naa = naa.expect("an NAA designator");
    assert_eq!(naa.len(), 8);
    assert_eq!(naa[0] >> 4, 3, "NAA locally assigned");
    assert_eq!(naa, LuIdentity::simulated(2).naa());
    let t10 = t10.expect("a T10 vendor ID designator");
    assert_eq!(&t10[..8], b"FABBOOT ");
    assert_eq!(&t10[8..], serial.as_bytes());

    // A page we do not have, and a page code without EVPD.
    let r = exec(&mut t, 2, &inquiry(true, 0xB0, 255), 255, &[]);
    assert_check(&r, 0x05, 0x24, 0x00);
    let s = r.sense_bytes().unwrap();
    assert_eq!(&s[15..18], &[0xC0, 0, 2], "field pointer: CDB byte 2");
    let r = exec(&mut t, 2, &inquiry(false, 0x83, 255), 255, &[]);
    assert_check(&r, 0x05, 0x24, 0x00);

    // At a LUN with no logical unit: qualifier 011b, type 1Fh; other commands fail.
    let r = exec(&mut t, 0, &inquiry(false, 0, 36), 36, &[]);
    assert_eq!(
        (r.status, r.data_in.len(), r.data_in[0]),
        (Status::Good, 36, 0x7F)
    );
    let r = exec(&mut t, 0, &rw10(op::READ_10, 0, 1), 4096, &[]);
    assert_check(&r, 0x05, 0x25, 0x00);
}

#[test]
fn report_luns_lists_three_luns() {
    let (mut t, _f) = target(
        "luns",
        &[
            (700, BlockSize::B512, 8),
            (0, BlockSize::B4096, 8),
            (5, BlockSize::B512, 8),
        ],
    );
    let want: Vec<u8> = [
        [0, 0, 0, 24, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0, 5, 0, 0, 0, 0, 0, 0],
        // 700 = 2BCh: flat space addressing.
        [0x42, 0xBC, 0, 0, 0, 0, 0, 0],
    ]
    .concat();
    // At every LUN, present or not.
    for l in [0, 5, 700, 1, 16000] {
        let r = exec(&mut t, l, &report_luns(4096), 4096, &[]);
        assert_eq!(r.status, Status::Good, "at LUN {l}");
        assert_eq!(r.data_in, want);
        assert_eq!(r.data_in_residual, Residual::Underflow(4096 - 32));
    }
    // Each listed LUN answers INQUIRY as a connected disk.
    for entry in want[8..].chunks_exact(8) {
        let r = t.execute(
            entry.try_into().unwrap(),
            &Request {
                cdb: &inquiry(false, 0, 36),
                data_in_len: 36,
                data_out: &[],
            },
        );
        assert_eq!(r.data_in[0], 0x00);
    }
    // A short allocation length cuts the list but not its length field.
    let r = exec(&mut t, 0, &report_luns(16), 16, &[]);
    assert_eq!(r.data_in, want[..16]);
    assert_eq!(r.data_in_residual, Residual::None);
    // Below 4 bytes it is an invalid field.
    let r = exec(&mut t, 0, &report_luns(3), 3, &[]);
    assert_check(&r, 0x05, 0x24, 0x00);
    // The LUNs the target reports are the ones that read and write.
    let lus: Vec<u16> = t.luns().map(Lun::number).collect();
    assert_eq!(lus, [0, 5, 700]);
}

/// Splits MODE SENSE data into (header length field, device-specific, block
/// descriptors, page codes in order).
fn parse_mode(d: &[u8], ten: bool) -> (usize, u8, Vec<u8>, Vec<u8>) {
    let (mode_len, specific, bd_len, hdr) = if ten {
        (
            usize::from(u16::from_be_bytes([d[0], d[1]])) + 2,
            d[3],
            usize::from(u16::from_be_bytes([d[6], d[7]])),
            8,
        )
    } else {
        (usize::from(d[0]) + 1, d[2], usize::from(d[3]), 4)
    };
    let bd = d[hdr..hdr + bd_len].to_vec();
    let mut pages = Vec::new();
    let mut rest = &d[hdr + bd_len..];
    while let [code, len, ..] = rest {
        pages.push(code & 0x3F);
        rest = &rest[2 + usize::from(*len)..];
    }
    (mode_len, specific, bd, pages)
}

#[test]
fn mode_sense_with_and_without_block_descriptors() {
    let blocks = 5 * TIB / 512; // more than 2^32 blocks: the short descriptor saturates
    let (mut t, _f) = target(
        "mode",
        &[(0, BlockSize::B512, blocks), (1, BlockSize::B4096, 300)],
    );
    // MODE SENSE (6), caching page, with the block descriptor.
    let r = exec(&mut t, 1, &[op::MODE_SENSE_6, 0, 0x08, 0, 255, 0], 255, &[]);
    let (len, specific, bd, pages) = parse_mode(&r.data_in, false);
    assert_eq!(len, r.data_in.len());
    assert_eq!(specific & 0x80, 0, "not write protected");
    assert_eq!(bd, [0, 0, 0x01, 0x2C, 0, 0, 0x10, 0x00]);
    assert_eq!(pages, [0x08]);
    assert_eq!(r.data_in[12 + 2] & 0x04, 0, "WCE: writes are synced");

    // DBD: no descriptor, same page.
    let r = exec(
        &mut t,
        1,
        &[op::MODE_SENSE_6, 0x08, 0x08, 0, 255, 0],
        255,
        &[],
    );
    let (len, _, bd, pages) = parse_mode(&r.data_in, false);
    assert_eq!((len, bd.len(), pages), (r.data_in.len(), 0, vec![0x08]));

    // MODE SENSE (10), all pages, short descriptor on a > 2^32-block medium.
    let ms10 = |byte1: u8, page: u8| [op::MODE_SENSE_10, byte1, page, 0, 0, 0, 0, 1, 0, 0];
    let r = exec(&mut t, 0, &ms10(0, 0x3F), 256, &[]);
    let (len, _, bd, pages) = parse_mode(&r.data_in, true);
    assert_eq!(len, r.data_in.len());
    assert_eq!(bd, [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0x02, 0x00]);
    assert_eq!(pages, [0x08, 0x0A]);
    // LLBAA: the long descriptor carries the real count, and LONGLBA is set.
    let r = exec(&mut t, 0, &ms10(0x10, 0x3F), 256, &[]);
    let (_, _, bd, pages) = parse_mode(&r.data_in, true);
    assert_eq!(r.data_in[4] & 0x01, 1, "LONGLBA");
    assert_eq!(bd[..8], blocks.to_be_bytes());
    assert_eq!(bd[12..], 512u32.to_be_bytes());
    assert_eq!(pages, [0x08, 0x0A]);
    // DBD wins over LLBAA.
    let r = exec(&mut t, 0, &ms10(0x18, 0x3F), 256, &[]);
    let (_, _, bd, _) = parse_mode(&r.data_in, true);
    assert!(bd.is_empty());
    assert_eq!(r.data_in[4] & 0x01, 0);

    // A page we do not have; saved values.
    let r = exec(&mut t, 0, &[op::MODE_SENSE_6, 0, 0x19, 0, 255, 0], 255, &[]);
    assert_check(&r, 0x05, 0x24, 0x00);
    let r = exec(&mut t, 0, &[op::MODE_SENSE_6, 0, 0xC8, 0, 255, 0], 255, &[]);
    assert_check(&r, 0x05, 0x39, 0x00);
}

// ---------------------------------------------------------------------------------
// Errors and residuals.

#[test]
fn out_of_range_lba_and_unknown_opcode() {
    let (mut t, f) = target("errors", &[(0, BlockSize::B512, 100)]);
    let before = std::fs::read(&f[0].0).unwrap();
    for cdb in [
        rw16(op::READ_16, 100, 1).to_vec(),
        rw16(op::READ_16, u64::MAX, 2).to_vec(),
        rw10(op::READ_10, 99, 2).to_vec(),
        rw10(op::READ_10, 100, 0).to_vec(),
        rw10(op::SYNCHRONIZE_CACHE_10, 100, 0).to_vec(),
    ] {
        let r = exec(&mut t, 0, &cdb, 1024, &[]);
        assert_check(&r, 0x05, 0x21, 0x00);
        assert_eq!(r.data_in_residual, Residual::Underflow(1024));
    }
    let r = exec(&mut t, 0, &rw10(op::WRITE_10, 99, 2), 0, &[0xEE; 1024]);
    assert_check(&r, 0x05, 0x21, 0x00);
    assert_eq!(r.data_out_residual, Residual::Underflow(1024));
    assert_eq!(std::fs::read(&f[0].0).unwrap(), before, "nothing written");

    // READ (6), WRITE (6), FORMAT UNIT, a vendor-specific code: not supported.
    for opcode in [0x08u8, 0x0A, 0x04, 0xC0, 0xFF] {
        let r = exec(&mut t, 0, &[opcode, 0, 0, 0, 1, 0], 512, &[]);
        assert_check(&r, 0x05, 0x20, 0x00);
    }
    // REQUEST SENSE then reports the last one, once.
    let rs = [op::REQUEST_SENSE, 0, 0, 0, 252, 0];
    let r = exec(&mut t, 0, &rs, 252, &[]);
    assert_eq!(r.status, Status::Good);
    assert_eq!(r.data_in.len(), 18);
    assert_eq!(
        Sense::from_fixed(&r.data_in),
        Some(Sense::illegal(Asc::INVALID_COMMAND_OPERATION_CODE))
    );
    let r = exec(&mut t, 0, &rs, 252, &[]);
    assert_eq!(Sense::from_fixed(&r.data_in), Some(Sense::none()));
}

#[test]
fn residuals_against_allocation_and_expected_lengths() {
    let (mut t, _f) = target("residuals", &[(0, BlockSize::B512, 64)]);
    // Standard INQUIRY has 96 bytes.
    // Allocation 255, buffer 255: 96 sent, 159 short.
    let r = exec(&mut t, 0, &inquiry(false, 0, 255), 255, &[]);
    assert_eq!(
        (r.data_in.len(), r.data_in_residual),
        (96, Residual::Underflow(159))
    );
    // Allocation 20, buffer 255: the allocation length bounds the data.
    let r = exec(&mut t, 0, &inquiry(false, 0, 20), 255, &[]);
    assert_eq!(
        (r.data_in.len(), r.data_in_residual),
        (20, Residual::Underflow(235))
    );
    // Allocation 255, buffer 36: 96 would be sent, 36 fit.
    let r = exec(&mut t, 0, &inquiry(false, 0, 255), 36, &[]);
    assert_eq!(
        (r.data_in.len(), r.data_in_residual),
        (36, Residual::Overflow(60))
    );
    // Allocation 96, buffer 96: exact.
    let r = exec(&mut t, 0, &inquiry(false, 0, 96), 96, &[]);
    assert_eq!((r.data_in.len(), r.data_in_residual), (96, Residual::None));
    // Allocation 0: nothing, and not an error.
    let r = exec(&mut t, 0, &inquiry(false, 0, 0), 0, &[]);
    assert_eq!((r.status, r.data_in.len()), (Status::Good, 0));

    // READ of 4 blocks (2048 bytes) into 1000 and 3000 bytes.
    let d = pattern(2048, 9);
    assert_eq!(
        exec(&mut t, 0, &rw10(op::WRITE_10, 8, 4), 0, &d).status,
        Status::Good
    );
    let r = exec(&mut t, 0, &rw10(op::READ_10, 8, 4), 1000, &[]);
    assert_eq!(r.status, Status::Good);
    assert_eq!(
        (r.data_in.as_slice(), r.data_in_residual),
        (&d[..1000], Residual::Overflow(1048))
    );
    let r = exec(&mut t, 0, &rw10(op::READ_10, 8, 4), 3000, &[]);
    assert_eq!(
        (r.data_in.as_slice(), r.data_in_residual),
        (&d[..], Residual::Underflow(952))
    );

    // WRITE of 2 blocks with 1500 data-out bytes: 1024 used, 476 left over.
    let e = pattern(1500, 10);
    let r = exec(&mut t, 0, &rw10(op::WRITE_10, 20, 2), 0, &e);
    assert_eq!(
        (r.status, r.data_out_residual),
        (Status::Good, Residual::Underflow(476))
    );
    let r = exec(&mut t, 0, &rw10(op::READ_10, 20, 2), 1024, &[]);
    assert_eq!(r.data_in, e[..1024]);
    // With 700 bytes it cannot be done: CHECK CONDITION, overflow, nothing written.
    let r = exec(&mut t, 0, &rw10(op::WRITE_10, 30, 2), 0, &e[..700]);
    assert_check(&r, 0x05, 0x0E, 0x03);
    assert_eq!(r.data_out_residual, Residual::Overflow(324));
    let r = exec(&mut t, 0, &rw10(op::READ_10, 30, 2), 1024, &[]);
    assert!(r.data_in.iter().all(|&b| b == 0));
}

// ---------------------------------------------------------------------------------
// Hostile input.

/// xorshift64*: deterministic, seeded.
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

/// The invariants every response keeps, whatever came in.
fn check_response(r: &Response, req: &Request<'_>) {
    assert_eq!(r.status == Status::Good, r.sense.is_none(), "{req:?}");
    assert!(r.data_in.len() <= req.data_in_len as usize, "{req:?}");
    match r.data_in_residual {
        Residual::None => assert_eq!(r.data_in.len(), req.data_in_len as usize),
        Residual::Underflow(n) => {
            assert_eq!(r.data_in.len() + n as usize, req.data_in_len as usize)
        }
        Residual::Overflow(n) => {
            assert!(n > 0);
            assert_eq!(r.data_in.len(), req.data_in_len as usize);
        }
    }
    if r.status == Status::CheckCondition {
        assert!(r.data_in.is_empty());
        let s = r.sense_bytes().unwrap();
        assert_eq!(Sense::from_fixed(&s), r.sense);
    }
}

#[test]
fn random_and_truncated_cdbs_never_panic() {
    let (mut t, _f) = target(
        "fuzz",
        &[(0, BlockSize::B512, 256), (1, BlockSize::B4096, 64)],
    );
    let known = [
        op::TEST_UNIT_READY,
        op::REQUEST_SENSE,
        op::INQUIRY,
        op::MODE_SENSE_6,
        op::READ_CAPACITY_10,
        op::READ_10,
        op::WRITE_10,
        op::SYNCHRONIZE_CACHE_10,
        op::MODE_SENSE_10,
        op::READ_16,
        op::WRITE_16,
        op::SERVICE_ACTION_IN_16,
        op::REPORT_LUNS,
    ];

    // Every prefix of every supported command, including the empty CDB.
    for &opcode in &known {
        let mut full = [0u8; 16];
        full[0] = opcode;
        full[1] = op::SA_READ_CAPACITY_16 * u8::from(opcode == op::SERVICE_ACTION_IN_16);
        full[9] = 0x10;
        full[13] = 0x10;
        full[4] = 0x10;
        let mut accepted_at = None;
        for len in 0..=16 {
            let req = Request {
                cdb: &full[..len],
                data_in_len: 512,
                data_out: &[],
            };
            let r = t.execute(lun(0), &req);
            check_response(&r, &req);
            if r.status == Status::Good && accepted_at.is_none() {
                accepted_at = Some(len);
            }
            if len == 0 {
                assert_eq!(wire_sense(&r), (0x05, 0x20, 0x00));
            }
        }
        // Where a command is accepted at all, it is from its full CDB length on.
        if let Some(len) = accepted_at {
            let short = &full[..len - 1];
            let r = exec(&mut t, 0, short, 512, &[]);
            assert_eq!(wire_sense(&r), (0x05, 0x24, 0x00), "opcode {opcode:#x}");
        }
    }

    // Random CDBs: half with a supported opcode, lengths 0..=20, random LUN fields,
    // random small data-in lengths and data-out.
    let mut rng = Rng(0x5EED_F00D_CAFE_0001);
    let mut goods: BTreeMap<u8, usize> = BTreeMap::new();
    let out = pattern(16 * 1024, 4);
    for _ in 0..100_000 {
        let len = rng.below(21) as usize;
        let mut cdb: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if let Some(first) = cdb.first_mut()
            && rng.below(2) == 0
        {
            *first = known[rng.below(known.len() as u64) as usize];
        }
        // Keep transfers small often enough to reach the data paths.
        if cdb.len() >= 10 && rng.below(2) == 0 {
            cdb[2..6].fill(0);
            cdb[7] = 0;
            cdb[1] &= 0x1F;
            if cdb.len() >= 16 {
                cdb[6..10].fill(0);
                cdb[10..13].fill(0);
                cdb[13] &= 0x1F;
            }
        }
        let lun_field = match rng.below(4) {
            0 => rng.next().to_be_bytes(),
            1 => lun(1),
            _ => lun(0),
        };
        let data_in_len = rng.below(8193) as u32;
        let data_out = &out[..rng.below(out.len() as u64 + 1) as usize];
        let req = Request {
            cdb: &cdb,
            data_in_len,
            data_out,
        };
        let r = t.execute(lun_field, &req);
        check_response(&r, &req);
        if r.status == Status::Good
            && let Some(&opcode) = cdb.first()
        {
            *goods.entry(opcode).or_default() += 1;
        }
    }
    // The random commands reached the data paths, not only the parser's refusals.
    for opcode in [
        op::READ_10,
        op::WRITE_10,
        op::READ_16,
        op::WRITE_16,
        op::INQUIRY,
    ] {
        let n = goods.get(&opcode).copied().unwrap_or(0);
        assert!(n > 50, "opcode {opcode:#x} succeeded {n} times: {goods:?}");
    }
}
