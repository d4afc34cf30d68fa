//! The boot disk (`fabboot_sim::bootdisk`): the generator against the reader, the
//! reader against hostile images, and both against tools this project did not write:
//! `fsck.fat -n` (dosfstools) judges every generated volume, `mcopy` (mtools) extracts
//! every file of a generated disk, and the reader and the loader's file list read a
//! volume made by `mkfs.fat -F 32` and filled by `mcopy`.
//!
//! dosfstools and mtools are required: without them these tests fail (ci/setup.sh
//! installs them).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use fabboot_sim::bootdisk::fat32::METADATA_MAX_TRANSFER;
use fabboot_sim::bootdisk::loader::Adapter;

mod common;
use common::rng::Rng;
use fabboot_sim::bootdisk::{
    DiskSpec, Fat32, Fat32Error, FileDisk, LoaderError, Manifest, MemDisk, OutOfRange, SECTOR_SIZE,
    SectorRead, SectorWrite, SparseFile, generate, generate_in_memory, hex, load_plan, sha256,
    write_image,
};

const KIB: u32 = 1024;
const MIB: u32 = 1024 * 1024;
const PARTITION_BYTES: u64 = 2048 * 512;

/// A unique path under the tests' temporary directory, removed (file or tree) on drop.
struct Temp(PathBuf);

impl Temp {
    fn new(tag: &str) -> Temp {
        static N: AtomicU32 = AtomicU32::new(0);
        Temp(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "bootdisk-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )))
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A disk that records every request it is given.
struct Counting<D> {
    inner: D,
    requests: Vec<(u64, u32)>,
}

impl<D: SectorRead> SectorRead for Counting<D> {
    type Error = D::Error;

    fn read(&mut self, lba: u64, count: u32, buf: &mut [u8]) -> Result<(), D::Error> {
        self.requests.push((lba, count));
        self.inner.read(lba, count, buf)
    }
}

/// `base` with some sectors replaced: a hostile image without copying 65 MiB.
struct Patched<'a> {
    base: &'a [u8],
    patches: HashMap<u64, [u8; SECTOR_SIZE]>,
}

impl<'a> Patched<'a> {
    fn new(base: &'a [u8]) -> Patched<'a> {
        Patched {
            base,
            patches: HashMap::new(),
        }
    }

    fn sector(&self, lba: u64) -> Option<[u8; SECTOR_SIZE]> {
        if let Some(s) = self.patches.get(&lba) {
            return Some(*s);
        }
        let at = usize::try_from(lba).ok()?.checked_mul(SECTOR_SIZE)?;
        let mut s = [0u8; SECTOR_SIZE];
        s.copy_from_slice(self.base.get(at..at + SECTOR_SIZE)?);
        Some(s)
    }

    /// Writes `bytes` at byte offset `at` of the disk.
    fn set(&mut self, at: u64, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            let pos = at + i as u64;
            let lba = pos / SECTOR_SIZE as u64;
            let mut s = self.sector(lba).expect("patch inside the disk");
            s[(pos % SECTOR_SIZE as u64) as usize] = b;
            self.patches.insert(lba, s);
        }
    }
}

impl SectorRead for Patched<'_> {
    type Error = OutOfRange;

    fn read(&mut self, lba: u64, count: u32, buf: &mut [u8]) -> Result<(), OutOfRange> {
        let err = OutOfRange {
            lba,
            len: buf.len(),
            sectors: (self.base.len() / SECTOR_SIZE) as u64,
        };
        if buf.len() != count as usize * SECTOR_SIZE {
            return Err(err);
        }
        for (i, chunk) in buf.chunks_exact_mut(SECTOR_SIZE).enumerate() {
            chunk.copy_from_slice(&self.sector(lba + i as u64).ok_or(err)?);
        }
        Ok(())
    }
}

/// Writes the generator's disk to two sparse files at once: the whole disk, and the
/// partition alone (for `fsck.fat`, which takes no offset).
struct Tee {
    disk: SparseFile,
    partition: SparseFile,
}

impl SectorWrite for Tee {
    type Error = std::io::Error;

    fn write(&mut self, lba: u64, data: &[u8]) -> std::io::Result<()> {
        self.disk.write(lba, data)?;
        if lba >= 2048 {
            self.partition.write(lba - 2048, data)?;
        }
        Ok(())
    }
}

/// Runs a tool, failing the test with its output if it fails or is missing.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (install dosfstools and mtools: ci/setup.sh)"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// mtools' name for the partition of `image` at LBA 2048.
fn mtools_image(image: &Path) -> String {
    format!("{}@@{PARTITION_BYTES}", image.display())
}

fn memory_disk(seed: u64) -> (MemDisk, Manifest) {
    generate_in_memory(&DiskSpec::new(seed)).expect("generate")
}

/// The byte offset of the one directory entry named `name11` (8.3, padded) in `bytes`.
fn entry_offset(bytes: &[u8], name11: &[u8; 11]) -> u64 {
    let hits: Vec<usize> = bytes
        .windows(11)
        .enumerate()
        .filter(|(i, w)| i % 32 == 0 && *w == name11)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hits.len(), 1, "{:?}", String::from_utf8_lossy(name11));
    hits[0] as u64
}

