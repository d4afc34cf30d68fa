//! The built-in subnet administrator: answers PathRecord Get and GetTable (one record)
//! from what the subnet manager configured, with the SA header, component-mask
//! handling and status codes of IBTA vol. 1 §15.2 (facts in reference/srp-cm-sa-dm.md
//! §1.3 and §1.5), and injectable failures: BUSY, no answer, no record.

/// MAD status: busy, retry later (common MAD status bit 0).
pub const STATUS_BUSY: u16 = 0x0001;
/// MAD status: bad base or class version.
pub const STATUS_BAD_VERSION: u16 = 0x0004;
/// MAD status: method/attribute combination not supported.
pub const STATUS_UNSUPPORTED: u16 = 0x000C;
/// SA status: no records match (class-specific code 3).
pub const STATUS_NO_RECORDS: u16 = 0x0300;
/// SA status: a GID in the query is not on this subnet (code 5).
pub const STATUS_INVALID_GID: u16 = 0x0500;
/// SA status: the component mask lacks what the query needs (code 6).
pub const STATUS_INSUFFICIENT_COMPONENTS: u16 = 0x0600;

/// Offsets in an SA MAD.
mod field {
    pub const COMPONENT_MASK: usize = 48;
    pub const ATTRIBUTE_OFFSET: usize = 44;
    pub const RMPP: usize = 24;
    pub const DATA: usize = 56;
}

/// Offsets in a PathRecord (reference/srp-cm-sa-dm.md §1.5) and their mask bits.
pub mod path {
    #![allow(missing_docs)]
    pub const SERVICE_ID: usize = 0;
    pub const DGID: usize = 8;
    pub const SGID: usize = 24;
    pub const DLID: usize = 40;
    pub const SLID: usize = 42;
    pub const HOP_LIMIT: usize = 47;
    pub const REVERSIBLE_NUMB_PATH: usize = 49;
    pub const P_KEY: usize = 50;
    pub const QOS_SL: usize = 53;
    pub const MTU: usize = 54;
    pub const RATE: usize = 55;
    pub const PACKET_LIFE: usize = 56;
    pub const LEN: usize = 64;
    pub const MASK_SERVICE_ID: u64 = 0b11;
    pub const MASK_DGID: u64 = 1 << 2;
    pub const MASK_SGID: u64 = 1 << 3;
    pub const MASK_P_KEY: u64 = 1 << 13;
    pub const MASK_MTU_SELECTOR: u64 = 1 << 16;
    pub const MASK_MTU: u64 = 1 << 17;
    /// Selector "exactly".
    pub const EXACTLY: u8 = 2;
}

/// A port the subnet manager configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortEntry {
    /// Port GUID (the low half of its GID).
    pub guid: u64,
    pub lid: u16,
    /// MTU code (5: 4096).
    pub mtu: u8,
    /// Rate code (16: 100 Gb/s).
    pub rate: u8,
}

/// A failure the SA can be told to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaFault {
    /// Answer normally.
    None,
    /// Answer every query with BUSY.
    Busy,
    /// Answer nothing (the query times out).
    NoResponse,
    /// Find no records.
    NoRecord,
}

/// What an overloaded SA answers to any request of its class (IBTA vol. 1 §13.4.7,
/// MAD status bit 0 "busy": the requester retries later): the request turned into its
/// response method with status BUSY and no records. `None` for a MAD that is not an SA
/// request (another class, or a response).
pub fn busy_reply(q: &[u8; 256]) -> Option<[u8; 256]> {
    const CLASS_SA: u8 = 0x03;
    if q[1] != CLASS_SA || q[3] & 0x80 != 0 {
        return None;
    }
    let mut r = *q;
    r[3] = match q[3] {
        0x02 => 0x81, // Set is answered by GetResp (§13.4.5)
        m => m | 0x80,
    };
    r[4..6].copy_from_slice(&STATUS_BUSY.to_be_bytes());
    r[field::DATA..].fill(0);
    Some(r)
}

