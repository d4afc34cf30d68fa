//! `#[repr(C)]` definitions of the scsiport and storport miniport interface.
//!
//! Names are the C names of the Windows DDK, so each definition can be compared with the
//! headers it mirrors. Every size and offset is written beside its member for i686 and
//! x86_64 and checked at compile time (see [`super::layout`]).
//!
//! One set of definitions serves both port drivers: storport's `HW_INITIALIZATION_DATA`
//! and `PORT_CONFIGURATION_INFORMATION` extend scsiport's at the end, so the scsiport
//! flavour passes the shorter size ([`SCSIPORT_HW_INITIALIZATION_DATA_SIZE`]) and reads
//! only what the port's `ConfigInfo.Length` says is there.
//!
//! Sources: mingw-w64 `ddk/miniport.h`, `ddk/srb.h`, `ddk/storport.h` (checked by
//! compiling); for storport additions mingw lacks, Microsoft's storport documentation
//! ([`STORPORT_DOC`]).
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]

use core::ffi::c_void;

use super::layout::{ConstLayout, abi_consts, abi_struct, oracle, pick};

/// Where the storport-only layouts come from.
pub const STORPORT_DOC: &str = "Microsoft storport.h (WDK for Windows 10+), documented at \
     learn.microsoft.com: HW_INITIALIZATION_DATA (storport.h), PORT_CONFIGURATION_INFORMATION \
     (storport.h), MEMORY_REGION, SCSI_NOTIFICATION_TYPE, MINIPORT_DUMP_POINTERS";

pub type BOOLEAN = u8;
pub type UCHAR = u8;
pub type USHORT = u16;
pub type ULONG = u32;
pub type ULONG_PTR = usize;
pub type PVOID = *mut c_void;
/// `PHYSICAL_ADDRESS` / `SCSI_PHYSICAL_ADDRESS` / `STOR_PHYSICAL_ADDRESS`: a
/// `LARGE_INTEGER`, 8-byte aligned on both architectures.
pub type PHYSICAL_ADDRESS = i64;
/// `INTERFACE_TYPE` (miniport.h).
pub type INTERFACE_TYPE = i32;
/// `KINTERRUPT_MODE` (miniport.h).
pub type KINTERRUPT_MODE = i32;
/// `DMA_WIDTH` (miniport.h).
pub type DMA_WIDTH = i32;
/// `DMA_SPEED` (miniport.h).
pub type DMA_SPEED = i32;
/// `BUS_DATA_TYPE` (miniport.h).
pub type BUS_DATA_TYPE = u32;
/// `SCSI_ADAPTER_CONTROL_TYPE` (srb.h; sized to a ULONG by its last enumerator).
pub type SCSI_ADAPTER_CONTROL_TYPE = u32;
/// `SCSI_ADAPTER_CONTROL_STATUS` (srb.h).
pub type SCSI_ADAPTER_CONTROL_STATUS = i32;
/// `SCSI_NOTIFICATION_TYPE` (srb.h, storport.h).
pub type SCSI_NOTIFICATION_TYPE = i32;
/// `STOR_SYNCHRONIZATION_MODEL` (storport.h).
pub type STOR_SYNCHRONIZATION_MODEL = i32;
/// `INTERRUPT_SYNCHRONIZATION_MODE` (storport.h).
pub type INTERRUPT_SYNCHRONIZATION_MODE = i32;
/// `SCSI_UNIT_CONTROL_TYPE` (storport.h).
pub type SCSI_UNIT_CONTROL_TYPE = u32;
/// `SCSI_UNIT_CONTROL_STATUS` (storport.h).
pub type SCSI_UNIT_CONTROL_STATUS = i32;

// Miniport callbacks (srb.h, storport.h). `extern "system"` is stdcall on i686 and the
// x64 convention on x86_64, as the headers' NTAPI.
pub type PHW_INITIALIZE = Option<unsafe extern "system" fn(PVOID) -> BOOLEAN>;
pub type PHW_STARTIO = Option<unsafe extern "system" fn(PVOID, *mut SCSI_REQUEST_BLOCK) -> BOOLEAN>;
pub type PHW_BUILDIO = Option<unsafe extern "system" fn(PVOID, *mut SCSI_REQUEST_BLOCK) -> BOOLEAN>;
pub type PHW_INTERRUPT = Option<unsafe extern "system" fn(PVOID) -> BOOLEAN>;
pub type PHW_FIND_ADAPTER = Option<
    unsafe extern "system" fn(
        PVOID,
        PVOID,
        PVOID,
        *mut u8,
        *mut PORT_CONFIGURATION_INFORMATION,
        *mut BOOLEAN,
    ) -> ULONG,
>;
pub type PHW_RESET_BUS = Option<unsafe extern "system" fn(PVOID, ULONG) -> BOOLEAN>;
pub type PHW_DMA_STARTED = Option<unsafe extern "system" fn(PVOID)>;
pub type PHW_ADAPTER_STATE = Option<unsafe extern "system" fn(PVOID, PVOID, BOOLEAN) -> BOOLEAN>;
pub type PHW_ADAPTER_CONTROL = Option<
    unsafe extern "system" fn(
        PVOID,
        SCSI_ADAPTER_CONTROL_TYPE,
        PVOID,
    ) -> SCSI_ADAPTER_CONTROL_STATUS,
