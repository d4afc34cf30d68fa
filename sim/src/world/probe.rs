//! A fixture initiator for the world: one ConnectX function brought up by the access
//! layer, driven with byte fixtures built from reference/srp-cm-sa-dm.md (§1.1 IUs,
//! §1.4 CM, §1.5 SA) rather than by the SRP driver; and an SRP target over a disk
//! image. Shared by the simulator's tests and the `fabboot-sim fabric` command.
//!
//! Test equipment: a step that cannot go on (a command the model refuses, an image
//! that cannot be created) panics with what went wrong.

#![allow(missing_docs, clippy::missing_panics_doc)]

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::clock::Clock;
use crate::device::Mlx5Function;
use crate::device::port::state;
use crate::dm::{DmAgent, IocDescription};
use crate::hal::SimHal;
use crate::memory::HostMemory;
use crate::scenario::BAR0;
use crate::srpt::{SrpTarget, SrptConfig};
use crate::target::{BlockSize, Image, LogicalUnit, LuIdentity, Lun, Product, Target};
use crate::world::{Node, TargetNode, World};
use fabboot_hca::bringup::{self, BringupConfig, Hca};
use fabboot_hca::dma::{DmaRegion, Span};
use fabboot_hca::objects::{self, QpAttrs, RemoteAccess, ServiceType, Transition};
use fabboot_hca::plan::{MAD_RECV_SLOTS, MAD_SLOT, MemoryPlan, PlanConfig};
use fabboot_hca::resources::{self, GSI_QKEY, Queues, Resources};
use fabboot_hca::wqe::{AddressVector, Completion as Cqe, CqeOpcode, GRH_BYTES};

pub const TARGET_GUID: u64 = 0x0002_C903_00AB_CD01;
pub const BLOCKS: u64 = 4096;
/// Physical base of the host's memory.
pub const HOST_BASE: u64 = 0x1_0000_0000;
/// Bytes of data buffer after the access layer's plan.
pub const DATA_BYTES: usize = 1 << 20;

pub fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
pub fn be24(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([0, b[at], b[at + 1], b[at + 2]])
}
pub fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}
pub fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

/// MAD-absolute offset of CM payload offset `off` (reference §1.4).
pub const fn pl(off: usize) -> usize {
    24 + off
}

pub fn gid(prefix: u64, guid: u64) -> [u8; 16] {
    let mut g = [0u8; 16];
    g[..8].copy_from_slice(&prefix.to_be_bytes());
    g[8..].copy_from_slice(&guid.to_be_bytes());
    g
}

/// Block `lba` as first written: every byte names its block.
pub fn pattern(lba: u64) -> Vec<u8> {
    (0..512u32)
        .map(|i| (i as u8) ^ (lba as u8).wrapping_mul(31) ^ ((lba >> 8) as u8))
        .collect()
}

/// A disk image file removed when dropped.
pub struct TempImage(pub PathBuf);

impl Default for TempImage {
    fn default() -> Self {
        Self::new()
    }
}

