//! Power: the adapter-control cycle storport runs around sleep and hibernation
//! (`HwAdapterControl`, reference/windows-side.md §3.6), and hibernation itself.
//!
//! Hibernation, as the emulator plays it:
//!
//! 1. [`Machine::hibernate`]: storport stops the kernel instance's adapter
//!    (`ScsiStopAdapter`: the device goes to D3) and the hibernation stack loads the
//!    same image again with `DumpMode` = `DUMP_MODE_HIBER`, a `DumpRegion` and the
//!    normal instance's dump data, on the same machine: the kernel instance's CPU,
//!    device extension and RAM stay as they are ([`Sleeping`]), beside it.
//! 2. The caller writes the memory image ([`Sleeping::memory_image`]: the kernel
//!    instance's own memory and the RAM in use) through the hibernation instance,
//!    polled, then [`Machine::power_cycle`] takes the power away (the function loses
//!    its state, the link drops) and gives it back.
//! 3. The firmware's boot path reads the image back (not through this driver) and
//!    the caller restores it ([`Sleeping::restore`], after [`Sleeping::wipe`] made
//!    sure nothing survives by accident).
//! 4. [`Machine::resume`]: the kernel instance runs again, and storport powers its
//!    adapter up: `ScsiSetRunningConfig` (PASSIVE; configuration space may be written)
//!    then `ScsiRestartAdapter` (DIRQL), when the driver supports them.

use super::*;

/// `SCSI_ADAPTER_CONTROL_TYPE` (srb.h): asks which types the miniport supports.
pub const SCSI_QUERY_SUPPORTED_CONTROL_TYPES: u32 = 0;
/// `ScsiStopAdapter`.
pub const SCSI_STOP_ADAPTER: u32 = 1;
/// `ScsiRestartAdapter`.
pub const SCSI_RESTART_ADAPTER: u32 = 2;
/// `ScsiSetRunningConfig`.
pub const SCSI_SET_RUNNING_CONFIG: u32 = 4;
/// `ScsiAdapterControlSuccess`.
const SCSI_ADAPTER_CONTROL_SUCCESS: u64 = 0;
/// Entries of the list the query passes: more than any `srb.h` defines.
const CONTROL_TYPES: u32 = 16;
/// `DUMP_MODE_HIBER`.
const DUMP_MODE_HIBER: u8 = 2;
/// `DUMP_MODE_MARK_MEMORY`.
const DUMP_MODE_MARK_MEMORY: u8 = 3;
/// The host's channel adapter in the world.
const HOST_CA: usize = 0;

/// The routine name a control type runs under (for the port's rules on what each may
/// call, and for the figures).
fn entry_name(control: u32) -> &'static str {
    match control {
        SCSI_QUERY_SUPPORTED_CONTROL_TYPES => "HwAdapterControl(ScsiQuerySupportedControlTypes)",
        SCSI_STOP_ADAPTER => "HwAdapterControl(ScsiStopAdapter)",
        SCSI_RESTART_ADAPTER => "HwAdapterControl(ScsiRestartAdapter)",
        SCSI_SET_RUNNING_CONFIG => "HwAdapterControl(ScsiSetRunningConfig)",
        _ => "HwAdapterControl",
    }
}

/// Whether configuration space may be read and written under `entry`: in
/// `HwFindAdapter` (both ports) and storport's `ScsiSetRunningConfig`.
pub(super) fn config_space_allowed(entry: &str) -> bool {
    entry == "HwFindAdapter" || entry == entry_name(SCSI_SET_RUNNING_CONFIG)
}

/// A kernel instance asleep while the hibernation instance runs: its CPU and port
/// state, as they were when storport stopped its adapter.
pub struct Sleeping {
    guest: Guest,
    port: Port,
}

impl std::fmt::Debug for Sleeping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sleeping")
            .field("port", &self.port)
            .finish()
    }
}

/// Where a piece of a memory image belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// The kernel instance's own memory (image, stack, port structures, device
    /// extension) at this guest address.
    Guest(u64),
    /// Machine RAM at this physical address.
    Ram(u64),
}

/// One piece of a memory image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub place: Place,
    pub bytes: Vec<u8>,
}

/// The kernel instance's memory that is not machine RAM and that a memory image
/// holds (the RAM-backed mappings, BAR0 and firmware windows are not its own).
const OWN_REGIONS: [&str; 4] = ["image", "stack", "port structures", "device extension"];

impl Sleeping {
    /// What a hibernation file holds: the kernel instance's own memory, region by
    /// region, and the machine RAM it has in use (from the bottom to the allocator's
    /// mark, in 1 MiB pieces).
    pub fn memory_image(&self) -> Result<Vec<Piece>, HostError> {
        let mut pieces = Vec::new();
        for r in self.guest.regions() {
            if OWN_REGIONS.contains(&r.name.as_str()) {
                let bytes = self
                    .guest
                    .read_vec(r.base, r.len as usize)
                    .map_err(guest_err)?;
                pieces.push(Piece {
                    place: Place::Guest(r.base),
                    bytes,
                });
            }
        }
        let used = self.port.phys_next;
        let mut at = 0;
        while at < used {
            let len = (used - at).min(1 << 20);
            let mut bytes = vec![0u8; len as usize];
            self.port
                .ram
                .region()
                .read(at as usize, &mut bytes)
                .map_err(|e| HostError::Contract(format!("RAM at {at:#x}: {e:?}")))?;
            pieces.push(Piece {
                place: Place::Ram(PHYS_BASE + at),
                bytes,
            });
            at += len;
        }
        Ok(pieces)
    }

