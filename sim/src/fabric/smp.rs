//! Subnet management packets (SMPs) and the attributes a subnet manager reads and
//! writes, as wire views.
//!
//! - [`SmpRepr`]: the 256-byte SMP, LID-routed and directed-route (IBTA vol. 1 §14.2.1),
//!   with directed-route processing (§14.2.2): hop pointer, hop count, initial and
//!   return paths, and the direction bit D.
//! - [`NodeInfo`], [`SwitchInfo`], [`PortInfo`]: §14.2.5.3, §14.2.5.4, §14.2.5.6, as
//!   `Repr`s over the 64-byte SMP data.
//!
//! Parsers never panic on any input (reference/srp-cm-sa-dm.md §1.3 for the common
//! header).

use core::fmt;
use core::ops::Range;

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

pub(crate) fn check_attr(buf: &[u8], what: &'static str, needed: usize) -> Result<(), SmpError> {
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
