//! `DriverEntry` and the `Hw*` callbacks the port driver calls. Each turns the port's raw
//! pointers into safe values and hands the work to safe code ([`crate::bootcfg`],
//! [`crate::adapter`], [`crate::miniport`], [`super::config`]).
//!
//! The adapter's life:
//! - `HwFindAdapter`: configuration ([`crate::bootcfg::resolve`]: the dump data the
//!   normal instance handed over, an sBFT in firmware memory mapped with
//!   `*PortGetDeviceBase`, the `ArgumentString`, the embedded block; out of line, so the
//!   search's frame is gone before the bring-up) → the HCA function
//!   ([`adapter::find_adapter`]) → the DMA region (the uncached extension, or the dump
//!   stack's `DumpRegion`) → [`Initiator::start`] (bring-up) in the device extension.
//!   Storport's normal instance keeps the configuration it used in its device extension
//!   and hands it to the dump instance (`SRB_FUNCTION_DUMP_POINTERS`,
//!   [`crate::bootcfg::handover`]).
//!   Under scsiport (NTLDR polls, one SRB at a time, from right after `HwInitialize`)
//!   and in dump mode, it also waits, bounded, until the disk is usable
//!   ([`miniport::wait_until_ready`]). Under storport the connection is made in the
//!   background, driven by the port's timer and the interrupt routines.
//! - `HwStartIo`: one SRB to the initiator ([`miniport::start_io`]); completions come
//!   back through [`PortHost`] from any poll.
//! - `HwInterrupt`, `HwMSInterruptRoutine`, the timer: poll the initiator and ask for
//!   the timer again at its next deadline ([`miniport::Scheduler`]).

use core::cell::Cell;
use core::mem::{MaybeUninit, align_of, offset_of, size_of};
use core::ptr::{self, addr_of_mut};

use fabboot_hca::dma::DmaRegion;
use fabboot_hca::plan::PAGE;
use fabboot_hca::timer;

use super::abi::*;
use super::bar::MappedBar;
use super::imports::{self, FLAVOUR};
use super::{Flavour, cfgblock, config};
use crate::adapter::{self, PortServices};
use crate::bootcfg::{self, BootConfig, ConfigError, Source, handover};
use crate::event::Event;
use crate::initiator::{Config, Host, Initiator, Outcome, StartFault};
use crate::miniport::hal::{PortHal, Stall};
use crate::miniport::srb::{self, SrbFields};
use crate::miniport::table::SrbTable;
use crate::miniport::{self, Port, SRB_SLOTS, Scheduler, Started, TimerRequest};
use crate::pci;

/// The port's stall, for the access layer.
struct PortStall;

impl Stall for PortStall {
    fn stall_us(&self, us: u32) {
        imports::stall(us);
    }
}

/// The adapter's configuration space through the port, for a function-level reset.
/// Open only where the ports allow `*PortGetBusData` and `*PortSetBusDataByOffset`:
/// inside `HwFindAdapter` (both ports) and storport's `ScsiSetRunningConfig`
/// (windows-side.md §3.6; not `HwInitialize` or `ScsiRestartAdapter`). Closed, it
/// reads and writes nothing, so a reset asked for elsewhere fails cleanly
/// ([`pci::FlrError::NoConfigAccess`]) instead of breaking the port's rules.
struct PortConfig {
    extension: PVOID,
    bus: ULONG,
    slot: ULONG,
    open: Cell<bool>,
}

impl pci::ConfigAccess for PortConfig {
    /// `*PortGetBusData` reads from offset 0: the whole space, then the part asked for.
    fn read(&self, offset: usize, buf: &mut [u8]) -> usize {
        if !self.open.get() {
            return 0;
        }
        let mut space = [0u8; 256];
        // SAFETY: inside a routine where the port allows it (`open`), with the
        // extension the port passed.
        let n =
            unsafe { imports::read_pci_config(self.extension, self.bus, self.slot, &mut space) };
        match space.get(..n).and_then(|read| read.get(offset..)) {
            Some(part) => fabboot_hca::bytes::copy_prefix(buf, part),
            None => 0,
        }
    }

    fn write(&self, offset: usize, data: &[u8]) -> usize {
        if !self.open.get() {
            return 0;
        }
        // SAFETY: as for `read`.
        unsafe { imports::write_pci_config(self.extension, self.bus, self.slot, offset, data) }
    }
}

/// The access layer's platform in the images.
type ImageHal = PortHal<MappedBar, PortStall, PortConfig>;

/// The miniport's per-adapter state, kept in the port's device extension. Written by
/// `HwFindAdapter` before it returns `SP_RETURN_FOUND`; the port calls no other routine
/// for an adapter before that. The port serialises every routine that touches it
/// (scsiport by its interrupt lock; storport by running the miniport half duplex,
/// [`config::describe_adapter`]); `HwBuildIo`, which runs beside them, does not.
struct DeviceExtension {
    /// The hibernation stack's `DUMP_MODE_MARK_MEMORY` instance: it runs while the
    /// normal instance drives the HCA, so it touches no hardware at all.
    inert: bool,
    /// Whether the port's timer drives the initiator (everywhere but the dump stack,
    /// which has no timer; NTLDR ignores the request and polls `HwInterrupt`).
    timers: bool,
    /// Whether the HCA's completion interrupts are armed after each poll: storport's
    /// kernel instance only (message-signalled; NTLDR, the dump stack and scsiport take
    /// no message, and a polled driver arms nothing).
    interrupts: bool,
    /// SRBs in flight, by the initiator's handle.
    srbs: SrbTable<*mut SCSI_REQUEST_BLOCK, SRB_SLOTS>,
    /// The port's one timer.
    scheduler: Scheduler,
    /// Whether `initiator` holds a started initiator.
    started: bool,
    /// The configuration this instance connects with, for the dump instance (storport's
    /// normal instance only; `None` elsewhere). `SRB_FUNCTION_DUMP_POINTERS` hands out
    /// its address: it lives as long as the adapter, in non-paged memory.
    handover: Option<[u8; handover::LEN]>,
    /// The initiator, once started (it owns the HCA's BAR and the DMA region).
    initiator: MaybeUninit<Initiator<ImageHal>>,
}

/// The members of [`DeviceExtension`] a callback works with.
struct Parts<'a> {
    timers: bool,
    interrupts: bool,
    srbs: &'a mut SrbTable<*mut SCSI_REQUEST_BLOCK, SRB_SLOTS>,
    scheduler: &'a mut Scheduler,
    initiator: Option<&'a mut Initiator<ImageHal>>,
}

