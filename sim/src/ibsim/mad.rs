//! The few MAD facts the bridge itself needs: the common header (srp-cm-sa-dm.md §1.3), the
//! directed-route SMP it reads PortInfo and NodeInfo with (IBA vol. 1 §14.2.1.2, §14.2.5.3,
//! §14.2.5.6; PortInfo offsets as in ibsim-opensm.md §1.2), and the SA header fields the
//! single-MAD limit needs (srp-cm-sa-dm.md §1.5).

use super::Error;
use super::protocol::MAD_LEN;

/// BaseVersion of every MAD ibsim forwards (ibsim-opensm.md §1.5).
pub const BASE_VERSION: u8 = 1;
/// Subnet management, LID-routed.
pub const CLASS_SMP_LID: u8 = 0x01;
/// Subnet administration.
pub const CLASS_SA: u8 = 0x03;
/// Performance management.
pub const CLASS_PERF: u8 = 0x04;
/// Vendor class OpenSM also registers (ibsim-opensm.md §0.8).
pub const CLASS_VENDOR_21: u8 = 0x21;
/// Subnet management, directed route.
pub const CLASS_SMP_DR: u8 = 0x81;
/// The classes OpenSM registers; anything else sent to its node crashes it (§0.8).
pub const OPENSM_CLASSES: [u8; 4] = [CLASS_SMP_DR, CLASS_SA, CLASS_PERF, CLASS_VENDOR_21];

/// Method Get.
pub const METHOD_GET: u8 = 0x01;
/// Method bit 7: this MAD is a response (ibsim routes responses by TID, §0.5).
pub const METHOD_RESPONSE: u8 = 0x80;
/// SA GetTable.
pub const METHOD_GET_TABLE: u8 = 0x12;
/// SA GetTableResp.
pub const METHOD_GET_TABLE_RESP: u8 = 0x92;

/// NodeInfo attribute.
pub const ATTR_NODE_INFO: u16 = 0x0011;
/// PortInfo attribute.
pub const ATTR_PORT_INFO: u16 = 0x0015;

/// ibsim overwrites TID bits 63..48 of every request with the sender's client index; a
/// requester matches answers on the bits below (ibsim-opensm.md §0.5, §1.5 step 3).
pub const TID_MATCH_MASK: u64 = (1 << 48) - 1;
/// The well-known GSI Q_Key (srp-cm-sa-dm.md §1.3).
pub const GSI_QKEY: u32 = 0x8001_0000;

/// The 24-byte common MAD header (srp-cm-sa-dm.md §1.3), the fields the bridge reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MadHeader {
    /// MgmtClass.
    pub class: u8,
    /// ClassVersion.
    pub class_version: u8,
    /// Method (bit 7 = response).
    pub method: u8,
    /// Status (for a DR SMP the top bit is the direction bit D).
    pub status: u16,
    /// TransactionID.
    pub tid: u64,
    /// AttributeID.
    pub attr_id: u16,
    /// AttributeModifier.
    pub attr_mod: u32,
}

impl MadHeader {
    /// Reads the header of a MAD.
    pub fn parse(mad: &[u8; MAD_LEN]) -> Self {
        MadHeader {
            class: mad[1],
            class_version: mad[2],
            method: mad[3],
            status: u16::from_be_bytes([mad[4], mad[5]]),
            tid: be64(mad, 8),
            attr_id: u16::from_be_bytes([mad[16], mad[17]]),
            attr_mod: u32::from_be_bytes([mad[20], mad[21], mad[22], mad[23]]),
        }
    }

    /// Whether the Response bit is set.
    pub fn is_response(&self) -> bool {
        self.method & METHOD_RESPONSE != 0
    }
}

/// A directed-route SubnGet of `attr_id` along `path` (`path[i]` = the output port at hop
/// i+1; empty = the sender's own port). DrSLID/DrDLID are the permissive LID 0xFFFF and the
/// hop pointer 0, as ibsim requires (ibsim-opensm.md §1.4, §1.5 step 1).
pub fn dr_smp_get(
    tid: u64,
    attr_id: u16,
    attr_mod: u32,
    path: &[u8],
) -> Result<[u8; MAD_LEN], Error> {
    if path.len() > 63 {
        return Err(Error::Malformed {
            what: "directed route",
            detail: format!("{} hops; at most 63", path.len()),
        });
    }
    let mut m = [0; MAD_LEN];
    m[0] = BASE_VERSION;
    m[1] = CLASS_SMP_DR;
    m[2] = 1; // SMP class version
    m[3] = METHOD_GET;
    // bytes 4..6: D bit 0 (outbound) and status 0; byte 6 hop pointer 0; byte 7 hop count
    m[7] = path.len() as u8;
    m[8..16].copy_from_slice(&tid.to_be_bytes());
    m[16..18].copy_from_slice(&attr_id.to_be_bytes());
    m[20..24].copy_from_slice(&attr_mod.to_be_bytes());
    // 24..32 M_Key 0; DrSLID and DrDLID permissive
    m[32..34].copy_from_slice(&0xFFFFu16.to_be_bytes());
    m[34..36].copy_from_slice(&0xFFFFu16.to_be_bytes());
    // InitialPath at 128; entry 0 is unused
    m[129..129 + path.len()].copy_from_slice(path);
    Ok(m)
}

