//! A ConnectX-4-class PCI function: its type-0 configuration header and the part of BAR0
//! the driver reads before bring-up (the initialization segment, reference/mlx5.md
//! §C.2; all registers big-endian).
//!
//! Stricter than hardware: a register access outside what is modelled, unaligned, or
//! past the BAR is recorded as a [`Violation`] that tests assert never happens.

use std::cell::{Cell, RefCell};

use fabboot_hca::Mmio;
use fabboot_hca::init_seg::offset;

/// PCI class code of an InfiniBand controller (network, InfiniBand, no prog-if).
pub const CLASS_INFINIBAND: u32 = 0x02_07_00;
/// Size of BAR0 on the modelled function (ConnectX-4: 32 MiB).
pub const BAR0_LEN: u32 = 32 << 20;

/// A register access the model refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// Offset not 4-byte aligned.
    Unaligned { offset: usize, write: bool },
    /// Offset past the end of BAR0.
    OutOfBar { offset: usize, write: bool },
    /// A register the model does not implement (yet): the driver reached further than
    /// this model can answer truthfully.
    Unmodelled { offset: usize, write: bool },
    /// A write to a read-only register.
    ReadOnly { offset: usize, value: u32 },
}

/// The modelled function.
#[derive(Debug)]
pub struct Mlx5Function {
    config: [u8; 256],
    bar0: u64,
    fw: (u16, u16, u16),
    cmdif: u16,
    responding: Cell<bool>,
    violations: RefCell<Vec<Violation>>,
}

impl Mlx5Function {
    /// A ConnectX-4 (`15b3:1013`) with firmware 12.28.2006, command interface 5, and a
    /// 64-bit BAR0 at `bar0`.
    pub fn connectx4(bar0: u64) -> Mlx5Function {
        let mut f = Mlx5Function {
            config: [0; 256],
            bar0,
            fw: (12, 28, 2006),
            cmdif: 5,
            responding: Cell::new(true),
            violations: RefCell::new(Vec::new()),
        };
        f.set_ids(0x15B3, 0x1013);
        f.config[0x04..0x06].copy_from_slice(&0x0006u16.to_le_bytes());
        f.config[0x08..0x0C].copy_from_slice(&(CLASS_INFINIBAND << 8).to_le_bytes());
        let low = (bar0 as u32 & !0xF) | 0b1100; // 64-bit, prefetchable memory
        f.config[0x10..0x14].copy_from_slice(&low.to_le_bytes());
        f.config[0x14..0x18].copy_from_slice(&((bar0 >> 32) as u32).to_le_bytes());
        f
    }

    /// Changes vendor and device ID.
    pub fn set_ids(&mut self, vendor: u16, device: u16) {
        self.config[0..2].copy_from_slice(&vendor.to_le_bytes());
        self.config[2..4].copy_from_slice(&device.to_le_bytes());
    }

    /// Changes the firmware version and command-interface revision it reports.
    pub fn set_firmware(&mut self, major: u16, minor: u16, subminor: u16, cmdif: u16) {
        self.fw = (major, minor, subminor);
        self.cmdif = cmdif;
    }

    /// Makes the function stop answering (every read returns all ones), as after a
    /// surprise removal or a fatal PCI error.
    pub fn set_responding(&self, responding: bool) {
        self.responding.set(responding);
    }

    /// Configuration space, little-endian as on the bus.
    pub fn config_space(&self) -> &[u8] {
        &self.config
    }

    /// Bus address of BAR0.
    pub fn bar0(&self) -> u64 {
        self.bar0
    }

    /// Every refused access so far.
    pub fn violations(&self) -> Vec<Violation> {
        self.violations.borrow().clone()
    }

    fn refuse(&self, v: Violation) {
        self.violations.borrow_mut().push(v);
    }

    fn check(&self, offset: usize, write: bool) -> bool {
        if !offset.is_multiple_of(4) {
            self.refuse(Violation::Unaligned { offset, write });
            false
        } else if offset + 4 > BAR0_LEN as usize {
            self.refuse(Violation::OutOfBar { offset, write });
            false
        } else {
            true
        }
    }
}

impl Mmio for Mlx5Function {
    fn read32(&self, off: usize) -> u32 {
        if !self.check(off, false) {
            return u32::MAX;
        }
        if !self.responding.get() {
            return u32::MAX;
        }
        let (major, minor, subminor) = self.fw;
        match off {
            offset::FW_REV => u32::from(minor) << 16 | u32::from(major),
            offset::CMDIF_REV_FW_SUB => u32::from(self.cmdif) << 16 | u32::from(subminor),
            // Firmware finished initialising.
            offset::INITIALIZING => 0,
            _ => {
                self.refuse(Violation::Unmodelled {
                    offset: off,
                    write: false,
                });
                u32::MAX
            }
        }
    }

    fn write32(&self, off: usize, value: u32) {
        if !self.check(off, true) {
            return;
        }
        match off {
            offset::FW_REV | offset::CMDIF_REV_FW_SUB | offset::INITIALIZING => {
                self.refuse(Violation::ReadOnly { offset: off, value })
            }
            _ => self.refuse(Violation::Unmodelled {
                offset: off,
                write: true,
            }),
        }
    }
}