impl DeviceExtension {
    fn parts(&mut self) -> Parts<'_> {
        let initiator = if self.started {
            // SAFETY: `started` is set only after HwFindAdapter wrote the initiator.
            Some(unsafe { self.initiator.assume_init_mut() })
        } else {
            None
        };
        Parts {
            timers: self.timers,
            interrupts: self.interrupts,
            srbs: &mut self.srbs,
            scheduler: &mut self.scheduler,
            initiator,
        }
    }
}

// Port drivers allocate extensions from non-paged pool, 8-byte aligned at least.
static_assertions::const_assert!(align_of::<DeviceExtension>() <= 8);

/// Strings `HW_INITIALIZATION_DATA` points at: they must outlive the driver.
static VENDOR_ID: [u8; 4] = pci::VENDOR_ID_STRING;
static DEVICE_IDS: [[u8; 4]; pci::DEVICE_IDS.len()] = pci::DEVICE_ID_STRINGS;

/// Most access ranges `HwFindAdapter` looks at (we ask for one: BAR0).
const MAX_RANGES: usize = 4;

/// Longest `ArgumentString` read (a longer one is cut here).
const MAX_ARGUMENT_LEN: usize = 512;

/// Bytes of DMA memory asked of the port: the initiator's region, and a page to align
/// it (the dump stack's region and some uncached extensions are not page aligned).
const DMA_ASK: usize = Initiator::<ImageHal>::region_len() + PAGE;

fn hw_initialization_data(device_id: Option<&'static [u8; 4]>) -> HW_INITIALIZATION_DATA {
    let mut d = HW_INITIALIZATION_DATA::zeroed();
    d.HwInitializationDataSize = match FLAVOUR {
        Flavour::Scsiport => SCSIPORT_HW_INITIALIZATION_DATA_SIZE,
        Flavour::Storport => size_of::<HW_INITIALIZATION_DATA>(),
    } as ULONG;
    d.AdapterInterfaceType = PCIBus;
    d.HwInitialize = Some(hw_initialize);
    d.HwStartIo = Some(hw_start_io);
    d.HwInterrupt = Some(hw_interrupt);
    d.HwFindAdapter = Some(hw_find_adapter);
    d.HwResetBus = Some(hw_reset_bus);
    d.HwAdapterControl = Some(hw_adapter_control);
    d.DeviceExtensionSize = size_of::<DeviceExtension>() as ULONG;
    d.NumberOfAccessRanges = 1;
    d.NeedPhysicalAddresses = 1;
    d.TaggedQueuing = 1;
    d.AutoRequestSense = 1;
    d.MultipleRequestPerLu = 1;
    d.VendorId = VENDOR_ID.as_ptr().cast_mut().cast();
    d.VendorIdLength = VENDOR_ID.len() as USHORT;
    if let Some(id) = device_id {
        d.DeviceId = id.as_ptr().cast_mut().cast();
        d.DeviceIdLength = id.len() as USHORT;
    }
    if FLAVOUR == Flavour::Storport {
        d.HwBuildIo = Some(hw_build_io);
        d.MapBuffers = STOR_MAP_NON_READ_WRITE_BUFFERS;
        d.SrbTypeFlags = SRB_TYPE_FLAG_SCSI_REQUEST_BLOCK;
        // The normal instance answers SRB_FUNCTION_DUMP_POINTERS with its hand-over
        // (a storport older than Windows 8 takes the legacy size and never reads this).
        d.FeatureSupport = STOR_FEATURE_DUMP_POINTERS;
    }
    d
}

/// The image's entry point. Scsiport (and NTLDR's emulation of it) finds adapters by
/// vendor and device ID strings, so it is called once per supported device ID and the
/// lowest status is returned (the DDK's convention for multi-ID miniports). Storport
/// binds through PnP (the INF's hardware IDs), so one call suffices; a storport older
/// than Windows 8 that refuses the newer structure's size gets the older size.
#[unsafe(export_name = "DriverEntry")]
pub unsafe extern "system" fn driver_entry(driver_object: PVOID, registry_path: PVOID) -> ULONG {
    match FLAVOUR {
        Flavour::Scsiport => {
            let mut lowest = ULONG::MAX;
            for id in &DEVICE_IDS {
                let mut init = hw_initialization_data(Some(id));
                // SAFETY: called from DriverEntry with the system's own arguments.
                let status =
                    unsafe { imports::initialize(driver_object, registry_path, &mut init) };
                lowest = lowest.min(status);
            }
            lowest
        }
        Flavour::Storport => {
            let mut init = hw_initialization_data(None);
            // SAFETY: called from DriverEntry with the system's own arguments.
            let status = unsafe { imports::initialize(driver_object, registry_path, &mut init) };
            if status != STATUS_REVISION_MISMATCH {
                return status;
            }
            init.HwInitializationDataSize = STORPORT_LEGACY_HW_INITIALIZATION_DATA_SIZE as ULONG;
            // SAFETY: as above.
            unsafe { imports::initialize(driver_object, registry_path, &mut init) }
        }
    }
}

/// The port's services during `HwFindAdapter`.
struct Services {
    extension: PVOID,
    bus_type: INTERFACE_TYPE,
    bus: ULONG,
    slot: ULONG,
}

impl PortServices for Services {
    type Bar = MappedBar;

    fn read_pci_config(&mut self, buf: &mut [u8]) -> usize {
        // SAFETY: inside HwFindAdapter, with the extension the port passed.
        unsafe { imports::read_pci_config(self.extension, self.bus, self.slot, buf) }
    }

    fn map_memory(&mut self, start: u64, len: u32) -> Option<MappedBar> {
        let start = PHYSICAL_ADDRESS::try_from(start).ok()?;
        // SAFETY: inside HwFindAdapter; `start`/`len` is an access range the port gave us.
        let base =
            unsafe { imports::map_memory(self.extension, self.bus_type, self.bus, start, len) };
        // SAFETY: the port mapped `len` bytes of device memory at `base` (or returned
        // null); the mapping stays valid until unmapped and only the adapter uses it.
        unsafe { MappedBar::new(base, usize::try_from(len).ok()?) }
    }

    fn unmap(&mut self, bar: MappedBar) {
        // SAFETY: `bar` came from map_memory for this adapter and is consumed here.
        unsafe { imports::unmap(self.extension, bar.base()) }
    }

    fn log(&mut self, event: Event) {
        log(self.extension, event);
    }
}

