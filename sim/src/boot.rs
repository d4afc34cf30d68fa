//! `fabboot-sim boot`: the shipped images boot a machine from the SRP disk.
//!
//! Phase 1 plays NTLDR: the scsiport image (`ntbootdd.sys`, i686 by default) in loader
//! mode reads `boot.ini` and every file the loader would load through FAT32, one
//! polled SRB at a time, each file checked against its hash. Phase 2 plays the kernel:
//! on the same machine (the HCA left running by the loader instance) the storport image
//! (`fabboot.sys`, x86_64 by default) in kernel mode serves a paging-like workload:
//! random 4 KiB reads and writes with unmapped, scattered buffers at queue depth 32,
//! then a large sequential read, every byte checked against a shadow of the disk.
//! Then the machine hibernates and resumes (`boot/hibernate.rs`): the hibernation stack
//! writes the kernel's memory image, the power goes off, memory comes back from the
//! disk and the kernel instance restarts its adapter by itself. Phase 3 plays a crash: the kernel dies with paging writes in flight, and the dump
//! stack loads the same image again in dump mode (a `DumpRegion` of the size the
//! kernel's instance asked for, no interrupts, timers or DPCs, polled), which resets
//! the HCA the dead kernel left running, logs in and writes a dump, verified byte for
//! byte on the disk.
//!
//! Each phase learns its target from another source (`bootcfg`'s precedence): phase 1
//! from the image's embedded block (the loader passes no `ArgumentString`); phase 2 from
//! the sBFT the firmware left ([`BootOptions::sbft`]: in base memory by default, or
//! among the ACPI tables), with no `DriverParameter` and an unconfigured image; phase 3
//! from the hand-over phase 2's instance gave storport for `SRB_FUNCTION_DUMP_POINTERS`,
//! with an unconfigured image and without reading firmware memory at all (checked).
//! The table is placed when the kernel starts: a real iPXE BIOS boot places it before
//! NTLDR runs, where the loader instance would find it first; the demo keeps phase 1 on
//! the block so that each source is proven once.
//!
//! The disk is a working copy: the generated boot disk, or `--disk IMAGE` copied, so a
//! user's image is never written.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use fabboot::port::Flavour;

use fabboot::bootcfg::sbft::ByteOrder;

use crate::bootdisk::{self, SectorRead};
use crate::host::Arch;
use crate::host::firmware::{self, Placement};
use crate::host::port::{Completed, Dir, Env, HostError, Machine, SrbRequest};
use crate::host::rig::{HostRig, RigOptions, TargetIdentity};
use crate::scenario::SmChoice;

mod hibernate;

/// What to boot and how.
#[derive(Clone, Debug)]
pub struct BootOptions {
    pub sm: SmChoice,
    pub pcap: Option<PathBuf>,
    /// Boot this raw image (copied) instead of the generated disk.
    pub disk: Option<PathBuf>,
    pub loader_arch: Arch,
    pub kernel_arch: Arch,
    /// Where `cargo xtask build` put the images (`<dir>/<arch>/<name>.sys`).
    pub images: PathBuf,
    pub seed: u64,
    /// Random 4 KiB requests in phase 2.
    pub random_ios: usize,
    /// Bytes of the sequential read in phase 2.
    pub sequential_bytes: u64,
    /// Where the firmware leaves the sBFT phase 2 learns its target from, and in which
    /// byte order; `None`: no sBFT, phase 2 gets the registry's `DriverParameter`.
    pub sbft: Option<(Placement, ByteOrder)>,
}

impl BootOptions {
    pub fn new(images: PathBuf) -> BootOptions {
        BootOptions {
            sm: SmChoice::Builtin,
            pcap: None,
            disk: None,
            loader_arch: Arch::I686,
            kernel_arch: Arch::X86_64,
            images,
            seed: 1,
            random_ios: 4000,
            sequential_bytes: 32 << 20,
            sbft: Some((Placement::BaseMemory, ByteOrder::Network)),
        }
    }
}

/// Figures of one phase.
#[derive(Clone, Debug, Default)]
pub struct PhaseReport {
    pub name: String,
    pub image: String,
    pub arch: String,
    /// The configuration the phase's instance was offered (and so learned its target
    /// from).
    pub config_source: String,
    pub srbs: u64,
    pub bytes: u64,
    /// Virtual time of the phase, from DriverEntry to its last completion.
    pub virtual_ns: u64,
    /// Virtual time from DriverEntry to the first sector read.
    pub first_sector_ns: u64,
    /// Instructions executed in driver code per SRB (the I/O part of the phase).
    pub instructions_per_srb: f64,
    pub mmio_reads_per_srb: f64,
    pub mmio_writes_per_srb: f64,
    /// Instructions in driver code to bring the adapter up and log in.
    pub init_instructions: u64,
    pub stack_high_water: u64,
    /// The deepest stack of `HwFindAdapter` (configuration, bring-up and, in the loader
    /// and dump stack, login).
    pub find_adapter_stack: u64,
    /// Firmware memory windows the instance mapped (the sBFT search).
    pub firmware_maps: u64,
    /// The deepest stack of a call while the measured SRBs ran (HwStartIo, interrupts,
    /// the timer, DPCs): phase 1's I/O, phase 2's random 4 KiB requests.
    pub stack_io_high_water: u64,
    pub interrupts: u64,
    pub timer_calls: u64,
    pub dpcs: u64,
    /// SRBs the driver answered BUSY, which the port sent again later.
    pub busy_requeues: u64,
    pub event_log: Vec<String>,
    pub violations: Vec<String>,
    /// The large sequential read (phase 2); the per-SRB figures above are then those
    /// of the random 4 KiB requests.
    pub sequential: Option<Sequential>,
    /// Files read and verified (phase 1).
    pub files: Vec<(String, u64)>,
    pub wall_ms: u128,
}

