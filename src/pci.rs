//! PCI configuration header of the HCA function (PCI Local Bus 3.0 §6.1, type-0 header)
//! and the functions this driver binds to (reference/mlx5.md §D).

/// PCI vendor ID of Mellanox/NVIDIA networking.
pub const VENDOR_MELLANOX: u16 = 0x15B3;

/// Physical functions of ConnectX-4 and later that can run InfiniBand, as the lower-case
/// hex strings the port drivers compare with (`HW_INITIALIZATION_DATA.DeviceId`).
///
/// Ethernet-only parts (ConnectX-4 Lx `1015`, ConnectX-6 Dx `101d`, ConnectX-6 Lx
/// `101f`), virtual functions and Connect-IB (`1011`, a different firmware family) are
/// left out: a boot-start driver that claimed them would take NICs away from their own
/// driver.
pub const DEVICE_IDS: &[(u16, &str)] = &[
    (0x1013, "ConnectX-4"),
    (0x1017, "ConnectX-5"),
    (0x1019, "ConnectX-5 Ex"),
    (0x101B, "ConnectX-6"),
    (0x1021, "ConnectX-7"),
    (0x1023, "ConnectX-8"),
    (0x1025, "ConnectX-9"),
    (0x1027, "ConnectX-10"),
    (0xA2D2, "BlueField integrated ConnectX-5"),
    (0xA2D6, "BlueField-2 integrated ConnectX-6 Dx"),
    (0xA2DC, "BlueField-3 integrated ConnectX-7"),
    (0xA2DF, "BlueField-4 integrated ConnectX-8"),
];

/// The lower-case, four-digit hex form of a device ID, as ports compare it.
pub const fn hex4(id: u16) -> [u8; 4] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [
        DIGITS[(id >> 12) as usize & 0xF],
        DIGITS[(id >> 8) as usize & 0xF],
        DIGITS[(id >> 4) as usize & 0xF],
        DIGITS[id as usize & 0xF],
    ]
}

/// Device IDs in the form ports compare.
pub const DEVICE_ID_STRINGS: [[u8; 4]; DEVICE_IDS.len()] = {
    let mut out = [[0u8; 4]; DEVICE_IDS.len()];
    let mut i = 0;
    while i < DEVICE_IDS.len() {
        out[i] = hex4(DEVICE_IDS[i].0);
        i += 1;
    }
    out
};

/// The vendor ID in the form ports compare.
pub const VENDOR_ID_STRING: [u8; 4] = hex4(VENDOR_MELLANOX);

/// Whether `device` is a function this driver drives.
pub fn is_supported_device(vendor: u16, device: u16) -> bool {
    vendor == VENDOR_MELLANOX && DEVICE_IDS.iter().any(|&(id, _)| id == device)
}

/// Bytes of the common (type-independent plus type-0) configuration header.
pub const HEADER_LEN: usize = 64;

/// Byte ranges of the type-0 configuration header.
mod field {
    pub const VENDOR_ID: usize = 0x00;
    pub const DEVICE_ID: usize = 0x02;
    pub const COMMAND: usize = 0x04;
    pub const REVISION_ID: usize = 0x08;
    pub const HEADER_TYPE: usize = 0x0E;
    pub const BAR0: usize = 0x10;
    pub const BAR1: usize = 0x14;
}

/// Command register: memory space decoding enabled.
pub const COMMAND_MEMORY: u16 = 1 << 1;
/// Command register: bus master enabled.
pub const COMMAND_BUS_MASTER: u16 = 1 << 2;

/// BAR bit 0: I/O space (set) or memory space (clear).
const BAR_IO: u32 = 1;
/// BAR bits 2:1: memory type; `0b10` is a 64-bit BAR that takes the next register too.
const BAR_TYPE_MASK: u32 = 0b110;
const BAR_TYPE_64: u32 = 0b100;
/// Address bits of a memory BAR.
const BAR_MEM_ADDR_MASK: u32 = !0xF;

/// What the driver needs from the configuration header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciHeader {
    pub vendor: u16,
    pub device: u16,
    pub command: u16,
    pub revision: u8,
    /// Base class, sub-class and programming interface (`0x020700`: InfiniBand).
    pub class_code: u32,
    pub header_type: u8,
    /// BAR0 as a memory address, when BAR0 is a memory BAR.
    pub bar0: Option<u64>,
}

