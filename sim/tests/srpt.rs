//! The SRP target's protocol side driven as the simulator's world will drive it: CM
//! MADs and IUs in, actions out. Every input is built byte by byte from the offsets in
//! reference/srp-cm-sa-dm.md (§1.1 SRP IUs, §1.2 descriptors, §1.3 MAD header, §1.4 CM
//! messages), and every output is read back the same way, never through the crate's
//! own encoders. Images live under the temporary directory and are removed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use fabboot_sim::srpt::{
    Action, BadCmdReply, ChannelId, ChannelState, ErrorKind, MadFrom, MalformedRsp, RdmaFailure,
    SrpTarget, SrptConfig, SrptFault, cm, iu,
};
use fabboot_sim::target::{BlockSize, Image, LogicalUnit, LuIdentity, Lun, Product, Target};

const TARGET_GUID: u64 = 0x0002_C903_00AB_CDEF;
const TARGET_LID: u16 = 5;
const INIT_LID: u16 = 7;
const INIT_GUID: u64 = 0x0002_C903_0011_2233;
const INIT_QPN: u32 = 0x48;
const BLOCKS: u64 = 64;

fn port_gid(guid: u64) -> [u8; 16] {
    let mut g = [0u8; 16];
    g[..8].copy_from_slice(&0xFE80_0000_0000_0000u64.to_be_bytes());
    g[8..].copy_from_slice(&guid.to_be_bytes());
    g
}

fn target_port_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&TARGET_GUID.to_be_bytes());
    id[8..].copy_from_slice(&TARGET_GUID.to_be_bytes());
    id
}

fn init_port_id(ext: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&ext.to_be_bytes());
    id[8..].copy_from_slice(&INIT_GUID.to_be_bytes());
    id
}

fn cfg() -> SrptConfig {
    SrptConfig::ib_srpt(TARGET_GUID, port_gid(TARGET_GUID), TARGET_LID)
}

const FROM: MadFrom = MadFrom {
    slid: INIT_LID,
    sl: 0,
    src_qp: 1,
    pkey_index: 0,
};

// ---------------------------------------------------------------------------------
// Byte readers.

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn be24(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([0, b[at], b[at + 1], b[at + 2]])
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}
fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

/// MAD-absolute offset of CM payload offset `off` (reference §1.4: add 24).
const fn pl(off: usize) -> usize {
    24 + off
}

// ---------------------------------------------------------------------------------
// Fixtures: SRP_LOGIN_REQ and CM MADs (reference §1.1, §1.3, §1.4).

#[derive(Clone)]
struct Login {
    tag: u64,
    it_iu_len: u32,
    buf_fmt: u16,
    flags: u8,
    imm_offset: u16,
    i_port: [u8; 16],
    t_port: [u8; 16],
}

impl Login {
    fn new() -> Login {
        Login {
            tag: 0x7461_6700_0000_0001,
            it_iu_len: 276,
            buf_fmt: 0x0006,
            flags: 0,
            imm_offset: 0,
            i_port: init_port_id(0),
            t_port: target_port_id(),
        }
    }

    fn bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0] = 0x00;
        b[8..16].copy_from_slice(&self.tag.to_be_bytes());
        b[16..20].copy_from_slice(&self.it_iu_len.to_be_bytes());
        b[24..26].copy_from_slice(&self.buf_fmt.to_be_bytes());
        b[26] = self.flags;
        b[28..30].copy_from_slice(&self.imm_offset.to_be_bytes());
        b[32..48].copy_from_slice(&self.i_port);
        b[48..64].copy_from_slice(&self.t_port);
        b
    }
}

#[derive(Clone)]
struct Req {
    tid: u64,
    class_version: u8,
    comm_id: u32,
    service_id: u64,
    ca_guid: u64,
    qpn: u32,
    psn: u32,
    transport: u8,
    mtu: u8,
    max_cm_retries: u8,
    remote_cm_timeout: u8,
    ack_timeout: u8,
    local_lid: u16,
    remote_lid: u16,
    remote_gid: [u8; 16],
    login: Login,
}

impl Req {
    fn new() -> Req {
        Req {
            tid: 0x0000_0001_0000_0042,
            class_version: 2,
            comm_id: 0x1111_0001,
            service_id: TARGET_GUID,
            ca_guid: INIT_GUID,
            qpn: INIT_QPN,
            psn: 0x00AB_1234,
            transport: 0,
            mtu: 4,
            max_cm_retries: 2,
            remote_cm_timeout: 10,
            ack_timeout: 14,
            local_lid: INIT_LID,
            remote_lid: TARGET_LID,
            remote_gid: port_gid(TARGET_GUID),
            login: Login::new(),
        }
    }

    /// The REQ MAD, byte by byte from IBTA Table 106 as reference §1.4 lays it out.
    fn mad(&self) -> [u8; 256] {
        let mut m = [0u8; 256];
        m[0] = 1;
        m[1] = 0x07;
        m[2] = self.class_version;
        m[3] = 0x03;
        m[8..16].copy_from_slice(&self.tid.to_be_bytes());
        m[16..18].copy_from_slice(&0x0010u16.to_be_bytes());
        m[pl(0)..pl(4)].copy_from_slice(&self.comm_id.to_be_bytes());
        m[pl(8)..pl(16)].copy_from_slice(&self.service_id.to_be_bytes());
        m[pl(16)..pl(24)].copy_from_slice(&self.ca_guid.to_be_bytes());
        m[pl(32)..pl(35)].copy_from_slice(&self.qpn.to_be_bytes()[1..]);
        m[pl(35)] = 4; // responder resources
        m[pl(39)] = 0; // initiator depth
        m[pl(43)] = self.remote_cm_timeout << 3 | self.transport << 1 | 1;
        m[pl(44)..pl(47)].copy_from_slice(&self.psn.to_be_bytes()[1..]);
        m[pl(47)] = 18 << 3 | 6; // local CM response timeout, retry count 6
        m[pl(48)..pl(50)].copy_from_slice(&0xFFFFu16.to_be_bytes());
        m[pl(50)] = self.mtu << 4 | 5; // RNR retry 5
        m[pl(51)] = self.max_cm_retries << 4;
        m[pl(52)..pl(54)].copy_from_slice(&self.local_lid.to_be_bytes());
        m[pl(54)..pl(56)].copy_from_slice(&self.remote_lid.to_be_bytes());
        m[pl(56)..pl(72)].copy_from_slice(&port_gid(self.ca_guid));
        m[pl(72)..pl(88)].copy_from_slice(&self.remote_gid);
        m[pl(93)] = 1; // hop limit
        m[pl(94)] = 0x08; // SL 0, subnet local
        m[pl(95)] = self.ack_timeout << 3;
        m[pl(140)..pl(204)].copy_from_slice(&self.login.bytes());
        m
    }
}

/// A CM Send MAD with the two comm IDs (RTU, DREP, and the start of DREQ/REJ/MRA).
fn cm_mad(attr: u16, tid: u64, local: u32, remote: u32) -> [u8; 256] {
    let mut m = [0u8; 256];
    m[0] = 1;
    m[1] = 0x07;
    m[2] = 2;
    m[3] = 0x03;
    m[8..16].copy_from_slice(&tid.to_be_bytes());
    m[16..18].copy_from_slice(&attr.to_be_bytes());
    m[pl(0)..pl(4)].copy_from_slice(&local.to_be_bytes());
    m[pl(4)..pl(8)].copy_from_slice(&remote.to_be_bytes());
    m
}

fn dreq_mad(tid: u64, local: u32, remote: u32, remote_qpn: u32) -> [u8; 256] {
    let mut m = cm_mad(0x0015, tid, local, remote);
    m[pl(8)..pl(11)].copy_from_slice(&remote_qpn.to_be_bytes()[1..]);
    m
}

// ---------------------------------------------------------------------------------
// Fixtures: IUs (reference §1.1, §1.2).

fn direct(va: u64, rkey: u32, len: u32) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&va.to_be_bytes());
    d.extend_from_slice(&rkey.to_be_bytes());
    d.extend_from_slice(&len.to_be_bytes());
    d
}

/// An indirect descriptor header (table descriptor, TOTAL LENGTH) plus inline
/// descriptors.
fn indirect(table_len: u32, total: u32, descs: &[(u64, u32, u32)]) -> Vec<u8> {
    let mut d = direct(0xFFFF_0000, 0x77, table_len);
    d.extend_from_slice(&total.to_be_bytes());
    for &(va, k, l) in descs {
        d.extend_from_slice(&direct(va, k, l));
    }
    d
}

/// SRP_CMD: 48-byte fixed part with `fmt` in byte 5 and the counts in 6/7, then
/// `tail` (descriptors, immediate data).
fn cmd(tag: u64, lun: u16, cdb: &[u8], fmt: u8, do_cnt: u8, di_cnt: u8, tail: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 48];
    b[0] = 0x02;
    b[5] = fmt;
    b[6] = do_cnt;
    b[7] = di_cnt;
    b[8..16].copy_from_slice(&tag.to_be_bytes());
    b[20..28].copy_from_slice(&Lun::new(lun).unwrap().to_bytes());
    b[32..32 + cdb.len()].copy_from_slice(cdb);
    b.extend_from_slice(tail);
    b
}

