//! The port driver's entry points, imported with `raw-dylib` so that no import library
//! or WDK is needed to link. Names are undecorated (`import_name_type = "undecorated"`
//! on x86: scsiport.sys and storport.sys export `ScsiPortInitialize`, not
//! `_ScsiPortInitialize@16`). Each image imports from its own port driver only.
//!
//! Every function here is a thin `unsafe fn` over one import with the port's contract as
//! its safety condition.

use super::abi::*;

#[cfg(feature = "scsiport")]
mod ffi {
    use super::*;

    #[cfg_attr(
        target_arch = "x86",
        link(
            name = "scsiport.sys",
            kind = "raw-dylib",
            modifiers = "+verbatim",
            import_name_type = "undecorated"
        )
    )]
    #[cfg_attr(
        not(target_arch = "x86"),
        link(name = "scsiport.sys", kind = "raw-dylib", modifiers = "+verbatim")
    )]
    unsafe extern "system" {
        pub fn ScsiPortInitialize(
            argument1: PVOID,
            argument2: PVOID,
            init: *mut HW_INITIALIZATION_DATA,
            context: PVOID,
        ) -> ULONG;
        pub fn ScsiPortGetBusData(
            extension: PVOID,
            bus_data_type: BUS_DATA_TYPE,
            bus: ULONG,
            slot: ULONG,
            buffer: PVOID,
            length: ULONG,
        ) -> ULONG;
        pub fn ScsiPortSetBusDataByOffset(
            extension: PVOID,
            bus_data_type: BUS_DATA_TYPE,
            bus: ULONG,
            slot: ULONG,
            buffer: PVOID,
            offset: ULONG,
            length: ULONG,
        ) -> ULONG;
        pub fn ScsiPortGetDeviceBase(
            extension: PVOID,
            bus_type: INTERFACE_TYPE,
            bus: ULONG,
            address: PHYSICAL_ADDRESS,
            length: ULONG,
            in_io_space: BOOLEAN,
        ) -> PVOID;
        pub fn ScsiPortFreeDeviceBase(extension: PVOID, mapped: PVOID);
        pub fn ScsiPortLogError(
            extension: PVOID,
            srb: *mut SCSI_REQUEST_BLOCK,
            path: UCHAR,
            target: UCHAR,
            lun: UCHAR,
            error_code: ULONG,
            unique_id: ULONG,
        );
        pub fn ScsiPortGetUncachedExtension(
            extension: PVOID,
            config: *mut PORT_CONFIGURATION_INFORMATION,
            length: ULONG,
        ) -> PVOID;
        pub fn ScsiPortGetPhysicalAddress(
            extension: PVOID,
            srb: *mut SCSI_REQUEST_BLOCK,
            virtual_address: PVOID,
            length: *mut ULONG,
        ) -> PHYSICAL_ADDRESS;
        pub fn ScsiPortStallExecution(delay: ULONG);
    }

    #[cfg_attr(
        target_arch = "x86",
        link(
            name = "scsiport.sys",
            kind = "raw-dylib",
            modifiers = "+verbatim",
            import_name_type = "undecorated"
        )
    )]
    #[cfg_attr(
        not(target_arch = "x86"),
        link(name = "scsiport.sys", kind = "raw-dylib", modifiers = "+verbatim")
    )]
    unsafe extern "C" {
        pub fn ScsiPortNotification(kind: SCSI_NOTIFICATION_TYPE, extension: PVOID, ...);
    }

    pub use ScsiPortFreeDeviceBase as FreeDeviceBase;
    pub use ScsiPortGetBusData as GetBusData;
    pub use ScsiPortGetDeviceBase as GetDeviceBase;
    pub use ScsiPortGetPhysicalAddress as GetPhysicalAddress;
    pub use ScsiPortGetUncachedExtension as GetUncachedExtension;
    pub use ScsiPortInitialize as Initialize;
    pub use ScsiPortLogError as LogError;
    pub use ScsiPortNotification as Notification;
    pub use ScsiPortSetBusDataByOffset as SetBusDataByOffset;
    pub use ScsiPortStallExecution as StallExecution;
}

