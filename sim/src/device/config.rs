//! The function's PCI configuration space: the type-0 header (PCI Local Bus 3.0 §6.1)
//! and a PCI Express capability (PCIe Base 4.0 §7.5.3) that offers function-level
//! reset (§6.6.2).
//!
//! What the model enforces, as a real function would: only the writable bits of the
//! header take a write; memory decoding follows Command.Memory Space and BAR0; DMA
//! follows Command.Bus Master; and an FLR returns the header to its reset values (the
//! BARs unprogrammed, decoding and bus mastering off), so a driver that resets the
//! function must restore them before it touches the BAR again.

/// Offset of the PCI Express capability in the modelled header.
pub const PCIE_CAP: usize = 0x60;
/// Capability ID of PCI Express (PCI Code and ID Assignment §2).
pub const CAP_ID_PCIE: u8 = 0x10;
/// Device Capabilities: Function Level Reset Capability (bit 28).
pub const DEVCAP_FLR: u32 = 1 << 28;
/// Device Control: Initiate Function Level Reset (bit 15; always reads 0).
pub const DEVCTL_FLR: u16 = 1 << 15;
/// Device Control after reset: Enable Relaxed Ordering, Enable No Snoop, 512-byte
/// Max_Read_Request_Size (PCIe Base 4.0 §7.5.3.4 defaults).
pub const DEVCTL_DEFAULT: u16 = 0x2810;
/// Command register: Memory Space Enable.
pub const CMD_MEMORY: u16 = 1 << 1;
/// Command register: Bus Master Enable.
pub const CMD_BUS_MASTER: u16 = 1 << 2;
/// Command bits software may write (I/O is hard-wired off: the function has no I/O
/// BAR): memory, bus master, parity error response, SERR#, interrupt disable.
const CMD_WRITABLE: u16 = CMD_MEMORY | CMD_BUS_MASTER | 1 << 6 | 1 << 8 | 1 << 10;
/// Status: Capabilities List.
const STATUS_CAP_LIST: u16 = 1 << 4;
/// BAR0's type bits: 64-bit, prefetchable memory.
const BAR0_TYPE: u32 = 0b1100;

/// Configuration space with its write semantics.
#[derive(Clone, Debug)]
pub struct ConfigSpace {
    bytes: [u8; 256],
    /// BAR0's size, a power of two (its low address bits are hard-wired to zero).
    bar0_len: u32,
}

/// What a configuration write did beyond storing bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteEffect {
    /// Nothing more.
    None,
    /// Initiate Function Level Reset was written with 1.
    FunctionLevelReset,
}

impl ConfigSpace {
    /// The header of a `vendor:device` function of `class` with a 64-bit BAR0 of
    /// `bar0_len` bytes at `bar0`, decoding memory and mastering the bus (as firmware
    /// left it), and a PCI Express endpoint capability offering FLR.
    pub fn new(vendor: u16, device: u16, class: u32, bar0: u64, bar0_len: u32) -> ConfigSpace {
        let mut c = ConfigSpace {
            bytes: [0u8; 256],
            bar0_len,
        };
        c.set16(0x00, vendor);
        c.set16(0x02, device);
        c.set32(0x08, class << 8);
        c.set16(0x06, STATUS_CAP_LIST);
        c.bytes[0x34] = PCIE_CAP as u8;
        c.bytes[PCIE_CAP] = CAP_ID_PCIE;
        c.bytes[PCIE_CAP + 1] = 0; // end of the list
        c.set16(PCIE_CAP + 2, 0x0002); // capability version 2, PCI Express endpoint
        c.set32(PCIE_CAP + 4, DEVCAP_FLR | 0b001); // FLR; 256-byte max payload
        c.reset_registers();
        c.set16(0x04, CMD_MEMORY | CMD_BUS_MASTER);
        c.set32(0x10, bar0 as u32 & !(bar0_len - 1) | BAR0_TYPE);
        c.set32(0x14, (bar0 >> 32) as u32);
        c
    }

    /// The bytes, little-endian as on the bus.
    pub fn bytes(&self) -> [u8; 256] {
        self.bytes
    }

