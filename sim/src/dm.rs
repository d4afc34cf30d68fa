//! The SRP target's Device Management agent: management class 0x06, class version 1
//! (IBTA vol. 1 §16.3; facts in reference/srp-cm-sa-dm.md §1.6, §3.1 and §4.1).
//!
//! A discovery client (srp_daemon, `ibsrpdm`, a boot initiator) finds an SRP target by
//! asking the target port's DM agent, in this order (srp-cm-sa-dm.md §4.1 step 4):
//! Get(IOUnitInfo) for the controller list, Get(IOControllerProfile) for each present
//! slot, then Get(ServiceEntries) in blocks of at most four. [`DmAgent`] answers those and
//! Get(ClassPortInfo), for one I/O controller in slot 1 that describes an SRP target the
//! way Linux ib_srpt does (§3.1): I/O class 0x0100, one service entry named
//! `SRP.T10:<id_ext>` whose ID is the CM service ID.
//!
//! DM MAD layout (§1.6): the 24-byte common header (§1.3), 40 bytes the class leaves
//! unused (an RMPP header that DM never uses, then reserved), and 192 bytes of attribute
//! data at offset 64.
//!
//! ```text
//!  0            24                36              64                          256
//! +-------------+-----------------+---------------+----------------------------+
//! | MAD header  | RMPP (unused)   | reserved      | attribute data (192 bytes) |
//! +-------------+-----------------+---------------+----------------------------+
//! ```
//!
//! Wire views follow the crate's `wire` conventions: a private `field` module of byte
//! ranges, and per attribute a `Repr` with `parse(&[u8])` (never panics; a short buffer
//! is [`DmError::Truncated`]), `emit(&mut [u8])` (panics only on a buffer shorter than
//! `LEN`, writes every byte, reserved ones as zero) and `LEN`.

use core::fmt;

/// Management class of Device Management (srp-cm-sa-dm.md §1.3).
pub const MGMT_CLASS: u8 = 0x06;
/// The DM class version this agent implements (§1.6).
pub const CLASS_VERSION: u8 = 1;
/// BaseVersion of every MAD (§1.3).
pub const BASE_VERSION: u8 = 1;
/// Every MAD is 256 bytes (§1.3).
pub const MAD_LEN: usize = 256;
/// Offset of the attribute data in a DM MAD (§1.6).
pub const DATA_OFFSET: usize = 64;
/// Bytes of attribute data in a DM MAD (§1.6).
pub const DATA_LEN: usize = MAD_LEN - DATA_OFFSET;

/// Controller slots in the I/O unit; ib_srpt reports 16 (§3.1).
pub const MAX_CONTROLLERS: u8 = 16;
/// The slot (1-based) holding the SRP target's I/O controller (§3.1: slot 1 present).
pub const IOC_SLOT: u32 = 1;
/// ServiceEntries carries at most this many entries per MAD (§1.6).
pub const ENTRIES_PER_MAD: usize = 4;
/// Prefix of an SRP service entry name; 16 hex digits of id_ext follow (§1.6).
pub const SRP_SERVICE_PREFIX: &str = "SRP.T10:";

/// Methods (§1.3). A method with bit 7 set is a response.
pub mod method {
    /// Get.
    pub const GET: u8 = 0x01;
    /// Set.
    pub const SET: u8 = 0x02;
    /// Trap (agent → manager).
    pub const TRAP: u8 = 0x05;
    /// TrapRepress (manager → agent), a reply to a Trap that is itself never answered.
    pub const TRAP_REPRESS: u8 = 0x07;
    /// The response to Get and Set.
    pub const GET_RESP: u8 = 0x81;
    /// Bit 7: the MAD is a response.
    pub const RESPONSE: u8 = 0x80;
}

/// Attribute IDs of the DM class (§1.6).
pub mod attr {
    /// ClassPortInfo.
    pub const CLASS_PORT_INFO: u16 = 0x0001;
    /// IOUnitInfo: the controller list.
    pub const IO_UNIT_INFO: u16 = 0x0010;
    /// IOControllerProfile; attribute modifier = slot, 1-based.
    pub const IOC_PROFILE: u16 = 0x0011;
    /// ServiceEntries; attribute modifier = slot << 16 | last << 8 | first.
    pub const SERVICE_ENTRIES: u16 = 0x0012;
}

/// MAD status values (IBTA vol. 1 §13.4.7 common bits; §16.3.3 DM class bits; the values
/// ib_srpt uses are listed in srp-cm-sa-dm.md §1.6).
pub mod status {
    /// Success.
    pub const OK: u16 = 0x0000;
    /// Bits 4..2 = 1: the base or class version is not supported.
    pub const BAD_VERSION: u16 = 0x0004;
    /// Bits 4..2 = 2: the method is not supported.
    pub const UNSUPPORTED_METHOD: u16 = 0x0008;
    /// Bits 4..2 = 3: the method/attribute combination is not supported (an unknown
    /// attribute, or Set on a read-only one).
    pub const UNSUPPORTED_METHOD_ATTR: u16 = 0x000C;
    /// Bits 4..2 = 7: a field of the attribute or the attribute modifier is invalid
    /// (slot 0 or beyond the controller list, a bad service-entry range).
    pub const INVALID_FIELD: u16 = 0x001C;
    /// DM class-specific bit 8: no I/O controller in that slot.
    pub const NO_IOC: u16 = 0x0100;
}

/// I/O class of SRP r16a (§1.6); ib_srpt reports it (§3.1).
pub const IO_CLASS_SRP_R16A: u16 = 0x0100;
/// I/O subclass of SRP (§1.6).
pub const IO_SUBCLASS_SRP: u16 = 0x609E;
/// Protocol of SRP (§1.6).
pub const PROTOCOL_SRP: u16 = 0x0108;
/// Protocol version of SRP (§1.6).
pub const PROTOCOL_VERSION_SRP: u16 = 0x0001;

/// IOControllerProfile controller operation capability bits (§1.6). An SRP target takes
/// SENDs, sends responses, and moves data with RDMA READ and WRITE, so all four are set
/// (ib_srpt sets the same four).
pub mod op_cap {
    /// The IOC accepts SENDs.
    pub const SEND_TO_IOC: u8 = 0x01;
    /// The IOC sends SENDs.
    pub const SEND_FROM_IOC: u8 = 0x02;
    /// The IOC issues RDMA READs.
    pub const RDMA_READ_FROM_IOC: u8 = 0x08;
    /// The IOC issues RDMA WRITEs.
    pub const RDMA_WRITE_FROM_IOC: u8 = 0x20;
    /// What an SRP target does.
    pub const SRP_TARGET: u8 =
        SEND_TO_IOC | SEND_FROM_IOC | RDMA_READ_FROM_IOC | RDMA_WRITE_FROM_IOC;
}

/// Byte offsets and ranges.
mod field {
    use core::ops::Range;

    type Field = Range<usize>;

    // Common MAD header (srp-cm-sa-dm.md §1.3).
    pub const BASE_VERSION: usize = 0;
    pub const MGMT_CLASS: usize = 1;
    pub const CLASS_VERSION: usize = 2;
    pub const METHOD: usize = 3;
    pub const STATUS: Field = 4..6;
    pub const CLASS_SPECIFIC: Field = 6..8;
    pub const TID: Field = 8..16;
    pub const ATTR_ID: Field = 16..18;
    pub const RESERVED: Field = 18..20;
    pub const ATTR_MOD: Field = 20..24;
    pub const HEADER_LEN: usize = ATTR_MOD.end;