/// Figures of phase 2's sequential read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sequential {
    pub srbs: u64,
    pub bytes: u64,
    /// Bytes per SRB.
    pub transfer: u64,
    pub virtual_ns: u64,
    pub instructions_per_srb: f64,
    pub mmio_reads_per_srb: f64,
    pub mmio_writes_per_srb: f64,
}

/// Both phases.
#[derive(Clone, Debug, Default)]
pub struct BootReport {
    pub phases: Vec<PhaseReport>,
    pub disk: String,
    pub sm: String,
}

impl BootReport {
    /// The figures as JSON, with the failure if there was one.
    pub fn to_json(&self, error: Option<&BootError>) -> String {
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let mut o = String::from("{\n");
        match error {
            None => o += "  \"ok\": true,\n",
            Some(e) => {
                o += &format!(
                    "  \"ok\": false,\n  \"error\": \"{}\",\n",
                    esc(&e.to_string())
                )
            }
        }
        o += &format!(
            "  \"disk\": \"{}\",\n  \"sm\": \"{}\",\n  \"phases\": [\n",
            esc(&self.disk),
            self.sm
        );
        for (i, p) in self.phases.iter().enumerate() {
            let list = |v: &[String]| {
                v.iter()
                    .map(|s| format!("\"{}\"", esc(s)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            o += &format!(
                "    {{\"phase\": \"{}\", \"image\": \"{}\", \"arch\": \"{}\", \
                 \"config_source\": \"{}\", \"srbs\": {}, \
                 \"bytes\": {}, \"virtual_ns\": {}, \"first_sector_ns\": {}, \
                 \"instructions_per_srb\": {:.1}, \"mmio_reads_per_srb\": {:.3}, \
                 \"mmio_writes_per_srb\": {:.3}, \"init_instructions\": {}, \
                 \"stack_high_water\": {}, \"find_adapter_stack\": {}, \"firmware_maps\": {}, \
                 \"stack_io_high_water\": {}, \"interrupts\": {}, \"timer_calls\": {}, \
                 \"dpcs\": {}, \"busy_requeues\": {}, \"files\": {}, \
                 \"wall_ms\": {}, \"sequential\": {}, \"event_log\": [{}], \"violations\": [{}]}}{}\n",
                p.name,
                esc(&p.image),
                p.arch,
                esc(&p.config_source),
                p.srbs,
                p.bytes,
                p.virtual_ns,
                p.first_sector_ns,
                p.instructions_per_srb,
                p.mmio_reads_per_srb,
                p.mmio_writes_per_srb,
                p.init_instructions,
                p.stack_high_water,
                p.find_adapter_stack,
                p.firmware_maps,
                p.stack_io_high_water,
                p.interrupts,
                p.timer_calls,
                p.dpcs,
                p.busy_requeues,
                p.files.len(),
                p.wall_ms,
                p.sequential.map_or("null".to_string(), |q| format!(
                    "{{\"srbs\": {}, \"bytes\": {}, \"transfer\": {}, \"virtual_ns\": {}, \
                     \"instructions_per_srb\": {:.1}, \"mmio_reads_per_srb\": {:.3}, \
                     \"mmio_writes_per_srb\": {:.3}}}",
                    q.srbs,
                    q.bytes,
                    q.transfer,
                    q.virtual_ns,
                    q.instructions_per_srb,
                    q.mmio_reads_per_srb,
                    q.mmio_writes_per_srb
                )),
                list(&p.event_log),
                list(&p.violations),
                if i + 1 < self.phases.len() { "," } else { "" }
            );
        }
        o += "  ]\n}\n";
        o
    }
}

/// Why the boot failed.
#[derive(Debug)]
pub enum BootError {
    Setup(String),
    Host {
        phase: &'static str,
        error: HostError,
    },
    Srb {
        phase: &'static str,
        what: String,
    },
    Data {
        phase: &'static str,
        what: String,
    },
}

impl std::fmt::Display for BootError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BootError::Setup(w) => write!(f, "setup: {w}"),
            BootError::Host { phase, error } => write!(f, "{phase}: {error}"),
            BootError::Srb { phase, what } => write!(f, "{phase}: {what}"),
            BootError::Data { phase, what } => write!(f, "{phase}: data check failed: {what}"),
        }
    }
}

impl std::error::Error for BootError {}

pub(crate) fn host(phase: &'static str) -> impl Fn(HostError) -> BootError {
    move |error| BootError::Host { phase, error }
}

/// A temporary working copy of the disk, removed on drop.
struct WorkDisk(PathBuf);

impl Drop for WorkDisk {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Writes the target's identity into an image's embedded configuration block, as
/// the packaging tool does (the loader has no other configuration source).
pub fn configure_image(file: &mut [u8], t: &TargetIdentity) -> Result<(), String> {
    let config = fabboot::bootcfg::BootConfig {
        target: fabboot::initiator::TargetConfig {
            dgid: t.dgid,
            service_id: t.service_id,
            target_port_id: t.target_port_id,
            initiator_ext: t.initiator_ext,
            pkey: t.pkey,
        },
        lun: 0,
    };
    let block = fabboot::bootcfg::block::Block {
        config: Some(config),
    };
    fabboot::bootcfg::block::patch(file, &block)
        .map(|_| ())
        .map_err(|e| format!("the image's configuration block: {e:?}"))
}

fn scsi_ok(c: &Completed, what: &str, phase: &'static str) -> Result<(), BootError> {
    if c.srb_status & 0x3F == 1 {
        Ok(())
    } else {
        Err(BootError::Srb {
            phase,
            what: format!(
                "{what}: SRB status {:#04x}, SCSI status {:#04x}, sense {:02x?}",
                c.srb_status, c.scsi_status, c.sense
            ),
        })
    }
}

fn read10(lba: u64, blocks: u32) -> Vec<u8> {
    let mut c = vec![0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    c[2..6].copy_from_slice(&(lba as u32).to_be_bytes());
    c[7..9].copy_from_slice(&(blocks as u16).to_be_bytes());
    c
}

pub(crate) fn rw16(op: u8, lba: u64, blocks: u32) -> Vec<u8> {
    let mut c = vec![0u8; 16];
    c[0] = op;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&blocks.to_be_bytes());
    c
}

/// Sectors read through the loader's machine, one polled SRB at a time.
struct LoaderDisk<'a> {
    m: &'a mut Machine,
    buf_pa: u64,
    buf_len: u32,
    first_read_ns: Option<u64>,
}

