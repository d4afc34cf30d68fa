//! The RC transport engine (`fabboot_sim::rc`), two QPs talking through a test wire
//! that serialises packets at a link rate, delays them, and can drop, duplicate,
//! reorder or hold them; the responder's memory is a few `Vec`-backed regions with
//! R_Keys and rights. Every packet a QP hands out is encoded and decoded on the way
//! (IBTA vol. 1 §5.3 layout, the wire module's `IbPacket`), so each must encode
//! cleanly and carry the length fields `decode` would give it.
//!
//! Figures (packets, virtual time, retransmissions) are printed by the tests that
//! measure them; run with `--nocapture` to see them.

use std::collections::HashMap;

use fabboot_sim::rc::{
    Completion, QpState, RcConfig, RcPath, RcQp, RemoteError, ResponderMemory, RxDrop, WcOpcode,
    WcStatus, WorkRequest, ack_req_interval, ack_timeout_from_code, psn, rnr_timer_ns, window_psns,
};
use fabboot_sim::wire::{
    AckKind, AethRepr, BthRepr, ExtHeaders, ExtKind, IbPacket, ImmDt, Lnh, LrhRepr, Opcode,
    RethRepr,
};

// ---------------------------------------------------------------------------------
// Test fixtures: a random source, memory, the wire, and a pair of QPs.
// ---------------------------------------------------------------------------------

/// A registered region: what an MKey covers and allows.
struct Region {
    rkey: u32,
    va: u64,
    bytes: Vec<u8>,
    read: bool,
    write: bool,
}

/// Read/write, read-only and write-only keys.
const RW_KEY: u32 = 0x0000_1000;
const RO_KEY: u32 = 0x0000_2000;
const WO_KEY: u32 = 0x0000_3000;
const RW_VA: u64 = 0x0001_0000_0000;
const RO_VA: u64 = 0x0002_0000_0000;
const WO_VA: u64 = 0x0003_0000_0000;
const RW_LEN: usize = (1 << 20) + 4096;
const SMALL_LEN: usize = 64 * 1024;

/// The responder's memory and receive queue.
struct Mem {
    regions: Vec<Region>,
    /// Receive buffers posted, each `recv_len` bytes.
    recv_posted: usize,
    recv_len: usize,
    /// No receive buffer is ready before this time.
    recv_ready_at: u64,
    /// The time of the packet being taken (set by the harness).
    now: u64,
    /// SEND messages delivered.
    received: Vec<Vec<u8>>,
    /// Successful writes and reads.
    writes: u64,
    reads: u64,
    /// Accesses the engine made without a passing check: writes or reads outside a
    /// region or its rights, a receive with no buffer posted.
    violations: u64,
}

impl Mem {
    fn new(seed: u64) -> Mem {
        let mut rng = Rng(seed | 1);
        Mem {
            regions: vec![
                Region {
                    rkey: RW_KEY,
                    va: RW_VA,
                    bytes: rng.bytes(RW_LEN),
                    read: true,
                    write: true,
                },
                Region {
                    rkey: RO_KEY,
                    va: RO_VA,
                    bytes: rng.bytes(SMALL_LEN),
                    read: true,
                    write: false,
                },
                Region {
                    rkey: WO_KEY,
                    va: WO_VA,
                    bytes: rng.bytes(SMALL_LEN),
                    read: false,
                    write: true,
                },
            ],
            recv_posted: 1000,
            recv_len: 1 << 20,
            recv_ready_at: 0,
            now: 0,
            received: Vec::new(),
            writes: 0,
            reads: 0,
            violations: 0,
        }
    }

    fn lookup(&self, rkey: u32, va: u64, len: u64, write: bool) -> Result<usize, RemoteError> {
        let i = self
            .regions
            .iter()
            .position(|r| r.rkey == rkey)
            .ok_or(RemoteError::Access)?;
        let r = &self.regions[i];
        let allowed = if write { r.write } else { r.read };
        let end = va.checked_add(len).ok_or(RemoteError::Access)?;
        if !allowed || va < r.va || end > r.va + r.bytes.len() as u64 {
            return Err(RemoteError::Access);
        }
        Ok(i)
    }

    /// `len` bytes of the region `rkey` at `va`.
    fn at(&self, rkey: u32, va: u64, len: usize) -> &[u8] {
        let r = self.regions.iter().find(|r| r.rkey == rkey).unwrap();
        let off = (va - r.va) as usize;
        &r.bytes[off..off + len]
    }

    fn snapshot(&self) -> Vec<Vec<u8>> {
        self.regions.iter().map(|r| r.bytes.clone()).collect()
    }
}

impl ResponderMemory for Mem {
    fn check(&self, rkey: u32, va: u64, len: u64, write: bool) -> Result<(), RemoteError> {
        self.lookup(rkey, va, len, write).map(|_| ())
    }

    fn write(&mut self, rkey: u32, va: u64, data: &[u8]) -> Result<(), RemoteError> {
        match self.lookup(rkey, va, data.len() as u64, true) {
            Ok(i) => {
                let r = &mut self.regions[i];
                let off = (va - r.va) as usize;
                r.bytes[off..off + data.len()].copy_from_slice(data);
                self.writes += 1;
                Ok(())
            }
            Err(e) => {
                self.violations += 1;
                Err(e)
            }
        }
    }

    fn read(&mut self, rkey: u32, va: u64, len: usize) -> Result<Vec<u8>, RemoteError> {
        match self.lookup(rkey, va, len as u64, false) {
            Ok(i) => {
                self.reads += 1;
                let r = &self.regions[i];
                let off = (va - r.va) as usize;
                Ok(r.bytes[off..off + len].to_vec())
            }
            Err(e) => {
                self.violations += 1;
                Err(e)
            }
        }
    }

    fn receive_ready(&self) -> bool {
        self.recv_posted > 0 && self.now >= self.recv_ready_at
    }

    fn receive(&mut self, message: &[u8]) -> Result<(), RemoteError> {
        if self.recv_posted == 0 {
            self.violations += 1;
            return Err(RemoteError::Operation);
        }
        if message.len() > self.recv_len {
            return Err(RemoteError::InvalidRequest);
        }
        self.recv_posted -= 1;
        self.received.push(message.to_vec());
        Ok(())
    }
}

/// One end of the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Side {
    A,
    B,
}

use Side::{A, B};

mod common;
use common::rng::Rng;

impl Side {
    fn idx(self) -> usize {
        match self {
            A => 0,
            B => 1,
        }
    }
}

/// What the wire does with one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Deliver,
    Drop,
    Duplicate,
    Delay(u64),
}

/// Decides a packet's fate: (time sent, sender, packet, how many times the same
/// sender sent the same opcode and PSN before).
type Filter = Box<dyn FnMut(u64, Side, &IbPacket, usize) -> Fate>;

/// A packet offered to the wire.
struct Sent {
    at: u64,
    from: Side,
    pkt: IbPacket,
    fate: Fate,
}

/// Two links, one each way, at `gbps` with `latency_ns` after serialisation.
struct Wire {
    gbps: u64,
    latency_ns: u64,
    busy_until: [u64; 2],
    rng: Rng,
    /// Random faults, in parts per million of packets.
    loss_ppm: u64,
    dup_ppm: u64,
    reorder_ppm: u64,
    /// A reordered packet is held up to this long.
    reorder_ns: u64,
    /// Everything sent or arriving in [start, end) is lost.
    down: Option<(u64, u64)>,
    filter: Option<Filter>,
    seen: HashMap<(Side, u8, u32), usize>,
    /// (arrival, sequence, receiver, packet)
    flight: Vec<(u64, u64, Side, IbPacket)>,
    seq: u64,
    log: Vec<Sent>,
}

impl Wire {
    /// 4x EDR-like: 100 Gb/s, 1 µs of cable and switch.
    fn new(seed: u64) -> Wire {
        Wire {
            gbps: 100,
            latency_ns: 1_000,
            busy_until: [0; 2],
            rng: Rng(seed | 1),
            loss_ppm: 0,
            dup_ppm: 0,
            reorder_ppm: 0,
            reorder_ns: 0,
            down: None,
            filter: None,
            seen: HashMap::new(),
            flight: Vec::new(),
            seq: 0,
            log: Vec::new(),
        }
    }

    fn is_down(&self, t: u64) -> bool {
        self.down.is_some_and(|(s, e)| t >= s && t < e)
    }

    fn send(&mut self, now: u64, from: Side, pkts: Vec<IbPacket>) {
        for pkt in pkts {
            let bytes = pkt.encode().unwrap_or_else(|e| {
                panic!("{from:?} sent a packet that does not encode: {e} {pkt:?}")
            });
            let decoded = IbPacket::decode(&bytes).expect("an encoded packet decodes");
            assert_eq!(
                decoded, pkt,
                "a packet as decode returns it, lengths included"
            );
            let start = now.max(self.busy_until[from.idx()]);
            let done = start + (bytes.len() as u64 * 8).div_ceil(self.gbps);
            self.busy_until[from.idx()] = done;
            let key = (from, pkt.bth.opcode.0, pkt.bth.psn);
            let nth = *self.seen.get(&key).unwrap_or(&0);
            self.seen.insert(key, nth + 1);
            let mut fate = match &mut self.filter {
                Some(f) => f(now, from, &pkt, nth),
                None => Fate::Deliver,
            };
            if fate == Fate::Deliver {
                let roll = self.rng.below(1_000_000);
                if roll < self.loss_ppm {
                    fate = Fate::Drop;
                } else if roll < self.loss_ppm + self.dup_ppm {
                    fate = Fate::Duplicate;
                } else if roll < self.loss_ppm + self.dup_ppm + self.reorder_ppm {
                    fate = Fate::Delay(1 + self.rng.below(self.reorder_ns));
                }
            }
            if self.is_down(now) {
                fate = Fate::Drop;
            }
            let to = match from {
                A => B,
                B => A,
            };
            let arrive = done + self.latency_ns;
            match fate {
                Fate::Deliver => self.push(arrive, to, decoded.clone()),
                Fate::Drop => {}
                Fate::Duplicate => {
                    self.push(arrive, to, decoded.clone());
                    self.push(arrive + 50, to, decoded.clone());
                }
                Fate::Delay(d) => self.push(arrive + d, to, decoded.clone()),
            }
            self.log.push(Sent {
                at: now,
                from,
                pkt: decoded,
                fate,
            });
        }
    }

    fn push(&mut self, at: u64, to: Side, pkt: IbPacket) {
        self.seq += 1;
        self.flight.push((at, self.seq, to, pkt));
    }

    fn next_at(&self) -> Option<u64> {
        self.flight.iter().map(|f| f.0).min()
    }

    /// The next packet due by `now`, in arrival order; packets arriving while the
    /// link is down are lost.
    fn pop_due(&mut self, now: u64) -> Option<(Side, IbPacket)> {
        loop {
            let i = self
                .flight
                .iter()
                .enumerate()
                .filter(|(_, f)| f.0 <= now)
                .min_by_key(|(_, f)| (f.0, f.1))
                .map(|(i, _)| i)?;
            let (at, _, to, pkt) = self.flight.swap_remove(i);
            if !self.is_down(at) {
                return Some((to, pkt));
            }
        }
    }