fn rw10(op: u8, lba: u32, blocks: u16) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = op;
    c[2..6].copy_from_slice(&lba.to_be_bytes());
    c[7..9].copy_from_slice(&blocks.to_be_bytes());
    c
}

const READ10: u8 = 0x28;
const WRITE10: u8 = 0x2A;

fn tsk(tag: u64, lun: [u8; 8], function: u8, task_tag: u64) -> Vec<u8> {
    let mut b = vec![0u8; 48];
    b[0] = 0x01;
    b[8..16].copy_from_slice(&tag.to_be_bytes());
    b[20..28].copy_from_slice(&lun);
    b[30] = function;
    b[32..40].copy_from_slice(&task_tag.to_be_bytes());
    b
}

fn lun(n: u16) -> [u8; 8] {
    Lun::new(n).unwrap().to_bytes()
}

/// An SRP_RSP read by offsets (reference §1.1).
#[derive(Debug)]
struct Rsp {
    delta: i32,
    tag: u64,
    flags: u8,
    status: u8,
    do_resid: u32,
    di_resid: u32,
    sense: Vec<u8>,
    resp: Vec<u8>,
}

fn rsp(iu: &[u8]) -> Rsp {
    assert_eq!(iu[0], 0xC1, "not an SRP_RSP: {iu:02x?}");
    let sense_len = be32(iu, 28) as usize;
    let resp_len = be32(iu, 32) as usize;
    assert_eq!(iu.len(), 36 + sense_len + resp_len, "IU length");
    Rsp {
        delta: be32(iu, 4) as i32,
        tag: be64(iu, 8),
        flags: iu[18],
        status: iu[19],
        do_resid: be32(iu, 20),
        di_resid: be32(iu, 24),
        resp: iu[36..36 + resp_len].to_vec(),
        sense: iu[36 + resp_len..].to_vec(),
    }
}

// ---------------------------------------------------------------------------------
// Harness.

struct TempImage(PathBuf);

impl TempImage {
    fn new() -> TempImage {
        static N: AtomicU32 = AtomicU32::new(0);
        TempImage(std::env::temp_dir().join(format!(
            "fabboot-srpt-{}-{}.img",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )))
    }
}

impl Drop for TempImage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Block `lba` of LUN `lun` as it is first written: every byte names both.
fn pattern(lun: u16, lba: u64) -> Vec<u8> {
    (0..512u32)
        .map(|i| (i as u8) ^ (lba as u8).wrapping_mul(31) ^ (lun as u8).wrapping_mul(101))
        .collect()
}

struct H {
    t: SrpTarget,
    _files: Vec<TempImage>,
    now: u64,
}

impl H {
    fn new(cfg: SrptConfig) -> H {
        let mut target = Target::new(Product::simulated());
        let mut files = Vec::new();
        for n in [0u16, 1] {
            let f = TempImage::new();
            let mut image = Image::create(&f.0, BlockSize::B512, BLOCKS).unwrap();
            for lba in 0..BLOCKS {
                image.write(lba, &pattern(n, lba)).unwrap();
            }
            let lu = LogicalUnit::new(image, LuIdentity::simulated(u32::from(n)));
            target.add(Lun::new(n).unwrap(), lu).unwrap();
            files.push(f);
        }
        H {
            t: SrpTarget::new(cfg, target),
            _files: files,
            now: 1_000,
        }
    }

    fn mad(&mut self, mad: &[u8; 256]) -> Vec<Action> {
        self.now += 1_000;
        self.t.on_cm_mad(self.now, FROM, mad)
    }

    fn iu(&mut self, ch: ChannelId, iu: &[u8]) -> Vec<Action> {
        self.now += 1_000;
        self.t.on_iu(self.now, ch, iu)
    }

    fn done(&mut self, ch: ChannelId, token: u64, r: Result<Vec<u8>, RdmaFailure>) -> Vec<Action> {
        self.now += 1_000;
        self.t.on_rdma_done(self.now, ch, token, r)
    }

    /// Logs in with `req` and sends the RTU; the channel and the REP MAD.
    fn login_with(&mut self, req: &Req) -> (ChannelId, [u8; 256]) {
        let acts = self.mad(&req.mad());
        let ch = opened(&acts).expect("no OpenChannel");
        let rep = only_mad(&acts, 0x0013);
        let local = be32(&rep, pl(0));
        let acts = self.mad(&cm_mad(0x0014, req.tid, req.comm_id, local));
        assert!(acts.is_empty(), "{acts:?}");
        assert_eq!(self.t.channel(ch).unwrap().state, ChannelState::Live);
        (ch, rep)
    }

    fn login(&mut self) -> ChannelId {
        self.login_with(&Req::new()).0
    }

    /// Blocks `lba..lba+n` of LUN `l` on the image.
    fn image(&self, l: u16, lba: u64, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; 512 * n];
        let lu = self.t.target().lu(Lun::new(l).unwrap()).unwrap();
        lu.image().read(lba, &mut b).unwrap();
        b
    }
}

fn opened(acts: &[Action]) -> Option<ChannelId> {
    acts.iter().find_map(|a| match a {
        Action::OpenChannel { channel, .. } => Some(*channel),
        _ => None,
    })
}

fn mads(acts: &[Action]) -> Vec<[u8; 256]> {
    acts.iter()
        .filter_map(|a| match a {
            Action::SendMad { mad, .. } => Some(*mad),
            _ => None,
        })
        .collect()
}

/// The one MAD with attribute `attr` among `acts`.
fn only_mad(acts: &[Action], attr: u16) -> [u8; 256] {
    let m: Vec<_> = mads(acts)
        .into_iter()
        .filter(|m| be16(m, 16) == attr)
        .collect();
    assert_eq!(m.len(), 1, "want one MAD {attr:#06x} in {acts:?}");
    m[0]
}

fn ius(acts: &[Action]) -> Vec<Vec<u8>> {
    acts.iter()
        .filter_map(|a| match a {
            Action::SendIu { iu, .. } => Some(iu.clone()),
            _ => None,
        })
        .collect()
}

fn only_iu(acts: &[Action]) -> Vec<u8> {
    let v = ius(acts);
    assert_eq!(v.len(), 1, "want one IU in {acts:?}");
    v.into_iter().next().unwrap()
}

fn closed(acts: &[Action], ch: ChannelId) -> bool {
    acts.contains(&Action::CloseChannel { channel: ch })
}

/// An RDMA operation: (token, va, rkey, len, the data of a write).
type Op = (u64, u64, u32, u32, Option<Vec<u8>>);

/// The RDMA operations among `acts`.
fn rdma(acts: &[Action]) -> Vec<Op> {
    acts.iter()
        .filter_map(|a| match a {
            Action::RdmaRead {
                token,
                remote_addr,
                rkey,
                len,
                ..
            } => Some((*token, *remote_addr, *rkey, *len, None)),
            Action::RdmaWrite {
                token,
                remote_addr,
                rkey,
                data,
                ..
            } => Some((
                *token,
                *remote_addr,
                *rkey,
                data.len() as u32,
                Some(data.clone()),
            )),
            _ => None,
        })
        .collect()
}

/// Checks a REJ carrying an SRP_LOGIN_REJ: CM reason 28, message REQ, the REQ's comm
/// ID echoed, the TID echoed; returns the SRP reason.
fn login_rej(mad: &[u8; 256], req: &Req) -> u32 {
    assert_eq!(be16(mad, 16), 0x0012);
    assert_eq!(be64(mad, 8), req.tid);
    assert_eq!(be32(mad, pl(4)), req.comm_id);
    assert_eq!(mad[pl(8)] >> 6, 0);
    assert_eq!(be16(mad, pl(10)), 28);
    let pd = &mad[pl(84)..];
    assert_eq!(pd[0], 0xC2);
    assert_eq!(be64(pd, 8), req.login.tag);
    be32(pd, 4)
}

fn cm_rej_reason(mad: &[u8; 256]) -> u16 {
    assert_eq!(be16(mad, 16), 0x0012);
    be16(mad, pl(10))
}

// ---------------------------------------------------------------------------------
// CM and login.

