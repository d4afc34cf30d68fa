//! What `HwFindAdapter` tells the port driver about a found adapter
//! (`PORT_CONFIGURATION_INFORMATION`; learn.microsoft.com "HwStorFindAdapter": the
//! miniport must set `MaximumTransferLength` and `NumberOfPhysicalBreaks`).

use core::mem::{offset_of, size_of};

use super::Flavour;
use super::abi::*;

/// Largest transfer the initiator carries in one SRP_CMD: 255 indirect descriptors
/// in the IU, each a page or more, tested end to end at 1 MiB.
pub const MAX_TRANSFER: u32 = 1024 * 1024;
/// SCSI ID the initiator reports for itself; our one target is ID 0.
pub const INITIATOR_BUS_ID: u8 = 7;

/// Fills in what the port needs to know about the adapter: a bus master doing 64-bit
/// scatter-gather DMA with no alignment rule, one bus with one target (the SRP target)
/// and its LUNs, tagged queuing and autosense, and (storport) buffers mapped only for
/// non-read/write requests.
///
/// Transfers are at most [`MAX_TRANSFER`] bytes in at most `max_sg` pieces
/// (`NumberOfPhysicalBreaks` = pieces − 1, as WinOF's SRP miniport counts them,
/// reference/windows-side.md §1.3); a value the port preset (NTLDR forces 17 breaks)
/// is lowered to these, never raised.
///
/// Storport runs the miniport half duplex: the initiator is one state machine that
/// `HwStartIo`, the interrupt routines and the timer all drive, and half duplex is the
/// model in which storport serialises all of them (full duplex would let `HwStartIo`
/// run beside the interrupt routine). Message-signalled interrupts go to
/// `ms_interrupt`, under one lock for all messages.
pub fn describe_adapter(
    cfg: &mut PORT_CONFIGURATION_INFORMATION,
    flavour: Flavour,
    max_sg: usize,
    ms_interrupt: PHW_MESSAGE_SIGNALED_INTERRUPT_ROUTINE,
) {
    cfg.MaximumTransferLength = lowered(cfg.MaximumTransferLength, MAX_TRANSFER);
    let breaks = u32::try_from(max_sg.saturating_sub(1)).unwrap_or(u32::MAX);
    cfg.NumberOfPhysicalBreaks = lowered(cfg.NumberOfPhysicalBreaks, breaks);
    cfg.AlignmentMask = 0;
    cfg.NumberOfBuses = 1;
    cfg.InitiatorBusId[0] = INITIATOR_BUS_ID;
    cfg.ScatterGather = 1;
    cfg.Master = 1;
    cfg.CachesData = 0;
    cfg.Dma32BitAddresses = 0;
    cfg.Dma64BitAddresses = SCSI_DMA64_MINIPORT_SUPPORTED;
    cfg.NeedPhysicalAddresses = 1;
    cfg.TaggedQueuing = 1;
    cfg.AutoRequestSense = 1;
    cfg.MultipleRequestPerLu = 1;
    cfg.MaximumNumberOfTargets = 1;
    cfg.MaximumNumberOfLogicalUnits = SCSI_MAXIMUM_LUNS_PER_TARGET;
    match flavour {
        // Scsiport needs no virtual address for any buffer but the sense buffer, which
        // it maps regardless: descriptors are built from physical addresses.
        Flavour::Scsiport => cfg.MapBuffers = 0,
        Flavour::Storport => {
            cfg.MapBuffers = STOR_MAP_NON_READ_WRITE_BUFFERS;
            if cfg.covers(end_of(
                offset_of!(PORT_CONFIGURATION_INFORMATION, SynchronizationModel),
                size_of::<STOR_SYNCHRONIZATION_MODEL>(),
            )) {
                cfg.SynchronizationModel = StorSynchronizeHalfDuplex;
            }
            if cfg.covers(end_of(
                offset_of!(PORT_CONFIGURATION_INFORMATION, InterruptSynchronizationMode),
                size_of::<INTERRUPT_SYNCHRONIZATION_MODE>(),
            )) {
                cfg.HwMSInterruptRoutine = ms_interrupt;
                cfg.InterruptSynchronizationMode = InterruptSynchronizeAll;
            }
        }
    }
}

/// `preset` lowered to `limit`; a port that preset nothing (`SP_UNINITIALIZED_VALUE`
/// or 0) gets `limit`.
fn lowered(preset: u32, limit: u32) -> u32 {
    match preset {
        SP_UNINITIALIZED_VALUE | 0 => limit,
        p => p.min(limit),
    }
}

const fn end_of(offset: usize, size: usize) -> usize {
    offset + size
}

/// Whether the port's structure has the dump members (`DumpMode`, `DumpRegion`,
/// `RequestedDumpBufferSize`: storport, Windows 8 and later).
pub fn has_dump_members(cfg: &PORT_CONFIGURATION_INFORMATION) -> bool {
    cfg.covers(end_of(
        offset_of!(PORT_CONFIGURATION_INFORMATION, DumpMode),
        size_of::<UCHAR>(),
    ))
}

