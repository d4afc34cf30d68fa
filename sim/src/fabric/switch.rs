//! The switch's own subnet management agent (SMA), and the subnet management packets
//! (SMPs) it speaks.
//!
//! - [`SmpRepr`]: the 256-byte SMP, LID-routed and directed-route (IBTA vol. 1 §14.2.1),
//!   with directed-route processing (§14.2.2): hop pointer, hop count, initial and
//!   return paths, and the direction bit D.
//! - [`NodeInfo`], [`SwitchInfo`], [`PortInfo`]: the attributes a subnet manager reads
//!   and writes (§14.2.5.3, §14.2.5.4, §14.2.5.6), as `Repr`s over the 64-byte SMP data.
//! - [`Switch`]: a switch with ports `0..=n`, port 0 being its management port. Its SMA
//!   answers NodeDescription, NodeInfo, SwitchInfo, PortInfo, P_KeyTable and
//!   LinearForwardingTable, and its linear forwarding table (LFT, §14.2.5.10) is the one
//!   the fabric forwards by. Ports 1..=n follow the fabric's links: a link that goes
//!   down takes its port to DOWN, a link that comes up brings it to INIT, and only a
//!   subnet manager moves it on to ARMED and ACTIVE (§14.2.5.6 PortState transitions).
//!
//! Parsers never panic on any input; the SMA answers what it cannot act on with a MAD
//! status (reference/srp-cm-sa-dm.md §1.3 for the common header) or drops it.
//!
//! Model simplifications: M_Key protection is not enforced (the subnet manager here
//! sets M_Key 0), port 0 is a base (not enhanced) switch port 0, and data packets are
//! forwarded whatever the logical state of the ports (so a fabric programmed by hand,
//! without a subnet manager, still carries traffic).

use core::fmt;
use core::ops::Range;

use super::LinkSpeed;

/// MgmtClass of a LID-routed SMP (IBTA vol. 1 §14.2.1.1).
pub const CLASS_SMP_LID: u8 = 0x01;
/// MgmtClass of a directed-route SMP (§14.2.1.2).
pub const CLASS_SMP_DR: u8 = 0x81;
/// The SMP ClassVersion.
pub const SMP_CLASS_VERSION: u8 = 1;
/// The permissive LID (§14.2.2): DrSLID/DrDLID of a path that is directed end to end.
pub const PERMISSIVE: u16 = 0xFFFF;
/// The most hops a directed route can take (the paths have 64 one-byte entries, entry
/// 0 unused).
pub const MAX_HOPS: u8 = 63;
/// LinearFDBCap of this switch: the whole unicast LID space, 0x0000..=0xBFFF.
pub const LINEAR_FDB_CAP: u16 = 0xC000;
/// Entries per LinearForwardingTable block (§14.2.5.10).
pub const LFT_BLOCK: usize = 64;
/// The LFT entry that means "no port" (packets for that LID are dropped).
pub const LFT_NO_PORT: u8 = 0xFF;
/// Length of the SMP data area, which every attribute here lives in.
pub const SMP_DATA_LEN: usize = 64;

/// SMP methods (IBTA vol. 1 §14.2.1).
pub mod method {
    /// SubnGet.
    pub const GET: u8 = 0x01;
    /// SubnSet.
    pub const SET: u8 = 0x02;
    /// SubnTrap.
    pub const TRAP: u8 = 0x05;
    /// SubnTrapRepress.
    pub const TRAP_REPRESS: u8 = 0x07;
    /// SubnGetResp: answers both Get and Set.
    pub const GET_RESP: u8 = 0x81;
    /// Method bit 7, the Response bit.
    pub const RESPONSE: u8 = 0x80;
}

/// SMP attribute IDs (IBTA vol. 1 §14.2.5).
pub mod attr {
    /// NodeDescription.
    pub const NODE_DESCRIPTION: u16 = 0x0010;
    /// NodeInfo.
    pub const NODE_INFO: u16 = 0x0011;
    /// SwitchInfo.
    pub const SWITCH_INFO: u16 = 0x0012;
    /// PortInfo.
    pub const PORT_INFO: u16 = 0x0015;
    /// P_KeyTable.
    pub const P_KEY_TABLE: u16 = 0x0016;
    /// LinearForwardingTable.
    pub const LINEAR_FORWARDING_TABLE: u16 = 0x0019;
}

/// MAD status codes (reference/srp-cm-sa-dm.md §1.3; IBTA vol. 1 §13.4.7: the code in
/// bits 4..2 of the status field).
pub mod status {
    /// Bad base or class version.
    pub const BAD_VERSION: u16 = 0x0004;
    /// Method not supported.
    pub const BAD_METHOD: u16 = 0x0008;
    /// Method/attribute combination not supported.
    pub const BAD_ATTR: u16 = 0x000C;
    /// One or more fields of the attribute or its modifier are invalid.
    pub const BAD_VALUE: u16 = 0x001C;
}

/// PortInfo.PortState values (IBTA vol. 1 §14.2.5.6).
pub mod port_state {
    /// In a SubnSet: leave the state as it is.
    pub const NO_CHANGE: u8 = 0;
    /// Down.
    pub const DOWN: u8 = 1;
    /// Initialize: link up, only SMPs pass.
    pub const INIT: u8 = 2;
    /// Armed.
    pub const ARMED: u8 = 3;
    /// Active.
    pub const ACTIVE: u8 = 4;
}

/// PortInfo.PortPhysicalState values (IBTA vol. 1 §14.2.5.6).
pub mod phys_state {
    /// Polling: no partner found.
    pub const POLLING: u8 = 2;
    /// LinkUp.
    pub const LINK_UP: u8 = 5;
}

/// Offsets in an SMP (IBTA vol. 1 §14.2.1.1 LID-routed, §14.2.1.2 directed route).
mod field {
    use core::ops::Range;
    pub const BASE_VERSION: usize = 0;
    pub const MGMT_CLASS: usize = 1;
    pub const CLASS_VERSION: usize = 2;
    pub const METHOD: usize = 3;
    /// Status; in a directed-route SMP bit 15 is the direction bit D.
    pub const STATUS: Range<usize> = 4..6;
    /// Directed route only (ClassSpecific in a LID-routed SMP).
    pub const HOP_POINTER: usize = 6;
    pub const HOP_COUNT: usize = 7;
    pub const TID: Range<usize> = 8..16;
    pub const ATTR_ID: Range<usize> = 16..18;
    pub const ATTR_MOD: Range<usize> = 20..24;
    pub const M_KEY: Range<usize> = 24..32;
    pub const DR_SLID: Range<usize> = 32..34;
    pub const DR_DLID: Range<usize> = 34..36;
    pub const DATA: Range<usize> = 64..128;
    pub const INITIAL_PATH: Range<usize> = 128..192;
    pub const RETURN_PATH: Range<usize> = 192..256;
    pub const D_BIT: u16 = 0x8000;
}

fn get16(b: &[u8], r: Range<usize>) -> u16 {
    let mut x = [0u8; 2];
    x.copy_from_slice(&b[r]);
    u16::from_be_bytes(x)
}

fn get32(b: &[u8], r: Range<usize>) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[r]);
    u32::from_be_bytes(x)
}

fn get64(b: &[u8], r: Range<usize>) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[r]);
    u64::from_be_bytes(x)
}

/// Why bytes are not an SMP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmpError {
    /// Fewer bytes than the structure needs.
    Truncated {
        /// What is being read ("SMP", "PortInfo", ...).
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes there are.
        got: usize,
    },
    /// BaseVersion other than 1.
    BaseVersion(u8),
    /// MgmtClass is neither 0x01 nor 0x81.
    NotSmp {
        /// The class found.
        class: u8,
    },
    /// A directed-route HopCount above 63.
    HopCount(u8),
}

impl fmt::Display for SmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SmpError::Truncated { what, needed, got } => {
                write!(f, "{what} truncated: {got} bytes of {needed}")
            }
            SmpError::BaseVersion(v) => write!(f, "MAD BaseVersion {v}, not 1"),
            SmpError::NotSmp { class } => write!(f, "MgmtClass {class:#04x} is not an SMP"),
            SmpError::HopCount(n) => write!(f, "HopCount {n} above {MAX_HOPS}"),
        }
    }
}

impl std::error::Error for SmpError {}

/// A subnet management packet (IBTA vol. 1 §14.2.1). For a LID-routed SMP the
/// directed-route fields are zero (they are reserved there) and `status` has 16 bits;
/// for a directed-route SMP `status` has 15 and `direction` is the D bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmpRepr {
    /// MgmtClass 0x81 rather than 0x01.
    pub directed: bool,
    /// ClassVersion (1 is the only one; the SMA answers others with BAD_VERSION).
    pub class_version: u8,
    /// Method (bit 7: response).
    pub method: u8,
    /// Status.
    pub status: u16,
    /// D: false outbound (from the requester), true returning.
    pub direction: bool,
    /// HopPointer.
    pub hop_pointer: u8,
    /// HopCount, 0..=63.
    pub hop_count: u8,
    /// TransactionID.
    pub tid: u64,
    /// AttributeID.
    pub attr_id: u16,
    /// AttributeModifier.
    pub attr_mod: u32,
    /// M_Key.
    pub m_key: u64,
    /// DrSLID.
    pub dr_slid: u16,
    /// DrDLID.
    pub dr_dlid: u16,
    /// The attribute.
    pub data: [u8; SMP_DATA_LEN],
    /// InitialPath: entry `i` is the port the SMP leaves hop `i` by (entry 0 unused).
    pub initial_path: [u8; 64],
    /// ReturnPath: entry `i` is the port the SMP arrived on at hop `i`.
    pub return_path: [u8; 64],
}

impl SmpRepr {
    /// Length of an SMP.
    pub const LEN: usize = field::RETURN_PATH.end;

    /// A directed-route request from the node the subnet manager is on, along `path`
    /// (the output port at each hop; empty: that node's own SMA). DrSLID and DrDLID
    /// are permissive (the route is directed end to end), the hop pointer 0.
    ///
    /// `None` if `path` is longer than [`MAX_HOPS`].
    pub fn directed_request(
        method: u8,
        tid: u64,
        attr_id: u16,
        attr_mod: u32,
        path: &[u8],
        data: [u8; SMP_DATA_LEN],
    ) -> Option<SmpRepr> {
        if path.len() > usize::from(MAX_HOPS) {
            return None;
        }
        let mut initial_path = [0u8; 64];
        initial_path[1..=path.len()].copy_from_slice(path);
        Some(SmpRepr {
            directed: true,
            class_version: SMP_CLASS_VERSION,
            method,
            status: 0,
            direction: false,
            hop_pointer: 0,
            hop_count: path.len() as u8,
            tid,
            attr_id,
            attr_mod,
            m_key: 0,
            dr_slid: PERMISSIVE,
            dr_dlid: PERMISSIVE,
            data,
            initial_path,
            return_path: [0; 64],
        })
    }

