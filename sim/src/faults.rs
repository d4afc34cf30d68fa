//! The fault campaign (`fabboot-sim faults`): the shipped kernel image
//! (`fabboot.sys`, storport, interrupts) pages to its SRP disk while the fabric and
//! the target misbehave at seeded random times, then the kernel dies and the dump
//! instance writes its dump while the link flaps. What a system disk must survive
//! (issue 7; DESIGN §1 and §4): every request ends exactly once, successfully, with
//! the disk's data; nothing is lost, duplicated or stale; zero policing violations.
//!
//! The faults ([`crate::world::World`]'s primitives): link flaps of the host's
//! cable, target reboots (every channel gone without a word; the disk kept), LID
//! changes of the whole subnet, fatal errors on the driver's RC QP, SA BUSY periods,
//! a stale-connection reject, CM DREQs and SRP_T_LOGOUTs from the target. Each kind
//! is scheduled at uniformly random times over a window while a paced paging
//! workload (random 4 KiB reads and writes, no two on one page at once, as a file
//! system issues them) runs; a shadow copy of the paging area says what every read
//! must return and what the disk must hold at the end.
//!
//! The port plays the class driver's part for a request the driver fails for retry
//! (BUS RESET): it sends it again, and counts it; storport itself sends BUSY ones
//! again. Any other ending is a failure of the campaign.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use crate::boot::{
    BootError, Rng, configure_image, disk_holds, host, open_disk, page_holds, pages_of,
    paging_area, ram_off, read_disk, rw16, take_violations,
};
use crate::host::Arch;
use crate::host::port::{Dir, Env, Machine, SrbRequest};
use crate::host::rig::{HostRig, RigOptions};
use crate::scenario::SmChoice;
use crate::world::FaultCounts;
use fabboot::port::Flavour;

/// SRB_STATUS_SUCCESS and SRB_STATUS_BUS_RESET.
const SRB_SUCCESS: u8 = 0x01;
const SRB_BUS_RESET: u8 = 0x0E;
/// The host's node (switch port 1) and the target's.
const HOST: usize = 0;
const TARGET: usize = 1;
const MS: u64 = 1_000_000;

/// What to run.
#[derive(Clone, Debug)]
pub struct FaultOptions {
    /// Where the built images are (`<images>/<arch>/fabboot.sys`).
    pub images: PathBuf,
    pub sm: SmChoice,
    pub arch: Arch,
    pub seed: u64,
    /// Fault counts over the window.
    pub link_flaps: u32,
    pub target_restarts: u32,
    pub lid_changes: u32,
    pub qp_errors: u32,
    pub sa_busy: u32,
    pub dreqs: u32,
    pub t_logouts: u32,
    pub stale_rejects: u32,
    /// Virtual time over which the faults are spread.
    pub window_ns: u64,
    /// A new paging request every this much virtual time (while fewer than
    /// [`QUEUE_DEPTH`] are outstanding).
    pub request_every_ns: u64,
    /// Link flaps while the dump instance comes up and writes.
    pub dump_flaps: u32,
}

/// Most paging requests outstanding at once.
pub const QUEUE_DEPTH: usize = 16;

impl FaultOptions {
    /// The campaign: 50 link flaps, 5 target restarts, 3 LID changes, QP
    /// errors, SA BUSY periods, a stale-connection reject, DREQs and T_LOGOUTs over
    /// 30 s of virtual time, a request every 2 ms; 4 flaps during the dump.
    pub fn new(images: PathBuf, sm: SmChoice, seed: u64) -> FaultOptions {
        FaultOptions {
            images,
            sm,
            arch: Arch::X86_64,
            seed,
            link_flaps: 50,
            target_restarts: 5,
            lid_changes: 3,
            qp_errors: 6,
            sa_busy: 4,
            dreqs: 3,
            t_logouts: 3,
            stale_rejects: 1,
            window_ns: 30_000 * MS,
            request_every_ns: 2 * MS,
            dump_flaps: 4,
        }
    }
}