fn log(extension: PVOID, event: Event) {
    // SAFETY: `extension` is the adapter's device extension, passed to the callback
    // that calls this.
    unsafe { imports::log_error(extension, event.error_code(), event.unique_id()) }
}

/// The port as the initiator's host: completions go back to their SRBs, events to the
/// event log.
struct PortHost<'a> {
    extension: PVOID,
    srbs: &'a mut SrbTable<*mut SCSI_REQUEST_BLOCK, SRB_SLOTS>,
    completed: usize,
}

impl<'a> PortHost<'a> {
    fn new(extension: PVOID, srbs: &'a mut SrbTable<*mut SCSI_REQUEST_BLOCK, SRB_SLOTS>) -> Self {
        PortHost {
            extension,
            srbs,
            completed: 0,
        }
    }
}

impl Host for PortHost<'_> {
    fn complete(&mut self, user: u32, outcome: &Outcome) {
        let Some(srb) = self.srbs.take(user) else {
            return;
        };
        // SAFETY: the SRB was in the table, so the port gave it to HwStartIo and it
        // has not been completed; taking it out ends the miniport's use of it.
        unsafe { finish(self.extension, srb, outcome) };
        self.completed += 1;
    }

    fn log(&mut self, event: Event) {
        log(self.extension, event);
    }
}

impl Port<*mut SCSI_REQUEST_BLOCK> for PortHost<'_> {
    fn srbs(&mut self) -> &mut SrbTable<*mut SCSI_REQUEST_BLOCK, SRB_SLOTS> {
        self.srbs
    }
}

/// Writes an SRB's end (status, SCSI status, bytes moved, autosense) and completes it.
///
/// # Safety
/// `srb` is an SRB the port gave this miniport that has not been completed; it is not
/// touched afterwards.
unsafe fn finish(extension: PVOID, srb: *mut SCSI_REQUEST_BLOCK, outcome: &Outcome) {
    // SAFETY: the caller's contract: the SRB is ours until it is completed below.
    let r = unsafe { &mut *srb };
    let capacity = if r.SenseInfoBuffer.is_null() {
        0
    } else {
        r.SenseInfoBufferLength
    };
    let c = srb::completion(outcome, r.DataTransferLength, r.SrbFlags, capacity);
    if c.sense_len > 0 {
        let n = usize::from(c.sense_len);
        let sense = outcome.sense().get(..n).unwrap_or(&[]);
        // SAFETY: SenseInfoBuffer is mapped for SenseInfoBufferLength bytes (both
        // ports map sense buffers); `n` is at most that (srb::completion) and at most
        // the outcome's sense.
        unsafe {
            ptr::copy_nonoverlapping(sense.as_ptr(), r.SenseInfoBuffer.cast::<u8>(), sense.len())
        };
        r.SenseInfoBufferLength = c.sense_len;
    }
    r.SrbStatus = c.srb_status;
    r.ScsiStatus = c.scsi_status;
    r.DataTransferLength = c.transferred;
    // SAFETY: the caller's contract.
    unsafe { imports::complete(extension, srb) };
}

/// The adapter's state.
///
/// # Safety
/// `extension` is the device extension of an adapter `HwFindAdapter` found, inside a
/// callback the port serialises with the others that touch it.
unsafe fn state<'a>(extension: PVOID) -> &'a mut DeviceExtension {
    // SAFETY: the caller's contract; HwFindAdapter initialised every member.
    unsafe { &mut *extension.cast::<DeviceExtension>() }
}

/// The port's `ArgumentString` up to its NUL (at most [`MAX_ARGUMENT_LEN`] bytes);
/// `None` for NULL.
///
/// # Safety
/// `s` is null or a NUL-terminated string that stays valid during `HwFindAdapter`.
unsafe fn c_string<'a>(s: *const u8) -> Option<&'a [u8]> {
    if s.is_null() {
        return None;
    }
    let mut len = 0;
    while len < MAX_ARGUMENT_LEN {
        // SAFETY: every byte up to and including the NUL is readable (caller's
        // contract), and the loop stops at the NUL.
        if unsafe { s.wrapping_add(len).read() } == 0 {
            break;
        }
        len += 1;
    }
    // SAFETY: the `len` bytes before the NUL (or the cut) were just read.
    Some(unsafe { core::slice::from_raw_parts(s, len) })
}

/// The DMA region: `DumpRegion` in dump mode, else the uncached extension; aligned to
/// a page. The error is the detail of [`Event::NoDmaMemory`].
///
/// # Safety
/// Inside `HwFindAdapter`, with its extension and configuration, after the
/// configuration describes the adapter.
unsafe fn dma_region(
    extension: PVOID,
    cfg: &mut PORT_CONFIGURATION_INFORMATION,
    dump: bool,
) -> Result<DmaRegion, u16> {
    let (va, pa, len) = if dump {
        let r = cfg.DumpRegion;
        let len = usize::try_from(r.Length).unwrap_or(0);
        if r.VirtualBase.is_null() || len < DMA_ASK {
            return Err(3);
        }
        (r.VirtualBase, r.PhysicalBase as u64, len)
    } else {
        let ask = ULONG::try_from(DMA_ASK).map_err(|_| 2u16)?;
        // SAFETY: the caller's contract.
        let va = unsafe { imports::uncached_extension(extension, cfg, ask) };
        if va.is_null() {
            return Err(1);
        }
        // SAFETY: `va` is the start of the uncached extension.
        let (pa, contiguous) = unsafe { imports::physical_address(extension, ptr::null_mut(), va) };
        if usize::try_from(contiguous).unwrap_or(0) < DMA_ASK {
            return Err(2);
        }
        (va, pa, DMA_ASK)
    };
    let skip = (PAGE - (pa % PAGE as u64) as usize) % PAGE;
    let region_len = Initiator::<ImageHal>::region_len();
    if skip + region_len > len {
        return Err(2);
    }
    // SAFETY: `va..va + len` is memory the port gave this adapter for DMA, physically
    // contiguous from `pa` (checked above for the uncached extension; DumpRegion is so
    // by definition), valid for the adapter's life, and reached only through this
    // region; `skip + region_len <= len`.
    unsafe { DmaRegion::new(va.wrapping_add(skip), region_len, pa + skip as u64) }.ok_or(2)
}

/// Physical memory through `*PortGetDeviceBase` (memory space) for the configuration
/// search, which runs inside `HwFindAdapter`, the one routine in which both ports map.
/// Each window is unmapped as soon as it has been read.
struct FirmwareWindows {
    extension: PVOID,
    bus_type: INTERFACE_TYPE,
    bus: ULONG,
}