/// The subnet administrator.
#[derive(Clone, Debug)]
pub struct SaServer {
    /// Subnet prefix every GID must carry.
    pub prefix: u64,
    pub ports: Vec<PortEntry>,
    /// P_Keys of the subnet (the default partition 0xFFFF first).
    pub pkeys: Vec<u16>,
    /// SL of every path.
    pub sl: u8,
    /// PacketLifeTime code of every path.
    pub packet_life: u8,
    pub fault: SaFault,
    /// Queries answered (or ignored), for reports.
    pub queries: u64,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

impl SaServer {
    /// An SA for ports on the link-local prefix, default partition only.
    pub fn new(ports: Vec<PortEntry>) -> SaServer {
        SaServer {
            prefix: 0xFE80_0000_0000_0000,
            ports,
            pkeys: vec![0xFFFF],
            sl: 0,
            packet_life: 18,
            fault: SaFault::None,
            queries: 0,
        }
    }

    /// Answers one 256-byte SA MAD; `None` when it sends nothing back.
    pub fn handle(&mut self, q: &[u8; 256]) -> Option<[u8; 256]> {
        self.queries += 1;
        if q[3] & 0x80 != 0 {
            return None; // a response: not ours to answer
        }
        let mut r = *q;
        let method = q[3];
        let attr = be16(q, 16);
        let (status, records) = if q[0] != 1 || q[1] != 0x03 || q[2] != 2 {
            (STATUS_BAD_VERSION, None)
        } else if !matches!(method, 0x01 | 0x12) || attr != 0x0035 {
            (STATUS_UNSUPPORTED, None)
        } else {
            match self.fault {
                SaFault::NoResponse => return None,
                SaFault::Busy => (STATUS_BUSY, None),
                SaFault::NoRecord => (if method == 0x01 { STATUS_NO_RECORDS } else { 0 }, None),
                SaFault::None => match self.path(q) {
                    Ok(rec) => (0, Some(rec)),
                    Err(STATUS_NO_RECORDS) if method == 0x12 => (0, None),
                    Err(s) => (s, None),
                },
            }
        };
        r[3] = method | 0x80;
        r[4..6].copy_from_slice(&status.to_be_bytes());
        r[field::DATA..].fill(0);
        if let Some(rec) = records {
            r[field::DATA..field::DATA + path::LEN].copy_from_slice(&rec);
        }
        if method == 0x12 && status == 0 {
            let count = usize::from(records.is_some());
            // One-segment RMPP DATA: version 1, type DATA, flags active|first|last,
            // segment 1, payload = SA header (20 bytes) + records.
            let rmpp = &mut r[field::RMPP..field::RMPP + 12];
            rmpp.fill(0);
            rmpp[0] = 1;
            rmpp[1] = 1;
            rmpp[2] = 0x07;
            rmpp[4..8].copy_from_slice(&1u32.to_be_bytes());
            rmpp[8..12].copy_from_slice(&((20 + count * path::LEN) as u32).to_be_bytes());
            r[field::ATTRIBUTE_OFFSET..field::ATTRIBUTE_OFFSET + 2]
                .copy_from_slice(&((path::LEN / 8) as u16).to_be_bytes());
        }
        Some(r)
    }

