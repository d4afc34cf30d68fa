//! `DriverEntry` and the `Hw*` callbacks the port driver calls. Each turns the port's raw
//! pointers into safe values and hands the work to safe code ([`crate::adapter`],
//! [`super::config`]).

use core::mem::{align_of, size_of};
use core::ptr;

use super::abi::*;
use super::bar::MappedBar;
use super::imports::{self, FLAVOUR};
use super::{Flavour, config};
use crate::adapter::{self, Found, PortServices};
use crate::event::Event;
use crate::pci;

/// The miniport's per-adapter state, kept in the port's device extension. Written by
/// `HwFindAdapter` when it returns `SP_RETURN_FOUND`; the port calls no other routine
/// for an adapter before that.
struct DeviceExtension {
    found: Found<MappedBar>,
}

// Port drivers allocate extensions from non-paged pool, 8-byte aligned at least.
static_assertions::const_assert!(align_of::<DeviceExtension>() <= 8);

/// Strings `HW_INITIALIZATION_DATA` points at: they must outlive the driver.
static VENDOR_ID: [u8; 4] = pci::VENDOR_ID_STRING;
static DEVICE_IDS: [[u8; 4]; pci::DEVICE_IDS.len()] = pci::DEVICE_ID_STRINGS;

/// Most access ranges `HwFindAdapter` looks at (we ask for one: BAR0).
const MAX_RANGES: usize = 4;

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
        // SAFETY: the extension the port passed to HwFindAdapter.
        unsafe { imports::log_error(self.extension, event.error_code(), event.unique_id()) }
    }
}

/// `HwFindAdapter` (scsiport's `Again` is storport's `Reserved3`).
unsafe extern "system" fn hw_find_adapter(
    extension: PVOID,
    _context: PVOID,
    _bus_information: PVOID,
    _argument_string: *mut u8,
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
    let mut services = Services {
        extension,
        bus_type: cfg.AdapterInterfaceType,
        bus: cfg.SystemIoBusNumber,
        slot: cfg.SlotNumber,
    };
    match adapter::find_adapter(&mut services, ranges.get(..count).unwrap_or(&[])) {
        Ok(found) => {
            config::describe_adapter(cfg, FLAVOUR);
            // SAFETY: the extension is DeviceExtensionSize bytes of suitably aligned
            // memory the port allocated for this adapter; nothing else refers to it.
            unsafe {
                extension
                    .cast::<DeviceExtension>()
                    .write(DeviceExtension { found })
            };
            SP_RETURN_FOUND
        }
        Err(e) => e.sp_return(),
    }
}

/// `HwInitialize`: the adapter is usable if its function still answers with firmware we
/// speak; until a target is connected it answers every request honestly
/// ([`adapter::srb_status_without_target`]).
unsafe extern "system" fn hw_initialize(extension: PVOID) -> BOOLEAN {
    // SAFETY: HwFindAdapter wrote the extension before returning SP_RETURN_FOUND, and the
    // port calls HwInitialize only for an adapter it found.
    let state = unsafe { &*extension.cast::<DeviceExtension>() };
    match adapter::initialize(&state.found) {
        Ok(()) => 1,
        Err(event) => {
            // SAFETY: the adapter's own extension.
            unsafe { imports::log_error(extension, event.error_code(), event.unique_id()) };
            0
        }
    }
}

/// `HwBuildIo` (storport): nothing to prepare outside the StartIo lock yet.
unsafe extern "system" fn hw_build_io(_extension: PVOID, _srb: *mut SCSI_REQUEST_BLOCK) -> BOOLEAN {
    1
}

/// `HwStartIo`: completes the request with the status it gets while no target is
/// connected.
unsafe extern "system" fn hw_start_io(extension: PVOID, srb: *mut SCSI_REQUEST_BLOCK) -> BOOLEAN {
    // SAFETY: the port hands over an SRB it owns until we complete it.
    let Some(request) = (unsafe { srb.as_mut() }) else {
        return 1;
    };
    request.SrbStatus = adapter::srb_status_without_target(request.Function);
    // SAFETY: completing the SRB the port just gave us; it is not touched afterwards.
    unsafe { imports::complete(extension, srb) };
    1
}

/// `HwInterrupt`: the driver enables no interrupt source, so no interrupt is ours.
unsafe extern "system" fn hw_interrupt(_extension: PVOID) -> BOOLEAN {
    0
}

/// `HwResetBus`: no request is ever outstanding, so there is nothing to reset.
unsafe extern "system" fn hw_reset_bus(_extension: PVOID, _path_id: ULONG) -> BOOLEAN {
    1
}

/// Most entries of a supported-control-type list this miniport fills.
const MAX_CONTROL_TYPES: u32 = 64;

/// `HwAdapterControl`.
unsafe extern "system" fn hw_adapter_control(
    _extension: PVOID,
    control: SCSI_ADAPTER_CONTROL_TYPE,
    parameters: PVOID,
) -> SCSI_ADAPTER_CONTROL_STATUS {
    if control != ScsiQuerySupportedControlTypes {
        return adapter::adapter_control(control);
    }
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