impl SectorRead for LoaderDisk<'_> {
    type Error = String;

    fn read(&mut self, lba: u64, count: u32, buf: &mut [u8]) -> Result<(), String> {
        let mut done = 0u32;
        while done < count {
            let n = (count - done).min(self.buf_len / 512);
            let len = n * 512;
            let req = SrbRequest {
                cdb: read10(lba + u64::from(done), n),
                lun: 0,
                dir: Dir::In,
                pages: vec![(self.buf_pa, len)],
                mapped: true,
            };
            let c = self.m.execute(req).map_err(|e| e.to_string())?;
            if c.srb_status & 0x3F != 1 || c.transferred != len {
                return Err(format!(
                    "READ(10) LBA {} x{n}: SRB status {:#04x} SCSI {:#04x} transferred {}",
                    lba + u64::from(done),
                    c.srb_status,
                    c.scsi_status,
                    c.transferred
                ));
            }
            if self.first_read_ns.is_none() {
                self.first_read_ns = Some(self.m.port.clock.now_ns());
            }
            let off = (self.buf_pa - crate::host::port::PHYS_BASE) as usize;
            let at = (done * 512) as usize;
            self.m
                .ram()
                .read(off, &mut buf[at..at + len as usize])
                .map_err(|e| format!("{e:?}"))?;
            done += n;
        }
        Ok(())
    }
}

fn image_path(opts: &BootOptions, arch: Arch, name: &str) -> PathBuf {
    opts.images.join(arch.dir()).join(name)
}

fn read_image(path: &Path) -> Result<Vec<u8>, BootError> {
    std::fs::read(path).map_err(|e| {
        BootError::Setup(format!(
            "{}: {e} (build the images first: cargo xtask build)",
            path.display()
        ))
    })
}

/// Starts a per-SRB measurement window (the stack's high-water mark restarts too).
fn figures_start(m: &mut Machine) -> (u64, u64, u64, u64) {
    m.port.figures.stack_io_high_water = 0;
    let c = m.port.dev.mmio_counts();
    (
        m.port.figures.instructions,
        c.reads,
        c.writes,
        m.port.figures.srbs,
    )
}

fn per_srb(r: &mut PhaseReport, m: &Machine, start: (u64, u64, u64, u64)) {
    let c = m.port.dev.mmio_counts();
    let srbs = (m.port.figures.srbs - start.3).max(1) as f64;
    r.instructions_per_srb = (m.port.figures.instructions - start.0) as f64 / srbs;
    r.mmio_reads_per_srb = (c.reads - start.1) as f64 / srbs;
    r.mmio_writes_per_srb = (c.writes - start.2) as f64 / srbs;
    r.stack_io_high_water = m.port.figures.stack_io_high_water;
}

fn finish(r: &mut PhaseReport, m: &Machine, t0: u64, wall: Instant) {
    r.srbs = m.port.figures.srbs;
    r.bytes = m.port.figures.bytes;
    r.virtual_ns = m.port.clock.now_ns() - t0;
    r.stack_high_water = m.port.figures.stack_high_water;
    r.find_adapter_stack = m.port.figures.find_adapter_stack;
    r.firmware_maps = m.port.figures.firmware_maps;
    r.interrupts = m.port.figures.interrupts;
    r.timer_calls = m.port.figures.timer_calls;
    r.dpcs = m.port.figures.dpcs;
    r.busy_requeues = m.port.figures.busy_requeues;
    r.event_log = m
        .port
        .log
        .iter()
        .map(|e| format!("code {:#010x} id {:#x}", e.error_code, e.unique_id))
        .collect();
    r.violations.extend(take_violations(m));
    r.wall_ms = wall.elapsed().as_millis();
}

/// What the run did that its environment forbids: the emulator's breaches, then the
/// device's violations (taken).
pub(crate) fn take_violations(m: &Machine) -> Vec<String> {
    let mut v = m.port.breaches.clone();
    v.extend(
        m.port
            .dev
            .take_violations()
            .iter()
            .map(|v| format!("device: {v:?}")),
    );
    v
}

/// Where RAM at physical address `pa` lies in [`Machine::ram`].
pub(crate) fn ram_off(pa: u64) -> usize {
    (pa - crate::host::port::PHYS_BASE) as usize
}

/// The 4 KiB pieces of `len` bytes of RAM from `pa` (a scatter-gather list).
pub(crate) fn pages_of(pa: u64, len: u64) -> Vec<(u64, u32)> {
    (0..len.div_ceil(4096))
        .map(|i| (pa + i * 4096, (len - i * 4096).min(4096) as u32))
        .collect()
}

/// A completed READ of LBA `lba` left `want` in the page at `page`.
pub(crate) fn page_holds(
    m: &Machine,
    page: u64,
    want: &[u8],
    lba: u64,
    phase: &'static str,
) -> Result<(), BootError> {
    let mut got = vec![0u8; want.len()];
    m.ram()
        .read(ram_off(page), &mut got)
        .map_err(|e| BootError::Setup(format!("{e:?}")))?;
    if got != want {
        return Err(BootError::Data {
            phase,
            what: format!("READ of LBA {lba} returned stale or wrong data"),
        });
    }
    Ok(())
}

/// The disk holds `want` from `lba`; else the first byte that differs, with `what`
/// naming what `want` is.
pub(crate) fn disk_holds(
    disk: &Path,
    lba: u64,
    want: &[u8],
    what: &str,
    phase: &'static str,
) -> Result<(), BootError> {
    let mut on_disk = vec![0u8; want.len()];
    read_disk(&mut open_disk(disk)?, lba, &mut on_disk)?;
    match on_disk.iter().zip(want).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(first) => Err(BootError::Data {
            phase,
            what: format!("the disk differs from {what} at byte {first}"),
        }),
    }
}