#[test]
fn login_rep_and_open_channel() {
    let mut h = H::new(cfg());
    let req = Req::new();
    let acts = h.mad(&req.mad());
    assert_eq!(acts.len(), 2, "{acts:?}");
    // The QP first, so that receives are posted before the REP goes out.
    let Action::OpenChannel {
        channel,
        local_qpn,
        remote_qpn,
        remote_lid,
        sq_psn,
        rq_psn,
        mtu,
        max_rd_atomic,
        max_dest_rd_atomic,
        retry_cnt,
        rnr_retry,
    } = acts[0].clone()
    else {
        panic!("{acts:?}")
    };
    let Action::SendMad { dlid, dqpn, mad } = acts[1].clone() else {
        panic!("{acts:?}")
    };
    assert_eq!((dlid, dqpn), (INIT_LID, 1));
    assert_eq!(
        (remote_qpn, remote_lid, rq_psn),
        (INIT_QPN, INIT_LID, 0x00AB_1234)
    );
    assert_eq!((mtu, max_rd_atomic, max_dest_rd_atomic), (4, 4, 4));
    assert_eq!((retry_cnt, rnr_retry), (6, 5));
    assert_eq!(local_qpn, 0x100);
    // MAD header (§1.3).
    assert_eq!(&mad[0..4], &[1, 0x07, 2, 0x03]);
    assert_eq!(be64(&mad, 8), req.tid);
    assert_eq!(be16(&mad, 16), 0x0013);
    // REP (§1.4, Table 110).
    assert_ne!(be32(&mad, pl(0)), 0);
    assert_eq!(be32(&mad, pl(4)), req.comm_id);
    assert_eq!(be24(&mad, pl(12)), local_qpn);
    assert_eq!(be24(&mad, pl(20)), sq_psn);
    assert_eq!((mad[pl(24)], mad[pl(25)]), (4, 4));
    assert_eq!(
        mad[pl(26)],
        16 << 3 | 1,
        "ACK delay, no failover, flow control"
    );
    assert_eq!(mad[pl(27)], 7 << 5 | 0x10, "RNR retry 7, SRQ");
    assert_eq!(be64(&mad, pl(28)), TARGET_GUID);
    // SRP_LOGIN_RSP in the private data (§1.1, §3.3).
    let rsp = &mad[pl(36)..];
    assert_eq!(rsp[0], 0xC0);
    assert_eq!(be32(rsp, 4), 128);
    assert_eq!(be64(rsp, 8), req.login.tag);
    assert_eq!(be32(rsp, 16), 8276);
    assert_eq!(be32(rsp, 20), 276, "MAX TI IU LENGTH echoes the request");
    assert_eq!(be16(rsp, 24), 0x0006);
    assert_eq!(rsp[26], 0, "no existing channel, no immediate data");
    assert!(rsp[27..52].iter().all(|&b| b == 0));
    let info = h.t.channel(channel).unwrap();
    assert_eq!(info.state, ChannelState::Connecting);
    assert_eq!(info.credits, 128);
    assert_eq!(info.initiator_port_id, init_port_id(0));
    // RTU makes it live.
    let rtu = cm_mad(0x0014, req.tid, req.comm_id, be32(&mad, pl(0)));
    assert!(h.mad(&rtu).is_empty());
    assert_eq!(h.t.channel(channel).unwrap().state, ChannelState::Live);
    // A second RTU is counted and ignored.
    assert!(h.mad(&rtu).is_empty());
    assert_eq!(h.t.stats().error_count(ErrorKind::UnexpectedInState), 1);
    assert_eq!(h.t.stats().logins_accepted, 1);
}

#[test]
fn login_rejects_in_ib_srpt_order() {
    let base = Req::new();
    let case = |c: SrptConfig, f: &dyn Fn(&mut Req), fault: Option<SrptFault>| -> u32 {
        let mut h = H::new(c);
        if let Some(f) = fault {
            h.t.set_fault(f);
        }
        let mut r = base.clone();
        f(&mut r);
        let acts = h.mad(&r.mad());
        assert!(opened(&acts).is_none());
        let reason = login_rej(&only_mad(&acts, 0x0012), &r);
        assert_eq!(h.t.stats().logins_rejected, 1);
        assert!(h.t.channels().next().is_none());
        reason
    };
    assert_eq!(case(cfg(), &|r| r.login.it_iu_len = 63, None), 0x0001_0002);
    assert_eq!(
        case(cfg(), &|r| r.login.it_iu_len = 8277, None),
        0x0001_0002
    );
    let mut wrong = target_port_id();
    wrong[15] ^= 1;
    assert_eq!(case(cfg(), &|r| r.login.t_port = wrong, None), 0x0001_0003);
    // The IU length is checked before the port ID.
    assert_eq!(
        case(
            cfg(),
            &|r| {
                r.login.t_port = wrong;
                r.login.it_iu_len = 10
            },
            None
        ),
        0x0001_0002
    );
    let acl = SrptConfig {
        acl: Some(vec![init_port_id(9)]),
        ..cfg()
    };
    assert_eq!(case(acl.clone(), &|_| {}, None), 0x0001_0006);
    // The port ID before the ACL.
    assert_eq!(case(acl, &|r| r.login.t_port = wrong, None), 0x0001_0003);
    let none = SrptConfig {
        max_channels: 0,
        ..cfg()
    };
    assert_eq!(case(none, &|_| {}, None), 0x0001_0001);
    let direct_only = SrptConfig {
        indirect_ok: false,
        ..cfg()
    };
    assert_eq!(
        case(direct_only, &|r| r.login.buf_fmt = 0x0004, None),
        0x0001_0004
    );
    assert_eq!(
        case(cfg(), &|_| {}, Some(SrptFault::RejectLogins(0x0001_0005))),
        0x0001_0005
    );
    // The SRP_LOGIN_REJ's supported formats and the REJ's own comm ID.
    let mut h = H::new(SrptConfig {
        indirect_ok: false,
        ..cfg()
    });
    let mut r = base.clone();
    r.login.buf_fmt = 0x0004;
    let m = only_mad(&h.mad(&r.mad()), 0x0012);
    assert_eq!(be16(&m[pl(84)..], 24), 0x0002);
    assert_ne!(be32(&m, pl(0)), 0);
    // A direct-only target accepts a login that allows direct, and says so.
    let m = only_mad(&h.mad(&base.mad()), 0x0013);
    assert_eq!(be16(&m[pl(36)..], 24), 0x0002);
}

#[test]
fn login_private_data_not_a_login_req() {
    let mut h = H::new(cfg());
    let req = Req::new();
    let mut mad = req.mad();
    mad[pl(140)] = 0x02; // not LOGIN_REQ
    let acts = h.mad(&mad);
    assert_eq!(login_rej(&only_mad(&acts, 0x0012), &req), 0x0001_0000);
    assert_eq!(h.t.stats().error_count(ErrorKind::BadLoginReq), 1);
}

#[test]
fn cm_rejects() {
    let reject = |f: &dyn Fn(&mut Req)| -> [u8; 256] {
        let mut h = H::new(cfg());
        let mut r = Req::new();
        f(&mut r);
        let acts = h.mad(&r.mad());
        assert!(opened(&acts).is_none());
        let m = only_mad(&acts, 0x0012);
        assert_eq!(be64(&m, 8), r.tid);
        assert_eq!(be32(&m, pl(4)), r.comm_id);
        m
    };
    assert_eq!(cm_rej_reason(&reject(&|r| r.service_id = 0x1234)), 8);
    assert_eq!(cm_rej_reason(&reject(&|r| r.transport = 1)), 9);
    assert_eq!(cm_rej_reason(&reject(&|r| r.mtu = 0)), 26);
    assert_eq!(cm_rej_reason(&reject(&|r| r.remote_gid = port_gid(1))), 12);
    assert_eq!(cm_rej_reason(&reject(&|r| r.remote_lid = 99)), 13);
    // Permissive LIDs are fine; the reply then goes by the packet's SLID.
    let mut h = H::new(cfg());
    let mut r = Req::new();
    r.remote_lid = 0xFFFF;
    r.local_lid = 0xFFFF;
    let acts = h.mad(&r.mad());
    assert!(matches!(
        acts[0],
        Action::OpenChannel {
            remote_lid: INIT_LID,
            ..
        }
    ));
    // Class version 1: REJ 31, the ARI naming version 2 (info length 1).
    let m = reject(&|r| r.class_version = 1);
    assert_eq!(cm_rej_reason(&m), 31);
    assert_eq!(m[pl(9)] >> 1, 1);
    assert_eq!(m[pl(12)], 2);
    // Injected stale connection.
    let mut h = H::new(cfg());
    h.t.set_fault(SrptFault::StaleNextReq);
    let acts = h.mad(&Req::new().mad());
    assert_eq!(cm_rej_reason(&only_mad(&acts, 0x0012)), 10);
    // One-shot: the retry logs in.
    assert!(opened(&h.mad(&Req::new().mad())).is_some());
}

#[test]
fn duplicate_req_gets_the_same_rep() {
    let mut h = H::new(cfg());
    let req = Req::new();
    let first = h.mad(&req.mad());
    let rep = only_mad(&first, 0x0013);
    let again = h.mad(&req.mad());
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(only_mad(&again, 0x0013), rep);
    assert_eq!(h.t.stats().duplicate_reqs, 1);
    assert_eq!(h.t.channels().count(), 1);
}

#[test]
fn stale_qpn_gets_rej_10_and_old_connection_a_dreq() {
    let mut h = H::new(cfg());
    let (old, rep) = h.login_with(&Req::new());
    let mut reboot = Req::new();
    reboot.comm_id = 0x2222_0001;
    reboot.tid = 0x99;
    let acts = h.mad(&reboot.mad());
    let rej = only_mad(&acts, 0x0012);
    assert_eq!(cm_rej_reason(&rej), 10);
    assert_eq!(be64(&rej, 8), 0x99);
    let dreq = only_mad(&acts, 0x0015);
    assert_eq!(be32(&dreq, pl(0)), be32(&rep, pl(0)));
    assert_eq!(be32(&dreq, pl(4)), Req::new().comm_id);
    assert_eq!(be24(&dreq, pl(8)), INIT_QPN);
    assert_ne!(be64(&dreq, 8), 0x99, "a DREQ of our own has its own TID");
    assert_eq!(h.t.channel(old).unwrap().state, ChannelState::Disconnecting);
}

