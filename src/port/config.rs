//! What `HwFindAdapter` tells the port driver about a found adapter
//! (`PORT_CONFIGURATION_INFORMATION`; learn.microsoft.com "HwStorFindAdapter": the
//! miniport must set `MaximumTransferLength` and `NumberOfPhysicalBreaks`).

use core::mem::{offset_of, size_of};

use super::Flavour;
use super::abi::*;

/// Largest transfer reported before an SRP login has said what the target accepts.
pub const DEFAULT_MAX_TRANSFER: u32 = 64 * 1024;
/// Scatter-gather breaks for [`DEFAULT_MAX_TRANSFER`] in 4 KiB pages, not page aligned.
pub const DEFAULT_PHYSICAL_BREAKS: u32 = DEFAULT_MAX_TRANSFER / 4096;
/// SCSI ID the initiator reports for itself; our one target is ID 0.
pub const INITIATOR_BUS_ID: u8 = 7;

/// Fills in what the port needs to know about the adapter: a bus master doing 64-bit
/// scatter-gather DMA with no alignment rule, one bus with one target (the SRP target)
/// and its LUNs, tagged queuing and autosense, and (storport) full-duplex
/// synchronisation with buffers mapped only for non-read/write requests.
pub fn describe_adapter(cfg: &mut PORT_CONFIGURATION_INFORMATION, flavour: Flavour) {
    cfg.MaximumTransferLength = DEFAULT_MAX_TRANSFER;
    // A value the port preset may be lowered, never raised (NTLDR forces 17).
    cfg.NumberOfPhysicalBreaks = match cfg.NumberOfPhysicalBreaks {
        SP_UNINITIALIZED_VALUE => DEFAULT_PHYSICAL_BREAKS,
        preset => preset.min(DEFAULT_PHYSICAL_BREAKS),
    };
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
        // Scsiport needs no virtual address for any buffer: the miniport builds SRP
        // descriptors from physical addresses and never touches data with the CPU.
        Flavour::Scsiport => cfg.MapBuffers = 0,
        Flavour::Storport => {
            cfg.MapBuffers = STOR_MAP_NON_READ_WRITE_BUFFERS;
            if cfg.covers(end_of_synchronization_model()) {
                cfg.SynchronizationModel = StorSynchronizeFullDuplex;
            }
        }
    }
}

const fn end_of_synchronization_model() -> usize {
    offset_of!(PORT_CONFIGURATION_INFORMATION, SynchronizationModel)
        + size_of::<STOR_SYNCHRONIZATION_MODEL>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port_config(length: usize) -> PORT_CONFIGURATION_INFORMATION {
        let mut c = PORT_CONFIGURATION_INFORMATION::zeroed();
        c.Length = length as u32;
        c.NumberOfPhysicalBreaks = SP_UNINITIALIZED_VALUE;
        c.SynchronizationModel = StorSynchronizeHalfDuplex;
        c
    }

    #[test]
    fn storport_gets_full_duplex_and_mapped_control_buffers() {
        let mut c = port_config(size_of::<PORT_CONFIGURATION_INFORMATION>());
        describe_adapter(&mut c, Flavour::Storport);
        assert_eq!(c.SynchronizationModel, StorSynchronizeFullDuplex);
        assert_eq!(c.MapBuffers, STOR_MAP_NON_READ_WRITE_BUFFERS);
        assert_eq!(c.NumberOfPhysicalBreaks, DEFAULT_PHYSICAL_BREAKS);
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
        describe_adapter(&mut c, Flavour::Storport);
        assert_eq!(c.SynchronizationModel, StorSynchronizeHalfDuplex);
    }

    #[test]
    fn scsiport_maps_no_buffers_and_keeps_the_loaders_break_limit_when_lower() {
        let mut c = port_config(SCSIPORT_CONFIG_INFO_SIZE);
        c.NumberOfPhysicalBreaks = 17;
        describe_adapter(&mut c, Flavour::Scsiport);
        assert_eq!(c.MapBuffers, 0);
        assert_eq!(c.NumberOfPhysicalBreaks, DEFAULT_PHYSICAL_BREAKS.min(17));
        c.NumberOfPhysicalBreaks = 8;
        describe_adapter(&mut c, Flavour::Scsiport);
        assert_eq!(c.NumberOfPhysicalBreaks, 8, "a preset is never raised");
    }
}