    /// The one path the query asks for, or an SA status.
    fn path(&self, q: &[u8; 256]) -> Result<[u8; path::LEN], u16> {
        let mask = be64(q, field::COMPONENT_MASK);
        let d = &q[field::DATA..field::DATA + path::LEN];
        if mask & path::MASK_DGID == 0 || mask & path::MASK_SGID == 0 {
            return Err(STATUS_INSUFFICIENT_COMPONENTS);
        }
        let port = |at: usize| -> Result<PortEntry, u16> {
            if be64(d, at) != self.prefix {
                return Err(STATUS_INVALID_GID);
            }
            let guid = be64(d, at + 8);
            self.ports
                .iter()
                .copied()
                .find(|p| p.guid == guid)
                .ok_or(STATUS_NO_RECORDS)
        };
        let (dst, src) = (port(path::DGID)?, port(path::SGID)?);
        let pkey = if mask & path::MASK_P_KEY != 0 {
            let want = be16(d, path::P_KEY);
            *self
                .pkeys
                .iter()
                .find(|&&k| k & 0x7FFF == want & 0x7FFF)
                .ok_or(STATUS_NO_RECORDS)?
        } else {
            self.pkeys.first().copied().unwrap_or(0xFFFF)
        };
        let mtu = dst.mtu.min(src.mtu);
        if mask & path::MASK_MTU != 0 && mask & path::MASK_MTU_SELECTOR != 0 {
            let (sel, want) = (d[path::MTU] >> 6, d[path::MTU] & 0x3F);
            let fits = match sel {
                0 => mtu > want,
                1 => mtu < want,
                2 => mtu == want,
                _ => true,
            };
            if !fits {
                return Err(STATUS_NO_RECORDS);
            }
        }
        let mut rec = [0u8; path::LEN];
        if mask & path::MASK_SERVICE_ID == path::MASK_SERVICE_ID {
            rec[path::SERVICE_ID..path::SERVICE_ID + 8]
                .copy_from_slice(&d[path::SERVICE_ID..path::SERVICE_ID + 8]);
        }
        rec[path::DGID..path::DGID + 16].copy_from_slice(&d[path::DGID..path::DGID + 16]);
        rec[path::SGID..path::SGID + 16].copy_from_slice(&d[path::SGID..path::SGID + 16]);
        rec[path::DLID..path::DLID + 2].copy_from_slice(&dst.lid.to_be_bytes());
        rec[path::SLID..path::SLID + 2].copy_from_slice(&src.lid.to_be_bytes());
        rec[path::HOP_LIMIT] = 0;
        rec[path::REVERSIBLE_NUMB_PATH] = 0x80; // reversible
        rec[path::P_KEY..path::P_KEY + 2].copy_from_slice(&pkey.to_be_bytes());
        rec[path::QOS_SL] = self.sl & 0xF;
        rec[path::MTU] = path::EXACTLY << 6 | mtu;
        rec[path::RATE] = path::EXACTLY << 6 | dst.rate.min(src.rate);
        rec[path::PACKET_LIFE] = path::EXACTLY << 6 | (self.packet_life & 0x3F);
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INIT: u64 = 0x0002_C903_0000_0011;
    const TGT: u64 = 0x0002_C903_0000_0022;

    fn sa() -> SaServer {
        SaServer::new(vec![
            PortEntry {
                guid: INIT,
                lid: 0x11,
                mtu: 5,
                rate: 16,
            },
            PortEntry {
                guid: TGT,
                lid: 0x22,
                mtu: 4,
                rate: 16,
            },
        ])
    }

    /// A PathRecord query as ib_srp sends it: ServiceID, DGID, SGID, NumbPath, P_Key.
    fn query(method: u8, dguid: u64, mask: u64) -> [u8; 256] {
        let mut m = [0u8; 256];
        m[0] = 1;
        m[1] = 0x03;
        m[2] = 2;
        m[3] = method;
        m[8..16].copy_from_slice(&0x1234_5678_9ABC_DEF0u64.to_be_bytes());
        m[16..18].copy_from_slice(&0x0035u16.to_be_bytes());
        m[48..56].copy_from_slice(&mask.to_be_bytes());
        let d = &mut m[56..120];
        d[0..8].copy_from_slice(&0x0002_C903_0000_ABCDu64.to_be_bytes());
        d[8..16].copy_from_slice(&0xFE80_0000_0000_0000u64.to_be_bytes());
        d[16..24].copy_from_slice(&dguid.to_be_bytes());
        d[24..32].copy_from_slice(&0xFE80_0000_0000_0000u64.to_be_bytes());
        d[32..40].copy_from_slice(&INIT.to_be_bytes());
        d[49] = 1; // NumbPath
        d[50..52].copy_from_slice(&0xFFFFu16.to_be_bytes());
        m
    }

    const SRP_MASK: u64 =
        path::MASK_SERVICE_ID | path::MASK_DGID | path::MASK_SGID | 1 << 12 | path::MASK_P_KEY;

    fn status(r: &[u8; 256]) -> u16 {
        be16(r, 4)
    }

    #[test]
    fn answers_the_path_ib_srp_asks_for() {
        let r = sa().handle(&query(0x01, TGT, SRP_MASK)).unwrap();
        assert_eq!((r[3], status(&r)), (0x81, 0));
        assert_eq!(be64(&r, 8), 0x1234_5678_9ABC_DEF0, "the TID is echoed");
        let p = &r[56..120];
        assert_eq!((be16(p, path::DLID), be16(p, path::SLID)), (0x22, 0x11));
        assert_eq!(be64(p, path::DGID + 8), TGT);
        assert_eq!(be64(p, path::SERVICE_ID), 0x0002_C903_0000_ABCD);
        assert_eq!(be16(p, path::P_KEY), 0xFFFF);
        assert_eq!(p[path::MTU], 0x80 | 4, "exactly the smaller MTU");
        assert_eq!(p[path::RATE], 0x80 | 16);
        assert_eq!(p[path::PACKET_LIFE], 0x80 | 18);
        assert_eq!(p[path::REVERSIBLE_NUMB_PATH] & 0x80, 0x80);
    }

    #[test]
    fn get_table_carries_one_record_in_one_rmpp_segment() {
        let r = sa().handle(&query(0x12, TGT, SRP_MASK)).unwrap();
        assert_eq!((r[3], status(&r)), (0x92, 0));
        assert_eq!(&r[24..27], &[1, 1, 0x07]);
        assert_eq!(u32::from_be_bytes([r[32], r[33], r[34], r[35]]), 20 + 64);
        assert_eq!(be16(&r, 44), 8, "AttributeOffset in 8-byte words");
        assert_eq!(be16(&r[56..120], path::DLID), 0x22);
        // No match in a table query: zero records, status 0.
        let r = sa().handle(&query(0x12, 0xBAD, SRP_MASK)).unwrap();
        assert_eq!(status(&r), 0);
        assert_eq!(u32::from_be_bytes([r[32], r[33], r[34], r[35]]), 20);
    }

    #[test]
    fn status_codes_for_bad_queries() {
        let mut s = sa();
        assert_eq!(
            status(&s.handle(&query(0x01, 0xBAD, SRP_MASK)).unwrap()),
            STATUS_NO_RECORDS
        );
        assert_eq!(
            status(&s.handle(&query(0x01, TGT, path::MASK_DGID)).unwrap()),
            STATUS_INSUFFICIENT_COMPONENTS
        );
        let mut q = query(0x01, TGT, SRP_MASK);
        q[56 + 8] = 0xFE; // another subnet prefix
        q[56 + 9] = 0xC0;
        assert_eq!(status(&s.handle(&q).unwrap()), STATUS_INVALID_GID);
        let mut q = query(0x01, TGT, SRP_MASK);
        q[56 + 50..56 + 52].copy_from_slice(&0x8001u16.to_be_bytes());
        assert_eq!(
            status(&s.handle(&q).unwrap()),
            STATUS_NO_RECORDS,
            "unknown partition"
        );
        let mut q = query(
            0x01,
            TGT,
            SRP_MASK | path::MASK_MTU | path::MASK_MTU_SELECTOR,
        );
        q[56 + path::MTU] = path::EXACTLY << 6 | 5;
        assert_eq!(
            status(&s.handle(&q).unwrap()),
            STATUS_NO_RECORDS,
            "no 4096-byte path"
        );
        let mut q = query(0x01, TGT, SRP_MASK);
        q[2] = 1;
        assert_eq!(status(&s.handle(&q).unwrap()), STATUS_BAD_VERSION);
        let mut q = query(0x02, TGT, SRP_MASK);
        q[3] = 0x02;
        assert_eq!(status(&s.handle(&q).unwrap()), STATUS_UNSUPPORTED);
        assert!(
            s.handle(&{
                let mut q = query(0x01, TGT, SRP_MASK);
                q[3] = 0x81;
                q
            })
            .is_none(),
            "responses are not answered"
        );
    }

    #[test]
    fn injected_faults() {
        let mut s = sa();
        s.fault = SaFault::Busy;
        assert_eq!(
            status(&s.handle(&query(0x01, TGT, SRP_MASK)).unwrap()),
            STATUS_BUSY
        );
        s.fault = SaFault::NoRecord;
        assert_eq!(
            status(&s.handle(&query(0x01, TGT, SRP_MASK)).unwrap()),
            STATUS_NO_RECORDS
        );
        s.fault = SaFault::NoResponse;
        assert!(s.handle(&query(0x01, TGT, SRP_MASK)).is_none());
        assert_eq!(s.queries, 3);
    }
}
