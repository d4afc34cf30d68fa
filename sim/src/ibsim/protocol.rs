//! ibsim's client protocol: socket names, the 80-byte control message and the 288-byte data
//! message, as parse/emit pairs (reference ibsim-opensm.md §1.1, §1.3, §1.4).
//!
//! The control plane is little-endian (host order on x86-64, as ibsim writes it); the data
//! header is big-endian, with the LIDs in the first two bytes of a four-byte field.

use super::Error;

/// First word of every control message (§1.3). ibsim ignores a message without it.
pub const CTL_MAGIC: u32 = 0xDEAD_BEEF;
/// A control message is exactly this long, request and reply (§1.3).
pub const CTL_MSG_LEN: usize = 80;
/// Offset of the payload in a control message (§1.3).
pub const CTL_DATA_OFFSET: usize = 16;
/// Payload bytes in a control message (§1.3).
pub const CTL_DATA_LEN: usize = 64;
/// Longest node id CONNECT carries: 31 characters plus a NUL in a 32-byte field (§1.2).
pub const NODE_ID_MAX: usize = 31;

/// Control message types (§1.3); a reply carries the request's type, or [`CtlType::Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum CtlType {
    /// The reply type for a refusal.
    Error = 0,
    /// Attach: `u32 id; u32 qp; u32 issm; char nodeid[32]`.
    Connect = 1,
    /// Detach; the slot is freed.
    Disconnect = 2,
    /// Reply: `u16 lid; u8 state`.
    GetPort = 3,
    /// Reply: vendor/part/hw ids and firmware version.
    GetVendor = 4,
    /// Unreliable (node GUID in host order); not used.
    GetGid = 5,
    /// Node GUID, u64 LE.
    GetGuid = 6,
    /// NodeInfo, wire format; its PortGUID is the node GUID.
    GetNodeInfo = 7,
    /// PortInfo, wire format; `data[0]` = 0 for the attached port.
    GetPortInfo = 8,
    /// Sets IsSM in the CapabilityMask; the bridge never uses it (§0.4).
    SetIsSm = 9,
    /// 32 P_Keys, big-endian.
    GetPkeys = 10,
}

impl CtlType {
    /// The type for a wire value, if it is one of ibsim's.
    pub fn from_u32(value: u32) -> Option<Self> {
        use CtlType::*;
        [
            Error,
            Connect,
            Disconnect,
            GetPort,
            GetVendor,
            GetGid,
            GetGuid,
            GetNodeInfo,
            GetPortInfo,
            SetIsSm,
            GetPkeys,
        ]
        .into_iter()
        .find(|t| *t as u32 == value)
    }
}

/// One control message, request or reply (§1.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtlMsg {
    /// 0 in CONNECT; afterwards the client index from the CONNECT reply.
    pub client_id: u32,
    /// The message type, raw (a reply may carry 0 = ERROR).
    pub kind: u32,
    /// Payload length; informational, ibsim ignores it.
    pub len: u32,
    /// The payload.
    pub data: [u8; CTL_DATA_LEN],
}

impl CtlMsg {
    /// A request of `kind` from `client_id` with `payload` (at most 64 bytes; the rest is zero).
    pub fn request(client_id: u32, kind: CtlType, payload: &[u8]) -> Self {
        let mut data = [0; CTL_DATA_LEN];
        let n = payload.len().min(CTL_DATA_LEN);
        data[..n].copy_from_slice(&payload[..n]);
        CtlMsg {
            client_id,
            kind: kind as u32,
            len: n as u32,
            data,
        }
    }

    /// The 80 wire bytes.
    pub fn emit(&self) -> [u8; CTL_MSG_LEN] {
        let mut b = [0; CTL_MSG_LEN];
        b[0..4].copy_from_slice(&CTL_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&self.client_id.to_le_bytes());
        b[8..12].copy_from_slice(&self.kind.to_le_bytes());
        b[12..16].copy_from_slice(&self.len.to_le_bytes());
        b[CTL_DATA_OFFSET..].copy_from_slice(&self.data);
        b
    }

