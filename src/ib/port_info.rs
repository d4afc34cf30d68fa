//! The PortInfo attribute (IBTA vol. 1 §14.2.5.6) and a P_KeyTable block (§14.2.5.7),
//! as the SMA (the HCA firmware, through MAD_IFC) returns them in the 64 data bytes of
//! an SMP GetResp ([`super::mad::smp_response_data`]).

use super::mad::{attr, smp_response_data};
use super::{Error, Mtu, Rd, Wr, open_enum, pack, unpack};

/// Offsets in PortInfo (IBTA vol. 1 §14.2.5.6, Table 148).
mod field {
    use core::ops::Range;
    pub const M_KEY: Range<usize> = 0..8;
    pub const GID_PREFIX: Range<usize> = 8..16;
    pub const LID: Range<usize> = 16..18;
    pub const MASTER_SM_LID: Range<usize> = 18..20;
    pub const CAPABILITY_MASK: Range<usize> = 20..24;
    // 24..26 DiagCode (not kept).
    pub const M_KEY_LEASE_PERIOD: Range<usize> = 26..28;
    pub const LOCAL_PORT_NUM: usize = 28;
    pub const LINK_WIDTH_ENABLED: usize = 29;
    pub const LINK_WIDTH_SUPPORTED: usize = 30;
    pub const LINK_WIDTH_ACTIVE: usize = 31;
    /// LinkSpeedSupported (7..4), PortState (3..0).
    pub const SPEED_SUPPORTED_STATE: usize = 32;
    /// PortPhysicalState (7..4), LinkDownDefaultState (3..0).
    pub const PHYS_DOWN_DEFAULT: usize = 33;
    /// M_KeyProtectBits (7..6), reserved (5..3), LMC (2..0).
    pub const PROTECT_LMC: usize = 34;
    /// LinkSpeedActive (7..4), LinkSpeedEnabled (3..0).
    pub const SPEED_ACTIVE_ENABLED: usize = 35;
    /// NeighborMTU (7..4), MasterSMSL (3..0).
    pub const NEIGHBOR_MTU_SM_SL: usize = 36;
    /// VLCap (7..4), InitType (3..0).
    pub const VL_CAP_INIT_TYPE: usize = 37;
    /// InitTypeReply (7..4), MTUCap (3..0).
    pub const MTU_CAP: usize = 41;
    /// OperationalVLs (7..4), enforcement and filtering flags (3..0).
    pub const OPERATIONAL_VLS: usize = 43;
    /// ClientReregister (7), MulticastPKeyTrapSuppressionEnabled (6..5),
    /// SubnetTimeOut (4..0).
    pub const REREG_SUBNET_TIMEOUT: usize = 51;
    /// reserved (7..5), RespTimeValue (4..0).
    pub const RESP_TIME_VALUE: usize = 52;
    pub const CAPABILITY_MASK2: Range<usize> = 60..62;
    /// LinkSpeedExtActive (7..4), LinkSpeedExtSupported (3..0).
    pub const SPEED_EXT: usize = 62;
    /// reserved (7..5), LinkSpeedExtEnabled (4..0).
    pub const SPEED_EXT_ENABLED: usize = 63;
    pub const END: usize = 64;
}

open_enum! {
    /// PortInfo.PortState (IBTA vol. 1 §14.2.5.6).
    #[derive(Default)]
    pub enum PortState(u8) {
        /// No state change (in a Set).
        #[default]
        NoChange = 0,
        /// Down.
        Down = 1,
        /// Initialize.
        Init = 2,
        /// Armed.
        Armed = 3,
        /// Active: the port carries data traffic.
        Active = 4,
    }
}

open_enum! {
    /// PortInfo.PortPhysicalState (IBTA vol. 1 §14.2.5.6).
    #[derive(Default)]
    pub enum PhysState(u8) {
        /// No state change (in a Set).
        #[default]
        NoChange = 0,
        /// Sleep.
        Sleep = 1,
        /// Polling.
        Polling = 2,
        /// Disabled.
        Disabled = 3,
        /// PortConfigurationTraining.
        Training = 4,
        /// LinkUp.
        LinkUp = 5,
        /// LinkErrorRecovery.
        LinkErrorRecovery = 6,
        /// PhyTest.
        PhyTest = 7,
    }
}

/// PortInfo.CapabilityMask bits the driver looks at (IBTA vol. 1 §14.2.5.6).
pub mod cap {
    /// IsSM.
    pub const IS_SM: u32 = 1 << 1;
    /// IsCommunicationManagementSupported.
    pub const IS_CM: u32 = 1 << 16;
    /// IsDeviceManagementSupported.
    pub const IS_DEVICE_MANAGEMENT: u32 = 1 << 19;
    /// IsClientReregistrationSupported.
    pub const IS_CLIENT_REREGISTRATION: u32 = 1 << 25;
}