    /// ClassPortInfo (IBTA vol. 1 §13.4.8.1), offsets within the attribute data.
    pub mod cpi {
        use super::Field;
        pub const BASE_VERSION: usize = 0;
        pub const CLASS_VERSION: usize = 1;
        pub const CAPABILITY_MASK: Field = 2..4;
        /// CapabilityMask2 in bits 31..5, RespTimeValue in bits 4..0.
        pub const CAP2_RESP_TIME: Field = 4..8;
        pub const REDIRECT_GID: Field = 8..24;
        /// TClass 8 bits, SL 4 bits, FlowLabel 20 bits.
        pub const REDIRECT_TC_SL_FL: Field = 24..28;
        pub const REDIRECT_LID: Field = 28..30;
        pub const REDIRECT_PKEY: Field = 30..32;
        /// 8 reserved bits, then the 24-bit QP.
        pub const REDIRECT_QP: Field = 32..36;
        pub const REDIRECT_QKEY: Field = 36..40;
        pub const TRAP_GID: Field = 40..56;
        pub const TRAP_TC_SL_FL: Field = 56..60;
        pub const TRAP_LID: Field = 60..62;
        pub const TRAP_PKEY: Field = 62..64;
        /// HopLimit 8 bits, then the 24-bit QP.
        pub const TRAP_HL_QP: Field = 64..68;
        pub const TRAP_QKEY: Field = 68..72;
        pub const LEN: usize = TRAP_QKEY.end;
        pub const RESP_TIME_MASK: u32 = 0x1F;
        pub const QP_MASK: u32 = 0x00FF_FFFF;
    }

    /// IOUnitInfo (srp-cm-sa-dm.md §1.6).
    pub mod iou {
        use super::Field;
        pub const CHANGE_ID: Field = 0..2;
        pub const MAX_CONTROLLERS: usize = 2;
        /// DiagDeviceID in bit 7, OptionROM in bit 6.
        pub const FLAGS: usize = 3;
        /// Four bits per slot; slot 1 is the high nibble of the first byte.
        pub const CONTROLLER_LIST: Field = 4..132;
        pub const LEN: usize = CONTROLLER_LIST.end;
    }

    /// IOControllerProfile (srp-cm-sa-dm.md §1.6 table).
    pub mod iocp {
        use super::Field;
        pub const GUID: Field = 0..8;
        /// VendorID in bits 31..8, 8 reserved bits.
        pub const VENDOR_ID: Field = 8..12;
        pub const DEVICE_ID: Field = 12..16;
        pub const DEVICE_VERSION: Field = 16..18;
        pub const RESERVED1: Field = 18..20;
        /// SubsystemVendorID in bits 31..8, 8 reserved bits.
        pub const SUBSYSTEM_VENDOR_ID: Field = 20..24;
        pub const SUBSYSTEM_ID: Field = 24..28;
        pub const IO_CLASS: Field = 28..30;
        pub const IO_SUBCLASS: Field = 30..32;
        pub const PROTOCOL: Field = 32..34;
        pub const PROTOCOL_VERSION: Field = 34..36;
        pub const SERVICE_CONNECTIONS: Field = 36..38;
        pub const INITIATORS_SUPPORTED: Field = 38..40;
        pub const SEND_MSG_DEPTH: Field = 40..42;
        pub const RESERVED2: usize = 42;
        pub const RDMA_READ_DEPTH: usize = 43;
        pub const SEND_MSG_SIZE: Field = 44..48;
        pub const RDMA_SIZE: Field = 48..52;
        pub const OP_CAP_MASK: usize = 52;
        pub const SVC_CAP_MASK: usize = 53;
        pub const SERVICE_ENTRIES: usize = 54;
        pub const RESERVED3: Field = 55..64;
        pub const ID_STRING: Field = 64..128;
        pub const LEN: usize = ID_STRING.end;
    }

    /// One ServiceEntry (srp-cm-sa-dm.md §1.6).
    pub mod svc {
        use super::Field;
        pub const NAME: Field = 0..40;
        pub const ID: Field = 40..48;
        pub const LEN: usize = ID.end;
    }
}

/// Why bytes are not a DM MAD or attribute, or why an I/O controller cannot be
/// described.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DmError {
    /// The buffer ends before the header or attribute does.
    Truncated {
        /// What was being parsed.
        what: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes there are.
        got: usize,
    },
    /// A value does not fit its field (a 24-bit vendor ID, the 63 usable bytes of the
    /// 64-byte ID string, which must stay NUL-terminated for C readers).
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value given (a length for strings).
        value: u64,
        /// The largest value the field takes.
        max: u64,
    },
}

impl fmt::Display for DmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DmError::Truncated { what, needed, got } => {
                write!(f, "{what}: {got} bytes, {needed} needed")
            }
            DmError::OutOfRange { field, value, max } => {
                write!(f, "{field}: {value:#x} exceeds {max:#x}")
            }
        }
    }
}

impl std::error::Error for DmError {}

fn check_len(what: &'static str, b: &[u8], needed: usize) -> Result<(), DmError> {
    if b.len() < needed {
        Err(DmError::Truncated {
            what,
            needed,
            got: b.len(),
        })
    } else {
        Ok(())
    }
}

fn be16(b: &[u8], f: core::ops::Range<usize>) -> u16 {
    let mut x = [0u8; 2];
    x.copy_from_slice(&b[f]);
    u16::from_be_bytes(x)
}

fn be32(b: &[u8], f: core::ops::Range<usize>) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[f]);
    u32::from_be_bytes(x)
}

fn be64(b: &[u8], f: core::ops::Range<usize>) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[f]);
    u64::from_be_bytes(x)
}

fn bytes16(b: &[u8], f: core::ops::Range<usize>) -> [u8; 16] {
    let mut x = [0u8; 16];
    x.copy_from_slice(&b[f]);
    x
}

/// The common MAD header (srp-cm-sa-dm.md §1.3), as a DM MAD carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmHeader {
    /// BaseVersion (1).
    pub base_version: u8,
    /// MgmtClass (0x06 for DM).
    pub mgmt_class: u8,
    /// ClassVersion (1 for DM).
    pub class_version: u8,
    /// Method; bit 7 set in responses.
    pub method: u8,
    /// Status ([`status`]).
    pub status: u16,
    /// ClassSpecific (unused by DM).
    pub class_specific: u16,
    /// TransactionID; a response echoes the request's.
    pub tid: u64,
    /// AttributeID ([`attr`]).
    pub attr_id: u16,
    /// AttributeModifier.
    pub attr_mod: u32,
}

impl DmHeader {
    /// Bytes of the header.
    pub const LEN: usize = field::HEADER_LEN;

    /// Reads the header; only a buffer shorter than [`DmHeader::LEN`] is an error.
    pub fn parse(b: &[u8]) -> Result<Self, DmError> {
        check_len("MAD header", b, Self::LEN)?;
        Ok(DmHeader {
            base_version: b[field::BASE_VERSION],
            mgmt_class: b[field::MGMT_CLASS],
            class_version: b[field::CLASS_VERSION],
            method: b[field::METHOD],
            status: be16(b, field::STATUS),
            class_specific: be16(b, field::CLASS_SPECIFIC),
            tid: be64(b, field::TID),
            attr_id: be16(b, field::ATTR_ID),
            attr_mod: be32(b, field::ATTR_MOD),
        })
    }