>;
pub type PHW_FREE_ADAPTER_RESOURCES = Option<unsafe extern "system" fn(PVOID)>;
pub type PHW_PROCESS_SERVICE_REQUEST = Option<unsafe extern "system" fn(PVOID, PVOID)>;
pub type PHW_COMPLETE_SERVICE_IRP = Option<unsafe extern "system" fn(PVOID)>;
pub type PHW_INITIALIZE_TRACING = Option<unsafe extern "system" fn(PVOID, PVOID)>;
pub type PHW_CLEANUP_TRACING = Option<unsafe extern "system" fn(PVOID)>;
pub type PHW_TRACING_ENABLED = Option<unsafe extern "system" fn(PVOID, BOOLEAN)>;
pub type PHW_UNIT_CONTROL = Option<
    unsafe extern "system" fn(PVOID, SCSI_UNIT_CONTROL_TYPE, PVOID) -> SCSI_UNIT_CONTROL_STATUS,
>;
pub type PHW_MESSAGE_SIGNALED_INTERRUPT_ROUTINE =
    Option<unsafe extern "system" fn(PVOID, ULONG) -> BOOLEAN>;
pub type PHW_PASSIVE_INITIALIZE_ROUTINE = Option<unsafe extern "system" fn(PVOID) -> BOOLEAN>;
pub type PHW_TIMER = Option<unsafe extern "system" fn(PVOID)>;

/// Length of the x64-only `Reserved` member of `SCSI_REQUEST_BLOCK` (srb.h, `_WIN64`).
pub const SRB_RESERVED_LEN: usize = pick(0, 4);

abi_struct! {
    /// `ACCESS_RANGE` (srb.h): one bus-relative resource of the adapter.
    pub struct ACCESS_RANGE: size(16, 16) mingw {
        pub RangeStart: PHYSICAL_ADDRESS = (0, 0) mingw,
        pub RangeLength: ULONG = (8, 8) mingw,
        pub RangeInMemory: BOOLEAN = (12, 12) mingw,
    }
}

abi_struct! {
    /// `MEMORY_REGION` (storport.h): the physically contiguous `DumpRegion` the dump
    /// port gives a miniport.
    pub struct MEMORY_REGION: size(24, 24) doc(STORPORT_DOC) {
        pub VirtualBase: *mut u8 = (0, 0) doc(STORPORT_DOC),
        pub PhysicalBase: PHYSICAL_ADDRESS = (8, 8) doc(STORPORT_DOC),
        pub Length: ULONG = (16, 16) doc(STORPORT_DOC),
    }
}

abi_struct! {
    /// `HW_INITIALIZATION_DATA`, storport's (Windows 8+) layout. Scsiport's ends after
    /// `HwAdapterControl` ([`SCSIPORT_HW_INITIALIZATION_DATA_SIZE`]); storport before
    /// Windows 8 ends after `HwBuildIo` ([`STORPORT_LEGACY_HW_INITIALIZATION_DATA_SIZE`]).
    pub struct HW_INITIALIZATION_DATA: size(128, 208) doc(STORPORT_DOC) {
        pub HwInitializationDataSize: ULONG = (0, 0) mingw,
        pub AdapterInterfaceType: INTERFACE_TYPE = (4, 4) mingw,
        pub HwInitialize: PHW_INITIALIZE = (8, 8) mingw,
        pub HwStartIo: PHW_STARTIO = (12, 16) mingw,
        pub HwInterrupt: PHW_INTERRUPT = (16, 24) mingw,
        pub HwFindAdapter: PHW_FIND_ADAPTER = (20, 32) mingw,
        pub HwResetBus: PHW_RESET_BUS = (24, 40) mingw,
        pub HwDmaStarted: PHW_DMA_STARTED = (28, 48) mingw,
        pub HwAdapterState: PHW_ADAPTER_STATE = (32, 56) mingw,
        pub DeviceExtensionSize: ULONG = (36, 64) mingw,
        pub SpecificLuExtensionSize: ULONG = (40, 68) mingw,
        pub SrbExtensionSize: ULONG = (44, 72) mingw,
        pub NumberOfAccessRanges: ULONG = (48, 76) mingw,
        pub Reserved: PVOID = (52, 80) mingw,
        pub MapBuffers: UCHAR = (56, 88) mingw,
        pub NeedPhysicalAddresses: BOOLEAN = (57, 89) mingw,
        pub TaggedQueuing: BOOLEAN = (58, 90) mingw,
        pub AutoRequestSense: BOOLEAN = (59, 91) mingw,
        pub MultipleRequestPerLu: BOOLEAN = (60, 92) mingw,
        pub ReceiveEvent: BOOLEAN = (61, 93) mingw,
        pub VendorIdLength: USHORT = (62, 94) mingw,
        pub VendorId: PVOID = (64, 96) mingw,
        /// `ReservedUshort` / `PortVersionFlags` (a union of two USHORTs).
        pub PortVersionFlags: USHORT = (68, 104) mingw,
        pub DeviceIdLength: USHORT = (70, 106) mingw,
        pub DeviceId: PVOID = (72, 112) mingw,
        pub HwAdapterControl: PHW_ADAPTER_CONTROL = (76, 120) mingw,
        pub HwBuildIo: PHW_BUILDIO = (80, 128) doc(STORPORT_DOC),
        pub HwFreeAdapterResources: PHW_FREE_ADAPTER_RESOURCES = (84, 136) doc(STORPORT_DOC),
        pub HwProcessServiceRequest: PHW_PROCESS_SERVICE_REQUEST = (88, 144) doc(STORPORT_DOC),
        pub HwCompleteServiceIrp: PHW_COMPLETE_SERVICE_IRP = (92, 152) doc(STORPORT_DOC),
        pub HwInitializeTracing: PHW_INITIALIZE_TRACING = (96, 160) doc(STORPORT_DOC),
        pub HwCleanupTracing: PHW_CLEANUP_TRACING = (100, 168) doc(STORPORT_DOC),
        pub HwTracingEnabled: PHW_TRACING_ENABLED = (104, 176) doc(STORPORT_DOC),
        pub FeatureSupport: ULONG = (108, 184) doc(STORPORT_DOC),
        pub SrbTypeFlags: ULONG = (112, 188) doc(STORPORT_DOC),
        pub AddressTypeFlags: ULONG = (116, 192) doc(STORPORT_DOC),
        pub Reserved1: ULONG = (120, 196) doc(STORPORT_DOC),
        pub HwUnitControl: PHW_UNIT_CONTROL = (124, 200) doc(STORPORT_DOC),
    }
}

