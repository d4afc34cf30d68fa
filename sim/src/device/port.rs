//! The modelled port's state and its own subnet management agent, which answers the
//! SMPs a driver passes to it with MAD_IFC: Get(NodeInfo), Get(PortInfo) and
//! Get(P_KeyTable) (IBTA vol. 1 §14.2.5). Tests set the state: link down, LID
//! assignment, SM LID and SL, subnet timeout, P_Keys.

/// IB port states (PortInfo.PortState).
pub mod state {
    #![allow(missing_docs)]
    pub const DOWN: u8 = 1;
    pub const INIT: u8 = 2;
    pub const ARMED: u8 = 3;
    pub const ACTIVE: u8 = 4;
}

/// IB port physical states (PortInfo.PortPhysicalState, IBTA vol. 1 §14.2.5.6).
pub mod phys {
    /// No link partner: the port is looking for one.
    pub const POLLING: u8 = 2;
    /// Disabled by management.
    pub const DISABLED: u8 = 3;
    /// The link is trained.
    pub const LINK_UP: u8 = 5;
}

/// MAD status: method not supported.
pub const MAD_STATUS_BAD_METHOD: u16 = 0x0008;
/// MAD status: method/attribute combination not supported.
pub const MAD_STATUS_BAD_ATTR: u16 = 0x000C;
/// MAD status: bad base or class version.
pub const MAD_STATUS_BAD_VERSION: u16 = 0x0004;

/// What the port is, as its agent reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub state: u8,
    /// PortPhysicalState ([`phys`]): 2 polling, 3 disabled, 5 LinkUp.
    pub phys_state: u8,
    pub lid: u16,
    pub lmc: u8,
    pub sm_lid: u16,
    pub sm_sl: u8,
    pub subnet_timeout: u8,
    pub gid_prefix: u64,
    pub node_guid: u64,
    pub port_guid: u64,
    /// P_Key table (index 0 is the default partition, 0xFFFF).
    pub pkeys: Vec<u16>,
    /// LinkWidthActive (2: 4x).
    pub link_width_active: u8,
    /// MTUCap and NeighborMTU (5: 4096).
    pub mtu_cap: u8,
}

impl Port {
    /// A port whose link is up but that no subnet manager has configured yet.
    pub fn unconfigured(port_guid: u64) -> Port {
        Port {
            state: state::INIT,
            phys_state: phys::LINK_UP,
            lid: 0,
            lmc: 0,
            sm_lid: 0,
            sm_sl: 0,
            subnet_timeout: 0,
            gid_prefix: 0xFE80_0000_0000_0000,
            node_guid: port_guid & !0xFF,
            port_guid,
            pkeys: vec![0xFFFF],
            link_width_active: 2,
            mtu_cap: 5,
        }
    }

    /// The cable goes down (the port is DOWN, its physical state Polling) or comes
    /// up (trained: LinkUp, and the port enters INIT to wait for a subnet manager;
    /// IBTA vol. 1 §7.2). The LID and the rest of the SM's configuration stay until
    /// an SM sets others. Returns whether the state changed.
    pub fn set_link(&mut self, up: bool) -> bool {
        let (state, phys_state) = if up {
            (state::INIT, phys::LINK_UP)
        } else {
            (state::DOWN, phys::POLLING)
        };
        // A link that is already up stays where an SM put it.
        if up && self.phys_state == phys::LINK_UP {
            return false;
        }
        let changed = self.state != state;
        self.state = state;
        self.phys_state = phys_state;
        changed
    }

    /// The state a subnet manager leaves: ACTIVE with a LID.
    pub fn activate(&mut self, lid: u16, sm_lid: u16, sm_sl: u8, subnet_timeout: u8) {
        self.state = state::ACTIVE;
        self.lid = lid;
        self.sm_lid = sm_lid;
        self.sm_sl = sm_sl;
        self.subnet_timeout = subnet_timeout;
    }