/// Runs the three phases; `say` gets progress lines. The report holds the figures of every
/// phase that ran, also when one failed (the error says which and why).
pub fn run(opts: &BootOptions, mut say: impl FnMut(&str)) -> (BootReport, Result<(), BootError>) {
    let mut report = BootReport {
        disk: String::new(),
        sm: match opts.sm {
            SmChoice::Builtin => "builtin".into(),
            SmChoice::OpenSm => "opensm".into(),
        },
        phases: Vec::new(),
    };
    let result = run_phases(opts, &mut report, &mut say);
    (report, result)
}

/// Finishes the capture (also after a failure: the packets are what explains it).
fn end_capture(opts: &BootOptions, machine: &mut Machine, say: &mut impl FnMut(&str)) {
    if let Some(p) = &opts.pcap {
        match machine.port.world.finish_capture() {
            Ok(n) => say(&format!("capture: {n} packets in {}", p.display())),
            Err(e) => say(&format!("capture {}: {e}", p.display())),
        }
    }
}

fn run_phases(
    opts: &BootOptions,
    report: &mut BootReport,
    mut say: impl FnMut(&str),
) -> Result<(), BootError> {
    // The working disk.
    let work = WorkDisk(std::env::temp_dir().join(format!(
        "fabboot-boot-{}-{}.img",
        std::process::id(),
        opts.seed
    )));
    let (disk_name, manifest) = match &opts.disk {
        Some(p) => {
            std::fs::copy(p, &work.0)
                .map_err(|e| BootError::Setup(format!("copying {}: {e}", p.display())))?;
            (p.display().to_string(), None)
        }
        None => {
            let m = bootdisk::write_image(&bootdisk::DiskSpec::new(opts.seed), &work.0)
                .map_err(|e| BootError::Setup(format!("generating the boot disk: {e:?}")))?;
            say(&format!(
                "boot disk: generated, {} MiB, signature {:08x}, {} files",
                m.total_bytes >> 20,
                m.disk_signature,
                m.files.len()
            ));
            ("generated".to_string(), Some(m))
        }
    };
    report.disk = disk_name;

    // Phase 1: the loader.
    let wall = Instant::now();
    let rig = HostRig::new(&RigOptions {
        arch: opts.loader_arch,
        flavour: Flavour::Scsiport,
        env: Env::Loader,
        sm: opts.sm,
        disk: work.0.clone(),
        pcap: opts.pcap.clone(),
        driver_parameter: None,
    })
    .map_err(host("phase 1"))?;
    let HostRig {
        mut machine,
        target,
    } = rig;
    let path = image_path(opts, opts.loader_arch, "ntbootdd.sys");
    let mut file = read_image(&path)?;
    configure_image(&mut file, &target).map_err(BootError::Setup)?;
    let mut r1 = PhaseReport {
        name: "loader".into(),
        image: path.display().to_string(),
        arch: opts.loader_arch.dir().into(),
        config_source: "the image's embedded block".into(),
        ..PhaseReport::default()
    };
    say(&format!(
        "phase 1: NTLDR loads {} ({}), scsiport, polled",
        "ntbootdd.sys",
        opts.loader_arch.dir()
    ));
    machine.load(&file).map_err(host("phase 1"))?;
    let t0 = machine.port.clock.now_ns();
    let result = phase1(&mut machine, &mut r1, manifest.as_ref(), &work.0, &mut say);
    finish(&mut r1, &machine, t0, wall);
    if let Err(e) = result {
        report.phases.push(r1);
        end_capture(opts, &mut machine, &mut say);
        return Err(e);
    }
    say(&format!(
        "phase 1: {} files, {} SRBs, {} KiB in {:.1} s virtual; first sector at {:.1} ms",
        r1.files.len(),
        r1.srbs,
        r1.bytes >> 10,
        r1.virtual_ns as f64 / 1e9,
        r1.first_sector_ns as f64 / 1e6
    ));
    report.phases.push(r1);

    // Phase 2: the kernel, on the same machine: its target from the sBFT the firmware
    // left (no DriverParameter, an unconfigured image), or from the registry.
    let wall = Instant::now();
    let (driver_parameter, config_source) = match opts.sbft {
        Some((placement, order)) => (
            None,
            format!("the sBFT ({placement:?}, {order:?} byte order)"),
        ),
        None => (Some(target.driver_parameter()), "DriverParameter".into()),
    };
    let mut machine = machine
        .reboot(
            Env::Kernel,
            Flavour::Storport,
            opts.kernel_arch,
            driver_parameter,
        )
        .map_err(host("phase 2"))?;
    if let Some((placement, order)) = opts.sbft {
        let at = firmware::place(
            &mut machine.port.firmware,
            &firmware::sbft_table(&target.sbft(), order),
            placement,
        );
        say(&format!(
            "phase 2: the firmware's sBFT at {at:#x} ({placement:?}, {order:?} byte order)"
        ));
    }
    let path = image_path(opts, opts.kernel_arch, "fabboot.sys");
    let file = read_image(&path)?;
    let mut r2 = PhaseReport {
        name: "kernel".into(),
        image: path.display().to_string(),
        arch: opts.kernel_arch.dir().into(),
        config_source,
        ..PhaseReport::default()
    };
    say(&format!(
        "phase 2: the kernel loads fabboot.sys ({}), storport, interrupts",
        opts.kernel_arch.dir()
    ));
    machine.load(&file).map_err(host("phase 2"))?;
    let t0 = machine.port.clock.now_ns();
    let result = phase2(&mut machine, &mut r2, opts, &work.0, &mut say);
    finish(&mut r2, &machine, t0, wall);
    report.phases.push(r2);
    if let Err(e) = result {
        end_capture(opts, &mut machine, &mut say);
        return Err(e);
    }

    let dump_buffer = machine
        .port
        .adapter
        .map(|a| a.requested_dump_buffer)
        .unwrap_or(0);
    let blocks = std::fs::metadata(&work.0)
        .map_err(|e| BootError::Setup(format!("{}: {e}", work.0.display())))?
        .len()
        / 512;

    // Hibernate and resume: the hibernation stack writes the kernel's memory, the
    // power goes off, the memory comes back from the disk, and the kernel instance
    // restarts its adapter by itself.
    let wall = Instant::now();
    let stage = |name: &str, config_source: &str| PhaseReport {
        name: name.into(),
        image: path.display().to_string(),
        arch: opts.kernel_arch.dir().into(),
        config_source: config_source.into(),
        ..PhaseReport::default()
    };
    let mut hib = stage(
        "hibernate",
        "the kernel instance's dump data (MiniportDumpData)",
    );
    let mut res = stage("resume", "the kernel instance's, restored from the disk");
    let cycled = hibernate::cycle(
        machine,
        &file,
        dump_buffer,
        blocks,
        &work.0,
        opts.seed,
        &mut hib,
        &mut res,
        &mut say,
    );
    res.wall_ms = wall.elapsed().as_millis();
    report.phases.push(hib);
    report.phases.push(res);
    let mut machine = cycled?;

    // Phase 3: the kernel dies with paging writes in flight; the dump stack loads the
    // same image again (not configured: its target is what the kernel's instance
    // handed over; the dump port passes only `dump=1`) and writes the dump, polled.
    let wall = Instant::now();
    let in_flight = crash(&mut machine, blocks, opts.seed).map_err(host("phase 3"))?;
    say(&format!(
        "phase 3: the kernel crashes with {in_flight} paging writes in flight; the dump stack loads fabboot.sys ({}) in dump mode",
        opts.kernel_arch.dir()
    ));
    let crash_ns = machine.port.clock.now_ns();
    let mut machine = machine
        .reboot(Env::Dump, Flavour::Storport, opts.kernel_arch, None)
        .map_err(host("phase 3"))?;
    let mut r3 = PhaseReport {
        name: "dump".into(),
        image: path.display().to_string(),
        arch: opts.kernel_arch.dir().into(),
        config_source: "the kernel instance's dump data (MiniportDumpData)".into(),
        ..PhaseReport::default()
    };
    machine.load(&file).map_err(host("phase 3"))?;
    let result = phase3(
        &mut machine,
        &mut r3,
        dump_buffer,
        crash_ns,
        blocks,
        &work.0,
        &mut say,
    );
    finish(&mut r3, &machine, crash_ns, wall);
    // The dump instance had nothing but the hand-over: it must not have looked for
    // another source in firmware memory.
    let result = result.and_then(|()| match r3.firmware_maps {
        0 => Ok(()),
        n => Err(BootError::Data {
            phase: "phase 3",
            what: format!(
                "the dump instance mapped firmware memory {n} times: it did not take the \
                 hand-over"
            ),
        }),
    });
    report.phases.push(r3);
    end_capture(opts, &mut machine, &mut say);
    result
}