abi_struct! {
    /// `PORT_CONFIGURATION_INFORMATION`, storport's layout; scsiport's ends after
    /// `WmiDataProvider`. Read a member of the tail only when `Length` covers it
    /// ([`PORT_CONFIGURATION_INFORMATION::covers`]).
    pub struct PORT_CONFIGURATION_INFORMATION: size(208, 224) doc(STORPORT_DOC) {
        pub Length: ULONG = (0, 0) mingw,
        pub SystemIoBusNumber: ULONG = (4, 4) mingw,
        pub AdapterInterfaceType: INTERFACE_TYPE = (8, 8) mingw,
        pub BusInterruptLevel: ULONG = (12, 12) mingw,
        pub BusInterruptVector: ULONG = (16, 16) mingw,
        pub InterruptMode: KINTERRUPT_MODE = (20, 20) mingw,
        pub MaximumTransferLength: ULONG = (24, 24) mingw,
        pub NumberOfPhysicalBreaks: ULONG = (28, 28) mingw,
        pub DmaChannel: ULONG = (32, 32) mingw,
        pub DmaPort: ULONG = (36, 36) mingw,
        pub DmaWidth: DMA_WIDTH = (40, 40) mingw,
        pub DmaSpeed: DMA_SPEED = (44, 44) mingw,
        pub AlignmentMask: ULONG = (48, 48) mingw,
        pub NumberOfAccessRanges: ULONG = (52, 52) mingw,
        /// Pointer to an array of `NumberOfAccessRanges` entries.
        pub AccessRanges: *mut ACCESS_RANGE = (56, 56) mingw,
        /// `Reserved` before Windows 8 (and in mingw-w64).
        pub MiniportDumpData: PVOID = (60, 64) mingw("Reserved"),
        pub NumberOfBuses: UCHAR = (64, 72) mingw,
        pub InitiatorBusId: [UCHAR; 8] = (65, 73) mingw,
        pub ScatterGather: BOOLEAN = (73, 81) mingw,
        pub Master: BOOLEAN = (74, 82) mingw,
        pub CachesData: BOOLEAN = (75, 83) mingw,
        pub AdapterScansDown: BOOLEAN = (76, 84) mingw,
        pub AtdiskPrimaryClaimed: BOOLEAN = (77, 85) mingw,
        pub AtdiskSecondaryClaimed: BOOLEAN = (78, 86) mingw,
        pub Dma32BitAddresses: BOOLEAN = (79, 87) mingw,
        pub DemandMode: BOOLEAN = (80, 88) mingw,
        pub MapBuffers: UCHAR = (81, 89) mingw,
        pub NeedPhysicalAddresses: BOOLEAN = (82, 90) mingw,
        pub TaggedQueuing: BOOLEAN = (83, 91) mingw,
        pub AutoRequestSense: BOOLEAN = (84, 92) mingw,
        pub MultipleRequestPerLu: BOOLEAN = (85, 93) mingw,
        pub ReceiveEvent: BOOLEAN = (86, 94) mingw,
        pub RealModeInitialized: BOOLEAN = (87, 95) mingw,
        pub BufferAccessScsiPortControlled: BOOLEAN = (88, 96) mingw,
        pub MaximumNumberOfTargets: UCHAR = (89, 97) mingw,
        /// `ReservedUchars[0]` before Windows 8 (and in mingw-w64).
        pub SrbType: UCHAR = (90, 98) mingw("ReservedUchars"),
        /// `ReservedUchars[1]` before Windows 8.
        pub AddressType: UCHAR = (91, 99) doc(STORPORT_DOC),
        pub SlotNumber: ULONG = (92, 100) mingw,
        pub BusInterruptLevel2: ULONG = (96, 104) mingw,
        pub BusInterruptVector2: ULONG = (100, 108) mingw,
        pub InterruptMode2: KINTERRUPT_MODE = (104, 112) mingw,
        pub DmaChannel2: ULONG = (108, 116) mingw,
        pub DmaPort2: ULONG = (112, 120) mingw,
        pub DmaWidth2: DMA_WIDTH = (116, 124) mingw,
        pub DmaSpeed2: DMA_SPEED = (120, 128) mingw,
        pub DeviceExtensionSize: ULONG = (124, 132) mingw,
        pub SpecificLuExtensionSize: ULONG = (128, 136) mingw,
        pub SrbExtensionSize: ULONG = (132, 140) mingw,
        pub Dma64BitAddresses: UCHAR = (136, 144) mingw,
        pub ResetTargetSupported: BOOLEAN = (137, 145) mingw,
        pub MaximumNumberOfLogicalUnits: UCHAR = (138, 146) mingw,
        pub WmiDataProvider: BOOLEAN = (139, 147) mingw,
        pub SynchronizationModel: STOR_SYNCHRONIZATION_MODEL = (140, 148) doc(STORPORT_DOC),
        pub HwMSInterruptRoutine: PHW_MESSAGE_SIGNALED_INTERRUPT_ROUTINE =
            (144, 152) doc(STORPORT_DOC),
        pub InterruptSynchronizationMode: INTERRUPT_SYNCHRONIZATION_MODE =
            (148, 160) doc(STORPORT_DOC),
        pub DumpRegion: MEMORY_REGION = (152, 168) doc(STORPORT_DOC),
        pub RequestedDumpBufferSize: ULONG = (176, 192) doc(STORPORT_DOC),
        pub VirtualDevice: BOOLEAN = (180, 196) doc(STORPORT_DOC),
        pub DumpMode: UCHAR = (181, 197) doc(STORPORT_DOC),
        pub DmaAddressWidth: UCHAR = (182, 198) doc(STORPORT_DOC),
        pub ExtendedFlags1: ULONG = (184, 200) doc(STORPORT_DOC),
        pub MaxNumberOfIO: ULONG = (188, 204) doc(STORPORT_DOC),
        pub MaxIOsPerLun: ULONG = (192, 208) doc(STORPORT_DOC),
        pub InitialLunQueueDepth: ULONG = (196, 212) doc(STORPORT_DOC),
        pub BusResetHoldTime: ULONG = (200, 216) doc(STORPORT_DOC),
        pub FeatureSupport: ULONG = (204, 220) doc(STORPORT_DOC),
    }
}