/// The 64-byte attribute of a DR SMP GetResp, after checking it is one (class, Response and D
/// bits, status 0 in the low 15 bits).
pub fn dr_smp_data(mad: &[u8; MAD_LEN], attr_id: u16) -> Result<[u8; 64], Error> {
    let h = MadHeader::parse(mad);
    if h.class != CLASS_SMP_DR || !h.is_response() || h.attr_id != attr_id {
        return Err(Error::Malformed {
            what: "SMP answer",
            detail: format!(
                "class {:#04x} method {:#04x} attribute {:#06x}",
                h.class, h.method, h.attr_id
            ),
        });
    }
    if h.status & 0x7FFF != 0 {
        return Err(Error::Malformed {
            what: "SMP answer",
            detail: format!("status {:#06x}", h.status & 0x7FFF),
        });
    }
    let mut d = [0; 64];
    d.copy_from_slice(&mad[64..128]);
    Ok(d)
}

/// Logical port state (PortInfo PortState; GET_PORT `state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    /// 1.
    Down,
    /// 2.
    Init,
    /// 3.
    Armed,
    /// 4.
    Active,
    /// Anything else (0 = no state change, reserved values).
    Other(u8),
}

impl PortState {
    /// The state for its wire value.
    pub fn from_u8(v: u8) -> Self {
        match v {
            1 => PortState::Down,
            2 => PortState::Init,
            3 => PortState::Armed,
            4 => PortState::Active,
            x => PortState::Other(x),
        }
    }
}

/// The PortInfo fields the bridge uses (offsets per ibsim-opensm.md §1.2: GidPrefix 8–15,
/// LID 16–17, MasterSMLID 18–19, LocalPortNum 28; IBA: CapabilityMask 20–23, PortState the low
/// nibble of byte 32, LMC the low 3 bits of byte 34).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortInfo {
    /// Subnet prefix, the upper half of the port's GID.
    pub gid_prefix: u64,
    /// Base LID.
    pub lid: u16,
    /// The master SM's LID: where SA queries go.
    pub sm_lid: u16,
    /// CapabilityMask.
    pub capability_mask: u32,
    /// The port number this PortInfo belongs to.
    pub local_port: u8,
    /// Logical state.
    pub state: PortState,
    /// LID mask count.
    pub lmc: u8,
}

impl PortInfo {
    /// Reads the 64-byte attribute.
    pub fn parse(a: &[u8; 64]) -> Self {
        PortInfo {
            gid_prefix: be64(a, 8),
            lid: u16::from_be_bytes([a[16], a[17]]),
            sm_lid: u16::from_be_bytes([a[18], a[19]]),
            capability_mask: u32::from_be_bytes([a[20], a[21], a[22], a[23]]),
            local_port: a[28],
            state: PortState::from_u8(a[32] & 0x0F),
            lmc: a[34] & 0x07,
        }
    }
}

/// The NodeInfo fields the bridge uses (IBA: NodeType byte 2, NumPorts byte 3, NodeGUID 12–19,
/// LocalPortNum byte 36).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// 1 channel adapter, 2 switch.
    pub node_type: u8,
    /// Physical ports.
    pub num_ports: u8,
    /// NodeGUID.
    pub node_guid: u64,
    /// The port the SMP entered by.
    pub local_port: u8,
}

impl NodeInfo {
    /// Reads the attribute.
    pub fn parse(a: &[u8; 64]) -> Self {
        NodeInfo {
            node_type: a[2],
            num_ports: a[3],
            node_guid: be64(a, 12),
            local_port: a[36],
        }
    }
}

