//! `fabboot-sim driver`: the driver's initiator linked natively, run against the world
//! ([`crate::world::rig`]), with the figures the project reports: the time and the
//! fabric round trips from port ACTIVE to the first READ, register accesses and CPU
//! copies per I/O, and IOPS and bandwidth in virtual time against the link rate of
//! the timing model. Every byte read is checked against the target's image.

use std::path::Path;

use fabboot::initiator::{Request, Segment, State};
use fabboot::port::abi::SRB_STATUS_SUCCESS;
use fabboot::srp::cmd::DataDir;

use crate::fabric::FabricConfig;
use crate::scenario::SmChoice;
use crate::world::rig::{Disk, Rig, RigConfig};

const S: u64 = 1_000_000_000;

/// What a run measured.
#[derive(Clone, Debug, Default)]
pub struct DriveReport {
    /// Virtual µs from power-on to port ACTIVE, login, and ready (LUNs known).
    pub active_us: u64,
    pub logged_in_us: u64,
    pub ready_us: u64,
    /// Virtual µs from port ACTIVE to the first 4 KiB READ completing.
    pub active_to_first_read_us: u64,
    /// MADs the driver sent and received from ACTIVE to ready (SA path, CM).
    pub mads_sent: u64,
    pub mads_received: u64,
    /// SRP IUs sent before the first READ (REPORT LUNS) and the READ itself.
    pub ius_to_first_read: u64,
    /// Random 4 KiB requests at queue depth 32.
    pub small_ios: u64,
    pub small_iops: f64,
    /// Register reads and writes per small I/O (whole run of small I/Os / count).
    pub mmio_reads_per_io: f64,
    pub mmio_writes_per_io: f64,
    /// SRP_CMD bytes the CPU wrote per small I/O (the only per-I/O copy; the data
    /// itself is never touched by the driver).
    pub iu_bytes_per_io: f64,
    /// 1 MiB sequential READs at queue depth 8.
    pub large_ios: u64,
    pub large_gbps: f64,
    /// The link's data rate in the timing model, Gb/s.
    pub link_gbps: f64,
    /// Largest request and scatter-gather count used.
    pub largest_transfer: u32,
    pub max_sg: usize,
    /// Packets written to the capture.
    pub captured: u64,
    /// Losses, malformed IUs, event-log entries (all expected 0).
    pub losses: u64,
    pub events: Vec<fabboot::event::Event>,
}

fn rw(op: u8, lba: u64, blocks: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = op;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&blocks.to_be_bytes());
    c
}

/// Runs `ios` in flight at `qd` of `blocks` blocks each, from `lba_of(i)`, checking
/// READs against the image; returns virtual ns taken.
fn run_ios(
    rig: &mut Rig,
    count: u64,
    qd: usize,
    blocks: u32,
    write_every: u64,
    mut lba_of: impl FnMut(u64) -> u64,
) -> Result<u64, String> {
    let len = blocks as usize * 512;
    let slot_bytes = len.next_multiple_of(4096);
    let start = rig.clock.now_ns();
    let mut slots: Vec<Option<(u64, bool)>> = vec![None; qd];
    let (mut issued, mut done) = (0u64, 0u64);
    let mut image = vec![0u8; len];
    let mut got = vec![0u8; len];
    while done < count {
        while issued < count {
            let Some(slot) = slots.iter().position(Option::is_none) else {
                break;
            };
            let lba = lba_of(issued);
            let write = write_every != 0 && issued % write_every == 0;
            let cdb = rw(if write { 0x8A } else { 0x88 }, lba, blocks);
            let req = Request {
                user: slot as u32,
                target: 0,
                lun: 0,
                cdb: &cdb,
                dir: if write { DataDir::Out } else { DataDir::In },
                transfer_len: len as u32,
            };
            let seg = [Segment {
                phys: rig.data_phys(slot * slot_bytes),
                len: len as u32,
            }];
            if rig.submit(&req, &seg).is_err() {
                break;
            }
            slots[slot] = Some((lba, write));
            issued += 1;
        }
        if !rig.run(10 * S, |_, p| !p.done.is_empty()) {
            return Err(format!("no completion in 10 s ({done} of {count} done)"));
        }
        for (user, o) in std::mem::take(&mut rig.port.done) {
            let (lba, write) = slots[user as usize]
                .take()
                .ok_or("a completion for no request")?;
            if o.srb_status != SRB_STATUS_SUCCESS {
                return Err(format!("request at LBA {lba} failed: {o:?}"));
            }
            rig.image_read(0, lba, &mut image);
            rig.read_data(user as usize * slot_bytes, &mut got);
            if image != got {
                return Err(format!(
                    "{} at LBA {lba}: host memory and image differ",
                    if write { "WRITE" } else { "READ" }
                ));
            }
            done += 1;
        }
    }
    Ok(rig.clock.now_ns() - start)
}