impl bootcfg::firmware::PhysMemory for FirmwareWindows {
    fn read<R>(&mut self, phys: u64, len: usize, read: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let start = PHYSICAL_ADDRESS::try_from(phys).ok()?;
        let n = ULONG::try_from(len).ok().filter(|&n| n > 0)?;
        // SAFETY: inside HwFindAdapter, with the extension the port passed; a memory-
        // space range of firmware memory (imports::map_memory's contract).
        let base =
            unsafe { imports::map_memory(self.extension, self.bus_type, self.bus, start, n) };
        if base.is_null() {
            return None;
        }
        // SAFETY: the port mapped `len` readable bytes at `base`. Nothing writes firmware
        // memory while the slice lives (the firmware has handed over; the system is
        // still starting its boot drivers, and this miniport runs alone inside
        // HwFindAdapter), and the slice cannot outlive the mapping: `read` gets it for
        // the call only (its result cannot borrow it), and the unmap comes after.
        let window = unsafe { core::slice::from_raw_parts(base.cast_const(), len) };
        let result = read(window);
        // SAFETY: `base` came from map_memory for this adapter and is no longer used.
        unsafe { imports::unmap(self.extension, base) };
        Some(result)
    }
}

/// The dump data storport passes the dump instance (`MiniportDumpData`, `Reserved`
/// before Windows 8): the normal instance's hand-over record, copied.
///
/// # Safety
/// Inside the dump instance's `HwFindAdapter`: a non-null `MiniportDumpData` is the
/// `MiniportPrivateDumpData` this driver's normal instance returned, which points at
/// [`handover::LEN`] bytes of its device extension.
unsafe fn dump_data(cfg: &PORT_CONFIGURATION_INFORMATION) -> Option<[u8; handover::LEN]> {
    let p = cfg.MiniportDumpData.cast::<[u8; handover::LEN]>();
    if p.is_null() {
        return None;
    }
    // SAFETY: the caller's contract; an unaligned read, as the record is a byte array.
    Some(unsafe { p.read_unaligned() })
}

/// Learns the target ([`bootcfg::resolve`]). Out of line on purpose: the search's frame
/// (the block's and the dump data's copies, the firmware walk) is gone before the
/// bring-up, whose frames are the deepest of `HwFindAdapter` (the i686 kernel stack is
/// 12 KiB). Firmware memory is scanned in place through the port's mappings, never
/// copied.
///
/// # Safety
/// Inside `HwFindAdapter`, with its extension, configuration and `ArgumentString`.
#[inline(never)]
unsafe fn learn_target(
    extension: PVOID,
    cfg: &PORT_CONFIGURATION_INFORMATION,
    argument_string: *const u8,
    ranges: &[ACCESS_RANGE],
    dump: bool,
) -> Result<(BootConfig, Source), ConfigError> {
    // SAFETY: the port's ArgumentString is NULL or a NUL-terminated string.
    let arguments = unsafe { c_string(argument_string) };
    let data = if dump {
        // SAFETY: the dump instance's HwFindAdapter (the caller's contract).
        unsafe { dump_data(cfg) }
    } else {
        None
    };
    let mut starts = [0u64; MAX_RANGES];
    let mut n = 0;
    for (slot, r) in starts
        .iter_mut()
        .zip(ranges.iter().filter(|r| r.RangeInMemory != 0))
    {
        *slot = u64::try_from(r.RangeStart).unwrap_or(0);
        n += 1;
    }
    let embedded = cfgblock::read();
    let inputs = bootcfg::Inputs {
        dump_data: data.as_ref().map(|d| &d[..]),
        memory_ranges: starts.get(..n).unwrap_or(&[]),
        argument_string: arguments,
        embedded: &embedded,
    };
    let mut memory = FirmwareWindows {
        extension,
        bus_type: cfg.AdapterInterfaceType,
        bus: cfg.SystemIoBusNumber,
    };
    bootcfg::resolve(&inputs, &mut memory)
}

/// Writes the hand-over record for the dump instance into `slot` (the device
/// extension's): the target and the adapter `(bus, slot, BAR0)` it is reached by; left
/// `None` if the record cannot be written (the dump instance then searches as the
/// normal instance did). Out of line, and called before the bring-up, so that the
/// record is built in a frame that is gone when the deepest frames are needed.
#[inline(never)]
fn keep_handover(
    slot: &mut Option<[u8; handover::LEN]>,
    boot: &BootConfig,
    source: Source,
    adapter: (ULONG, ULONG, u64),
) {
    let record = slot.insert([0; handover::LEN]);
    let written = handover::Handover {
        config: *boot,
        source,
        bus: adapter.0,
        slot: adapter.1,
        bar0: adapter.2,
    }
    .emit(record);
    if written.is_err() {
        *slot = None;
    }
}

/// `SRB_FUNCTION_DUMP_POINTERS` (storport, reference/windows-side.md §3.3): fills
/// `MINIPORT_DUMP_POINTERS` with `MiniportPrivateDumpData` pointing at the hand-over
/// record in the device extension; returns the SRB's status.
///
/// # Safety
/// `srb` is an SRB the port gave this miniport and has not been completed; its data
/// buffer, when not null, is mapped for `DataTransferLength` bytes (storport maps the
/// buffers of requests other than reads and writes, `STOR_MAP_NON_READ_WRITE_BUFFERS`).
unsafe fn dump_pointers(
    state: &DeviceExtension,
    srb: *mut SCSI_REQUEST_BLOCK,
    f: &SrbFields,
) -> u8 {
    // SAFETY: the caller's contract.
    let buffer = unsafe { (*srb).DataBuffer }.cast::<MINIPORT_DUMP_POINTERS>();
    let status = srb::dump_pointers(state.handover.is_some(), !buffer.is_null(), f.transfer_len);
    let Some(record) = state
        .handover
        .as_ref()
        .filter(|_| status == SRB_STATUS_SUCCESS)
    else {
        return status;
    };
    // Each member written lies in the first DUMP_POINTERS_MIN_LEN bytes of the buffer,
    // which the buffer holds (srb::dump_pointers); unaligned writes, as a port's buffer
    // promises no alignment.
    let member = |offset: usize| buffer.cast::<u8>().wrapping_add(offset);
    let size = size_of::<MINIPORT_DUMP_POINTERS>() as USHORT;
    // SAFETY: (each block below) as above.
    unsafe {
        member(offset_of!(MINIPORT_DUMP_POINTERS, Version))
            .cast::<USHORT>()
            .write_unaligned(DUMP_MINIPORT_VERSION_1)
    };
    // SAFETY: as above.
    unsafe {
        member(offset_of!(MINIPORT_DUMP_POINTERS, Size))
            .cast::<USHORT>()
            .write_unaligned(size)
    };
    // SAFETY: as above.
    unsafe {
        member(offset_of!(MINIPORT_DUMP_POINTERS, AdapterObject))
            .cast::<PVOID>()
            .write_unaligned(ptr::null_mut())
    };
    // SAFETY: as above.
    unsafe {
        member(offset_of!(MINIPORT_DUMP_POINTERS, MappedRegisterBase))
            .cast::<PVOID>()
            .write_unaligned(ptr::null_mut())
    };
    // SAFETY: as above. The dump instance works in DumpRegion, not a common buffer.
    unsafe {
        member(offset_of!(MINIPORT_DUMP_POINTERS, CommonBufferSize))
            .cast::<ULONG>()
            .write_unaligned(0)
    };
    let private: PVOID = record.as_ptr().cast_mut().cast();
    // SAFETY: as above.
    unsafe {
        member(offset_of!(MINIPORT_DUMP_POINTERS, MiniportPrivateDumpData))
            .cast::<PVOID>()
            .write_unaligned(private)
    };
    SRB_STATUS_SUCCESS
}