abi_struct! {
    /// `SCSI_REQUEST_BLOCK` (srb.h).
    pub struct SCSI_REQUEST_BLOCK: size(64, 88) mingw {
        pub Length: USHORT = (0, 0) mingw,
        pub Function: UCHAR = (2, 2) mingw,
        pub SrbStatus: UCHAR = (3, 3) mingw,
        pub ScsiStatus: UCHAR = (4, 4) mingw,
        pub PathId: UCHAR = (5, 5) mingw,
        pub TargetId: UCHAR = (6, 6) mingw,
        pub Lun: UCHAR = (7, 7) mingw,
        pub QueueTag: UCHAR = (8, 8) mingw,
        pub QueueAction: UCHAR = (9, 9) mingw,
        pub CdbLength: UCHAR = (10, 10) mingw,
        pub SenseInfoBufferLength: UCHAR = (11, 11) mingw,
        pub SrbFlags: ULONG = (12, 12) mingw,
        pub DataTransferLength: ULONG = (16, 16) mingw,
        pub TimeOutValue: ULONG = (20, 20) mingw,
        pub DataBuffer: PVOID = (24, 24) mingw,
        pub SenseInfoBuffer: PVOID = (28, 32) mingw,
        pub NextSrb: *mut SCSI_REQUEST_BLOCK = (32, 40) mingw,
        pub OriginalRequest: PVOID = (36, 48) mingw,
        pub SrbExtension: PVOID = (40, 56) mingw,
        /// `InternalStatus` / `QueueSortKey` / `LinkTimeoutValue` (a union of ULONGs).
        pub InternalStatus: ULONG = (44, 64) mingw,
        /// `Reserved`, present on 64-bit Windows only.
        pub Reserved: [UCHAR; SRB_RESERVED_LEN] = (48, 68) padding,
        pub Cdb: [UCHAR; 16] = (48, 72) mingw,
    }
}

abi_struct! {
    /// `STOR_SCATTER_GATHER_ELEMENT` (storport.h).
    pub struct STOR_SCATTER_GATHER_ELEMENT: size(16, 24) mingw {
        pub PhysicalAddress: PHYSICAL_ADDRESS = (0, 0) mingw,
        pub Length: ULONG = (8, 8) mingw,
        pub Reserved: ULONG_PTR = (12, 16) mingw,
    }
}

abi_struct! {
    /// `STOR_SCATTER_GATHER_LIST` (storport.h): `NumberOfElements` entries follow `List`.
    pub struct STOR_SCATTER_GATHER_LIST: size(8, 16) mingw {
        pub NumberOfElements: ULONG = (0, 0) mingw,
        pub Reserved: ULONG_PTR = (4, 8) mingw,
        pub List: [STOR_SCATTER_GATHER_ELEMENT; 0] = (8, 16) mingw,
    }
}

abi_struct! {
    /// `SCSI_SUPPORTED_CONTROL_TYPE_LIST` (srb.h): `MaxControlType` BOOLEANs follow.
    pub struct SCSI_SUPPORTED_CONTROL_TYPE_LIST: size(4, 4) mingw {
        pub MaxControlType: ULONG = (0, 0) mingw,
        pub SupportedTypeList: [BOOLEAN; 0] = (4, 4) mingw,
    }
}

/// `DUMP_MINIPORT_NAME_LENGTH` (storport.h): WCHARs of `MINIPORT_DUMP_POINTERS.DriverName`.
pub const DUMP_MINIPORT_NAME_LENGTH: usize = 15;