/// One kind of fault, as scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// The host's cable out for this long.
    LinkFlap {
        down_ns: u64,
    },
    TargetRestart {
        down_ns: u64,
    },
    LidChange {
        offset: u16,
    },
    QpError,
    /// The SA answers BUSY for this long, starting just before a flap (so that the
    /// reconnect's path query meets it).
    SaBusy {
        busy_ns: u64,
        down_ns: u64,
    },
    Dreq,
    TLogout,
    /// The target rejects the next REQ as a stale connection; a flap follows.
    Stale {
        down_ns: u64,
    },
}

/// What the campaign saw.
#[derive(Clone, Debug, Default)]
pub struct FaultReport {
    pub sm: String,
    pub seed: u64,
    /// Faults injected (the world's counters), kernel part and dump part.
    pub counts: FaultCounts,
    pub dump_counts: FaultCounts,
    /// QP errors scheduled but not injected (no channel at that moment).
    pub qp_errors_skipped: u64,
    pub requests: u64,
    pub writes: u64,
    /// Requests the driver failed for retry (BUS RESET) that the port sent again.
    pub retried: u64,
    /// Requests answered BUSY and sent again by the port.
    pub busy_requeues: u64,
    /// The longest a request took from submission to completion.
    pub longest_request_ns: u64,
    /// The longest time with requests outstanding and none completing.
    pub longest_stall_ns: u64,
    /// Event-log entries by event number (`UniqueId` bits 23:16).
    pub events: Vec<(u8, u64)>,
    pub virtual_ns: u64,
    /// The dump: bytes written and verified, time from the crash to the first dump
    /// write's completion, the DumpRegion's size.
    pub dump_bytes: u64,
    pub dump_first_write_ns: u64,
    pub dump_region: u64,
    pub violations: Vec<String>,
    pub wall_ms: u128,
}

impl FaultReport {
    /// The figures as JSON, with the failure if there was one.
    pub fn to_json(&self, error: Option<&BootError>) -> String {
        let counts = |c: &FaultCounts| {
            format!(
                "{{\"link_downs\": {}, \"link_ups\": {}, \"target_restarts\": {}, \
                 \"lid_changes\": {}, \"qp_errors\": {}, \"sa_busy_periods\": {}, \
                 \"sa_busy_answers\": {}, \"stale_rejects\": {}, \"dreqs\": {}, \
                 \"t_logouts\": {}}}",
                c.link_downs,
                c.link_ups,
                c.target_restarts,
                c.lid_changes,
                c.qp_errors,
                c.sa_busy_periods,
                c.sa_busy_answers,
                c.stale_rejects,
                c.dreqs,
                c.t_logouts
            )
        };
        let events: Vec<String> = self
            .events
            .iter()
            .map(|(n, c)| format!("\"0xFB{n:02X}\": {c}"))
            .collect();
        let violations: Vec<String> = self.violations.iter().map(|v| format!("{:?}", v)).collect();
        format!(
            "{{\"ok\": {}, \"error\": {}, \"sm\": \"{}\", \"seed\": {}, \"faults\": {}, \
             \"dump_faults\": {}, \"qp_errors_skipped\": {}, \"requests\": {}, \
             \"writes\": {}, \"retried\": {}, \"busy_requeues\": {}, \
             \"longest_request_ms\": {:.3}, \"longest_stall_ms\": {:.3}, \"events\": {{{}}}, \
             \"virtual_s\": {:.3}, \"dump_bytes\": {}, \"dump_first_write_ms\": {:.3}, \
             \"dump_region_bytes\": {}, \"violations\": [{}], \"wall_ms\": {}}}\n",
            error.is_none() && self.violations.is_empty(),
            error.map_or("null".into(), |e| format!("{:?}", e.to_string())),
            self.sm,
            self.seed,
            counts(&self.counts),
            counts(&self.dump_counts),
            self.qp_errors_skipped,
            self.requests,
            self.writes,
            self.retried,
            self.busy_requeues,
            self.longest_request_ns as f64 / 1e6,
            self.longest_stall_ns as f64 / 1e6,
            events.join(", "),
            self.virtual_ns as f64 / 1e9,
            self.dump_bytes,
            self.dump_first_write_ns as f64 / 1e6,
            self.dump_region,
            violations.join(", "),
            self.wall_ms
        )
    }
}

/// A temporary disk, removed on drop.
struct TempDisk(PathBuf);