/// `HwFindAdapter` (scsiport's `Again` is storport's `Reserved3`).
unsafe extern "system" fn hw_find_adapter(
    extension: PVOID,
    _context: PVOID,
    _bus_information: PVOID,
    argument_string: *mut u8,
    config_info: *mut PORT_CONFIGURATION_INFORMATION,
    again: *mut BOOLEAN,
) -> ULONG {
    if FLAVOUR == Flavour::Scsiport && !again.is_null() {
        // SAFETY: scsiport passes a writable BOOLEAN `Again`; one adapter is found per
        // call. (Storport's `Reserved3` is left alone.)
        unsafe { again.write(0) };
    }
    // SAFETY: the port passes its configuration structure, ours for the whole call.
    let Some(cfg) = (unsafe { config_info.as_mut() }) else {
        return SP_RETURN_ERROR;
    };

    let mut ranges = [ACCESS_RANGE::zeroed(); MAX_RANGES];
    let count = usize::try_from(cfg.NumberOfAccessRanges).map_or(0, |n| n.min(MAX_RANGES));
    if !cfg.AccessRanges.is_null() {
        // SAFETY: AccessRanges points at NumberOfAccessRanges entries (port contract);
        // `count` does not exceed either that or the local array.
        unsafe { ptr::copy_nonoverlapping(cfg.AccessRanges, ranges.as_mut_ptr(), count) };
    }
    let dump = config::dump_mode(cfg, FLAVOUR);
    let ranges = ranges.get(..count).unwrap_or(&[]);
    // A missing or contradictory configuration ends here, before the HCA is touched.
    // SAFETY: inside HwFindAdapter with the port's own arguments.
    let (boot, source) =
        match unsafe { learn_target(extension, cfg, argument_string, ranges, dump) } {
            Ok(found) => found,
            Err(e) => {
                log(extension, e.event());
                return SP_RETURN_NOT_FOUND;
            }
        };
    if config::marks_memory_only(cfg, FLAVOUR) {
        // The hibernation stack asks which memory to keep while the normal instance
        // runs the HCA: a reset now would kill the system disk. Everything the
        // hibernation instance will use is the port's (its image, extension and
        // DumpRegion) or copied in its own HwFindAdapter (the hand-over), so nothing
        // needs marking; the instance is found and touches nothing.
        config::describe_adapter(
            cfg,
            FLAVOUR,
            fabboot_srp::cmd::MAX_DESC_COUNT,
            Some(hw_ms_interrupt),
        );
        // SAFETY: inside HwFindAdapter, with the port's extension.
        unsafe { write_members(extension, true, true) };
        return SP_RETURN_FOUND;
    }
    let mut services = Services {
        extension,
        bus_type: cfg.AdapterInterfaceType,
        bus: cfg.SystemIoBusNumber,
        slot: cfg.SlotNumber,
    };
    let found = match adapter::find_adapter(&mut services, ranges) {
        Ok(found) => found,
        Err(e) => return e.sp_return(),
    };
    let bar_base = found.bar.base();
    let release = |event: Event| {
        log(extension, event);
        // SAFETY: the BAR was mapped for this adapter and nothing uses it any more.
        unsafe { imports::unmap(extension, bar_base) };
    };

    config::describe_adapter(
        cfg,
        FLAVOUR,
        fabboot_srp::cmd::MAX_DESC_COUNT,
        Some(hw_ms_interrupt),
    );
    // SAFETY: inside HwFindAdapter, after describe_adapter.
    let dma = match unsafe { dma_region(extension, cfg, dump) } {
        Ok(dma) => dma,
        Err(why) => {
            release(Event::NoDmaMemory { why });
            return SP_RETURN_ERROR;
        }
    };
    if !dump && config::has_dump_members(cfg) {
        cfg.RequestedDumpBufferSize = DMA_ASK as ULONG;
    }

    // The seed of the initiator's choices (CM comm IDs, PSNs): the device's free-running
    // timer, so that two instances (the loader's and the kernel's, or a crash dump's)
    // do not reuse each other's connection identifiers, and where the function sits.
    let ticks = timer::read(&found.bar).unwrap_or(0);
    let seed = (ticks ^ ticks >> 32) as u32
        ^ cfg.SystemIoBusNumber << 24
        ^ cfg.SlotNumber << 16
        ^ u32::from(dump) << 1
        ^ u32::from(FLAVOUR == Flavour::Scsiport);
    // Open for the bring-up below; closed when HwFindAdapter returns.
    let config_access = PortConfig {
        extension,
        bus: cfg.SystemIoBusNumber,
        slot: cfg.SlotNumber,
        open: Cell::new(true),
    };
    let bar0 = found.pci.bar0.unwrap_or(0);
    let hal = PortHal::with_config(found.bar, PortStall, config_access, 0);

    // SAFETY: inside HwFindAdapter, with the port's extension.
    unsafe { write_members(extension, dump, false) };
    // SAFETY: every member but the initiator (a MaybeUninit, with `started` false) is
    // initialised; the port calls nothing else for this adapter during HwFindAdapter.
    let state = unsafe { &mut *extension.cast::<DeviceExtension>() };
    if FLAVOUR == Flavour::Storport && !dump {
        let adapter = (cfg.SystemIoBusNumber, cfg.SlotNumber, bar0);
        keep_handover(&mut state.handover, &boot, source, adapter);
    }
    let DeviceExtension {
        srbs,
        started,
        initiator,
        ..
    } = state;
    let mut host = PortHost::new(extension, srbs);
    let cfg_i = Config::new(boot.target, seed);
    let init = match Initiator::start_in(initiator, hal, dma, cfg_i, 0, &mut host) {
        Ok(init) => init,
        Err(StartFault::RegionTooSmall { .. }) => {
            release(Event::NoDmaMemory { why: 2 });
            return SP_RETURN_ERROR;
        }
        Err(StartFault::Post(_)) => {
            release(Event::HcaBringupFailed { status: 0xFFFC });
            return SP_RETURN_ERROR;
        }
        // Bring-up failures were logged by the initiator.
        Err(StartFault::Bringup(_) | StartFault::Resources(_)) => {
            // SAFETY: as in `release`.
            unsafe { imports::unmap(extension, bar_base) };
            return SP_RETURN_ERROR;
        }
    };

    // NTLDR (scsiport) and the dump stack send their first SRB right after
    // HwInitialize and poll without timers: the disk must be there before.
    if FLAVOUR == Flavour::Scsiport || dump {
        if let Err(e) = miniport::wait_until_ready(init, &mut host, miniport::READY_WAIT_US) {
            let state = match e {
                miniport::WaitError::Failed => crate::initiator::State::Failed,
                miniport::WaitError::TimedOut(s) => s,
            };
            // The port takes the DMA memory back: the device must stop using it.
            let _ = init.teardown();
            release(Event::NotConnected {
                state: miniport::state_code(state),
            });
            return SP_RETURN_NOT_FOUND;
        }
        // What the login settled: a direct-only target takes one piece per request.
        config::describe_adapter(cfg, FLAVOUR, init.max_sg(), Some(hw_ms_interrupt));
    }
    init.hal().config().open.set(false);
    *started = true;
    SP_RETURN_FOUND
}