/// Why a configuration header cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PciError {
    /// Fewer than [`HEADER_LEN`] bytes were returned: no function at this slot.
    Short { len: usize },
    /// Vendor ID `0xFFFF`: no function answered.
    NoFunction,
}

impl PciHeader {
    /// Parses the first [`HEADER_LEN`] bytes of configuration space (little-endian).
    pub fn parse(config: &[u8]) -> Result<PciHeader, PciError> {
        let Some(h) = config.get(..HEADER_LEN) else {
            return Err(PciError::Short { len: config.len() });
        };
        let vendor = le16(h, field::VENDOR_ID);
        if vendor == 0xFFFF {
            return Err(PciError::NoFunction);
        }
        // Class code: the three bytes after the revision ID.
        let class = le32(h, field::REVISION_ID) >> 8;
        let header_type = h.get(field::HEADER_TYPE).copied().unwrap_or(0xFF);
        let bar0 = le32(h, field::BAR0);
        let bar0 = if bar0 & BAR_IO != 0 {
            None
        } else if bar0 & BAR_TYPE_MASK == BAR_TYPE_64 {
            Some(u64::from(le32(h, field::BAR1)) << 32 | u64::from(bar0 & BAR_MEM_ADDR_MASK))
        } else {
            Some(u64::from(bar0 & BAR_MEM_ADDR_MASK))
        };
        Ok(PciHeader {
            vendor,
            device: le16(h, field::DEVICE_ID),
            command: le16(h, field::COMMAND),
            revision: h.get(field::REVISION_ID).copied().unwrap_or(0),
            class_code: class,
            header_type,
            bar0,
        })
    }
}

/// The function's configuration space as the port offers it (`*PortGetBusData`,
/// `*PortSetBusDataByOffset` with `PCIConfiguration`).
pub trait ConfigAccess {
    /// Reads `buf.len()` bytes from `offset`; returns how many were read (0: no access).
    fn read(&self, offset: usize, buf: &mut [u8]) -> usize;
    /// Writes `data` at `offset`; returns how many were written (0: no access).
    fn write(&self, offset: usize, data: &[u8]) -> usize;
}

/// A platform that gives no configuration access.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoConfigAccess;

impl ConfigAccess for NoConfigAccess {
    fn read(&self, _offset: usize, _buf: &mut [u8]) -> usize {
        0
    }
    fn write(&self, _offset: usize, _data: &[u8]) -> usize {
        0
    }
}

/// Capability ID of the PCI Express capability (PCI Code and ID Assignment §2).
const CAP_ID_PCIE: u8 = 0x10;
/// Status register: the function has a capabilities list.
const STATUS_CAP_LIST: u16 = 1 << 4;
/// Offset of the capabilities pointer in a type-0 header.
const CAP_POINTER: usize = 0x34;
/// PCI Express capability: Device Capabilities, Device Control, Device Status.
const PCIE_DEVCAP: usize = 4;
const PCIE_DEVCTL: usize = 8;
const PCIE_DEVSTA: usize = 10;
/// Device Capabilities: Function Level Reset Capability.
const DEVCAP_FLR: u32 = 1 << 28;
/// Device Control: Initiate Function Level Reset.
const DEVCTL_FLR: u16 = 1 << 15;
/// Device Status: Transactions Pending.
const DEVSTA_TRANSACTIONS_PENDING: u16 = 1 << 5;
/// How long software waits after initiating an FLR before it touches the function
/// (PCIe Base 4.0 §6.6.2).
pub const FLR_WAIT_US: u32 = 100_000;
/// How long outstanding non-posted requests may take to drain before the FLR goes
/// ahead anyway (the completion timeout's default range tops out at 50 ms).
const PENDING_WAIT_US: u32 = 100_000;
/// How long the function may answer configuration reads with all ones after the
/// FLR wait (a function still completing its reset with CRS).
const READY_WAIT_US: u32 = 1_000_000;
/// Each wait is made of stalls this long (ports ask for short stalls).
const STALL_STEP_US: u32 = 1_000;

/// Why a function-level reset could not be done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlrError {
    /// The port gave no configuration space (read or write returned nothing).
    NoConfigAccess,
    /// The function has no PCI Express capability.
    NotExpress,
    /// The function does not offer FLR (Device Capabilities bit 28 clear).
    NotSupported,
    /// The function answered all ones for this long after the reset.
    NoResponse { waited_us: u32 },
}