#[cfg(feature = "storport")]
mod ffi {
    use super::*;

    #[cfg_attr(
        target_arch = "x86",
        link(
            name = "storport.sys",
            kind = "raw-dylib",
            modifiers = "+verbatim",
            import_name_type = "undecorated"
        )
    )]
    #[cfg_attr(
        not(target_arch = "x86"),
        link(name = "storport.sys", kind = "raw-dylib", modifiers = "+verbatim")
    )]
    unsafe extern "system" {
        pub fn StorPortInitialize(
            argument1: PVOID,
            argument2: PVOID,
            init: *mut HW_INITIALIZATION_DATA,
            context: PVOID,
        ) -> ULONG;
        pub fn StorPortGetBusData(
            extension: PVOID,
            bus_data_type: BUS_DATA_TYPE,
            bus: ULONG,
            slot: ULONG,
            buffer: PVOID,
            length: ULONG,
        ) -> ULONG;
        pub fn StorPortSetBusDataByOffset(
            extension: PVOID,
            bus_data_type: BUS_DATA_TYPE,
            bus: ULONG,
            slot: ULONG,
            buffer: PVOID,
            offset: ULONG,
            length: ULONG,
        ) -> ULONG;
        pub fn StorPortGetDeviceBase(
            extension: PVOID,
            bus_type: INTERFACE_TYPE,
            bus: ULONG,
            address: PHYSICAL_ADDRESS,
            length: ULONG,
            in_io_space: BOOLEAN,
        ) -> PVOID;
        pub fn StorPortFreeDeviceBase(extension: PVOID, mapped: PVOID);
        pub fn StorPortLogError(
            extension: PVOID,
            srb: *mut SCSI_REQUEST_BLOCK,
            path: UCHAR,
            target: UCHAR,
            lun: UCHAR,
            error_code: ULONG,
            unique_id: ULONG,
        );
        pub fn StorPortGetUncachedExtension(
            extension: PVOID,
            config: *mut PORT_CONFIGURATION_INFORMATION,
            length: ULONG,
        ) -> PVOID;
        pub fn StorPortGetPhysicalAddress(
            extension: PVOID,
            srb: *mut SCSI_REQUEST_BLOCK,
            virtual_address: PVOID,
            length: *mut ULONG,
        ) -> PHYSICAL_ADDRESS;
        pub fn StorPortStallExecution(delay: ULONG);
        pub fn StorPortGetScatterGatherList(
            extension: PVOID,
            srb: *mut SCSI_REQUEST_BLOCK,
        ) -> *mut STOR_SCATTER_GATHER_LIST;
    }

    #[cfg_attr(
        target_arch = "x86",
        link(
            name = "storport.sys",
            kind = "raw-dylib",
            modifiers = "+verbatim",
            import_name_type = "undecorated"
        )
    )]
    #[cfg_attr(
        not(target_arch = "x86"),
        link(name = "storport.sys", kind = "raw-dylib", modifiers = "+verbatim")
    )]
    unsafe extern "C" {
        pub fn StorPortNotification(kind: SCSI_NOTIFICATION_TYPE, extension: PVOID, ...);
    }

    pub use StorPortFreeDeviceBase as FreeDeviceBase;
    pub use StorPortGetBusData as GetBusData;
    pub use StorPortGetDeviceBase as GetDeviceBase;
    pub use StorPortGetPhysicalAddress as GetPhysicalAddress;
    pub use StorPortGetScatterGatherList as GetScatterGatherList;
    pub use StorPortGetUncachedExtension as GetUncachedExtension;
    pub use StorPortInitialize as Initialize;
    pub use StorPortLogError as LogError;
    pub use StorPortNotification as Notification;
    pub use StorPortSetBusDataByOffset as SetBusDataByOffset;
    pub use StorPortStallExecution as StallExecution;
}

