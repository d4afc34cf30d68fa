//! The port driver's entry points, imported with `raw-dylib` so that no import library
//! or WDK is needed to link. Names are undecorated (`import_name_type = "undecorated"`
//! on x86: scsiport.sys and storport.sys export `ScsiPortInitialize`, not
//! `_ScsiPortInitialize@16`). Each image imports from its own port driver only.
//!
//! Every function here is a thin `unsafe fn` over one import with the port's contract as
//! its safety condition; [`complete`] adds the notifications a completion needs.

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
    pub use ScsiPortInitialize as Initialize;
    pub use ScsiPortLogError as LogError;
    pub use ScsiPortNotification as Notification;
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
    pub use StorPortInitialize as Initialize;
    pub use StorPortLogError as LogError;
    pub use StorPortNotification as Notification;
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

/// `*PortGetDeviceBase` for a memory range; null when the port refuses.
///
/// # Safety
/// `extension` is the adapter's device extension, inside `HwFindAdapter`; the range is
/// one the port assigned to this adapter.
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

/// Hands a finished request back to the port (and, for scsiport, asks for the next).
///
/// # Safety
/// `srb` was given to this miniport by the port and has not been completed; the
/// miniport does not touch it afterwards.
pub unsafe fn complete(extension: PVOID, srb: *mut SCSI_REQUEST_BLOCK) {
    // SAFETY: the caller's contract; RequestComplete takes the SRB as its one argument.
    unsafe { ffi::Notification(RequestComplete, extension, srb) };
    if FLAVOUR == super::Flavour::Scsiport {
        // SAFETY: NextRequest takes no argument beyond the extension.
        unsafe { ffi::Notification(NextRequest, extension) };
    }
}