    /// Parses a received control message: exactly 80 bytes with the magic.
    pub fn parse(b: &[u8]) -> Result<Self, Error> {
        if b.len() != CTL_MSG_LEN {
            return Err(malformed("control message", format!("{} bytes", b.len())));
        }
        let magic = le32(b, 0);
        if magic != CTL_MAGIC {
            return Err(malformed("control message", format!("magic {magic:#x}")));
        }
        let mut data = [0; CTL_DATA_LEN];
        data.copy_from_slice(&b[CTL_DATA_OFFSET..]);
        Ok(CtlMsg {
            client_id: le32(b, 4),
            kind: le32(b, 8),
            len: le32(b, 12),
            data,
        })
    }
}

/// The CONNECT payload (§1.3): who the client is and which MADs it takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    /// The decimal suffix of the client's data socket name `B:in<id>`; unique, non-zero.
    pub id: u32,
    /// Besides QP0/1, the client also receives MADs sent to this QPN on its port.
    pub qp: u32,
    /// Receive requests addressed to QP0/QP1 of the port (CM, DM, SA Reports). At most one such
    /// client per node (§0.4).
    pub issm: bool,
    /// The netfile node id (or description) to attach to.
    pub node_id: String,
}

impl Connect {
    /// The 44-byte payload: `id`, `qp`, `issm` as u32 LE, then the NUL-terminated node id.
    pub fn payload(&self) -> Result<[u8; 44], Error> {
        let name = self.node_id.as_bytes();
        if name.len() > NODE_ID_MAX || name.contains(&0) {
            return Err(Error::Spec {
                what: self.node_id.clone(),
                reason: "a node id is at most 31 bytes, without NUL",
            });
        }
        let mut p = [0; 44];
        p[0..4].copy_from_slice(&self.id.to_le_bytes());
        p[4..8].copy_from_slice(&self.qp.to_le_bytes());
        p[8..12].copy_from_slice(&u32::from(self.issm).to_le_bytes());
        p[12..12 + name.len()].copy_from_slice(name);
        Ok(p)
    }
}

/// What a successful CONNECT reply says (§1.3): the slot and the node actually attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connected {
    /// The client index 0..9; the `clientid` of later requests and the `out<i>` socket.
    pub index: u32,
    /// The node id ibsim attached the client to.
    pub node_id: String,
}

impl Connected {
    /// Reads a CONNECT reply's payload.
    pub fn parse(reply: &CtlMsg) -> Self {
        let name = &reply.data[12..44];
        let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        Connected {
            index: le32(&reply.data, 0),
            node_id: String::from_utf8_lossy(&name[..end]).into_owned(),
        }
    }
}

/// The GET_PORT reply (§1.3): `u16 lid; u8 state`, little-endian.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortLidState {
    /// The port's LID (0 until OpenSM assigns one).
    pub lid: u16,
    /// 1 Down, 2 Init, 3 Armed, 4 Active.
    pub state: u8,
}

impl PortLidState {
    /// Reads a GET_PORT reply's payload.
    pub fn parse(reply: &CtlMsg) -> Self {
        PortLidState {
            lid: u16::from_le_bytes([reply.data[0], reply.data[1]]),
            state: reply.data[2],
        }
    }
}

/// A data message is exactly this long; ibsim drops any other size without a bounce (§1.4).
pub const DATA_MSG_LEN: usize = 288;
/// The address header in front of the MAD (§1.4).
pub const DATA_HEADER_LEN: usize = 32;
/// The MAD carried in each data message (§1.4).
pub const MAD_LEN: usize = 256;
/// `status` of a datagram ibsim returned to its sender undelivered (ETIMEDOUT, §0.6).
pub const STATUS_BOUNCED: u32 = 110;
/// The `dlid` that makes a directed-route SMP (§1.4).
pub const DLID_DIRECTED_ROUTE: u16 = 0xFFFF;