abi_struct! {
    /// `MINIPORT_DUMP_POINTERS` (storport.h): what `SRB_FUNCTION_DUMP_POINTERS`'s
    /// `DataBuffer` points at. The miniport sets `Version`, `Size`, `AdapterObject`
    /// (NULL), `MappedRegisterBase` (0), `CommonBufferSize` and
    /// `MiniportPrivateDumpData`, which storport passes to the dump instance's
    /// `HwFindAdapter` as `MiniportDumpData`; the members from `SystemIoBusNumber` on are
    /// storport's to fill.
    pub struct MINIPORT_DUMP_POINTERS: size(84, 112) doc(STORPORT_DOC) {
        pub Version: USHORT = (0, 0) doc(STORPORT_DOC),
        pub Size: USHORT = (2, 2) doc(STORPORT_DOC),
        pub DriverName: [u16; DUMP_MINIPORT_NAME_LENGTH] = (4, 4) doc(STORPORT_DOC),
        pub AdapterObject: PVOID = (36, 40) doc(STORPORT_DOC),
        pub MappedRegisterBase: PVOID = (40, 48) doc(STORPORT_DOC),
        pub CommonBufferSize: ULONG = (44, 56) doc(STORPORT_DOC),
        pub MiniportPrivateDumpData: PVOID = (48, 64) doc(STORPORT_DOC),
        pub SystemIoBusNumber: ULONG = (52, 72) doc(STORPORT_DOC),
        pub AdapterInterfaceType: INTERFACE_TYPE = (56, 76) doc(STORPORT_DOC),
        pub MaximumTransferLength: ULONG = (60, 80) doc(STORPORT_DOC),
        pub NumberOfPhysicalBreaks: ULONG = (64, 84) doc(STORPORT_DOC),
        pub AlignmentMask: ULONG = (68, 88) doc(STORPORT_DOC),
        pub NumberOfAccessRanges: ULONG = (72, 92) doc(STORPORT_DOC),
        /// `ACCESS_RANGE (*AccessRanges)[]`.
        pub AccessRanges: *mut ACCESS_RANGE = (76, 96) doc(STORPORT_DOC),
        pub NumberOfBuses: UCHAR = (80, 104) doc(STORPORT_DOC),
        pub Master: BOOLEAN = (81, 105) doc(STORPORT_DOC),
        pub MapBuffers: BOOLEAN = (82, 106) doc(STORPORT_DOC),
        pub MaximumNumberOfTargets: UCHAR = (83, 107) doc(STORPORT_DOC),
    }
}

/// Bytes of `MINIPORT_DUMP_POINTERS` up to and including `MiniportPrivateDumpData`:
/// the least a `SRB_FUNCTION_DUMP_POINTERS` buffer must hold for the miniport to answer
/// (`RTL_SIZEOF_THROUGH_FIELD`, as Microsoft's storahci sample checks it).
pub const DUMP_POINTERS_MIN_LEN: usize =
    core::mem::offset_of!(MINIPORT_DUMP_POINTERS, MiniportPrivateDumpData)
        + core::mem::size_of::<PVOID>();

impl PORT_CONFIGURATION_INFORMATION {
    /// Whether the port's structure (whose size is `Length`) includes the member that
    /// ends at `end` (an offset from [`core::mem::offset_of`] plus the member's size).
    pub fn covers(&self, end: usize) -> bool {
        usize::try_from(self.Length).is_ok_and(|len| end <= len)
    }
}

/// Every ABI structure's layout record.
pub const STRUCTS: &[super::layout::StructLayout] = {
    use super::layout::Layout;
    &[
        ACCESS_RANGE::LAYOUT,
        MEMORY_REGION::LAYOUT,
        HW_INITIALIZATION_DATA::LAYOUT,
        PORT_CONFIGURATION_INFORMATION::LAYOUT,
        SCSI_REQUEST_BLOCK::LAYOUT,
        STOR_SCATTER_GATHER_ELEMENT::LAYOUT,
        STOR_SCATTER_GATHER_LIST::LAYOUT,
        SCSI_SUPPORTED_CONTROL_TYPE_LIST::LAYOUT,
        MINIPORT_DUMP_POINTERS::LAYOUT,
    ]
};

/// `HwInitializationDataSize` for scsiport: its structure ends after `HwAdapterControl`.
pub const SCSIPORT_HW_INITIALIZATION_DATA_SIZE: usize =
    core::mem::offset_of!(HW_INITIALIZATION_DATA, HwBuildIo);
/// `HW_INIT_DATA_SIZE_PHYSICAL`: storport's structure before Windows 8.
pub const STORPORT_LEGACY_HW_INITIALIZATION_DATA_SIZE: usize =
    core::mem::offset_of!(HW_INITIALIZATION_DATA, HwFreeAdapterResources);
/// `PORT_CONFIGURATION_INFORMATION` as scsiport (and mingw-w64) define it.
pub const SCSIPORT_CONFIG_INFO_SIZE: usize = size_entry(2);

/// C union members that share an offset with the member we declare:
/// `(structure, C member, our member)`.
pub const MEMBER_ALIASES: &[(&str, &str, &str)] = &[
    (
        "HW_INITIALIZATION_DATA",
        "ReservedUshort",
        "PortVersionFlags",
    ),
    ("SCSI_REQUEST_BLOCK", "QueueSortKey", "InternalStatus"),
    ("SCSI_REQUEST_BLOCK", "LinkTimeoutValue", "InternalStatus"),
];

/// Sizes that differ from a structure's full size, with what they are compared with.
pub const SIZES: &[ConstLayout] = &[
    ConstLayout {
        name: "SCSIPORT_HW_INITIALIZATION_DATA_SIZE",
        value32: 80,
        value64: 128,
        oracle: oracle!(mingw),
        c_expr: Some("sizeof(HW_INITIALIZATION_DATA)"),
    },
    ConstLayout {
        name: "STORPORT_LEGACY_HW_INITIALIZATION_DATA_SIZE",
        value32: 84,
        value64: 136,
        oracle: oracle!(doc(STORPORT_DOC)),
        c_expr: None,
    },
    ConstLayout {
        name: "SCSIPORT_CONFIG_INFO_SIZE",
        value32: 140,
        value64: 152,
        oracle: oracle!(mingw),
        c_expr: Some("sizeof(PORT_CONFIGURATION_INFORMATION)"),
    },
];

