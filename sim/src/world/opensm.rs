//! `--sm opensm`: the subnet is managed by a real, unmodified OpenSM on ibsim
//! (reference/ibsim-opensm.md), and the model's ports take what it configured.
//!
//! [`crate::ibsim::Fabric`] writes the netfile, starts ibsim and OpenSM (OpenSM on an
//! HCA of its own, §0.8) and attaches one client per model port as that node's
//! `issm` client, so requests to its QP1 reach it (§0.4). Each port then takes its
//! LID, SM LID and GUIDs from what OpenSM set, and the model switch is programmed
//! with those LIDs. QP0/QP1 traffic (SA, CM, DM MADs) leaves the model for ibsim and
//! comes back from it; RC traffic, which ibsim cannot carry (§0.12), stays on the
//! model fabric. Limits, as typed errors from [`crate::ibsim`]: at most nine model
//! ports (ten clients with OpenSM's), no SA answer longer than one MAD (§0.7).
//!
//! TIDs: ibsim stamps bits 63..48 of every request's TID with the sender's client
//! index and routes the answer by them (§0.5), so the answer would come back with
//! other high bits than the requester chose. A real fabric carries a TID end to end
//! (IBA 13.4.6.4: the responder copies it), so the bridge remembers the bits it
//! handed over for each request in flight and puts them back into the answer.
//!
//! Time: ibsim runs in wall-clock time. While a MAD is out and the model has nothing
//! else to do, the world waits for ibsim and advances virtual time by the wall time
//! waited, so a round trip through OpenSM shows in virtual time as what it took.
//! Processes are stopped by PID when the bridge is dropped, also on failure.

use std::time::{Duration, Instant};

use crate::device::datapath::{GSI_QKEY, ud_frame};
use crate::ibsim::{self, Client, Error, MadAddress, PortIdentity, PortSpec};
use crate::wire::{ExtHeaders, IbPacket};

/// How long after the last MAD sent the bridge keeps waiting for answers.
const EXPECT_FOR: Duration = Duration::from_secs(2);
/// Pause between polls of the clients' sockets while waiting.
const POLL: Duration = Duration::from_micros(100);

/// The running ibsim + OpenSM and the model ports attached to it.
#[derive(Debug)]
pub struct Bridge {
    fabric: ibsim::Fabric,
    names: Vec<String>,
    /// What OpenSM configured on each model port.
    pub identities: Vec<PortIdentity>,
    last_sent: Option<Instant>,
    /// MADs handed to ibsim.
    pub mads_sent: u64,
    /// MADs that came back from ibsim.
    pub mads_received: u64,
    /// MADs ibsim bounced (undeliverable: status 110, §0.6); the sender times out.
    pub bounced: u64,
    /// Requests in flight from model ports: (node, class, TID bits 47..0) and the
    /// TID's bits 63..48 as the port sent them, oldest first.
    tid_high: std::collections::VecDeque<((usize, u8, u64), u16)>,
}

/// Requests whose TIDs the bridge remembers (the oldest are forgotten: a requester
/// that has timed out no longer matches its answer anyway).
const TIDS_REMEMBERED: usize = 1024;
/// MAD header offsets: management class, method, transaction ID (srp-cm-sa-dm.md §1.3).
const MAD_CLASS: usize = 1;
const MAD_METHOD: usize = 3;
const MAD_TID: usize = 8;
/// Method bit 7: a response.
const METHOD_RESPONSE: u8 = 0x80;

fn tid_of(mad: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(
        mad.get(MAD_TID..MAD_TID + 8)?.try_into().ok()?,
    ))
}