    /// Overwrites everything [`Sleeping::memory_image`] covers with `pattern`, as a
    /// machine that was powered off holds nothing of it.
    pub fn wipe(&mut self, pattern: u8) -> Result<(), HostError> {
        let pieces = self.memory_image()?;
        let wiped: Vec<Piece> = pieces
            .into_iter()
            .map(|p| Piece {
                place: p.place,
                bytes: vec![pattern; p.bytes.len()],
            })
            .collect();
        self.restore(&wiped)
    }

    /// Puts a memory image back where it came from.
    pub fn restore(&mut self, pieces: &[Piece]) -> Result<(), HostError> {
        for p in pieces {
            match p.place {
                Place::Guest(va) => self.guest.write(va, &p.bytes).map_err(guest_err)?,
                Place::Ram(pa) => self
                    .port
                    .ram
                    .region()
                    .write((pa - PHYS_BASE) as usize, &p.bytes)
                    .map_err(|e| HostError::Contract(format!("RAM at {pa:#x}: {e:?}")))?,
            }
        }
        Ok(())
    }

    /// Instructions the kernel instance had executed in driver code when it went to
    /// sleep.
    pub fn instructions(&self) -> u64 {
        self.port.figures.instructions
    }

    /// Machine RAM the kernel instance has in use (bytes from [`PHYS_BASE`]).
    pub fn ram_in_use(&self) -> u64 {
        self.port.phys_next
    }
}

impl Machine {
    /// Storport's `ScsiQuerySupportedControlTypes`: which control types the driver
    /// says it supports (index = type).
    pub fn supported_controls(&mut self) -> Result<Vec<bool>, HostError> {
        let hw = self.adapter_routines()?;
        let list = self
            .port
            .heap_alloc(&mut self.guest, 8 + u64::from(CONTROL_TYPES))?;
        self.guest
            .write(list, &CONTROL_TYPES.to_le_bytes())
            .map_err(guest_err)?;
        let status = self.top_call(
            entry_name(SCSI_QUERY_SUPPORTED_CONTROL_TYPES),
            hw.adapter_control,
            &[
                Arg::Ptr(self.port.devext),
                Arg::U32(SCSI_QUERY_SUPPORTED_CONTROL_TYPES),
                Arg::Ptr(list),
            ],
        )? & 0xFFFF_FFFF;
        if status != SCSI_ADAPTER_CONTROL_SUCCESS {
            return Err(HostError::Contract(format!(
                "ScsiQuerySupportedControlTypes failed ({status:#x})"
            )));
        }
        let flags = self
            .guest
            .read_vec(list + 4, CONTROL_TYPES as usize)
            .map_err(guest_err)?;
        Ok(flags.iter().map(|&b| b != 0).collect())
    }

    /// `HwAdapterControl(control)` as storport calls it; whether it succeeded.
    pub fn adapter_control(&mut self, control: u32) -> Result<bool, HostError> {
        let hw = self.adapter_routines()?;
        let status = self.top_call(
            entry_name(control),
            hw.adapter_control,
            &[Arg::Ptr(self.port.devext), Arg::U32(control), Arg::Ptr(0)],
        )? & 0xFFFF_FFFF;
        Ok(status == SCSI_ADAPTER_CONTROL_SUCCESS)
    }

    fn adapter_routines(&self) -> Result<HwInit, HostError> {
        let hw = self
            .port
            .hw
            .ok_or_else(|| HostError::Contract("no adapter".into()))?;
        if hw.adapter_control == 0 {
            return Err(HostError::Contract("no HwAdapterControl".into()));
        }
        Ok(hw)
    }

    /// Hibernation, storport's side (module documentation, step 1): with nothing in
    /// flight, the kernel instance's adapter is stopped (`ScsiStopAdapter`, which the
    /// driver must support: a stop storport cannot make leaves the device running
    /// into memory that is being saved) and a machine is returned for the hibernation
    /// instance (environment Dump, `DUMP_MODE_HIBER`, the kernel instance's dump data),
    /// with the kernel instance asleep beside it. Load the image into it and start
    /// its adapter as for a crash dump.
    pub fn hibernate(mut self) -> Result<(Machine, Sleeping), HostError> {
        if self.port.env != Env::Kernel || self.port.flavour != Flavour::Storport {
            return Err(HostError::Contract(
                "hibernation is storport's, from the kernel".into(),
            ));
        }
        if self.outstanding() > 0 {
            return Err(HostError::Contract(format!(
                "{} requests outstanding: storport drains the adapter before it powers down",
                self.outstanding()
            )));
        }
        let supported = self.supported_controls()?;
        if !supported
            .get(SCSI_STOP_ADAPTER as usize)
            .copied()
            .unwrap_or(false)
        {
            return Err(HostError::Contract(
                "the driver cannot stop its adapter for a power-down".into(),
            ));
        }
        if !self.adapter_control(SCSI_STOP_ADAPTER)? {
            return Err(HostError::Contract("ScsiStopAdapter failed".into()));
        }
        // Storport's timer and interrupts stop with the adapter.
        self.port.timer = None;
        self.port.pending_msix.clear();
        let _ = self.port.dev.take_msix();
        let m = self.instance_beside(DUMP_MODE_HIBER)?;
        Ok((
            m,
            Sleeping {
                guest: self.guest,
                port: self.port,
            },
        ))
    }

