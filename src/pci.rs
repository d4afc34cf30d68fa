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
}