#[test]
fn single_relogin_terminates_multi_maintains() {
    let mut h = H::new(cfg());
    let (a, rep_a) = h.login_with(&Req::new());
    let mut b = Req::new();
    b.comm_id = 0x3333_0001;
    b.qpn = 0x49;
    let acts = h.mad(&b.mad());
    let dreq = only_mad(&acts, 0x0015);
    assert_eq!(be32(&dreq, pl(0)), be32(&rep_a, pl(0)));
    let rep_b = only_mad(&acts, 0x0013);
    assert_eq!(rep_b[pl(36) + 26], 1, "TERMINATED");
    assert_eq!(h.t.channel(a).unwrap().state, ChannelState::Disconnecting);
    // The old channel's DREP closes its QP.
    let acts = h.mad(&cm_mad(0x0016, 5, Req::new().comm_id, be32(&rep_a, pl(0))));
    assert!(closed(&acts, a));
    assert!(h.t.channel(a).is_none());
    // MULTI keeps the others.
    let mut c = Req::new();
    c.comm_id = 0x4444_0001;
    c.qpn = 0x4A;
    c.login.flags = 0x01;
    let acts = h.mad(&c.mad());
    assert!(mads(&acts).iter().all(|m| be16(m, 16) != 0x0015));
    assert_eq!(only_mad(&acts, 0x0013)[pl(36) + 26], 2, "MAINTAINED");
    assert_eq!(h.t.channels().count(), 2);
    // SINGLE from another initiator port leaves both alone.
    let mut d = Req::new();
    d.comm_id = 0x5555_0001;
    d.qpn = 0x4B;
    d.login.i_port = init_port_id(1);
    let acts = h.mad(&d.mad());
    assert_eq!(only_mad(&acts, 0x0013)[pl(36) + 26], 0, "NO CHANNEL");
    assert_eq!(h.t.channels().count(), 3);
}

#[test]
fn iu_before_rtu_goes_live() {
    let mut h = H::new(cfg());
    let req = Req::new();
    let acts = h.mad(&req.mad());
    let ch = opened(&acts).unwrap();
    let tur = cmd(0x51, 0, &[0; 6], 0, 0, 0, &[]);
    let r = rsp(&only_iu(&h.iu(ch, &tur)));
    assert_eq!((r.tag, r.status, r.delta), (0x51, 0, 1));
    assert_eq!(h.t.channel(ch).unwrap().state, ChannelState::Live);
    // The late RTU is then out of place.
    let local = be32(&only_mad(&acts, 0x0013), pl(0));
    assert!(
        h.mad(&cm_mad(0x0014, req.tid, req.comm_id, local))
            .is_empty()
    );
    assert_eq!(h.t.stats().error_count(ErrorKind::UnexpectedInState), 1);
}

#[test]
fn dreq_from_initiator() {
    let mut h = H::new(cfg());
    let (ch, rep) = h.login_with(&Req::new());
    let local = be32(&rep, pl(0));
    let dreq = dreq_mad(0x77, Req::new().comm_id, local, 0x100);
    let acts = h.mad(&dreq);
    assert!(closed(&acts, ch));
    let drep = only_mad(&acts, 0x0016);
    assert_eq!(be64(&drep, 8), 0x77);
    assert_eq!(
        (be32(&drep, pl(0)), be32(&drep, pl(4))),
        (local, Req::new().comm_id)
    );
    assert!(h.t.channel(ch).is_none());
    // A retransmitted DREQ finds the connection in TimeWait: DREP again, nothing else.
    let acts = h.mad(&dreq);
    assert_eq!(acts.len(), 1);
    assert_eq!(be32(&only_mad(&acts, 0x0016), pl(0)), local);
    // A REQ reusing the comm ID in TimeWait: stale.
    let acts = h.mad(&Req::new().mad());
    assert_eq!(cm_rej_reason(&only_mad(&acts, 0x0012)), 10);
    // After TimeWait (Local ACK Timeout 14) it is forgotten and a login works.
    h.now += 4096 << 14;
    assert!(h.t.poll(h.now).is_empty());
    assert!(opened(&h.mad(&Req::new().mad())).is_some());
    // A DREQ nobody knows still gets a DREP (Linux cm.c); counted.
    let acts = h.mad(&dreq_mad(0x78, 0xDEAD, 0xBEEF, 1));
    assert_eq!(be32(&only_mad(&acts, 0x0016), pl(4)), 0xDEAD);
    assert_eq!(h.t.stats().error_count(ErrorKind::UnknownConnection), 1);
}

#[test]
fn dreq_naming_another_qp_is_dropped() {
    let mut h = H::new(cfg());
    let (ch, rep) = h.login_with(&Req::new());
    let acts = h.mad(&dreq_mad(1, Req::new().comm_id, be32(&rep, pl(0)), 0x999));
    assert!(acts.is_empty());
    assert_eq!(h.t.channel(ch).unwrap().state, ChannelState::Live);
}

#[test]
fn target_disconnect_and_dreq_retries() {
    let mut h = H::new(cfg());
    let (ch, rep) = h.login_with(&Req::new());
    let local = be32(&rep, pl(0));
    let now = h.now;
    let acts = h.t.disconnect(now, ch);
    let dreq = only_mad(&acts, 0x0015);
    assert!(!closed(&acts, ch), "the QP stays until the DREP");
    // IUs are no longer handled.
    assert!(h.iu(ch, &cmd(1, 0, &[0; 6], 0, 0, 0, &[])).is_empty());
    assert_eq!(h.t.stats().error_count(ErrorKind::ChannelNotLive), 1);
    // No DREP: the DREQ is sent again Max CM Retries (2) times, then the QP closes.
    let mut resent = 0;
    let mut closed_at = None;
    for _ in 0..10 {
        let Some(t) = h.t.next_deadline() else { break };
        let acts = h.t.poll(t);
        resent += mads(&acts).iter().filter(|m| **m == dreq).count();
        if closed(&acts, ch) {
            closed_at = Some(t);
            break;
        }
    }
    assert_eq!(resent, 2);
    assert!(closed_at.is_some());
    assert!(h.t.channel(ch).is_none());
    // With a DREP it closes at once.
    let mut r = Req::new();
    r.comm_id = 9;
    r.qpn = 0x60;
    let (ch, rep) = h.login_with(&r);
    let now = h.now;
    h.t.disconnect(now, ch);
    let acts = h.mad(&cm_mad(0x0016, 3, 9, be32(&rep, pl(0))));
    assert!(closed(&acts, ch));
    let _ = local;
}

#[test]
fn rej_from_initiator_drops_channel() {
    let mut h = H::new(cfg());
    let req = Req::new();
    let acts = h.mad(&req.mad());
    let ch = opened(&acts).unwrap();
    let local = be32(&only_mad(&acts, 0x0013), pl(0));
    let mut rej = cm_mad(0x0012, req.tid, req.comm_id, local);
    rej[pl(8)] = 1 << 6; // REP rejected
    rej[pl(11)] = 4; // timeout
    let acts = h.mad(&rej);
    assert!(closed(&acts, ch));
    assert!(h.t.channel(ch).is_none());
}

#[test]
fn rep_retransmitted_then_rej_timeout() {
    let mut h = H::new(cfg());
    let req = Req::new();
    let acts = h.mad(&req.mad());
    let ch = opened(&acts).unwrap();
    let rep = only_mad(&acts, 0x0013);
    // REP timeout: remote CM response timeout 10 plus twice the packet lifetime 13.
    let timeout = (4096u64 << 10) + 2 * (4096u64 << 13);
    let first = h.t.next_deadline().unwrap();
    assert_eq!(first, h.now + timeout);
    assert!(h.t.poll(first - 1).is_empty());
    assert_eq!(only_mad(&h.t.poll(first), 0x0013), rep);
    assert_eq!(only_mad(&h.t.poll(first + timeout), 0x0013), rep);
    let acts = h.t.poll(first + 2 * timeout);
    let rej = only_mad(&acts, 0x0012);
    assert_eq!(cm_rej_reason(&rej), 4);
    assert_eq!(rej[pl(8)] >> 6, 1, "REP rejected");
    assert!(closed(&acts, ch));
    assert_eq!(h.t.stats().rep_resends, 2);
    // An MRA of the REP would have pushed the timer out.
    let mut h = H::new(cfg());
    let acts = h.mad(&req.mad());
    let local = be32(&only_mad(&acts, 0x0013), pl(0));
    let before = h.t.next_deadline().unwrap();
    let mut mra = cm_mad(0x0011, req.tid, req.comm_id, local);
    mra[pl(8)] = 1 << 6;
    mra[pl(9)] = 20 << 3;
    assert!(h.mad(&mra).is_empty());
    assert!(h.t.next_deadline().unwrap() >= before + (4096 << 20));
}

#[test]
fn delayed_rep_sends_mra_first() {
    let mut h = H::new(cfg());
    h.t.set_fault(SrptFault::DelayRep {
        service_timeout: 17,
        delay_ns: 5_000_000,
    });
    let req = Req::new();
    let acts = h.mad(&req.mad());
    assert_eq!(acts.len(), 1);
    let mra = only_mad(&acts, 0x0011);
    assert_eq!(be64(&mra, 8), req.tid);
    assert_eq!(be32(&mra, pl(4)), req.comm_id);
    assert_eq!(mra[pl(8)] >> 6, 0, "REQ MRAed");
    assert_eq!(mra[pl(9)] >> 3, 17);
    // A duplicate REQ meanwhile gets the MRA again.
    assert_eq!(only_mad(&h.mad(&req.mad()), 0x0011), mra);
    let due = h.t.next_deadline().unwrap();
    assert!(h.t.poll(due - 1).is_empty());
    let acts = h.t.poll(due);
    assert!(opened(&acts).is_some());
    let rep = only_mad(&acts, 0x0013);
    assert_eq!(be32(&rep, pl(0)), be32(&mra, pl(0)), "same local comm ID");
    assert_eq!(be64(&rep, 8), req.tid);
}