/// The value of `SIZES[i]` for the architecture being compiled.
const fn size_entry(i: usize) -> usize {
    pick(SIZES[i].value32 as usize, SIZES[i].value64 as usize)
}
static_assertions::const_assert_eq!(SCSIPORT_HW_INITIALIZATION_DATA_SIZE, size_entry(0));
static_assertions::const_assert_eq!(STORPORT_LEGACY_HW_INITIALIZATION_DATA_SIZE, size_entry(1));
static_assertions::const_assert!(
    SCSIPORT_CONFIG_INFO_SIZE
        > core::mem::offset_of!(PORT_CONFIGURATION_INFORMATION, WmiDataProvider)
);
static_assertions::const_assert!(
    SCSIPORT_CONFIG_INFO_SIZE
        <= core::mem::offset_of!(PORT_CONFIGURATION_INFORMATION, HwMSInterruptRoutine)
);

abi_consts! { SRB_FUNCTIONS;
    pub const SRB_FUNCTION_EXECUTE_SCSI: u8 = 0x00, mingw;
    pub const SRB_FUNCTION_CLAIM_DEVICE: u8 = 0x01, mingw;
    pub const SRB_FUNCTION_IO_CONTROL: u8 = 0x02, mingw;
    pub const SRB_FUNCTION_RECEIVE_EVENT: u8 = 0x03, mingw;
    pub const SRB_FUNCTION_RELEASE_QUEUE: u8 = 0x04, mingw;
    pub const SRB_FUNCTION_ATTACH_DEVICE: u8 = 0x05, mingw;
    pub const SRB_FUNCTION_RELEASE_DEVICE: u8 = 0x06, mingw;
    pub const SRB_FUNCTION_SHUTDOWN: u8 = 0x07, mingw;
    pub const SRB_FUNCTION_FLUSH: u8 = 0x08, mingw;
    pub const SRB_FUNCTION_ABORT_COMMAND: u8 = 0x10, mingw;
    pub const SRB_FUNCTION_RELEASE_RECOVERY: u8 = 0x11, mingw;
    pub const SRB_FUNCTION_RESET_BUS: u8 = 0x12, mingw;
    pub const SRB_FUNCTION_RESET_DEVICE: u8 = 0x13, mingw;
    pub const SRB_FUNCTION_TERMINATE_IO: u8 = 0x14, mingw;
    pub const SRB_FUNCTION_FLUSH_QUEUE: u8 = 0x15, mingw;
    pub const SRB_FUNCTION_REMOVE_DEVICE: u8 = 0x16, mingw;
    pub const SRB_FUNCTION_WMI: u8 = 0x17, mingw;
    pub const SRB_FUNCTION_LOCK_QUEUE: u8 = 0x18, mingw;
    pub const SRB_FUNCTION_UNLOCK_QUEUE: u8 = 0x19, mingw;
    pub const SRB_FUNCTION_RESET_LOGICAL_UNIT: u8 = 0x20, mingw;
    pub const SRB_FUNCTION_SET_LINK_TIMEOUT: u8 = 0x21, mingw;
    pub const SRB_FUNCTION_LINK_TIMEOUT_OCCURRED: u8 = 0x22, mingw;
    pub const SRB_FUNCTION_LINK_TIMEOUT_COMPLETE: u8 = 0x23, mingw;
    pub const SRB_FUNCTION_POWER: u8 = 0x24, mingw;
    pub const SRB_FUNCTION_PNP: u8 = 0x25, mingw;
    pub const SRB_FUNCTION_DUMP_POINTERS: u8 = 0x26, mingw;
    pub const SRB_FUNCTION_FREE_DUMP_POINTERS: u8 = 0x27, doc(STORPORT_DOC);
}

abi_consts! { SRB_STATUSES;
    pub const SRB_STATUS_PENDING: u8 = 0x00, mingw;
    pub const SRB_STATUS_SUCCESS: u8 = 0x01, mingw;
    pub const SRB_STATUS_ABORTED: u8 = 0x02, mingw;
    pub const SRB_STATUS_ABORT_FAILED: u8 = 0x03, mingw;
    pub const SRB_STATUS_ERROR: u8 = 0x04, mingw;
    pub const SRB_STATUS_BUSY: u8 = 0x05, mingw;
    pub const SRB_STATUS_INVALID_REQUEST: u8 = 0x06, mingw;
    pub const SRB_STATUS_INVALID_PATH_ID: u8 = 0x07, mingw;
    pub const SRB_STATUS_NO_DEVICE: u8 = 0x08, mingw;
    pub const SRB_STATUS_TIMEOUT: u8 = 0x09, mingw;
    pub const SRB_STATUS_SELECTION_TIMEOUT: u8 = 0x0A, mingw;
    pub const SRB_STATUS_COMMAND_TIMEOUT: u8 = 0x0B, mingw;
    pub const SRB_STATUS_MESSAGE_REJECTED: u8 = 0x0D, mingw;
    pub const SRB_STATUS_BUS_RESET: u8 = 0x0E, mingw;
    pub const SRB_STATUS_PARITY_ERROR: u8 = 0x0F, mingw;
    pub const SRB_STATUS_REQUEST_SENSE_FAILED: u8 = 0x10, mingw;
    pub const SRB_STATUS_NO_HBA: u8 = 0x11, mingw;
    pub const SRB_STATUS_DATA_OVERRUN: u8 = 0x12, mingw;
    pub const SRB_STATUS_UNEXPECTED_BUS_FREE: u8 = 0x13, mingw;
    pub const SRB_STATUS_PHASE_SEQUENCE_FAILURE: u8 = 0x14, mingw;
    pub const SRB_STATUS_BAD_SRB_BLOCK_LENGTH: u8 = 0x15, mingw;
    pub const SRB_STATUS_REQUEST_FLUSHED: u8 = 0x16, mingw;
    pub const SRB_STATUS_INVALID_LUN: u8 = 0x20, mingw;
    pub const SRB_STATUS_INVALID_TARGET_ID: u8 = 0x21, mingw;
    pub const SRB_STATUS_BAD_FUNCTION: u8 = 0x22, mingw;
    pub const SRB_STATUS_ERROR_RECOVERY: u8 = 0x23, mingw;
    pub const SRB_STATUS_NOT_POWERED: u8 = 0x24, mingw;
    pub const SRB_STATUS_LINK_DOWN: u8 = 0x25, mingw;
    pub const SRB_STATUS_INTERNAL_ERROR: u8 = 0x30, mingw;
    pub const SRB_STATUS_QUEUE_FROZEN: u8 = 0x40, mingw;
    pub const SRB_STATUS_AUTOSENSE_VALID: u8 = 0x80, mingw;
}