/// Writes every member of the device extension but the initiator (`started` false).
///
/// # Safety
/// Inside `HwFindAdapter`: `extension` is the port's, `DeviceExtensionSize` bytes of
/// suitably aligned memory that nothing else refers to.
unsafe fn write_members(extension: PVOID, dump: bool, inert: bool) {
    let ext = extension.cast::<DeviceExtension>();
    // The extension is DeviceExtensionSize bytes of suitably aligned memory the port
    // allocated for this adapter, which nothing else refers to. Each member but the
    // initiator is written where it lies (the initiator is written once started).
    // SAFETY: (each block below) `ext` points into that memory.
    let timers = unsafe { addr_of_mut!((*ext).timers) };
    // SAFETY: as above.
    let interrupts = unsafe { addr_of_mut!((*ext).interrupts) };
    // SAFETY: as above.
    let srbs = unsafe { addr_of_mut!((*ext).srbs) };
    // SAFETY: as above.
    let scheduler = unsafe { addr_of_mut!((*ext).scheduler) };
    // SAFETY: as above.
    let started = unsafe { addr_of_mut!((*ext).started) };
    // SAFETY: as above.
    let handover = unsafe { addr_of_mut!((*ext).handover) };
    // SAFETY: as above.
    let inert_member = unsafe { addr_of_mut!((*ext).inert) };
    // SAFETY: a member of the extension, written before it is read.
    unsafe { inert_member.write(inert) };
    // SAFETY: as above.
    unsafe { timers.write(!dump) };
    // SAFETY: as above.
    unsafe { interrupts.write(FLAVOUR == Flavour::Storport && !dump) };
    // SAFETY: as above.
    unsafe { srbs.write(SrbTable::new()) };
    // SAFETY: as above.
    unsafe { scheduler.write(Scheduler::new()) };
    // SAFETY: as above.
    unsafe { started.write(false) };
    // SAFETY: as above.
    unsafe { handover.write(None) };
}

/// Polls the initiator and keeps the port's timer on its next deadline; returns the
/// SRBs completed.
fn service(state: &mut DeviceExtension, extension: PVOID, now_us: u64) -> usize {
    let Parts {
        timers,
        interrupts,
        srbs,
        scheduler,
        initiator,
    } = state.parts();
    let Some(init) = initiator else {
        return 0;
    };
    let mut host = PortHost::new(extension, srbs);
    let wake = init.poll(now_us, &mut host);
    let completed = host.completed;
    if timers {
        // The next completion or event raises the EQ's message; if arming fails, the
        // timer polls.
        let interrupts = interrupts && init.arm_interrupts().is_ok();
        let every = miniport::poll_interval(init.state(), srbs.len(), interrupts);
        let us = match scheduler.plan(now_us, wake, every) {
            Some(TimerRequest::Arm(us)) => us,
            Some(TimerRequest::Cancel) => 0,
            None => return completed,
        };
        // SAFETY: inside a port callback for this adapter; hw_timer takes the same
        // extension.
        unsafe { imports::request_timer(extension, hw_timer, us) };
    }
    completed
}

/// The time at the start of a callback (one read of the device's timer), or `None`
/// before the initiator started.
fn tick(state: &mut DeviceExtension) -> Option<u64> {
    state.parts().initiator.map(|i| i.hal().tick())
}

/// `HwInitialize`: the function must still answer with firmware we speak; then the
/// initiator is polled once, which (under the kernel) arms the timer that drives it.
/// In the loader and the dump stack the disk must be usable on return.
unsafe extern "system" fn hw_initialize(extension: PVOID) -> BOOLEAN {
    // SAFETY: the port calls HwInitialize only for an adapter HwFindAdapter found.
    let state = unsafe { state(extension) };
    if state.inert {
        return 1;
    }
    let Some(init) = state.parts().initiator else {
        return 0;
    };
    if let Err(event) = adapter::recheck(init.hal().bar()) {
        log(extension, event);
        return 0;
    }
    let now = init.hal().tick();
    service(state, extension, now);
    1
}

/// `HwBuildIo` (storport, outside the StartIo lock): nothing is prepared here, so that
/// only serialised routines touch the initiator.
unsafe extern "system" fn hw_build_io(_extension: PVOID, _srb: *mut SCSI_REQUEST_BLOCK) -> BOOLEAN {
    1
}