/// Resets the function (PCIe Base 4.0 §6.6.2): finds the PCI Express capability,
/// saves the header, turns bus mastering off, waits (bounded) for outstanding
/// requests to drain, initiates the FLR, waits 100 ms and until the function answers,
/// then restores the header (BARs, cache line size, latency timer, interrupt line,
/// Device Control, and last the Command register) so BAR0 decodes where the port
/// mapped it. `stall` busy-waits the given microseconds.
pub fn function_level_reset(
    config: &impl ConfigAccess,
    mut stall: impl FnMut(u32),
) -> Result<(), FlrError> {
    let mut header = [0u8; HEADER_LEN];
    if config.read(0, &mut header) != HEADER_LEN {
        return Err(FlrError::NoConfigAccess);
    }
    let cap = express_capability(config, &header)?;
    let devcap = read32(config, cap + PCIE_DEVCAP)?;
    if devcap & DEVCAP_FLR == 0 {
        return Err(FlrError::NotSupported);
    }
    let devctl = read16(config, cap + PCIE_DEVCTL)?;
    let command = le16(&header, field::COMMAND);

    write(
        config,
        field::COMMAND,
        &(command & !COMMAND_BUS_MASTER).to_le_bytes(),
    )?;
    let mut waited = 0;
    while read16(config, cap + PCIE_DEVSTA)? & DEVSTA_TRANSACTIONS_PENDING != 0
        && waited < PENDING_WAIT_US
    {
        stall(STALL_STEP_US);
        waited += STALL_STEP_US;
    }
    write(
        config,
        cap + PCIE_DEVCTL,
        &(devctl | DEVCTL_FLR).to_le_bytes(),
    )?;
    let mut waited = 0;
    while waited < FLR_WAIT_US {
        stall(STALL_STEP_US);
        waited += STALL_STEP_US;
    }
    let mut waited = 0;
    while read16(config, field::VENDOR_ID)? == 0xFFFF {
        if waited >= READY_WAIT_US {
            return Err(FlrError::NoResponse { waited_us: waited });
        }
        stall(STALL_STEP_US);
        waited += STALL_STEP_US;
    }

    // The writable registers the reset cleared, each as it was; Command last, so the
    // function decodes and masters the bus only once its BARs are back.
    for (at, len) in [(0x0C, 2), (field::BAR0, 24), (0x3C, 1)] {
        let saved = header.get(at..at + len).ok_or(FlrError::NoConfigAccess)?;
        write(config, at, saved)?;
    }
    write(
        config,
        cap + PCIE_DEVCTL,
        &(devctl & !DEVCTL_FLR).to_le_bytes(),
    )?;
    write(config, field::COMMAND, &command.to_le_bytes())
}

/// The offset of the PCI Express capability, walking the capabilities list (at most
/// 48 entries fit in the 192 bytes after the header, so a looping list ends too).
fn express_capability(config: &impl ConfigAccess, header: &[u8]) -> Result<usize, FlrError> {
    if le16(header, 0x06) & STATUS_CAP_LIST == 0 {
        return Err(FlrError::NotExpress);
    }
    let mut at = usize::from(header.get(CAP_POINTER).copied().unwrap_or(0) & 0xFC);
    for _ in 0..48 {
        if at < HEADER_LEN {
            break;
        }
        let mut entry = [0u8; 2];
        if config.read(at, &mut entry) != 2 {
            return Err(FlrError::NoConfigAccess);
        }
        if entry[0] == CAP_ID_PCIE {
            return Ok(at);
        }
        at = usize::from(entry[1] & 0xFC);
    }
    Err(FlrError::NotExpress)
}

fn read16(config: &impl ConfigAccess, at: usize) -> Result<u16, FlrError> {
    let mut b = [0u8; 2];
    match config.read(at, &mut b) {
        2 => Ok(u16::from_le_bytes(b)),
        _ => Err(FlrError::NoConfigAccess),
    }
}

fn read32(config: &impl ConfigAccess, at: usize) -> Result<u32, FlrError> {
    let mut b = [0u8; 4];
    match config.read(at, &mut b) {
        4 => Ok(u32::from_le_bytes(b)),
        _ => Err(FlrError::NoConfigAccess),
    }
}

