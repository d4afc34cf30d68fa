//! With the `wdk` feature (Windows hosts with a WDK; see README), the port ABI is
//! compared at compile time with the WDK's own storport definitions as `wdk-sys`
//! (feature `storage`) generates them: sizes and the offset of every member named alike.

use core::mem::{offset_of, size_of};

use super::abi;

macro_rules! same_layout {
    ($ours:ty, $theirs:ty, [$($field:ident),* $(,)?]) => {
        static_assertions::const_assert_eq!(size_of::<$ours>(), size_of::<$theirs>());
        $(
            static_assertions::const_assert_eq!(
                offset_of!($ours, $field),
                offset_of!($theirs, $field)
            );
        )*
    };
}

same_layout!(
    abi::ACCESS_RANGE,
    wdk_sys::ACCESS_RANGE,
    [RangeStart, RangeLength, RangeInMemory]
);
same_layout!(
    abi::MEMORY_REGION,
    wdk_sys::MEMORY_REGION,
    [VirtualBase, PhysicalBase, Length]
);
same_layout!(
    abi::HW_INITIALIZATION_DATA,
    wdk_sys::HW_INITIALIZATION_DATA,
    [
        HwInitializationDataSize,
        AdapterInterfaceType,
        HwInitialize,
        HwStartIo,
        HwInterrupt,
        HwFindAdapter,
        HwResetBus,
        HwDmaStarted,
        HwAdapterState,
        DeviceExtensionSize,
        SpecificLuExtensionSize,
        SrbExtensionSize,
        NumberOfAccessRanges,
        Reserved,
        MapBuffers,
        NeedPhysicalAddresses,
        TaggedQueuing,
        AutoRequestSense,
        MultipleRequestPerLu,
        ReceiveEvent,
        VendorIdLength,
        VendorId,
        DeviceIdLength,
        DeviceId,
        HwAdapterControl,
        HwBuildIo,
        HwFreeAdapterResources,
        HwProcessServiceRequest,
        HwCompleteServiceIrp,
        HwInitializeTracing,
        HwCleanupTracing,
        HwTracingEnabled,
        FeatureSupport,
        SrbTypeFlags,
        AddressTypeFlags,
        Reserved1,
        HwUnitControl,
    ]
);
same_layout!(
    abi::PORT_CONFIGURATION_INFORMATION,
    wdk_sys::PORT_CONFIGURATION_INFORMATION,
    [
        Length,
        SystemIoBusNumber,
        AdapterInterfaceType,
        BusInterruptLevel,
        BusInterruptVector,
        InterruptMode,
        MaximumTransferLength,
        NumberOfPhysicalBreaks,
        DmaChannel,
        DmaPort,
        DmaWidth,
        DmaSpeed,
        AlignmentMask,
        NumberOfAccessRanges,
        AccessRanges,
        MiniportDumpData,
        NumberOfBuses,
        InitiatorBusId,
        ScatterGather,
        Master,
        CachesData,
        AdapterScansDown,
        AtdiskPrimaryClaimed,
        AtdiskSecondaryClaimed,
        Dma32BitAddresses,
        DemandMode,
        MapBuffers,
        NeedPhysicalAddresses,
        TaggedQueuing,
        AutoRequestSense,
        MultipleRequestPerLu,
        ReceiveEvent,
        RealModeInitialized,
        BufferAccessScsiPortControlled,
        MaximumNumberOfTargets,
        SrbType,
        AddressType,
        SlotNumber,
        DeviceExtensionSize,
        SpecificLuExtensionSize,
        SrbExtensionSize,
        Dma64BitAddresses,
        ResetTargetSupported,
        MaximumNumberOfLogicalUnits,
        WmiDataProvider,
        SynchronizationModel,
        HwMSInterruptRoutine,
        InterruptSynchronizationMode,
        DumpRegion,
        RequestedDumpBufferSize,
        VirtualDevice,
        DumpMode,
        DmaAddressWidth,
        ExtendedFlags1,
        MaxNumberOfIO,
        MaxIOsPerLun,
        InitialLunQueueDepth,
        BusResetHoldTime,
        FeatureSupport,
    ]
);
same_layout!(
    abi::SCSI_REQUEST_BLOCK,
    wdk_sys::SCSI_REQUEST_BLOCK,
    [
        Length,
        Function,
        SrbStatus,
        ScsiStatus,
        PathId,
        TargetId,
        Lun,
        QueueTag,
        QueueAction,
        CdbLength,
        SenseInfoBufferLength,
        SrbFlags,
        DataTransferLength,
        TimeOutValue,
        DataBuffer,
        SenseInfoBuffer,
        NextSrb,
        OriginalRequest,
        SrbExtension,
        Cdb,
    ]
);
same_layout!(
    abi::STOR_SCATTER_GATHER_ELEMENT,
    wdk_sys::STOR_SCATTER_GATHER_ELEMENT,
    [PhysicalAddress, Length, Reserved]
);
same_layout!(
    abi::STOR_SCATTER_GATHER_LIST,
    wdk_sys::STOR_SCATTER_GATHER_LIST,
    [NumberOfElements, Reserved, List]
);