/// PortInfo (IBTA vol. 1 §14.2.5.6): every field up to the violation counters, plus
/// the timeouts, CapabilityMask2 and extended speeds. DiagCode, the violation
/// counters, VL arbitration capacities, LocalPhyErrors/OverrunErrors, MaxCreditHint and
/// LinkRoundTripLatency are not kept (written as zero).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortInfo {
    /// M_Key.
    pub m_key: u64,
    /// GidPrefix (the subnet prefix of our GID).
    pub gid_prefix: u64,
    /// LID.
    pub lid: u16,
    /// MasterSMLID: where SA queries go.
    pub master_sm_lid: u16,
    /// CapabilityMask ([`cap`]).
    pub capability_mask: u32,
    /// M_KeyLeasePeriod.
    pub m_key_lease_period: u16,
    /// LocalPortNum.
    pub local_port_num: u8,
    /// LinkWidthEnabled.
    pub link_width_enabled: u8,
    /// LinkWidthSupported.
    pub link_width_supported: u8,
    /// LinkWidthActive (1: 1x, 2: 4x, 4: 8x, 8: 12x, 16: 2x).
    pub link_width_active: u8,
    /// LinkSpeedSupported, 4 bits.
    pub link_speed_supported: u8,
    /// PortState.
    pub port_state: PortState,
    /// PortPhysicalState.
    pub phys_state: PhysState,
    /// LinkDownDefaultState, 4 bits.
    pub link_down_default_state: u8,
    /// M_KeyProtectBits, 2 bits.
    pub m_key_protect_bits: u8,
    /// LMC, 3 bits.
    pub lmc: u8,
    /// LinkSpeedActive, 4 bits (1: SDR, 2: DDR, 4: QDR).
    pub link_speed_active: u8,
    /// LinkSpeedEnabled, 4 bits.
    pub link_speed_enabled: u8,
    /// NeighborMTU.
    pub neighbor_mtu: Mtu,
    /// MasterSMSL, 4 bits: the SL for SA queries.
    pub master_sm_sl: u8,
    /// VLCap, 4 bits.
    pub vl_cap: u8,
    /// InitType, 4 bits.
    pub init_type: u8,
    /// InitTypeReply, 4 bits.
    pub init_type_reply: u8,
    /// MTUCap.
    pub mtu_cap: Mtu,
    /// OperationalVLs, 4 bits.
    pub operational_vls: u8,
    /// ClientReregister.
    pub client_reregister: bool,
    /// SubnetTimeOut, 5 bits (4.096 µs × 2^n): the basis of SA and CM timeouts.
    pub subnet_timeout: u8,
    /// RespTimeValue, 5 bits.
    pub resp_time_value: u8,
    /// CapabilityMask2.
    pub capability_mask2: u16,
    /// LinkSpeedExtActive, 4 bits (1: FDR, 2: EDR, 4: HDR).
    pub link_speed_ext_active: u8,
    /// LinkSpeedExtSupported, 4 bits.
    pub link_speed_ext_supported: u8,
    /// LinkSpeedExtEnabled, 5 bits.
    pub link_speed_ext_enabled: u8,
}

impl PortInfo {
    /// Attribute length.
    pub const LEN: usize = field::END;

