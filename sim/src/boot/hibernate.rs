//! The hibernate-then-resume cycle of the boot demo, between phase 2 and the crash
//! (see [`crate::host::port::Sleeping`] for what the emulator plays):
//!
//! 1. The hibernation stack's `DUMP_MODE_MARK_MEMORY` pass runs beside the live kernel
//!    instance: it must not touch the device (no register access, no reset), and the
//!    kernel instance must still read afterwards.
//! 2. Storport stops the kernel instance's adapter; the hibernation instance
//!    (`DUMP_MODE_HIBER`, the kernel instance's dump data, its own `DumpRegion`)
//!    resets the HCA, brings it up, logs in and writes the memory image — the kernel
//!    instance's own memory and every byte of RAM it uses, its DMA region included —
//!    polled, in the largest transfers it takes. The image on the disk is compared
//!    with memory byte for byte.
//! 3. The power goes off (the function loses its state, the link drops), memory is
//!    wiped, and the image is read back from the disk (the firmware's path, not this
//!    driver's) into place.
//! 4. Storport resumes the kernel instance: `ScsiSetRunningConfig`, then
//!    `ScsiRestartAdapter`; the driver brings the HCA up in its restored DMA region and
//!    logs in again by itself. Random reads of the paging area must return the disk's
//!    bytes, and writes must reach the disk.

use super::*;
use crate::host::port::{Piece, Place};

/// Phase name in errors.
const P: &str = "hibernate";
/// How long the machine stays off.
const OFF_NS: u64 = 5_000_000_000;
/// Random 4 KiB requests after the resume.
const AFTER_RESUME: usize = 256;

/// Where the hibernation file goes: just below phase 3's dump area.
fn hiberfile_lba(blocks: u64, image_bytes: u64) -> Result<u64, BootError> {
    let (area_lba, _) = paging_area(blocks);
    let below = area_lba
        .checked_sub(DUMP_BYTES / 512)
        .and_then(|l| l.checked_sub(image_bytes.div_ceil(512)));
    below.ok_or_else(|| BootError::Setup("the disk is too small for a hibernation file".into()))
}

/// Runs the cycle on the kernel machine (nothing in flight) and returns it resumed,
/// with the hibernation instance's figures in `hib` and the resumed kernel's in `res`.
#[allow(clippy::too_many_arguments)]
pub(super) fn cycle(
    m: Machine,
    image: &[u8],
    dump_buffer: u32,
    blocks: u64,
    disk: &Path,
    seed: u64,
    hib: &mut PhaseReport,
    res: &mut PhaseReport,
    say: &mut impl FnMut(&str),
) -> Result<Machine, BootError> {
    let wall = Instant::now();
    let mut m = m;
    mark_memory(&mut m, image, blocks, disk, say)?;

    // 2. Stop, and the hibernation instance.
    let stopped_ns = m.port.clock.now_ns();
    let (mut h, mut sleeping) = m.hibernate().map_err(host(P))?;
    h.load(image).map_err(host(P))?;
    h.driver_entry().map_err(host(P))?;
    h.start_adapter(dump_buffer).map_err(host(P))?;
    hib.init_instructions = h.port.figures.instructions;
    say(&format!(
        "hibernate: adapter stopped; the hibernation instance is ready {:.1} ms later",
        (h.port.clock.now_ns() - stopped_ns) as f64 / 1e6
    ));
    let memory = sleeping.memory_image().map_err(host(P))?;
    let total: u64 = memory.iter().map(|p| p.bytes.len() as u64).sum();
    let lba = hiberfile_lba(blocks, total)?;
    let start = figures_start(&mut h);
    write_image(&mut h, &memory, lba, stopped_ns, hib)?;
    per_srb(hib, &h, start);
    let flat: Vec<u8> = memory
        .iter()
        .flat_map(|p| p.bytes.iter().copied())
        .collect();
    disk_holds(disk, lba, &flat, "the memory image", P)?;
    say(&format!(
        "hibernate: {} KiB memory image ({} KiB of RAM in use, the kernel instance's own \
         memory) written polled in {} SRBs and verified on the disk; first write {:.1} ms \
         after the stop",
        total >> 10,
        sleeping.ram_in_use() >> 10,
        h.port.figures.srbs - start.3,
        hib.first_sector_ns as f64 / 1e6
    ));
    finish(hib, &h, stopped_ns, wall);

    // 3. Power off; memory gone; the firmware reads the image back.
    h.power_cycle(OFF_NS).map_err(host(P))?;
    sleeping.wipe(0xDB).map_err(host(P))?;
    let restored = read_back(disk, lba, &memory)?;
    sleeping.restore(&restored).map_err(host(P))?;

    // 4. Resume.
    let resumed_ns = h.port.clock.now_ns();
    let asleep_instructions = sleeping.instructions();
    let (mut m, running, restarted) = h.resume(sleeping).map_err(host(P))?;
    if !running || !restarted {
        return Err(BootError::Srb {
            phase: P,
            what: format!(
                "power-up refused (ScsiSetRunningConfig {running}, ScsiRestartAdapter \
                 {restarted}); event log: {:?}",
                m.port.log
            ),
        });
    }
    after_resume(
        &mut m,
        blocks,
        disk,
        seed,
        resumed_ns,
        asleep_instructions,
        res,
    )?;
    say(&format!(
        "resume: ScsiSetRunningConfig + ScsiRestartAdapter; first request done {:.1} ms \
         after the power came back; {AFTER_RESUME} random requests verified",
        res.first_sector_ns as f64 / 1e6
    ));
    res.violations.extend(take_violations(&m));
    Ok(m)
}