#[test]
fn malformed_and_unexpected_mads() {
    let mut h = H::new(cfg());
    let good = Req::new().mad();
    let mut bad_base = good;
    bad_base[0] = 2;
    assert!(h.mad(&bad_base).is_empty());
    let mut sa = good;
    sa[1] = 0x03;
    assert!(h.mad(&sa).is_empty());
    let mut resp = good;
    resp[3] = 0x83;
    assert!(h.mad(&resp).is_empty());
    assert!(h.mad(&cm_mad(0x0019, 1, 1, 1)).is_empty(), "LAP");
    assert!(
        h.mad(&cm_mad(0x0013, 1, 1, 1)).is_empty(),
        "REP to a passive side"
    );
    assert!(
        h.mad(&cm_mad(0x0014, 1, 1, 1)).is_empty(),
        "RTU for nothing"
    );
    let mut rtu_v1 = cm_mad(0x0014, 1, 1, 1);
    rtu_v1[2] = 1;
    assert!(h.mad(&rtu_v1).is_empty());
    assert_eq!(h.t.stats().mads_ignored, 7);
    assert_eq!(h.t.stats().error_count(ErrorKind::BadBaseVersion), 1);
    assert_eq!(h.t.stats().error_count(ErrorKind::NotCm), 1);
    // Get ClassPortInfo: GetResp with BaseVersion, ClassVersion, RespTimeValue.
    let mut get = cm_mad(0x0001, 0xABC, 0, 0);
    get[3] = 0x01;
    let m = only_mad(&h.mad(&get), 0x0001);
    assert_eq!((m[3], be16(&m, 4), be64(&m, 8)), (0x81, 0, 0xABC));
    assert_eq!((m[pl(0)], m[pl(1)], m[pl(7)] & 0x1F), (1, 2, 18));
    // Get of anything else: unsupported method/attribute.
    let mut get = cm_mad(0x0010, 0xABD, 0, 0);
    get[3] = 0x01;
    let m = only_mad(&h.mad(&get), 0x0010);
    assert_eq!((m[3], be16(&m, 4)), (0x81, 0x000C));
    assert!(m[24..].iter().all(|&b| b == 0));
}

// ---------------------------------------------------------------------------------
// Data path.

#[test]
fn read_direct_writes_then_answers() {
    let mut h = H::new(cfg());
    let ch = h.login();
    let iu = cmd(
        0xA1,
        0,
        &rw10(READ10, 2, 2),
        0x01,
        0,
        0,
        &direct(0x10_0000, 0x42, 1024),
    );
    let acts = h.iu(ch, &iu);
    assert!(
        ius(&acts).is_empty(),
        "no SRP_RSP before the write completes"
    );
    let ops = rdma(&acts);
    assert_eq!(ops.len(), 1);
    let (token, va, rkey, len, data) = ops[0].clone();
    assert_eq!((va, rkey, len), (0x10_0000, 0x42, 1024));
    let mut want = pattern(0, 2);
    want.extend(pattern(0, 3));
    assert_eq!(data.unwrap(), want);
    assert_eq!(h.t.channel(ch).unwrap().pending_commands, 1);
    let r = rsp(&only_iu(&h.done(ch, token, Ok(Vec::new()))));
    assert_eq!((r.tag, r.status, r.flags, r.delta), (0xA1, 0, 0, 1));
    assert_eq!(h.t.channel(ch).unwrap().credits, 128);
    assert_eq!(h.t.channel(ch).unwrap().pending_commands, 0);
    // A second completion for the same token is unknown.
    assert!(h.done(ch, token, Ok(Vec::new())).is_empty());
    assert_eq!(h.t.stats().error_count(ErrorKind::UnknownRdmaToken), 1);
}

#[test]
fn read_indirect_across_descriptors() {
    let mut h = H::new(cfg());
    let ch = h.login();
    let descs = [(0x1000, 1, 512), (0x9000, 2, 768), (0x5000, 3, 256)];
    let iu = cmd(
        0xA2,
        1,
        &rw10(READ10, 10, 3),
        0x02,
        0,
        3,
        &indirect(48, 1536, &descs),
    );
    let ops = rdma(&h.iu(ch, &iu));
    assert_eq!(ops.len(), 3);
    let mut want = pattern(1, 10);
    want.extend(pattern(1, 11));
    want.extend(pattern(1, 12));
    let mut at = 0;
    for (op, d) in ops.iter().zip(descs) {
        assert_eq!((op.1, op.2, op.3), (d.0, d.1, d.2));
        assert_eq!(op.4.as_deref().unwrap(), &want[at..at + d.2 as usize]);
        at += d.2 as usize;
    }
    assert!(h.done(ch, ops[2].0, Ok(vec![])).is_empty());
    assert!(h.done(ch, ops[0].0, Ok(vec![])).is_empty());
    let r = rsp(&only_iu(&h.done(ch, ops[1].0, Ok(vec![]))));
    assert_eq!((r.tag, r.status, r.flags), (0xA2, 0, 0));
}

#[test]
fn write_direct_is_on_disk_before_the_response() {
    let mut h = H::new(cfg());
    let ch = h.login();
    let iu = cmd(
        0xB1,
        0,
        &rw10(WRITE10, 5, 2),
        0x10,
        0,
        0,
        &direct(0x2000, 0x43, 1024),
    );
    let ops = rdma(&h.iu(ch, &iu));
    assert_eq!(ops.len(), 1);
    assert_eq!(
        (ops[0].1, ops[0].2, ops[0].3, ops[0].4.is_none()),
        (0x2000, 0x43, 1024, true)
    );
    let data: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();
    assert_eq!(h.image(0, 5, 2), [pattern(0, 5), pattern(0, 6)].concat());
    let acts = h.done(ch, ops[0].0, Ok(data.clone()));
    let r = rsp(&only_iu(&acts));
    assert_eq!((r.tag, r.status, r.flags), (0xB1, 0, 0));
    assert_eq!(h.image(0, 5, 2), data);
    assert_eq!(h.image(1, 5, 2), [pattern(1, 5), pattern(1, 6)].concat());
}

#[test]
fn write_indirect_reassembles_in_descriptor_order() {
    let mut h = H::new(cfg());
    let ch = h.login();
    let descs = [(0x100, 9, 256), (0x900, 9, 768)];
    let iu = cmd(
        0xB2,
        1,
        &rw10(WRITE10, 20, 2),
        0x20,
        2,
        0,
        &indirect(32, 1024, &descs),
    );
    let ops = rdma(&h.iu(ch, &iu));
    assert_eq!(ops.len(), 2);
    assert_eq!((ops[0].3, ops[1].3), (256, 768));
    let a = vec![0x11u8; 256];
    let b = vec![0x22u8; 768];
    assert!(h.done(ch, ops[1].0, Ok(b.clone())).is_empty());
    let r = rsp(&only_iu(&h.done(ch, ops[0].0, Ok(a.clone()))));
    assert_eq!(r.status, 0);
    assert_eq!(h.image(1, 20, 2), [a, b].concat());
}

#[test]
fn immediate_data_write() {
    let mut h = H::new(cfg());
    let mut req = Req::new();
    req.login.flags = 0x80;
    req.login.imm_offset = 68;
    req.login.it_iu_len = 8260;
    let (ch, rep) = h.login_with(&req);
    assert_eq!(rep[pl(36) + 26], 0x80, "IMMEDIATE DATA SUPPORTED");
    let data = vec![0x5Au8; 512];
    let mut tail = 512u32.to_be_bytes().to_vec(); // immediate descriptor at 48
    tail.resize(68 - 48, 0);
    tail.extend_from_slice(&data);
    let iu = cmd(0xC1, 0, &rw10(WRITE10, 7, 1), 0x30, 0, 0, &tail);
    let acts = h.iu(ch, &iu);
    assert!(rdma(&acts).is_empty());
    assert_eq!(rsp(&only_iu(&acts)).status, 0);
    assert_eq!(h.image(0, 7, 1), data);
    // Data running past the IU: the descriptor error reply (BUSY).
    let short = &iu[..iu.len() - 1];
    let r = rsp(&only_iu(&h.iu(ch, short)));
    assert_eq!(r.status, 0x08);
    assert_eq!(h.t.stats().error_count(ErrorKind::ImmediateData), 1);
    // Without the login's agreement immediate data is not a format this channel has.
    let ch2 = {
        let mut r = Req::new();
        r.comm_id = 0x77;
        r.qpn = 0x77;
        r.login.flags = 0x01;
        h.login_with(&r).0
    };
    let r = rsp(&only_iu(&h.iu(ch2, &iu)));
    assert_eq!(r.status, 0x08);
    assert_eq!(h.t.stats().error_count(ErrorKind::FormatNotNegotiated), 1);
}