impl TempImage {
    pub fn new() -> TempImage {
        static N: AtomicU32 = AtomicU32::new(0);
        TempImage(std::env::temp_dir().join(format!(
            "fabboot-world-{}-{}.img",
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

/// The target node, its LUN 0 an image of [`BLOCKS`] patterned blocks.
pub fn target_node(file: &TempImage) -> TargetNode {
    let mut image = Image::create(&file.0, BlockSize::B512, BLOCKS).unwrap();
    for lba in 0..64 {
        image.write(lba, &pattern(lba)).unwrap();
    }
    let mut target = Target::new(Product::simulated());
    target
        .add(
            Lun::new(0).unwrap(),
            LogicalUnit::new(image, LuIdentity::simulated(0)),
        )
        .unwrap();
    let port_guid = TARGET_GUID + 1;
    let cfg = SrptConfig::ib_srpt(TARGET_GUID, gid(0xFE80_0000_0000_0000, port_guid), 0);
    let dm = DmAgent::new(IocDescription::srp_target(TARGET_GUID, 0x0002C9, 0x1017, 1)).unwrap();
    TargetNode::new(port_guid, SrpTarget::new(cfg, target), dm)
}

/// The initiator's host: memory, the function and the access layer's objects, plus
/// a key with remote rights for the target's RDMA.
pub struct Host<'a> {
    pub dev: &'a Mlx5Function,
    pub hal: SimHal<'a>,
    pub dma: DmaRegion,
    pub plan: MemoryPlan,
    pub hca: Hca,
    pub res: Resources,
    pub q: Queues,
    pub rkey: u32,
    next_recv: usize,
    next_send: usize,
}

pub fn host_memory() -> HostMemory {
    HostMemory::new(
        MemoryPlan::new(PlanConfig::BOOT).total + DATA_BYTES,
        HOST_BASE,
    )
}

pub fn function(clock: &Clock, memory: &HostMemory) -> Rc<Mlx5Function> {
    let dev = Rc::new(Mlx5Function::connectx4(BAR0, clock.clone()));
    dev.attach_memory(memory.region());
    dev
}

impl<'a> Host<'a> {
    /// Brings the function up (before the world runs: commands take no fabric time).
    pub fn up(dev: &'a Mlx5Function, memory: &HostMemory, clock: &Clock) -> Host<'a> {
        let plan = MemoryPlan::new(PlanConfig::BOOT);
        let hal = SimHal::new(dev, clock.clone());
        let dma = memory.region();
        let mut hca = bringup::bring_up(&hal, &dma, plan, BringupConfig::BOOT).unwrap();
        let res = resources::open(&mut hca, &hal, &dma).unwrap();
        let q = Queues::new(&plan, &res);
        let remote = RemoteAccess {
            read: true,
            write: true,
        };
        let rkey = objects::create_pa_mkey(&mut hca.cmd, &hal, &dma, res.pd, 0x42, remote).unwrap();
        Host {
            dev,
            hal,
            dma,
            plan,
            hca,
            res,
            q,
            rkey,
            next_recv: 0,
            next_send: 0,
        }
    }

    pub fn lid(&self) -> u16 {
        self.dev.firmware().port.lid
    }

    pub fn sm_lid(&self) -> u16 {
        self.dev.firmware().port.sm_lid
    }

    pub fn active(&self) -> bool {
        self.dev.firmware().port.state == state::ACTIVE
    }

    pub fn gid(&self) -> [u8; 16] {
        let fw = self.dev.firmware();
        gid(fw.port.gid_prefix, fw.port.port_guid)
    }

    /// Offset in the region, and physical address, of the data area.
    pub fn data(&self) -> (usize, u64) {
        (self.plan.total, HOST_BASE + self.plan.total as u64)
    }

    fn recv_slot(&self, i: usize) -> [Span; 2] {
        let at = self.plan.mad_buffers.offset + i * MAD_SLOT;
        [
            Span {
                offset: at,
                len: GRH_BYTES,
            },
            Span {
                offset: at + GRH_BYTES,
                len: 256,
            },
        ]
    }

    /// Posts a QP1 receive; returns where its MAD will land.
    pub fn post_mad_recv(&mut self) -> usize {
        let i = self.next_recv % MAD_RECV_SLOTS;
        self.next_recv += 1;
        let slot = self.recv_slot(i);
        self.q.gsi_rq.post(&self.dma, &slot).unwrap();
        slot[1].offset
    }

    /// Sends a MAD from QP1 to QP1 at `dlid`.
    pub fn send_mad(&mut self, dlid: u16, mad: &[u8; 256]) {
        let i = self.next_send % 4;
        self.next_send += 1;
        let buf = Span {
            offset: self.plan.mad_buffers.offset + MAD_RECV_SLOTS * MAD_SLOT + i * 256,
            len: 256,
        };
        self.dma.write(buf.offset, mad).unwrap();
        let to = AddressVector {
            dqpn: 1,
            qkey: GSI_QKEY,
            dlid,
            sl: 0,
            path_bits: 0,
        };
        self.q
            .gsi_sq
            .post_ud_send(&self.hal, &self.dma, &to, buf)
            .unwrap();
    }

    /// Completions of QP1: receives come back as their MAD bytes.
    pub fn poll_mads(&mut self, slots: &mut Vec<usize>) -> Vec<[u8; 256]> {
        let mut got = Vec::new();
        while let Some(c) = self.q.gsi_cq.poll(&self.dma).unwrap() {
            match c.opcode {
                CqeOpcode::RespSend => {
                    let at = slots.remove(0);
                    let mut m = [0u8; 256];
                    self.dma.read(at, &mut m).unwrap();
                    got.push(m);
                }
                _ => self.q.gsi_sq.complete(c.wqe_counter),
            }
        }
        got
    }

    /// Brings the RC QP to RTS towards `remote_qpn` at `rlid`.
    pub fn connect(&mut self, remote_qpn: u32, rlid: u16, rq_psn: u32, sq_psn: u32) {
        let attrs = QpAttrs {
            port: 1,
            mtu: 5,
            remote_qpn,
            rlid,
            rq_psn,
            sq_psn,
            retry_count: 7,
            rnr_retry: 7,
            ack_timeout: 14,
            log_rra_max: 2,
            log_sra_max: 2,
            remote_read: true,
            remote_write: true,
            ..QpAttrs::default()
        };
        for t in [
            Transition::Rst2Init,
            Transition::Init2Rtr,
            Transition::Rtr2Rts,
        ] {
            objects::modify_qp(
                &mut self.hca.cmd,
                &self.hal,
                &self.dma,
                self.res.rc_qpn,
                ServiceType::Rc,
                t,
                &attrs,
            )
            .unwrap();
        }
    }

    /// The IU receive buffer `i` of the RC QP.
    pub fn iu_slot(&self, i: usize) -> Span {
        Span {
            offset: self.plan.iu_buffers.offset + i * 256,
            len: 256,
        }
    }

    pub fn post_iu_recv(&mut self, i: usize) {
        let s = self.iu_slot(i);
        self.q.rc_rq.post(&self.dma, &[s]).unwrap();
    }

    pub fn send_iu(&mut self, iu: &[u8]) {
        let at = self.iu_slot(60);
        self.dma.write(at.offset, iu).unwrap();
        self.q
            .rc_sq
            .post_rc_send(
                &self.hal,
                &self.dma,
                Span {
                    offset: at.offset,
                    len: iu.len(),
                },
            )
            .unwrap();
    }

    /// RC completions so far (send completions retire their WQEs).
    pub fn poll_rc(&mut self) -> Vec<Cqe> {
        let mut out = Vec::new();
        while let Some(c) = self.q.rc_cq.poll(&self.dma).unwrap() {
            if c.opcode == CqeOpcode::Req || (c.is_error() && c.qpn == self.res.rc_qpn) {
                self.q.rc_sq.complete(c.wqe_counter);
            }
            out.push(c);
        }
        out
    }
}

/// A node list: the host's function on port 1, the target on port 2.
pub fn nodes(dev: &Rc<Mlx5Function>, target: TargetNode) -> Vec<Node> {
    vec![Node::Host(dev.clone()), Node::Target(Box::new(target))]
}

// -------------------------------------------------------------------------------
// Byte fixtures from reference/srp-cm-sa-dm.md (§1.1 IUs, §1.4 CM, §1.5 SA).

/// SA PathRecord Get for SGID → DGID with NumbPath 1 and the default P_Key
/// (ComponentMask DGID | SGID | NumbPath | P_Key, as ib_srp sends it).
pub fn path_query(tid: u64, sgid: [u8; 16], dgid: [u8; 16]) -> [u8; 256] {
    let mut m = [0u8; 256];
    m[0] = 1;
    m[1] = 0x03;
    m[2] = 2;
    m[3] = 0x01;
    m[8..16].copy_from_slice(&tid.to_be_bytes());
    m[16..18].copy_from_slice(&0x0035u16.to_be_bytes());
    let mask: u64 = 1 << 2 | 1 << 3 | 1 << 12 | 1 << 13;
    m[48..56].copy_from_slice(&mask.to_be_bytes());
    m[56 + 8..56 + 24].copy_from_slice(&dgid);
    m[56 + 24..56 + 40].copy_from_slice(&sgid);
    m[56 + 49] = 1;
    m[56 + 50..56 + 52].copy_from_slice(&0xFFFFu16.to_be_bytes());
    m
}

/// An SRP_LOGIN_REQ (64 bytes; §1.1).
pub fn login_req(
    tag: u64,
    it_iu_len: u32,
    initiator_guid: u64,
    target_port_id: [u8; 16],
) -> [u8; 64] {
    let mut b = [0u8; 64];
    b[8..16].copy_from_slice(&tag.to_be_bytes());
    b[16..20].copy_from_slice(&it_iu_len.to_be_bytes());
    b[24..26].copy_from_slice(&0x0006u16.to_be_bytes()); // direct and indirect
    b[26] = 0x01; // SINGLE_CHANNEL
    b[40..48].copy_from_slice(&initiator_guid.to_be_bytes());
    b[48..64].copy_from_slice(&target_port_id);
    b
}

/// The target port ID of the test target (id_ext ‖ IOC GUID, §3.1).
pub fn target_port_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&TARGET_GUID.to_be_bytes());
    id[8..].copy_from_slice(&TARGET_GUID.to_be_bytes());
    id
}

/// A CM REQ (Table 106, §1.4) carrying `login`.
#[allow(clippy::too_many_arguments)]
pub fn cm_req(
    tid: u64,
    comm_id: u32,
    service_id: u64,
    local_guid: u64,
    qpn: u32,
    psn: u32,
    local_lid: u16,
    remote_lid: u16,
    local_gid: [u8; 16],
    remote_gid: [u8; 16],
    login: &[u8; 64],
) -> [u8; 256] {
    let mut m = [0u8; 256];
    m[0] = 1;
    m[1] = 0x07;
    m[2] = 2;
    m[3] = 0x03;
    m[8..16].copy_from_slice(&tid.to_be_bytes());
    m[16..18].copy_from_slice(&0x0010u16.to_be_bytes());
    m[pl(0)..pl(4)].copy_from_slice(&comm_id.to_be_bytes());
    m[pl(8)..pl(16)].copy_from_slice(&service_id.to_be_bytes());
    m[pl(16)..pl(24)].copy_from_slice(&local_guid.to_be_bytes());
    m[pl(32)..pl(35)].copy_from_slice(&qpn.to_be_bytes()[1..]);
    m[pl(35)] = 4; // responder resources
    m[pl(39)] = 4; // initiator depth
    m[pl(43)] = 20 << 3 | 1; // remote CM response timeout, RC, end-to-end flow control
    m[pl(44)..pl(47)].copy_from_slice(&psn.to_be_bytes()[1..]);
    m[pl(47)] = 20 << 3 | 7; // local CM response timeout, retry count 7
    m[pl(48)..pl(50)].copy_from_slice(&0xFFFFu16.to_be_bytes());
    m[pl(50)] = 5 << 4 | 7; // path MTU 4096, RNR retry 7
    m[pl(51)] = 15 << 4; // max CM retries
    m[pl(52)..pl(54)].copy_from_slice(&local_lid.to_be_bytes());
    m[pl(54)..pl(56)].copy_from_slice(&remote_lid.to_be_bytes());
    m[pl(56)..pl(72)].copy_from_slice(&local_gid);
    m[pl(72)..pl(88)].copy_from_slice(&remote_gid);
    m[pl(93)] = 1; // hop limit
    m[pl(94)] = 0x08; // SL 0, subnet local
    m[pl(95)] = 14 << 3; // local ACK timeout
    m[pl(140)..pl(204)].copy_from_slice(login);
    m
}

/// A CM RTU for the connection the REP set up.
pub fn cm_rtu(tid: u64, local: u32, remote: u32) -> [u8; 256] {
    let mut m = [0u8; 256];
    m[0] = 1;
    m[1] = 0x07;
    m[2] = 2;
    m[3] = 0x03;
    m[8..16].copy_from_slice(&tid.to_be_bytes());
    m[16..18].copy_from_slice(&0x0014u16.to_be_bytes());
    m[pl(0)..pl(4)].copy_from_slice(&local.to_be_bytes());
    m[pl(4)..pl(8)].copy_from_slice(&remote.to_be_bytes());
    m
}

/// An SRP_CMD (§1.1) with one direct descriptor for data-in or data-out.
pub fn srp_cmd(tag: u64, cdb: &[u8], data_in: bool, va: u64, rkey: u32, len: u32) -> Vec<u8> {
    let mut b = vec![0u8; 48];
    b[0] = 0x02;
    if data_in {
        b[5] = 0x01; // DATA-IN format: direct
        b[7] = 1;
    } else {
        b[5] = 0x10; // DATA-OUT format: direct
        b[6] = 1;
    }
    b[8..16].copy_from_slice(&tag.to_be_bytes());
    b[32..32 + cdb.len()].copy_from_slice(cdb);
    b.extend_from_slice(&va.to_be_bytes());
    b.extend_from_slice(&rkey.to_be_bytes());
    b.extend_from_slice(&len.to_be_bytes());
    b
}

pub fn rw10(op: u8, lba: u32, blocks: u16) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = op;
    c[2..6].copy_from_slice(&lba.to_be_bytes());
    c[7..9].copy_from_slice(&blocks.to_be_bytes());
    c
}

pub const READ10: u8 = 0x28;
pub const WRITE10: u8 = 0x2A;

// -------------------------------------------------------------------------------
// Driving the world from the host's side.

pub const MS: u64 = 1_000_000;

/// Sends `mad` to QP1 at `dlid` and waits up to `limit_ns` for a MAD back.
pub fn mad_round_trip(
    world: &mut World,
    host: &mut Host,
    dlid: u16,
    mad: &[u8; 256],
    limit_ns: u64,
) -> Option<[u8; 256]> {
    let mut slots = vec![host.post_mad_recv()];
    host.send_mad(dlid, mad);
    let mut got = None;
    world.run_while(limit_ns, |_| {
        if got.is_none() {
            got = host.poll_mads(&mut slots).into_iter().next();
        }
        got.is_some()
    });
    got
}

pub struct Session {
    pub target_lid: u16,
    pub req_lim: i32,
}

/// Logs in with a CM REQ fixture, connects the RC QP from the REP, sends the RTU.
pub fn login(world: &mut World, host: &mut Host) -> Session {
    let t = world.target(1).unwrap();
    let (target_lid, target_gid) = (t.port.lid, gid(t.port.gid_prefix, t.port.port_guid));
    for i in 0..8 {
        host.post_iu_recv(i);
    }
    let our_guid = host.dev.firmware().port.port_guid;
    let req = cm_req(
        0x51,
        0xC0DE_0001,
        TARGET_GUID,
        our_guid,
        host.res.rc_qpn,
        0x1234,
        host.lid(),
        target_lid,
        host.gid(),
        target_gid,
        &login_req(0x7A6, 1024, our_guid, target_port_id()),
    );
    let rep =
        mad_round_trip(world, host, target_lid, &req, 100 * MS).expect("an answer to the REQ");
    assert_eq!(
        (rep[1], be16(&rep, 16)),
        (0x07, 0x0013),
        "a CM REP: {:02x?}",
        &rep[..32]
    );
    let rsp = &rep[pl(36)..pl(36 + 52)];
    assert_eq!(rsp[0], 0xC0, "SRP_LOGIN_RSP in the REP's private data");
    assert_eq!(be64(rsp, 8), 0x7A6, "the login's tag");
    let (remote_qpn, start_psn) = (be24(&rep, pl(12)), be24(&rep, pl(20)));
    host.connect(remote_qpn, target_lid, start_psn, 0x1234);
    let comm_id = be32(&rep, pl(0));
    host.send_mad(target_lid, &cm_rtu(0x52, 0xC0DE_0001, comm_id));
    world.run_for(MS);
    Session {
        target_lid,
        req_lim: be32(rsp, 4) as i32,
    }
}

/// Sends an SRP_CMD and waits for the SRP_RSP; its bytes.
pub fn command(world: &mut World, host: &mut Host, iu: &[u8], limit_ns: u64) -> Option<Vec<u8>> {
    host.send_iu(iu);
    command_wait(world, host, limit_ns)
}

pub fn image_blocks(world: &mut World, lba: u64, blocks: usize) -> Vec<u8> {
    let t = world.target(1).unwrap();
    let lu = t.srpt.target().lu(Lun::new(0).unwrap()).unwrap();
    let mut b = vec![0u8; 512 * blocks];
    lu.image().read(lba, &mut b).unwrap();
    b
}

/// Waits for an SRP_RSP to a command already sent.
pub fn command_wait(world: &mut World, host: &mut Host, limit_ns: u64) -> Option<Vec<u8>> {
    let mut rsp = None;
    world.run_while(limit_ns, |_| {
        for c in host.poll_rc() {
            if c.opcode == fabboot_hca::wqe::CqeOpcode::RespSend {
                let slot = host.iu_slot(usize::from(c.wqe_counter) % 64);
                let mut b = vec![0u8; c.byte_cnt as usize];
                host.dma.read(slot.offset, &mut b).unwrap();
                // The receive ring stays eight deep: the slot eight ahead goes back.
                host.post_iu_recv(usize::from(c.wqe_counter.wrapping_add(8)) % 64);
                rsp = Some(b);
            }
        }
        rsp.is_some()
    });
    rsp
}