/// Byte offsets of cluster `c`'s entry in both FATs.
fn fat_entry_offsets<D: SectorRead>(fat: &Fat32<D>, c: u32) -> [u64; 2] {
    let v = fat.volume();
    let (sector, off) = v.geometry.fat_entry(c);
    let byte = |s: u64| (v.first_lba + s) * SECTOR_SIZE as u64 + off as u64;
    [
        byte(sector),
        byte(sector + u64::from(v.geometry.fat_sectors)),
    ]
}

#[test]
fn round_trip_through_a_sparse_image_at_several_transfer_sizes() {
    let image = Temp::new("roundtrip");
    let spec = DiskSpec::new(1);
    let m = write_image(&spec, &image.0).unwrap();
    let meta = std::fs::metadata(&image.0).unwrap();
    assert_eq!(meta.len(), m.total_bytes);
    assert_eq!(m.total_bytes, (2048 + 131_072) * 512);
    // Sparse: only what the files and the metadata need is allocated.
    use std::os::unix::fs::MetadataExt;
    assert!(
        meta.blocks() * 512 < m.total_bytes / 4,
        "{} blocks",
        meta.blocks()
    );

    let disk = Counting {
        inner: FileDisk::open(&image.0).unwrap(),
        requests: Vec::new(),
    };
    let mut fat = Fat32::open(disk).unwrap();
    let v = *fat.volume();
    assert_eq!(v.disk_signature, m.disk_signature);
    assert_eq!(
        (v.partition, v.first_lba, v.partition_sectors),
        (1, 2048, 131_072)
    );
    assert_eq!(v.geometry.cluster_bytes, 512);
    assert_eq!(v.bpb.volume_id, m.volume_id);
    assert!(v.geometry.clusters >= 65_525);
    let data_lba = v.first_lba + u64::from(v.geometry.data_start);

    let sizes: Vec<u32> = m.files.iter().map(|f| f.size).collect();
    assert!(sizes.contains(&0), "an empty file");
    for max_transfer in [512, 4 * KIB, 64 * KIB, MIB, 64 * KIB + 100] {
        let per = u64::from(max_transfer / 512);
        let mut largest = 0;
        for f in &m.files {
            let entry = fat.lookup(&f.path).unwrap();
            assert_eq!(entry.size, f.size, "{}", f.path);
            let before = fat.disk().requests.len();
            let bytes = fat.read_file(&entry, max_transfer).unwrap();
            assert_eq!(bytes.len() as u32, f.size, "{}", f.path);
            assert_eq!(
                hex(&sha256(&bytes)),
                hex(&f.sha256),
                "{} at {max_transfer}",
                f.path
            );
            // Data requests: each run of the file (up to its last sector) in pieces
            // of at most `per` sectors; FAT reads are single sectors before the data.
            let mut sectors_left = u64::from(f.size).div_ceil(512);
            let expected: u64 = f
                .runs
                .iter()
                .map(|r| {
                    let len = u64::from(r.clusters).min(sectors_left);
                    sectors_left -= len;
                    len.div_ceil(per)
                })
                .sum();
            let data: Vec<(u64, u32)> = fat.disk().requests[before..]
                .iter()
                .copied()
                .filter(|&(lba, _)| lba >= data_lba)
                .collect();
            assert_eq!(data.len() as u64, expected, "{} at {max_transfer}", f.path);
            for &(_, count) in &data {
                assert!(count as u64 * 512 <= u64::from(max_transfer));
                largest = largest.max(count);
            }
        }
        let want = if max_transfer >= MIB {
            2048
        } else {
            max_transfer / 512
        };
        assert_eq!(largest, want, "the largest request at {max_transfer}");
    }
}