    /// A LID-routed request (IBTA vol. 1 §14.2.1.1).
    pub fn lid_request(
        method: u8,
        tid: u64,
        attr_id: u16,
        attr_mod: u32,
        data: [u8; SMP_DATA_LEN],
    ) -> SmpRepr {
        SmpRepr {
            directed: false,
            class_version: SMP_CLASS_VERSION,
            method,
            status: 0,
            direction: false,
            hop_pointer: 0,
            hop_count: 0,
            tid,
            attr_id,
            attr_mod,
            m_key: 0,
            dr_slid: 0,
            dr_dlid: 0,
            data,
            initial_path: [0; 64],
            return_path: [0; 64],
        }
    }

    /// Reads an SMP from the first [`SmpRepr::LEN`] bytes of `buf`. Never panics.
    pub fn parse(buf: &[u8]) -> Result<SmpRepr, SmpError> {
        if buf.len() < Self::LEN {
            return Err(SmpError::Truncated {
                what: "SMP",
                needed: Self::LEN,
                got: buf.len(),
            });
        }
        if buf[field::BASE_VERSION] != 1 {
            return Err(SmpError::BaseVersion(buf[field::BASE_VERSION]));
        }
        let directed = match buf[field::MGMT_CLASS] {
            CLASS_SMP_LID => false,
            CLASS_SMP_DR => true,
            class => return Err(SmpError::NotSmp { class }),
        };
        let raw_status = get16(buf, field::STATUS);
        let mut smp = SmpRepr::lid_request(
            buf[field::METHOD],
            get64(buf, field::TID),
            get16(buf, field::ATTR_ID),
            get32(buf, field::ATTR_MOD),
            [0; SMP_DATA_LEN],
        );
        smp.class_version = buf[field::CLASS_VERSION];
        smp.status = raw_status;
        smp.m_key = get64(buf, field::M_KEY);
        smp.data.copy_from_slice(&buf[field::DATA]);
        if directed {
            let hop_count = buf[field::HOP_COUNT];
            if hop_count > MAX_HOPS {
                return Err(SmpError::HopCount(hop_count));
            }
            smp.directed = true;
            smp.status = raw_status & !field::D_BIT;
            smp.direction = raw_status & field::D_BIT != 0;
            smp.hop_pointer = buf[field::HOP_POINTER];
            smp.hop_count = hop_count;
            smp.dr_slid = get16(buf, field::DR_SLID);
            smp.dr_dlid = get16(buf, field::DR_DLID);
            smp.initial_path.copy_from_slice(&buf[field::INITIAL_PATH]);
            smp.return_path.copy_from_slice(&buf[field::RETURN_PATH]);
        }
        Ok(smp)
    }

    /// Writes the SMP into the first [`SmpRepr::LEN`] bytes of `buf`, reserved fields
    /// as zero (for a LID-routed SMP everything from byte 32 to 63 and from 128 on).
    ///
    /// # Panics
    /// If `buf` is shorter than [`SmpRepr::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        let buf = &mut buf[..Self::LEN];
        buf.fill(0);
        buf[field::BASE_VERSION] = 1;
        buf[field::MGMT_CLASS] = if self.directed {
            CLASS_SMP_DR
        } else {
            CLASS_SMP_LID
        };
        buf[field::CLASS_VERSION] = self.class_version;
        buf[field::METHOD] = self.method;
        let status = if self.directed {
            (self.status & !field::D_BIT) | if self.direction { field::D_BIT } else { 0 }
        } else {
            self.status
        };
        buf[field::STATUS].copy_from_slice(&status.to_be_bytes());
        buf[field::TID].copy_from_slice(&self.tid.to_be_bytes());
        buf[field::ATTR_ID].copy_from_slice(&self.attr_id.to_be_bytes());
        buf[field::ATTR_MOD].copy_from_slice(&self.attr_mod.to_be_bytes());
        buf[field::M_KEY].copy_from_slice(&self.m_key.to_be_bytes());
        buf[field::DATA].copy_from_slice(&self.data);
        if self.directed {
            buf[field::HOP_POINTER] = self.hop_pointer;
            buf[field::HOP_COUNT] = self.hop_count;
            buf[field::DR_SLID].copy_from_slice(&self.dr_slid.to_be_bytes());
            buf[field::DR_DLID].copy_from_slice(&self.dr_dlid.to_be_bytes());
            buf[field::INITIAL_PATH].copy_from_slice(&self.initial_path);
            buf[field::RETURN_PATH].copy_from_slice(&self.return_path);
        }
    }

    /// The SMP as 256 bytes.
    pub fn to_bytes(&self) -> [u8; 256] {
        let mut b = [0u8; 256];
        self.emit(&mut b);
        b
    }

    /// Whether the Response bit of the method is set.
    pub fn is_response(&self) -> bool {
        self.method & method::RESPONSE != 0
    }

    /// The requester sends an outbound directed-route SMP it built with hop pointer 0
    /// (IBTA vol. 1 §14.2.2, outbound SMP at its originator): the hop pointer goes to
    /// 1 and the SMP leaves by InitialPath\[1\], or, with hop count 0, goes to the
    /// originating node's own SMA.
    pub fn dr_originate(&mut self) -> Result<DrStep, DrError> {
        self.check_directed()?;
        if self.direction || self.hop_pointer != 0 {
            return Err(self.bad_hop_pointer());
        }
        self.hop_pointer = 1;
        if self.hop_count == 0 {
            Ok(DrStep::Consume)
        } else {
            Ok(DrStep::Forward(self.initial_path[1]))
        }
    }

    /// A node receives a directed-route SMP on `in_port` (IBTA vol. 1 §14.2.2).
    ///
    /// Outbound (D = 0): at an intermediate hop (0 < hop pointer < hop count; switches
    /// only) the node records `in_port` in ReturnPath\[hop pointer\], increments the
    /// hop pointer and forwards the SMP by InitialPath\[hop pointer\]; at the last hop
    /// (hop pointer = hop count) it records `in_port` the same way, increments the
    /// hop pointer and hands the SMP to its SMA.
    ///
    /// Returning (D = 1): at an intermediate hop (2 ≤ hop pointer ≤ hop count;
    /// switches only) it decrements the hop pointer and forwards by
    /// ReturnPath\[hop pointer\]; at hop pointer 1 it decrements it to 0 and hands the
    /// SMP to the subnet manager on this node.
    ///
    /// Only end-to-end directed routes (permissive DrSLID and DrDLID) are handled;
    /// mixed LID-routed/directed paths are [`DrError::LidRoutedPart`].
    pub fn dr_receive(&mut self, in_port: u8, is_switch: bool) -> Result<DrStep, DrError> {
        self.check_directed()?;
        let (hp, hc) = (self.hop_pointer, self.hop_count);
        if !self.direction {
            if hp == 0 || hp > hc.saturating_add(1) {
                return Err(self.bad_hop_pointer());
            }
            if hp == hc + 1 {
                return Ok(DrStep::Consume);
            }
            if hp < hc && !is_switch {
                return Err(DrError::NotASwitch);
            }
            self.return_path[usize::from(hp)] = in_port;
            self.hop_pointer = hp + 1;
            if hp < hc {
                return Ok(DrStep::Forward(self.initial_path[usize::from(hp + 1)]));
            }
            if self.dr_dlid != PERMISSIVE {
                return Err(DrError::LidRoutedPart);
            }
            Ok(DrStep::Consume)
        } else {
            match hp {
                0 if hc == 0 => Ok(DrStep::Consume),
                1 => {
                    if self.dr_slid != PERMISSIVE {
                        return Err(DrError::LidRoutedPart);
                    }
                    self.hop_pointer = 0;
                    Ok(DrStep::Consume)
                }
                _ if hp >= 2 && hp <= hc => {
                    if !is_switch {
                        return Err(DrError::NotASwitch);
                    }
                    self.hop_pointer = hp - 1;
                    Ok(DrStep::Forward(self.return_path[usize::from(hp - 1)]))
                }
                _ => Err(self.bad_hop_pointer()),
            }
        }
    }

    /// The responder turns a directed-route SMP it consumed into its response (IBTA
    /// vol. 1 §14.2.2): D is set, the hop pointer (hop count + 1 after
    /// [`SmpRepr::dr_receive`]) is decremented and the response leaves by
    /// ReturnPath\[hop pointer\]; with hop count 0 it goes to the subnet manager on the
    /// same node.
    pub fn dr_turn_around(&mut self) -> Result<DrStep, DrError> {
        self.check_directed()?;
        if self.hop_pointer != self.hop_count + 1 {
            return Err(self.bad_hop_pointer());
        }
        self.direction = true;
        self.hop_pointer -= 1;
        if self.hop_count == 0 {
            Ok(DrStep::Consume)
        } else {
            Ok(DrStep::Forward(
                self.return_path[usize::from(self.hop_pointer)],
            ))
        }
    }

    fn check_directed(&self) -> Result<(), DrError> {
        if self.directed {
            Ok(())
        } else {
            Err(DrError::NotDirected)
        }
    }

    fn bad_hop_pointer(&self) -> DrError {
        DrError::HopPointer {
            hop_pointer: self.hop_pointer,
            hop_count: self.hop_count,
            returning: self.direction,
        }
    }
}

/// Where a directed-route SMP goes next from a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrStep {
    /// This node takes it: its SMA (outbound) or its subnet manager (returning).
    Consume,
    /// It leaves by this port.
    Forward(u8),
}

/// Why a node discards a directed-route SMP (IBTA vol. 1 §14.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrError {
    /// Not a directed-route SMP.
    NotDirected,
    /// The hop pointer does not fit the direction and hop count at this node.
    HopPointer {
        /// HopPointer.
        hop_pointer: u8,
        /// HopCount.
        hop_count: u8,
        /// The D bit.
        returning: bool,
    },
    /// An intermediate hop that is not a switch.
    NotASwitch,
    /// The path has a LID-routed part (DrSLID or DrDLID not permissive).
    LidRoutedPart,
}