/// The port driver this image is built for.
#[cfg(feature = "scsiport")]
pub const FLAVOUR: super::Flavour = super::Flavour::Scsiport;
/// The port driver this image is built for.
#[cfg(feature = "storport")]
pub const FLAVOUR: super::Flavour = super::Flavour::Storport;

/// `*PortInitialize`.
///
/// # Safety
/// Only from `DriverEntry`, with the arguments the system passed it.
pub unsafe fn initialize(
    driver_object: PVOID,
    registry_path: PVOID,
    init: &mut HW_INITIALIZATION_DATA,
) -> ULONG {
    // SAFETY: forwarded from DriverEntry (caller's contract); `init` is a valid structure
    // whose callbacks and strings are 'static.
    unsafe { ffi::Initialize(driver_object, registry_path, init, core::ptr::null_mut()) }
}

/// `*PortGetBusData` for the adapter's PCI configuration space.
///
/// # Safety
/// `extension` is the adapter's device extension, inside `HwFindAdapter`.
pub unsafe fn read_pci_config(extension: PVOID, bus: ULONG, slot: ULONG, buf: &mut [u8]) -> usize {
    let len = ULONG::try_from(buf.len()).unwrap_or(0);
    // SAFETY: `buf` is writable for `len` bytes; the rest is the caller's contract.
    let read = unsafe {
        ffi::GetBusData(
            extension,
            PCIConfiguration,
            bus,
            slot,
            buf.as_mut_ptr().cast(),
            len,
        )
    };
    usize::try_from(read).map_or(0, |n| n.min(buf.len()))
}

/// `*PortSetBusDataByOffset` into the adapter's PCI configuration space; returns the
/// bytes written.
///
/// # Safety
/// `extension` is the adapter's device extension, inside `HwFindAdapter`.
pub unsafe fn write_pci_config(
    extension: PVOID,
    bus: ULONG,
    slot: ULONG,
    offset: usize,
    data: &[u8],
) -> usize {
    let (Ok(offset), Ok(len)) = (ULONG::try_from(offset), ULONG::try_from(data.len())) else {
        return 0;
    };
    // SAFETY: the port only reads `len` bytes of `data`; the rest is the caller's
    // contract.
    let written = unsafe {
        ffi::SetBusDataByOffset(
            extension,
            PCIConfiguration,
            bus,
            slot,
            data.as_ptr().cast_mut().cast(),
            offset,
            len,
        )
    };
    usize::try_from(written).map_or(0, |n| n.min(data.len()))
}

/// `*PortGetDeviceBase` for a memory range; null when the port refuses.
///
/// # Safety
/// `extension` is the adapter's device extension, inside `HwFindAdapter`; the range is
/// one the port assigned to this adapter, or firmware memory the configuration search
/// reads (base memory, the BIOS area, ACPI tables: memory space, as miniports have
/// always read BIOS areas), mapped only to be read.
pub unsafe fn map_memory(
    extension: PVOID,
    bus_type: INTERFACE_TYPE,
    bus: ULONG,
    start: PHYSICAL_ADDRESS,
    length: ULONG,
) -> *mut u8 {
    // SAFETY: the caller's contract.
    unsafe { ffi::GetDeviceBase(extension, bus_type, bus, start, length, 0) }.cast()
}

/// `*PortFreeDeviceBase`.
///
/// # Safety
/// `mapped` came from [`map_memory`] for this adapter and is not used afterwards.
pub unsafe fn unmap(extension: PVOID, mapped: *mut u8) {
    // SAFETY: the caller's contract.
    unsafe { ffi::FreeDeviceBase(extension, mapped.cast()) }
}