#[test]
fn generation_is_deterministic_and_seeded() {
    let (a, ma) = memory_disk(7);
    let (b, mb) = memory_disk(7);
    assert!(a == b, "same seed, same bytes");
    assert_eq!(ma, mb);
    let (c, mc) = memory_disk(8);
    assert!(a != c);
    assert_ne!(ma.disk_signature, mc.disk_signature);
    assert_ne!(ma.volume_id, mc.volume_id);
    for (x, y) in ma.files.iter().zip(&mc.files) {
        assert_eq!(x.path, y.path);
        if x.size > 0 {
            assert_ne!(x.sha256, y.sha256, "{}", x.path);
        }
    }
    // The MBR: signature, one active FAT32 (LBA) partition at 2048, 0x55AA.
    let mbr = &a.bytes()[..512];
    assert_eq!(&mbr[440..444], &ma.disk_signature.to_le_bytes());
    assert_eq!(mbr[446], 0x80);
    assert_eq!(mbr[450], 0x0C);
    assert_eq!(&mbr[454..458], &2048u32.to_le_bytes());
    assert_eq!(&mbr[458..462], &131_072u32.to_le_bytes());
    assert!(mbr[462..510].iter().all(|&b| b == 0), "one partition only");
    assert_eq!(&mbr[510..], &[0x55, 0xAA]);
}

#[test]
fn fragmentation_is_real_and_the_reader_follows_it() {
    for seed in [1, 2, 3, 0xfab] {
        let (disk, m) = memory_disk(seed);
        let mut fat = Fat32::open(disk).unwrap();
        let mut fragmented = Vec::new();
        for f in &m.files {
            let e = fat.lookup(&f.path).unwrap();
            assert_eq!(fat.runs(&e).unwrap(), f.runs, "seed {seed}: {}", f.path);
            if f.runs.len() > 1 {
                fragmented.push((f.path.as_str(), f.runs.len()));
            }
        }
        assert!(fragmented.len() >= 2, "seed {seed}: {fragmented:?}");
        assert!(
            fragmented.iter().any(|&(_, n)| n >= 3),
            "seed {seed}: {fragmented:?}"
        );
        assert!(
            fragmented.len() < m.files.iter().filter(|f| f.size > 0).count(),
            "some files are contiguous"
        );
        // The root directory outgrew its first cluster late: two runs.
        let root = fat.root();
        assert!(fat.runs(&root).unwrap().len() >= 2, "seed {seed}");
    }
}

#[test]
fn long_and_short_names_case_and_deleted_entries() {
    let (disk, _) = memory_disk(4);
    let mut fat = Fat32::open(disk).unwrap();
    let names: Vec<String> = fat
        .list("\\")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(
        names,
        [
            "WINDOWS",
            "ntldr",
            "NTDETECT.COM",
            "AUTOEXEC.BAT",
            "CONFIG.SYS",
            "IO.SYS",
            "MSDOS.SYS",
            "boot.ini",
            "System Volume Information"
        ]
    );
    assert_eq!(fat.root_label().unwrap().as_deref(), Some("FABBOOT"));
    // Setup's deleted entries are not there.
    assert!(matches!(
        fat.lookup("TXTSETUP.SIF"),
        Err(Fat32Error::NotFound { path }) if path == "TXTSETUP.SIF"
    ));
    // Short names, any case, either separator.
    let e = fat.lookup("system~1\\mountp~1").unwrap();
    assert_eq!(e.name, "MountPointManagerRemoteDatabase");
    assert_eq!((e.size, e.first_cluster), (0, 0));
    let e = fat.lookup("windows/SYSTEM32/Drivers/partmgr.SYS").unwrap();
    assert_eq!(
        (e.name.as_str(), e.short_name.as_str()),
        ("PartMgr.sys", "PARTMGR.SYS")
    );
    let e = fat
        .lookup("\\WINDOWS\\system32\\drivers\\CLASSPNP.sys")
        .unwrap();
    assert_eq!(e.name, "CLASSPNP.SYS");
    let drivers: Vec<String> = fat
        .list("WINDOWS\\system32\\drivers")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(drivers.contains(&"fabboot.sys".to_string()), "{drivers:?}");
    assert!(drivers.contains(&"KSecDD.sys".to_string()), "{drivers:?}");
    // Typed errors for misuse.
    assert!(matches!(
        fat.lookup("ntldr\\x"),
        Err(Fat32Error::NotADirectory { path }) if path == "ntldr"
    ));
    assert!(matches!(
        fat.list("boot.ini"),
        Err(Fat32Error::NotADirectory { .. })
    ));
    assert!(matches!(
        fat.read("WINDOWS", 65_536),
        Err(Fat32Error::NotAFile { .. })
    ));
    assert!(matches!(
        fat.read("boot.ini", 511),
        Err(Fat32Error::BadTransferSize { max_transfer: 511 })
    ));
    assert!(matches!(
        fat.lookup("WINDOWS\\system33\\hal.dll"),
        Err(Fat32Error::NotFound { path }) if path == "WINDOWS\\system33"
    ));
}