/// One MAD with its ibsim address header (§1.4); the same layout both ways.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataMsg {
    /// Destination LID; 0xFFFF for a directed-route SMP.
    pub dlid: u16,
    /// Source LID: 0 on send (ibsim fills in the sender's), the source on receive.
    pub slid: u16,
    /// Destination QPN (1 GSI, 0 SMI).
    pub dqp: u32,
    /// Source QPN, passed through unchanged.
    pub sqp: u32,
    /// 0 on send; on receive 0 = delivered, 110 = the sender's own MAD bounced.
    pub status: u32,
    /// The MAD length the sender claimed; informational.
    pub length: u64,
    /// The MAD from its common header on.
    pub mad: [u8; MAD_LEN],
}

impl DataMsg {
    /// The 288 wire bytes. `dlid`/`slid` sit big-endian in bytes 0–1 / 4–5 of their 4-byte
    /// fields with the other two bytes zero; the pad at 20–23 is written as zero.
    pub fn emit(&self) -> [u8; DATA_MSG_LEN] {
        let mut b = [0; DATA_MSG_LEN];
        b[0..2].copy_from_slice(&self.dlid.to_be_bytes());
        b[4..6].copy_from_slice(&self.slid.to_be_bytes());
        b[8..12].copy_from_slice(&self.dqp.to_be_bytes());
        b[12..16].copy_from_slice(&self.sqp.to_be_bytes());
        b[16..20].copy_from_slice(&self.status.to_be_bytes());
        b[24..32].copy_from_slice(&self.length.to_be_bytes());
        b[DATA_HEADER_LEN..].copy_from_slice(&self.mad);
        b
    }

    /// Parses a received data message (exactly 288 bytes; the pad is ignored).
    pub fn parse(b: &[u8]) -> Result<Self, Error> {
        if b.len() != DATA_MSG_LEN {
            return Err(malformed("data message", format!("{} bytes", b.len())));
        }
        let mut mad = [0; MAD_LEN];
        mad.copy_from_slice(&b[DATA_HEADER_LEN..]);
        Ok(DataMsg {
            dlid: u16::from_be_bytes([b[0], b[1]]),
            slid: u16::from_be_bytes([b[4], b[5]]),
            dqp: be32(b, 8),
            sqp: be32(b, 12),
            status: be32(b, 16),
            length: u64::from_be_bytes([b[24], b[25], b[26], b[27], b[28], b[29], b[30], b[31]]),
            mad,
        })
    }
}

/// The abstract socket name `<base>:<suffix>` with its trailing NUL, as ibsim spells it; the
/// leading NUL of the abstract namespace is added by the socket layer (§0.1, §1.1).
pub fn socket_name(base: &str, suffix: &str) -> Vec<u8> {
    let mut name = Vec::with_capacity(base.len() + suffix.len() + 2);
    name.extend_from_slice(base.as_bytes());
    name.push(b':');
    name.extend_from_slice(suffix.as_bytes());
    name.push(0);
    name
}

