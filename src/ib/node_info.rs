//! NodeInfo (IBTA vol. 1 §14.2.5.3, attribute 0x0011): what the driver learns of its
//! own channel adapter through MAD_IFC: the node GUID (the CM's Local CA GUID) and the
//! port GUID (the low half of the port's GID and of the SRP initiator port ID).

use super::mad::{attr, smp_response_data};
use super::{Error, Rd, Wr};

mod field {
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

/// NodeType 1: a channel adapter.
pub const NODE_TYPE_CA: u8 = 1;

/// The NodeInfo attribute (40 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// BaseVersion (1).
    pub base_version: u8,
    /// ClassVersion (1).
    pub class_version: u8,
    /// NodeType: 1 channel adapter, 2 switch, 3 router.
    pub node_type: u8,
    /// NumPorts.
    pub num_ports: u8,
    /// SystemImageGUID.
    pub system_image_guid: u64,
    /// NodeGUID.
    pub node_guid: u64,
    /// PortGUID of the port the SMP was received on.
    pub port_guid: u64,
    /// PartitionCap: entries in each port's P_Key table.
    pub partition_cap: u16,
    /// DeviceID.
    pub device_id: u16,
    /// Revision.
    pub revision: u32,
    /// LocalPortNum: the port the SMP was received on.
    pub local_port_num: u8,
    /// VendorID (24 bits).
    pub vendor_id: u32,
}

impl NodeInfo {
    /// Attribute length.
    pub const LEN: usize = field::VENDOR_ID.end;

    /// Reads NodeInfo from the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        let r = Rd::new(buf, "NodeInfo", Self::LEN)?;
        Ok(NodeInfo {
            base_version: r.u8(field::BASE_VERSION)?,
            class_version: r.u8(field::CLASS_VERSION)?,
            node_type: r.u8(field::NODE_TYPE)?,
            num_ports: r.u8(field::NUM_PORTS)?,
            system_image_guid: r.u64(field::SYSTEM_IMAGE_GUID)?,
            node_guid: r.u64(field::NODE_GUID)?,
            port_guid: r.u64(field::PORT_GUID)?,
            partition_cap: r.u16(field::PARTITION_CAP)?,
            device_id: r.u16(field::DEVICE_ID)?,
            revision: r.u32(field::REVISION)?,
            local_port_num: r.u8(field::LOCAL_PORT_NUM)?,
            vendor_id: r.u24(field::VENDOR_ID)?,
        })
    }

    /// Reads NodeInfo out of an SMP GetResp MAD (the MAD_IFC output).
    pub fn parse_smp(mad: &[u8]) -> Result<Self, Error> {
        Self::parse(smp_response_data(mad, attr::NODE_INFO)?)
    }

    /// Writes NodeInfo into the first [`Self::LEN`] bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        const W: &str = "NodeInfo";
        let mut w = Wr::new(buf, W, Self::LEN)?;
        w.u8(field::BASE_VERSION, self.base_version)?;
        w.u8(field::CLASS_VERSION, self.class_version)?;
        w.u8(field::NODE_TYPE, self.node_type)?;
        w.u8(field::NUM_PORTS, self.num_ports)?;
        w.u64(field::SYSTEM_IMAGE_GUID, self.system_image_guid)?;
        w.u64(field::NODE_GUID, self.node_guid)?;
        w.u64(field::PORT_GUID, self.port_guid)?;
        w.u16(field::PARTITION_CAP, self.partition_cap)?;
        w.u16(field::DEVICE_ID, self.device_id)?;
        w.u32(field::REVISION, self.revision)?;
        w.u8(field::LOCAL_PORT_NUM, self.local_port_num)?;
        w.u24("VendorID", field::VENDOR_ID, self.vendor_id)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    /// NodeInfo bytes laid out by hand from IBTA vol. 1 Table 147.
    fn fixture() -> [u8; 40] {
        let mut b = [0u8; 40];
        b[0] = 1;
        b[1] = 1;
        b[2] = 1;
        b[3] = 2;
        b[4..12].copy_from_slice(&0x0002_C903_0000_0001u64.to_be_bytes());
        b[12..20].copy_from_slice(&0x0002_C903_0000_0002u64.to_be_bytes());
        b[20..28].copy_from_slice(&0x0002_C903_0000_0003u64.to_be_bytes());
        b[28..30].copy_from_slice(&128u16.to_be_bytes());
        b[30..32].copy_from_slice(&0x1013u16.to_be_bytes());
        b[32..36].copy_from_slice(&0xA0u32.to_be_bytes());
        b[36] = 1;
        b[37..40].copy_from_slice(&[0x00, 0x02, 0xC9]);
        b
    }

    #[test]
    fn parses_the_table_layout_and_emits_it_back() {
        let n = NodeInfo::parse(&fixture()).unwrap();
        assert_eq!(n.node_type, NODE_TYPE_CA);
        assert_eq!(n.num_ports, 2);
        assert_eq!(n.system_image_guid, 0x0002_C903_0000_0001);
        assert_eq!(n.node_guid, 0x0002_C903_0000_0002);
        assert_eq!(n.port_guid, 0x0002_C903_0000_0003);
        assert_eq!(n.partition_cap, 128);
        assert_eq!(n.device_id, 0x1013);
        assert_eq!(n.revision, 0xA0);
        assert_eq!(n.local_port_num, 1);
        assert_eq!(n.vendor_id, 0x0002C9);
        let mut out = [0u8; 40];
        n.emit(&mut out).unwrap();
        assert_eq!(out, fixture());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let f = fixture();
        for len in 0..NodeInfo::LEN {
            assert!(matches!(
                NodeInfo::parse(&f[..len]),
                Err(Error::Truncated { need: 40, .. })
            ));
        }
    }
}