#[test]
fn fs_info_backup_boot_sector_and_free_count() {
    let (disk, m) = memory_disk(5);
    let bytes = disk.bytes().to_vec();
    let mut fat = Fat32::open(disk).unwrap();
    let info = fat.fs_info().unwrap();
    let free = fat.count_free().unwrap();
    assert_eq!(free, m.free_clusters);
    assert_eq!(info.free_count, free);
    assert!(fat.volume().geometry.is_data_cluster(info.next_free));
    let p = 2048 * 512;
    assert_eq!(
        bytes[p..p + 512],
        bytes[p + 6 * 512..p + 7 * 512],
        "backup boot sector"
    );
    assert_eq!(
        bytes[p + 512..p + 1024],
        bytes[p + 7 * 512..p + 8 * 512],
        "backup FSInfo"
    );
}

#[test]
fn load_plan_lists_what_ntldr_loads_and_every_file_matches_the_manifest() {
    let (disk, m) = memory_disk(3);
    let mut fat = Fat32::open(disk).unwrap();
    let plan = load_plan(&mut fat).unwrap();
    assert_eq!(plan.entry.arc.adapter, Adapter::Signature(m.disk_signature));
    assert_eq!(plan.entry.arc.system_root, "WINDOWS");
    assert_eq!(plan.boot_ini.timeout, Some(30));
    let paths: Vec<&str> = plan.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "ntdetect.com",
            "WINDOWS\\system32\\ntoskrnl.exe",
            "WINDOWS\\system32\\hal.dll",
            "WINDOWS\\system32\\config\\SYSTEM",
            "WINDOWS\\system32\\drivers\\CLASSPNP.SYS",
            "WINDOWS\\system32\\drivers\\disk.sys",
            "WINDOWS\\system32\\drivers\\fabboot.sys",
            "WINDOWS\\system32\\drivers\\fastfat.sys",
            "WINDOWS\\system32\\drivers\\KSecDD.sys",
            "WINDOWS\\system32\\drivers\\PartMgr.sys",
            "WINDOWS\\system32\\drivers\\storport.sys",
            "WINDOWS\\system32\\drivers\\VolSnap.sys",
        ]
    );
    // What the boot phase does with it: read each in 64 KiB requests and check it.
    for f in &plan.files {
        let want = m
            .file(&f.path)
            .unwrap_or_else(|| panic!("{} in the manifest", f.path));
        let bytes = fat.read_file(&f.entry, METADATA_MAX_TRANSFER).unwrap();
        assert_eq!(sha256(&bytes), want.sha256, "{}", f.path);
    }
}