    /// Writes the header, the reserved bytes 18..20 as zero.
    ///
    /// # Panics
    /// If `b` is shorter than [`DmHeader::LEN`].
    pub fn emit(&self, b: &mut [u8]) {
        b[field::BASE_VERSION] = self.base_version;
        b[field::MGMT_CLASS] = self.mgmt_class;
        b[field::CLASS_VERSION] = self.class_version;
        b[field::METHOD] = self.method;
        b[field::STATUS].copy_from_slice(&self.status.to_be_bytes());
        b[field::CLASS_SPECIFIC].copy_from_slice(&self.class_specific.to_be_bytes());
        b[field::TID].copy_from_slice(&self.tid.to_be_bytes());
        b[field::ATTR_ID].copy_from_slice(&self.attr_id.to_be_bytes());
        b[field::RESERVED].fill(0);
        b[field::ATTR_MOD].copy_from_slice(&self.attr_mod.to_be_bytes());
    }

    /// A DM Get request for `attr_id` with `attr_mod` (what a discovery client sends).
    pub fn get(tid: u64, attr_id: u16, attr_mod: u32) -> Self {
        DmHeader {
            base_version: BASE_VERSION,
            mgmt_class: MGMT_CLASS,
            class_version: CLASS_VERSION,
            method: method::GET,
            status: status::OK,
            class_specific: 0,
            tid,
            attr_id,
            attr_mod,
        }
    }

    /// Whether the Response bit (method bit 7) is set.
    pub fn is_response(&self) -> bool {
        self.method & method::RESPONSE != 0
    }
}

/// A whole DM Get request MAD: header, then zeros (§1.6: no request data).
pub fn get_request(tid: u64, attr_id: u16, attr_mod: u32) -> [u8; MAD_LEN] {
    let mut m = [0u8; MAD_LEN];
    DmHeader::get(tid, attr_id, attr_mod).emit(&mut m);
    m
}

/// The attribute data of a DM MAD (bytes 64..256, §1.6).
pub fn data(mad: &[u8; MAD_LEN]) -> &[u8] {
    &mad[DATA_OFFSET..]
}

/// ClassPortInfo (IBTA vol. 1 §13.4.8.1), the fields a DM agent fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassPortInfo {
    /// BaseVersion the class supports.
    pub base_version: u8,
    /// ClassVersion the class supports.
    pub class_version: u8,
    /// CapabilityMask (bit 0: traps, bit 1: notices). A DM agent without traps: 0.
    pub capability_mask: u16,
    /// CapabilityMask2 (27 bits).
    pub capability_mask2: u32,
    /// RespTimeValue (5 bits): responses come within 4.096 µs × 2^value.
    pub resp_time_value: u8,
    /// RedirectGID.
    pub redirect_gid: [u8; 16],
    /// RedirectLID; 0 = no redirection.
    pub redirect_lid: u16,
    /// RedirectP_Key.
    pub redirect_pkey: u16,
    /// RedirectQP (24 bits).
    pub redirect_qp: u32,
    /// RedirectQ_Key.
    pub redirect_qkey: u32,
    /// TrapGID.
    pub trap_gid: [u8; 16],
    /// TrapLID.
    pub trap_lid: u16,
    /// TrapP_Key.
    pub trap_pkey: u16,
    /// TrapQP (24 bits).
    pub trap_qp: u32,
    /// TrapQ_Key.
    pub trap_qkey: u32,
}

impl ClassPortInfo {
    /// Bytes of the attribute.
    pub const LEN: usize = field::cpi::LEN;

    /// Reads the attribute from the start of `b` (the MAD's data area).
    pub fn parse(b: &[u8]) -> Result<Self, DmError> {
        use field::cpi as f;
        check_len("ClassPortInfo", b, Self::LEN)?;
        let cap2_rt = be32(b, f::CAP2_RESP_TIME);
        Ok(ClassPortInfo {
            base_version: b[f::BASE_VERSION],
            class_version: b[f::CLASS_VERSION],
            capability_mask: be16(b, f::CAPABILITY_MASK),
            capability_mask2: cap2_rt >> 5,
            resp_time_value: (cap2_rt & f::RESP_TIME_MASK) as u8,
            redirect_gid: bytes16(b, f::REDIRECT_GID),
            redirect_lid: be16(b, f::REDIRECT_LID),
            redirect_pkey: be16(b, f::REDIRECT_PKEY),
            redirect_qp: be32(b, f::REDIRECT_QP) & f::QP_MASK,
            redirect_qkey: be32(b, f::REDIRECT_QKEY),
            trap_gid: bytes16(b, f::TRAP_GID),
            trap_lid: be16(b, f::TRAP_LID),
            trap_pkey: be16(b, f::TRAP_PKEY),
            trap_qp: be32(b, f::TRAP_HL_QP) & f::QP_MASK,
            trap_qkey: be32(b, f::TRAP_QKEY),
        })
    }

    /// Writes the attribute; the traffic-class/flow-label words and the trap hop limit
    /// are written as zero, out-of-width values are masked to their field.
    ///
    /// # Panics
    /// If `b` is shorter than [`ClassPortInfo::LEN`].
    pub fn emit(&self, b: &mut [u8]) {
        use field::cpi as f;
        b[..Self::LEN].fill(0);
        b[f::BASE_VERSION] = self.base_version;
        b[f::CLASS_VERSION] = self.class_version;
        b[f::CAPABILITY_MASK].copy_from_slice(&self.capability_mask.to_be_bytes());
        let cap2_rt =
            self.capability_mask2 << 5 | u32::from(self.resp_time_value) & f::RESP_TIME_MASK;
        b[f::CAP2_RESP_TIME].copy_from_slice(&cap2_rt.to_be_bytes());
        b[f::REDIRECT_GID].copy_from_slice(&self.redirect_gid);
        b[f::REDIRECT_TC_SL_FL].fill(0);
        b[f::REDIRECT_LID].copy_from_slice(&self.redirect_lid.to_be_bytes());
        b[f::REDIRECT_PKEY].copy_from_slice(&self.redirect_pkey.to_be_bytes());
        b[f::REDIRECT_QP].copy_from_slice(&(self.redirect_qp & f::QP_MASK).to_be_bytes());
        b[f::REDIRECT_QKEY].copy_from_slice(&self.redirect_qkey.to_be_bytes());
        b[f::TRAP_GID].copy_from_slice(&self.trap_gid);
        b[f::TRAP_TC_SL_FL].fill(0);
        b[f::TRAP_LID].copy_from_slice(&self.trap_lid.to_be_bytes());
        b[f::TRAP_PKEY].copy_from_slice(&self.trap_pkey.to_be_bytes());
        b[f::TRAP_HL_QP].copy_from_slice(&(self.trap_qp & f::QP_MASK).to_be_bytes());
        b[f::TRAP_QKEY].copy_from_slice(&self.trap_qkey.to_be_bytes());
    }
}

/// What a controller slot holds (IOUnitInfo controller list, §1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// 0: no IOC installed.
    NotInstalled,
    /// 1: an IOC is present.
    Present,
    /// 0xF: there is no such slot.
    NoSlot,
    /// Any other nibble (reserved).
    Reserved(u8),
}