#[test]
fn residuals() {
    let mut h = H::new(cfg());
    let ch = h.login();
    // One block into a 1024-byte buffer: DIUNDER 512.
    let ops = rdma(&h.iu(
        ch,
        &cmd(1, 0, &rw10(READ10, 0, 1), 0x01, 0, 0, &direct(0, 1, 1024)),
    ));
    assert_eq!(ops[0].3, 512);
    let r = rsp(&only_iu(&h.done(ch, ops[0].0, Ok(vec![]))));
    assert_eq!((r.flags, r.di_resid), (0x20, 512));
    // Four blocks into 1024 bytes: the first 1024 moved, DIOVER 1024.
    let ops = rdma(&h.iu(
        ch,
        &cmd(2, 0, &rw10(READ10, 0, 4), 0x01, 0, 0, &direct(0, 1, 1024)),
    ));
    assert_eq!(ops[0].3, 1024);
    let r = rsp(&only_iu(&h.done(ch, ops[0].0, Ok(vec![]))));
    assert_eq!((r.flags, r.di_resid), (0x10, 1024));
    // One block written from a 1024-byte buffer: DOUNDER 512.
    let ops = rdma(&h.iu(
        ch,
        &cmd(3, 0, &rw10(WRITE10, 0, 1), 0x10, 0, 0, &direct(0, 1, 1024)),
    ));
    let r = rsp(&only_iu(&h.done(ch, ops[0].0, Ok(vec![1; 1024]))));
    assert_eq!((r.status, r.flags, r.do_resid), (0, 0x08, 512));
    // Two blocks written from 512 bytes: CHECK CONDITION, DOOVER 512, not written.
    let before = h.image(0, 30, 2);
    let ops = rdma(&h.iu(
        ch,
        &cmd(4, 0, &rw10(WRITE10, 30, 2), 0x10, 0, 0, &direct(0, 1, 512)),
    ));
    let r = rsp(&only_iu(&h.done(ch, ops[0].0, Ok(vec![9; 512]))));
    assert_eq!((r.status, r.flags & 0x0C, r.do_resid), (2, 0x04, 512));
    assert_eq!(h.image(0, 30, 2), before);
}

#[test]
fn sense_data_and_luns() {
    let mut h = H::new(cfg());
    let ch = h.login();
    // LBA out of range: CHECK CONDITION with fixed-format sense.
    let acts = h.iu(
        ch,
        &cmd(7, 1, &rw10(READ10, 63, 2), 0x01, 0, 0, &direct(0, 1, 1024)),
    );
    assert!(rdma(&acts).is_empty());
    let r = rsp(&only_iu(&acts));
    assert_eq!((r.status, r.flags & 0x03), (2, 0x02));
    assert_eq!(r.sense.len(), 18);
    assert_eq!(
        (r.sense[0], r.sense[2] & 0x0F, r.sense[12]),
        (0x70, 5, 0x21)
    );
    assert_eq!((r.flags & 0x30, r.di_resid), (0x20, 1024));
    // A LUN without a logical unit: LOGICAL UNIT NOT SUPPORTED.
    let r = rsp(&only_iu(&h.iu(ch, &cmd(8, 9, &[0; 6], 0, 0, 0, &[]))));
    assert_eq!((r.status, r.sense[12]), (2, 0x25));
    // Two LUNs, two images.
    for l in [0u16, 1] {
        let ops = rdma(&h.iu(
            ch,
            &cmd(9, l, &rw10(READ10, 3, 1), 0x01, 0, 0, &direct(0, 1, 512)),
        ));
        assert_eq!(ops[0].4.as_deref().unwrap(), &pattern(l, 3)[..]);
        h.done(ch, ops[0].0, Ok(vec![]));
    }
}

#[test]
fn sense_cut_to_the_response_size() {
    let mut h = H::new(SrptConfig {
        max_rsp_size: 40,
        ..cfg()
    });
    let ch = h.login();
    let r = rsp(&only_iu(&h.iu(ch, &cmd(7, 9, &[0; 6], 0, 0, 0, &[]))));
    assert_eq!((r.status, r.flags & 0x02, r.sense.len()), (2, 0x02, 4));
    assert_eq!(r.sense, [0x70, 0, 0x05, 0]);
}

#[test]
fn credits_and_overrun() {
    let mut h = H::new(SrptConfig {
        req_lim: 3,
        ..cfg()
    });
    let ch = h.login();
    let mut tokens = Vec::new();
    for tag in 0..3u64 {
        let iu = cmd(
            tag,
            0,
            &rw10(WRITE10, tag as u32, 1),
            0x10,
            0,
            0,
            &direct(0, 1, 512),
        );
        tokens.push(rdma(&h.iu(ch, &iu))[0].0);
    }
    assert_eq!(h.t.channel(ch).unwrap().credits, 0);
    // Beyond the limit: not executed, TASK SET FULL, its credit back.
    let acts = h.iu(
        ch,
        &cmd(99, 0, &rw10(WRITE10, 9, 1), 0x10, 0, 0, &direct(0, 1, 512)),
    );
    assert!(rdma(&acts).is_empty());
    let r = rsp(&only_iu(&acts));
    assert_eq!((r.tag, r.status, r.delta), (99, 0x28, 1));
    let r = rsp(&only_iu(&h.iu(ch, &tsk(100, lun(0), 0x08, 0))));
    assert_eq!((r.flags, r.resp[3], r.delta), (0x01, 5, 1));
    assert_eq!(h.t.stats().credit_overruns, 2);
    assert_eq!(h.t.channel(ch).unwrap().credits, 0);
    for t in tokens {
        let r = rsp(&only_iu(&h.done(ch, t, Ok(vec![0; 512]))));
        assert_eq!(r.delta, 1);
    }
    assert_eq!(h.t.channel(ch).unwrap().credits, 3);
    assert_eq!(h.t.stats().commands, 3);
}

#[test]
fn task_management() {
    let mut h = H::new(cfg());
    let ch = h.login();
    let write = |tag: u64, l: u16| {
        cmd(
            tag,
            l,
            &rw10(WRITE10, 40, 1),
            0x10,
            0,
            0,
            &direct(0, 1, 512),
        )
    };
    let t1 = rdma(&h.iu(ch, &write(0x10, 0)))[0].0;
    // ABORT TASK of the pending tag: complete, its credit on this response.
    let r = rsp(&only_iu(&h.iu(ch, &tsk(0x8000_0001, lun(0), 0x01, 0x10))));
    assert_eq!((r.tag, r.status, r.flags), (0x8000_0001, 0, 0x01));
    assert_eq!((r.resp, r.delta), (vec![0, 0, 0, 0], 2));
    assert_eq!(h.t.channel(ch).unwrap().credits, 128);
    // Its RDMA completion finds nothing; nothing written, nothing answered.
    let before = h.image(0, 40, 1);
    assert!(h.done(ch, t1, Ok(vec![0xEE; 512])).is_empty());
    assert_eq!(h.image(0, 40, 1), before);
    // ABORT TASK of a tag not pending: failed.
    let r = rsp(&only_iu(&h.iu(ch, &tsk(2, lun(0), 0x01, 0x4242))));
    assert_eq!(r.resp[3], 5);
    // LOGICAL UNIT RESET aborts what is pending at that LUN only.
    let _ = rdma(&h.iu(ch, &write(0x20, 0)));
    let t_other = rdma(&h.iu(ch, &write(0x21, 1)))[0].0;
    let r = rsp(&only_iu(&h.iu(ch, &tsk(3, lun(0), 0x08, 0))));
    assert_eq!((r.resp[3], r.delta), (0, 2));
    assert_eq!(h.t.stats().aborted_tasks, 2);
    assert_eq!(
        rsp(&only_iu(&h.done(ch, t_other, Ok(vec![0; 512])))).tag,
        0x21
    );
    // ABORT TASK SET and CLEAR TASK SET complete.
    assert_eq!(
        rsp(&only_iu(&h.iu(ch, &tsk(4, lun(1), 0x02, 0)))).resp[3],
        0
    );
    assert_eq!(
        rsp(&only_iu(&h.iu(ch, &tsk(5, lun(1), 0x04, 0)))).resp[3],
        0
    );
    // CLEAR ACA and an undefined function: not supported.
    assert_eq!(
        rsp(&only_iu(&h.iu(ch, &tsk(6, lun(0), 0x40, 0)))).resp[3],
        4
    );
    assert_eq!(
        rsp(&only_iu(&h.iu(ch, &tsk(7, lun(0), 0x80, 0)))).resp[3],
        4
    );
    // Any function at a LUN without a logical unit: failed.
    assert_eq!(
        rsp(&only_iu(&h.iu(ch, &tsk(8, lun(5), 0x08, 0)))).resp[3],
        5
    );
    assert_eq!(h.t.stats().tsk_mgmt, 8);
    assert_eq!(h.t.channel(ch).unwrap().credits, 128);
}