    /// Packets `from` offered, in order.
    fn sent_by(&self, from: Side) -> impl Iterator<Item = &Sent> {
        self.log.iter().filter(move |s| s.from == from)
    }
}

const A_LID: u16 = 0x0001;
const B_LID: u16 = 0x0002;
const A_QPN: u32 = 0x11;
const B_QPN: u32 = 0x22;
const P_KEY: u16 = 0x8001;
const SL: u8 = 3;

fn cfg(mtu: usize) -> RcConfig {
    RcConfig {
        mtu,
        retry_cnt: 7,
        rnr_retry: 7,
        ack_timeout_ns: ack_timeout_from_code(10),
        min_rnr_timer_code: 1,
        max_rd_atomic: 4,
        max_dest_rd_atomic: 4,
    }
}

fn path(side: Side, a_psn: u32, b_psn: u32) -> RcPath {
    match side {
        A => RcPath {
            slid: A_LID,
            dlid: B_LID,
            sl: SL,
            p_key: P_KEY,
            local_qpn: A_QPN,
            remote_qpn: B_QPN,
            sq_psn: a_psn,
            rq_psn: b_psn,
        },
        B => RcPath {
            slid: B_LID,
            dlid: A_LID,
            sl: SL,
            p_key: P_KEY,
            local_qpn: B_QPN,
            remote_qpn: A_QPN,
            sq_psn: b_psn,
            rq_psn: a_psn,
        },
    }
}

/// Two QPs, their memories and the wire, on one virtual clock.
struct Pair {
    qp: [RcQp; 2],
    mem: [Mem; 2],
    wire: Wire,
    now: u64,
    done: [Vec<Completion>; 2],
    /// When each completion was taken.
    done_at: [Vec<u64>; 2],
    /// Steps in a row at one instant.
    stuck: u32,
}

impl Pair {
    fn new(cfg_a: RcConfig, cfg_b: RcConfig, a_psn: u32, b_psn: u32) -> Pair {
        Pair {
            qp: [
                RcQp::new(cfg_a, path(A, a_psn, b_psn)),
                RcQp::new(cfg_b, path(B, a_psn, b_psn)),
            ],
            mem: [Mem::new(0xa), Mem::new(0xb)],
            wire: Wire::new(0x5eed),
            now: 0,
            done: [Vec::new(), Vec::new()],
            done_at: [Vec::new(), Vec::new()],
            stuck: 0,
        }
    }

    fn simple(mtu: usize, a_psn: u32) -> Pair {
        Pair::new(cfg(mtu), cfg(mtu), a_psn, 0x0050_0000)
    }

    fn a(&mut self) -> &mut RcQp {
        &mut self.qp[0]
    }

    fn b(&mut self) -> &mut RcQp {
        &mut self.qp[1]
    }

    /// One round: both QPs transmit, everything due arrives; then the clock moves to
    /// the next event. False when there is none.
    fn step(&mut self) -> bool {
        for side in [A, B] {
            let out = self.qp[side.idx()].poll_transmit(self.now);
            self.wire.send(self.now, side, out);
        }
        while let Some((to, pkt)) = self.wire.pop_due(self.now) {
            let i = to.idx();
            self.mem[i].now = self.now;
            let out = self.qp[i].receive(self.now, &pkt, &mut self.mem[i]);
            self.wire.send(self.now, to, out);
        }
        for i in 0..2 {
            let c = self.qp[i].take_completions();
            self.done_at[i].extend(c.iter().map(|_| self.now));
            self.done[i].extend(c);
        }
        let next = [
            self.wire.next_at(),
            self.qp[0].next_deadline_ns(),
            self.qp[1].next_deadline_ns(),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            None => false,
            Some(t) if t > self.now => {
                self.now = t;
                self.stuck = 0;
                true
            }
            Some(_) => {
                self.stuck += 1;
                assert!(self.stuck < 1000, "no progress at {} ns", self.now);
                true
            }
        }
    }

    /// Steps until nothing is left to happen or `limit_ns` passes.
    fn run(&mut self, limit_ns: u64) {
        while self.now <= limit_ns && self.step() {}
    }

    /// Steps until `n` completions have been taken from `side`.
    fn run_until_done(&mut self, side: Side, n: usize, limit_ns: u64) {
        while self.done[side.idx()].len() < n {
            let more = self.step();
            assert!(
                self.done[side.idx()].len() >= n || (more && self.now <= limit_ns),
                "{side:?}: {} of {n} completions by {} ns: {:?}",
                self.done[side.idx()].len(),
                self.now,
                self.qp[side.idx()]
            );
        }
    }
}

fn statuses(c: &[Completion]) -> Vec<WcStatus> {
    c.iter().map(|c| c.status).collect()
}

fn aeth(p: &IbPacket) -> Option<AethRepr> {
    match p.ext {
        ExtHeaders::Aeth(a) => Some(a),
        _ => None,
    }
}