impl SlotState {
    /// The nibble for this state.
    pub const fn nibble(self) -> u8 {
        match self {
            SlotState::NotInstalled => 0x0,
            SlotState::Present => 0x1,
            SlotState::NoSlot => 0xF,
            SlotState::Reserved(n) => n & 0xF,
        }
    }

    /// The state a nibble encodes.
    pub const fn from_nibble(n: u8) -> SlotState {
        match n & 0xF {
            0x0 => SlotState::NotInstalled,
            0x1 => SlotState::Present,
            0xF => SlotState::NoSlot,
            x => SlotState::Reserved(x),
        }
    }
}

/// IOUnitInfo (srp-cm-sa-dm.md §1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoUnitInfo {
    /// ChangeID: bumped when the controller list changes.
    pub change_id: u16,
    /// Slots in the unit.
    pub max_controllers: u8,
    /// DiagDeviceID (bit 7) and OptionROM (bit 6) flags.
    pub flags: u8,
    /// Four bits per slot, slot 1 in the high nibble of byte 0.
    pub controller_list: [u8; 128],
}

impl IoUnitInfo {
    /// Bytes of the attribute.
    pub const LEN: usize = field::iou::LEN;

    /// Reads the attribute from the start of `b`.
    pub fn parse(b: &[u8]) -> Result<Self, DmError> {
        use field::iou as f;
        check_len("IOUnitInfo", b, Self::LEN)?;
        let mut controller_list = [0u8; 128];
        controller_list.copy_from_slice(&b[f::CONTROLLER_LIST]);
        Ok(IoUnitInfo {
            change_id: be16(b, f::CHANGE_ID),
            max_controllers: b[f::MAX_CONTROLLERS],
            flags: b[f::FLAGS],
            controller_list,
        })
    }

    /// Writes the attribute.
    ///
    /// # Panics
    /// If `b` is shorter than [`IoUnitInfo::LEN`].
    pub fn emit(&self, b: &mut [u8]) {
        use field::iou as f;
        b[f::CHANGE_ID].copy_from_slice(&self.change_id.to_be_bytes());
        b[f::MAX_CONTROLLERS] = self.max_controllers;
        b[f::FLAGS] = self.flags;
        b[f::CONTROLLER_LIST].copy_from_slice(&self.controller_list);
    }

    /// The state of 1-based `slot`; `None` for slot 0 or beyond the 256 the list holds.
    pub fn slot(&self, slot: u32) -> Option<SlotState> {
        let i = usize::try_from(slot.checked_sub(1)?).ok()?;
        let byte = *self.controller_list.get(i / 2)?;
        let nibble = if i % 2 == 0 { byte >> 4 } else { byte & 0xF };
        Some(SlotState::from_nibble(nibble))
    }

    /// Sets the state of 1-based `slot`; slots outside 1..=256 are ignored.
    pub fn set_slot(&mut self, slot: u32, state: SlotState) {
        let Some(i) = slot.checked_sub(1).and_then(|i| usize::try_from(i).ok()) else {
            return;
        };
        if let Some(byte) = self.controller_list.get_mut(i / 2) {
            let n = state.nibble();
            *byte = if i % 2 == 0 {
                (*byte & 0x0F) | n << 4
            } else {
                (*byte & 0xF0) | n
            };
        }
    }
}

/// IOControllerProfile (srp-cm-sa-dm.md §1.6 table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IocProfile {
    /// IOC GUID; for SRP the target port ID's second half (ioc_guid).
    pub guid: u64,
    /// VendorID (24 bits, in bits 31..8 of its word, which is where srp_daemon reads
    /// it; ib_srpt writes the value unshifted, §1.6).
    pub vendor_id: u32,
    /// DeviceID.
    pub device_id: u32,
    /// DeviceVersion.
    pub device_version: u16,
    /// SubsystemVendorID (24 bits, placed like VendorID).
    pub subsystem_vendor_id: u32,
    /// SubsystemID.
    pub subsystem_id: u32,
    /// I/O class (0x0100 SRP r16a, 0xFF00 SRP rev 10).
    pub io_class: u16,
    /// I/O subclass (0x609E SRP).
    pub io_subclass: u16,
    /// Protocol (0x0108 SRP).
    pub protocol: u16,
    /// Protocol version.
    pub protocol_version: u16,
    /// Service connections.
    pub service_connections: u16,
    /// Initiators supported.
    pub initiators_supported: u16,
    /// Send message queue depth.
    pub send_msg_depth: u16,
    /// RDMA read queue depth.
    pub rdma_read_depth: u8,
    /// Largest SEND the IOC accepts (the SRP target's max IT IU length).
    pub send_msg_size: u32,
    /// Largest RDMA transfer.
    pub rdma_size: u32,
    /// Controller operation capabilities ([`op_cap`]).
    pub op_cap_mask: u8,
    /// Service capabilities.
    pub svc_cap_mask: u8,
    /// Number of service entries.
    pub service_entries: u8,
    /// ID string, NUL-padded.
    pub id_string: [u8; 64],
}

impl IocProfile {
    /// Bytes of the attribute.
    pub const LEN: usize = field::iocp::LEN;

    /// Reads the attribute from the start of `b`.
    pub fn parse(b: &[u8]) -> Result<Self, DmError> {
        use field::iocp as f;
        check_len("IOControllerProfile", b, Self::LEN)?;
        let mut id_string = [0u8; 64];
        id_string.copy_from_slice(&b[f::ID_STRING]);
        Ok(IocProfile {
            guid: be64(b, f::GUID),
            vendor_id: be32(b, f::VENDOR_ID) >> 8,
            device_id: be32(b, f::DEVICE_ID),
            device_version: be16(b, f::DEVICE_VERSION),
            subsystem_vendor_id: be32(b, f::SUBSYSTEM_VENDOR_ID) >> 8,
            subsystem_id: be32(b, f::SUBSYSTEM_ID),
            io_class: be16(b, f::IO_CLASS),
            io_subclass: be16(b, f::IO_SUBCLASS),
            protocol: be16(b, f::PROTOCOL),
            protocol_version: be16(b, f::PROTOCOL_VERSION),
            service_connections: be16(b, f::SERVICE_CONNECTIONS),
            initiators_supported: be16(b, f::INITIATORS_SUPPORTED),
            send_msg_depth: be16(b, f::SEND_MSG_DEPTH),
            rdma_read_depth: b[f::RDMA_READ_DEPTH],
            send_msg_size: be32(b, f::SEND_MSG_SIZE),
            rdma_size: be32(b, f::RDMA_SIZE),
            op_cap_mask: b[f::OP_CAP_MASK],
            svc_cap_mask: b[f::SVC_CAP_MASK],
            service_entries: b[f::SERVICE_ENTRIES],
            id_string,
        })
    }