impl Drop for TempDisk {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The schedule: every fault at a uniformly random time in the window (after the
/// first second, so the workload is under way), sorted.
fn schedule(o: &FaultOptions, rng: &mut Rng, start_ns: u64) -> Vec<(u64, Fault)> {
    let mut s = Vec::new();
    let window = o.window_ns.max(2_000 * MS) - 1_000 * MS;
    let at = |rng: &mut Rng| start_ns + 1_000 * MS + rng.below(window);
    for _ in 0..o.link_flaps {
        let down_ns = (1 + rng.below(300)) * MS;
        s.push((at(rng), Fault::LinkFlap { down_ns }));
    }
    for _ in 0..o.target_restarts {
        let down_ns = (200 + rng.below(1_300)) * MS;
        s.push((at(rng), Fault::TargetRestart { down_ns }));
    }
    for i in 0..o.lid_changes {
        let offset = 0x10 + i as u16;
        s.push((at(rng), Fault::LidChange { offset }));
    }
    for _ in 0..o.qp_errors {
        s.push((at(rng), Fault::QpError));
    }
    for _ in 0..o.sa_busy {
        let busy_ns = (50 + rng.below(450)) * MS;
        let down_ns = (1 + rng.below(50)) * MS;
        s.push((at(rng), Fault::SaBusy { busy_ns, down_ns }));
    }
    for _ in 0..o.dreqs {
        s.push((at(rng), Fault::Dreq));
    }
    for _ in 0..o.t_logouts {
        s.push((at(rng), Fault::TLogout));
    }
    for _ in 0..o.stale_rejects {
        let down_ns = (1 + rng.below(50)) * MS;
        s.push((at(rng), Fault::Stale { down_ns }));
    }
    s.sort_by_key(|f| f.0);
    s
}

/// Injects `f` now.
fn inject(m: &mut Machine, f: Fault, r: &mut FaultReport) -> Result<(), BootError> {
    let w = &mut m.port.world;
    let err = |e: crate::world::FaultError| BootError::Setup(format!("injecting {f:?}: {e}"));
    match f {
        Fault::LinkFlap { down_ns } => w.flap(HOST, down_ns).map_err(err)?,
        Fault::TargetRestart { down_ns } => w.restart_target(TARGET, down_ns).map_err(err)?,
        Fault::LidChange { offset } => w.change_lids(offset).map_err(err)?,
        Fault::QpError => {
            let qpn = w.target(TARGET).and_then(|t| {
                t.srpt
                    .channels()
                    .filter(|(_, c)| c.state == crate::srpt::ChannelState::Live)
                    .map(|(_, c)| c.remote_qpn)
                    .last()
            });
            // The target may still list a channel whose QP the driver has already
            // reset (it is reconnecting): nothing to break then.
            match qpn.map(|qpn| w.inject_qp_error(HOST, qpn)) {
                Some(Ok(_)) => {}
                Some(Err(crate::world::FaultError::Qp(_))) | None => r.qp_errors_skipped += 1,
                Some(Err(e)) => return Err(err(e)),
            }
        }
        Fault::SaBusy { busy_ns, down_ns } => {
            let now = w.clock().now_ns();
            w.sa_busy(now + busy_ns);
            w.flap(HOST, down_ns).map_err(err)?;
        }
        Fault::Dreq => {
            w.target_disconnect_all(TARGET).map_err(err)?;
        }
        Fault::TLogout => {
            // Reason 0: none given (SRP r16a §6.7, Table 20).
            w.target_logout_all(TARGET, 0).map_err(err)?;
        }
        Fault::Stale { down_ns } => {
            w.stale_next_req(TARGET).map_err(err)?;
            w.flap(HOST, down_ns).map_err(err)?;
        }
    }
    Ok(())
}

/// Runs the campaign; `say` gets progress lines. The report holds what was measured
/// also when the campaign failed.
pub fn run(o: &FaultOptions, mut say: impl FnMut(&str)) -> (FaultReport, Result<(), BootError>) {
    let wall = Instant::now();
    let mut r = FaultReport {
        sm: match o.sm {
            SmChoice::Builtin => "builtin".into(),
            SmChoice::OpenSm => "opensm".into(),
        },
        seed: o.seed,
        ..FaultReport::default()
    };
    let result = campaign(o, &mut r, &mut say);
    r.wall_ms = wall.elapsed().as_millis();
    (r, result)
}

/// The disk: 32 MiB of seeded bytes.
fn make_disk(seed: u64) -> Result<TempDisk, BootError> {
    let path =
        std::env::temp_dir().join(format!("fabboot-faults-{}-{seed}.img", std::process::id()));
    let mut rng = Rng::new(seed ^ 0xD15C);
    let bytes: Vec<u8> = (0..(32usize << 20) / 8)
        .flat_map(|_| rng.next().to_le_bytes())
        .collect();
    std::fs::write(&path, bytes)
        .map_err(|e| BootError::Setup(format!("{}: {e}", path.display())))?;
    Ok(TempDisk(path))
}

fn count_events(m: &Machine, r: &mut FaultReport) {
    for e in &m.port.log {
        let n = (e.unique_id >> 16) as u8;
        match r.events.iter_mut().find(|(k, _)| *k == n) {
            Some((_, c)) => *c += 1,
            None => r.events.push((n, 1)),
        }
    }
    r.events.sort();
}

fn campaign(
    o: &FaultOptions,
    r: &mut FaultReport,
    say: &mut impl FnMut(&str),
) -> Result<(), BootError> {
    const P: &str = "faults";
    let disk = make_disk(o.seed)?;
    let HostRig {
        mut machine,
        target,
    } = HostRig::new(&RigOptions {
        arch: o.arch,
        flavour: Flavour::Storport,
        env: Env::Kernel,
        sm: o.sm,
        disk: disk.0.clone(),
        pcap: std::env::var_os("FABBOOT_FAULTS_PCAP").map(PathBuf::from),
        driver_parameter: None,
    })
    .map_err(host(P))?;
    let path = o.images.join(o.arch.dir()).join("fabboot.sys");
    let mut file = std::fs::read(&path).map_err(|e| {
        BootError::Setup(format!(
            "{}: {e} (build the images first: cargo xtask build)",
            path.display()
        ))
    })?;
    let m = &mut machine;
    m.load(&file).map_err(host(P))?;
    let t0 = m.port.clock.now_ns();
    m.driver_entry().map_err(host(P))?;
    m.start_adapter(0).map_err(host(P))?;
    let dump_buffer = m.port.adapter.map(|a| a.requested_dump_buffer).unwrap_or(0);
    let blocks = std::fs::metadata(&disk.0)
        .map_err(|e| BootError::Setup(format!("{}: {e}", disk.0.display())))?
        .len()
        / 512;
    let (area_lba, area_blocks) = paging_area(blocks);
    let mut shadow = vec![0u8; (area_blocks * 512) as usize];
    read_disk(&mut open_disk(&disk.0)?, area_lba, &mut shadow)?;

    let mut rng = Rng::new(o.seed ^ 0xFA17_5EED);
    let start = m.port.clock.now_ns();
    let plan = schedule(o, &mut rng, start);
    let end_ns = start + o.window_ns;
    say(&format!(
        "faults: fabboot.sys ({}) under the {} SM, seed {}: {} faults over {:.0} s virtual, a paging request every {:.1} ms",
        o.arch.dir(),
        r.sm,
        o.seed,
        plan.len(),
        o.window_ns as f64 / 1e9,
        o.request_every_ns as f64 / 1e6
    ));

    let pool = m.alloc_ram(QUEUE_DEPTH as u64 * 4096).map_err(host(P))?;
    let mut free: Vec<u64> = (0..QUEUE_DEPTH as u64).map(|i| pool + i * 4096).collect();
    // id -> (lba, write, page, submitted at)
    let mut pending: HashMap<u64, (u64, bool, u64, u64)> = HashMap::new();
    let mut next_fault = 0usize;
    let mut next_request = start;
    let mut last_progress = start;
    let mut announced = 0usize;
    // FABBOOT_FAULTS_TRACE=1: every fault and event-log entry as it happens.
    let trace = std::env::var_os("FABBOOT_FAULTS_TRACE").is_some();
    let mut logged = 0usize;
    let mut last_dump = 0u64;
    loop {
        let now = m.port.clock.now_ns();
        while next_fault < plan.len() && plan[next_fault].0 <= now {
            if trace {
                eprintln!(
                    "{:>10.3} ms  inject {:?}; {} outstanding",
                    (now - start) as f64 / 1e6,
                    plan[next_fault].1,
                    pending.len()
                );
            }
            inject(m, plan[next_fault].1, r)?;
            next_fault += 1;
        }
        if trace && now / (100 * MS) != last_dump / (100 * MS) {
            last_dump = now;
            let (hs, hl) = {
                let fw = m.port.dev.firmware();
                (fw.port.state, fw.port.lid)
            };
            let w = &mut m.port.world;
            let link = w.fabric().link_up(HOST);
            let (ts, tl, ch) = w
                .target(TARGET)
                .map(|t| (t.port.state, t.port.lid, t.srpt.channels().count()))
                .unwrap_or_default();
            let sa = w.manager().sa_queries;
            let st = w.manager().sm.stats();
            let sa_ports: Vec<String> = w
                .manager()
                .sa
                .ports
                .iter()
                .map(|p| format!("{:x}@{:#x}", p.guid, p.lid))
                .collect();
            eprintln!(
                "{:>10.3} ms  host link {link} state {hs} lid {hl:#x}; target state {ts} lid {tl:#x} channels {ch}; sa queries {sa}, sa ports {sa_ports:?}, sweeps heavy {} light {}",
                (now - start) as f64 / 1e6,
                st.heavy_sweeps,
                st.light_sweeps
            );
        }
        if trace {
            for e in m.port.log.iter().skip(logged) {
                eprintln!(
                    "{:>10.3} ms  event {:#010x}",
                    (e.at_ns.saturating_sub(start)) as f64 / 1e6,
                    e.unique_id
                );
            }
            logged = m.port.log.len();
        }
        if next_fault >= announced + plan.len().div_ceil(4) {
            announced = next_fault;
            say(&format!(
                "faults: {next_fault}/{} injected at {:.1} s, {} requests done, longest request {:.0} ms",
                plan.len(),
                (now - start) as f64 / 1e9,
                r.requests,
                r.longest_request_ns as f64 / 1e6
            ));
        }
        r.counts = m.port.world.fault_counts();
        let issuing = now < end_ns || next_fault < plan.len();
        if !issuing && pending.is_empty() {
            break;
        }
        if pending.is_empty() {
            last_progress = now;
        }
        if issuing && now >= next_request && pending.len() < QUEUE_DEPTH {
            next_request = now + o.request_every_ns;
            if let Some(page) = free.pop() {
                let lba = loop {
                    let lba = area_lba + rng.below(area_blocks / 8) * 8;
                    if !pending.values().any(|p| p.0 == lba) {
                        break lba;
                    }
                };
                let write = rng.below(3) == 0;
                if write {
                    let data: Vec<u8> = (0..512).flat_map(|_| rng.next().to_le_bytes()).collect();
                    m.ram()
                        .write(ram_off(page), &data)
                        .map_err(|e| BootError::Setup(format!("{e:?}")))?;
                    let at = ((lba - area_lba) * 512) as usize;
                    shadow[at..at + 4096].copy_from_slice(&data);
                    r.writes += 1;
                }
                let id = submit(m, lba, write, page);
                pending.insert(id, (lba, write, page, now));
            }
        }
        // Run until a completion, the next request or the next fault.
        let mut wake = if issuing { next_request } else { u64::MAX };
        if let Some(f) = plan.get(next_fault) {
            wake = wake.min(f.0);
        }
        let limit = wake.saturating_sub(now).clamp(1_000, 10_000 * MS);
        m.pump(limit, |p| !p.completed.is_empty(), QUEUE_DEPTH)
            .map_err(host(P))?;
        let now = m.port.clock.now_ns();
        let done = std::mem::take(&mut m.port.completed);
        if done.is_empty() && !pending.is_empty() {
            r.longest_stall_ns = r.longest_stall_ns.max(now - last_progress);
            if now - last_progress > 120_000 * MS {
                return Err(BootError::Srb {
                    phase: P,
                    what: format!(
                        "no request completed for {} s with {} outstanding",
                        (now - last_progress) / 1_000_000_000,
                        pending.len()
                    ),
                });
            }
        }
        for c in done {
            let Some((lba, write, page, at)) = pending.remove(&c.id) else {
                return Err(BootError::Srb {
                    phase: P,
                    what: format!(
                        "completion of SRB {} which is not outstanding (twice?)",
                        c.id
                    ),
                });
            };
            r.longest_stall_ns = r.longest_stall_ns.max(now - last_progress);
            last_progress = now;
            match c.srb_status & 0x3F {
                SRB_SUCCESS => {}
                SRB_BUS_RESET => {
                    // The class driver sends it again.
                    r.retried += 1;
                    let id = submit(m, lba, write, page);
                    pending.insert(id, (lba, write, page, at));
                    continue;
                }
                s => {
                    return Err(BootError::Srb {
                        phase: P,
                        what: format!(
                            "{} of LBA {lba} ended with SRB status {s:#04x} (SCSI status {:#04x}, sense {:02x?})",
                            if write { "WRITE(16)" } else { "READ(16)" },
                            c.scsi_status,
                            c.sense
                        ),
                    });
                }
            }
            r.longest_request_ns = r.longest_request_ns.max(now - at);
            if !write {
                let off = ((lba - area_lba) * 512) as usize;
                page_holds(m, page, &shadow[off..off + 4096], lba, P)?;
            }
            free.push(page);
            r.requests += 1;
        }
    }
    r.counts = m.port.world.fault_counts();
    r.busy_requeues = m.port.figures.busy_requeues;
    // The disk holds exactly what the shadow says.
    disk_holds(&disk.0, area_lba, &shadow, "the paging area's shadow", P)?;
    r.violations.extend(take_violations(m));
    count_events(m, r);
    say(&format!(
        "faults: {} requests ({} writes) verified after {} faults; longest request {:.0} ms, longest stall {:.0} ms; the paging area matches its shadow",
        r.requests,
        r.writes,
        plan.len(),
        r.longest_request_ns as f64 / 1e6,
        r.longest_stall_ns as f64 / 1e6
    ));

    // The dump, started while the link flaps.
    let crash_ns = m.port.clock.now_ns();
    let mut m = machine
        .reboot(Env::Dump, Flavour::Storport, o.arch, None)
        .map_err(host("dump"))?;
    configure_image(&mut file, &target).map_err(BootError::Setup)?;
    m.load(&file).map_err(host("dump"))?;
    let before = m.port.world.fault_counts();
    // The cable is out as the dump stack starts, and flaps while it writes.
    m.port
        .world
        .flap(HOST, 150 * MS)
        .map_err(|e| BootError::Setup(format!("{e}")))?;
    m.driver_entry().map_err(host("dump"))?;
    m.start_adapter(dump_buffer).map_err(host("dump"))?;
    r.dump_region = u64::from(dump_buffer).next_multiple_of(4096);
    let adapter = m.port.adapter.unwrap_or_default();
    let breaks = u64::from(adapter.physical_breaks.clamp(1, 64));
    let xfer = u64::from(adapter.max_transfer.clamp(4096, 256 << 10)).min(breaks * 4096);
    let dump_bytes = 8u64 << 20;
    let dump_lba = area_lba - dump_bytes / 512;
    let data_pa = m.alloc_ram(dump_bytes).map_err(host("dump"))?;
    let data: Vec<u8> = (0..dump_bytes / 8)
        .flat_map(|_| rng.next().to_le_bytes())
        .collect();
    m.ram()
        .write(ram_off(data_pa), &data)
        .map_err(|e| BootError::Setup(format!("{e:?}")))?;
    let mut at = 0u64;
    let mut flaps_left = o.dump_flaps;
    while at < dump_bytes {
        let len = xfer.min(dump_bytes - at);
        // The cable goes while this write is on the wire (the polled SRB is posted
        // within microseconds of its start).
        if flaps_left > 0 {
            flaps_left -= 1;
            let when = m.port.clock.now_ns() + 20_000 + rng.below(200_000);
            let down = (1 + rng.below(100)) * MS;
            m.port
                .world
                .schedule_flap(when, HOST, down)
                .map_err(|e| BootError::Setup(format!("{e}")))?;
        }
        let pages = pages_of(data_pa + at, len);
        let c = m
            .execute(SrbRequest {
                cdb: rw16(0x8A, dump_lba + at / 512, (len / 512) as u32),
                lun: 0,
                dir: Dir::Out,
                pages,
                mapped: false,
            })
            .map_err(host("dump"))?;
        if c.srb_status & 0x3F != SRB_SUCCESS {
            return Err(BootError::Srb {
                phase: "dump",
                what: format!("dump WRITE(16) ended with SRB status {:#04x}", c.srb_status),
            });
        }
        if r.dump_first_write_ns == 0 {
            r.dump_first_write_ns = m.port.clock.now_ns() - crash_ns;
        }
        at += len;
    }
    disk_holds(&disk.0, dump_lba, &data, "the dump in memory", "dump")?;
    r.dump_bytes = dump_bytes;
    let after = m.port.world.fault_counts();
    r.dump_counts = FaultCounts {
        link_downs: after.link_downs - before.link_downs,
        link_ups: after.link_ups - before.link_ups,
        ..FaultCounts::default()
    };
    r.violations.extend(take_violations(&m));
    count_events(&m, r);
    r.virtual_ns = m.port.clock.now_ns() - t0;
    say(&format!(
        "faults: the dump instance came up through {} link flaps and wrote {} MiB, verified; first dump write {:.1} ms after the crash",
        r.dump_counts.link_downs,
        dump_bytes >> 20,
        r.dump_first_write_ns as f64 / 1e6
    ));
    if !r.violations.is_empty() {
        return Err(BootError::Data {
            phase: P,
            what: format!(
                "{} policing violation(s): {:?}",
                r.violations.len(),
                r.violations
            ),
        });
    }
    Ok(())
}

fn submit(m: &mut Machine, lba: u64, write: bool, page: u64) -> u64 {
    m.submit(SrbRequest {
        cdb: rw16(if write { 0x8A } else { 0x88 }, lba, 8),
        lun: 0,
        dir: if write { Dir::Out } else { Dir::In },
        pages: vec![(page, 4096)],
        mapped: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(plan: &[(u64, Fault)]) -> [usize; 8] {
        let mut k = [0usize; 8];
        for (_, f) in plan {
            let i = match f {
                Fault::LinkFlap { .. } => 0,
                Fault::TargetRestart { .. } => 1,
                Fault::LidChange { .. } => 2,
                Fault::QpError => 3,
                Fault::SaBusy { .. } => 4,
                Fault::Dreq => 5,
                Fault::TLogout => 6,
                Fault::Stale { .. } => 7,
            };
            k[i] += 1;
        }
        k
    }

    #[test]
    fn the_schedule_has_every_fault_asked_for_inside_the_window_and_follows_the_seed() {
        let o = FaultOptions::new(PathBuf::new(), SmChoice::Builtin, 7);
        let start = 5 * MS;
        let plan = schedule(&o, &mut Rng::new(7), start);
        assert_eq!(kinds(&plan), [50, 5, 3, 6, 4, 3, 3, 1]);
        assert!(plan.windows(2).all(|w| w[0].0 <= w[1].0), "sorted");
        assert!(
            plan.iter()
                .all(|(t, _)| *t >= start + 1_000 * MS && *t < start + o.window_ns),
            "inside the window, after the first second"
        );
        for (_, f) in &plan {
            match *f {
                Fault::LinkFlap { down_ns } => assert!((MS..=300 * MS).contains(&down_ns)),
                Fault::TargetRestart { down_ns } => {
                    assert!((200 * MS..1_500 * MS).contains(&down_ns))
                }
                Fault::SaBusy { busy_ns, .. } => assert!((50 * MS..500 * MS).contains(&busy_ns)),
                _ => {}
            }
        }
        let again = schedule(&o, &mut Rng::new(7), start);
        assert_eq!(plan, again, "the same seed, the same campaign");
        let other = schedule(&o, &mut Rng::new(8), start);
        assert_ne!(plan, other, "another seed, another campaign");
    }
}