impl fmt::Display for DrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DrError::NotDirected => write!(f, "not a directed-route SMP"),
            DrError::HopPointer {
                hop_pointer,
                hop_count,
                returning,
            } => write!(
                f,
                "hop pointer {hop_pointer} with hop count {hop_count} ({})",
                if returning { "returning" } else { "outbound" }
            ),
            DrError::NotASwitch => write!(f, "intermediate hop at a node that is not a switch"),
            DrError::LidRoutedPart => write!(f, "LID-routed part of a directed route"),
        }
    }
}

impl std::error::Error for DrError {}

/// Offsets in NodeInfo (IBTA vol. 1 §14.2.5.3).
mod node_field {
    use core::ops::Range;
    pub const BASE_VERSION: usize = 0;
    pub const CLASS_VERSION: usize = 1;
    pub const NODE_TYPE: usize = 2;
    pub const NUM_PORTS: usize = 3;
    pub const SYSTEM_IMAGE_GUID: Range<usize> = 4..12;
    pub const NODE_GUID: Range<usize> = 12..20;
    pub const PORT_GUID: Range<usize> = 20..28;
    pub const PARTITION_CAP: Range<usize> = 28..30;
    pub const DEVICE_ID: Range<usize> = 30..32;
    pub const REVISION: Range<usize> = 32..36;
    pub const LOCAL_PORT_NUM: usize = 36;
    pub const VENDOR_ID: Range<usize> = 37..40;
}

/// NodeInfo.NodeType of a channel adapter.
pub const NODE_TYPE_CA: u8 = 1;
/// NodeInfo.NodeType of a switch.
pub const NODE_TYPE_SWITCH: u8 = 2;

/// NodeInfo (IBTA vol. 1 §14.2.5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// BaseVersion of the MADs the node supports.
    pub base_version: u8,
    /// ClassVersion of the SMPs it supports.
    pub class_version: u8,
    /// 1 channel adapter, 2 switch, 3 router.
    pub node_type: u8,
    /// Physical ports (a switch's port 0 not counted).
    pub num_ports: u8,
    /// SystemImageGUID.
    pub system_image_guid: u64,
    /// NodeGUID.
    pub node_guid: u64,
    /// PortGUID of the port the SMP came in on (a switch: port 0's).
    pub port_guid: u64,
    /// P_Keys the node's partition tables hold.
    pub partition_cap: u16,
    /// DeviceID.
    pub device_id: u16,
    /// Revision.
    pub revision: u32,
    /// The port the SMP came in on.
    pub local_port_num: u8,
    /// VendorID (an IEEE OUI), 24 bits.
    pub vendor_id: u32,
}

impl NodeInfo {
    /// Length in bytes.
    pub const LEN: usize = node_field::VENDOR_ID.end;

    /// Reads NodeInfo from the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<NodeInfo, SmpError> {
        check_attr(buf, "NodeInfo", Self::LEN)?;
        let v = &buf[node_field::VENDOR_ID];
        Ok(NodeInfo {
            base_version: buf[node_field::BASE_VERSION],
            class_version: buf[node_field::CLASS_VERSION],
            node_type: buf[node_field::NODE_TYPE],
            num_ports: buf[node_field::NUM_PORTS],
            system_image_guid: get64(buf, node_field::SYSTEM_IMAGE_GUID),
            node_guid: get64(buf, node_field::NODE_GUID),
            port_guid: get64(buf, node_field::PORT_GUID),
            partition_cap: get16(buf, node_field::PARTITION_CAP),
            device_id: get16(buf, node_field::DEVICE_ID),
            revision: get32(buf, node_field::REVISION),
            local_port_num: buf[node_field::LOCAL_PORT_NUM],
            vendor_id: u32::from_be_bytes([0, v[0], v[1], v[2]]),
        })
    }

    /// Writes NodeInfo into the first [`NodeInfo::LEN`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`NodeInfo::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        buf[node_field::BASE_VERSION] = self.base_version;
        buf[node_field::CLASS_VERSION] = self.class_version;
        buf[node_field::NODE_TYPE] = self.node_type;
        buf[node_field::NUM_PORTS] = self.num_ports;
        buf[node_field::SYSTEM_IMAGE_GUID].copy_from_slice(&self.system_image_guid.to_be_bytes());
        buf[node_field::NODE_GUID].copy_from_slice(&self.node_guid.to_be_bytes());
        buf[node_field::PORT_GUID].copy_from_slice(&self.port_guid.to_be_bytes());
        buf[node_field::PARTITION_CAP].copy_from_slice(&self.partition_cap.to_be_bytes());
        buf[node_field::DEVICE_ID].copy_from_slice(&self.device_id.to_be_bytes());
        buf[node_field::REVISION].copy_from_slice(&self.revision.to_be_bytes());
        buf[node_field::LOCAL_PORT_NUM] = self.local_port_num;
        buf[node_field::VENDOR_ID].copy_from_slice(&self.vendor_id.to_be_bytes()[1..]);
    }
}

/// Offsets in SwitchInfo (IBTA vol. 1 §14.2.5.4).
mod switch_field {
    use core::ops::Range;
    pub const LINEAR_FDB_CAP: Range<usize> = 0..2;
    pub const RANDOM_FDB_CAP: Range<usize> = 2..4;
    pub const MULTICAST_FDB_CAP: Range<usize> = 4..6;
    pub const LINEAR_FDB_TOP: Range<usize> = 6..8;
    pub const DEFAULT_PORT: usize = 8;
    pub const DEFAULT_MCAST_PRIMARY_PORT: usize = 9;
    pub const DEFAULT_MCAST_NOT_PRIMARY_PORT: usize = 10;
    /// LifeTimeValue (bits 7..3), PortStateChange (bit 2), OptimizedSLtoVLMapping
    /// Programming (bits 1..0).
    pub const LIFE_STATE: usize = 11;
    pub const LIDS_PER_PORT: Range<usize> = 12..14;
    pub const PARTITION_ENFORCEMENT_CAP: Range<usize> = 14..16;
    /// InboundEnforcementCap, OutboundEnforcementCap, FilterRawInboundCap,
    /// FilterRawOutboundCap, EnhancedPort0 (bits 7..3).
    pub const FLAGS: usize = 16;
    pub const MULTICAST_FDB_TOP: Range<usize> = 18..20;
    pub const PORT_STATE_CHANGE: u8 = 0x04;
}

/// SwitchInfo (IBTA vol. 1 §14.2.5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwitchInfo {
    /// Entries the linear forwarding table can hold.
    pub linear_fdb_cap: u16,
    /// Entries of a random forwarding table (0: none).
    pub random_fdb_cap: u16,
    /// Entries of the multicast forwarding table.
    pub multicast_fdb_cap: u16,
    /// The highest LID the LFT forwards; packets for LIDs above it are dropped.
    pub linear_fdb_top: u16,
    /// DefaultPort.
    pub default_port: u8,
    /// DefaultMulticastPrimaryPort.
    pub default_mcast_primary_port: u8,
    /// DefaultMulticastNotPrimaryPort.
    pub default_mcast_not_primary_port: u8,
    /// LifeTimeValue, 5 bits: how long a packet may wait in the switch.
    pub life_time_value: u8,
    /// PortStateChange: some port's state changed since the bit was last cleared. A
    /// SubnSet with the bit set clears it.
    pub port_state_change: bool,
    /// OptimizedSLtoVLMappingProgramming, 2 bits.
    pub optimized_sl2vl: u8,
    /// LIDsPerPort.
    pub lids_per_port: u16,
    /// PartitionEnforcementCap.
    pub partition_enforcement_cap: u16,
    /// The five capability bits of byte 16 (Inbound/OutboundEnforcementCap,
    /// FilterRawInbound/OutboundCap, EnhancedPort0), in bits 7..3 as on the wire.
    pub flags: u8,
    /// MulticastFDBTop.
    pub multicast_fdb_top: u16,
}

impl SwitchInfo {
    /// Length in bytes.
    pub const LEN: usize = switch_field::MULTICAST_FDB_TOP.end;

    /// Reads SwitchInfo from the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<SwitchInfo, SmpError> {
        check_attr(buf, "SwitchInfo", Self::LEN)?;
        let life = buf[switch_field::LIFE_STATE];
        Ok(SwitchInfo {
            linear_fdb_cap: get16(buf, switch_field::LINEAR_FDB_CAP),
            random_fdb_cap: get16(buf, switch_field::RANDOM_FDB_CAP),
            multicast_fdb_cap: get16(buf, switch_field::MULTICAST_FDB_CAP),
            linear_fdb_top: get16(buf, switch_field::LINEAR_FDB_TOP),
            default_port: buf[switch_field::DEFAULT_PORT],
            default_mcast_primary_port: buf[switch_field::DEFAULT_MCAST_PRIMARY_PORT],
            default_mcast_not_primary_port: buf[switch_field::DEFAULT_MCAST_NOT_PRIMARY_PORT],
            life_time_value: life >> 3,
            port_state_change: life & switch_field::PORT_STATE_CHANGE != 0,
            optimized_sl2vl: life & 0x03,
            lids_per_port: get16(buf, switch_field::LIDS_PER_PORT),
            partition_enforcement_cap: get16(buf, switch_field::PARTITION_ENFORCEMENT_CAP),
            flags: buf[switch_field::FLAGS] & 0xF8,
            multicast_fdb_top: get16(buf, switch_field::MULTICAST_FDB_TOP),
        })
    }

    /// Writes SwitchInfo into the first [`SwitchInfo::LEN`] bytes of `buf`, reserved
    /// bits as zero.
    ///
    /// # Panics
    /// If `buf` is shorter than [`SwitchInfo::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        buf[..Self::LEN].fill(0);
        buf[switch_field::LINEAR_FDB_CAP].copy_from_slice(&self.linear_fdb_cap.to_be_bytes());
        buf[switch_field::RANDOM_FDB_CAP].copy_from_slice(&self.random_fdb_cap.to_be_bytes());
        buf[switch_field::MULTICAST_FDB_CAP].copy_from_slice(&self.multicast_fdb_cap.to_be_bytes());
        buf[switch_field::LINEAR_FDB_TOP].copy_from_slice(&self.linear_fdb_top.to_be_bytes());
        buf[switch_field::DEFAULT_PORT] = self.default_port;
        buf[switch_field::DEFAULT_MCAST_PRIMARY_PORT] = self.default_mcast_primary_port;
        buf[switch_field::DEFAULT_MCAST_NOT_PRIMARY_PORT] = self.default_mcast_not_primary_port;
        buf[switch_field::LIFE_STATE] = (self.life_time_value & 0x1F) << 3
            | if self.port_state_change {
                switch_field::PORT_STATE_CHANGE
            } else {
                0
            }
            | (self.optimized_sl2vl & 0x03);
        buf[switch_field::LIDS_PER_PORT].copy_from_slice(&self.lids_per_port.to_be_bytes());
        buf[switch_field::PARTITION_ENFORCEMENT_CAP]
            .copy_from_slice(&self.partition_enforcement_cap.to_be_bytes());
        buf[switch_field::FLAGS] = self.flags & 0xF8;
        buf[switch_field::MULTICAST_FDB_TOP].copy_from_slice(&self.multicast_fdb_top.to_be_bytes());
    }
}