#[test]
fn load_plan_names_what_is_missing() {
    let (disk, m) = memory_disk(6);
    let base = disk.bytes();
    for (name, path) in [
        (b"HAL     DLL", "WINDOWS\\system32\\hal.dll"),
        (b"NTDETECTCOM", "ntdetect.com"),
        (b"BOOT    INI", "boot.ini"),
        (b"DRIVERS    ", "WINDOWS\\system32\\drivers"),
        (b"CONFIG     ", "WINDOWS\\system32\\config\\SYSTEM"),
    ] {
        let mut d = Patched::new(base);
        d.set(entry_offset(base, name), &[0xE5]);
        let mut fat = Fat32::open(d).unwrap();
        match load_plan(&mut fat) {
            Err(LoaderError::Missing { path: p }) => assert_eq!(p, path),
            other => panic!("{path}: {other:?}"),
        }
    }
    // Another disk's signature in the MBR: boot.ini names a disk that is not this one.
    let mut d = Patched::new(base);
    d.set(440, &0x1234_5678u32.to_le_bytes());
    let mut fat = Fat32::open(d).unwrap();
    match load_plan(&mut fat) {
        Err(LoaderError::OtherDisk {
            arc_signature,
            disk_signature,
        }) => assert_eq!(
            (arc_signature, disk_signature),
            (m.disk_signature, 0x1234_5678)
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn hostile_images_give_typed_errors() {
    let (disk, m) = memory_disk(9);
    let base = disk.bytes();
    let open = |d: Patched| Fat32::open(d).map(|_| ());
    let p = 2048 * 512u64;

    // Truncated: nothing, the MBR alone, the metadata alone.
    for len in [0usize, 512, (2048 + 40) * 512] {
        let mut fat = match Fat32::open(MemDisk::from_bytes(base[..len].to_vec())) {
            Err(Fat32Error::Disk { lba, .. }) => {
                assert!(lba == 0 || lba == 2048, "{len}: {lba}");
                continue;
            }
            Err(e) => panic!("{len}: {e}"),
            Ok(f) => f,
        };
        assert!(
            matches!(fat.list("\\"), Err(Fat32Error::Disk { .. })),
            "{len}"
        );
    }
    // Truncated inside ntoskrnl.exe's last run: every file wholly before the cut reads
    // and matches, every file reaching past it fails with the disk's error.
    let mut probe = Fat32::open(Patched::new(base)).unwrap();
    let g = probe.volume().geometry;
    let lba_of = |c: u32| 2048 + g.cluster_sector(c);
    let nt = m.file("WINDOWS\\system32\\ntoskrnl.exe").unwrap();
    let cut = lba_of(nt.runs.last().unwrap().first) + 1;
    let mut fat = Fat32::open(MemDisk::from_bytes(base[..cut as usize * 512].to_vec())).unwrap();
    let (mut good, mut failed) = (0, 0);
    for f in &m.files {
        let past = f
            .runs
            .iter()
            .any(|r| lba_of(r.first + r.clusters - 1) >= cut);
        // Looked up on the whole image: the root directory's second cluster is past
        // the cut too.
        let entry = probe.lookup(&f.path).unwrap();
        match fat.read_file(&entry, 65_536) {
            Ok(b) if !past => {
                assert_eq!(sha256(&b), f.sha256, "{}", f.path);
                good += 1;
            }
            Err(Fat32Error::Disk { lba, .. }) if past => {
                assert!(lba + 128 > cut, "{}: {lba}", f.path);
                failed += 1;
            }
            other => panic!("{} (past the cut: {past}): {other:?}", f.path),
        }
    }
    assert!(good > 10 && failed >= 2, "{good} read, {failed} failed");
    let mut fat = Fat32::open(MemDisk::from_bytes(base[..(2048 + 3000) * 512].to_vec())).unwrap();
    assert!(matches!(
        fat.read("WINDOWS\\system32\\config\\SYSTEM", 65_536),
        Err(Fat32Error::Disk { .. })
    ));

    // The MBR.
    let mut d = Patched::new(base);
    d.set(510, &[0, 0]);
    assert!(matches!(
        open(d),
        Err(Fat32Error::BadMbrSignature { found: 0 })
    ));
    let mut d = Patched::new(base);
    d.set(446 + 4, &[0x07]);
    assert!(matches!(open(d), Err(Fat32Error::NoPartition)));
    let mut d = Patched::new(base);
    d.set(446 + 12, &1000u32.to_le_bytes());
    assert!(matches!(
        open(d),
        Err(Fat32Error::VolumeBeyondPartition { .. })
    ));

    // The BPB zeroed, then the whole boot sector.
    let mut d = Patched::new(base);
    d.set(p + 11, &[0u8; 79]);
    assert!(matches!(
        open(d),
        Err(Fat32Error::Bpb(
            fabboot_sim::bootdisk::bpb::BpbError::BadField {
                field: "BPB_BytsPerSec",
                value: 0
            }
        ))
    ));
    let mut d = Patched::new(base);
    d.set(p, &[0u8; 512]);
    assert!(matches!(
        open(d),
        Err(Fat32Error::Bpb(
            fabboot_sim::bootdisk::bpb::BpbError::BadSignature { found: 0 }
        ))
    ));
    // FSInfo signature.
    let mut d = Patched::new(base);
    d.set(p + 512, b"XXXX");
    let mut fat = Fat32::open(d).unwrap();
    assert!(matches!(fat.fs_info(), Err(Fat32Error::FsInfo(e)) if e.field == "FSI_LeadSig"));

    // FAT chains of ntoskrnl.exe (fragmented, many clusters).
    let nt = m.file("WINDOWS\\system32\\ntoskrnl.exe").unwrap();
    let chain: Vec<u32> = nt
        .runs
        .iter()
        .flat_map(|r| r.first..r.first + r.clusters)
        .collect();
    let probe = Fat32::open(Patched::new(base)).unwrap();
    let last = probe.volume().geometry.last_cluster();
    let set_fat = |d: &mut Patched, c: u32, v: u32| {
        for at in fat_entry_offsets(&probe, c) {
            d.set(at, &v.to_le_bytes());
        }
    };
    let read_nt = |d: Patched| {
        Fat32::open(d)
            .unwrap()
            .read("WINDOWS\\system32\\ntoskrnl.exe", 65_536)
            .map(|_| ())
    };
    // A loop: the 100th cluster points back to the 10th.
    let mut d = Patched::new(base);
    set_fat(&mut d, chain[99], chain[9]);
    match read_nt(d) {
        Err(Fat32Error::ChainLoop { first, cluster }) => {
            assert_eq!((first, cluster), (chain[0], chain[9]))
        }
        other => panic!("{other:?}"),
    }
    // A cluster past the end of the volume.
    let mut d = Patched::new(base);
    set_fat(&mut d, chain[5], last + 10);
    assert!(matches!(
        read_nt(d),
        Err(Fat32Error::ClusterOutOfRange { cluster, .. }) if cluster == last + 10
    ));
    // A free entry and a bad-cluster mark in the middle of the chain.
    let mut d = Patched::new(base);
    set_fat(&mut d, chain[5], 0);
    assert!(matches!(
        read_nt(d),
        Err(Fat32Error::BrokenChain { entry: 0, .. })
    ));
    let mut d = Patched::new(base);
    set_fat(&mut d, chain[5], 0x0FFF_FFF7);
    assert!(matches!(read_nt(d), Err(Fat32Error::BadCluster { .. })));
    // The chain ends early; the chain goes on past the size.
    let mut d = Patched::new(base);
    set_fat(&mut d, chain[5], 0x0FFF_FFFF);
    assert!(matches!(
        read_nt(d),
        Err(Fat32Error::ChainTooShort { clusters: 6, .. })
    ));
    let nt_entry = entry_offset(base, b"NTOSKRNLEXE");
    let mut d = Patched::new(base);
    d.set(nt_entry + 28, &1000u32.to_le_bytes());
    assert!(matches!(
        read_nt(d),
        Err(Fat32Error::ChainTooLong { needed: 2, .. })
    ));
    // A directory entry's first cluster past the end (the high word set).
    let mut d = Patched::new(base);
    d.set(nt_entry + 20, &[0xFF, 0x0F]);
    assert!(matches!(
        read_nt(d),
        Err(Fat32Error::ClusterOutOfRange { .. })
    ));
    // A size the volume cannot hold.
    let mut d = Patched::new(base);
    d.set(nt_entry + 28, &u32::MAX.to_le_bytes());
    assert!(matches!(read_nt(d), Err(Fat32Error::ChainTooShort { .. })));
    // The root directory's chain loops onto itself.
    let root = probe.volume().geometry.root_cluster;
    let mut d = Patched::new(base);
    set_fat(&mut d, root, root);
    let mut fat = Fat32::open(d).unwrap();
    assert!(matches!(
        fat.list("\\"),
        Err(Fat32Error::ChainLoop { first, cluster }) if first == root && cluster == root
    ));
    // A subdirectory whose first cluster is 0.
    let mut d = Patched::new(base);
    let windows = entry_offset(base, b"WINDOWS    ");
    d.set(windows + 20, &[0, 0]);
    d.set(windows + 26, &[0, 0]);
    let mut fat = Fat32::open(d).unwrap();
    assert!(matches!(
        fat.list("WINDOWS"),
        Err(Fat32Error::ClusterOutOfRange { cluster: 0, .. })
    ));
}

#[test]
fn random_corruption_of_the_metadata_never_panics() {
    let (disk, _) = memory_disk(10);
    let base = disk.bytes();
    let probe = Fat32::open(Patched::new(base)).unwrap();
    let g = probe.volume().geometry;
    let first = probe.volume().first_lba;
    // Where corruption hurts: the MBR, the reserved sectors, the used part of the
    // first FAT, and the first clusters of the data region (the directories).
    let regions: [(u64, u64); 4] = [
        (0, 1),
        (first, u64::from(g.fat_start)),
        (first + u64::from(g.fat_start), 120),
        (first + u64::from(g.data_start), 64),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut errors = 0;
    const ROUNDS: usize = 300;
    for _ in 0..ROUNDS {
        let mut d = Patched::new(base);
        for _ in 0..1 + rng.below(12) {
            let (start, len) = regions[rng.below(4) as usize];
            let at = (start + rng.below(len)) * 512 + rng.below(512);
            let n = 1 + rng.below(4) as usize;
            let v = rng.bytes(n);
            d.set(at, &v);
        }
        let Ok(mut fat) = Fat32::open(d) else {
            errors += 1;
            continue;
        };
        match load_plan(&mut fat) {
            Ok(plan) => {
                for f in &plan.files {
                    let _ = fat.read_file(&f.entry, 65_536);
                }
            }
            Err(_) => errors += 1,
        }
        let _ = fat.fs_info();
        let _ = fat.list("System Volume Information");
    }
    assert!(
        errors > ROUNDS / 20,
        "corruption found errors {errors} times"
    );
}

#[test]
fn fsck_fat_accepts_the_generated_volumes() {
    for (seed, sectors, spc) in [(11u64, 131_072u32, 1u8), (12, 1_048_576, 8)] {
        let disk = Temp::new("fsck-disk");
        let part = Temp::new("fsck-part");
        let spec = DiskSpec {
            seed,
            partition_sectors: sectors,
            sectors_per_cluster: spc,
        };
        let mut tee = Tee {
            disk: SparseFile::create(&disk.0, spec.disk_sectors()).unwrap(),
            partition: SparseFile::create(&part.0, u64::from(sectors)).unwrap(),
        };
        let m = generate(&spec, &mut tee).unwrap();
        drop(tee);
        let out = run(Command::new("fsck.fat")
            .args(["-n", "-v", "-l"])
            .arg(&part.0));
        // fsck.fat's count: every file, directory and the label; clusters in use.
        let dirs = 5; // WINDOWS, system32, config, drivers, System Volume Information
        let used = m.clusters - m.free_clusters;
        let summary = format!(
            "{} files, {used}/{} clusters",
            m.files.len() + dirs + 1,
            m.clusters
        );
        assert!(out.contains(&summary), "want {summary:?} in\n{out}");
        assert!(
            out.contains(&format!("{} bytes per cluster", m.cluster_bytes)),
            "{out}"
        );
        let listing = out.to_uppercase();
        for f in &m.files {
            let p = format!("/{}", f.path.replace('\\', "/")).to_uppercase();
            assert!(listing.contains(&p), "{p} not in\n{out}");
        }
        // The reader agrees with the same image through the disk file.
        let mut fat = Fat32::open(FileDisk::open(&disk.0).unwrap()).unwrap();
        assert_eq!(fat.volume().geometry.cluster_bytes, m.cluster_bytes);
        let plan = load_plan(&mut fat).unwrap();
        for f in &plan.files {
            let b = fat.read_file(&f.entry, 65_536).unwrap();
            assert_eq!(sha256(&b), m.file(&f.path).unwrap().sha256);
        }
    }
}

#[test]
fn mcopy_extracts_every_file_as_the_manifest_says() {
    let image = Temp::new("mcopy-disk");
    let out = Temp::new("mcopy-out");
    std::fs::create_dir_all(&out.0).unwrap();
    let m = write_image(&DiskSpec::new(13), &image.0).unwrap();
    for (i, f) in m.files.iter().enumerate() {
        let dest = out.0.join(format!("{i}"));
        run(Command::new("mcopy")
            .args(["-n", "-i", &mtools_image(&image.0)])
            .arg(format!("::/{}", f.path.replace('\\', "/")))
            .arg(&dest));
        let bytes = std::fs::read(&dest).unwrap();
        assert_eq!(bytes.len() as u32, f.size, "{}", f.path);
        assert_eq!(hex(&sha256(&bytes)), hex(&f.sha256), "{}", f.path);
    }
    // mdir shows the long names and the lowercase 8.3 names as Windows would.
    let listing = run(Command::new("mdir")
        .args(["-a", "-i", &mtools_image(&image.0)])
        .arg("::/WINDOWS/system32/drivers"));
    for name in [
        "PartMgr.sys",
        "VolSnap.sys",
        "KSecDD.sys",
        "fabboot  sys",
        "CLASSPNP SYS",
    ] {
        assert!(listing.contains(name), "{name} not in\n{listing}");
    }
}

/// The partition table of a disk with one FAT32 (LBA) partition at LBA 2048, written
/// here byte by byte from the MBR layout, not by the module under test.
fn hand_made_mbr(signature: u32, sectors: u32) -> [u8; 512] {
    let mut s = [0u8; 512];
    s[440..444].copy_from_slice(&signature.to_le_bytes());
    s[446] = 0x80;
    s[446 + 4] = 0x0C;
    s[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
    s[446 + 12..446 + 16].copy_from_slice(&sectors.to_le_bytes());
    s[510] = 0x55;
    s[511] = 0xAA;
    s
}

#[test]
fn reads_a_volume_made_by_mkfs_fat_and_mcopy() {
    for (sectors, spc) in [(131_072u32, 1u32), (1_048_576, 8)] {
        let image = Temp::new("mkfs-disk");
        let src = Temp::new("mkfs-src");
        let f = std::fs::File::create(&image.0).unwrap();
        f.set_len((2048 + u64::from(sectors)) * 512).unwrap();
        drop(f);
        {
            use std::os::unix::fs::FileExt;
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&image.0)
                .unwrap();
            f.write_all_at(&hand_made_mbr(0x0bad_f00d, sectors), 0)
                .unwrap();
        }
        run(Command::new("mkfs.fat")
            .args([
                "-F",
                "32",
                "--offset",
                "2048",
                "-s",
                &spc.to_string(),
                "-n",
                "MKFSVOL",
            ])
            .arg(&image.0)
            .arg((sectors / 2).to_string()));

        // Host files: an NTLDR tree with its boot.ini, long and odd names, a deep
        // path, a directory of many entries, a large file and an empty one.
        let mut rng = Rng(u64::from(sectors) | 1);
        let boot_ini = "[boot loader]\r\ntimeout=3\r\ndefault=signature(0badf00d)disk(0)rdisk(0)partition(1)\\WINNT\r\n\
             [operating systems]\r\nsignature(0badf00d)disk(0)rdisk(0)partition(1)\\WINNT=\"Test\" /fastdetect\r\n";
        let mut files: Vec<(String, Vec<u8>)> = vec![
            ("boot.ini".into(), boot_ini.as_bytes().to_vec()),
            ("NTDETECT.COM".into(), rng.bytes(47_000)),
            ("WINNT/system32/ntoskrnl.exe".into(), rng.bytes(1_500_000)),
            ("WINNT/system32/hal.dll".into(), rng.bytes(130_001)),
            ("WINNT/system32/config/SYSTEM".into(), rng.bytes(300 * 4096)),
            ("WINNT/system32/drivers/b.sys".into(), rng.bytes(20_000)),
            ("WINNT/system32/drivers/A.SYS".into(), rng.bytes(33_333)),
            (
                "WINNT/system32/drivers/Carrot Driver.sys".into(),
                rng.bytes(70_000),
            ),
            ("WINNT/system32/drivers/notes.txt".into(), rng.bytes(100)),
            (
                "Deep/er/still/A long name with spaces.txt".into(),
                rng.bytes(5_000),
            ),
            (
                "Deep/\u{00fc}mlaut-n\u{00e4}me.bin".into(),
                rng.bytes(2_000),
            ),
            ("empty.txt".into(), Vec::new()),
            ("MiXeD.Txt".into(), rng.bytes(777)),
        ];
        for i in 0..40 {
            let n = 1_000 + rng.below(3_000) as usize;
            files.push((format!("Many/file number {i:02}.dat"), rng.bytes(n)));
        }
        for (path, data) in &files {
            let p = src.0.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, data).unwrap();
        }
        let top: Vec<PathBuf> = [
            "boot.ini",
            "NTDETECT.COM",
            "WINNT",
            "Deep",
            "empty.txt",
            "MiXeD.Txt",
            "Many",
        ]
        .iter()
        .map(|n| src.0.join(n))
        .collect();
        run(Command::new("mcopy")
            .args(["-s", "-i", &mtools_image(&image.0)])
            .args(&top)
            .arg("::/"));
        // Delete every third file of Many (leaving deleted long-name entries), then
        // write a file that falls into the holes.
        for i in (0..40).step_by(3) {
            run(Command::new("mdel")
                .args(["-i", &mtools_image(&image.0)])
                .arg(format!("::/Many/file number {i:02}.dat")));
        }
        files.retain(|(p, _)| {
            !(p.starts_with("Many/") && p[17..19].parse::<usize>().is_ok_and(|i| i % 3 == 0))
        });
        let late = ("Many/late arrival.bin".to_string(), rng.bytes(40_000));
        std::fs::write(src.0.join("late.bin"), &late.1).unwrap();
        run(Command::new("mcopy")
            .args(["-i", &mtools_image(&image.0)])
            .arg(src.0.join("late.bin"))
            .arg(format!("::/{}", late.0)));
        files.push(late);

        let mut fat = Fat32::open(FileDisk::open(&image.0).unwrap()).unwrap();
        let v = *fat.volume();
        assert_eq!((v.disk_signature, v.partition), (0x0bad_f00d, 1));
        assert_eq!(v.geometry.sectors_per_cluster, spc);
        assert_eq!(fat.root_label().unwrap().as_deref(), Some("MKFSVOL"));
        for (path, data) in &files {
            for max_transfer in [4 * KIB, 64 * KIB] {
                let got = fat
                    .read(path, max_transfer)
                    .unwrap_or_else(|e| panic!("{path}: {e}"));
                assert!(got == *data, "{path}");
            }
        }
        let many = fat.list("Many").unwrap();
        assert_eq!(many.len(), 40 - 14 + 1);
        assert!(matches!(
            fat.lookup("Many/file number 03.dat"),
            Err(Fat32Error::NotFound { .. })
        ));
        let deep = fat.list("DEEP").unwrap();
        assert!(
            deep.iter()
                .any(|e| e.name == "\u{00fc}mlaut-n\u{00e4}me.bin"),
            "{deep:?}"
        );
        // The loader's list, on a volume this project did not write.
        let plan = load_plan(&mut fat).unwrap();
        let paths: Vec<&str> = plan.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "ntdetect.com",
                "WINNT\\system32\\ntoskrnl.exe",
                "WINNT\\system32\\hal.dll",
                "WINNT\\system32\\config\\SYSTEM",
                "WINNT\\system32\\drivers\\A.SYS",
                "WINNT\\system32\\drivers\\b.sys",
                "WINNT\\system32\\drivers\\Carrot Driver.sys",
            ]
        );
    }
}
