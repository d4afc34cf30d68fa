//! The switch's own subnet management agent (SMA), speaking the SMPs of [`super::smp`].
//!
//! [`Switch`]: a switch with ports `0..=n`, port 0 being its management port. Its SMA
//! answers NodeDescription, NodeInfo, SwitchInfo, PortInfo, P_KeyTable and
//! LinearForwardingTable, and its linear forwarding table (LFT, §14.2.5.10) is the one
//! the fabric forwards by. Ports 1..=n follow the fabric's links: a link that goes
//! down takes its port to DOWN, a link that comes up brings it to INIT, and only a
//! subnet manager moves it on to ARMED and ACTIVE (§14.2.5.6 PortState transitions).
//! The SMA answers what it cannot act on with a MAD status or drops it.
//!
//! Model simplifications: M_Key protection is not enforced (the subnet manager here
//! sets M_Key 0), port 0 is a base (not enhanced) switch port 0, and data packets are
//! forwarded whatever the logical state of the ports (so a fabric programmed by hand,
//! without a subnet manager, still carries traffic).

use core::fmt;

use super::LinkSpeed;
pub use super::smp::*;

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