/// The working disk, to check what the target wrote.
pub(crate) fn open_disk(disk: &Path) -> Result<bootdisk::FileDisk, BootError> {
    bootdisk::FileDisk::open(disk).map_err(|e| BootError::Setup(format!("{}: {e}", disk.display())))
}

/// Reads whole sectors from `lba` into `buf` (a multiple of 512 bytes).
pub(crate) fn read_disk(
    disk: &mut bootdisk::FileDisk,
    lba: u64,
    buf: &mut [u8],
) -> Result<(), BootError> {
    let count = u32::try_from(buf.len() / 512)
        .map_err(|_| BootError::Setup(format!("a read of {} bytes", buf.len())))?;
    disk.read(lba, count, buf)
        .map_err(|e| BootError::Setup(format!("reading the disk at LBA {lba}: {e}")))
}

/// Phase 2's paging area on a disk of `blocks` sectors: the last 16 MiB (or all of a
/// smaller disk), as (first LBA, sectors).
pub(crate) fn paging_area(blocks: u64) -> (u64, u64) {
    let area = (16u64 << 20 >> 9).min(blocks);
    (blocks - area, area)
}

/// Bytes the dump instance writes in phase 3.
const DUMP_BYTES: u64 = 8 << 20;

/// The kernel dies: a queue depth of paging writes is handed to the driver and the
/// machine stops while they are in flight (the target may or may not carry them
/// out). Returns how many were in flight.
fn crash(m: &mut Machine, blocks: u64, seed: u64) -> Result<usize, crate::host::port::HostError> {
    let (area_lba, area) = paging_area(blocks);
    let pages = m.alloc_ram(32 * 4096)?;
    let mut rng = Rng(seed ^ 0xC4A5_4000);
    for i in 0..32u64 {
        let lba = area_lba + rng.below(area / 8) * 8;
        m.submit(SrbRequest {
            cdb: rw16(0x8A, lba, 8),
            lun: 0,
            dir: Dir::Out,
            pages: vec![(pages + i * 4096, 4096)],
            mapped: false,
        });
    }
    // Long enough for the driver to post them, not for the target to answer.
    m.pump(2_000, |_| false, 32)?;
    Ok(m.in_driver())
}