/// `*PortLogError` for an adapter-wide event.
///
/// # Safety
/// `extension` is the adapter's device extension.
pub unsafe fn log_error(extension: PVOID, error_code: ULONG, unique_id: ULONG) {
    // SAFETY: the caller's contract; no SRB is named.
    unsafe {
        ffi::LogError(
            extension,
            core::ptr::null_mut(),
            0,
            0,
            0,
            error_code,
            unique_id,
        )
    }
}

/// Hands a finished request back to the port (`RequestComplete`).
///
/// # Safety
/// `srb` was given to this miniport by the port and has not been completed; the
/// miniport does not touch it afterwards.
pub unsafe fn complete(extension: PVOID, srb: *mut SCSI_REQUEST_BLOCK) {
    // SAFETY: the caller's contract; RequestComplete takes the SRB as its one argument.
    unsafe { ffi::Notification(RequestComplete, extension, srb) };
}

/// Tells scsiport the miniport can take another request (`NextRequest`); storport
/// needs no such notification.
///
/// # Safety
/// `extension` is the adapter's device extension, inside a port callback.
pub unsafe fn next_request(extension: PVOID) {
    if FLAVOUR == super::Flavour::Scsiport {
        // SAFETY: NextRequest takes no argument beyond the extension.
        unsafe { ffi::Notification(NextRequest, extension) };
    }
}

/// Asks the port to call `timer` in `us` microseconds (`RequestTimerCall`; one timer
/// per adapter: a new request replaces the pending one, 0 cancels it).
///
/// # Safety
/// `extension` is the adapter's device extension, inside a port callback; `timer` may
/// be called with it at any later time.
pub unsafe fn request_timer(extension: PVOID, timer: unsafe extern "system" fn(PVOID), us: ULONG) {
    // SAFETY: the caller's contract; RequestTimerCall takes the routine and the delay.
    unsafe { ffi::Notification(RequestTimerCall, extension, timer, us) };
}

/// `*PortGetUncachedExtension`: `length` bytes of memory shared with the device, or
/// null.
///
/// # Safety
/// Only inside `HwFindAdapter`, with its extension and configuration, once the
/// configuration describes the adapter's DMA (scsiport builds its adapter object
/// from it).
pub unsafe fn uncached_extension(
    extension: PVOID,
    config: *mut PORT_CONFIGURATION_INFORMATION,
    length: ULONG,
) -> *mut u8 {
    // SAFETY: the caller's contract.
    unsafe { ffi::GetUncachedExtension(extension, config, length) }.cast()
}

/// `*PortGetPhysicalAddress`: the bus address of `va` and how many bytes are
/// physically contiguous from it. `srb` is null for the uncached extension, else the
/// SRB whose data buffer `va` lies in (scsiport).
///
/// # Safety
/// `extension` is the adapter's device extension; `va` lies in the uncached extension
/// or in `srb`'s data buffer.
pub unsafe fn physical_address(
    extension: PVOID,
    srb: *mut SCSI_REQUEST_BLOCK,
    va: *mut u8,
) -> (u64, u32) {
    let mut length: ULONG = 0;
    // SAFETY: the caller's contract; `length` is a local the port writes.
    let pa = unsafe { ffi::GetPhysicalAddress(extension, srb, va.cast(), &mut length) };
    (pa as u64, length)
}

/// `*PortStallExecution`: busy-waits `us` microseconds.
pub fn stall(us: u32) {
    // SAFETY: a busy wait with no pointer argument, callable at any IRQL the miniport
    // runs at.
    unsafe { ffi::StallExecution(us) }
}

/// `StorPortGetScatterGatherList`: the physical pieces of `srb`'s data buffer, or
/// null.
///
/// # Safety
/// `srb` is an SRB the port gave this miniport and has not been completed.
#[cfg(feature = "storport")]
pub unsafe fn scatter_gather_list(
    extension: PVOID,
    srb: *mut SCSI_REQUEST_BLOCK,
) -> *mut STOR_SCATTER_GATHER_LIST {
    // SAFETY: the caller's contract.
    unsafe { ffi::GetScatterGatherList(extension, srb) }
}