/// Step 1: the mark-memory pass touches nothing of the live device.
fn mark_memory(
    m: &mut Machine,
    image: &[u8],
    blocks: u64,
    disk: &Path,
    say: &mut impl FnMut(&str),
) -> Result<(), BootError> {
    let (mmio, resets) = (m.port.dev.mmio_counts(), m.port.dev.resets());
    let found = m.mark_memory_pass(image).map_err(host(P))?;
    let (after, resets_after) = (m.port.dev.mmio_counts(), m.port.dev.resets());
    if after.reads != mmio.reads || after.writes != mmio.writes || resets_after != resets {
        return Err(BootError::Data {
            phase: P,
            what: format!(
                "the DUMP_MODE_MARK_MEMORY instance touched the live device ({} reads, {} \
                 writes, {} resets)",
                after.reads - mmio.reads,
                after.writes - mmio.writes,
                resets_after - resets
            ),
        });
    }
    // The kernel instance still reads.
    let (area_lba, _) = paging_area(blocks);
    let page = m.alloc_ram(4096).map_err(host(P))?;
    let id = m.submit(SrbRequest {
        cdb: rw16(0x88, area_lba, 8),
        lun: 0,
        dir: Dir::In,
        pages: vec![(page, 4096)],
        mapped: false,
    });
    let c = wait_for(m, id)?;
    scsi_ok(&c, "READ(16) after the mark-memory pass", P)?;
    let mut want = vec![0u8; 4096];
    read_disk(&mut open_disk(disk)?, area_lba, &mut want)?;
    page_holds(m, page, &want, area_lba, P)?;
    say(&format!(
        "hibernate: the DUMP_MODE_MARK_MEMORY pass found the adapter ({found}) without \
         touching it; the kernel instance still reads"
    ));
    Ok(())
}

/// Writes the memory image from `lba` through the hibernation instance, polled: RAM
/// from where it lies, the kernel instance's own memory from a staging copy in RAM
/// (as the hibernation engine copies what is not plain RAM), never touched by the CPU
/// of the driver.
fn write_image(
    h: &mut Machine,
    memory: &[Piece],
    lba: u64,
    stopped_ns: u64,
    r: &mut PhaseReport,
) -> Result<(), BootError> {
    let adapter = h.port.adapter.unwrap_or_default();
    let breaks = u64::from(adapter.physical_breaks.clamp(1, 256));
    let xfer = u64::from(adapter.max_transfer.clamp(4096, 1 << 20)).min(breaks * 4096);
    let mut at = 0u64;
    for p in memory {
        let len = p.bytes.len() as u64;
        let pa = match p.place {
            Place::Ram(pa) => pa,
            Place::Guest(_) => {
                let pa = h.alloc_ram(len).map_err(host(P))?;
                h.ram()
                    .write(ram_off(pa), &p.bytes)
                    .map_err(|e| BootError::Setup(format!("{e:?}")))?;
                pa
            }
        };
        let mut done = 0u64;
        while done < len {
            let n = xfer.min(len - done);
            if !(at + done).is_multiple_of(512) || !n.is_multiple_of(512) {
                return Err(BootError::Setup(
                    "memory image pieces are not whole sectors".into(),
                ));
            }
            let c = h
                .execute(SrbRequest {
                    cdb: rw16(0x8A, lba + (at + done) / 512, (n / 512) as u32),
                    lun: 0,
                    dir: Dir::Out,
                    pages: pages_of(pa + done, n),
                    mapped: false,
                })
                .map_err(host(P))?;
            scsi_ok(&c, "hibernation WRITE(16)", P)?;
            if r.first_sector_ns == 0 {
                r.first_sector_ns = h.port.clock.now_ns() - stopped_ns;
            }
            done += n;
        }
        at += len;
    }
    Ok(())
}