/// Offsets in PortInfo (IBTA vol. 1 §14.2.5.6).
mod port_field {
    use core::ops::Range;
    pub const M_KEY: Range<usize> = 0..8;
    pub const GID_PREFIX: Range<usize> = 8..16;
    pub const LID: Range<usize> = 16..18;
    pub const MASTER_SM_LID: Range<usize> = 18..20;
    pub const CAPABILITY_MASK: Range<usize> = 20..24;
    pub const DIAG_CODE: Range<usize> = 24..26;
    pub const M_KEY_LEASE_PERIOD: Range<usize> = 26..28;
    pub const LOCAL_PORT_NUM: usize = 28;
    pub const LINK_WIDTH_ENABLED: usize = 29;
    pub const LINK_WIDTH_SUPPORTED: usize = 30;
    pub const LINK_WIDTH_ACTIVE: usize = 31;
    /// LinkSpeedSupported (7..4), PortState (3..0).
    pub const SPEED_SUPPORTED_STATE: usize = 32;
    /// PortPhysicalState (7..4), LinkDownDefaultState (3..0).
    pub const PHYS_DOWN_DEFAULT: usize = 33;
    /// M_KeyProtectBits (7..6), LMC (2..0).
    pub const PROTECT_LMC: usize = 34;
    /// LinkSpeedActive (7..4), LinkSpeedEnabled (3..0).
    pub const SPEED_ACTIVE_ENABLED: usize = 35;
    /// NeighborMTU (7..4), MasterSMSL (3..0).
    pub const NEIGHBOR_MTU_SM_SL: usize = 36;
    /// VLCap (7..4), InitType (3..0).
    pub const VL_CAP: usize = 37;
    /// InitTypeReply (7..4), MTUCap (3..0).
    pub const MTU_CAP: usize = 41;
    /// OperationalVLs (7..4), partition enforcement and raw filtering (3..0).
    pub const OPERATIONAL_VLS: usize = 43;
    /// ClientReregister (7), MulticastPKeyTrapSuppressionEnabled (6..5),
    /// SubnetTimeOut (4..0).
    pub const REREG_TIMEOUT: usize = 51;
    /// RespTimeValue (4..0).
    pub const RESP_TIME: usize = 52;
    /// LinkSpeedExtActive (7..4), LinkSpeedExtSupported (3..0).
    pub const SPEED_EXT: usize = 62;
    /// LinkSpeedExtEnabled (4..0).
    pub const SPEED_EXT_ENABLED: usize = 63;
}

/// PortInfo.CapabilityMask: IsSM (IBTA vol. 1 §14.2.5.6).
pub const CAP_IS_SM: u32 = 1 << 1;
/// PortInfo.CapabilityMask: IsTrapSupported.
pub const CAP_IS_TRAP: u32 = 1 << 3;
/// PortInfo.CapabilityMask: IsSLMappingSupported.
pub const CAP_IS_SL_MAPPING: u32 = 1 << 6;
/// PortInfo.CapabilityMask: IsSystemImageGUIDSupported.
pub const CAP_IS_SYSTEM_IMAGE_GUID: u32 = 1 << 11;
/// PortInfo.CapabilityMask: IsExtendedSpeedsSupported.
pub const CAP_IS_EXTENDED_SPEEDS: u32 = 1 << 14;

/// PortInfo (IBTA vol. 1 §14.2.5.6): the fields this simulator models. Bytes it does
/// not model (diagnostic counters, VL arbitration capabilities, violation counters,
/// round-trip latency) are written as zero, which in a SubnSet means "no change" for
/// every writable one of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortInfo {
    /// M_Key.
    pub m_key: u64,
    /// GidPrefix.
    pub gid_prefix: u64,
    /// LID (a switch: port 0 only).
    pub lid: u16,
    /// MasterSMLID.
    pub master_sm_lid: u16,
    /// CapabilityMask.
    pub capability_mask: u32,
    /// DiagCode.
    pub diag_code: u16,
    /// M_KeyLeasePeriod.
    pub m_key_lease_period: u16,
    /// LocalPortNum: the port the SMP came in on.
    pub local_port_num: u8,
    /// LinkWidthEnabled.
    pub link_width_enabled: u8,
    /// LinkWidthSupported.
    pub link_width_supported: u8,
    /// LinkWidthActive (1: 1x, 2: 4x, 4: 8x, 8: 12x).
    pub link_width_active: u8,
    /// LinkSpeedSupported.
    pub link_speed_supported: u8,
    /// PortState ([`port_state`]).
    pub port_state: u8,
    /// PortPhysicalState ([`phys_state`]).
    pub port_phys_state: u8,
    /// LinkDownDefaultState.
    pub link_down_default_state: u8,
    /// M_KeyProtectBits.
    pub m_key_protect_bits: u8,
    /// LMC.
    pub lmc: u8,
    /// LinkSpeedActive (1: SDR, 2: DDR, 4: QDR).
    pub link_speed_active: u8,
    /// LinkSpeedEnabled.
    pub link_speed_enabled: u8,
    /// NeighborMTU (5: 4096).
    pub neighbor_mtu: u8,
    /// MasterSMSL.
    pub master_sm_sl: u8,
    /// VLCap.
    pub vl_cap: u8,
    /// MTUCap.
    pub mtu_cap: u8,
    /// OperationalVLs.
    pub operational_vls: u8,
    /// ClientReregister.
    pub client_reregister: bool,
    /// SubnetTimeOut, 5 bits.
    pub subnet_timeout: u8,
    /// RespTimeValue, 5 bits.
    pub resp_time_value: u8,
    /// LinkSpeedExtActive (0: none, 1: FDR, 2: EDR, 4: HDR).
    pub link_speed_ext_active: u8,
    /// LinkSpeedExtSupported.
    pub link_speed_ext_supported: u8,
    /// LinkSpeedExtEnabled.
    pub link_speed_ext_enabled: u8,
}

impl PortInfo {
    /// Length in bytes.
    pub const LEN: usize = port_field::SPEED_EXT_ENABLED + 1;

    /// Reads PortInfo from the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<PortInfo, SmpError> {
        check_attr(buf, "PortInfo", Self::LEN)?;
        let b = |at: usize| buf[at];
        Ok(PortInfo {
            m_key: get64(buf, port_field::M_KEY),
            gid_prefix: get64(buf, port_field::GID_PREFIX),
            lid: get16(buf, port_field::LID),
            master_sm_lid: get16(buf, port_field::MASTER_SM_LID),
            capability_mask: get32(buf, port_field::CAPABILITY_MASK),
            diag_code: get16(buf, port_field::DIAG_CODE),
            m_key_lease_period: get16(buf, port_field::M_KEY_LEASE_PERIOD),
            local_port_num: b(port_field::LOCAL_PORT_NUM),
            link_width_enabled: b(port_field::LINK_WIDTH_ENABLED),
            link_width_supported: b(port_field::LINK_WIDTH_SUPPORTED),
            link_width_active: b(port_field::LINK_WIDTH_ACTIVE),
            link_speed_supported: b(port_field::SPEED_SUPPORTED_STATE) >> 4,
            port_state: b(port_field::SPEED_SUPPORTED_STATE) & 0x0F,
            port_phys_state: b(port_field::PHYS_DOWN_DEFAULT) >> 4,
            link_down_default_state: b(port_field::PHYS_DOWN_DEFAULT) & 0x0F,
            m_key_protect_bits: b(port_field::PROTECT_LMC) >> 6,
            lmc: b(port_field::PROTECT_LMC) & 0x07,
            link_speed_active: b(port_field::SPEED_ACTIVE_ENABLED) >> 4,
            link_speed_enabled: b(port_field::SPEED_ACTIVE_ENABLED) & 0x0F,
            neighbor_mtu: b(port_field::NEIGHBOR_MTU_SM_SL) >> 4,
            master_sm_sl: b(port_field::NEIGHBOR_MTU_SM_SL) & 0x0F,
            vl_cap: b(port_field::VL_CAP) >> 4,
            mtu_cap: b(port_field::MTU_CAP) & 0x0F,
            operational_vls: b(port_field::OPERATIONAL_VLS) >> 4,
            client_reregister: b(port_field::REREG_TIMEOUT) & 0x80 != 0,
            subnet_timeout: b(port_field::REREG_TIMEOUT) & 0x1F,
            resp_time_value: b(port_field::RESP_TIME) & 0x1F,
            link_speed_ext_active: b(port_field::SPEED_EXT) >> 4,
            link_speed_ext_supported: b(port_field::SPEED_EXT) & 0x0F,
            link_speed_ext_enabled: b(port_field::SPEED_EXT_ENABLED) & 0x1F,
        })
    }

    /// Writes PortInfo into the first [`PortInfo::LEN`] bytes of `buf`; the bytes it
    /// does not model are zero.
    ///
    /// # Panics
    /// If `buf` is shorter than [`PortInfo::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        let buf = &mut buf[..Self::LEN];
        buf.fill(0);
        buf[port_field::M_KEY].copy_from_slice(&self.m_key.to_be_bytes());
        buf[port_field::GID_PREFIX].copy_from_slice(&self.gid_prefix.to_be_bytes());
        buf[port_field::LID].copy_from_slice(&self.lid.to_be_bytes());
        buf[port_field::MASTER_SM_LID].copy_from_slice(&self.master_sm_lid.to_be_bytes());
        buf[port_field::CAPABILITY_MASK].copy_from_slice(&self.capability_mask.to_be_bytes());
        buf[port_field::DIAG_CODE].copy_from_slice(&self.diag_code.to_be_bytes());
        buf[port_field::M_KEY_LEASE_PERIOD].copy_from_slice(&self.m_key_lease_period.to_be_bytes());
        buf[port_field::LOCAL_PORT_NUM] = self.local_port_num;
        buf[port_field::LINK_WIDTH_ENABLED] = self.link_width_enabled;
        buf[port_field::LINK_WIDTH_SUPPORTED] = self.link_width_supported;
        buf[port_field::LINK_WIDTH_ACTIVE] = self.link_width_active;
        buf[port_field::SPEED_SUPPORTED_STATE] =
            (self.link_speed_supported & 0x0F) << 4 | (self.port_state & 0x0F);
        buf[port_field::PHYS_DOWN_DEFAULT] =
            (self.port_phys_state & 0x0F) << 4 | (self.link_down_default_state & 0x0F);
        buf[port_field::PROTECT_LMC] = (self.m_key_protect_bits & 0x03) << 6 | (self.lmc & 0x07);
        buf[port_field::SPEED_ACTIVE_ENABLED] =
            (self.link_speed_active & 0x0F) << 4 | (self.link_speed_enabled & 0x0F);
        buf[port_field::NEIGHBOR_MTU_SM_SL] =
            (self.neighbor_mtu & 0x0F) << 4 | (self.master_sm_sl & 0x0F);
        buf[port_field::VL_CAP] = (self.vl_cap & 0x0F) << 4;
        buf[port_field::MTU_CAP] = self.mtu_cap & 0x0F;
        buf[port_field::OPERATIONAL_VLS] = (self.operational_vls & 0x0F) << 4;
        buf[port_field::REREG_TIMEOUT] =
            u8::from(self.client_reregister) << 7 | (self.subnet_timeout & 0x1F);
        buf[port_field::RESP_TIME] = self.resp_time_value & 0x1F;
        buf[port_field::SPEED_EXT] =
            (self.link_speed_ext_active & 0x0F) << 4 | (self.link_speed_ext_supported & 0x0F);
        buf[port_field::SPEED_EXT_ENABLED] = self.link_speed_ext_enabled & 0x1F;
    }
}