    /// Reads PortInfo from the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        let r = Rd::new(buf, "PortInfo", Self::LEN)?;
        let b = |at| r.u8(at);
        let ss = b(field::SPEED_SUPPORTED_STATE)?;
        let pd = b(field::PHYS_DOWN_DEFAULT)?;
        let pl = b(field::PROTECT_LMC)?;
        let sa = b(field::SPEED_ACTIVE_ENABLED)?;
        let nm = b(field::NEIGHBOR_MTU_SM_SL)?;
        let vi = b(field::VL_CAP_INIT_TYPE)?;
        let mc = b(field::MTU_CAP)?;
        let rt = b(field::REREG_SUBNET_TIMEOUT)?;
        let se = b(field::SPEED_EXT)?;
        Ok(PortInfo {
            m_key: r.u64(field::M_KEY)?,
            gid_prefix: r.u64(field::GID_PREFIX)?,
            lid: r.u16(field::LID)?,
            master_sm_lid: r.u16(field::MASTER_SM_LID)?,
            capability_mask: r.u32(field::CAPABILITY_MASK)?,
            m_key_lease_period: r.u16(field::M_KEY_LEASE_PERIOD)?,
            local_port_num: b(field::LOCAL_PORT_NUM)?,
            link_width_enabled: b(field::LINK_WIDTH_ENABLED)?,
            link_width_supported: b(field::LINK_WIDTH_SUPPORTED)?,
            link_width_active: b(field::LINK_WIDTH_ACTIVE)?,
            link_speed_supported: unpack(ss, 4, 4),
            port_state: PortState::from(unpack(ss, 0, 4)),
            phys_state: PhysState::from(unpack(pd, 4, 4)),
            link_down_default_state: unpack(pd, 0, 4),
            m_key_protect_bits: unpack(pl, 6, 2),
            lmc: unpack(pl, 0, 3),
            link_speed_active: unpack(sa, 4, 4),
            link_speed_enabled: unpack(sa, 0, 4),
            neighbor_mtu: Mtu::from(unpack(nm, 4, 4)),
            master_sm_sl: unpack(nm, 0, 4),
            vl_cap: unpack(vi, 4, 4),
            init_type: unpack(vi, 0, 4),
            init_type_reply: unpack(mc, 4, 4),
            mtu_cap: Mtu::from(unpack(mc, 0, 4)),
            operational_vls: unpack(b(field::OPERATIONAL_VLS)?, 4, 4),
            client_reregister: rt & 0x80 != 0,
            subnet_timeout: unpack(rt, 0, 5),
            resp_time_value: unpack(b(field::RESP_TIME_VALUE)?, 0, 5),
            capability_mask2: r.u16(field::CAPABILITY_MASK2)?,
            link_speed_ext_active: unpack(se, 4, 4),
            link_speed_ext_supported: unpack(se, 0, 4),
            link_speed_ext_enabled: unpack(b(field::SPEED_EXT_ENABLED)?, 0, 5),
        })
    }

    /// Reads PortInfo out of an SMP GetResp MAD (the MAD_IFC output): checks class,
    /// method, attribute and status first.
    pub fn parse_smp(mad: &[u8]) -> Result<Self, Error> {
        Self::parse(smp_response_data(mad, attr::PORT_INFO)?)
    }

    /// Writes PortInfo into the first [`Self::LEN`] bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        const W: &str = "PortInfo";
        let nib = |field, hi: u8, lo: u8| -> Result<u8, Error> {
            let (hi_name, lo_name) = field;
            Ok(pack(W, hi_name, hi, 4, 4)? | pack(W, lo_name, lo, 0, 4)?)
        };
        let mut w = Wr::new(buf, W, Self::LEN)?;
        w.u64(field::M_KEY, self.m_key)?;
        w.u64(field::GID_PREFIX, self.gid_prefix)?;
        w.u16(field::LID, self.lid)?;
        w.u16(field::MASTER_SM_LID, self.master_sm_lid)?;
        w.u32(field::CAPABILITY_MASK, self.capability_mask)?;
        w.u16(field::M_KEY_LEASE_PERIOD, self.m_key_lease_period)?;
        w.u8(field::LOCAL_PORT_NUM, self.local_port_num)?;
        w.u8(field::LINK_WIDTH_ENABLED, self.link_width_enabled)?;
        w.u8(field::LINK_WIDTH_SUPPORTED, self.link_width_supported)?;
        w.u8(field::LINK_WIDTH_ACTIVE, self.link_width_active)?;
        w.u8(
            field::SPEED_SUPPORTED_STATE,
            nib(
                ("LinkSpeedSupported", "PortState"),
                self.link_speed_supported,
                self.port_state.into(),
            )?,
        )?;
        w.u8(
            field::PHYS_DOWN_DEFAULT,
            nib(
                ("PortPhysicalState", "LinkDownDefaultState"),
                self.phys_state.into(),
                self.link_down_default_state,
            )?,
        )?;
        w.u8(
            field::PROTECT_LMC,
            pack(W, "M_KeyProtectBits", self.m_key_protect_bits, 6, 2)?
                | pack(W, "LMC", self.lmc, 0, 3)?,
        )?;
        w.u8(
            field::SPEED_ACTIVE_ENABLED,
            nib(
                ("LinkSpeedActive", "LinkSpeedEnabled"),
                self.link_speed_active,
                self.link_speed_enabled,
            )?,
        )?;
        w.u8(
            field::NEIGHBOR_MTU_SM_SL,
            nib(
                ("NeighborMTU", "MasterSMSL"),
                self.neighbor_mtu.into(),
                self.master_sm_sl,
            )?,
        )?;
        w.u8(
            field::VL_CAP_INIT_TYPE,
            nib(("VLCap", "InitType"), self.vl_cap, self.init_type)?,
        )?;
        w.u8(
            field::MTU_CAP,
            nib(
                ("InitTypeReply", "MTUCap"),
                self.init_type_reply,
                self.mtu_cap.into(),
            )?,
        )?;
        w.u8(
            field::OPERATIONAL_VLS,
            pack(W, "OperationalVLs", self.operational_vls, 4, 4)?,
        )?;
        w.u8(
            field::REREG_SUBNET_TIMEOUT,
            u8::from(self.client_reregister) << 7
                | pack(W, "SubnetTimeOut", self.subnet_timeout, 0, 5)?,
        )?;
        w.u8(
            field::RESP_TIME_VALUE,
            pack(W, "RespTimeValue", self.resp_time_value, 0, 5)?,
        )?;
        w.u16(field::CAPABILITY_MASK2, self.capability_mask2)?;
        w.u8(
            field::SPEED_EXT,
            nib(
                ("LinkSpeedExtActive", "LinkSpeedExtSupported"),
                self.link_speed_ext_active,
                self.link_speed_ext_supported,
            )?,
        )?;
        w.u8(
            field::SPEED_EXT_ENABLED,
            pack(W, "LinkSpeedExtEnabled", self.link_speed_ext_enabled, 0, 5)?,
        )
    }
}