/// Whether this `HwFindAdapter` is the crash-dump or hibernation instance (storport's
/// `DumpMode`, reference/windows-side.md §3.1).
pub fn dump_mode(cfg: &PORT_CONFIGURATION_INFORMATION, flavour: Flavour) -> bool {
    flavour == Flavour::Storport && has_dump_members(cfg) && cfg.DumpMode != 0
}

/// Whether this `HwFindAdapter` is the hibernation stack's `DUMP_MODE_MARK_MEMORY`
/// instance, which runs beside the live normal instance (reference/windows-side.md
/// §3.3).
pub fn marks_memory_only(cfg: &PORT_CONFIGURATION_INFORMATION, flavour: Flavour) -> bool {
    dump_mode(cfg, flavour) && cfg.DumpMode == DUMP_MODE_MARK_MEMORY
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port_config(length: usize) -> PORT_CONFIGURATION_INFORMATION {
        let mut c = PORT_CONFIGURATION_INFORMATION::zeroed();
        c.Length = length as u32;
        c.NumberOfPhysicalBreaks = SP_UNINITIALIZED_VALUE;
        c.MaximumTransferLength = SP_UNINITIALIZED_VALUE;
        c.SynchronizationModel = StorSynchronizeFullDuplex;
        c
    }

    unsafe extern "system" fn ms(_: PVOID, _: ULONG) -> BOOLEAN {
        1
    }

    #[test]
    fn storport_gets_half_duplex_msi_and_mapped_control_buffers() {
        let mut c = port_config(size_of::<PORT_CONFIGURATION_INFORMATION>());
        describe_adapter(&mut c, Flavour::Storport, 255, Some(ms));
        assert_eq!(c.SynchronizationModel, StorSynchronizeHalfDuplex);
        assert!(c.HwMSInterruptRoutine.is_some());
        assert_eq!(c.InterruptSynchronizationMode, InterruptSynchronizeAll);
        assert_eq!(c.MapBuffers, STOR_MAP_NON_READ_WRITE_BUFFERS);
        assert_eq!(c.NumberOfPhysicalBreaks, 254);
        assert_eq!(c.MaximumTransferLength, MAX_TRANSFER);
        assert_eq!(
            (c.ScatterGather, c.Master, c.NeedPhysicalAddresses),
            (1, 1, 1)
        );
        assert_eq!(c.MaximumNumberOfTargets, 1);
        assert_eq!(c.Dma64BitAddresses, SCSI_DMA64_MINIPORT_SUPPORTED);
    }

    #[test]
    fn a_short_structure_is_not_written_past_its_length() {
        // A structure that ends before SynchronizationModel: leave that member alone.
        let mut c = port_config(offset_of!(
            PORT_CONFIGURATION_INFORMATION,
            SynchronizationModel
        ));
        describe_adapter(&mut c, Flavour::Storport, 255, Some(ms));
        assert_eq!(c.SynchronizationModel, StorSynchronizeFullDuplex);
        assert!(c.HwMSInterruptRoutine.is_none());
        assert!(!has_dump_members(&c));
        c.DumpMode = DUMP_MODE_CRASH;
        assert!(
            !dump_mode(&c, Flavour::Storport),
            "DumpMode lies beyond Length"
        );
    }

    #[test]
    fn presets_are_lowered_never_raised() {
        let mut c = port_config(SCSIPORT_CONFIG_INFO_SIZE);
        c.NumberOfPhysicalBreaks = 17;
        c.MaximumTransferLength = 0x2_0000;
        describe_adapter(&mut c, Flavour::Scsiport, 255, None);
        assert_eq!(c.MapBuffers, 0);
        assert_eq!(c.NumberOfPhysicalBreaks, 17, "the loader's 17 is kept");
        assert_eq!(c.MaximumTransferLength, 0x2_0000);
        // A target that takes direct descriptors only: one piece, no break.
        describe_adapter(&mut c, Flavour::Scsiport, 1, None);
        assert_eq!(c.NumberOfPhysicalBreaks, 0);
        let mut c = port_config(SCSIPORT_CONFIG_INFO_SIZE);
        c.MaximumTransferLength = 0;
        describe_adapter(&mut c, Flavour::Scsiport, 255, None);
        assert_eq!(c.MaximumTransferLength, MAX_TRANSFER);
    }

    #[test]
    fn the_dump_instance_is_recognised_by_dump_mode() {
        let mut c = port_config(size_of::<PORT_CONFIGURATION_INFORMATION>());
        assert!(has_dump_members(&c));
        assert!(!dump_mode(&c, Flavour::Storport));
        c.DumpMode = DUMP_MODE_HIBER;
        assert!(dump_mode(&c, Flavour::Storport));
        assert!(!dump_mode(&c, Flavour::Scsiport));
    }
}