    /// The hibernation stack's `DUMP_MODE_MARK_MEMORY` pass, which Windows runs while
    /// the kernel instance still drives the adapter: the image is loaded again on a
    /// scratch CPU beside the kernel instance and `DriverEntry` and `HwFindAdapter`
    /// run (and `HwInitialize`, should the driver report the adapter found). Returns
    /// whether it was found. The kernel instance is unaffected unless the driver
    /// touched the device; the caller checks that it did not.
    pub fn mark_memory_pass(&mut self, image: &[u8]) -> Result<bool, HostError> {
        let mut scratch = self.instance_beside(DUMP_MODE_MARK_MEMORY)?;
        let result = (|| {
            scratch.load(image)?;
            scratch.driver_entry()?;
            scratch
                .start_adapter(0)
                .map(|()| true)
                .or_else(|e| match e {
                    HostError::Contract(_) if scratch.port.find_status != Some(SP_RETURN_FOUND) => {
                        Ok(false)
                    }
                    e => Err(e),
                })
        })();
        // The world comes back whatever happened; what the pass breached is the
        // kernel's to report.
        let Port {
            world,
            breaches,
            log,
            ..
        } = scratch.port;
        self.port.world = world;
        self.port.breaches.extend(
            breaches
                .into_iter()
                .map(|b| format!("mark-memory pass: {b}")),
        );
        self.port.log.extend(log);
        result
    }

    /// A dump-environment machine for another instance of the driver (`dump_mode`)
    /// beside this one, on the same machine: the world moves to it (this machine keeps
    /// an empty one until it is given back), the device, RAM, allocator mark and
    /// firmware memory are shared, and this instance's dump data is handed over.
    fn instance_beside(&mut self, dump_mode: u8) -> Result<Machine, HostError> {
        let handed_over = self.port.handed_over_snapshot(&self.guest)?;
        let clock = self.port.clock.clone();
        let world = std::mem::replace(
            &mut self.port.world,
            World::new(
                clock.clone(),
                crate::fabric::FabricConfig::default(),
                Vec::new(),
                crate::world::Manager::default(),
            ),
        );
        let mut m = Machine::new(MachineParts {
            arch: self.port.arch,
            flavour: Flavour::Storport,
            env: Env::Dump,
            world,
            clock,
            dev: self.port.dev.clone(),
            ram: self.port.ram.clone(),
            driver_parameter: None,
        })?;
        m.port.dump_mode = dump_mode;
        m.port.phys_next = self.port.phys_next;
        m.port.firmware = self.port.firmware.clone();
        if let Some(h) = handed_over {
            m.map_handed_over(h)?;
        }
        Ok(m)
    }

    /// Takes the machine's power away for `off_ns` and gives it back: the function
    /// returns to its power-on state (as after a function-level reset) and its link
    /// drops until the power is back.
    pub fn power_cycle(&mut self, off_ns: u64) -> Result<(), HostError> {
        let link = |e: crate::world::FaultError| HostError::Contract(format!("power: {e:?}"));
        self.port.world.set_link(HOST_CA, false).map_err(link)?;
        self.port.dev.function_level_reset();
        self.port.world.run_for(off_ns);
        self.port.world.set_link(HOST_CA, true).map_err(link)?;
        Ok(())
    }

    /// Resume (module documentation, step 4): the kernel instance runs again on this
    /// machine's world, and storport powers its adapter up: `ScsiSetRunningConfig`,
    /// then `ScsiRestartAdapter` (a driver that supports neither would have storport
    /// run `HwFindAdapter` again, which this emulator does not model). Returns the
    /// kernel machine and whether each succeeded.
    pub fn resume(self, sleeping: Sleeping) -> Result<(Machine, bool, bool), HostError> {
        let Sleeping { guest, mut port } = sleeping;
        port.world = self.port.world;
        let mut m = Machine { guest, port };
        let supported = m.supported_controls()?;
        let has = |t: u32| supported.get(t as usize).copied().unwrap_or(false);
        if !has(SCSI_RESTART_ADAPTER) {
            return Err(HostError::Contract(
                "the driver cannot restart its adapter after a power-down".into(),
            ));
        }
        let running = if has(SCSI_SET_RUNNING_CONFIG) {
            m.adapter_control(SCSI_SET_RUNNING_CONFIG)?
        } else {
            true
        };
        let restarted = m.adapter_control(SCSI_RESTART_ADAPTER)?;
        m.run_deferred()?;
        Ok((m, running, restarted))
    }
}