#[test]
fn rdma_failure_tears_the_channel_down() {
    let mut h = H::new(cfg());
    let ch = h.login();
    let iu = cmd(1, 0, &rw10(WRITE10, 0, 1), 0x10, 0, 0, &direct(0, 1, 512));
    let t = rdma(&h.iu(ch, &iu))[0].0;
    let acts = h.done(ch, t, Err(RdmaFailure::RemoteAccess));
    assert!(ius(&acts).is_empty());
    assert!(closed(&acts, ch));
    only_mad(&acts, 0x0015);
    let info = h.t.channel(ch).unwrap();
    assert_eq!(
        (info.state, info.qp_open, info.pending_commands),
        (ChannelState::Disconnecting, false, 0)
    );
    assert_eq!(h.t.stats().error_count(ErrorKind::RdmaFailed), 1);
    // A read returning the wrong length is treated the same way.
    let mut r = Req::new();
    r.comm_id = 3;
    r.qpn = 0x33;
    let (ch, _) = h.login_with(&r);
    let t = rdma(&h.iu(ch, &iu))[0].0;
    assert!(closed(&h.done(ch, t, Ok(vec![0; 100])), ch));
    assert_eq!(h.t.stats().error_count(ErrorKind::RdmaLength), 1);
    // And a QP error reported by the world.
    let mut r = Req::new();
    r.comm_id = 4;
    r.qpn = 0x34;
    let (ch, _) = h.login_with(&r);
    let acts = h.t.on_channel_error(ch);
    assert!(closed(&acts, ch));
    only_mad(&acts, 0x0015);
}

#[test]
fn target_initiated_ius() {
    let mut h = H::new(cfg());
    let mut req = Req::new();
    req.login.flags = 0x10 | 0x40; // LOSOLNT, AESOLNT
    let (ch, _) = h.login_with(&req);
    let t = only_iu(&h.t.send_t_logout(ch, 3));
    assert_eq!(t.len(), 16);
    assert_eq!((t[0], t[1], be32(&t, 4)), (0x80, 0x01, 3));
    let c = only_iu(&h.t.send_cred_req(ch, -2));
    assert_eq!(c.len(), 16);
    assert_eq!((c[0], c[1], be32(&c, 4)), (0x81, 0x00, 0xFFFF_FFFE));
    assert_eq!(h.t.channel(ch).unwrap().credits, 126);
    let ctag = be64(&c, 8);
    assert_ne!(ctag, be64(&t, 8));
    let a = only_iu(&h.t.send_aer_req(ch, lun(1), &[0x70, 0, 6]));
    assert_eq!(a.len(), 39);
    assert_eq!((a[0], a[1], be32(&a, 4)), (0x82, 0x01, 0));
    assert_eq!(&a[20..28], &lun(1));
    assert_eq!(be32(&a, 28), 3);
    assert_eq!(&a[36..], &[0x70, 0, 6]);
    // The initiator's answers, 16 bytes each: opcode and the tag.
    let answer = |op: u8, tag: u64| {
        let mut b = vec![0u8; 16];
        b[0] = op;
        b[8..16].copy_from_slice(&tag.to_be_bytes());
        b
    };
    assert!(h.iu(ch, &answer(0x41, ctag)).is_empty());
    assert!(h.iu(ch, &answer(0x42, be64(&a, 8))).is_empty());
    assert_eq!(h.t.stats().target_req_answers, 2);
    assert!(h.iu(ch, &answer(0x41, ctag)).is_empty());
    assert_eq!(h.t.stats().error_count(ErrorKind::UnknownTargetTag), 1);
    // AER sense is cut to the response size.
    let a = only_iu(&h.t.send_aer_req(ch, lun(0), &[0u8; 400]));
    assert_eq!((a.len(), be32(&a, 28)), (256, 220));
    // Nothing can be sent on a channel that does not exist.
    assert!(h.t.send_t_logout(ChannelId(999), 0).is_empty());
    assert_eq!(h.t.stats().error_count(ErrorKind::CannotSend), 1);
}

#[test]
fn i_logout_disconnects() {
    let mut h = H::new(cfg());
    let (ch, rep) = h.login_with(&Req::new());
    let mut lo = vec![0u8; 16];
    lo[0] = 0x03;
    lo[15] = 1;
    let acts = h.iu(ch, &lo);
    only_mad(&acts, 0x0015);
    let acts = h.mad(&cm_mad(0x0016, 1, Req::new().comm_id, be32(&rep, pl(0))));
    assert!(closed(&acts, ch));
}

// ---------------------------------------------------------------------------------
// Hostile input and faults.

#[test]
fn hostile_ius() {
    let mut h = H::new(cfg());
    let ch = h.login();
    let read = rw10(READ10, 0, 1);
    let busy = |h: &mut H, iu: &[u8], tag: u64| {
        let r = rsp(&only_iu(&h.iu(ch, iu)));
        assert_eq!(
            (r.tag, r.status, r.flags, r.delta),
            (tag, 0x08, 0, 1),
            "{iu:02x?}"
        );
    };
    // Shorter than a tag: nothing to answer; the credit comes back later.
    assert!(h.iu(ch, &[0x02, 0, 0, 0, 0]).is_empty());
    assert_eq!(h.t.channel(ch).unwrap().credits, 127);
    // A tag but not 48 bytes: BUSY (ib_srpt's answer to what it cannot parse).
    let full = cmd(0x31, 0, &read, 0x01, 0, 0, &direct(0, 1, 512));
    let r = rsp(&only_iu(&h.iu(ch, &full[..30])));
    assert_eq!((r.tag, r.status, r.delta), (0x31, 0x08, 2));
    assert_eq!(h.t.channel(ch).unwrap().credits, 128);
    // Descriptor past the IU.
    busy(&mut h, &full[..60], 0x31);
    // External table: 4 entries, 2 inline.
    let two = [(0, 1, 256), (0x100, 1, 256)];
    busy(
        &mut h,
        &cmd(0x32, 0, &read, 0x02, 0, 2, &indirect(64, 512, &two)),
        0x32,
    );
    // TOTAL LENGTH not the sum.
    busy(
        &mut h,
        &cmd(0x33, 0, &read, 0x02, 0, 2, &indirect(32, 1000, &two)),
        0x33,
    );
    // Absurd count.
    busy(
        &mut h,
        &cmd(0x34, 0, &read, 0x02, 0, 255, &indirect(32, 512, &two)),
        0x34,
    );
    // Undefined format, count without a buffer, immediate for DATA-IN.
    busy(&mut h, &cmd(0x35, 0, &read, 0x05, 0, 0, &[]), 0x35);
    busy(&mut h, &cmd(0x36, 0, &read, 0x00, 3, 0, &[]), 0x36);
    busy(&mut h, &cmd(0x37, 0, &read, 0x03, 0, 0, &[0; 4]), 0x37);
    // Additional CDB length beyond the IU.
    let mut add = cmd(0x38, 0, &read, 0, 0, 0, &[]);
    add[31] = 64;
    busy(&mut h, &add, 0x38);
    // More than max_transfer_len.
    busy(
        &mut h,
        &cmd(0x39, 0, &read, 0x01, 0, 0, &direct(0, 1, 32 << 20)),
        0x39,
    );
    assert_eq!(h.t.stats().error_count(ErrorKind::Iu), 10);
    assert_eq!(h.t.stats().error_count(ErrorKind::TransferTooLong), 1);
    // Unknown and target-to-initiator opcodes: counted, ignored.
    assert!(h.iu(ch, &[0x77; 40]).is_empty());
    assert!(h.iu(ch, &[0xC1; 40]).is_empty());
    assert!(h.iu(ch, &[]).is_empty());
    assert_eq!(h.t.stats().error_count(ErrorKind::UnexpectedIu), 2);
    assert_eq!(h.t.channel(ch).unwrap().credits, 128);
    assert_eq!(h.t.stats().commands, 0);
    // A SEND longer than the receive buffers fails the QP.
    let acts = h.iu(ch, &vec![0x02; 8277]);
    assert!(closed(&acts, ch));
    assert_eq!(h.t.stats().error_count(ErrorKind::IuTooLong), 1);
    // IUs for a channel that does not exist.
    assert!(h.iu(ChannelId(77), &full).is_empty());
    assert_eq!(h.t.stats().error_count(ErrorKind::UnknownChannel), 1);
}

#[test]
fn bad_descriptors_as_check_condition_and_direct_only() {
    let mut h = H::new(SrptConfig {
        bad_cmd_reply: BadCmdReply::CheckCondition,
        indirect_ok: false,
        ..cfg()
    });
    let ch = h.login();
    let two = [(0, 1, 256), (0x100, 1, 256)];
    let iu = cmd(
        0x41,
        0,
        &rw10(READ10, 0, 1),
        0x02,
        0,
        2,
        &indirect(32, 512, &two),
    );
    let r = rsp(&only_iu(&h.iu(ch, &iu)));
    assert_eq!((r.status, r.flags), (2, 0x02));
    assert_eq!(
        (r.sense[2] & 0x0F, r.sense[12], r.sense[13]),
        (5, 0x0E, 0x03)
    );
    assert_eq!(h.t.stats().error_count(ErrorKind::FormatNotNegotiated), 1);
}