    /// Writes the attribute, reserved bytes as zero; the 24-bit vendor fields are masked
    /// to 24 bits.
    ///
    /// # Panics
    /// If `b` is shorter than [`IocProfile::LEN`].
    pub fn emit(&self, b: &mut [u8]) {
        use field::iocp as f;
        b[f::GUID].copy_from_slice(&self.guid.to_be_bytes());
        b[f::VENDOR_ID].copy_from_slice(&((self.vendor_id & 0xFF_FFFF) << 8).to_be_bytes());
        b[f::DEVICE_ID].copy_from_slice(&self.device_id.to_be_bytes());
        b[f::DEVICE_VERSION].copy_from_slice(&self.device_version.to_be_bytes());
        b[f::RESERVED1].fill(0);
        b[f::SUBSYSTEM_VENDOR_ID]
            .copy_from_slice(&((self.subsystem_vendor_id & 0xFF_FFFF) << 8).to_be_bytes());
        b[f::SUBSYSTEM_ID].copy_from_slice(&self.subsystem_id.to_be_bytes());
        b[f::IO_CLASS].copy_from_slice(&self.io_class.to_be_bytes());
        b[f::IO_SUBCLASS].copy_from_slice(&self.io_subclass.to_be_bytes());
        b[f::PROTOCOL].copy_from_slice(&self.protocol.to_be_bytes());
        b[f::PROTOCOL_VERSION].copy_from_slice(&self.protocol_version.to_be_bytes());
        b[f::SERVICE_CONNECTIONS].copy_from_slice(&self.service_connections.to_be_bytes());
        b[f::INITIATORS_SUPPORTED].copy_from_slice(&self.initiators_supported.to_be_bytes());
        b[f::SEND_MSG_DEPTH].copy_from_slice(&self.send_msg_depth.to_be_bytes());
        b[f::RESERVED2] = 0;
        b[f::RDMA_READ_DEPTH] = self.rdma_read_depth;
        b[f::SEND_MSG_SIZE].copy_from_slice(&self.send_msg_size.to_be_bytes());
        b[f::RDMA_SIZE].copy_from_slice(&self.rdma_size.to_be_bytes());
        b[f::OP_CAP_MASK] = self.op_cap_mask;
        b[f::SVC_CAP_MASK] = self.svc_cap_mask;
        b[f::SERVICE_ENTRIES] = self.service_entries;
        b[f::RESERVED3].fill(0);
        b[f::ID_STRING].copy_from_slice(&self.id_string);
    }

    /// The ID string up to its first NUL, if it is UTF-8.
    pub fn id_str(&self) -> Option<&str> {
        let end = self.id_string.iter().position(|&c| c == 0).unwrap_or(64);
        core::str::from_utf8(&self.id_string[..end]).ok()
    }
}

/// One ServiceEntry (srp-cm-sa-dm.md §1.6): a 40-byte name and the service ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceEntry {
    /// Name, NUL-padded.
    pub name: [u8; 40],
    /// Service ID (the CM service ID for SRP).
    pub id: u64,
}

impl ServiceEntry {
    /// Bytes of one entry.
    pub const LEN: usize = field::svc::LEN;

    /// The entry an SRP target advertises (§1.6, §3.1): `SRP.T10:` followed by `id_ext`
    /// as 16 upper-case hex digits, and the CM service ID.
    pub fn srp(id_ext: u64, service_id: u64) -> Self {
        let text = format!("{SRP_SERVICE_PREFIX}{id_ext:016X}");
        let mut name = [0u8; 40];
        name[..text.len()].copy_from_slice(text.as_bytes());
        ServiceEntry {
            name,
            id: service_id,
        }
    }

    /// Reads one entry from the start of `b`.
    pub fn parse(b: &[u8]) -> Result<Self, DmError> {
        use field::svc as f;
        check_len("ServiceEntry", b, Self::LEN)?;
        let mut name = [0u8; 40];
        name.copy_from_slice(&b[f::NAME]);
        Ok(ServiceEntry {
            name,
            id: be64(b, f::ID),
        })
    }

    /// Writes one entry.
    ///
    /// # Panics
    /// If `b` is shorter than [`ServiceEntry::LEN`].
    pub fn emit(&self, b: &mut [u8]) {
        use field::svc as f;
        b[f::NAME].copy_from_slice(&self.name);
        b[f::ID].copy_from_slice(&self.id.to_be_bytes());
    }

    /// The name up to its first NUL, if it is UTF-8.
    pub fn name_str(&self) -> Option<&str> {
        let end = self.name.iter().position(|&c| c == 0).unwrap_or(40);
        core::str::from_utf8(&self.name[..end]).ok()
    }

    /// The id_ext of an SRP entry: the 16 hex digits after `SRP.T10:` (§1.6).
    pub fn srp_id_ext(&self) -> Option<u64> {
        let hex = self.name_str()?.strip_prefix(SRP_SERVICE_PREFIX)?;
        if hex.len() != 16 {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()
    }
}

/// The ServiceEntries attribute modifier (§1.6): slot << 16 | last << 8 | first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryRange {
    /// 1-based controller slot.
    pub slot: u16,
    /// First entry (0-based).
    pub first: u8,
    /// Last entry, inclusive.
    pub last: u8,
}

impl EntryRange {
    /// Splits an attribute modifier.
    pub const fn from_modifier(m: u32) -> Self {
        EntryRange {
            slot: (m >> 16) as u16,
            last: (m >> 8) as u8,
            first: m as u8,
        }
    }

    /// The attribute modifier.
    pub const fn modifier(self) -> u32 {
        (self.slot as u32) << 16 | (self.last as u32) << 8 | self.first as u32
    }
}

/// The I/O controller a [`DmAgent`] describes: the SRP target's identity and the
/// IOControllerProfile values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IocDescription {
    /// IOC GUID (ib_srpt: the service GUID, §3.1).
    pub ioc_guid: u64,
    /// Identifier extension; names the service entry (ib_srpt: the service GUID).
    pub id_ext: u64,
    /// CM service ID the target listens on (ib_srpt: the service GUID).
    pub service_id: u64,
    /// Vendor ID, 24 bits (ib_srpt: the HCA's).
    pub vendor_id: u32,
    /// Device ID (ib_srpt: the HCA's).
    pub device_id: u32,
    /// Device version.
    pub device_version: u16,
    /// Subsystem vendor ID, 24 bits.
    pub subsystem_vendor_id: u32,
    /// Subsystem ID.
    pub subsystem_id: u32,
    /// I/O class ([`IO_CLASS_SRP_R16A`]).
    pub io_class: u16,
    /// I/O subclass ([`IO_SUBCLASS_SRP`]).
    pub io_subclass: u16,
    /// Protocol ([`PROTOCOL_SRP`]).
    pub protocol: u16,
    /// Protocol version ([`PROTOCOL_VERSION_SRP`]).
    pub protocol_version: u16,
    /// Largest SEND accepted: the target's max IT IU length.
    pub send_msg_size: u32,
    /// RDMA read queue depth.
    pub rdma_read_depth: u8,
    /// Send message queue depth.
    pub send_msg_depth: u16,
    /// Largest RDMA transfer.
    pub rdma_size: u32,
    /// ID string, at most 63 bytes (it travels NUL-terminated in a 64-byte field).
    pub id_string: String,
}

impl IocDescription {
    /// An SRP target as ib_srpt describes itself with its defaults (srp-cm-sa-dm.md
    /// §3.1, §3.2, §3.4): `guid` as IOC GUID, id_ext and service ID; class 0x0100,
    /// subclass 0x609E, protocol 0x0108 version 1; send queue depth 128, RDMA read depth
    /// 4; send size 8276 (the default `srp_max_req_size`); RDMA size 65536 (the default
    /// `srp_max_rdma_size`). The subsystem IDs are not in the reference and are zero.
    pub fn srp_target(guid: u64, vendor_id: u32, device_id: u32, device_version: u16) -> Self {
        IocDescription {
            ioc_guid: guid,
            id_ext: guid,
            service_id: guid,
            vendor_id,
            device_id,
            device_version,
            subsystem_vendor_id: 0,
            subsystem_id: 0,
            io_class: IO_CLASS_SRP_R16A,
            io_subclass: IO_SUBCLASS_SRP,
            protocol: PROTOCOL_SRP,
            protocol_version: PROTOCOL_VERSION_SRP,
            send_msg_size: 8276,
            rdma_read_depth: 4,
            send_msg_depth: 128,
            rdma_size: 65536,
            id_string: String::from("fabboot-sim SRP target"),
        }
    }