fn check_attr(buf: &[u8], what: &'static str, needed: usize) -> Result<(), SmpError> {
    if buf.len() < needed {
        Err(SmpError::Truncated {
            what,
            needed,
            got: buf.len(),
        })
    } else {
        Ok(())
    }
}

/// Why the switch dropped an SMP that reached it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmpDrop {
    /// Not an SMP.
    Parse(SmpError),
    /// Directed-route processing discarded it.
    Route(DrError),
    /// The path names a port the switch does not have.
    BadPort(u8),
    /// A response, trap or repress reached the SMA, which answers requests only.
    NotARequest {
        /// The method.
        method: u8,
    },
    /// No LFT entry for the LID the SMA's answer is addressed to.
    NoRoute(u16),
}

impl fmt::Display for SmpDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SmpDrop::Parse(e) => write!(f, "{e}"),
            SmpDrop::Route(e) => write!(f, "{e}"),
            SmpDrop::BadPort(p) => write!(f, "no port {p} on this switch"),
            SmpDrop::NotARequest { method } => {
                write!(f, "method {method:#04x} is not a request for the SMA")
            }
            SmpDrop::NoRoute(lid) => write!(f, "no route to LID {lid:#06x} for the answer"),
        }
    }
}

/// What the switch does with an SMP that reached it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmpAction {
    /// Pass the SMP on out of `port` (0: to the subnet manager on the management
    /// port), as `mad` (a directed-route SMP with its hop pointer and return path
    /// updated), keeping the packet's LRH.
    Forward {
        /// Output port.
        port: u8,
        /// The SMP to send.
        mad: [u8; 256],
    },
    /// The SMA's answer: send `mad` out of `port` in a packet from `slid` to `dlid`.
    Answer {
        /// Output port (0: the subnet manager on the management port).
        port: u8,
        /// LRH DLID.
        dlid: u16,
        /// LRH SLID.
        slid: u16,
        /// The response.
        mad: [u8; 256],
    },
}

/// What the SMA has done, for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SmaCounters {
    /// Requests answered (any status).
    pub answered: u64,
    /// Directed-route SMPs passed on.
    pub forwarded: u64,
    /// SMPs dropped.
    pub dropped: u64,
    /// Why the last one was dropped.
    pub last_drop: Option<SmpDrop>,
}

/// Port 0's configuration, which the subnet manager writes through PortInfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Management {
    lid: u16,
    sm_lid: u16,
    lmc: u8,
    sm_sl: u8,
    subnet_timeout: u8,
    m_key: u64,
    m_key_lease_period: u16,
    gid_prefix: u64,
}

/// One port's link: logical and physical state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PortLink {
    state: u8,
    phys: u8,
}

/// A switch: management port 0, ports 1..=n, an SMA and a linear forwarding table.
#[derive(Clone)]
pub struct Switch {
    node_guid: u64,
    description: [u8; 64],
    ports: Vec<PortLink>,
    mgmt: Management,
    lft: Vec<u8>,
    lft_top: u16,
    life_time_value: u8,
    port_state_change: bool,
    /// LinkWidthActive code and LinkSpeedActive / LinkSpeedExtActive codes.
    width: u8,
    speed: (u8, u8),
    /// How long the SMA takes to answer a request (a model figure, not a measured one).
    pub sma_latency_ns: u64,
    counters: SmaCounters,
}

impl fmt::Debug for Switch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Switch")
            .field("node_guid", &format_args!("{:#018x}", self.node_guid))
            .field("ports", &self.num_ports())
            .field("lid", &self.mgmt.lid)
            .field("linear_fdb_top", &self.lft_top)
            .finish()
    }
}

/// LinkWidth code for a number of lanes (IBTA vol. 1 §14.2.5.6).
fn width_code(lanes: u8) -> u8 {
    match lanes {
        0 | 1 => 1,
        2 => 16,
        3..=4 => 2,
        5..=8 => 4,
        _ => 8,
    }
}

/// (LinkSpeedActive, LinkSpeedExtActive) for a link speed (IBTA vol. 1 §14.2.5.6).
fn speed_codes(speed: LinkSpeed) -> (u8, u8) {
    match speed {
        LinkSpeed::Sdr => (1, 0),
        LinkSpeed::Ddr => (2, 0),
        LinkSpeed::Qdr => (4, 0),
        LinkSpeed::Fdr => (4, 1),
        LinkSpeed::Edr => (4, 2),
        LinkSpeed::Hdr => (4, 4),
    }
}

impl Switch {
    /// A switch with external ports 1..=`ports` (at most 254), every link up and
    /// every port in INIT, no LID and an empty forwarding table, as at power-up.
    pub fn new(ports: u8, node_guid: u64, speed: LinkSpeed, lanes: u8) -> Switch {
        let ports = ports.min(254);
        let mut description = [0u8; 64];
        let name = b"fabboot-sim switch";
        description[..name.len()].copy_from_slice(name);
        let up = PortLink {
            state: port_state::INIT,
            phys: phys_state::LINK_UP,
        };
        Switch {
            node_guid,
            description,
            ports: vec![up; usize::from(ports) + 1],
            mgmt: Management {
                lid: 0,
                sm_lid: 0,
                lmc: 0,
                sm_sl: 0,
                subnet_timeout: 0,
                m_key: 0,
                m_key_lease_period: 0,
                gid_prefix: 0xFE80_0000_0000_0000,
            },
            lft: vec![LFT_NO_PORT; usize::from(LINEAR_FDB_CAP)],
            lft_top: 0,
            life_time_value: 0,
            port_state_change: false,
            width: width_code(lanes),
            speed: speed_codes(speed),
            sma_latency_ns: 1_000,
            counters: SmaCounters::default(),
        }
    }

    /// External ports (port 0 not counted).
    pub fn num_ports(&self) -> u8 {
        (self.ports.len() - 1) as u8
    }

    /// NodeGUID (also the GUID of port 0).
    pub fn node_guid(&self) -> u64 {
        self.node_guid
    }

    /// Port 0's LID, the switch's LID (0 until a subnet manager sets it).
    pub fn lid(&self) -> u16 {
        self.mgmt.lid
    }

    /// The SM LID a subnet manager set on port 0.
    pub fn sm_lid(&self) -> u16 {
        self.mgmt.sm_lid
    }

    /// PortState of `port`.
    pub fn port_state(&self, port: u8) -> Option<u8> {
        self.ports.get(usize::from(port)).map(|l| l.state)
    }

    /// SwitchInfo.LinearFDBTop.
    pub fn linear_fdb_top(&self) -> u16 {
        self.lft_top
    }

    /// SwitchInfo.PortStateChange.
    pub fn port_state_change(&self) -> bool {
        self.port_state_change
    }

    /// What the SMA has done.
    pub fn counters(&self) -> SmaCounters {
        self.counters
    }

    /// The port the switch forwards a packet for `dlid` to: its LFT entry, if the LID
    /// is a unicast LID at or below LinearFDBTop and has one (§14.2.5.10).
    pub fn out_port(&self, dlid: u16) -> Option<u8> {
        if dlid == 0 || dlid > self.lft_top {
            return None;
        }
        match self.lft.get(usize::from(dlid)) {
            Some(&LFT_NO_PORT) | None => None,
            Some(&p) => Some(p),
        }
    }

    /// Programs one LFT entry directly, raising LinearFDBTop to cover it: for fabrics
    /// run without a subnet manager. LIDs outside the unicast range are ignored.
    pub fn program(&mut self, lid: u16, port: u8) {
        if let Some(e) = self.lft.get_mut(usize::from(lid)) {
            *e = port;
            self.lft_top = self.lft_top.max(lid);
        }
    }

    /// Empties the LFT (every entry "no port", LinearFDBTop 0).
    pub fn clear_lft(&mut self) {
        self.lft.fill(LFT_NO_PORT);
        self.lft_top = 0;
    }

    /// The link of external `port` goes up (the port enters INIT) or down (DOWN, and
    /// the physical state Polling); either sets PortStateChange.
    pub fn set_link(&mut self, port: u8, up: bool) {
        if port == 0 {
            return;
        }
        let Some(link) = self.ports.get_mut(usize::from(port)) else {
            return;
        };
        let next = if up {
            if link.phys == phys_state::LINK_UP {
                return;
            }
            PortLink {
                state: port_state::INIT,
                phys: phys_state::LINK_UP,
            }
        } else {
            if link.phys != phys_state::LINK_UP {
                return;
            }
            PortLink {
                state: port_state::DOWN,
                phys: phys_state::POLLING,
            }
        };
        *link = next;
        self.port_state_change = true;
    }