/// The memory image as the disk holds it, cut into the pieces it was written from.
fn read_back(disk: &Path, lba: u64, memory: &[Piece]) -> Result<Vec<Piece>, BootError> {
    let total: usize = memory.iter().map(|p| p.bytes.len()).sum();
    let mut all = vec![0u8; total];
    read_disk(&mut open_disk(disk)?, lba, &mut all)?;
    let mut at = 0;
    Ok(memory
        .iter()
        .map(|p| {
            let bytes = all[at..at + p.bytes.len()].to_vec();
            at += p.bytes.len();
            Piece {
                place: p.place,
                bytes,
            }
        })
        .collect())
}

/// Pumps the kernel machine until request `id` completes (the driver answers BUSY
/// until it is logged in again; storport retries).
fn wait_for(m: &mut Machine, id: u64) -> Result<Completed, BootError> {
    m.pump(
        120_000_000_000,
        |p| p.completed.iter().any(|c| c.id == id),
        32,
    )
    .map_err(host(P))?;
    let i = m
        .port
        .completed
        .iter()
        .position(|c| c.id == id)
        .ok_or_else(|| BootError::Srb {
            phase: P,
            what: format!("no completion in 120 s; event log: {:?}", m.port.log),
        })?;
    Ok(m.port.completed.remove(i))
}

/// Step 4's check: random 4 KiB reads of the paging area return the disk's bytes, a
/// third of the requests write first and read back.
fn after_resume(
    m: &mut Machine,
    blocks: u64,
    disk: &Path,
    seed: u64,
    resumed_ns: u64,
    asleep_instructions: u64,
    r: &mut PhaseReport,
) -> Result<(), BootError> {
    let (area_lba, area) = paging_area(blocks);
    let f0 = m.port.figures;
    let page = m.alloc_ram(4096).map_err(host(P))?;
    let start = figures_start(m);
    let mut rng = Rng::new(seed ^ 0x5EE9);
    for i in 0..AFTER_RESUME {
        let lba = area_lba + rng.below(area / 8) * 8;
        if i % 3 == 0 {
            let data: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
            m.ram()
                .write(ram_off(page), &data)
                .map_err(|e| BootError::Setup(format!("{e:?}")))?;
            let id = m.submit(SrbRequest {
                cdb: rw16(0x8A, lba, 8),
                lun: 0,
                dir: Dir::Out,
                pages: vec![(page, 4096)],
                mapped: false,
            });
            let c = wait_for(m, id)?;
            scsi_ok(&c, "WRITE(16) after resume", P)?;
            disk_holds(disk, lba, &data, "the page written after resume", P)?;
        }
        let id = m.submit(SrbRequest {
            cdb: rw16(0x88, lba, 8),
            lun: 0,
            dir: Dir::In,
            pages: vec![(page, 4096)],
            mapped: false,
        });
        let c = wait_for(m, id)?;
        scsi_ok(&c, "READ(16) after resume", P)?;
        if r.first_sector_ns == 0 {
            r.first_sector_ns = m.port.clock.now_ns() - resumed_ns;
            // The power-up's control calls and the reconnect, to the first completion.
            r.init_instructions = m.port.figures.instructions - asleep_instructions;
        }
        let mut want = vec![0u8; 4096];
        read_disk(&mut open_disk(disk)?, lba, &mut want)?;
        page_holds(m, page, &want, lba, P)?;
    }
    per_srb(r, m, start);
    let f = &m.port.figures;
    r.srbs = f.srbs - f0.srbs;
    r.bytes = f.bytes - f0.bytes;
    r.interrupts = f.interrupts - f0.interrupts;
    r.timer_calls = f.timer_calls - f0.timer_calls;
    r.dpcs = f.dpcs - f0.dpcs;
    r.busy_requeues = f.busy_requeues - f0.busy_requeues;
    r.stack_high_water = f.stack_high_water;
    r.virtual_ns = m.port.clock.now_ns() - resumed_ns;
    Ok(())
}