/// The run: login, first READ, `small` random 4 KiB requests (one WRITE in four) at
/// queue depth 32, `large` 1 MiB sequential READs at queue depth 8.
pub fn drive(
    sm: SmChoice,
    pcap: Option<&Path>,
    small: u64,
    large: u64,
) -> Result<DriveReport, String> {
    let disk_blocks = 1u64 << 20; // 512 MiB
    let mut rig = Rig::new(RigConfig {
        sm,
        disks: vec![Disk {
            block_size: crate::target::BlockSize::B512,
            blocks: disk_blocks,
        }],
        data_bytes: 32 << 20,
        ..RigConfig::default()
    });
    if let Some(p) = pcap {
        rig.world.capture_to(p).map_err(|e| e.to_string())?;
    }
    let mut r = DriveReport {
        link_gbps: {
            let f = FabricConfig::default();
            (f.speed.lane_mbps() * u64::from(f.width)) as f64 / 1000.0
        },
        ..DriveReport::default()
    };
    if rig.until_ready(60 * S) != State::Ready {
        return Err(format!(
            "not ready: {:?}, events {:?}",
            rig.init.fault(),
            rig.port.events
        ));
    }
    let st = rig.init.stats();
    let mads = rig.init.mad_stats();
    r.active_us = st.active_at_us.unwrap_or(0);
    r.logged_in_us = st.logged_in_at_us.unwrap_or(0);
    r.ready_us = st.ready_at_us.unwrap_or(0);
    r.mads_sent = mads.sent;
    r.mads_received = mads.received;
    run_ios(&mut rig, 1, 1, 8, 0, |_| 0)?;
    r.active_to_first_read_us = rig.now_us() - r.active_us;
    r.ius_to_first_read = rig.init.stats().commands;

    let mmio0 = rig.dev.mmio_counts();
    let iu0 = rig.init.stats().iu_bytes;
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let ns = run_ios(&mut rig, small, 32, 8, 4, |i| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Disjoint 4 KiB blocks per slot position so that no two in flight overlap.
        ((x >> 8) % (disk_blocks / 8 / 32)) * 8 * 32 + (i % 32) * 8
    })?;
    let mmio = rig.dev.mmio_counts();
    r.small_ios = small;
    r.small_iops = small as f64 / (ns as f64 / 1e9);
    r.mmio_reads_per_io = (mmio.reads - mmio0.reads) as f64 / small as f64;
    r.mmio_writes_per_io = (mmio.writes - mmio0.writes) as f64 / small as f64;
    r.iu_bytes_per_io = (rig.init.stats().iu_bytes - iu0) as f64 / small as f64;

    let ns = run_ios(&mut rig, large, 8, 2048, 0, |i| (i * 2048) % disk_blocks)?;
    r.large_ios = large;
    r.large_gbps = (large as f64 * (1u64 << 20) as f64 * 8.0) / ns as f64;
    r.largest_transfer = 1 << 20;
    r.max_sg = rig.init.max_sg();
    r.losses = rig.init.stats().losses + rig.init.stats().malformed;
    r.events = rig.port.events.clone();
    if pcap.is_some() {
        r.captured = rig.world.finish_capture().map_err(|e| e.to_string())?;
    }
    Ok(r)
}