    /// An SMP reached the switch on `in_port` (0: sent by the subnet manager on the
    /// management port) in a packet from `lrh_slid`: directed-route SMPs are passed on
    /// along their path or answered by the SMA at its end (§14.2.2); LID-routed
    /// requests are answered (the fabric hands the switch only those addressed to its
    /// LID), LID-routed responses go to the subnet manager.
    pub fn receive_smp(
        &mut self,
        in_port: u8,
        lrh_slid: u16,
        mad: &[u8],
    ) -> Result<SmpAction, SmpDrop> {
        let r = self.route_smp(in_port, lrh_slid, mad);
        match &r {
            Ok(SmpAction::Answer { .. }) => self.counters.answered += 1,
            Ok(SmpAction::Forward { .. }) => self.counters.forwarded += 1,
            Err(e) => {
                self.counters.dropped += 1;
                self.counters.last_drop = Some(*e);
            }
        }
        r
    }

    fn route_smp(&mut self, in_port: u8, lrh_slid: u16, mad: &[u8]) -> Result<SmpAction, SmpDrop> {
        let mut smp = SmpRepr::parse(mad).map_err(SmpDrop::Parse)?;
        if usize::from(in_port) >= self.ports.len() {
            return Err(SmpDrop::BadPort(in_port));
        }
        if !smp.directed {
            if smp.is_response() {
                return Ok(SmpAction::Forward {
                    port: 0,
                    mad: smp.to_bytes(),
                });
            }
            let resp = self.answer(in_port, &smp)?;
            let port = self.out_port(lrh_slid).ok_or(SmpDrop::NoRoute(lrh_slid))?;
            return Ok(SmpAction::Answer {
                port,
                dlid: lrh_slid,
                slid: self.mgmt.lid,
                mad: resp.to_bytes(),
            });
        }
        let originated = in_port == 0 && !smp.direction && smp.hop_pointer == 0;
        let step = if originated {
            smp.dr_originate()
        } else {
            smp.dr_receive(in_port, true)
        }
        .map_err(SmpDrop::Route)?;
        match step {
            DrStep::Forward(port) => {
                self.external(port)?;
                Ok(SmpAction::Forward {
                    port,
                    mad: smp.to_bytes(),
                })
            }
            DrStep::Consume if smp.direction => Ok(SmpAction::Forward {
                port: 0,
                mad: smp.to_bytes(),
            }),
            DrStep::Consume => {
                let mut resp = self.answer(in_port, &smp)?;
                let port = match resp.dr_turn_around().map_err(SmpDrop::Route)? {
                    DrStep::Consume => 0,
                    DrStep::Forward(port) => {
                        self.external(port)?;
                        port
                    }
                };
                Ok(SmpAction::Answer {
                    port,
                    dlid: PERMISSIVE,
                    slid: PERMISSIVE,
                    mad: resp.to_bytes(),
                })
            }
        }
    }

    fn external(&self, port: u8) -> Result<(), SmpDrop> {
        if port == 0 || usize::from(port) >= self.ports.len() {
            Err(SmpDrop::BadPort(port))
        } else {
            Ok(())
        }
    }

    /// The SMA's response to a request that arrived on `in_port` (IBTA vol. 1
    /// §14.2.5): the request with method GetResp, a status and the attribute.
    fn answer(&mut self, in_port: u8, req: &SmpRepr) -> Result<SmpRepr, SmpDrop> {
        if !matches!(req.method, method::GET | method::SET)
            && (req.is_response() || matches!(req.method, method::TRAP | method::TRAP_REPRESS))
        {
            return Err(SmpDrop::NotARequest { method: req.method });
        }
        let mut resp = *req;
        resp.method = method::GET_RESP;
        resp.data = [0; SMP_DATA_LEN];
        resp.status = if req.class_version != SMP_CLASS_VERSION {
            status::BAD_VERSION
        } else if !matches!(req.method, method::GET | method::SET) {
            status::BAD_METHOD
        } else {
            self.attribute(in_port, req, &mut resp.data)
        };
        Ok(resp)
    }

    /// Gets or sets the attribute `req` names, writing the attribute as it stands
    /// afterwards into `out`; returns the MAD status.
    fn attribute(&mut self, in_port: u8, req: &SmpRepr, out: &mut [u8; SMP_DATA_LEN]) -> u16 {
        let set = req.method == method::SET;
        let modifier = req.attr_mod;
        match req.attr_id {
            attr::NODE_DESCRIPTION if !set => {
                out.copy_from_slice(&self.description);
                0
            }
            attr::NODE_INFO if !set => {
                self.node_info(in_port).emit(out);
                0
            }
            attr::SWITCH_INFO => {
                if set {
                    let Ok(want) = SwitchInfo::parse(&req.data) else {
                        return status::BAD_VALUE;
                    };
                    if want.linear_fdb_top >= LINEAR_FDB_CAP {
                        return status::BAD_VALUE;
                    }
                    self.lft_top = want.linear_fdb_top;
                    self.life_time_value = want.life_time_value & 0x1F;
                    if want.port_state_change {
                        self.port_state_change = false;
                    }
                }
                self.switch_info().emit(out);
                0
            }
            attr::PORT_INFO => {
                let Some(port) = u8::try_from(modifier)
                    .ok()
                    .filter(|&p| usize::from(p) < self.ports.len())
                else {
                    return status::BAD_VALUE;
                };
                if set {
                    let Ok(want) = PortInfo::parse(&req.data) else {
                        return status::BAD_VALUE;
                    };
                    let s = self.set_port_info(port, &want);
                    if s != 0 {
                        return s;
                    }
                }
                self.port_info(port, in_port).emit(out);
                0
            }
            attr::P_KEY_TABLE if !set => {
                // Modifier: port in bits 31..16, block in 15..0 (§14.2.5.7).
                let (port, block) = (modifier >> 16, modifier & 0xFFFF);
                if port as usize >= self.ports.len() || block != 0 {
                    return status::BAD_VALUE;
                }
                out[..2].copy_from_slice(&0xFFFFu16.to_be_bytes());
                0
            }
            attr::LINEAR_FORWARDING_TABLE => {
                let blocks = usize::from(LINEAR_FDB_CAP) / LFT_BLOCK;
                let Some(block) = usize::try_from(modifier).ok().filter(|&b| b < blocks) else {
                    return status::BAD_VALUE;
                };
                let range = block * LFT_BLOCK..(block + 1) * LFT_BLOCK;
                if set {
                    let n = self.num_ports();
                    if req.data.iter().any(|&p| p > n && p != LFT_NO_PORT) {
                        return status::BAD_VALUE;
                    }
                    self.lft[range.clone()].copy_from_slice(&req.data);
                }
                out.copy_from_slice(&self.lft[range]);
                0
            }
            _ => status::BAD_ATTR,
        }
    }

    fn node_info(&self, in_port: u8) -> NodeInfo {
        NodeInfo {
            base_version: 1,
            class_version: SMP_CLASS_VERSION,
            node_type: NODE_TYPE_SWITCH,
            num_ports: self.num_ports(),
            system_image_guid: self.node_guid,
            node_guid: self.node_guid,
            port_guid: self.node_guid,
            partition_cap: 1,
            device_id: 0xCB20,
            revision: 0,
            local_port_num: in_port,
            vendor_id: 0x0002C9,
        }
    }

    fn switch_info(&self) -> SwitchInfo {
        SwitchInfo {
            linear_fdb_cap: LINEAR_FDB_CAP,
            random_fdb_cap: 0,
            multicast_fdb_cap: 0,
            linear_fdb_top: self.lft_top,
            default_port: 0,
            default_mcast_primary_port: 0,
            default_mcast_not_primary_port: 0,
            life_time_value: self.life_time_value,
            port_state_change: self.port_state_change,
            optimized_sl2vl: 0,
            lids_per_port: 0,
            partition_enforcement_cap: 0,
            flags: 0,
            multicast_fdb_top: 0,
        }
    }

    fn port_info(&self, port: u8, in_port: u8) -> PortInfo {
        let link = self.ports[usize::from(port)];
        let m = &self.mgmt;
        let is0 = port == 0;
        PortInfo {
            m_key: if is0 { m.m_key } else { 0 },
            gid_prefix: if is0 { m.gid_prefix } else { 0 },
            lid: if is0 { m.lid } else { 0 },
            master_sm_lid: if is0 { m.sm_lid } else { 0 },
            capability_mask: if is0 {
                CAP_IS_SM | CAP_IS_TRAP | CAP_IS_SL_MAPPING | CAP_IS_SYSTEM_IMAGE_GUID
            } else {
                CAP_IS_EXTENDED_SPEEDS
            },
            diag_code: 0,
            m_key_lease_period: if is0 { m.m_key_lease_period } else { 0 },
            local_port_num: in_port,
            link_width_enabled: self.width,
            link_width_supported: 0x07,
            link_width_active: self.width,
            link_speed_supported: 0x07,
            port_state: link.state,
            port_phys_state: link.phys,
            link_down_default_state: phys_state::POLLING,
            m_key_protect_bits: 0,
            lmc: if is0 { m.lmc } else { 0 },
            link_speed_active: self.speed.0,
            link_speed_enabled: 0x07,
            neighbor_mtu: 5,
            master_sm_sl: if is0 { m.sm_sl } else { 0 },
            vl_cap: 4,
            mtu_cap: 5,
            operational_vls: 4,
            client_reregister: false,
            subnet_timeout: if is0 { m.subnet_timeout } else { 0 },
            resp_time_value: 0,
            link_speed_ext_active: self.speed.1,
            link_speed_ext_supported: 0x07,
            link_speed_ext_enabled: 0,
        }
    }