abi_consts! { SRB_FLAGS;
    pub const SRB_FLAGS_QUEUE_ACTION_ENABLE: u32 = 0x0000_0002, mingw;
    pub const SRB_FLAGS_DISABLE_DISCONNECT: u32 = 0x0000_0004, mingw;
    pub const SRB_FLAGS_DISABLE_SYNCH_TRANSFER: u32 = 0x0000_0008, mingw;
    pub const SRB_FLAGS_BYPASS_FROZEN_QUEUE: u32 = 0x0000_0010, mingw;
    pub const SRB_FLAGS_DISABLE_AUTOSENSE: u32 = 0x0000_0020, mingw;
    pub const SRB_FLAGS_DATA_IN: u32 = 0x0000_0040, mingw;
    pub const SRB_FLAGS_DATA_OUT: u32 = 0x0000_0080, mingw;
    pub const SRB_FLAGS_NO_DATA_TRANSFER: u32 = 0x0000_0000, mingw;
    pub const SRB_FLAGS_UNSPECIFIED_DIRECTION: u32 = 0x0000_00C0, mingw;
    pub const SRB_FLAGS_NO_QUEUE_FREEZE: u32 = 0x0000_0100, mingw;
    pub const SRB_FLAGS_ADAPTER_CACHE_ENABLE: u32 = 0x0000_0200, mingw;
    pub const SRB_FLAGS_IS_ACTIVE: u32 = 0x0001_0000, mingw;
    pub const SRB_SIMPLE_TAG_REQUEST: u8 = 0x20, mingw;
    pub const SRB_HEAD_OF_QUEUE_TAG_REQUEST: u8 = 0x21, mingw;
    pub const SRB_ORDERED_QUEUE_TAG_REQUEST: u8 = 0x22, mingw;
}

abi_consts! { PORT_RETURNS;
    pub const SP_RETURN_NOT_FOUND: u32 = 0, mingw;
    pub const SP_RETURN_FOUND: u32 = 1, mingw;
    pub const SP_RETURN_ERROR: u32 = 2, mingw;
    pub const SP_RETURN_BAD_CONFIG: u32 = 3, mingw;
    pub const SP_BUS_PARITY_ERROR: u32 = 0x0001, mingw;
    pub const SP_UNEXPECTED_DISCONNECT: u32 = 0x0002, mingw;
    pub const SP_PROTOCOL_ERROR: u32 = 0x0005, mingw;
    pub const SP_INTERNAL_ADAPTER_ERROR: u32 = 0x0006, mingw;
    pub const SP_REQUEST_TIMEOUT: u32 = 0x0007, mingw;
    pub const SP_IRQ_NOT_RESPONDING: u32 = 0x0008, mingw;
    pub const SP_BAD_FW_WARNING: u32 = 0x0009, mingw;
    pub const SP_BAD_FW_ERROR: u32 = 0x000a, mingw;
    pub const SP_UNINITIALIZED_VALUE: u32 = 0xFFFF_FFFF, mingw;
    pub const SP_UNTAGGED: u8 = 0xFF, mingw;
    pub const SCSI_DMA64_MINIPORT_SUPPORTED: u8 = 0x01, mingw;
    pub const SCSI_DMA64_SYSTEM_SUPPORTED: u8 = 0x80, mingw;
    pub const SCSI_MAXIMUM_TARGETS_PER_BUS: u8 = 128, mingw;
    pub const SCSI_MAXIMUM_LUNS_PER_TARGET: u8 = 255, mingw;
    pub const SCSI_MAXIMUM_LOGICAL_UNITS: u8 = 8, mingw;
}

abi_consts! { BUS_TYPES;
    pub const Internal: INTERFACE_TYPE = 0, mingw;
    pub const PCIBus: INTERFACE_TYPE = 5, mingw;
    pub const PCIConfiguration: BUS_DATA_TYPE = 4, mingw;
    pub const LevelSensitive: KINTERRUPT_MODE = 0, mingw;
    pub const Latched: KINTERRUPT_MODE = 1, mingw;
}

