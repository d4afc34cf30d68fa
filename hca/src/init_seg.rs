//! The initialization segment at the start of BAR0 (mlx5 PRM "Initialization Segment";
//! `struct mlx5_init_seg` in Linux `include/linux/mlx5/device.h`; reference/mlx5.md §C.2).

use crate::Mmio;

/// Byte offsets of the initialization-segment registers used by the driver.
pub mod offset {
    /// `fw_rev`: firmware minor (31:16) and major (15:0) revision.
    pub const FW_REV: usize = 0x000;
    /// `cmdif_rev_fw_sub`: command-interface revision (31:16), firmware sub-minor (15:0).
    pub const CMDIF_REV_FW_SUB: usize = 0x004;
    /// `cmdq_addr_h`: command queue physical address, bits 63:32.
    pub const CMDQ_ADDR_H: usize = 0x010;
    /// `cmdq_addr_l_sz`: command queue address 31:12, nic_interface 9:8, log size 7:4,
    /// log stride 3:0.
    pub const CMDQ_ADDR_L_SZ: usize = 0x014;
    /// `cmd_dbell`: command doorbell vector, one bit per command-queue slot.
    pub const CMD_DBELL: usize = 0x018;
    /// `initializing`: bit 31 is set while firmware initialises.
    pub const INITIALIZING: usize = 0x1FC;
    /// Start of the 64-byte health buffer.
    pub const HEALTH: usize = 0x200;
    /// `internal_timer_h`: bits 63:32 of the free-running internal timer.
    pub const INTERNAL_TIMER_H: usize = 0x1000;
    /// `internal_timer_l`: bits 31:0 of the free-running internal timer.
    pub const INTERNAL_TIMER_L: usize = 0x1004;
}

/// The only command-interface revision this driver speaks (Linux refuses any other).
pub const SUPPORTED_CMDIF_REV: u16 = 5;

/// Firmware revision from `fw_rev` and `cmdif_rev_fw_sub`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FwVersion {
    /// Major revision (`fw_rev` bits 15:0).
    pub major: u16,
    /// Minor revision (`fw_rev` bits 31:16).
    pub minor: u16,
    /// Sub-minor revision (`cmdif_rev_fw_sub` bits 15:0).
    pub subminor: u16,
}

/// What the initialization segment says about the firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revisions {
    /// Firmware version.
    pub fw: FwVersion,
    /// Command-interface revision (`cmdif_rev_fw_sub` bits 31:16).
    pub cmdif: u16,
}

/// Why the initialization segment cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitSegError {
    /// Both revision registers read all ones: the function does not answer (powered
    /// down, removed, or not mapped).
    NotResponding,
    /// The firmware speaks a command-interface revision other than
    /// [`SUPPORTED_CMDIF_REV`].
    UnsupportedCmdIf {
        /// The revision the device reported.
        found: u16,
        /// Its firmware version, for the event log.
        fw: FwVersion,
    },
}

/// Reads the firmware and command-interface revisions and checks that the driver can
/// speak to this firmware.
pub fn read_revisions(bar: &impl Mmio) -> Result<Revisions, InitSegError> {
    let fw_rev = bar.read32(offset::FW_REV);
    let cmdif_sub = bar.read32(offset::CMDIF_REV_FW_SUB);
    if fw_rev == u32::MAX && cmdif_sub == u32::MAX {
        return Err(InitSegError::NotResponding);
    }
    let fw = FwVersion {
        major: low16(fw_rev),
        minor: high16(fw_rev),
        subminor: low16(cmdif_sub),
    };
    let cmdif = high16(cmdif_sub);
    if cmdif != SUPPORTED_CMDIF_REV {
        return Err(InitSegError::UnsupportedCmdIf { found: cmdif, fw });
    }
    Ok(Revisions { fw, cmdif })
}

fn high16(v: u32) -> u16 {
    (v >> 16) as u16
}

fn low16(v: u32) -> u16 {
    (v & 0xFFFF) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    /// A BAR whose first two registers are given; every other offset reads as zero.
    struct Regs {
        fw_rev: u32,
        cmdif: u32,
        writes: Cell<u32>,
    }

    impl Mmio for Regs {
        fn read32(&self, offset: usize) -> u32 {
            match offset {
                offset::FW_REV => self.fw_rev,
                offset::CMDIF_REV_FW_SUB => self.cmdif,
                _ => 0,
            }
        }
        fn write32(&self, _offset: usize, _value: u32) {
            self.writes.set(self.writes.get() + 1);
        }
    }

    fn regs(fw_rev: u32, cmdif: u32) -> Regs {
        Regs {
            fw_rev,
            cmdif,
            writes: Cell::new(0),
        }
    }

    #[test]
    fn decodes_a_connectx4_firmware_version() {
        // Firmware 12.28.2006 with command interface 5, as a ConnectX-4 reports it.
        let bar = regs(0x001C_000C, 0x0005_07D6);
        let rev = read_revisions(&bar).unwrap();
        assert_eq!(
            rev.fw,
            FwVersion {
                major: 12,
                minor: 28,
                subminor: 2006
            }
        );
        assert_eq!(rev.cmdif, 5);
        assert_eq!(
            bar.writes.get(),
            0,
            "reading revisions must not write the device"
        );
    }

    #[test]
    fn refuses_other_command_interface_revisions() {
        for found in [0u16, 3, 4, 6, 0xFFFF] {
            let bar = regs(0x0010_0010, u32::from(found) << 16 | 7);
            assert_eq!(
                read_revisions(&bar),
                Err(InitSegError::UnsupportedCmdIf {
                    found,
                    fw: FwVersion {
                        major: 16,
                        minor: 16,
                        subminor: 7
                    }
                })
            );
        }
    }

    #[test]
    fn all_ones_means_the_function_does_not_answer() {
        assert_eq!(
            read_revisions(&regs(u32::MAX, u32::MAX)),
            Err(InitSegError::NotResponding)
        );
        // One register of all ones is a (strange) value, not a dead function.
        assert!(matches!(
            read_revisions(&regs(u32::MAX, 0x0005_0000)),
            Ok(Revisions { cmdif: 5, .. })
        ));
    }
}