fn phase3(
    m: &mut Machine,
    r: &mut PhaseReport,
    dump_buffer: u32,
    crash_ns: u64,
    blocks: u64,
    disk: &Path,
    say: &mut impl FnMut(&str),
) -> Result<(), BootError> {
    const P: &str = "phase 3";
    m.driver_entry().map_err(host(P))?;
    m.start_adapter(dump_buffer).map_err(host(P))?;
    r.init_instructions = m.port.figures.instructions;
    let adapter = m.port.adapter.unwrap_or_default();
    say(&format!(
        "phase 3: dump instance ready {:.1} ms after the crash, in a DumpRegion of {} KiB \
         (max transfer {} KiB, {} breaks)",
        (m.port.clock.now_ns() - crash_ns) as f64 / 1e6,
        u64::from(dump_buffer).next_multiple_of(4096) >> 10,
        adapter.max_transfer >> 10,
        adapter.physical_breaks
    ));
    // The dump goes below phase 2's paging area, in the largest transfers the
    // adapter takes, from pages the CPU has no mapping of (as crash dump pages are
    // handed to the port).
    let (area_lba, _) = paging_area(blocks);
    let dump_blocks = (DUMP_BYTES / 512).min(area_lba);
    let dump_lba = area_lba - dump_blocks;
    let breaks = u64::from(adapter.physical_breaks.clamp(1, 256));
    let xfer = u64::from(adapter.max_transfer.clamp(4096, 1 << 20)).min(breaks * 4096);
    let data_pa = m.alloc_ram(dump_blocks * 512).map_err(host(P))?;
    let mut data = vec![0u8; (dump_blocks * 512) as usize];
    let mut rng = Rng(crash_ns ^ 0xD0_D0);
    for b in data.iter_mut() {
        *b = rng.next() as u8;
    }
    m.ram()
        .write((data_pa - crate::host::port::PHYS_BASE) as usize, &data)
        .map_err(|e| BootError::Setup(format!("{e:?}")))?;
    let start = figures_start(m);
    let mut at = 0u64;
    while at < dump_blocks * 512 {
        let len = xfer.min(dump_blocks * 512 - at);
        let pages = pages_of(data_pa + at, len);
        let c = m
            .execute(SrbRequest {
                cdb: rw16(0x8A, dump_lba + at / 512, (len / 512) as u32),
                lun: 0,
                dir: Dir::Out,
                pages,
                mapped: false,
            })
            .map_err(host(P))?;
        scsi_ok(&c, "dump WRITE(16)", P)?;
        if r.first_sector_ns == 0 {
            r.first_sector_ns = m.port.clock.now_ns() - crash_ns;
        }
        at += len;
    }
    per_srb(r, m, start);
    // Every byte of the dump is on the disk.
    disk_holds(disk, dump_lba, &data, "the dump in memory", P)?;
    say(&format!(
        "phase 3: {} MiB of dump written polled in {} SRBs of {} KiB and verified; first \
         dump write done {:.1} ms after the crash",
        data.len() >> 20,
        m.port.figures.srbs - start.3,
        xfer >> 10,
        r.first_sector_ns as f64 / 1e6
    ));
    Ok(())
}

fn phase1(
    m: &mut Machine,
    r: &mut PhaseReport,
    manifest: Option<&bootdisk::Manifest>,
    disk: &Path,
    say: &mut impl FnMut(&str),
) -> Result<(), BootError> {
    const P: &str = "phase 1";
    let t0 = m.port.clock.now_ns();
    m.driver_entry().map_err(host(P))?;
    r.init_instructions = m.port.figures.instructions;
    let adapter = m.port.adapter.unwrap_or_default();
    say(&format!(
        "phase 1: adapter found and logged in at {:.1} ms (max transfer {} KiB, {} breaks)",
        (m.port.clock.now_ns() - t0) as f64 / 1e6,
        adapter.max_transfer >> 10,
        adapter.physical_breaks
    ));
    let start = figures_start(m);
    let buf_len = 64 << 10;
    let buf_pa = m.alloc_ram(buf_len).map_err(host(P))?;
    // INQUIRY, as the loader does when it looks for disks.
    let inq = m
        .execute(SrbRequest {
            cdb: vec![0x12, 0, 0, 0, 36, 0],
            lun: 0,
            dir: Dir::In,
            pages: vec![(buf_pa, 36)],
            mapped: true,
        })
        .map_err(host(P))?;
    scsi_ok(&inq, "INQUIRY", P)?;
    let mut id = [0u8; 36];
    let _ = m
        .ram()
        .read((buf_pa - crate::host::port::PHYS_BASE) as usize, &mut id);
    say(&format!(
        "phase 1: LUN 0 is \"{} {}\"",
        String::from_utf8_lossy(&id[8..16]).trim(),
        String::from_utf8_lossy(&id[16..32]).trim()
    ));
    let max_transfer = adapter.max_transfer.min(buf_len as u32).max(512);
    let mut ldisk = LoaderDisk {
        m,
        buf_pa,
        buf_len: max_transfer & !511,
        first_read_ns: None,
    };
    let files = {
        let mut fs = bootdisk::fat32::Fat32::open(&mut ldisk).map_err(|e| BootError::Data {
            phase: P,
            what: format!("FAT32: {e:?}"),
        })?;
        let plan = bootdisk::load_plan(&mut fs).map_err(|e| BootError::Data {
            phase: P,
            what: format!("boot.ini: {e:?}"),
        })?;
        let list: Vec<String> = plan.files.iter().map(|f| f.path.clone()).collect();
        let mut files = Vec::new();
        for path in std::iter::once("boot.ini".to_string()).chain(list) {
            let data = fs.read(&path, max_transfer).map_err(|e| BootError::Data {
                phase: P,
                what: format!("{path}: {e:?}"),
            })?;
            files.push((path, data));
        }
        files
    };
    r.first_sector_ns = ldisk.first_read_ns.unwrap_or(0).saturating_sub(t0);
    // Check each file: against the manifest's hash (generated disk), and against the
    // same file read straight from the image by the host (any disk).
    let mut direct =
        bootdisk::fat32::Fat32::open(open_disk(disk)?).map_err(|e| BootError::Data {
            phase: P,
            what: format!("FAT32 (host): {e:?}"),
        })?;
    for (path, data) in &files {
        let hash = bootdisk::sha256(data);
        if let Some(man) = manifest {
            let want = man.file(path).ok_or_else(|| BootError::Data {
                phase: P,
                what: format!("{path} is not in the manifest"),
            })?;
            if want.sha256 != hash || want.size as usize != data.len() {
                return Err(BootError::Data {
                    phase: P,
                    what: format!(
                        "{path}: SHA-256 {} size {}, expected {} size {}",
                        bootdisk::hex(&hash),
                        data.len(),
                        bootdisk::hex(&want.sha256),
                        want.size
                    ),
                });
            }
        }
        let host_copy = direct.read(path, 1 << 20).map_err(|e| BootError::Data {
            phase: P,
            what: format!("{path} (host): {e:?}"),
        })?;
        if &host_copy != data {
            return Err(BootError::Data {
                phase: P,
                what: format!("{path}: differs from the image read directly"),
            });
        }
        say(&format!(
            "phase 1:   {path:<40} {:>9} bytes  sha256 {}…  ok",
            data.len(),
            &bootdisk::hex(&hash)[..16]
        ));
        r.files.push((path.clone(), data.len() as u64));
    }
    per_srb(r, ldisk.m, start);
    Ok(())
}