abi_consts! { ADAPTER_CONTROLS;
    pub const ScsiQuerySupportedControlTypes: SCSI_ADAPTER_CONTROL_TYPE = 0, mingw;
    pub const ScsiStopAdapter: SCSI_ADAPTER_CONTROL_TYPE = 1, mingw;
    pub const ScsiRestartAdapter: SCSI_ADAPTER_CONTROL_TYPE = 2, mingw;
    pub const ScsiSetBootConfig: SCSI_ADAPTER_CONTROL_TYPE = 3, mingw;
    pub const ScsiSetRunningConfig: SCSI_ADAPTER_CONTROL_TYPE = 4, mingw;
    pub const ScsiPowerSettingNotification: SCSI_ADAPTER_CONTROL_TYPE = 5, doc(STORPORT_DOC);
    pub const ScsiAdapterPower: SCSI_ADAPTER_CONTROL_TYPE = 6, doc(STORPORT_DOC);
    pub const ScsiAdapterControlSuccess: SCSI_ADAPTER_CONTROL_STATUS = 0, mingw;
    pub const ScsiAdapterControlUnsuccessful: SCSI_ADAPTER_CONTROL_STATUS = 1, mingw;
}

abi_consts! { NOTIFICATIONS;
    pub const RequestComplete: SCSI_NOTIFICATION_TYPE = 0, mingw;
    pub const NextRequest: SCSI_NOTIFICATION_TYPE = 1, mingw;
    pub const NextLuRequest: SCSI_NOTIFICATION_TYPE = 2, mingw;
    pub const ResetDetected: SCSI_NOTIFICATION_TYPE = 3, mingw;
    pub const RequestTimerCall: SCSI_NOTIFICATION_TYPE = 6, mingw;
    pub const BusChangeDetected: SCSI_NOTIFICATION_TYPE = 7, mingw;
    pub const LinkUp: SCSI_NOTIFICATION_TYPE = 10, mingw;
    pub const LinkDown: SCSI_NOTIFICATION_TYPE = 11, mingw;
    pub const EnablePassiveInitialization: SCSI_NOTIFICATION_TYPE = 0x1000, doc(STORPORT_DOC);
    pub const InitializeDpc: SCSI_NOTIFICATION_TYPE = 0x1001, doc(STORPORT_DOC);
    pub const IssueDpc: SCSI_NOTIFICATION_TYPE = 0x1002, doc(STORPORT_DOC);
    pub const AcquireSpinLock: SCSI_NOTIFICATION_TYPE = 0x1003, doc(STORPORT_DOC);
    pub const ReleaseSpinLock: SCSI_NOTIFICATION_TYPE = 0x1004, doc(STORPORT_DOC);
}

abi_consts! { STORPORT_CONSTANTS;
    pub const StorSynchronizeHalfDuplex: STOR_SYNCHRONIZATION_MODEL = 0, doc(STORPORT_DOC);
    pub const StorSynchronizeFullDuplex: STOR_SYNCHRONIZATION_MODEL = 1, doc(STORPORT_DOC);
    pub const InterruptSupportNone: INTERRUPT_SYNCHRONIZATION_MODE = 0, doc(STORPORT_DOC);
    pub const InterruptSynchronizeAll: INTERRUPT_SYNCHRONIZATION_MODE = 1, doc(STORPORT_DOC);
    pub const InterruptSynchronizePerMessage: INTERRUPT_SYNCHRONIZATION_MODE = 2,
        doc(STORPORT_DOC);
    pub const STOR_MAP_NO_BUFFERS: u8 = 0, doc(STORPORT_DOC);
    pub const STOR_MAP_ALL_BUFFERS: u8 = 1, doc(STORPORT_DOC);
    pub const STOR_MAP_NON_READ_WRITE_BUFFERS: u8 = 2, doc(STORPORT_DOC);
    pub const DUMP_MODE_CRASH: u8 = 1, doc(STORPORT_DOC);
    pub const DUMP_MODE_HIBER: u8 = 2, doc(STORPORT_DOC);
    pub const DUMP_MODE_MARK_MEMORY: u8 = 3, doc(STORPORT_DOC);
    pub const DUMP_MODE_RESUME: u8 = 4, doc(STORPORT_DOC);
    pub const STOR_FEATURE_FULL_PNP_DEVICE_CAPABILITIES: u32 = 0x0000_0004, doc(STORPORT_DOC);
    pub const STOR_FEATURE_DUMP_POINTERS: u32 = 0x0000_0008, doc(STORPORT_DOC);
    pub const STOR_FEATURE_DUMP_RESUME_CAPABLE: u32 = 0x0000_0020, doc(STORPORT_DOC);
    pub const DUMP_MINIPORT_VERSION_1: u16 = 0x0100, doc(STORPORT_DOC);
    pub const DUMP_MINIPORT_VERSION: u16 = 0x0200, doc(STORPORT_DOC);
    pub const SRB_TYPE_FLAG_SCSI_REQUEST_BLOCK: u32 = 0x1, doc(STORPORT_DOC);
    pub const SRB_TYPE_FLAG_STORAGE_REQUEST_BLOCK: u32 = 0x2, doc(STORPORT_DOC);
    /// `STATUS_REVISION_MISMATCH` (ntstatus.h): a port refusing our structure's size.
    pub const STATUS_REVISION_MISMATCH: u32 = 0xC000_0059, mingw;
    pub const STATUS_SUCCESS: u32 = 0, mingw;
}

/// Every constant group, for the layout checks.
pub const CONST_GROUPS: &[&[ConstLayout]] = &[
    SIZES,
    SRB_FUNCTIONS,
    SRB_STATUSES,
    SRB_FLAGS,
    PORT_RETURNS,
    BUS_TYPES,
    ADAPTER_CONTROLS,
    NOTIFICATIONS,
    STORPORT_CONSTANTS,
];

/// `SRB_STATUS()` (srb.h): the status without the queue-frozen and autosense bits.
pub const fn srb_status(status: u8) -> u8 {
    status & !(SRB_STATUS_AUTOSENSE_VALID | SRB_STATUS_QUEUE_FROZEN)
}