/// The SRB members the miniport reads.
///
/// # Safety
/// `srb` is an SRB the port gave this miniport and has not been completed.
unsafe fn fields(srb: *const SCSI_REQUEST_BLOCK) -> SrbFields {
    // SAFETY: the caller's contract.
    let r = unsafe { &*srb };
    SrbFields {
        function: r.Function,
        path_id: r.PathId,
        target: r.TargetId,
        lun: r.Lun,
        cdb_len: r.CdbLength,
        cdb: r.Cdb,
        flags: r.SrbFlags,
        transfer_len: r.DataTransferLength,
    }
}

/// Whether the SRB moves data (and so has a buffer to describe).
fn moves_data(f: &SrbFields) -> bool {
    f.function == SRB_FUNCTION_EXECUTE_SCSI
        && f.transfer_len > 0
        && f.flags & (SRB_FLAGS_DATA_IN | SRB_FLAGS_DATA_OUT) != 0
}

/// `HwStartIo`: the SRB goes to the initiator (or is answered at once); then the
/// initiator is polled, and scsiport is told it may send the next request.
unsafe extern "system" fn hw_start_io(extension: PVOID, srb: *mut SCSI_REQUEST_BLOCK) -> BOOLEAN {
    if srb.is_null() {
        return 1;
    }
    // SAFETY: the port calls HwStartIo only for an adapter HwFindAdapter found.
    let state = unsafe { state(extension) };
    // SAFETY: the port hands over an SRB it owns until we complete it.
    let f = unsafe { fields(srb) };
    if f.function == SRB_FUNCTION_DUMP_POINTERS {
        // SAFETY: the SRB is ours until completed; storport maps its buffer.
        let status = unsafe { dump_pointers(state, srb, &f) };
        // SAFETY: the SRB is still ours.
        unsafe { (*srb).SrbStatus = status };
        // SAFETY: as above; it is not touched afterwards.
        unsafe { imports::complete(extension, srb) };
        // SAFETY: inside HwStartIo for this adapter.
        unsafe { imports::next_request(extension) };
        return 1;
    }
    let started = match tick(state) {
        Some(now) => {
            let Parts {
                srbs, initiator, ..
            } = state.parts();
            let started = match initiator {
                Some(init) => {
                    let mut host = PortHost::new(extension, srbs);
                    // SAFETY: the SRB is ours until completed; its buffer is described
                    // only when it moves data.
                    unsafe { start(init, now, &f, srb, extension, &mut host) }
                }
                None => Started::Done(SRB_STATUS_NO_DEVICE),
            };
            service(state, extension, now);
            started
        }
        None => Started::Done(SRB_STATUS_NO_DEVICE),
    };
    if let Started::Done(status) = started {
        // SAFETY: the SRB was not handed to the initiator: it is still ours.
        unsafe { (*srb).SrbStatus = status };
        // SAFETY: as above; it is not touched afterwards.
        unsafe { imports::complete(extension, srb) };
    }
    // SAFETY: inside HwStartIo for this adapter.
    unsafe { imports::next_request(extension) };
    1
}

/// [`miniport::start_io`] with the SRB's buffer described the flavour's way: storport's
/// scatter-gather list (READ/WRITE buffers have no CPU mapping), scsiport's
/// `ScsiPortGetPhysicalAddress` on the buffer's virtual address.
///
/// # Safety
/// `srb` is an SRB the port gave this miniport and has not been completed.
unsafe fn start(
    init: &mut Initiator<ImageHal>,
    now: u64,
    f: &SrbFields,
    srb: *mut SCSI_REQUEST_BLOCK,
    extension: PVOID,
    host: &mut PortHost<'_>,
) -> Started {
    #[cfg(feature = "storport")]
    {
        let list = if moves_data(f) {
            // SAFETY: the caller's contract.
            unsafe { imports::scatter_gather_list(extension, srb) }
        } else {
            ptr::null_mut()
        };
        let count = if list.is_null() {
            0
        } else {
            // SAFETY: a non-null list from the port has its header.
            unsafe { (*list).NumberOfElements }
        };
        // The elements follow the header (a null list has none, and this pointer is
        // then never read).
        let first = list
            .cast::<u8>()
            .wrapping_add(core::mem::offset_of!(STOR_SCATTER_GATHER_LIST, List))
            .cast::<STOR_SCATTER_GATHER_ELEMENT>();
        let elements = (0..count).map(move |i| {
            // SAFETY: `i < NumberOfElements`: the element lies in the port's list, which
            // stays valid until the SRB is completed.
            let e = unsafe { first.wrapping_add(i as usize).read() };
            crate::initiator::Segment {
                phys: e.PhysicalAddress as u64,
                len: e.Length,
            }
        });
        let segments = miniport::segments::clip(elements, f.transfer_len);
        miniport::start_io(init, now, f, srb, segments, host)
    }
    #[cfg(feature = "scsiport")]
    {
        // SAFETY: the caller's contract.
        let buffer = unsafe { (*srb).DataBuffer }.cast::<u8>();
        let len = if moves_data(f) && !buffer.is_null() {
            f.transfer_len
        } else {
            0
        };
        let segments = miniport::segments::BufferWalk::new(len, |offset| {
            // SAFETY: `offset < DataTransferLength`: the address lies in the SRB's
            // buffer, which scsiport resolves for this SRB until it is completed.
            let (pa, contiguous) = unsafe {
                imports::physical_address(extension, srb, buffer.wrapping_add(offset as usize))
            };
            Some((pa, contiguous))
        });
        miniport::start_io(init, now, f, srb, segments, host)
    }
}

/// `HwInterrupt`: the loader calls it every 100 ms while an SRB is outstanding, the dump
/// stack polls it, the kernel calls it for a line interrupt. Claims the interrupt when
/// it completed something.
unsafe extern "system" fn hw_interrupt(extension: PVOID) -> BOOLEAN {
    // SAFETY: the port calls HwInterrupt only for an adapter HwFindAdapter found.
    let state = unsafe { state(extension) };
    let Some(now) = tick(state) else {
        return 0;
    };
    BOOLEAN::from(service(state, extension, now) > 0)
}

/// `HwMSInterruptRoutine` (storport, message-signalled interrupts): every message
/// polls the initiator.
unsafe extern "system" fn hw_ms_interrupt(extension: PVOID, _message_id: ULONG) -> BOOLEAN {
    // SAFETY: as for HwInterrupt.
    let state = unsafe { state(extension) };
    let Some(now) = tick(state) else {
        return 0;
    };
    service(state, extension, now);
    1
}