    /// The IOControllerProfile this description gives, with one service entry and the
    /// SRP target's operation capabilities.
    pub fn profile(&self) -> Result<IocProfile, DmError> {
        let wide = |field: &'static str, value: u32| {
            if value > 0xFF_FFFF {
                Err(DmError::OutOfRange {
                    field,
                    value: u64::from(value),
                    max: 0xFF_FFFF,
                })
            } else {
                Ok(value)
            }
        };
        let id = self.id_string.as_bytes();
        if id.len() > 63 {
            return Err(DmError::OutOfRange {
                field: "ID string length",
                value: id.len() as u64,
                max: 63,
            });
        }
        let mut id_string = [0u8; 64];
        id_string[..id.len()].copy_from_slice(id);
        Ok(IocProfile {
            guid: self.ioc_guid,
            vendor_id: wide("VendorID", self.vendor_id)?,
            device_id: self.device_id,
            device_version: self.device_version,
            subsystem_vendor_id: wide("SubsystemVendorID", self.subsystem_vendor_id)?,
            subsystem_id: self.subsystem_id,
            io_class: self.io_class,
            io_subclass: self.io_subclass,
            protocol: self.protocol,
            protocol_version: self.protocol_version,
            service_connections: 0,
            initiators_supported: 0,
            send_msg_depth: self.send_msg_depth,
            rdma_read_depth: self.rdma_read_depth,
            send_msg_size: self.send_msg_size,
            rdma_size: self.rdma_size,
            op_cap_mask: op_cap::SRP_TARGET,
            svc_cap_mask: 0,
            service_entries: 1,
            id_string,
        })
    }
}

/// What a [`DmAgent`] did with one MAD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not a request for this agent (a response, a TrapRepress, another class): dropped.
    Ignored,
    /// Answered with this attribute and status.
    Answered {
        /// The attribute asked for.
        attr_id: u16,
        /// The status returned.
        status: u16,
    },
}

/// The Device Management agent of one SRP target port: one I/O unit, one I/O controller
/// in slot [`IOC_SLOT`], one service entry.
#[derive(Clone, Debug)]
pub struct DmAgent {
    ioc: IocDescription,
    unit: IoUnitInfo,
    profile: IocProfile,
    entries: Vec<ServiceEntry>,
    last: Outcome,
}

impl DmAgent {
    /// An agent for `ioc`. Refuses descriptions the profile cannot carry (a vendor ID
    /// wider than 24 bits, an ID string longer than 63 bytes).
    pub fn new(ioc: IocDescription) -> Result<Self, DmError> {
        let profile = ioc.profile()?;
        let mut unit = IoUnitInfo {
            change_id: 1, // ib_srpt's (§3.1); the list never changes here
            max_controllers: MAX_CONTROLLERS,
            flags: 0,
            controller_list: [0; 128],
        };
        unit.set_slot(IOC_SLOT, SlotState::Present);
        let entries = vec![ServiceEntry::srp(ioc.id_ext, ioc.service_id)];
        Ok(DmAgent {
            ioc,
            unit,
            profile,
            entries,
            last: Outcome::Ignored,
        })
    }

    /// The controller this agent describes.
    pub fn ioc(&self) -> &IocDescription {
        &self.ioc
    }

    /// The IOControllerProfile it answers with.
    pub fn profile(&self) -> &IocProfile {
        &self.profile
    }

    /// What the last call to [`DmAgent::handle`] did.
    pub fn last_outcome(&self) -> Outcome {
        self.last
    }

    /// Answers one DM MAD; `None` when nothing is to be sent back. Never panics.
    ///
    /// Only requests are answered (a MAD with the Response bit, a TrapRepress, or another
    /// management class is dropped). The checks follow IBTA vol. 1 §13.4.7 in order:
    /// version (base and class version 1, else [`status::BAD_VERSION`]), method (Get or
    /// Set, else [`status::UNSUPPORTED_METHOD`]), attribute and method/attribute pair
    /// (the four attributes, Get only — Set is refused as ib_srpt refuses it — else
    /// [`status::UNSUPPORTED_METHOD_ATTR`]), then the attribute modifier (§16.3.3:
    /// [`status::INVALID_FIELD`] for a slot outside 1..=16, a bad entry range or a
    /// non-zero modifier where none is defined; [`status::NO_IOC`] for an empty slot).
    ///
    /// The response is the request's header with method GetResp and the status, bytes
    /// 24..64 zero, and the attribute data (zero on error).
    pub fn handle(&mut self, mad: &[u8; MAD_LEN]) -> Option<[u8; MAD_LEN]> {
        self.last = Outcome::Ignored;
        let Ok(req) = DmHeader::parse(mad) else {
            return None; // cannot happen: a MAD is longer than its header
        };
        if req.is_response() || req.method == method::TRAP_REPRESS || req.mgmt_class != MGMT_CLASS {
            return None;
        }
        let mut data = [0u8; DATA_LEN];
        let status = self.answer(&req, &mut data);
        let mut r = [0u8; MAD_LEN];
        DmHeader {
            method: method::GET_RESP,
            status,
            ..req
        }
        .emit(&mut r);
        if status == status::OK {
            r[DATA_OFFSET..].copy_from_slice(&data);
        }
        self.last = Outcome::Answered {
            attr_id: req.attr_id,
            status,
        };
        Some(r)
    }

    /// Fills `data` for `req`; returns the MAD status.
    fn answer(&self, req: &DmHeader, data: &mut [u8; DATA_LEN]) -> u16 {
        if req.base_version != BASE_VERSION || req.class_version != CLASS_VERSION {
            return status::BAD_VERSION;
        }
        if req.method != method::GET && req.method != method::SET {
            return status::UNSUPPORTED_METHOD;
        }
        let known = matches!(
            req.attr_id,
            attr::CLASS_PORT_INFO | attr::IO_UNIT_INFO | attr::IOC_PROFILE | attr::SERVICE_ENTRIES
        );
        if !known || req.method == method::SET {
            return status::UNSUPPORTED_METHOD_ATTR;
        }
        match req.attr_id {
            attr::CLASS_PORT_INFO => {
                if req.attr_mod != 0 {
                    return status::INVALID_FIELD;
                }
                class_port_info().emit(&mut data[..]);
                status::OK
            }
            attr::IO_UNIT_INFO => {
                if req.attr_mod != 0 {
                    return status::INVALID_FIELD;
                }
                self.unit.emit(&mut data[..]);
                status::OK
            }
            attr::IOC_PROFILE => match self.slot_status(req.attr_mod) {
                status::OK => {
                    self.profile.emit(&mut data[..]);
                    status::OK
                }
                s => s,
            },
            _ => self.service_entries(EntryRange::from_modifier(req.attr_mod), data),
        }
    }