#[test]
fn malformed_response_faults() {
    let mut h = H::new(cfg());
    let ch = h.login();
    let tur = |tag: u64| cmd(tag, 0, &[0; 6], 0, 0, 0, &[]);
    h.t.set_fault(SrptFault::MalformNextRsp(MalformedRsp::Short));
    assert_eq!(only_iu(&h.iu(ch, &tur(1))).len(), 20);
    h.t.set_fault(SrptFault::MalformNextRsp(MalformedRsp::UnknownTag));
    let iu = only_iu(&h.iu(ch, &tur(2)));
    assert_eq!(be64(&iu, 8), !2u64);
    h.t.set_fault(SrptFault::MalformNextRsp(MalformedRsp::UnknownOpcode));
    assert_eq!(only_iu(&h.iu(ch, &tur(3)))[0], 0xC7);
    h.t.set_fault(SrptFault::MalformNextRsp(MalformedRsp::SenseBeyondIu));
    let iu = only_iu(&h.iu(ch, &tur(4)));
    assert_eq!(iu[18] & 0x02, 0x02);
    assert!(be32(&iu, 28) as usize > iu.len());
    // One-shot: the next is whole again.
    assert_eq!(rsp(&only_iu(&h.iu(ch, &tur(5)))).tag, 5);
    // Drop the next IU without answer.
    h.t.set_fault(SrptFault::DropNextIu);
    assert!(h.iu(ch, &tur(6)).is_empty());
    assert_eq!(h.t.stats().ius_dropped, 1);
    assert_eq!(rsp(&only_iu(&h.iu(ch, &tur(7)))).tag, 7);
    // Cleared faults.
    h.t.set_fault(SrptFault::RejectLogins(0x0001_0001));
    h.t.set_fault(SrptFault::None);
    let mut r = Req::new();
    r.comm_id = 8;
    r.qpn = 8;
    assert!(opened(&h.mad(&r.mad())).is_some());
}

// ---------------------------------------------------------------------------------
// Seeded random input.

/// xorshift64* (Vigna): deterministic, no crates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_and_mutated_input_never_panics() {
    let mut h = H::new(SrptConfig {
        req_lim: 16,
        max_req_it_iu_len: 2116,
        ..cfg()
    });
    let mut rng = Rng(0x5EED_5EED_1234_5678);
    let mut seeds_iu: Vec<Vec<u8>> = vec![
        cmd(
            1,
            0,
            &rw10(READ10, 1, 1),
            0x01,
            0,
            0,
            &direct(0x1000, 1, 512),
        ),
        cmd(
            2,
            1,
            &rw10(WRITE10, 2, 2),
            0x20,
            2,
            0,
            &indirect(32, 1024, &[(0, 1, 512), (512, 1, 512)]),
        ),
        cmd(
            3,
            0,
            &rw10(READ10, 0, 2),
            0x02,
            0,
            2,
            &indirect(32, 1024, &[(0, 1, 700), (0, 1, 324)]),
        ),
        cmd(4, 0, &[0x12, 0, 0, 0, 36, 0], 0x01, 0, 0, &direct(0, 1, 36)),
        tsk(5, lun(0), 0x01, 1),
        tsk(6, lun(1), 0x08, 0),
        vec![0x41; 16],
        vec![0x03; 16],
    ];
    seeds_iu.push({
        let mut v = vec![0u8; 16];
        v[0] = 0x42;
        v
    });
    // Logins keep their siblings (MULTI) but for one seed in eight (SINGLE).
    let multi = {
        let mut r = Req::new();
        r.login.flags = 0x01;
        r.mad()
    };
    let mut seeds_mad: Vec<[u8; 256]> = vec![multi, multi, multi, multi, multi, multi];
    seeds_mad.push(Req::new().mad());
    seeds_mad.push(cm_mad(0x0014, 1, 1, 0x5352_0001));
    seeds_mad.push(dreq_mad(2, 1, 0x5352_0001, 0x100));
    seeds_mad.push(cm_mad(0x0016, 3, 1, 0x5352_0001));
    seeds_mad.push(cm_mad(0x0012, 4, 1, 0x5352_0001));
    seeds_mad.push(cm_mad(0x0011, 5, 1, 0x5352_0001));
    let mut pending: Vec<(ChannelId, u64, Option<u32>)> = Vec::new();
    let mut channels: Vec<ChannelId> = Vec::new();
    let mut sent_ius = 0u64;
    for i in 0..5000u32 {
        let acts = match rng.below(10) {
            0..=1 => {
                let mut m = seeds_mad[rng.below(seeds_mad.len() as u64) as usize];
                // Vary the identity so that logins and duplicates both happen.
                if rng.below(2) == 0 {
                    let who = rng.next() as u8;
                    m[pl(3)] = who;
                    m[pl(34)] = who;
                    if rng.below(4) == 0 {
                        m[pl(34)] ^= 1; // same comm ID or same QPN: duplicate or stale
                    }
                }
                for _ in 0..rng.below(6) {
                    let at = if rng.below(3) == 0 {
                        rng.below(24)
                    } else {
                        24 + rng.below(232)
                    } as usize;
                    m[at] = rng.next() as u8;
                }
                h.mad(&m)
            }
            2..=7 if !channels.is_empty() => {
                // Mostly a channel that is up; now and then any, dead ones included.
                let live: Vec<ChannelId> =
                    h.t.channels()
                        .filter(|(_, c)| c.state != ChannelState::Disconnecting)
                        .map(|(id, _)| id)
                        .collect();
                let ch = if live.is_empty() || rng.below(10) == 0 {
                    channels[rng.below(channels.len() as u64) as usize]
                } else {
                    live[rng.below(live.len() as u64) as usize]
                };
                let mut iu = if rng.below(8) == 0 {
                    (0..rng.below(120)).map(|_| rng.next() as u8).collect()
                } else {
                    seeds_iu[rng.below(seeds_iu.len() as u64) as usize].clone()
                };
                for _ in 0..rng.below(4) {
                    if !iu.is_empty() {
                        let at = rng.below(iu.len() as u64) as usize;
                        iu[at] = rng.next() as u8;
                    }
                }
                if rng.below(6) == 0 {
                    iu.truncate(rng.below(iu.len() as u64 + 1) as usize);
                }
                // The public parsers take any bytes too, whatever the target uses.
                let _ = iu::Cmd::parse(&iu);
                let _ = iu::Rsp::parse(&iu);
                let _ = iu::AerReq::parse(&iu);
                let _ = iu::TskMgmt::parse(&iu);
                let _ = iu::LoginReq::parse(&iu);
                let _ = iu::TargetReqRsp::parse(&iu);
                let _ = cm::ReqRepr::parse(&iu);
                h.iu(ch, &iu)
            }
            8 if !pending.is_empty() => {
                let (ch, token, len) =
                    pending.swap_remove(rng.below(pending.len() as u64) as usize);
                let result = match (rng.below(12), len) {
                    (0, _) => Err(RdmaFailure::RetryExceeded),
                    (1, Some(l)) => Ok(vec![0xAB; l as usize / 2]),
                    (_, Some(l)) => Ok(vec![0xCD; l as usize]),
                    (_, None) => Ok(Vec::new()),
                };
                h.done(ch, token, result)
            }
            _ => {
                let span = if rng.below(8) == 0 { 1 << 28 } else { 1 << 21 };
                h.now += rng.below(span);
                let now = h.now;
                let mut acts = Vec::new();
                if let Some(&ch) = channels.last() {
                    match rng.below(40) {
                        0 => acts.extend(h.t.disconnect(now, ch)),
                        1 => acts.extend(h.t.send_cred_req(ch, rng.below(2) as i32 - 1)),
                        2 => acts.extend(h.t.send_aer_req(ch, lun(0), &[0x70; 30])),
                        3 => acts.extend(h.t.send_t_logout(ch, 1)),
                        4 => h.t.set_fault(SrptFault::DropNextIu),
                        5 => h.t.set_fault(SrptFault::StaleNextReq),
                        6 => h.t.set_fault(SrptFault::DelayRep {
                            service_timeout: 10,
                            delay_ns: 1 << 20,
                        }),
                        7 => h.t.set_fault(SrptFault::None),
                        _ => {}
                    }
                }
                acts.extend(h.t.poll(now));
                acts
            }
        };
        for a in &acts {
            match a {
                Action::OpenChannel { channel, .. } => channels.push(*channel),
                Action::RdmaRead {
                    channel,
                    token,
                    len,
                    ..
                } => pending.push((*channel, *token, Some(*len))),
                Action::RdmaWrite { channel, token, .. } => pending.push((*channel, *token, None)),
                Action::SendIu { iu, .. } => {
                    sent_ius += 1;
                    assert!(iu.len() <= 256, "iteration {i}: IU of {} bytes", iu.len());
                    if iu[0] == 0xC1 {
                        rsp(iu);
                    }
                }
                Action::SendMad { mad, .. } => assert_eq!((mad[0], mad[1], mad[2]), (1, 7, 2)),
                Action::CloseChannel { .. } => {}
            }
        }
        for (_, info) in h.t.channels() {
            assert!(info.credits <= 16, "iteration {i}: {info:?}");
        }
    }
    let s = h.t.stats();
    assert!(s.logins_accepted > 100, "{s:?}");
    assert!(
        s.commands > 300 && s.tsk_mgmt > 100 && s.aborted_tasks > 20,
        "{s:?}"
    );
    assert!(
        sent_ius > 300 && s.rdma_reads > 100 && s.rdma_writes > 100,
        "{s:?}"
    );
    assert!(s.total_errors() > 1000, "{s:?}");
    assert!(
        s.mads_ignored > 0 && s.error_count(ErrorKind::Iu) > 0,
        "{s:?}"
    );
}