impl Bridge {
    /// Starts ibsim and OpenSM for `ports` model ports named `ca0`, `ca1`, …
    pub fn start(ports: usize) -> Result<Bridge, Error> {
        let names: Vec<String> = (0..ports).map(|i| format!("ca{i}")).collect();
        let specs: Vec<PortSpec> = names.iter().map(|n| PortSpec::new(n)).collect();
        let mut fabric = ibsim::Fabric::start(&specs)?;
        let identities = names
            .iter()
            .map(|n| fabric.identity(n))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Bridge {
            fabric,
            names,
            identities,
            last_sent: None,
            mads_sent: 0,
            mads_received: 0,
            bounced: 0,
            tid_high: std::collections::VecDeque::new(),
        })
    }

    /// OpenSM's own LID (where SA queries go).
    pub fn opensm_lid(&self) -> u16 {
        self.fabric.opensm_lid()
    }

    /// The PIDs of ibsim and OpenSM, for checks that they are gone afterwards.
    pub fn process_ids(&self) -> [(&'static str, u32); 2] {
        self.fabric.process_ids()
    }

    fn client(&mut self, node: usize) -> Option<&mut Client> {
        let name = self.names.get(node)?.clone();
        self.fabric.client(&name)
    }

    /// Whether `frame` is a MAD the bridge carries (UD to QP0 or QP1).
    pub fn carries(frame: &IbPacket) -> bool {
        matches!(frame.ext, ExtHeaders::Deth(_)) && frame.bth.dest_qp <= 1
    }

    /// Hands node `node`'s MAD to ibsim.
    pub fn send(&mut self, node: usize, p: &IbPacket) -> Result<(), Error> {
        let ExtHeaders::Deth(deth) = p.ext else {
            return Ok(());
        };
        let Ok(mad) = <[u8; 256]>::try_from(p.payload.as_slice()) else {
            return Ok(());
        };
        let to = MadAddress {
            dlid: p.lrh.dlid,
            dqp: p.bth.dest_qp,
            qkey: deth.q_key,
            sqp: deth.src_qp,
        };
        if mad[MAD_METHOD] & METHOD_RESPONSE == 0
            && let Some(tid) = tid_of(&mad)
        {
            if self.tid_high.len() == TIDS_REMEMBERED {
                self.tid_high.pop_front();
            }
            let key = (node, mad[MAD_CLASS], tid & ibsim::mad::TID_MATCH_MASK);
            self.tid_high.push_back((key, (tid >> 48) as u16));
        }
        let Some(c) = self.client(node) else {
            return Ok(());
        };
        c.send(&to, &mad)?;
        self.mads_sent += 1;
        self.last_sent = Some(Instant::now());
        Ok(())
    }

    /// Whether answers may still come.
    pub fn expecting(&self) -> bool {
        self.last_sent.is_some_and(|t| t.elapsed() < EXPECT_FOR)
    }

    /// Puts back the TID bits 63..48 node `node` chose into an answer to its request.
    fn restore_tid(&mut self, node: usize, mad: &mut [u8; 256]) {
        if mad[MAD_METHOD] & METHOD_RESPONSE == 0 {
            return;
        }
        let Some(tid) = tid_of(mad) else { return };
        let key = (node, mad[MAD_CLASS], tid & ibsim::mad::TID_MATCH_MASK);
        if let Some(i) = self.tid_high.iter().position(|(k, _)| *k == key)
            && let Some((_, high)) = self.tid_high.remove(i)
        {
            let tid = u64::from(high) << 48 | key.2;
            mad[MAD_TID..MAD_TID + 8].copy_from_slice(&tid.to_be_bytes());
        }
    }

    /// MADs that arrived for the model ports within about `wait`, as frames for
    /// each node (LRH, BTH, DETH as a real port would have received them).
    pub fn poll(&mut self, wait: Duration) -> Result<Vec<(usize, Vec<u8>)>, Error> {
        let deadline = Instant::now() + wait;
        let mut got = Vec::new();
        loop {
            for node in 0..self.names.len() {
                let lid = self.identities[node].lid;
                let name = self.names[node].clone();
                let Some(c) = self.fabric.client(&name) else {
                    continue;
                };
                let mut arrived = Vec::new();
                while let Some(r) = c.try_recv()? {
                    arrived.push(r);
                }
                for r in arrived {
                    if r.bounced {
                        self.bounced += 1;
                        continue;
                    }
                    self.mads_received += 1;
                    let mut mad = r.mad;
                    self.restore_tid(node, &mut mad);
                    let qkey = if r.dqp == 1 { GSI_QKEY } else { 0 };
                    if let Some(f) =
                        ud_frame(r.slid, lid, 0, 0xFFFF, r.dqp, r.sqp, qkey, 0, mad.to_vec())
                    {
                        got.push((node, f));
                    }
                }
            }
            if !got.is_empty() || Instant::now() >= deadline {
                return Ok(got);
            }
            std::thread::sleep(POLL);
        }
    }
}