    /// [`status::OK`] if `slot` holds our IOC, else why not.
    fn slot_status(&self, slot: u32) -> u16 {
        if slot == 0 || slot > u32::from(self.unit.max_controllers) {
            return status::INVALID_FIELD;
        }
        match self.unit.slot(slot) {
            Some(SlotState::Present) if slot == IOC_SLOT => status::OK,
            _ => status::NO_IOC,
        }
    }

    fn service_entries(&self, range: EntryRange, data: &mut [u8; DATA_LEN]) -> u16 {
        match self.slot_status(u32::from(range.slot)) {
            status::OK => {}
            s => return s,
        }
        let (first, last) = (usize::from(range.first), usize::from(range.last));
        if first > last || last - first >= ENTRIES_PER_MAD || last >= self.entries.len() {
            return status::INVALID_FIELD;
        }
        for (k, entry) in self.entries[first..=last].iter().enumerate() {
            entry.emit(&mut data[k * ServiceEntry::LEN..]);
        }
        status::OK
    }
}

/// The agent's ClassPortInfo: DM base and class version, no traps, no redirection,
/// RespTimeValue 20 (about 4.3 s; the agent answers at once, the value only bounds a
/// requester's patience).
fn class_port_info() -> ClassPortInfo {
    ClassPortInfo {
        base_version: BASE_VERSION,
        class_version: CLASS_VERSION,
        capability_mask: 0,
        capability_mask2: 0,
        resp_time_value: 20,
        redirect_gid: [0; 16],
        redirect_lid: 0,
        redirect_pkey: 0,
        redirect_qp: 0,
        redirect_qkey: 0,
        trap_gid: [0; 16],
        trap_lid: 0,
        trap_pkey: 0,
        trap_qp: 0,
        trap_qkey: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUID: u64 = 0x0002_C903_0000_3000;

    fn agent() -> DmAgent {
        DmAgent::new(IocDescription::srp_target(GUID, 0x0002C9, 0x1017, 0x00A1)).expect("valid")
    }

    /// A Get request built byte by byte from the §1.3 header table (not by DmHeader).
    fn get(attr_id: u16, attr_mod: u32) -> [u8; 256] {
        let mut m = [0u8; 256];
        m[0] = 1; // BaseVersion
        m[1] = 0x06; // DevMgt
        m[2] = 1; // ClassVersion
        m[3] = 0x01; // Get
        m[8..16].copy_from_slice(&[0x00, 0x07, 0x00, 0x00, 0xDE, 0xAD, 0xBE, 0xEF]);
        m[16..18].copy_from_slice(&attr_id.to_be_bytes());
        m[20..24].copy_from_slice(&attr_mod.to_be_bytes());
        m
    }

    fn status_of(r: &[u8; 256]) -> u16 {
        u16::from_be_bytes([r[4], r[5]])
    }

    /// Asserts the response header echoes the request except method and status, and
    /// bytes 24..64 are zero.
    fn check_header(req: &[u8; 256], r: &[u8; 256], want_status: u16) {
        assert_eq!(&r[0..3], &req[0..3], "base, class, class version echoed");
        assert_eq!(r[3], 0x81, "GetResp");
        assert_eq!(status_of(r), want_status);
        assert_eq!(&r[6..24], &req[6..24], "TID, attribute, modifier echoed");
        assert!(r[24..64].iter().all(|&b| b == 0), "RMPP and reserved zero");
    }

    #[test]
    fn io_unit_info_bytes() {
        let req = get(0x0010, 0);
        let r = agent().handle(&req).expect("answered");
        check_header(&req, &r, 0);
        let d = &r[64..];
        assert_eq!(&d[0..4], &[0x00, 0x01, 16, 0x00], "change ID 1, 16 slots");
        assert_eq!(
            d[4], 0x10,
            "slot 1 present (high nibble), slot 2 not installed"
        );
        assert!(d[5..132].iter().all(|&b| b == 0));
        assert!(d[132..].iter().all(|&b| b == 0));
    }

    #[test]
    fn ioc_profile_bytes() {
        let req = get(0x0011, 1);
        let r = agent().handle(&req).expect("answered");
        check_header(&req, &r, 0);
        let d = &r[64..];
        #[rustfmt::skip]
        let want: [u8; 64] = [
            0x00, 0x02, 0xC9, 0x03, 0x00, 0x00, 0x30, 0x00, // IOC GUID
            0x00, 0x02, 0xC9, 0x00, // VendorID in bits 31..8
            0x00, 0x00, 0x10, 0x17, // DeviceID
            0x00, 0xA1, 0x00, 0x00, // DeviceVersion, reserved
            0x00, 0x00, 0x00, 0x00, // SubsystemVendorID
            0x00, 0x00, 0x00, 0x00, // SubsystemID
            0x01, 0x00, 0x60, 0x9E, // IO class 0x0100, subclass 0x609E
            0x01, 0x08, 0x00, 0x01, // protocol 0x0108, version 1
            0x00, 0x00, 0x00, 0x00, // service connections, initiators supported
            0x00, 0x80, 0x00, 0x04, // send queue depth 128, reserved, RDMA read depth 4
            0x00, 0x00, 0x20, 0x54, // send size 8276
            0x00, 0x01, 0x00, 0x00, // RDMA size 65536
            0x2B, 0x00, 0x01, 0x00, // op caps, svc caps, 1 service entry, reserved
            0, 0, 0, 0, 0, 0, 0, 0, // reserved to 64
        ];
        assert_eq!(&d[..64], &want[..]);
        assert_eq!(&d[64..86], b"fabboot-sim SRP target");
        assert!(d[86..128].iter().all(|&b| b == 0), "ID string NUL-padded");
        assert!(d[128..].iter().all(|&b| b == 0));
    }

    #[test]
    fn service_entry_bytes() {
        let req = get(0x0012, 1 << 16);
        let r = agent().handle(&req).expect("answered");
        check_header(&req, &r, 0);
        let d = &r[64..];
        assert_eq!(&d[..24], b"SRP.T10:0002C90300003000");
        assert!(d[24..40].iter().all(|&b| b == 0));
        assert_eq!(
            &d[40..48],
            &[0x00, 0x02, 0xC9, 0x03, 0x00, 0x00, 0x30, 0x00]
        );
        assert!(d[48..].iter().all(|&b| b == 0), "one entry only");
    }

    #[test]
    fn class_port_info_bytes() {
        let req = get(0x0001, 0);
        let r = agent().handle(&req).expect("answered");
        check_header(&req, &r, 0);
        let d = &r[64..];
        assert_eq!(&d[..8], &[1, 1, 0, 0, 0, 0, 0, 20]);
        assert!(d[8..].iter().all(|&b| b == 0));
    }

    #[test]
    fn status_codes() {
        let mut a = agent();
        let cases: &[(&str, [u8; 256], u16)] = &[
            ("slot 0", get(0x0011, 0), 0x001C),
            ("slot 17", get(0x0011, 17), 0x001C),
            ("slot 2 empty", get(0x0011, 2), 0x0100),
            ("slot 16 empty", get(0x0011, 16), 0x0100),
            ("huge slot", get(0x0011, 0xFFFF_FFFF), 0x001C),
            ("entries of empty slot", get(0x0012, 2 << 16), 0x0100),
            ("entries of slot 0", get(0x0012, 0), 0x001C),
            (
                "entry 1 does not exist",
                get(0x0012, 1 << 16 | 1 << 8 | 1),
                0x001C,
            ),
            ("last < first", get(0x0012, 1 << 16 | 1), 0x001C),
            ("more than 4", get(0x0012, 1 << 16 | 4 << 8), 0x001C),
            ("IOUnitInfo modifier", get(0x0010, 1), 0x001C),
            ("unknown attribute", get(0x0013, 0), 0x000C),
            ("SM attribute", get(0x0015, 0), 0x000C),
        ];
        for (what, req, want) in cases {
            let r = a.handle(req).expect(what);
            check_header(req, &r, *want);
            assert!(r[64..].iter().all(|&b| b == 0), "{what}: no data on error");
            assert_eq!(
                a.last_outcome(),
                Outcome::Answered {
                    attr_id: u16::from_be_bytes([req[16], req[17]]),
                    status: *want
                }
            );
        }
        let mut set = get(0x0001, 0);
        set[3] = 0x02;
        check_header(&set, &a.handle(&set).expect("Set"), 0x000C);
        let mut send = get(0x0010, 0);
        send[3] = 0x03;
        check_header(&send, &a.handle(&send).expect("Send"), 0x0008);
        let mut v2 = get(0x0010, 0);
        v2[2] = 2;
        check_header(&v2, &a.handle(&v2).expect("version 2"), 0x0004);
        let mut base = get(0x0010, 0);
        base[0] = 2;
        check_header(&base, &a.handle(&base).expect("base 2"), 0x0004);
    }

    #[test]
    fn responses_and_other_classes_are_ignored() {
        let mut a = agent();
        for (byte, value) in [(3, 0x81u8), (3, 0x07), (1, 0x03), (1, 0x07)] {
            let mut m = get(0x0010, 0);
            m[byte] = value;
            assert!(a.handle(&m).is_none(), "byte {byte} = {value:#x}");
            assert_eq!(a.last_outcome(), Outcome::Ignored);
        }
    }

    #[test]
    fn never_panics_on_any_header() {
        // Every method, both versions and every attribute ID around the four defined
        // ones, with awkward modifiers, over a pseudo-random body.
        let mut a = agent();
        let mut x: u32 = 0x1234_5678;
        for method in 0..=255u8 {
            for attr_id in [0u16, 1, 2, 0x0F, 0x10, 0x11, 0x12, 0x13, 0xFFFF] {
                for attr_mod in [0u32, 1, 2, 0x0001_0000, 0x0001_0303, 0x0001_FF00, u32::MAX] {
                    let mut m = [0u8; 256];
                    for b in m.iter_mut() {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        *b = x as u8;
                    }
                    DmHeader::get(u64::from(x), attr_id, attr_mod).emit(&mut m);
                    m[3] = method;
                    m[2] = 1 + ((x >> 8) as u8 & 1);
                    let _ = a.handle(&m);
                }
            }
        }
    }

    #[test]
    fn parse_reads_the_fixture_offsets() {
        let r = agent().handle(&get(0x0011, 1)).expect("answered");
        let h = DmHeader::parse(&r).expect("header");
        assert_eq!(
            (h.mgmt_class, h.method, h.tid, h.attr_id, h.attr_mod),
            (0x06, 0x81, 0x0007_0000_DEAD_BEEF, 0x0011, 1)
        );
        let p = IocProfile::parse(data(&r)).expect("profile");
        assert_eq!(p.guid, GUID);
        assert_eq!(
            p.vendor_id, 0x0002C9,
            "upper 24 bits, as srp_daemon reads it"
        );
        assert_eq!(
            (p.io_class, p.io_subclass, p.protocol),
            (0x0100, 0x609E, 0x0108)
        );
        assert_eq!((p.send_msg_size, p.rdma_size), (8276, 65536));
        assert_eq!(p.id_str(), Some("fabboot-sim SRP target"));

        let r = agent().handle(&get(0x0010, 0)).expect("answered");
        let u = IoUnitInfo::parse(data(&r)).expect("IOUnitInfo");
        assert_eq!(u.slot(1), Some(SlotState::Present));
        assert_eq!(u.slot(2), Some(SlotState::NotInstalled));
        assert_eq!(u.slot(0), None);
        assert_eq!(u.slot(257), None);

        let r = agent()
            .handle(&get(
                0x0012,
                EntryRange {
                    slot: 1,
                    first: 0,
                    last: 0,
                }
                .modifier(),
            ))
            .expect("answered");
        let e = ServiceEntry::parse(data(&r)).expect("entry");
        assert_eq!(e.srp_id_ext(), Some(GUID));
        assert_eq!(e.id, GUID);

        for (what, err) in [
            ("header", DmHeader::parse(&[0; 23]).map(|_| ())),
            ("cpi", ClassPortInfo::parse(&[0; 71]).map(|_| ())),
            ("iou", IoUnitInfo::parse(&[0; 131]).map(|_| ())),
            ("iocp", IocProfile::parse(&[0; 127]).map(|_| ())),
            ("svc", ServiceEntry::parse(&[0; 47]).map(|_| ())),
        ] {
            assert!(matches!(err, Err(DmError::Truncated { .. })), "{what}");
        }
    }

    #[test]
    fn emit_writes_every_byte() {
        // smoltcp-style: emit into 0xA5-filled buffers and parse back, and check each
        // emitter overwrote its whole length.
        let a = agent();
        let mut b = [0xA5u8; IocProfile::LEN];
        a.profile().emit(&mut b);
        assert_eq!(IocProfile::parse(&b).expect("parse"), *a.profile());
        assert_eq!(b[18..20], [0, 0]);
        assert_eq!(b[42], 0);
        assert!(b[55..64].iter().all(|&x| x == 0));
        let mut b = [0xA5u8; ClassPortInfo::LEN];
        class_port_info().emit(&mut b);
        assert_eq!(ClassPortInfo::parse(&b).expect("parse"), class_port_info());
        assert!(b[8..].iter().all(|&x| x == 0));
        let mut b = [0xA5u8; DmHeader::LEN];
        DmHeader::get(5, 0x10, 0).emit(&mut b);
        assert_eq!(b[18..20], [0, 0]);
        let mut b = [0xA5u8; ServiceEntry::LEN];
        ServiceEntry::srp(1, 2).emit(&mut b);
        assert_eq!(&b[..24], b"SRP.T10:0000000000000001");
        assert!(b[24..40].iter().all(|&x| x == 0));
    }

    #[test]
    fn descriptions_the_profile_cannot_carry() {
        let mut d = IocDescription::srp_target(GUID, 0x0100_0000, 1, 1);
        assert!(matches!(
            DmAgent::new(d.clone()),
            Err(DmError::OutOfRange {
                field: "VendorID",
                ..
            })
        ));
        d.vendor_id = 0x0002C9;
        d.id_string = "x".repeat(64);
        assert!(matches!(
            DmAgent::new(d.clone()),
            Err(DmError::OutOfRange { value: 64, .. })
        ));
        d.id_string = "x".repeat(63);
        let a = DmAgent::new(d).expect("63 bytes fit");
        assert_eq!(a.profile().id_string[63], 0, "still NUL-terminated");
    }

    #[test]
    fn entry_range_modifier() {
        let r = EntryRange::from_modifier(0x0001_0300);
        assert_eq!(
            r,
            EntryRange {
                slot: 1,
                first: 0,
                last: 3
            }
        );
        assert_eq!(r.modifier(), 0x0001_0300);
    }
}