/// Offset of the SA attribute data in an SA MAD (srp-cm-sa-dm.md §1.5).
pub const SA_DATA_OFFSET: usize = 56;
/// Record bytes one SA MAD holds (256 − 56).
pub const SA_DATA_LEN: usize = MAD_LEN - SA_DATA_OFFSET;

/// An SA MAD's AttributeOffset (bytes 44–45) in bytes: the spacing of the records in a
/// GetTableResp (8-byte units on the wire, srp-cm-sa-dm.md §1.5).
pub fn sa_record_size(mad: &[u8; MAD_LEN]) -> usize {
    usize::from(u16::from_be_bytes([mad[44], mad[45]])) * 8
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut x = [0; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dr_get_port_info_bytes() {
        let m = dr_smp_get(0x1234, ATTR_PORT_INFO, 0, &[1, 3]).expect("two hops");
        assert_eq!(
            m[..36],
            [
                1, 0x81, 1, 0x01, // base, class DR SMP, version 1, Get
                0, 0, 0, 2, // D=0 status 0, hop pointer 0, hop count 2
                0, 0, 0, 0, 0, 0, 0x12, 0x34, // TID
                0x00, 0x15, 0, 0, // PortInfo, reserved
                0, 0, 0, 0, // attribute modifier
                0, 0, 0, 0, 0, 0, 0, 0, // M_Key
                0xFF, 0xFF, 0xFF, 0xFF, // DrSLID, DrDLID permissive
            ]
        );
        assert_eq!(m[128..132], [0, 1, 3, 0]);
        assert!(m[36..128].iter().all(|&b| b == 0));
        assert!(dr_smp_get(1, ATTR_PORT_INFO, 0, &[1; 64]).is_err());
    }

    #[test]
    fn dr_answer_checks_and_port_info_fields() {
        let mut m = dr_smp_get(7, ATTR_PORT_INFO, 0, &[]).expect("0 hops");
        assert!(
            dr_smp_data(&m, ATTR_PORT_INFO).is_err(),
            "a request is no answer"
        );
        m[3] = 0x81;
        m[4] = 0x80; // D bit, status 0
        let pi = &mut m[64..128];
        pi[8..16].copy_from_slice(&0xFE80_0000_0000_0000u64.to_be_bytes());
        pi[16..18].copy_from_slice(&[0, 3]);
        pi[18..20].copy_from_slice(&[0, 1]);
        pi[20..24].copy_from_slice(&0x0050_C048u32.to_be_bytes());
        pi[28] = 1;
        pi[32] = 0x24; // LinkSpeedSupported 2, Active
        pi[34] = 0x41; // M_KeyProtect 1, LMC 1
        let d = dr_smp_data(&m, ATTR_PORT_INFO).expect("GetResp");
        assert_eq!(
            PortInfo::parse(&d),
            PortInfo {
                gid_prefix: 0xFE80_0000_0000_0000,
                lid: 3,
                sm_lid: 1,
                capability_mask: 0x0050_C048,
                local_port: 1,
                state: PortState::Active,
                lmc: 1,
            }
        );
        assert!(dr_smp_data(&m, ATTR_NODE_INFO).is_err());
        m[5] = 0x04; // status "invalid attribute"
        assert!(dr_smp_data(&m, ATTR_PORT_INFO).is_err());
    }

    #[test]
    fn node_info_fields() {
        let mut a = [0u8; 64];
        a[..4].copy_from_slice(&[1, 1, 1, 1]);
        a[12..20].copy_from_slice(&0x0002_C903_0000_2000u64.to_be_bytes());
        a[36] = 1;
        let n = NodeInfo::parse(&a);
        assert_eq!(
            (n.node_type, n.num_ports, n.node_guid, n.local_port),
            (1, 1, 0x0002_C903_0000_2000, 1)
        );
    }

    #[test]
    fn header_and_sa_record_size() {
        let mut m = [0u8; 256];
        m[..24].copy_from_slice(&[
            1, 0x03, 2, 0x92, 0, 0, 0, 0, 0xAB, 0xCD, 0, 0, 0, 0, 0, 9, 0, 0x35, 0, 0, 0, 0, 0, 0,
        ]);
        m[44..46].copy_from_slice(&[0, 8]);
        let h = MadHeader::parse(&m);
        assert_eq!(
            (h.class, h.method, h.tid, h.attr_id),
            (0x03, 0x92, 0xABCD_0000_0000_0009, 0x0035)
        );
        assert!(h.is_response());
        assert_eq!(h.tid & TID_MATCH_MASK, 9);
        assert_eq!(sa_record_size(&m), 64);
    }
}