fn reth(p: &IbPacket) -> Option<RethRepr> {
    match p.ext {
        ExtHeaders::Reth(r) => Some(r),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------
// Segmentation, headers, reassembly.
// ---------------------------------------------------------------------------------

#[test]
fn segmentation_headers_and_reassembly() {
    const MTU: usize = 256;
    let start = 0x00_1000;
    let mut p = Pair::simple(MTU, start);
    let mut rng = Rng(7);
    let send = rng.bytes(2 * MTU + 188); // 3 packets
    let write = rng.bytes(3 * MTU + 1); // 4 packets
    let write_va = RW_VA + 0x100;
    let read_va = RW_VA + 0x8_0000;
    let read_len = 2 * MTU as u32 + 7; // 3 responses
    p.a().post(WorkRequest::Send {
        wr_id: 1,
        data: send.clone(),
    });
    p.a().post(WorkRequest::RdmaWrite {
        wr_id: 2,
        remote_addr: write_va,
        rkey: RW_KEY,
        data: write.clone(),
    });
    p.a().post(WorkRequest::RdmaRead {
        wr_id: 3,
        remote_addr: read_va,
        rkey: RW_KEY,
        len: read_len,
    });
    p.a().post(WorkRequest::Send {
        wr_id: 4,
        data: vec![0x5a; 10],
    });
    p.run_until_done(A, 4, 1_000_000_000);
    assert_eq!(p.qp[0].state(), QpState::Rts);

    // Completions in order, with lengths and the READ's data.
    let c = &p.done[0];
    assert_eq!(
        c.iter()
            .map(|c| (c.wr_id, c.opcode, c.status, c.byte_len))
            .collect::<Vec<_>>(),
        vec![
            (1, WcOpcode::Send, WcStatus::Success, send.len() as u32),
            (
                2,
                WcOpcode::RdmaWrite,
                WcStatus::Success,
                write.len() as u32
            ),
            (3, WcOpcode::RdmaRead, WcStatus::Success, read_len),
            (4, WcOpcode::Send, WcStatus::Success, 10),
        ]
    );
    assert_eq!(c[2].data, p.mem[1].at(RW_KEY, read_va, read_len as usize));
    assert!(c[0].data.is_empty() && c[1].data.is_empty());
    // The SEND reassembled whole, delivered once; the WRITE landed.
    assert_eq!(p.mem[1].received, vec![send.clone(), vec![0x5a; 10]]);
    assert_eq!(p.mem[1].at(RW_KEY, write_va, write.len()), &write[..]);
    assert_eq!(p.mem[1].violations, 0);

    // The requests, in order, with consecutive PSNs; the READ takes three PSNs.
    let reqs: Vec<&IbPacket> = p.wire.sent_by(A).map(|s| &s.pkt).collect();
    let ops: Vec<Opcode> = reqs.iter().map(|p| p.bth.opcode).collect();
    assert_eq!(
        ops,
        vec![
            Opcode::RC_SEND_FIRST,
            Opcode::RC_SEND_MIDDLE,
            Opcode::RC_SEND_LAST,
            Opcode::RC_RDMA_WRITE_FIRST,
            Opcode::RC_RDMA_WRITE_MIDDLE,
            Opcode::RC_RDMA_WRITE_MIDDLE,
            Opcode::RC_RDMA_WRITE_LAST,
            Opcode::RC_RDMA_READ_REQUEST,
            Opcode::RC_SEND_ONLY,
        ]
    );
    let psns: Vec<u32> = reqs.iter().map(|p| p.bth.psn).collect();
    let want: Vec<u32> = (0..8).map(|i| start + i).chain([start + 10]).collect();
    assert_eq!(psns, want);
    // Payload sizes: a PMTU but for the last packet of each message.
    let lens: Vec<usize> = reqs.iter().map(|p| p.payload.len()).collect();
    assert_eq!(lens, vec![256, 256, 188, 256, 256, 256, 1, 0, 10]);
    // AckReq on the last packet of each message only.
    let acks: Vec<bool> = reqs.iter().map(|p| p.bth.ack_req).collect();
    assert_eq!(
        acks,
        vec![false, false, true, false, false, false, true, true, true]
    );
    // RETH on the WRITE's first packet only, with the whole length; the READ's RETH
    // has the READ's.
    for (i, r) in reqs.iter().enumerate() {
        match i {
            3 => assert_eq!(
                reth(r),
                Some(RethRepr {
                    va: write_va,
                    r_key: RW_KEY,
                    dma_len: write.len() as u32
                })
            ),
            7 => assert_eq!(
                reth(r),
                Some(RethRepr {
                    va: read_va,
                    r_key: RW_KEY,
                    dma_len: read_len
                })
            ),
            _ => assert_eq!(r.ext, ExtHeaders::None, "packet {i}"),
        }
    }
    // Route and transport headers of every request.
    for r in &reqs {
        assert_eq!(
            (r.lrh.vl, r.lrh.sl, r.lrh.lnh, r.lrh.slid, r.lrh.dlid),
            (0, SL, Lnh::Local, A_LID, B_LID)
        );
        assert_eq!((r.bth.p_key, r.bth.dest_qp, r.bth.tver), (P_KEY, B_QPN, 0));
        assert!(r.grh.is_none());
    }

    // The READ's responses: FIRST, MIDDLE, LAST on the READ's three PSNs, AETH on
    // the first and last.
    let resp: Vec<&IbPacket> = p
        .wire
        .sent_by(B)
        .map(|s| &s.pkt)
        .filter(|p| p.bth.opcode != Opcode::RC_ACKNOWLEDGE)
        .collect();
    assert_eq!(
        resp.iter()
            .map(|p| (p.bth.opcode, p.bth.psn, p.payload.len(), aeth(p).is_some()))
            .collect::<Vec<_>>(),
        vec![
            (Opcode::RC_RDMA_READ_RESPONSE_FIRST, start + 7, 256, true),
            (Opcode::RC_RDMA_READ_RESPONSE_MIDDLE, start + 8, 256, false),
            (Opcode::RC_RDMA_READ_RESPONSE_LAST, start + 9, 7, true),
        ]
    );
    for r in p.wire.sent_by(B) {
        let r = &r.pkt;
        assert_eq!(
            (r.lrh.slid, r.lrh.dlid, r.bth.dest_qp, r.bth.p_key),
            (B_LID, A_LID, A_QPN, P_KEY)
        );
    }
    // The ACKs: one per AckReq, each naming the packet it acknowledges.
    let acked: Vec<u32> = p
        .wire
        .sent_by(B)
        .map(|s| &s.pkt)
        .filter(|p| p.bth.opcode == Opcode::RC_ACKNOWLEDGE)
        .map(|p| p.bth.psn)
        .collect();
    assert_eq!(acked, vec![start + 2, start + 6, start + 10]);
    let s = p.qp[0].stats();
    assert_eq!((s.requests_sent, s.retransmitted, s.timeouts), (9, 0, 0));
}

/// The encoded bytes of the headers, against the field layout of IBTA vol. 1 §7.7
/// (LRH), §9.2 (BTH) and §9.3 (RETH, AETH), byte by byte.
#[test]
fn header_bytes_match_the_spec_layout() {
    let mut p = Pair::simple(256, 0x00_abcd);
    p.a().post(WorkRequest::RdmaWrite {
        wr_id: 9,
        remote_addr: RW_VA + 0x40,
        rkey: RW_KEY,
        data: vec![0xee; 300],
    });
    p.run_until_done(A, 1, 1_000_000_000);
    let first = p.wire.sent_by(A).next().unwrap().pkt.encode().unwrap();
    #[rustfmt::skip]
    let want_first: [u8; 36] = [
        // LRH: VL 0, LVer 0 | SL 3, LNH 2 (IBA local) | DLID 2 | PktLen 74 words
        // (8 + 12 + 16 + 256 + 4 ICRC = 296 bytes) | SLID 1
        0x00, 0x32, 0x00, 0x02, 0x00, 0x4a, 0x00, 0x01,
        // BTH: RDMA WRITE First | SE 0, M 1, PadCnt 0, TVer 0 | P_Key | resv8a |
        // DestQP 0x22 | AckReq 0 | PSN 0x00ABCD
        0x06, 0x40, 0x80, 0x01, 0x00, 0x00, 0x00, 0x22, 0x00, 0x00, 0xab, 0xcd,
        // RETH: VA, R_Key, DMA Length 300
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x10, 0x00,
        0x00, 0x00, 0x01, 0x2c,
    ];
    assert_eq!(&first[..36], &want_first);
    assert_eq!(first.len(), 296 + 2, "through the VCRC");

    // The second packet: WRITE Last, 44 bytes, no pad, AckReq.
    let last = p.wire.sent_by(A).nth(1).unwrap().pkt.encode().unwrap();
    #[rustfmt::skip]
    let want_last: [u8; 20] = [
        // PktLen (8 + 12 + 44 + 4) / 4 = 17
        0x00, 0x32, 0x00, 0x02, 0x00, 0x11, 0x00, 0x01,
        0x08, 0x40, 0x80, 0x01, 0x00, 0x00, 0x00, 0x22, 0x80, 0x00, 0xab, 0xce,
    ];
    assert_eq!(&last[..20], &want_last);

    // The ACK: ACKNOWLEDGE, AETH syndrome 0x1F (ACK, no credits), MSN 1.
    let ack = p.wire.sent_by(B).next().unwrap().pkt.encode().unwrap();
    #[rustfmt::skip]
    let want_ack: [u8; 24] = [
        // PktLen (8 + 12 + 4 + 4) / 4 = 7
        0x00, 0x32, 0x00, 0x01, 0x00, 0x07, 0x00, 0x02,
        0x11, 0x40, 0x80, 0x01, 0x00, 0x00, 0x00, 0x11, 0x00, 0x00, 0xab, 0xce,
        0x1f, 0x00, 0x00, 0x01,
    ];
    assert_eq!(&ack[..24], &want_ack);
    assert_eq!(ack.len(), 28 + 2);
}

#[test]
fn psns_wrap_across_0xffffff() {
    const MTU: usize = 256;
    let start = 0xff_fffd;
    let mut p = Pair::new(cfg(MTU), cfg(MTU), start, 0xff_ffff);
    let mut rng = Rng(11);
    let send = rng.bytes(5 * MTU);
    p.a().post(WorkRequest::Send {
        wr_id: 1,
        data: send.clone(),
    });
    p.a().post(WorkRequest::RdmaRead {
        wr_id: 2,
        remote_addr: RW_VA,
        rkey: RW_KEY,
        len: 3 * MTU as u32,
    });
    let write = rng.bytes(2 * MTU - 3);
    p.a().post(WorkRequest::RdmaWrite {
        wr_id: 3,
        remote_addr: RW_VA + 0x1_0000,
        rkey: RW_KEY,
        data: write.clone(),
    });
    // And the other way, B's PSNs starting at the last one.
    let back = rng.bytes(3 * MTU);
    p.b().post(WorkRequest::Send {
        wr_id: 7,
        data: back.clone(),
    });
    p.run_until_done(A, 3, 1_000_000_000);
    p.run_until_done(B, 1, 1_000_000_000);

    let psns: Vec<u32> = p
        .wire
        .sent_by(A)
        .filter(|s| s.pkt.bth.opcode.0 <= 0x0c)
        .map(|s| s.pkt.bth.psn)
        .collect();
    assert_eq!(
        psns,
        vec![
            0xff_fffd, 0xff_fffe, 0xff_ffff, 0, 1, // SEND
            2, // READ, three PSNs
            5, 6, // WRITE
        ]
    );
    let read_psns: Vec<u32> = p
        .wire
        .sent_by(B)
        .filter(|s| s.pkt.bth.opcode.0 >= 0x0d && s.pkt.bth.opcode.0 <= 0x10)
        .map(|s| s.pkt.bth.psn)
        .collect();
    assert_eq!(read_psns, vec![2, 3, 4]);
    let b_psns: Vec<u32> = p
        .wire
        .sent_by(B)
        .filter(|s| s.pkt.bth.opcode.0 <= 0x04)
        .map(|s| s.pkt.bth.psn)
        .collect();
    assert_eq!(b_psns, vec![0xff_ffff, 0, 1]);
    assert_eq!(
        statuses(&p.done[0]),
        vec![WcStatus::Success; 3],
        "{:?}",
        p.done[0]
    );
    assert_eq!(p.done[0][1].data, p.mem[1].at(RW_KEY, RW_VA, 3 * MTU));
    assert_eq!(p.mem[1].received, vec![send]);
    assert_eq!(
        p.mem[1].at(RW_KEY, RW_VA + 0x1_0000, write.len()),
        &write[..]
    );
    assert_eq!(p.mem[0].received, vec![back]);
    assert_eq!(p.qp[1].expected_psn(), 7);
    assert_eq!(p.qp[0].expected_psn(), 2);
    assert_eq!(
        p.qp[0].stats().retransmitted + p.qp[1].stats().retransmitted,
        0
    );
}

// ---------------------------------------------------------------------------------
// Responder: duplicates, gaps, RNR, access checks, lengths, READ limit, MSN.
// ---------------------------------------------------------------------------------

#[test]
fn duplicates_are_acknowledged_never_carried_out_twice() {
    const MTU: usize = 512;
    let mut p = Pair::simple(MTU, 100);
    // The wire delivers every packet twice, both ways.
    p.wire.filter = Some(Box::new(|_, _, _, _| Fate::Duplicate));
    let mut rng = Rng(3);
    let send = rng.bytes(3 * MTU - 5);
    p.a().post(WorkRequest::Send {
        wr_id: 1,
        data: send.clone(),
    });
    let write = rng.bytes(2 * MTU);
    p.a().post(WorkRequest::RdmaWrite {
        wr_id: 2,
        remote_addr: RW_VA,
        rkey: RW_KEY,
        data: write.clone(),
    });
    p.a().post(WorkRequest::RdmaRead {
        wr_id: 3,
        remote_addr: RO_VA + 8,
        rkey: RO_KEY,
        len: 2 * MTU as u32 + 1,
    });
    p.run_until_done(A, 3, 1_000_000_000);
    p.run(p.now + 10_000_000);
    assert_eq!(statuses(&p.done[0]), vec![WcStatus::Success; 3]);
    // Delivered once, written once per packet, read data right.
    assert_eq!(p.mem[1].received, vec![send]);
    assert_eq!(p.mem[1].writes, 2);
    assert_eq!(p.mem[1].at(RW_KEY, RW_VA, write.len()), &write[..]);
    assert_eq!(
        p.done[0][2].data,
        p.mem[1].at(RO_KEY, RO_VA + 8, 2 * MTU + 1)
    );
    let b = p.qp[1].stats();
    // Every request arrived twice.
    assert_eq!(b.duplicates, 3 + 2 + 1);
    // Re-ACKed: the SEND's and WRITE's last packets asked for an ACK both times.
    assert_eq!(b.acks_sent, 4);
    // The READ was carried out again from the stored request: 3 responses twice.
    assert_eq!(b.read_responses_sent, 6);
    // And the requester saw the second copies as duplicates.
    let a = p.qp[0].stats();
    assert!(a.duplicates >= 4, "{a:?}");
    assert_eq!(a.read_responses_received, 3);
    assert_eq!(p.qp[1].msn(), 3);
}

#[test]
fn duplicate_read_from_a_later_psn_is_answered_from_there() {
    // A READ re-issued for its last two responses (as a requester does when the
    // first of the rest is lost) is carried out again from the stored READ.
    const MTU: usize = 256;
    let mut b = RcQp::new(cfg(MTU), path(B, 0x40, 0));
    let mut mem = Mem::new(5);
    let req = |psn: u32, va: u64, len: u32| {
        request(
            Opcode::RC_RDMA_READ_REQUEST,
            psn,
            true,
            ExtHeaders::Reth(RethRepr {
                va,
                r_key: RW_KEY,
                dma_len: len,
            }),
            vec![],
        )
    };
    assert!(b.receive(0, &req(0x40, RW_VA, 1000), &mut mem).is_empty());
    let first = b.poll_transmit(0);
    assert_eq!(first.len(), 4);
    assert_eq!(b.expected_psn(), 0x44);
    // Again from its third PSN: 1000 - 512 bytes at VA + 512.
    assert!(
        b.receive(1, &req(0x42, RW_VA + 512, 488), &mut mem)
            .is_empty()
    );
    let again = b.poll_transmit(1);
    assert_eq!(
        again
            .iter()
            .map(|p| (p.bth.opcode, p.bth.psn, p.payload.len()))
            .collect::<Vec<_>>(),
        vec![
            (Opcode::RC_RDMA_READ_RESPONSE_FIRST, 0x42, 256),
            (Opcode::RC_RDMA_READ_RESPONSE_LAST, 0x43, 232),
        ]
    );
    assert_eq!(again[0].payload, first[2].payload);
    assert_eq!(again[1].payload, first[3].payload);
    // One that does not match what was stored is not answered.
    assert!(
        b.receive(2, &req(0x42, RW_VA + 8, 488), &mut mem)
            .is_empty()
    );
    assert!(b.poll_transmit(2).is_empty());
    assert_eq!(b.stats().last_drop, Some(RxDrop::StaleDuplicate(0x42)));
    assert_eq!(b.expected_psn(), 0x44);
    assert_eq!(b.state(), QpState::Rts);
}

#[test]
fn gap_gets_one_sequence_nak_and_the_requester_goes_back() {
    const MTU: usize = 256;
    let start = 0x10;
    let mut p = Pair::simple(MTU, start);
    // The WRITE's third packet is lost the first time.
    p.wire.filter = Some(Box::new(move |_, from, pkt, nth| {
        if from == A && pkt.bth.psn == start + 2 && nth == 0 {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    }));
    let data = Rng(9).bytes(8 * MTU);
    p.a().post(WorkRequest::RdmaWrite {
        wr_id: 1,
        remote_addr: RW_VA + 4096,
        rkey: RW_KEY,
        data: data.clone(),
    });
    p.run_until_done(A, 1, 1_000_000_000);
    assert_eq!(statuses(&p.done[0]), vec![WcStatus::Success]);
    assert_eq!(p.mem[1].at(RW_KEY, RW_VA + 4096, data.len()), &data[..]);
    // Exactly one NAK for the gap, naming the missing PSN.
    let naks: Vec<&IbPacket> = p
        .wire
        .sent_by(B)
        .map(|s| &s.pkt)
        .filter(|p| aeth(p).is_some_and(|a| matches!(a.kind(), AckKind::Nak { .. })))
        .collect();
    assert_eq!(naks.len(), 1);
    assert_eq!(naks[0].bth.psn, start + 2);
    assert_eq!(aeth(naks[0]).unwrap().syndrome, 0x60);
    let b = p.qp[1].stats();
    assert_eq!(b.naks_sent, 1);
    // The other four out-of-sequence packets were dropped quietly.
    assert_eq!(b.dropped, 4);
    assert_eq!(
        b.last_drop,
        Some(RxDrop::OutOfSequence {
            psn: start + 7,
            expected: start + 2
        })
    );
    // The requester resent from the NAKed PSN: six packets, no timeout.
    let a = p.qp[0].stats();
    assert_eq!((a.retransmitted, a.timeouts, a.naks_received), (6, 0, 1));
    let resent: Vec<u32> = p.wire.sent_by(A).skip(8).map(|s| s.pkt.bth.psn).collect();
    assert_eq!(resent, (start + 2..start + 8).collect::<Vec<_>>());
}

#[test]
fn rnr_nak_waits_the_advertised_timer_then_resends() {
    const CODE: u8 = 14; // 1.28 ms
    let mut cfg_b = cfg(1024);
    cfg_b.min_rnr_timer_code = CODE;
    let mut p = Pair::new(cfg(1024), cfg_b, 0x300, 0);
    // No receive buffer until 5 ms.
    p.mem[1].recv_ready_at = 5_000_000;
    let msg = Rng(1).bytes(3000);
    p.a().post(WorkRequest::Send {
        wr_id: 1,
        data: msg.clone(),
    });
    p.run_until_done(A, 1, 100_000_000);
    assert_eq!(statuses(&p.done[0]), vec![WcStatus::Success]);
    assert_eq!(p.mem[1].received, vec![msg]);
    // RNR NAKs for the SEND's first PSN, with the timer code.
    let rnrs: Vec<(u64, &IbPacket)> = p
        .wire
        .sent_by(B)
        .filter(|s| aeth(&s.pkt).is_some_and(|a| matches!(a.kind(), AckKind::RnrNak { .. })))
        .map(|s| (s.at, &s.pkt))
        .collect();
    assert!(rnrs.len() >= 3, "{}", rnrs.len());
    for (_, r) in &rnrs {
        assert_eq!(r.bth.psn, 0x300);
        assert_eq!(aeth(r).unwrap().syndrome, 0x20 | CODE);
    }
    // Each SEND First goes out no sooner than the timer after the NAK before it
    // arrived (NAK sent + 1 µs latency + its serialisation).
    let firsts: Vec<u64> = p
        .wire
        .sent_by(A)
        .filter(|s| s.pkt.bth.opcode == Opcode::RC_SEND_FIRST)
        .map(|s| s.at)
        .collect();
    assert_eq!(firsts.len(), rnrs.len() + 1);
    for (i, (nak_at, _)) in rnrs.iter().enumerate() {
        let gap = firsts[i + 1] - nak_at;
        assert!(gap >= rnr_timer_ns(CODE) + 1_000, "{gap}");
        assert!(gap <= rnr_timer_ns(CODE) + 2_000, "{gap}");
    }
    assert!(*firsts.last().unwrap() >= 5_000_000 - 2_000);
    let a = p.qp[0].stats();
    assert_eq!(a.rnr_naks_received, rnrs.len() as u64);
    assert_eq!(a.timeouts, 0);
    assert_eq!(p.qp[1].stats().rnr_naks_sent, rnrs.len() as u64);
}

#[test]
fn rnr_retry_7_retries_for_ever() {
    // Code 1 (10 µs) and no buffer for 2 ms: far more than 7 RNR NAKs.
    let mut p = Pair::simple(256, 0);
    p.mem[1].recv_ready_at = 2_000_000;
    p.a().post(WorkRequest::Send {
        wr_id: 1,
        data: vec![1; 100],
    });
    p.run_until_done(A, 1, 100_000_000);
    assert_eq!(statuses(&p.done[0]), vec![WcStatus::Success]);
    let n = p.qp[0].stats().rnr_naks_received;
    assert!(n > 50, "{n}");
}

#[test]
fn rnr_retry_exhausted_fails_and_flushes() {
    let mut cfg_a = cfg(256);
    cfg_a.rnr_retry = 2;
    let mut p = Pair::new(cfg_a, cfg(256), 0, 0);
    p.mem[1].recv_posted = 0;
    p.a().post(WorkRequest::Send {
        wr_id: 1,
        data: vec![1; 100],
    });
    p.a().post(WorkRequest::RdmaWrite {
        wr_id: 2,
        remote_addr: RW_VA,
        rkey: RW_KEY,
        data: vec![2; 100],
    });
    p.run_until_done(A, 2, 100_000_000);
    assert_eq!(
        statuses(&p.done[0]),
        vec![WcStatus::RnrRetryExceeded, WcStatus::Flushed]
    );
    // The first try and two retries.
    assert_eq!(p.qp[0].stats().rnr_naks_received, 3);
    assert_eq!(p.qp[0].state(), QpState::Error);
    assert_eq!(p.mem[1].writes, 0);
    // Posted in Error: flushed at once; nothing more goes out.
    p.a().post(WorkRequest::Send {
        wr_id: 3,
        data: vec![],
    });
    let c = p.a().take_completions();
    assert_eq!(
        (c[0].wr_id, c[0].status, c[0].opcode),
        (3, WcStatus::Flushed, WcOpcode::Send)
    );
    assert!(p.a().poll_transmit(u64::MAX).is_empty());
    assert_eq!(p.qp[0].next_deadline_ns(), None);
}

#[test]
fn r_key_violations_nak_remote_access_and_write_nothing() {
    const MTU: usize = 1024;
    struct Case {
        name: &'static str,
        wr: WorkRequest,
    }
    let data = vec![0x77; 4 * MTU];
    let cases = [
        Case {
            name: "unknown key",
            wr: WorkRequest::RdmaWrite {
                wr_id: 1,
                remote_addr: RW_VA,
                rkey: 0xdead,
                data: data.clone(),
            },
        },
        Case {
            name: "no write right",
            wr: WorkRequest::RdmaWrite {
                wr_id: 1,
                remote_addr: RO_VA,
                rkey: RO_KEY,
                data: data.clone(),
            },
        },
        Case {
            // The first three packets fit; the range's last byte does not.
            name: "past the end",
            wr: WorkRequest::RdmaWrite {
                wr_id: 1,
                remote_addr: WO_VA + SMALL_LEN as u64 - 4 * MTU as u64 + 1,
                rkey: WO_KEY,
                data: data.clone(),
            },
        },
        Case {
            name: "before the start",
            wr: WorkRequest::RdmaWrite {
                wr_id: 1,
                remote_addr: WO_VA - 1,
                rkey: WO_KEY,
                data: vec![1; 10],
            },
        },
        Case {
            name: "no read right",
            wr: WorkRequest::RdmaRead {
                wr_id: 1,
                remote_addr: WO_VA,
                rkey: WO_KEY,
                len: 100,
            },
        },
        Case {
            name: "read past the end",
            wr: WorkRequest::RdmaRead {
                wr_id: 1,
                remote_addr: RO_VA + 10,
                rkey: RO_KEY,
                len: SMALL_LEN as u32,
            },
        },
        Case {
            name: "address space wraps",
            wr: WorkRequest::RdmaWrite {
                wr_id: 1,
                remote_addr: u64::MAX - 10,
                rkey: RW_KEY,
                data: vec![1; 100],
            },
        },
    ];
    for case in cases {
        let mut p = Pair::simple(MTU, 0x77);
        let before = p.mem[1].snapshot();
        let opcode = case.wr.opcode();
        p.a().post(case.wr);
        p.a().post(WorkRequest::Send {
            wr_id: 2,
            data: vec![3; 10],
        });
        p.run_until_done(A, 2, 100_000_000);
        assert_eq!(
            p.done[0]
                .iter()
                .map(|c| (c.wr_id, c.opcode, c.status))
                .collect::<Vec<_>>(),
            vec![
                (1, opcode, WcStatus::RemoteAccessError),
                (2, WcOpcode::Send, WcStatus::Flushed)
            ],
            "{}",
            case.name
        );
        assert_eq!(p.qp[0].state(), QpState::Error, "{}", case.name);
        assert_eq!(p.qp[1].state(), QpState::Error, "{}", case.name);
        assert_eq!(
            p.mem[1].snapshot(),
            before,
            "{}: no byte written",
            case.name
        );
        assert_eq!(
            (p.mem[1].writes, p.mem[1].violations),
            (0, 0),
            "{}",
            case.name
        );
        assert!(p.mem[1].received.is_empty());
        let naks: Vec<u8> = p
            .wire
            .sent_by(B)
            .filter_map(|s| aeth(&s.pkt))
            .map(|a| a.syndrome)
            .collect();
        assert_eq!(naks, vec![0x62], "{}", case.name);
    }
}

#[test]
fn message_too_long_for_the_receive_buffer_is_an_invalid_request() {
    for len in [300, 1200] {
        let mut p = Pair::simple(1024, 0);
        p.mem[1].recv_len = 256;
        p.a().post(WorkRequest::Send {
            wr_id: 1,
            data: vec![1; len],
        });
        p.a().post(WorkRequest::Send {
            wr_id: 2,
            data: vec![2; 10],
        });
        p.run_until_done(A, 2, 100_000_000);
        assert_eq!(
            statuses(&p.done[0]),
            vec![WcStatus::RemoteInvalidRequest, WcStatus::Flushed],
            "{len}"
        );
        assert!(p.mem[1].received.is_empty());
        let nak = p.wire.sent_by(B).last().unwrap();
        assert_eq!(aeth(&nak.pkt).unwrap().syndrome, 0x61);
        // Named on the SEND's last packet.
        assert_eq!(nak.pkt.bth.psn, (len as u32).div_ceil(1024) - 1);
    }
}

#[test]
fn responder_read_limit_is_honoured() {
    // A requester allowed three READs against a responder that takes one: the
    // second READ arrives while the first one's responses still wait, and is NAKed.
    let mut cfg_a = cfg(256);
    cfg_a.max_rd_atomic = 3;
    let mut cfg_b = cfg(256);
    cfg_b.max_dest_rd_atomic = 1;
    let mut p = Pair::new(cfg_a, cfg_b, 0, 0);
    for i in 0..3 {
        p.a().post(WorkRequest::RdmaRead {
            wr_id: i,
            remote_addr: RW_VA + i * 1000,
            rkey: RW_KEY,
            len: 600,
        });
    }
    // The three requests go out back to back and arrive before B transmits.
    let out = p.a().poll_transmit(0);
    assert_eq!(out.len(), 3);
    let mut back = Vec::new();
    for r in &out {
        back.extend(p.qp[1].receive(2_000, r, &mut p.mem[1]));
    }
    assert!(back.is_empty(), "the NAK waits behind the READ responses");
    let back = p.b().poll_transmit(2_000);
    assert_eq!(
        back.iter()
            .map(|p| (p.bth.opcode, p.bth.psn))
            .collect::<Vec<_>>(),
        vec![
            (Opcode::RC_RDMA_READ_RESPONSE_FIRST, 0),
            (Opcode::RC_RDMA_READ_RESPONSE_MIDDLE, 1),
            (Opcode::RC_RDMA_READ_RESPONSE_LAST, 2),
            (Opcode::RC_ACKNOWLEDGE, 3),
        ]
    );
    assert_eq!(aeth(&back[3]).unwrap().syndrome, 0x61);
    assert_eq!(p.qp[1].state(), QpState::Error);
    for r in &back {
        assert!(p.qp[0].receive(4_000, r, &mut p.mem[0]).is_empty());
    }
    let c = p.a().take_completions();
    assert_eq!(
        statuses(&c),
        vec![
            WcStatus::Success,
            WcStatus::RemoteInvalidRequest,
            WcStatus::Flushed
        ]
    );
    assert_eq!(c[0].data, p.mem[1].at(RW_KEY, RW_VA, 600));
}

#[test]
fn requester_never_exceeds_its_read_limit() {
    let mut cfg_a = cfg(256);
    cfg_a.max_rd_atomic = 2;
    let mut cfg_b = cfg(256);
    cfg_b.max_dest_rd_atomic = 2;
    let mut p = Pair::new(cfg_a, cfg_b, 0x500, 0);
    p.wire.latency_ns = 5_000;
    for i in 0..6u64 {
        p.a().post(WorkRequest::RdmaRead {
            wr_id: i,
            remote_addr: RW_VA + i * 4096,
            rkey: RW_KEY,
            len: 700,
        });
        p.a().post(WorkRequest::Send {
            wr_id: 100 + i,
            data: vec![i as u8; 300],
        });
    }
    let mut max_seen = 0;
    while p.done[0].len() < 12 {
        let more = p.step();
        assert!(p.done[0].len() == 12 || (more && p.now < 1_000_000_000));
        let requested = p
            .wire
            .sent_by(A)
            .filter(|s| s.pkt.bth.opcode == Opcode::RC_RDMA_READ_REQUEST)
            .count();
        let read_done = p.done[0]
            .iter()
            .filter(|c| c.opcode == WcOpcode::RdmaRead)
            .count();
        max_seen = max_seen.max(requested - read_done);
        assert!(
            requested - read_done <= 2,
            "{requested} sent, {read_done} done"
        );
    }
    assert_eq!(max_seen, 2, "the limit is reached, not undershot");
    assert_eq!(statuses(&p.done[0]), vec![WcStatus::Success; 12]);
    // Completions in posting order: each SEND after the READ before it.
    let ids: Vec<u64> = p.done[0].iter().map(|c| c.wr_id).collect();
    let want: Vec<u64> = (0..6).flat_map(|i| [i, 100 + i]).collect();
    assert_eq!(ids, want);
    assert_eq!(p.qp[1].stats().naks_sent, 0);
}

#[test]
fn coalesced_ack_completes_everything_before_it_and_msn_counts_messages() {
    let mut p = Pair::simple(256, 0x10);
    // The first four ACKs are lost; the fifth covers all five SENDs.
    p.wire.filter = Some(Box::new(|_, from, pkt, _| {
        if from == B && pkt.bth.opcode == Opcode::RC_ACKNOWLEDGE && pkt.bth.psn < 0x14 {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    }));
    for i in 0..5 {
        p.a().post(WorkRequest::Send {
            wr_id: i,
            data: vec![i as u8; 100],
        });
    }
    p.run_until_done(A, 5, 100_000_000);
    assert_eq!(statuses(&p.done[0]), vec![WcStatus::Success; 5]);
    assert_eq!(p.qp[0].stats().retransmitted, 0);
    assert_eq!(p.qp[0].stats().timeouts, 0);
    let msns: Vec<u32> = p
        .wire
        .sent_by(B)
        .filter_map(|s| aeth(&s.pkt))
        .map(|a| a.msn)
        .collect();
    assert_eq!(msns, vec![1, 2, 3, 4, 5]);
    // A READ counts as a message when carried out; its responses carry the MSN.
    p.wire.filter = None;
    p.a().post(WorkRequest::RdmaRead {
        wr_id: 9,
        remote_addr: RW_VA,
        rkey: RW_KEY,
        len: 600,
    });
    p.run_until_done(A, 6, 100_000_000);
    let resp_msns: Vec<Option<u32>> = p
        .wire
        .sent_by(B)
        .skip(5)
        .map(|s| aeth(&s.pkt).map(|a| a.msn))
        .collect();
    assert_eq!(resp_msns, vec![Some(6), None, Some(6)]);
    assert_eq!(p.qp[1].msn(), 6);
}

// ---------------------------------------------------------------------------------
// Requester: timeouts, link loss, ordering.
// ---------------------------------------------------------------------------------

#[test]
fn link_outage_recovers_through_retries_with_every_byte_right() {
    const MTU: usize = 1024;
    let mut p = Pair::simple(MTU, 0xff_ff00);
    let t = p.qp[0].config().ack_timeout_ns;
    // Down from 10 µs, mid-transfer, for three ACK timeouts.
    p.wire.down = Some((10_000, 10_000 + 3 * t));
    let mut rng = Rng(77);
    let write = rng.bytes(200 * MTU + 17);
    let send = rng.bytes(5 * MTU);
    p.a().post(WorkRequest::RdmaWrite {
        wr_id: 1,
        remote_addr: RW_VA,
        rkey: RW_KEY,
        data: write.clone(),
    });
    p.a().post(WorkRequest::Send {
        wr_id: 2,
        data: send.clone(),
    });
    p.a().post(WorkRequest::RdmaRead {
        wr_id: 3,
        remote_addr: RO_VA,
        rkey: RO_KEY,
        len: 7 * MTU as u32 - 3,
    });
    p.run_until_done(A, 3, 10_000_000_000);
    assert_eq!(statuses(&p.done[0]), vec![WcStatus::Success; 3]);
    assert_eq!(p.mem[1].at(RW_KEY, RW_VA, write.len()), &write[..]);
    assert_eq!(p.mem[1].received, vec![send]);
    assert_eq!(p.done[0][2].data, p.mem[1].at(RO_KEY, RO_VA, 7 * MTU - 3));
    let a = p.qp[0].stats();
    assert!(a.timeouts >= 3, "{a:?}");
    assert!(a.retransmitted > 0);
    assert!(p.now > 10_000 + 3 * t);
    println!(
        "outage of {} ms: {} timeouts, {} packets resent, done at {:.3} ms",
        3 * t / 1_000_000,
        a.timeouts,
        a.retransmitted,
        p.done_at[0][2] as f64 / 1e6
    );
}

#[test]
fn permanent_loss_ends_in_retry_exceeded_at_the_right_time() {
    for retry_cnt in [0u8, 3, 7] {
        let mut cfg_a = cfg(256);
        cfg_a.retry_cnt = retry_cnt;
        cfg_a.ack_timeout_ns = ack_timeout_from_code(12); // 16.78 ms
        let t = cfg_a.ack_timeout_ns;
        let mut p = Pair::new(cfg_a, cfg(256), 0x42, 0);
        p.wire.down = Some((0, u64::MAX));
        p.a().post(WorkRequest::Send {
            wr_id: 1,
            data: vec![9; 100],
        });
        p.a().post(WorkRequest::RdmaRead {
            wr_id: 2,
            remote_addr: RW_VA,
            rkey: RW_KEY,
            len: 10,
        });
        p.run_until_done(A, 2, 100 * t);
        assert_eq!(
            statuses(&p.done[0]),
            vec![WcStatus::RetryExceeded, WcStatus::Flushed]
        );
        assert_eq!(p.qp[0].state(), QpState::Error);
        // The SEND went out retry_cnt + 1 times, one timeout apart.
        let sends: Vec<u64> = p
            .wire
            .sent_by(A)
            .filter(|s| s.pkt.bth.psn == 0x42)
            .map(|s| s.at)
            .collect();
        let want: Vec<u64> = (0..=u64::from(retry_cnt)).map(|i| i * t).collect();
        assert_eq!(sends, want, "retry_cnt {retry_cnt}");
        // It failed when the last try timed out.
        assert_eq!(p.done_at[0][0], (u64::from(retry_cnt) + 1) * t);
        assert_eq!(p.qp[0].stats().timeouts, u64::from(retry_cnt) + 1);
        assert_eq!(p.qp[0].next_deadline_ns(), None);
    }
}

#[test]
fn completions_stay_in_posting_order_when_read_responses_are_lost() {
    const MTU: usize = 256;
    let mut p = Pair::simple(MTU, 0x20);
    // The READ's first response is lost once; the SEND after the READ is ACKed
    // first, and that ACK must not complete anything past the READ.
    p.wire.filter = Some(Box::new(|_, from, pkt, nth| {
        if from == B && pkt.bth.opcode == Opcode::RC_RDMA_READ_RESPONSE_FIRST && nth == 0 {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    }));
    p.a().post(WorkRequest::RdmaRead {
        wr_id: 1,
        remote_addr: RW_VA + 100,
        rkey: RW_KEY,
        len: 5 * MTU as u32,
    });
    p.a().post(WorkRequest::Send {
        wr_id: 2,
        data: vec![4; 50],
    });
    p.run_until_done(A, 2, 100_000_000);
    assert_eq!(
        p.done[0]
            .iter()
            .map(|c| (c.wr_id, c.status))
            .collect::<Vec<_>>(),
        vec![(1, WcStatus::Success), (2, WcStatus::Success)]
    );
    assert_eq!(p.done[0][0].data, p.mem[1].at(RW_KEY, RW_VA + 100, 5 * MTU));
    assert_eq!(
        p.mem[1].received,
        vec![vec![4; 50]],
        "the SEND delivered once"
    );
    let a = p.qp[0].stats();
    assert!(a.implicit_naks >= 1, "{a:?}");
    assert_eq!(a.timeouts, 0, "recovered without waiting for the timer");
    // The READ was re-issued whole (its first response was the missing one).
    let reads: Vec<RethRepr> = p
        .wire
        .sent_by(A)
        .filter(|s| s.pkt.bth.opcode == Opcode::RC_RDMA_READ_REQUEST)
        .filter_map(|s| reth(&s.pkt))
        .collect();
    assert!(reads.len() >= 2);
    assert!(
        reads
            .iter()
            .all(|r| r.va == RW_VA + 100 && r.dma_len == 5 * MTU as u32)
    );
}

#[test]
fn read_reissued_for_the_rest_after_a_middle_response_is_lost() {
    const MTU: usize = 256;
    let mut p = Pair::simple(MTU, 0x30);
    // The first response packet for PSN 0x32 is lost, whatever its opcode.
    let mut lost = false;
    p.wire.filter = Some(Box::new(move |_, from, pkt, _| {
        if from == B && pkt.bth.psn == 0x32 && !lost {
            lost = true;
            Fate::Drop
        } else {
            Fate::Deliver
        }
    }));
    p.a().post(WorkRequest::RdmaRead {
        wr_id: 1,
        remote_addr: RW_VA,
        rkey: RW_KEY,
        len: 6 * MTU as u32 - 10,
    });
    p.run_until_done(A, 1, 100_000_000);
    assert_eq!(statuses(&p.done[0]), vec![WcStatus::Success]);
    assert_eq!(p.done[0][0].data, p.mem[1].at(RW_KEY, RW_VA, 6 * MTU - 10));
    let reads: Vec<(u32, RethRepr)> = p
        .wire
        .sent_by(A)
        .filter(|s| s.pkt.bth.opcode == Opcode::RC_RDMA_READ_REQUEST)
        .map(|s| (s.pkt.bth.psn, reth(&s.pkt).unwrap()))
        .collect();
    assert_eq!(
        reads,
        vec![
            (
                0x30,
                RethRepr {
                    va: RW_VA,
                    r_key: RW_KEY,
                    dma_len: 6 * MTU as u32 - 10
                }
            ),
            (
                0x32,
                RethRepr {
                    va: RW_VA + 2 * MTU as u64,
                    r_key: RW_KEY,
                    dma_len: 4 * MTU as u32 - 10
                }
            ),
        ]
    );
    assert_eq!(
        p.qp[0].stats().implicit_naks,
        1,
        "one re-issue for one loss"
    );
}

// ---------------------------------------------------------------------------------
// Hostile packets.
// ---------------------------------------------------------------------------------

/// A request from A to B.
fn request(op: Opcode, psn: u32, ack_req: bool, ext: ExtHeaders, payload: Vec<u8>) -> IbPacket {
    packet(A, op, psn, ack_req, ext, payload)
}

/// A packet from `from` to the other side, with its length fields sealed.
fn packet(
    from: Side,
    op: Opcode,
    psn: u32,
    ack_req: bool,
    ext: ExtHeaders,
    payload: Vec<u8>,
) -> IbPacket {
    let (slid, dlid, dest_qp) = match from {
        A => (A_LID, B_LID, B_QPN),
        B => (B_LID, A_LID, A_QPN),
    };
    IbPacket {
        lrh: LrhRepr {
            vl: 0,
            lver: 0,
            sl: SL,
            lnh: Lnh::Local,
            dlid,
            pkt_len: 0,
            slid,
        },
        grh: None,
        bth: BthRepr {
            opcode: op,
            se: false,
            mig_req: true,
            pad_cnt: 0,
            tver: 0,
            p_key: P_KEY,
            dest_qp,
            ack_req,
            psn,
        },
        ext,
        payload,
    }
}

fn ack_from_b(psn: u32, syndrome: u8) -> IbPacket {
    packet(
        B,
        Opcode::RC_ACKNOWLEDGE,
        psn,
        false,
        ExtHeaders::Aeth(AethRepr { syndrome, msn: 1 }),
        vec![],
    )
}

#[test]
fn hostile_packets_are_dropped_and_counted() {
    const MTU: usize = 256;
    let mut a = RcQp::new(cfg(MTU), path(A, 0x100, 0x900));
    let mut mem = Mem::new(1);
    // A has a READ of 100 bytes outstanding at PSN 0x100 and a SEND at 0x101.
    a.post(WorkRequest::RdmaRead {
        wr_id: 1,
        remote_addr: RW_VA,
        rkey: RW_KEY,
        len: 100,
    });
    a.post(WorkRequest::Send {
        wr_id: 2,
        data: vec![1; 10],
    });
    assert_eq!(a.poll_transmit(0).len(), 2);

    let good_resp = || {
        packet(
            B,
            Opcode::RC_RDMA_READ_RESPONSE_ONLY,
            0x100,
            false,
            ExtHeaders::Aeth(AethRepr {
                syndrome: 0x1f,
                msn: 1,
            }),
            vec![0xab; 100],
        )
    };
    let mut cases: Vec<(&str, IbPacket, RxDrop)> = Vec::new();
    let mut p = good_resp();
    p.bth.dest_qp = 0x999;
    cases.push(("wrong dest QP", p, RxDrop::WrongDestQp(0x999)));
    let mut p = good_resp();
    p.lrh.slid = 0x77;
    cases.push((
        "wrong SLID",
        p,
        RxDrop::WrongLid {
            slid: 0x77,
            dlid: A_LID,
        },
    ));
    let mut p = good_resp();
    p.bth.p_key = 0x8002;
    cases.push(("other partition", p, RxDrop::PKeyMismatch(0x8002)));
    let mut p = good_resp();
    p.bth.p_key = 0x0002;
    cases.push(("limited, other key", p, RxDrop::PKeyMismatch(0x0002)));
    let mut p = good_resp();
    p.bth.tver = 1;
    cases.push(("TVer 1", p, RxDrop::TransportVersion(1)));
    for op in [0x12u8, 0x13, 0x14, 0x16, 0x20, 0x64, 0x81, 0xff] {
        let mut p = good_resp();
        p.bth.opcode = Opcode(op);
        cases.push(("not an RC opcode we take", p, RxDrop::UnsupportedOpcode(op)));
    }
    let mut p = good_resp();
    p.ext = ExtHeaders::None;
    cases.push((
        "READ response without its AETH",
        p,
        RxDrop::HeaderMismatch(0x10),
    ));
    let mut p = ack_from_b(0x100, 0x1f);
    p.payload = vec![1, 2, 3];
    cases.push(("ACK with payload", p, RxDrop::HeaderMismatch(0x11)));
    let mut p = good_resp();
    p.payload.push(0);
    cases.push((
        "READ response longer than asked",
        p,
        RxDrop::BadResponse {
            opcode: 0x10,
            len: 101,
        },
    ));
    let mut p = good_resp();
    p.payload.truncate(60);
    cases.push((
        "READ response shorter than asked",
        p,
        RxDrop::BadResponse {
            opcode: 0x10,
            len: 60,
        },
    ));
    let mut p = good_resp();
    p.bth.opcode = Opcode::RC_RDMA_READ_RESPONSE_MIDDLE;
    p.ext = ExtHeaders::None;
    cases.push((
        "MIDDLE where the READ has one packet",
        p,
        RxDrop::BadResponse {
            opcode: 0x0e,
            len: 100,
        },
    ));
    let mut p = good_resp();
    p.bth.psn = 0x101;
    cases.push((
        "READ response for the SEND's PSN",
        p,
        RxDrop::UnexpectedPsn(0x101),
    ));
    let mut p = good_resp();
    p.ext = ExtHeaders::Aeth(AethRepr {
        syndrome: 0x61,
        msn: 0,
    });
    cases.push((
        "READ response with a NAK syndrome",
        p,
        RxDrop::ReservedSyndrome(0x61),
    ));
    cases.push((
        "ACK for a PSN never sent",
        ack_from_b(0x500, 0x1f),
        RxDrop::UnexpectedPsn(0x500),
    ));
    cases.push((
        "ACK for a PSN long acknowledged",
        ack_from_b(0x50, 0x1f),
        RxDrop::DuplicateResponse(0x50),
    ));
    for s in (0x40..=0x5f).chain(0x64..=0x7f) {
        cases.push((
            "reserved syndrome or NAK code",
            ack_from_b(0x100, s),
            RxDrop::ReservedSyndrome(s),
        ));
    }
    cases.push((
        "RNR NAK for a READ",
        ack_from_b(0x100, 0x21),
        RxDrop::UnexpectedPsn(0x100),
    ));
    let n = cases.len() as u64;
    for (name, pkt, why) in cases {
        let dropped = a.stats().dropped;
        assert!(a.receive(10, &pkt, &mut mem).is_empty(), "{name}");
        assert_eq!(a.stats().dropped, dropped + 1, "{name}");
        assert_eq!(a.stats().last_drop, Some(why), "{name}");
        assert_eq!(a.state(), QpState::Rts, "{name}");
        assert!(a.take_completions().is_empty(), "{name}");
    }
    assert_eq!(a.stats().dropped, n);
    // The right response still completes the READ, and its implicit ACK nothing more.
    assert!(a.receive(20, &good_resp(), &mut mem).is_empty());
    let c = a.take_completions();
    assert_eq!(
        (c.len(), c[0].status, c[0].data.clone()),
        (1, WcStatus::Success, vec![0xab; 100])
    );
    assert_eq!(mem.violations + mem.writes, 0);
}

#[test]
fn malformed_requests_in_sequence_are_naked_as_invalid() {
    const MTU: usize = 256;
    let reth = |len| {
        ExtHeaders::Reth(RethRepr {
            va: RW_VA,
            r_key: RW_KEY,
            dma_len: len,
        })
    };
    let cases: Vec<(&str, Vec<IbPacket>)> = vec![
        (
            "SEND First shorter than the PMTU",
            vec![request(
                Opcode::RC_SEND_FIRST,
                0,
                false,
                ExtHeaders::None,
                vec![0; 200],
            )],
        ),
        (
            "SEND Only longer than the PMTU",
            vec![request(
                Opcode::RC_SEND_ONLY,
                0,
                true,
                ExtHeaders::None,
                vec![0; 257],
            )],
        ),
        (
            "SEND Last with nothing",
            vec![
                request(
                    Opcode::RC_SEND_FIRST,
                    0,
                    false,
                    ExtHeaders::None,
                    vec![0; 256],
                ),
                request(Opcode::RC_SEND_LAST, 1, true, ExtHeaders::None, vec![]),
            ],
        ),
        (
            "SEND Middle with no SEND started",
            vec![request(
                Opcode::RC_SEND_MIDDLE,
                0,
                false,
                ExtHeaders::None,
                vec![0; 256],
            )],
        ),
        (
            "WRITE Middle in a SEND",
            vec![
                request(
                    Opcode::RC_SEND_FIRST,
                    0,
                    false,
                    ExtHeaders::None,
                    vec![0; 256],
                ),
                request(
                    Opcode::RC_RDMA_WRITE_MIDDLE,
                    1,
                    false,
                    ExtHeaders::None,
                    vec![0; 256],
                ),
            ],
        ),
        (
            "READ inside a WRITE",
            vec![
                request(
                    Opcode::RC_RDMA_WRITE_FIRST,
                    0,
                    false,
                    reth(600),
                    vec![0; 256],
                ),
                request(Opcode::RC_RDMA_READ_REQUEST, 1, true, reth(10), vec![]),
            ],
        ),
        (
            "WRITE Only whose RETH says more than it carries",
            vec![request(
                Opcode::RC_RDMA_WRITE_ONLY,
                0,
                true,
                reth(100),
                vec![0; 99],
            )],
        ),
        (
            "WRITE First whose RETH fits one packet",
            vec![request(
                Opcode::RC_RDMA_WRITE_FIRST,
                0,
                false,
                reth(256),
                vec![0; 256],
            )],
        ),
        (
            "WRITE Last past the RETH length",
            vec![
                request(
                    Opcode::RC_RDMA_WRITE_FIRST,
                    0,
                    false,
                    reth(300),
                    vec![0; 256],
                ),
                request(
                    Opcode::RC_RDMA_WRITE_LAST,
                    1,
                    true,
                    ExtHeaders::None,
                    vec![0; 45],
                ),
            ],
        ),
        (
            "WRITE Middle reaching the RETH length",
            vec![
                request(
                    Opcode::RC_RDMA_WRITE_FIRST,
                    0,
                    false,
                    reth(512),
                    vec![0; 256],
                ),
                request(
                    Opcode::RC_RDMA_WRITE_MIDDLE,
                    1,
                    false,
                    ExtHeaders::None,
                    vec![0; 256],
                ),
            ],
        ),
        (
            "SEND Only with Immediate (not implemented)",
            vec![request(
                Opcode::RC_SEND_ONLY_IMM,
                0,
                true,
                ExtHeaders::Imm(ImmDt(7)),
                vec![0; 4],
            )],
        ),
    ];
    for (name, pkts) in cases {
        let mut b = RcQp::new(cfg(MTU), path(B, 0, 0));
        let mut mem = Mem::new(2);
        let before = mem.snapshot();
        let mut out = Vec::new();
        for pkt in &pkts {
            out.extend(b.receive(5, pkt, &mut mem));
        }
        out.extend(b.poll_transmit(5));
        let last = out.last().unwrap_or_else(|| panic!("{name}: no answer"));
        assert_eq!(aeth(last).unwrap().syndrome, 0x61, "{name}");
        assert_eq!(last.bth.psn, pkts.last().unwrap().bth.psn, "{name}");
        assert_eq!(b.state(), QpState::Error, "{name}");
        assert!(mem.received.is_empty(), "{name}");
        // Only a WRITE's in-range first packet may have landed before the refusal.
        if pkts[0].bth.opcode != Opcode::RC_RDMA_WRITE_FIRST || pkts.len() == 1 {
            assert_eq!(mem.snapshot(), before, "{name}");
        }
        assert_eq!(mem.violations, 0, "{name}");
        // And then nothing more is taken.
        assert!(b.receive(6, &pkts[0], &mut mem).is_empty());
        assert_eq!(b.stats().last_drop, Some(RxDrop::QpInError));
    }
}

/// Random packets, in the wire's structure but wrong in one or more ways:
/// PSNs near and far from the expected one, opcodes of every kind, keys and
/// addresses in, near and outside the regions, lengths around the PMTU, syndromes of
/// every kind. The QPs never panic, never touch memory outside a region or its
/// rights, and every packet they send encodes.
#[test]
fn random_hostile_packets_never_panic_or_escape_memory() {
    const MTU: usize = 256;
    let mut rng = Rng(0x00c0_ffee_1234_5678);
    let mut mem = Mem::new(3);
    let fresh = |rng: &mut Rng| {
        let base = rng.below(1 << 24) as u32;
        let mut qp = RcQp::new(cfg(MTU), path(B, base, psn::add(base, 0x1000)));
        // Requests of its own outstanding, so that responses have something to hit.
        qp.post(WorkRequest::RdmaRead {
            wr_id: 1,
            remote_addr: RW_VA,
            rkey: RW_KEY,
            len: 700,
        });
        qp.post(WorkRequest::Send {
            wr_id: 2,
            data: vec![5; 600],
        });
        qp.post(WorkRequest::RdmaWrite {
            wr_id: 3,
            remote_addr: RW_VA,
            rkey: RW_KEY,
            data: vec![6; 300],
        });
        (qp, base)
    };
    let (mut qp, mut base) = fresh(&mut rng);
    let mut out = qp.poll_transmit(0);
    let mut resets = 0;
    let mut answered = 0u64;
    let keys = [RW_KEY, RO_KEY, WO_KEY, 0, 0xffff_ffff, RW_KEY + 1];
    let vas = [RW_VA, RO_VA, WO_VA, 0, u64::MAX - 100];
    for i in 0..2000u64 {
        let now = i * 1_000;
        for p in &out {
            let bytes = p.encode().expect("what the QP sends encodes");
            assert_eq!(IbPacket::decode(&bytes).as_ref(), Ok(p));
        }
        let psn = match rng.below(6) {
            // The responder's expected PSN, just ahead of or behind it, the
            // requester's outstanding ones, anywhere.
            0 | 5 => qp.expected_psn(),
            1 => psn::add(qp.expected_psn(), 1 + rng.below(4) as u32),
            2 => psn::add(qp.expected_psn(), (1 + rng.below(4) as u32).wrapping_neg()),
            3 => psn::add(psn::add(base, 0x1000), rng.below(6) as u32),
            _ => rng.below(1 << 24) as u32,
        };
        let starts = [
            Opcode::RC_SEND_ONLY,
            Opcode::RC_SEND_FIRST,
            Opcode::RC_RDMA_WRITE_ONLY,
            Opcode::RC_RDMA_WRITE_FIRST,
            Opcode::RC_RDMA_READ_REQUEST,
        ];
        let op = match rng.below(10) {
            0 => Opcode(rng.below(256) as u8),
            1..=3 => starts[rng.below(starts.len() as u64) as usize],
            _ => Opcode(rng.below(0x12) as u8),
        };
        let len = if op.has_payload() {
            match rng.below(4) {
                0 => MTU,
                1 => rng.below(MTU as u64 + 64) as usize,
                2 => 0,
                _ => 700,
            }
        } else {
            0
        };
        // Half the RETHs are plausible: a real key, an address inside its
        // region, a length that fits the packet; the rest anything.
        let reth = if rng.below(2) == 0 {
            let k = rng.below(3) as usize;
            RethRepr {
                va: vas[k] + rng.below(0x1000),
                r_key: keys[k],
                dma_len: match op {
                    Opcode::RC_RDMA_WRITE_ONLY => len as u32,
                    Opcode::RC_RDMA_WRITE_FIRST => {
                        (len + 1 + rng.below(3 * MTU as u64) as usize) as u32
                    }
                    _ => rng.below(3 * MTU as u64) as u32,
                },
            }
        } else {
            RethRepr {
                va: vas[rng.below(vas.len() as u64) as usize].wrapping_add(rng.below(0x2_0000)),
                r_key: keys[rng.below(keys.len() as u64) as usize],
                dma_len: match rng.below(3) {
                    0 => rng.below(2 * MTU as u64) as u32,
                    1 => rng.below(1 << 20) as u32,
                    _ => rng.next() as u32,
                },
            }
        };
        let aeth = AethRepr {
            syndrome: rng.below(256) as u8,
            msn: rng.below(1 << 24) as u32,
        };
        let ext = match op.ext_kind() {
            Some(ExtKind::Reth) => ExtHeaders::Reth(reth),
            Some(ExtKind::Aeth) => ExtHeaders::Aeth(aeth),
            Some(ExtKind::Imm) => ExtHeaders::Imm(ImmDt(1)),
            Some(ExtKind::RethImm) => ExtHeaders::RethImm(reth, ImmDt(1)),
            // UD headers on an RC QP, and opcodes with none defined.
            _ => ExtHeaders::None,
        };
        let mut pkt = packet(A, op, psn, rng.below(2) == 0, ext, rng.bytes(len));
        match rng.below(20) {
            0 => pkt.bth.dest_qp = rng.below(1 << 24) as u32,
            1 => pkt.bth.p_key = rng.next() as u16,
            2 => pkt.lrh.slid = rng.next() as u16,
            _ => {}
        }
        mem.now = now;
        mem.recv_posted = rng.below(3) as usize;
        mem.recv_len = [0, 100, 1 << 20][rng.below(3) as usize];
        out = qp.receive(now, &pkt, &mut mem);
        answered += out.len() as u64;
        out.extend(qp.poll_transmit(now));
        let _ = qp.take_completions();
        let _ = qp.next_deadline_ns();
        if qp.state() == QpState::Error {
            resets += 1;
            (qp, base) = fresh(&mut rng);
            out = qp.poll_transmit(now);
        }
    }
    assert_eq!(mem.violations, 0, "an access without a passing check");
    assert!(
        resets > 10,
        "the hostile requests reached the checks: {resets}"
    );
    let carried_out = mem.writes + mem.reads + mem.received.len() as u64;
    assert!(carried_out > 30, "and some got through them: {carried_out}");
    assert!(answered > 100, "{answered}");
    println!(
        "2000 hostile packets: {resets} QP errors, {answered} answers, {} writes, {} reads, \
         {} SENDs delivered",
        mem.writes,
        mem.reads,
        mem.received.len()
    );
}

// ---------------------------------------------------------------------------------
// Throughput and loss figures.
// ---------------------------------------------------------------------------------

#[test]
fn one_mib_write_figures_clean_and_lossy() {
    const MTU: usize = 4096;
    const LEN: usize = 1 << 20;
    let data = Rng(0xfeed).bytes(LEN);
    for loss_ppm in [0u64, 10_000] {
        let mut p = Pair::simple(MTU, 0xff_ff80);
        p.wire.loss_ppm = loss_ppm;
        p.a().post(WorkRequest::RdmaWrite {
            wr_id: 1,
            remote_addr: RW_VA,
            rkey: RW_KEY,
            data: data.clone(),
        });
        p.run_until_done(A, 1, 10_000_000_000);
        assert_eq!(statuses(&p.done[0]), vec![WcStatus::Success]);
        assert_eq!(p.mem[1].at(RW_KEY, RW_VA, LEN), &data[..]);
        let a = p.qp[0].stats().clone();
        let b = p.qp[1].stats().clone();
        let packets = (LEN / MTU) as u64;
        assert_eq!(a.requests_sent, packets);
        let lost = p.wire.log.iter().filter(|s| s.fate == Fate::Drop).count();
        if loss_ppm == 0 {
            assert_eq!(a.retransmitted, 0);
            // An ACK per AckReq: every ack_req_interval-th packet, the last among them.
            assert_eq!(b.acks_sent, packets / u64::from(ack_req_interval(MTU)));
        } else {
            assert!(lost > 0 && a.retransmitted > 0);
        }
        println!(
            "1 MiB RDMA WRITE, MTU {MTU}, 100 Gb/s + 1 µs, loss {:.1}%: {} requests + {} \
             resent, {} ACKs/NAKs back, {} lost on the wire, {} timeouts, done at {:.1} µs \
             ({:.1} Gb/s)",
            loss_ppm as f64 / 1e4,
            a.requests_sent,
            a.retransmitted,
            b.packets_sent,
            lost,
            a.timeouts,
            p.done_at[0][0] as f64 / 1e3,
            (LEN as f64 * 8.0) / p.done_at[0][0] as f64
        );
    }
}

#[test]
fn mixed_traffic_both_ways_under_random_faults() {
    for seed in [1u64, 2, 3] {
        let mtu = [256, 1024, 4096][seed as usize - 1];
        let mut p = Pair::simple(mtu, (seed * 0x55_5555) as u32 & 0xff_ffff);
        p.wire = Wire::new(seed * 1000 + 7);
        p.wire.loss_ppm = 20_000;
        p.wire.dup_ppm = 10_000;
        p.wire.reorder_ppm = 10_000;
        p.wire.reorder_ns = 20_000;
        let mut rng = Rng(seed + 100);
        let mut sends = [Vec::new(), Vec::new()];
        let mut writes = Vec::new();
        let mut reads = Vec::new();
        for i in 0..24u64 {
            let side = if i % 3 == 2 { B } else { A };
            let len = rng.below(6 * mtu as u64) as usize;
            let va = RW_VA + (i % 12) * 0x1_0000;
            let wr = match rng.below(3) {
                0 => {
                    let data = rng.bytes(len);
                    sends[side.idx()].push(data.clone());
                    WorkRequest::Send { wr_id: i, data }
                }
                1 => {
                    let data = rng.bytes(len);
                    writes.push((side, va, i, data.clone()));
                    WorkRequest::RdmaWrite {
                        wr_id: i,
                        remote_addr: va,
                        rkey: RW_KEY,
                        data,
                    }
                }
                _ => {
                    let ro = RO_VA + rng.below(1000);
                    reads.push((side, i, ro, len));
                    WorkRequest::RdmaRead {
                        wr_id: i,
                        remote_addr: ro,
                        rkey: RO_KEY,
                        len: len as u32,
                    }
                }
            };
            p.qp[side.idx()].post(wr);
        }
        let n_a = (0..24).filter(|i| i % 3 != 2).count();
        p.run_until_done(A, n_a, 60_000_000_000);
        p.run_until_done(B, 24 - n_a, 60_000_000_000);
        for side in [A, B] {
            let d = &p.done[side.idx()];
            assert!(
                d.iter().all(|c| c.status == WcStatus::Success),
                "{seed}: {d:?}"
            );
            let ids: Vec<u64> = d.iter().map(|c| c.wr_id).collect();
            let mut sorted = ids.clone();
            sorted.sort();
            assert_eq!(ids, sorted, "posting order");
            // Every SEND arrived once, in order.
            let other = 1 - side.idx();
            assert_eq!(p.mem[other].received, sends[side.idx()], "{seed} {side:?}");
        }
        // Later WRITEs to one address win; each region slot holds its last writer.
        for (side, va, i, data) in &writes {
            let later = writes
                .iter()
                .any(|(s, v, j, _)| s == side && v == va && j > i);
            if !later {
                let other = 1 - side.idx();
                assert_eq!(
                    p.mem[other].at(RW_KEY, *va, data.len()),
                    &data[..],
                    "{seed}"
                );
            }
        }
        for (side, i, va, len) in &reads {
            let c = p.done[side.idx()].iter().find(|c| c.wr_id == *i).unwrap();
            let other = 1 - side.idx();
            assert_eq!(c.data, p.mem[other].at(RO_KEY, *va, *len), "{seed}");
        }
        assert_eq!(p.mem[0].violations + p.mem[1].violations, 0);
        let (a, b) = (p.qp[0].stats(), p.qp[1].stats());
        println!(
            "seed {seed}, MTU {mtu}, 2% loss, 1% dup, 1% reorder: A {} new + {} resent, \
             B {} new + {} resent, {} duplicates seen, {} timeouts, done at {:.2} ms",
            a.requests_sent,
            a.retransmitted,
            b.requests_sent,
            b.retransmitted,
            a.duplicates + b.duplicates,
            a.timeouts + b.timeouts,
            p.now as f64 / 1e6
        );
    }
}

#[test]
fn window_bounds_what_is_outstanding() {
    // A message longer than the window goes out a window at a time, at every PMTU.
    for mtu in [256, 1024, 4096] {
        let w = window_psns(mtu) as usize;
        assert_eq!(w, (64 * 1024 / mtu).min(128));
        let mut p = Pair::simple(mtu, 0);
        let n = 3 * w + 1;
        let data = Rng(5).bytes(n * mtu);
        p.a().post(WorkRequest::RdmaWrite {
            wr_id: 1,
            remote_addr: RW_VA,
            rkey: RW_KEY,
            data: data.clone(),
        });
        let first = p.a().poll_transmit(0);
        assert_eq!(first.len(), w);
        assert!(p.a().poll_transmit(0).is_empty(), "window full");
        // AckReq every quarter window, and on the last.
        let acks: Vec<usize> = first
            .iter()
            .enumerate()
            .filter(|(_, p)| p.bth.ack_req)
            .map(|(i, _)| i)
            .collect();
        let q = ack_req_interval(mtu) as usize;
        assert_eq!(q, w / 4);
        assert_eq!(acks, (1..=4).map(|k| k * q - 1).collect::<Vec<_>>());
        p.wire.send(0, A, first);
        p.run_until_done(A, 1, 1_000_000_000);
        assert_eq!(statuses(&p.done[0]), vec![WcStatus::Success]);
        assert_eq!(p.mem[1].at(RW_KEY, RW_VA, data.len()), &data[..]);
        assert_eq!(p.qp[0].stats().requests_sent, n as u64);
        assert_eq!(p.qp[0].stats().timeouts, 0, "AckReq within every window");
        // Never more than a window outstanding: PSNs sent minus the highest ACKed.
        let mut acked = 0u32;
        let mut sent = 0u32;
        let mut events: Vec<(u64, bool, u32)> = p
            .wire
            .log
            .iter()
            .map(|s| (s.at, s.from == A, s.pkt.bth.psn))
            .collect();
        events.sort_by_key(|e| (e.0, e.1));
        for (_, from_a, psn) in events {
            if from_a {
                sent = sent.max(psn + 1);
                assert!(
                    sent - acked <= w as u32,
                    "{mtu}: {sent} sent, {acked} acked"
                );
            } else {
                acked = acked.max(psn + 1);
            }
        }
    }
}

#[test]
fn message_longer_than_ibta_allows_fails_locally_in_order() {
    let mut p = Pair::simple(4096, 0x10);
    p.a().post(WorkRequest::Send {
        wr_id: 1,
        data: vec![1; 5000],
    });
    // 4 GiB - 1: more than the 2^31 bytes a message may have.
    p.a().post(WorkRequest::RdmaRead {
        wr_id: 2,
        remote_addr: RW_VA,
        rkey: RW_KEY,
        len: u32::MAX,
    });
    p.a().post(WorkRequest::Send {
        wr_id: 3,
        data: vec![3; 10],
    });
    p.run_until_done(A, 3, 1_000_000_000);
    assert_eq!(
        p.done[0]
            .iter()
            .map(|c| (c.wr_id, c.status))
            .collect::<Vec<_>>(),
        vec![
            (1, WcStatus::Success),
            (2, WcStatus::LocalLengthError),
            (3, WcStatus::Flushed)
        ]
    );
    assert!(
        p.wire
            .sent_by(A)
            .all(|s| s.pkt.bth.opcode != Opcode::RC_RDMA_READ_REQUEST),
        "never sent"
    );
    assert_eq!(p.qp[0].state(), QpState::Error);
    assert_eq!(p.mem[1].received, vec![vec![1; 5000]]);
}

#[test]
fn next_deadline_says_when_to_poll() {
    let c = cfg(1024);
    let t = c.ack_timeout_ns;
    let mut a = RcQp::new(c, path(A, 0, 0));
    let mut b = RcQp::new(c, path(B, 0, 0));
    let mut mem = Mem::new(4);
    assert_eq!(a.next_deadline_ns(), None, "nothing to do");
    a.post(WorkRequest::RdmaRead {
        wr_id: 1,
        remote_addr: RW_VA,
        rkey: RW_KEY,
        len: 3000,
    });
    assert_eq!(a.next_deadline_ns(), Some(0), "a packet is ready: now");
    let req = a.poll_transmit(1_000);
    assert_eq!(req.len(), 1);
    assert_eq!(a.next_deadline_ns(), Some(1_000 + t), "the ACK timer");
    assert!(a.poll_transmit(1_000 + t - 1).is_empty(), "not before it");
    // The responder queues the READ's responses and asks to be polled now.
    assert!(b.receive(2_000, &req[0], &mut mem).is_empty());
    assert_eq!(b.next_deadline_ns(), Some(2_000));
    let resp = b.poll_transmit(2_500);
    assert_eq!(resp.len(), 3);
    assert_eq!(b.next_deadline_ns(), None);
    // The first response restarts the timer from its arrival.
    assert!(a.receive(3_000, &resp[0], &mut mem).is_empty());
    assert_eq!(a.next_deadline_ns(), Some(3_000 + t));
    // At the timeout the READ is re-issued for what is missing.
    let again = a.poll_transmit(3_000 + t);
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].bth.psn, reth(&again[0]).map(|r| (r.va, r.dma_len))),
        (1, Some((RW_VA + 1024, 3000 - 1024)))
    );
    assert_eq!(a.stats().timeouts, 1);
    assert_eq!(a.next_deadline_ns(), Some(3_000 + 2 * t));
    // The rest of the original responses complete it; nothing is left to time.
    for r in &resp[1..] {
        assert!(a.receive(3_000 + t + 10, r, &mut mem).is_empty());
    }
    let c = a.take_completions();
    assert_eq!(statuses(&c), vec![WcStatus::Success]);
    assert_eq!(c[0].data, mem.at(RW_KEY, RW_VA, 3000));
    assert_eq!(a.next_deadline_ns(), None);
    // An RNR NAK holds the send queue for the timer it names.
    a.post(WorkRequest::Send {
        wr_id: 2,
        data: vec![1; 10],
    });
    let send = a.poll_transmit(5_000_000_000);
    assert_eq!(send[0].bth.psn, 3);
    mem.recv_posted = 0;
    let rnr = b.receive(5_000_000_100, &send[0], &mut mem);
    assert_eq!(aeth(&rnr[0]).map(|x| x.syndrome), Some(0x21));
    assert!(a.receive(5_000_000_200, &rnr[0], &mut mem).is_empty());
    let until = 5_000_000_200 + rnr_timer_ns(1);
    assert_eq!(a.next_deadline_ns(), Some(until));
    assert!(a.poll_transmit(until - 1).is_empty());
    assert_eq!(a.poll_transmit(until).len(), 1);
}