/// The port's timer (`RequestTimerCall`): polls the initiator, which asks for the next.
unsafe extern "system" fn hw_timer(extension: PVOID) {
    // SAFETY: the port calls the timer only for the adapter that asked for it.
    let state = unsafe { state(extension) };
    state.scheduler.fired();
    let Some(now) = tick(state) else {
        return;
    };
    service(state, extension, now);
}

/// `HwResetBus` (the port's timeout for a request passed): commands on a live
/// channel end normally, or are sent again when the channel is rebuilt, never early
/// (the target may still write their buffers); commands held while the channel is
/// down end with BUS RESET, for their QP is reset and nothing can reach their
/// buffers ([`Initiator::reset_bus`]). The dump stack's resets are ignored (its
/// requests are polled to completion).
unsafe extern "system" fn hw_reset_bus(extension: PVOID, _path_id: ULONG) -> BOOLEAN {
    // SAFETY: the port calls HwResetBus only for an adapter HwFindAdapter found.
    let state = unsafe { state(extension) };
    // `timers` is false only in the dump stack.
    let Parts {
        timers,
        srbs,
        initiator,
        ..
    } = state.parts();
    if let Some(init) = initiator
        && timers
    {
        let mut host = PortHost::new(extension, srbs);
        init.reset_bus(&mut host);
    }
    1
}

/// Most entries of a supported-control-type list this miniport fills.
const MAX_CONTROL_TYPES: u32 = 64;

/// `HwAdapterControl`: the supported types ([`adapter::adapter_control_supported`]),
/// and the power cycle storport runs around sleep and hibernation
/// (windows-side.md §3.6):
///
/// * `ScsiStopAdapter` (DIRQL): the channel is dropped and the HCA disabled
///   ([`Initiator::stop`]); the DMA region and every other resource stay.
/// * `ScsiSetRunningConfig` (PASSIVE, before the restart, the interrupt not yet
///   connected): a function that is not in its reset state (no power-down reset it;
///   the firmware's or the resume instance's driver left it running) gets a
///   function-level reset here, the one place after `HwFindAdapter` where
///   configuration space may be written; then the HCA is brought up again in the same
///   region ([`Initiator::restart`]), at PASSIVE rather than at DIRQL. Nothing is
///   armed, so no interrupt can come.
/// * `ScsiRestartAdapter` (DIRQL): brings the HCA up if `ScsiSetRunningConfig` did
///   not, then polls once, which arms the interrupts and the timer; the reconnect
///   runs from the timer as after any loss, with new requests BUSY until the disk is
///   back.
///
/// A failure is logged by the initiator (`HcaBringupFailed` 0xFFFD for a reset that
/// could not be done) and reported as unsuccessful.
unsafe extern "system" fn hw_adapter_control(
    extension: PVOID,
    control: SCSI_ADAPTER_CONTROL_TYPE,
    parameters: PVOID,
) -> SCSI_ADAPTER_CONTROL_STATUS {
    if control == ScsiQuerySupportedControlTypes {
        // SAFETY: for this control type the port passes the list.
        return unsafe { supported_control_types(parameters) };
    }
    if !adapter::adapter_control_supported(control) {
        return ScsiAdapterControlUnsuccessful;
    }
    // SAFETY: the port calls HwAdapterControl only for an adapter HwFindAdapter found.
    let state = unsafe { state(extension) };
    let Some(now) = tick(state) else {
        return ScsiAdapterControlUnsuccessful;
    };
    let Parts {
        srbs,
        scheduler,
        initiator,
        ..
    } = state.parts();
    let Some(init) = initiator else {
        return ScsiAdapterControlUnsuccessful;
    };
    let mut host = PortHost::new(extension, srbs);
    let ok = if control == ScsiStopAdapter {
        // A function that does not take the teardown is reset before the restart.
        let _ = init.stop(now, &mut host);
        // The port's timer does not outlive the stop; the restart arms it afresh.
        *scheduler = Scheduler::new();
        true
    } else if control == ScsiSetRunningConfig {
        // Configuration space is open for this routine: the bring-up's own reset
        // (`Hal::reset_function`) resets a function left running.
        init.hal().config().open.set(true);
        let ok = !needs_restart(init) || restart(init, now, &mut host);
        init.hal().config().open.set(false);
        ok
    } else if control == ScsiRestartAdapter {
        !needs_restart(init) || restart(init, now, &mut host)
    } else {
        false
    };
    if control == ScsiRestartAdapter && ok {
        service(state, extension, now);
    }
    if ok {
        ScsiAdapterControlSuccess
    } else {
        ScsiAdapterControlUnsuccessful
    }
}

/// Whether the HCA must be brought up again: it was stopped, or it lost its state
/// under a running initiator (a power-down no stop announced: the function is back in
/// its reset state). A restart of a running, never stopped adapter changes nothing.
fn needs_restart(init: &Initiator<ImageHal>) -> bool {
    init.stopped() || crate::miniport::hal::untouched_since_reset(init.hal().bar())
}

/// [`Initiator::restart`] with its time; failures were logged by the initiator.
fn restart(init: &mut Initiator<ImageHal>, now: u64, host: &mut PortHost<'_>) -> bool {
    init.restart(now, host).is_ok()
}

/// `ScsiQuerySupportedControlTypes`: fills the port's list.
///
/// # Safety
/// `parameters` is the port's `SCSI_SUPPORTED_CONTROL_TYPE_LIST` (or null).
unsafe fn supported_control_types(parameters: PVOID) -> SCSI_ADAPTER_CONTROL_STATUS {
    let list = parameters.cast::<SCSI_SUPPORTED_CONTROL_TYPE_LIST>();
    if list.is_null() {
        return ScsiAdapterControlUnsuccessful;
    }
    // SAFETY: for this control type the port passes a list header followed by
    // MaxControlType BOOLEANs.
    let max = unsafe { (*list).MaxControlType }.min(MAX_CONTROL_TYPES);
    // SAFETY: the BOOLEAN array starts right after the header.
    let entries = unsafe { ptr::addr_of_mut!((*list).SupportedTypeList) }.cast::<BOOLEAN>();
    for control_type in 0..max {
        let supported = BOOLEAN::from(adapter::adapter_control_supported(control_type));
        // SAFETY: control_type < MaxControlType: the entry lies inside the port's array.
        let entry = unsafe { entries.add(control_type as usize) };
        // SAFETY: `entry` is one of the port's BOOLEANs, writable during this call.
        unsafe { entry.write(supported) };
    }
    ScsiAdapterControlSuccess
}