    /// SubnSet(PortInfo) on `port`: a PortState transition (IBTA vol. 1 §14.2.5.6: no
    /// change; DOWN from any state; ARMED from INIT with the link up; ACTIVE from
    /// ARMED; asking for the present state changes nothing) and, on port 0, the LID,
    /// SM LID, SL, LMC, subnet timeout, M_Key and GID prefix. An invalid transition
    /// or LID fails the whole Set with BAD_VALUE and changes nothing.
    fn set_port_info(&mut self, port: u8, want: &PortInfo) -> u16 {
        let link = self.ports[usize::from(port)];
        let state = match (link.state, want.port_state) {
            (s, port_state::NO_CHANGE) => s,
            (_, port_state::DOWN) => port_state::DOWN,
            (s, w) if s == w => s,
            (port_state::INIT, port_state::ARMED) if link.phys == phys_state::LINK_UP => {
                port_state::ARMED
            }
            (port_state::ARMED, port_state::ACTIVE) => port_state::ACTIVE,
            _ => return status::BAD_VALUE,
        };
        if port == 0 {
            if want.lid >= LINEAR_FDB_CAP || want.master_sm_lid >= LINEAR_FDB_CAP {
                return status::BAD_VALUE;
            }
            self.mgmt = Management {
                lid: want.lid,
                sm_lid: want.master_sm_lid,
                lmc: want.lmc,
                sm_sl: want.master_sm_sl,
                subnet_timeout: want.subnet_timeout,
                m_key: want.m_key,
                m_key_lease_period: want.m_key_lease_period,
                gid_prefix: want.gid_prefix,
            };
        }
        self.ports[usize::from(port)].state = state;
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn switch(ports: u8) -> Switch {
        Switch::new(ports, 0x0002_C902_0000_0100, LinkSpeed::Edr, 4)
    }

    /// A directed-route SubnGet(NodeInfo) from the SM at hop pointer 0 along [3],
    /// written byte by byte from IBTA vol. 1 §14.2.1.2: TID 0x1122334455667788,
    /// M_Key 0, DrSLID/DrDLID 0xFFFF, InitialPath[1] = 3.
    fn dr_get_fixture() -> [u8; 256] {
        let mut m = [0u8; 256];
        m[..8].copy_from_slice(&[0x01, 0x81, 0x01, 0x01, 0x00, 0x00, 0x00, 0x01]);
        m[8..16].copy_from_slice(&[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
        m[16..18].copy_from_slice(&[0x00, 0x11]);
        m[32..36].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
        m[129] = 3;
        m
    }

    #[test]
    fn smp_fields_sit_where_ibta_puts_them() {
        let smp = SmpRepr::parse(&dr_get_fixture()).unwrap();
        assert!(smp.directed && !smp.direction);
        assert_eq!(
            (smp.method, smp.status, smp.hop_pointer, smp.hop_count),
            (1, 0, 0, 1)
        );
        assert_eq!(smp.tid, 0x1122_3344_5566_7788);
        assert_eq!(
            (smp.attr_id, smp.dr_slid, smp.dr_dlid),
            (0x11, 0xFFFF, 0xFFFF)
        );
        assert_eq!(smp.initial_path[1], 3);
        let built =
            SmpRepr::directed_request(1, 0x1122_3344_5566_7788, 0x11, 0, &[3], [0; 64]).unwrap();
        assert_eq!(built.to_bytes(), dr_get_fixture());
        // Emit writes every byte: a buffer full of 0xa5 comes out as the fixture.
        let mut buf = [0xa5u8; 256];
        smp.emit(&mut buf);
        assert_eq!(buf, dr_get_fixture());
        // The D bit is bit 15 of the status word.
        let mut m = dr_get_fixture();
        m[4] = 0x80;
        m[5] = 0x0C;
        let r = SmpRepr::parse(&m).unwrap();
        assert!(r.direction);
        assert_eq!(r.status, 0x000C);
    }

    #[test]
    fn smp_parse_rejects_what_is_not_an_smp() {
        let m = dr_get_fixture();
        assert_eq!(
            SmpRepr::parse(&m[..255]),
            Err(SmpError::Truncated {
                what: "SMP",
                needed: 256,
                got: 255
            })
        );
        let mut bad = m;
        bad[0] = 2;
        assert_eq!(SmpRepr::parse(&bad), Err(SmpError::BaseVersion(2)));
        bad = m;
        bad[1] = 0x03;
        assert_eq!(SmpRepr::parse(&bad), Err(SmpError::NotSmp { class: 3 }));
        bad = m;
        bad[7] = 64;
        assert_eq!(SmpRepr::parse(&bad), Err(SmpError::HopCount(64)));
        // A LID-routed SMP keeps a 16-bit status and no directed-route fields.
        bad = m;
        bad[1] = 0x01;
        bad[4] = 0x80;
        let lid = SmpRepr::parse(&bad).unwrap();
        assert!(!lid.directed && !lid.direction);
        assert_eq!((lid.status, lid.hop_count, lid.dr_slid), (0x8000, 0, 0));
        // Nothing panics, whatever the bytes.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..300 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = SmpRepr::parse(&buf);
            let _ = switch(4).receive_smp((len % 6) as u8, 1, &buf);
        }
    }

    #[test]
    fn directed_route_hop_by_hop() {
        // Two switches then a CA: path [2, 5]; the second switch is entered on port 7.
        let mut smp = SmpRepr::directed_request(1, 9, 0x11, 0, &[2, 5], [0; 64]).unwrap();
        assert_eq!(smp.dr_originate(), Ok(DrStep::Forward(2)));
        assert_eq!(smp.hop_pointer, 1);
        assert_eq!(smp.dr_receive(7, true), Ok(DrStep::Forward(5)));
        assert_eq!((smp.hop_pointer, smp.return_path[1]), (2, 7));
        let mut at_ca = smp;
        assert_eq!(at_ca.dr_receive(1, false), Ok(DrStep::Consume));
        assert_eq!((at_ca.hop_pointer, at_ca.return_path[2]), (3, 1));
        assert_eq!(at_ca.dr_turn_around(), Ok(DrStep::Forward(1)));
        assert!(at_ca.direction);
        assert_eq!(at_ca.hop_pointer, 2);
        assert_eq!(at_ca.dr_receive(5, true), Ok(DrStep::Forward(7)));
        assert_eq!(at_ca.hop_pointer, 1);
        assert_eq!(at_ca.dr_receive(2, true), Ok(DrStep::Consume));
        assert_eq!(at_ca.hop_pointer, 0);
        // A CA is no intermediate hop, and a hop pointer out of place is discarded.
        let mut through_ca = SmpRepr::directed_request(1, 9, 0x11, 0, &[1, 1], [0; 64]).unwrap();
        through_ca.dr_originate().unwrap();
        assert_eq!(through_ca.dr_receive(1, false), Err(DrError::NotASwitch));
        assert_eq!(smp.hop_pointer, 2);
        let mut lost = SmpRepr::directed_request(1, 9, 0x11, 0, &[2], [0; 64]).unwrap();
        assert!(matches!(
            lost.dr_receive(1, true),
            Err(DrError::HopPointer { hop_pointer: 0, .. })
        ));
        lost.hop_pointer = 9;
        assert!(matches!(
            lost.dr_receive(1, true),
            Err(DrError::HopPointer { .. })
        ));
        lost.hop_pointer = 1;
        lost.dr_dlid = 0x0004;
        assert_eq!(lost.dr_receive(1, false), Err(DrError::LidRoutedPart));
        let mut lid = SmpRepr::lid_request(1, 1, 0x11, 0, [0; 64]);
        assert_eq!(lid.dr_originate(), Err(DrError::NotDirected));
    }

    fn sma(sw: &mut Switch, smp: SmpRepr) -> SmpRepr {
        match sw.receive_smp(0, PERMISSIVE, &smp.to_bytes()) {
            Ok(SmpAction::Answer { port: 0, mad, .. }) => SmpRepr::parse(&mad).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    fn get(attr: u16, modifier: u32) -> SmpRepr {
        SmpRepr::directed_request(method::GET, 7, attr, modifier, &[], [0; 64]).unwrap()
    }

    fn set(attr: u16, modifier: u32, data: [u8; 64]) -> SmpRepr {
        SmpRepr::directed_request(method::SET, 8, attr, modifier, &[], data).unwrap()
    }

    #[test]
    fn the_sma_answers_node_and_switch_info_at_hop_count_zero() {
        let mut sw = switch(8);
        let r = sma(&mut sw, get(attr::NODE_INFO, 0));
        assert_eq!((r.method, r.status, r.direction), (0x81, 0, true));
        assert_eq!((r.hop_pointer, r.tid), (0, 7));
        // NodeInfo by IBTA offsets: type at 2, ports at 3, GUID at 12, local port at 36.
        assert_eq!(&r.data[..4], &[1, 1, 2, 8]);
        assert_eq!(&r.data[12..20], &0x0002_C902_0000_0100u64.to_be_bytes());
        assert_eq!(r.data[36], 0, "the SMP came in on the management port");
        let si = sma(&mut sw, get(attr::SWITCH_INFO, 0));
        assert_eq!(&si.data[0..2], &[0xC0, 0x00], "LinearFDBCap 49152");
        assert_eq!(&si.data[6..8], &[0, 0], "LinearFDBTop 0 at power-up");
        let s = SwitchInfo::parse(&si.data).unwrap();
        assert!(!s.port_state_change);
        let d = sma(&mut sw, get(attr::NODE_DESCRIPTION, 0));
        assert!(d.data.starts_with(b"fabboot-sim switch"));
        let pk = sma(&mut sw, get(attr::P_KEY_TABLE, 3 << 16));
        assert_eq!(&pk.data[..4], &[0xFF, 0xFF, 0, 0]);
    }

    #[test]
    fn port_info_follows_links_and_the_state_machine() {
        let mut sw = switch(4);
        let p2 = sma(&mut sw, get(attr::PORT_INFO, 2));
        assert_eq!(p2.data[32] & 0x0F, port_state::INIT);
        assert_eq!(p2.data[33] >> 4, phys_state::LINK_UP);
        sw.set_link(2, false);
        assert!(sw.port_state_change());
        let p2 = sma(&mut sw, get(attr::PORT_INFO, 2));
        assert_eq!(
            (p2.data[32] & 0x0F, p2.data[33] >> 4),
            (port_state::DOWN, phys_state::POLLING)
        );
        // ARMED from DOWN is refused and changes nothing.
        let mut want = PortInfo::parse(&p2.data).unwrap();
        want.port_state = port_state::ARMED;
        let mut d = [0u8; 64];
        want.emit(&mut d);
        let r = sma(&mut sw, set(attr::PORT_INFO, 2, d));
        assert_eq!(r.status, status::BAD_VALUE);
        assert_eq!(sw.port_state(2), Some(port_state::DOWN));
        sw.set_link(2, true);
        assert_eq!(sma(&mut sw, set(attr::PORT_INFO, 2, d)).status, 0);
        assert_eq!(sw.port_state(2), Some(port_state::ARMED));
        // ACTIVE only from ARMED; INIT → ACTIVE is refused.
        want.port_state = port_state::ACTIVE;
        want.emit(&mut d);
        assert_eq!(
            sma(&mut sw, set(attr::PORT_INFO, 3, d)).status,
            status::BAD_VALUE
        );
        let r = sma(&mut sw, set(attr::PORT_INFO, 2, d));
        assert_eq!((r.status, r.data[32] & 0x0F), (0, port_state::ACTIVE));
        // Port 0 takes the LID, SM LID, SL and subnet timeout.
        let mut p0 = PortInfo::parse(&sma(&mut sw, get(attr::PORT_INFO, 0)).data).unwrap();
        p0.lid = 1;
        p0.master_sm_lid = 1;
        p0.master_sm_sl = 3;
        p0.subnet_timeout = 18;
        p0.port_state = port_state::NO_CHANGE;
        p0.emit(&mut d);
        let r = sma(&mut sw, set(attr::PORT_INFO, 0, d));
        assert_eq!(r.status, 0);
        assert_eq!(
            &r.data[16..20],
            &[0, 1, 0, 1],
            "LID and SM LID at 16 and 18"
        );
        assert_eq!((r.data[36] & 0x0F, r.data[51] & 0x1F), (3, 18));
        assert_eq!((sw.lid(), sw.sm_lid()), (1, 1));
        // A port the switch lacks, an attribute it does not know, a Set of NodeInfo.
        assert_eq!(
            sma(&mut sw, get(attr::PORT_INFO, 5)).status,
            status::BAD_VALUE
        );
        assert_eq!(sma(&mut sw, get(0x0017, 0)).status, status::BAD_ATTR);
        assert_eq!(
            sma(&mut sw, set(attr::NODE_INFO, 0, [0; 64])).status,
            status::BAD_ATTR
        );
        let mut send = get(attr::NODE_INFO, 0);
        send.method = 0x03;
        assert_eq!(sma(&mut sw, send).status, status::BAD_METHOD);
        let mut v2 = get(attr::NODE_INFO, 0);
        v2.class_version = 2;
        assert_eq!(sma(&mut sw, v2).status, status::BAD_VERSION);
    }

    #[test]
    fn the_lft_is_read_and_written_in_blocks_of_64_and_forwards() {
        let mut sw = switch(4);
        let mut block = [LFT_NO_PORT; 64];
        block[1] = 0;
        block[2] = 1;
        block[3] = 4;
        let r = sma(&mut sw, set(attr::LINEAR_FORWARDING_TABLE, 0, block));
        assert_eq!((r.status, r.data), (0, block));
        assert_eq!(sw.out_port(3), None, "above LinearFDBTop");
        let mut si = SwitchInfo::parse(&sma(&mut sw, get(attr::SWITCH_INFO, 0)).data).unwrap();
        si.linear_fdb_top = 3;
        si.life_time_value = 18;
        let mut d = [0u8; 64];
        si.emit(&mut d);
        let r = sma(&mut sw, set(attr::SWITCH_INFO, 0, d));
        assert_eq!(
            (r.status, &r.data[6..8], r.data[11] >> 3),
            (0, &[0u8, 3][..], 18)
        );
        assert_eq!(
            (sw.out_port(1), sw.out_port(2), sw.out_port(3)),
            (Some(0), Some(1), Some(4))
        );
        assert_eq!(sw.out_port(4), None);
        // Block 1 holds LIDs 64..128.
        sw.program(70, 2);
        let r = sma(&mut sw, get(attr::LINEAR_FORWARDING_TABLE, 1));
        assert_eq!(r.data[6], 2);
        assert_eq!(sw.linear_fdb_top(), 70);
        // A port the switch lacks, a block beyond the cap, a top beyond the cap.
        block[9] = 5;
        assert_eq!(
            sma(&mut sw, set(attr::LINEAR_FORWARDING_TABLE, 0, block)).status,
            status::BAD_VALUE
        );
        assert_eq!(sw.out_port(9), None);
        assert_eq!(
            sma(&mut sw, get(attr::LINEAR_FORWARDING_TABLE, 768)).status,
            status::BAD_VALUE
        );
        si.linear_fdb_top = 0xC000;
        si.emit(&mut d);
        assert_eq!(
            sma(&mut sw, set(attr::SWITCH_INFO, 0, d)).status,
            status::BAD_VALUE
        );
    }

    #[test]
    fn port_state_change_is_cleared_by_writing_one() {
        let mut sw = switch(2);
        sw.set_link(1, false);
        sw.set_link(1, false);
        let si = sma(&mut sw, get(attr::SWITCH_INFO, 0));
        assert_eq!(si.data[11] & 0x04, 0x04);
        let mut s = SwitchInfo::parse(&si.data).unwrap();
        s.port_state_change = false;
        let mut d = [0u8; 64];
        s.emit(&mut d);
        sma(&mut sw, set(attr::SWITCH_INFO, 0, d));
        assert!(sw.port_state_change(), "writing 0 leaves it");
        s.port_state_change = true;
        s.emit(&mut d);
        sma(&mut sw, set(attr::SWITCH_INFO, 0, d));
        assert!(!sw.port_state_change());
    }

    #[test]
    fn directed_smps_cross_the_switch_both_ways() {
        let mut sw = switch(4);
        // SM → CA on port 3.
        let out = SmpRepr::directed_request(1, 5, attr::NODE_INFO, 0, &[3], [0; 64]).unwrap();
        let Ok(SmpAction::Forward { port: 3, mad }) =
            sw.receive_smp(0, PERMISSIVE, &out.to_bytes())
        else {
            panic!("not forwarded to port 3");
        };
        assert_eq!((mad[6], mad[7]), (1, 1), "hop pointer 1 of 1 on the wire");
        // The CA answers as a CA does: ReturnPath[1] = 1, D set, hop pointer back to 1.
        let mut resp = mad;
        resp[3] = 0x81;
        resp[4] = 0x80;
        resp[6] = 1;
        resp[192 + 1] = 1;
        let Ok(SmpAction::Forward { port: 0, mad }) = sw.receive_smp(3, PERMISSIVE, &resp) else {
            panic!("not handed to the SM");
        };
        assert_eq!(mad[6], 0, "hop pointer 0 at the SM");
        // A CA asks the switch itself along one hop: answered back out of its port.
        let mut q = SmpRepr::directed_request(1, 6, attr::NODE_INFO, 0, &[1], [0; 64]).unwrap();
        q.dr_originate().unwrap();
        let Ok(SmpAction::Answer { port: 2, mad, .. }) =
            sw.receive_smp(2, PERMISSIVE, &q.to_bytes())
        else {
            panic!("not answered to port 2");
        };
        let a = SmpRepr::parse(&mad).unwrap();
        assert_eq!((a.direction, a.hop_pointer, a.return_path[1]), (true, 1, 2));
        assert_eq!(a.data[36], 2, "LocalPortNum is the port it came in on");
        // Paths to a port the switch lacks are dropped.
        let far = SmpRepr::directed_request(1, 5, attr::NODE_INFO, 0, &[9], [0; 64]).unwrap();
        assert_eq!(
            sw.receive_smp(0, PERMISSIVE, &far.to_bytes()),
            Err(SmpDrop::BadPort(9))
        );
        assert_eq!(sw.counters().dropped, 1);
        // Responses are not answered.
        let mut r = get(attr::NODE_INFO, 0);
        r.method = 0x81;
        assert_eq!(
            sw.receive_smp(0, PERMISSIVE, &r.to_bytes()),
            Err(SmpDrop::NotARequest { method: 0x81 })
        );
    }

    #[test]
    fn lid_routed_requests_are_answered_to_their_source() {
        let mut sw = switch(4);
        sw.program(1, 0);
        sw.program(0x12, 2);
        let q = SmpRepr::lid_request(1, 0xAB, attr::NODE_INFO, 0, [0; 64]);
        let Ok(SmpAction::Answer {
            port: 2,
            dlid: 0x12,
            mad,
            ..
        }) = sw.receive_smp(2, 0x12, &q.to_bytes())
        else {
            panic!("no answer to LID 0x12");
        };
        assert_eq!((mad[1], mad[3], mad[4], mad[5]), (0x01, 0x81, 0, 0));
        assert_eq!(mad[64 + 36], 2);
        assert_eq!(
            sw.receive_smp(2, 0x55, &q.to_bytes()),
            Err(SmpDrop::NoRoute(0x55))
        );
    }

    #[test]
    fn attribute_reprs_match_ibta_offsets() {
        // NodeInfo of a CA, byte by byte (§14.2.5.3).
        let mut n = [0u8; 40];
        n[..4].copy_from_slice(&[1, 1, 1, 1]);
        n[12..20].copy_from_slice(&0x0002_C903_0000_1000u64.to_be_bytes());
        n[20..28].copy_from_slice(&0x0002_C903_0000_1001u64.to_be_bytes());
        n[28..30].copy_from_slice(&[0, 1]);
        n[36] = 1;
        n[37..40].copy_from_slice(&[0x00, 0x02, 0xC9]);
        let ni = NodeInfo::parse(&n).unwrap();
        assert_eq!((ni.node_type, ni.num_ports, ni.local_port_num), (1, 1, 1));
        assert_eq!(
            (ni.port_guid, ni.vendor_id),
            (0x0002_C903_0000_1001, 0x0002C9)
        );
        let mut back = [0xa5u8; 40];
        ni.emit(&mut back);
        assert_eq!(back, n);
        assert!(NodeInfo::parse(&n[..39]).is_err());
        // PortInfo nibbles (§14.2.5.6).
        let mut p = [0u8; 64];
        p[16..18].copy_from_slice(&[0x00, 0x05]);
        p[32] = 0x74; // LinkSpeedSupported 7, ACTIVE
        p[33] = 0x52; // LinkUp, Polling
        p[34] = 0x03; // LMC 3
        p[36] = 0x5A; // NeighborMTU 4096, SMSL 10
        p[41] = 0x05;
        p[51] = 0x92; // ClientReregister, timeout 18
        p[62] = 0x27;
        let pi = PortInfo::parse(&p).unwrap();
        assert_eq!((pi.lid, pi.port_state, pi.port_phys_state), (5, 4, 5));
        assert_eq!(
            (pi.lmc, pi.neighbor_mtu, pi.master_sm_sl, pi.mtu_cap),
            (3, 5, 10, 5)
        );
        assert!(pi.client_reregister);
        assert_eq!((pi.subnet_timeout, pi.link_speed_ext_active), (18, 2));
        let mut out = [0xa5u8; 64];
        pi.emit(&mut out);
        assert_eq!(out, p);
        // SwitchInfo: LifeTimeValue and PortStateChange share byte 11.
        let mut s = [0u8; 20];
        s[0..2].copy_from_slice(&[0xC0, 0]);
        s[6..8].copy_from_slice(&[0, 9]);
        s[11] = 18 << 3 | 0x04;
        let si = SwitchInfo::parse(&s).unwrap();
        assert_eq!((si.linear_fdb_cap, si.linear_fdb_top), (0xC000, 9));
        assert_eq!((si.life_time_value, si.port_state_change), (18, true));
        let mut out = [0xa5u8; 20];
        si.emit(&mut out);
        assert_eq!(out, s);
    }
}