    /// Answers a 256-byte SMP (Get, and Set of PortInfo from the subnet manager).
    /// Returns the response and whether the port's state changed (the caller raises
    /// the port-change event).
    pub fn answer(&mut self, request: &[u8]) -> ([u8; 256], bool) {
        let mut r = [0u8; 256];
        let n = request.len().min(256);
        r[..n].copy_from_slice(&request[..n]);
        let class = r[1];
        let directed = class == 0x81;
        let before = (self.state, self.lid);
        let method = r[3];
        let status = if r[0] != 1 || !(class == 0x01 || directed) || r[2] != 1 {
            MAD_STATUS_BAD_VERSION
        } else if method != 0x01 && method != 0x02 {
            MAD_STATUS_BAD_METHOD
        } else {
            let attr = u16::from_be_bytes([r[16], r[17]]);
            let modifier = u32::from_be_bytes([r[20], r[21], r[22], r[23]]);
            if method == 0x02 && attr == 0x0015 && modifier <= 1 {
                let mut d = [0u8; 64];
                d.copy_from_slice(&r[64..128]);
                self.set_port_info(&d);
            }
            let data = &mut r[64..128];
            data.fill(0);
            match (method, attr) {
                (0x01, 0x0011) => {
                    self.node_info(data);
                    0
                }
                (_, 0x0015) if modifier <= 1 => {
                    self.port_info(data);
                    0
                }
                (0x01, 0x0016) => {
                    self.pkey_block(data, modifier as usize);
                    0
                }
                _ => MAD_STATUS_BAD_ATTR,
            }
        };
        r[3] = 0x81; // GetResp answers Get and Set
        let status = if directed { status | 0x8000 } else { status };
        r[4..6].copy_from_slice(&status.to_be_bytes());
        (r, (self.state, self.lid) != before)
    }

    /// Answers an SMP as it arrives on the wire: a LID-routed one as is; a
    /// directed-route one at its last hop (IBTA vol. 1 §14.2.2: outbound, hop pointer
    /// = hop count) records this port in the return path and leaves with the D bit
    /// set and the hop pointer at the hop count, for the switch to walk back. `None`
    /// for an SMP that is a response or whose directed route does not end here.
    pub fn answer_smp(&mut self, request: &[u8]) -> Option<([u8; 256], bool)> {
        const HOP_POINTER: usize = 6;
        const HOP_COUNT: usize = 7;
        const RETURN_PATH: usize = 192;
        if request.len() != 256 || request[3] & 0x80 != 0 {
            return None;
        }
        let mut mad = [0u8; 256];
        mad.copy_from_slice(request);
        if mad[1] != 0x81 {
            return Some(self.answer(&mad));
        }
        let (hp, hc) = (mad[HOP_POINTER], mad[HOP_COUNT]);
        if mad[4] & 0x80 != 0 || hc == 0 || hc > 63 || hp != hc {
            return None;
        }
        mad[RETURN_PATH + usize::from(hc)] = 1;
        mad[HOP_POINTER] = hc + 1;
        let (mut r, changed) = self.answer(&mad);
        r[HOP_POINTER] = hc;
        Some((r, changed))
    }

    /// SubnSet(PortInfo): LID, SM LID and SL, LMC, subnet timeout, and a PortState
    /// transition (IBTA vol. 1 §14.2.5.6: 0 no change; DOWN from any state; ARMED
    /// from INIT; ACTIVE from ARMED).
    fn set_port_info(&mut self, d: &[u8; 64]) {
        self.lid = u16::from_be_bytes([d[16], d[17]]);
        self.sm_lid = u16::from_be_bytes([d[18], d[19]]);
        self.lmc = d[34] & 0x7;
        self.sm_sl = d[36] & 0xF;
        self.subnet_timeout = d[51] & 0x1F;
        let wanted = d[32] & 0xF;
        self.state = match (self.state, wanted) {
            (_, state::DOWN) => state::DOWN,
            (state::INIT, state::ARMED) => state::ARMED,
            (state::ARMED, state::ACTIVE) => state::ACTIVE,
            (current, _) => current,
        };
    }