/// A small deterministic generator (xorshift64*).
/// xorshift64*: the boot demo's and the fault campaign's seeded choices.
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value; zero is mapped away from the fixed point).
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn phase2(
    m: &mut Machine,
    r: &mut PhaseReport,
    opts: &BootOptions,
    disk: &Path,
    say: &mut impl FnMut(&str),
) -> Result<(), BootError> {
    const P: &str = "phase 2";
    let t0 = m.port.clock.now_ns();
    m.driver_entry().map_err(host(P))?;
    m.start_adapter(0).map_err(host(P))?;
    r.init_instructions = m.port.figures.instructions;
    let adapter = m.port.adapter.unwrap_or_default();
    say(&format!(
        "phase 2: adapter found (max transfer {} KiB, {} breaks, dump buffer {} KiB)",
        adapter.max_transfer >> 10,
        adapter.physical_breaks,
        adapter.requested_dump_buffer >> 10
    ));
    // Storport asked the boot disk's miniport for its dump pointers (when it set up
    // the crash dump stack, at the end of start_adapter).
    let dump_data = m.port.dump_data.ok_or_else(|| BootError::Srb {
        phase: P,
        what: "the driver does not declare STOR_FEATURE_DUMP_POINTERS".into(),
    })?;
    say(&format!(
        "phase 2: SRB_FUNCTION_DUMP_POINTERS answered: MiniportPrivateDumpData {dump_data:#x}"
    ));
    let small = m.alloc_ram(4096).map_err(host(P))?;
    let one = |m: &mut Machine, cdb: Vec<u8>, len: u32, dir: Dir| -> Result<Completed, BootError> {
        let id = m.submit(SrbRequest {
            cdb,
            lun: 0,
            dir,
            pages: if len == 0 { vec![] } else { vec![(small, len)] },
            mapped: true,
        });
        m.pump(
            120_000_000_000,
            |p| p.completed.iter().any(|c| c.id == id),
            1,
        )
        .map_err(host(P))?;
        let i = m
            .port
            .completed
            .iter()
            .position(|c| c.id == id)
            .ok_or_else(|| BootError::Srb {
                phase: P,
                what: "no completion in 120 s".into(),
            })?;
        Ok(m.port.completed.remove(i))
    };
    let inq = one(m, vec![0x12, 0, 0, 0, 36, 0], 36, Dir::In)?;
    scsi_ok(&inq, "INQUIRY", P)?;
    let cap = one(
        m,
        vec![0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0],
        32,
        Dir::In,
    )?;
    scsi_ok(&cap, "READ CAPACITY(16)", P)?;
    let mut c = [0u8; 32];
    let _ = m
        .ram()
        .read((small - crate::host::port::PHYS_BASE) as usize, &mut c);
    let blocks = u64::from_be_bytes(c[0..8].try_into().unwrap_or([0; 8])) + 1;
    let block = u32::from_be_bytes(c[8..12].try_into().unwrap_or([0; 4]));
    if block != 512 {
        return Err(BootError::Data {
            phase: P,
            what: format!("block size {block}"),
        });
    }
    say(&format!(
        "phase 2: disk ready at {:.1} ms: {} MiB",
        (m.port.clock.now_ns() - t0) as f64 / 1e6,
        (blocks * 512) >> 20
    ));
    let start = figures_start(m);

    let (area_lba, area_blocks) = paging_area(blocks);
    let mut shadow = vec![0u8; (area_blocks * 512) as usize];
    read_disk(&mut open_disk(disk)?, area_lba, &mut shadow)?;
    // Buffers: a pool of scattered pages.
    const QD: usize = 32;
    let pool_pages = 1024u64;
    let pool = m.alloc_ram(pool_pages * 4096).map_err(host(P))?;
    let mut rng = Rng(opts.seed ^ 0x9E37_79B9_7F4A_7C15);
    let mut free: Vec<u64> = (0..pool_pages).map(|i| pool + i * 4096).collect();
    for i in (1..free.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        free.swap(i, j);
    }
    // id -> (lba, write, page, data written)
    let mut pending: std::collections::HashMap<u64, (u64, bool, u64)> = Default::default();
    let mut issued = 0usize;
    let mut done = 0usize;
    let mut writes = 0usize;
    let mut last_report = 0;
    while done < opts.random_ios {
        while issued < opts.random_ios && pending.len() < QD {
            let page = free
                .pop()
                .ok_or_else(|| BootError::Setup("page pool empty".into()))?;
            // 4 KiB aligned in the area; not a page another request in flight uses.
            let slot = rng.below(area_blocks / 8);
            let lba = area_lba + slot * 8;
            if pending.values().any(|p| p.0 == lba) {
                free.push(page);
                continue;
            }
            let write = rng.below(4) == 0;
            if write {
                let mut data = vec![0u8; 4096];
                for (i, b) in data.iter_mut().enumerate() {
                    *b = (rng.next() >> (i % 8)) as u8;
                }
                m.ram()
                    .write(ram_off(page), &data)
                    .map_err(|e| BootError::Setup(format!("{e:?}")))?;
                let at = ((lba - area_lba) * 512) as usize;
                shadow[at..at + 4096].copy_from_slice(&data);
                writes += 1;
            }
            let op = if write { 0x8A } else { 0x88 };
            let id = m.submit(SrbRequest {
                cdb: rw16(op, lba, 8),
                lun: 0,
                dir: if write { Dir::Out } else { Dir::In },
                pages: vec![(page, 4096)],
                mapped: false,
            });
            pending.insert(id, (lba, write, page));
            issued += 1;
        }
        m.pump(60_000_000_000, |p| !p.completed.is_empty(), QD)
            .map_err(host(P))?;
        for c in std::mem::take(&mut m.port.completed) {
            let Some((lba, write, page)) = pending.remove(&c.id) else {
                return Err(BootError::Srb {
                    phase: P,
                    what: format!("completion of unknown SRB {}", c.id),
                });
            };
            scsi_ok(&c, if write { "WRITE(16)" } else { "READ(16)" }, P)?;
            if !write && r.first_sector_ns == 0 {
                r.first_sector_ns = m.port.clock.now_ns() - t0;
            }
            if !write {
                let at = ((lba - area_lba) * 512) as usize;
                page_holds(m, page, &shadow[at..at + 4096], lba, P)?;
            }
            free.push(page);
            done += 1;
        }
        if done - last_report >= opts.random_ios / 4 {
            last_report = done;
            say(&format!(
                "phase 2: {done}/{} random 4 KiB requests ({writes} writes) done",
                opts.random_ios
            ));
        }
    }
    if r.first_sector_ns == 0 {
        r.first_sector_ns = m.port.clock.now_ns() - t0;
    }
    // The per-SRB figures are those of the 4 KiB paging requests.
    per_srb(r, m, start);
    let seq_figures = figures_start(m);
    // The large sequential read: whole transfers from scattered pages.
    let breaks = adapter.physical_breaks.clamp(1, 256) as u64;
    let xfer = u64::from(adapter.max_transfer.clamp(4096, 1 << 20))
        .min(breaks * 4096)
        .min(256 * 4096);
    let seq_blocks = (opts.sequential_bytes / 512).min(blocks);
    let mut lba = 0u64;
    let mut seq_pending: std::collections::HashMap<u64, (u64, Vec<u64>, u32)> = Default::default();
    let mut image = open_disk(disk)?;
    let seq_start = m.port.clock.now_ns();
    let mut seq_bytes = 0u64;
    while lba < seq_blocks || !seq_pending.is_empty() {
        while lba < seq_blocks && seq_pending.len() < 8 {
            let n = (xfer / 512).min(seq_blocks - lba) as u32;
            let need = (u64::from(n) * 512).div_ceil(4096) as usize;
            if free.len() < need {
                break; // the pool is in flight: wait for completions
            }
            let pages: Vec<u64> = free.split_off(free.len() - need);
            let mut left = n * 512;
            let list: Vec<(u64, u32)> = pages
                .iter()
                .map(|&p| {
                    let l = left.min(4096);
                    left -= l;
                    (p, l)
                })
                .collect();
            let id = m.submit(SrbRequest {
                cdb: rw16(0x88, lba, n),
                lun: 0,
                dir: Dir::In,
                pages: list,
                mapped: false,
            });
            seq_pending.insert(id, (lba, pages, n * 512));
            lba += u64::from(n);
        }
        m.pump(60_000_000_000, |p| !p.completed.is_empty(), 8)
            .map_err(host(P))?;
        for c in std::mem::take(&mut m.port.completed) {
            let Some((at, pages, len)) = seq_pending.remove(&c.id) else {
                return Err(BootError::Srb {
                    phase: P,
                    what: format!("completion of unknown SRB {}", c.id),
                });
            };
            scsi_ok(&c, "READ(16)", P)?;
            let mut want = vec![0u8; len as usize];
            read_disk(&mut image, at, &mut want)?;
            // The paging area's bytes are the shadow's (writes reached the image file).
            for (i, &p) in pages.iter().enumerate() {
                let off = i * 4096;
                let l = (len as usize - off).min(4096);
                let mut got = vec![0u8; l];
                m.ram()
                    .read(ram_off(p), &mut got)
                    .map_err(|e| BootError::Setup(format!("{e:?}")))?;
                if got != want[off..off + l] {
                    return Err(BootError::Data {
                        phase: P,
                        what: format!("sequential READ at LBA {at} page {i} differs from the disk"),
                    });
                }
                free.push(p);
            }
            seq_bytes += u64::from(len);
        }
    }
    let seq_ns = m.port.clock.now_ns() - seq_start;
    say(&format!(
        "phase 2: sequential read of {} MiB in {}-KiB transfers: {:.1} Gb/s (virtual)",
        seq_bytes >> 20,
        xfer >> 10,
        seq_bytes as f64 * 8.0 / seq_ns.max(1) as f64
    ));
    // Every byte of the paging area on the disk equals the shadow.
    disk_holds(disk, area_lba, &shadow, "the paging area's shadow", P)?;
    say(&format!(
        "phase 2: {} random requests ({writes} writes) and the sequential read verified; the paging area matches its shadow",
        opts.random_ios
    ));
    let mut seq = PhaseReport::default();
    per_srb(&mut seq, m, seq_figures);
    r.sequential = Some(Sequential {
        srbs: m.port.figures.srbs - seq_figures.3,
        bytes: seq_bytes,
        transfer: xfer,
        virtual_ns: seq_ns,
        instructions_per_srb: seq.instructions_per_srb,
        mmio_reads_per_srb: seq.mmio_reads_per_srb,
        mmio_writes_per_srb: seq.mmio_writes_per_srb,
    });
    let _ = std::io::stdout().flush();
    Ok(())
}