fn malformed(what: &'static str, detail: String) -> Error {
    Error::Malformed { what, detail }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_request_bytes() {
        let payload = Connect {
            id: 0x4000_0001,
            qp: 0,
            issm: true,
            node_id: "init".into(),
        }
        .payload()
        .expect("short name");
        let msg = CtlMsg::request(0, CtlType::Connect, &payload).emit();
        let mut want = [0u8; 80];
        want[..16].copy_from_slice(&[
            0xEF, 0xBE, 0xAD, 0xDE, // magic, LE
            0, 0, 0, 0, // clientid 0 in CONNECT
            1, 0, 0, 0, // CONNECT
            44, 0, 0, 0, // payload length
        ]);
        want[16..28].copy_from_slice(&[0x01, 0, 0, 0x40, 0, 0, 0, 0, 1, 0, 0, 0]);
        want[28..32].copy_from_slice(b"init");
        assert_eq!(msg, want);
    }

    #[test]
    fn connect_reply_and_get_port_parse() {
        let mut b = [0u8; 80];
        b[..16].copy_from_slice(&[0xEF, 0xBE, 0xAD, 0xDE, 0, 0, 0, 0, 1, 0, 0, 0, 44, 0, 0, 0]);
        b[16] = 3; // index
        b[28..32].copy_from_slice(b"tgt\0");
        let reply = CtlMsg::parse(&b).expect("80 bytes with magic");
        assert_eq!(CtlType::from_u32(reply.kind), Some(CtlType::Connect));
        assert_eq!(
            Connected::parse(&reply),
            Connected {
                index: 3,
                node_id: "tgt".into()
            }
        );

        let mut p = [0u8; 80];
        p[..12].copy_from_slice(&[0xEF, 0xBE, 0xAD, 0xDE, 3, 0, 0, 0, 3, 0, 0, 0]);
        p[16..19].copy_from_slice(&[0x04, 0x00, 4]); // LID 4 (LE), Active
        let reply = CtlMsg::parse(&p).expect("valid");
        assert_eq!(reply.client_id, 3);
        assert_eq!(
            PortLidState::parse(&reply),
            PortLidState { lid: 4, state: 4 }
        );
    }

    #[test]
    fn control_rejects_bad_size_and_magic() {
        assert!(matches!(
            CtlMsg::parse(&[0; 79]),
            Err(Error::Malformed { .. })
        ));
        let mut b = CtlMsg::request(0, CtlType::GetPort, &[]).emit();
        b[0] ^= 1;
        assert!(matches!(CtlMsg::parse(&b), Err(Error::Malformed { .. })));
        let long = Connect {
            id: 1,
            qp: 0,
            issm: false,
            node_id: "x".repeat(32),
        };
        assert!(matches!(long.payload(), Err(Error::Spec { .. })));
    }

    #[test]
    fn data_message_bytes_round_trip() {
        let mut mad = [0u8; 256];
        mad[0] = 1;
        mad[1] = 0x03;
        mad[255] = 0xAA;
        let msg = DataMsg {
            dlid: 0x0102,
            slid: 0,
            dqp: 1,
            sqp: 1,
            status: 0,
            length: 256,
            mad,
        };
        let b = msg.emit();
        assert_eq!(
            b[..32],
            [
                0x01, 0x02, 0, 0, // dlid BE in the first two bytes
                0, 0, 0, 0, // slid
                0, 0, 0, 1, // dqp
                0, 0, 0, 1, // sqp
                0, 0, 0, 0, // status
                0, 0, 0, 0, // pad
                0, 0, 0, 0, 0, 0, 1, 0, // length 256
            ]
        );
        assert_eq!(b[32..34], [1, 0x03]);
        assert_eq!(b[287], 0xAA);
        assert_eq!(DataMsg::parse(&b).expect("288 bytes"), msg);
    }

    #[test]
    fn data_message_parse_ignores_pad_and_reads_bounce() {
        let mut b = [0u8; 288];
        b[0..2].copy_from_slice(&[0, 4]);
        b[4..6].copy_from_slice(&[0, 3]);
        b[19] = 110;
        b[20..24].copy_from_slice(&[0xDE, 0xAD, 0xBE, 0xEF]); // garbage pad
        b[31] = 120;
        let m = DataMsg::parse(&b).expect("288 bytes");
        assert_eq!(
            (m.dlid, m.slid, m.status, m.length),
            (4, 3, STATUS_BOUNCED, 120)
        );
        assert!(matches!(
            DataMsg::parse(&b[..100]),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn socket_names_carry_trailing_nul() {
        assert_eq!(socket_name("sim", "ctl"), b"sim:ctl\0");
        assert_eq!(socket_name("fb", "in1073741825"), b"fb:in1073741825\0");
    }
}