    fn node_info(&self, d: &mut [u8]) {
        d[0] = 1; // BaseVersion
        d[1] = 1; // ClassVersion
        d[2] = 1; // NodeType: channel adapter
        d[3] = 1; // NumPorts
        d[4..12].copy_from_slice(&self.node_guid.to_be_bytes());
        d[12..20].copy_from_slice(&self.node_guid.to_be_bytes());
        d[20..28].copy_from_slice(&self.port_guid.to_be_bytes());
        d[28..30].copy_from_slice(&(self.pkeys.len() as u16).to_be_bytes());
        d[30..32].copy_from_slice(&0x1013u16.to_be_bytes());
        d[36] = 1; // LocalPortNum
        d[37..40].copy_from_slice(&[0x00, 0x02, 0xC9]); // Mellanox OUI
    }

    fn port_info(&self, d: &mut [u8]) {
        d[8..16].copy_from_slice(&self.gid_prefix.to_be_bytes());
        d[16..18].copy_from_slice(&self.lid.to_be_bytes());
        d[18..20].copy_from_slice(&self.sm_lid.to_be_bytes());
        d[20..24].copy_from_slice(&0x0251_0848u32.to_be_bytes()); // CapabilityMask of a CA port
        d[28] = 1; // LocalPortNum
        d[29] = self.link_width_active; // LinkWidthEnabled
        d[30] = 0x07; // LinkWidthSupported: 1x, 4x, 8x
        d[31] = self.link_width_active;
        d[32] = 0x70 | (self.state & 0xF); // LinkSpeedSupported | PortState
        d[33] = (self.phys_state & 0xF) << 4 | 0x2; // PortPhysicalState | LinkDownDefaultState
        d[34] = self.lmc & 0x7;
        d[35] = 0x40 | 0x07; // LinkSpeedActive (QDR code) | LinkSpeedEnabled
        d[36] = (self.mtu_cap & 0xF) << 4 | (self.sm_sl & 0xF); // NeighborMTU | MasterSMSL
        d[37] = 0x40; // VLCap 4
        d[41] = self.mtu_cap & 0xF; // MTUCap
        d[43] = 0x40; // OperationalVLs 4
        d[51] = self.subnet_timeout & 0x1F;
    }

    fn pkey_block(&self, d: &mut [u8], block: usize) {
        for (i, pkey) in self.pkeys.iter().skip(block * 32).take(32).enumerate() {
            d[2 * i..2 * i + 2].copy_from_slice(&pkey.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_port_info(lid: u16, sm_lid: u16, want: u8) -> [u8; 256] {
        let mut m = [0u8; 256];
        m[0] = 1;
        m[1] = 0x81; // directed route
        m[2] = 1;
        m[3] = 0x02; // Set
        m[16..18].copy_from_slice(&0x0015u16.to_be_bytes());
        m[64 + 16..64 + 18].copy_from_slice(&lid.to_be_bytes());
        m[64 + 18..64 + 20].copy_from_slice(&sm_lid.to_be_bytes());
        m[64 + 32] = want;
        m[64 + 51] = 18;
        m
    }

    #[test]
    fn a_subnet_manager_configures_and_activates_the_port_in_order() {
        let mut p = Port::unconfigured(0x0002_C903_0000_0001);
        // ACTIVE straight from INIT is not a legal transition: the state stays.
        let (r, changed) = p.answer(&set_port_info(0x11, 1, state::ACTIVE));
        assert!(changed, "the LID changed");
        assert_eq!(
            (p.state, p.lid, p.sm_lid, p.subnet_timeout),
            (state::INIT, 0x11, 1, 18)
        );
        assert_eq!(r[3], 0x81);
        assert_eq!(
            u16::from_be_bytes([r[4], r[5]]),
            0x8000,
            "DR response, status OK"
        );
        assert_eq!(
            r[64 + 32] & 0xF,
            state::INIT,
            "the reply carries the new PortInfo"
        );
        p.answer(&set_port_info(0x11, 1, state::ARMED));
        let (_, changed) = p.answer(&set_port_info(0x11, 1, state::ACTIVE));
        assert!(changed);
        assert_eq!(p.state, state::ACTIVE);
        let (_, changed) = p.answer(&set_port_info(0x11, 1, 0));
        assert!(!changed, "no change requested, none made");
        p.answer(&set_port_info(0x11, 1, state::DOWN));
        assert_eq!(p.state, state::DOWN);
    }
}