/// One block of the P_Key table (IBTA vol. 1 §14.2.5.7): 32 entries; the attribute
/// modifier selects the block (entries 32·n … 32·n + 31).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PkeyBlock {
    /// The entries as on the wire: bit 15 membership (1 = full), bits 14..0 the key.
    pub entries: [u16; 32],
}

/// The membership bit of a P_Key (1 = full member).
pub const PKEY_FULL: u16 = 0x8000;
/// The key bits of a P_Key.
pub const PKEY_BASE: u16 = 0x7FFF;

impl PkeyBlock {
    /// Attribute length.
    pub const LEN: usize = 64;

    /// Reads a block from the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        let r = Rd::new(buf, "P_KeyTable", Self::LEN)?;
        let mut entries = [0u16; 32];
        let mut at = 0usize;
        for e in entries.iter_mut() {
            let end = at.saturating_add(2);
            *e = r.u16(at..end)?;
            at = end;
        }
        Ok(PkeyBlock { entries })
    }

    /// Reads a block out of an SMP GetResp MAD (the MAD_IFC output).
    pub fn parse_smp(mad: &[u8]) -> Result<Self, Error> {
        Self::parse(smp_response_data(mad, attr::PKEY_TABLE)?)
    }

    /// Writes the block into the first [`Self::LEN`] bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let mut w = Wr::new(buf, "P_KeyTable", Self::LEN)?;
        let mut at = 0usize;
        for e in self.entries {
            let end = at.saturating_add(2);
            w.u16(at..end, e)?;
            at = end;
        }
        Ok(())
    }

    /// Index within this block of the first entry whose key bits equal `pkey`'s
    /// (membership ignored; entries with key 0 are invalid and never match).
    pub fn find(&self, pkey: u16) -> Option<usize> {
        let base = pkey & PKEY_BASE;
        if base == 0 {
            return None;
        }
        self.entries.iter().position(|e| e & PKEY_BASE == base)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod test {
    use super::*;

    #[test]
    fn port_state_nibble() {
        let mut buf = [0u8; PortInfo::LEN];
        buf[32] = 0x13; // LinkSpeedSupported 1, PortState Armed
        buf[33] = 0x2F; // Polling, LinkDownDefault 15
        let p = PortInfo::parse(&buf).unwrap();
        assert_eq!(p.port_state, PortState::Armed);
        assert_eq!(p.phys_state, PhysState::Polling);
        assert_eq!(p.link_down_default_state, 15);
        buf[32] = 0x0F;
        assert_eq!(
            PortInfo::parse(&buf).unwrap().port_state,
            PortState::Unknown(15)
        );
    }

    #[test]
    fn emit_checks_field_widths() {
        let mut buf = [0u8; PortInfo::LEN];
        let p = PortInfo {
            subnet_timeout: 32,
            ..PortInfo::default()
        };
        assert_eq!(
            p.emit(&mut buf),
            Err(Error::Field {
                what: "PortInfo",
                field: "SubnetTimeOut",
                value: 32
            })
        );
        let p = PortInfo {
            port_state: PortState::Unknown(16),
            ..PortInfo::default()
        };
        assert_eq!(
            p.emit(&mut buf),
            Err(Error::Field {
                what: "PortInfo",
                field: "PortState",
                value: 16
            })
        );
    }

    #[test]
    fn pkey_find_ignores_membership() {
        let mut b = PkeyBlock::default();
        b.entries[5] = 0x0001;
        b.entries[6] = 0x8001;
        assert_eq!(b.find(0x8001), Some(5));
        assert_eq!(b.find(0x0000), None);
        assert_eq!(PkeyBlock::default().find(0xFFFF), None);
    }
}