    /// A little-endian 16-bit register.
    pub fn get16(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]])
    }

    /// A little-endian 32-bit register.
    pub fn get32(&self, at: usize) -> u32 {
        u32::from_le_bytes([
            self.bytes[at],
            self.bytes[at + 1],
            self.bytes[at + 2],
            self.bytes[at + 3],
        ])
    }

    fn set16(&mut self, at: usize, v: u16) {
        self.bytes[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }

    fn set32(&mut self, at: usize, v: u32) {
        self.bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// Sets vendor and device ID (a test's other function).
    pub fn set_ids(&mut self, vendor: u16, device: u16) {
        self.set16(0x00, vendor);
        self.set16(0x02, device);
    }

    /// The address BAR0 decodes, when memory decoding is on.
    pub fn decoded_bar0(&self) -> Option<u64> {
        if self.get16(0x04) & CMD_MEMORY == 0 {
            return None;
        }
        Some(u64::from(self.get32(0x14)) << 32 | u64::from(self.get32(0x10) & !0xF))
    }

    /// Whether the function may master the bus (DMA).
    pub fn bus_master(&self) -> bool {
        self.get16(0x04) & CMD_BUS_MASTER != 0
    }

    /// The mask of bits software may write in the byte at `at`.
    fn writable(&self, at: usize) -> u8 {
        let byte_of = |v: u32, base: usize| (v >> (8 * (at - base))) as u8;
        match at {
            0x04..=0x05 => byte_of(CMD_WRITABLE.into(), 0x04),
            // Cache Line Size, Latency Timer.
            0x0C | 0x0D => 0xFF,
            0x10..=0x13 => byte_of(!(self.bar0_len - 1) & !0xF, 0x10),
            0x14..=0x17 => 0xFF,
            // Interrupt Line.
            0x3C => 0xFF,
            // Device Control (bit 15 is a command, below).
            a if a == PCIE_CAP + 8 => 0xFF,
            a if a == PCIE_CAP + 9 => 0x7F,
            _ => 0,
        }
    }

    /// Writes `data` at `offset` as the bus would: read-only bits keep their value,
    /// Initiate FLR is reported (and reads back 0). Returns the bytes accepted (all of
    /// them inside the 256-byte space) and the effect.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> (usize, WriteEffect) {
        let mut effect = WriteEffect::None;
        let mut n = 0;
        for (i, &v) in data.iter().enumerate() {
            let at = offset + i;
            if at >= self.bytes.len() {
                break;
            }
            let mask = self.writable(at);
            self.bytes[at] = self.bytes[at] & !mask | v & mask;
            if at == PCIE_CAP + 9 && v & (DEVCTL_FLR >> 8) as u8 != 0 {
                effect = WriteEffect::FunctionLevelReset;
            }
            n += 1;
        }
        (n, effect)
    }

    /// What an FLR does to the header: the writable registers return to their reset
    /// values (decoding and bus mastering off, BAR0 unprogrammed).
    pub fn reset_registers(&mut self) {
        self.set16(0x04, 0);
        self.bytes[0x0C] = 0;
        self.bytes[0x0D] = 0;
        self.set32(0x10, BAR0_TYPE);
        self.set32(0x14, 0);
        self.bytes[0x3C] = 0;
        self.set16(PCIE_CAP + 8, DEVCTL_DEFAULT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> ConfigSpace {
        ConfigSpace::new(0x15B3, 0x1013, 0x020700, 0xE000_0000, 32 << 20)
    }

    #[test]
    fn read_only_bits_keep_their_value() {
        let mut c = space();
        let before = c.bytes();
        c.write(0x00, &[0xFF; 4]); // IDs
        c.write(0x08, &[0xFF; 4]); // class
        c.write(0x34, &[0x00]); // capability pointer
        c.write(PCIE_CAP, &[0xFF; 8]); // capability header and Device Capabilities
        assert_eq!(c.bytes(), before);
        // BAR0's size bits are hard-wired: writing all ones reads back its size.
        c.write(0x10, &[0xFF; 4]);
        assert_eq!(c.get32(0x10), !((32u32 << 20) - 1) | BAR0_TYPE);
    }

    #[test]
    fn decoding_follows_command_and_bar0() {
        let mut c = space();
        assert_eq!(c.decoded_bar0(), Some(0xE000_0000));
        assert!(c.bus_master());
        c.write(0x04, &[0x00, 0x00]);
        assert_eq!(c.decoded_bar0(), None);
        assert!(!c.bus_master());
    }

    #[test]
    fn flr_is_reported_and_resets_the_header() {
        let mut c = space();
        let ctl = c.get16(PCIE_CAP + 8) | DEVCTL_FLR;
        let (n, effect) = c.write(PCIE_CAP + 8, &ctl.to_le_bytes());
        assert_eq!((n, effect), (2, WriteEffect::FunctionLevelReset));
        assert_eq!(c.get16(PCIE_CAP + 8) & DEVCTL_FLR, 0, "reads back 0");
        c.reset_registers();
        assert_eq!(c.decoded_bar0(), None);
        assert_eq!(c.get32(0x10), BAR0_TYPE);
        assert_eq!(c.get16(0x00), 0x15B3, "identity survives");
        assert_eq!(c.get32(PCIE_CAP + 4) & DEVCAP_FLR, DEVCAP_FLR);
    }

    #[test]
    fn writes_past_the_end_are_cut() {
        let mut c = space();
        assert_eq!(c.write(0xFE, &[0; 4]).0, 2);
    }
}