fn write(config: &impl ConfigAccess, at: usize, data: &[u8]) -> Result<(), FlrError> {
    if config.write(at, data) == data.len() {
        Ok(())
    } else {
        Err(FlrError::NoConfigAccess)
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_le_bytes([x, y]),
        _ => 0xFFFF,
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, c, d, e]) => u32::from_le_bytes([a, c, d, e]),
        _ => 0xFFFF_FFFF,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ConnectX-4 in InfiniBand mode with a 64-bit BAR0 at 0x3_8000_0000.
    fn connectx4() -> [u8; HEADER_LEN] {
        let mut h = [0xA5u8; HEADER_LEN];
        h[0..2].copy_from_slice(&0x15B3u16.to_le_bytes());
        h[2..4].copy_from_slice(&0x1013u16.to_le_bytes());
        h[4..6].copy_from_slice(&0x0006u16.to_le_bytes());
        h[8] = 0x00; // revision
        h[9] = 0x00; // prog-if
        h[10] = 0x07; // sub-class: InfiniBand
        h[11] = 0x02; // class: network
        h[14] = 0x00; // type-0 header
        h[0x10..0x14].copy_from_slice(&0x8000_000Cu32.to_le_bytes()); // 64-bit, prefetchable
        h[0x14..0x18].copy_from_slice(&0x0000_0003u32.to_le_bytes());
        h
    }

    #[test]
    fn parses_a_connectx4_header() {
        let h = PciHeader::parse(&connectx4()).unwrap();
        assert_eq!(h.vendor, VENDOR_MELLANOX);
        assert_eq!(h.device, 0x1013);
        assert_eq!(h.command, COMMAND_MEMORY | COMMAND_BUS_MASTER);
        assert_eq!(h.class_code, 0x02_07_00);
        assert_eq!(h.header_type, 0);
        assert_eq!(h.bar0, Some(0x3_8000_0000));
        assert!(is_supported_device(h.vendor, h.device));
    }

    #[test]
    fn thirty_two_bit_and_io_bars() {
        let mut c = connectx4();
        c[0x10..0x14].copy_from_slice(&0xFE00_0008u32.to_le_bytes()); // 32-bit, prefetchable
        assert_eq!(PciHeader::parse(&c).unwrap().bar0, Some(0xFE00_0000));
        c[0x10..0x14].copy_from_slice(&0x0000_E001u32.to_le_bytes()); // I/O BAR
        assert_eq!(PciHeader::parse(&c).unwrap().bar0, None);
    }

    #[test]
    fn short_or_absent_functions_are_errors_not_panics() {
        assert_eq!(PciHeader::parse(&[]), Err(PciError::Short { len: 0 }));
        assert_eq!(
            PciHeader::parse(&[0u8; 63]),
            Err(PciError::Short { len: 63 })
        );
        assert_eq!(PciHeader::parse(&[0xFF; 64]), Err(PciError::NoFunction));
    }

    #[test]
    fn binds_only_infiniband_capable_physical_functions() {
        for (id, _) in DEVICE_IDS {
            assert!(is_supported_device(VENDOR_MELLANOX, *id));
        }
        // Ethernet-only parts, VFs, Connect-IB, ConnectX-3 (mlx4) and other vendors.
        for id in [
            0x1015, 0x101D, 0x101F, 0x1014, 0x1018, 0x1011, 0x1003, 0x1007,
        ] {
            assert!(!is_supported_device(VENDOR_MELLANOX, id), "{id:#06x}");
        }
        assert!(!is_supported_device(0x8086, 0x1013));
    }

    #[test]
    fn id_strings_are_what_ports_compare() {
        assert_eq!(&VENDOR_ID_STRING, b"15b3");
        assert_eq!(&DEVICE_ID_STRINGS[0], b"1013");
        assert_eq!(&hex4(0xA2DC), b"a2dc");
        assert_eq!(DEVICE_ID_STRINGS.len(), DEVICE_IDS.len());
    }

    /// A configuration space with a power-management capability at 0x40 chained to a
    /// PCI Express capability at 0x60, that performs an FLR as hardware does.
    struct Function {
        space: core::cell::RefCell<[u8; 256]>,
        /// Transactions Pending reads set this many more times.
        pending: core::cell::Cell<u32>,
        /// Vendor ID reads after an FLR answer all ones this many more times.
        crs: core::cell::Cell<u32>,
        flrs: core::cell::Cell<u32>,
        /// Offsets written, in order.
        writes: core::cell::RefCell<std::vec::Vec<usize>>,
    }

    impl Function {
        fn new(devcap: u32) -> Function {
            let mut s = [0u8; 256];
            s[..HEADER_LEN].copy_from_slice(&connectx4());
            s[0x0C] = 0x10;
            s[0x3C] = 0x0B;
            s[0x06] = 0x10; // capabilities list
            s[0x34] = 0x40;
            s[0x40] = 0x01; // power management
            s[0x41] = 0x60;
            s[0x60] = CAP_ID_PCIE;
            s[0x64..0x68].copy_from_slice(&devcap.to_le_bytes());
            s[0x68..0x6A].copy_from_slice(&0x2930u16.to_le_bytes());
            Function {
                space: core::cell::RefCell::new(s),
                pending: core::cell::Cell::new(0),
                crs: core::cell::Cell::new(0),
                flrs: core::cell::Cell::new(0),
                writes: core::cell::RefCell::new(std::vec::Vec::new()),
            }
        }
    }

    impl ConfigAccess for Function {
        fn read(&self, offset: usize, buf: &mut [u8]) -> usize {
            let s = self.space.borrow();
            buf.copy_from_slice(&s[offset..offset + buf.len()]);
            if offset == 0x6A && self.pending.get() > 0 {
                self.pending.set(self.pending.get() - 1);
                buf[0] |= 0x20;
            }
            if offset == 0 && self.flrs.get() > 0 && self.crs.get() > 0 {
                self.crs.set(self.crs.get() - 1);
                buf[..2].copy_from_slice(&[0xFF, 0xFF]);
            }
            buf.len()
        }
        fn write(&self, offset: usize, data: &[u8]) -> usize {
            self.writes.borrow_mut().push(offset);
            let mut s = self.space.borrow_mut();
            s[offset..offset + data.len()].copy_from_slice(data);
            if offset == 0x68 && s[0x69] & 0x80 != 0 {
                s[0x69] &= 0x7F;
                // What an FLR clears: command, BARs, cache line, interrupt line, control.
                s[0x04..0x06].fill(0);
                s[0x0C] = 0;
                s[0x10..0x14].copy_from_slice(&0x0Cu32.to_le_bytes());
                s[0x14..0x28].fill(0);
                s[0x3C] = 0;
                s[0x68..0x6A].copy_from_slice(&0x2810u16.to_le_bytes());
                self.flrs.set(self.flrs.get() + 1);
            }
            data.len()
        }
    }

    #[test]
    fn flr_resets_and_restores_the_header_command_last() {
        let f = Function::new(DEVCAP_FLR);
        let before = *f.space.borrow();
        f.pending.set(5);
        f.crs.set(3);
        let mut stalled = 0u64;
        function_level_reset(&f, |us| stalled += u64::from(us)).unwrap();
        assert_eq!(f.flrs.get(), 1);
        assert_eq!(
            *f.space.borrow(),
            before,
            "every register the FLR cleared is back"
        );
        // 5 ms of pending transactions, 100 ms of FLR, 3 ms of all-ones answers.
        assert_eq!(stalled, 108_000);
        let writes = f.writes.borrow();
        assert_eq!(writes.first(), Some(&0x04), "bus mastering off first");
        assert_eq!(writes.last(), Some(&0x04), "command restored last");
        let flr_at = writes.iter().position(|&o| o == 0x68).unwrap();
        assert!(
            writes[flr_at + 1..].contains(&0x10),
            "BARs restored after the FLR"
        );
    }

    #[test]
    fn flr_refuses_what_cannot_be_reset() {
        assert_eq!(
            function_level_reset(&NoConfigAccess, |_| {}),
            Err(FlrError::NoConfigAccess)
        );
        let f = Function::new(0);
        assert_eq!(
            function_level_reset(&f, |_| {}),
            Err(FlrError::NotSupported)
        );
        assert_eq!(f.flrs.get(), 0);
        // No capabilities list at all.
        let f = Function::new(DEVCAP_FLR);
        f.space.borrow_mut()[0x06] = 0;
        assert_eq!(function_level_reset(&f, |_| {}), Err(FlrError::NotExpress));
        // A list that loops back on itself without a PCI Express entry ends.
        let f = Function::new(DEVCAP_FLR);
        f.space.borrow_mut()[0x41] = 0x40;
        assert_eq!(function_level_reset(&f, |_| {}), Err(FlrError::NotExpress));
        // A function that never answers again.
        let f = Function::new(DEVCAP_FLR);
        f.crs.set(u32::MAX);
        assert_eq!(
            function_level_reset(&f, |_| {}),
            Err(FlrError::NoResponse {
                waited_us: 1_000_000
            })
        );
    }
}
