//! What sits on the switch's management port: the built-in subnet manager
//! ([`crate::sm::sweep`]), whose directed-route SMPs configure every port and the
//! switch, and the subnet administrator ([`crate::sm::sa`]) answering PathRecord
//! queries on QP1 at the SM's LID from the ports the last sweep found.
//!
//! SA answers leave after a configurable processing time (OpenSM answers a PathRecord
//! in tens of microseconds on a small subnet; reference/ibsim-opensm.md §3.3), so the
//! round trip a driver sees in virtual time is wire time plus that.

use crate::device::datapath::{GSI_QKEY, ud_frame};
use crate::sm::sa::{SaFault, SaServer};
use crate::sm::sweep::{SmConfig, SmpOut, SubnetManager};
use crate::wire::{ExtHeaders, IbPacket};

/// The permissive LID directed-route SMPs travel with (IBTA vol. 1 §14.2.2).
const PERMISSIVE: u16 = 0xFFFF;

/// Default time the SA takes to answer a query.
pub const SA_PROCESSING_NS: u64 = 20_000;

/// The subnet manager and SA.
pub struct Manager {
    /// The sweeping subnet manager.
    pub sm: SubnetManager,
    /// The SA; its ports follow each finished sweep.
    pub sa: SaServer,
    /// How long the SA takes to answer.
    pub sa_processing_ns: u64,
    /// SA answers waiting for their time: `(due_ns, frame)`.
    delayed: Vec<(u64, Vec<u8>)>,
    outbox: Vec<(Vec<u8>, Option<u8>)>,
    sa_psn: u32,
    /// SA queries seen (answered or not).
    pub sa_queries: u64,
    /// Frames that were neither SMP answers nor SA queries.
    pub dropped: Vec<String>,
    started: bool,
    idle: bool,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("sm_lid", &self.sm.sm_lid())
            .field("sa_queries", &self.sa_queries)
            .finish()
    }
}

impl Default for Manager {
    fn default() -> Self {
        Manager::new(SmConfig::default())
    }
}

impl Manager {
    /// A subnet manager with `cfg`; it sweeps when the world first runs.
    pub fn new(cfg: SmConfig) -> Manager {
        let mut sa = SaServer::new(Vec::new());
        sa.prefix = cfg.gid_prefix;
        sa.sl = cfg.sm_sl;
        Manager {
            sm: SubnetManager::new(cfg),
            sa,
            sa_processing_ns: SA_PROCESSING_NS,
            delayed: Vec::new(),
            outbox: Vec::new(),
            sa_psn: 0,
            sa_queries: 0,
            dropped: Vec::new(),
            started: false,
            idle: false,
        }
    }

    /// A manager that never sweeps (the subnet is someone else's: OpenSM).
    pub fn idle() -> Manager {
        let mut m = Manager::new(SmConfig::default());
        m.started = true;
        m.idle = true;
        m
    }

    /// Makes the SA answer BUSY, nothing, or no record (or normally again).
    pub fn set_sa_fault(&mut self, fault: SaFault) {
        self.sa.fault = fault;
    }

    /// Moves every CA to a new LID at the next sweep (a restarted SM with another LID
    /// policy), and starts that sweep now.
    pub fn relabel(
        &mut self,
        now_ns: u64,
        offset: u16,
    ) -> Result<(), crate::sm::sweep::RelabelError> {
        self.sm.relabel(offset)?;
        let out = self.sm.start_sweep(now_ns);
        self.send_smps(out);
        Ok(())
    }

    fn send_smps(&mut self, out: Vec<SmpOut>) {
        for o in out {
            if let Some(f) = ud_frame(
                PERMISSIVE,
                PERMISSIVE,
                0,
                0xFFFF,
                0,
                0,
                0,
                0,
                o.mad.to_vec(),
            ) {
                self.outbox.push((f, None));
            }
        }
    }

    /// Frames to send, each with the switch port a raw directed send would take
    /// (always `None`: the switch routes SMPs by their path).
    pub fn take_outbox(&mut self) -> Vec<(Vec<u8>, Option<u8>)> {
        std::mem::take(&mut self.outbox)
    }

    /// The next time [`Self::poll`] has work.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        if self.idle {
            return None;
        }
        let first = if self.started { None } else { Some(0) };
        [
            first,
            self.sm.next_deadline(),
            self.delayed.iter().map(|d| d.0).min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Timers: the first sweep, SMP retries, periodic light sweeps, delayed SA answers.
    pub fn poll(&mut self, now_ns: u64) {
        if self.idle {
            return;
        }
        if !self.started {
            self.started = true;
            let out = self.sm.start_sweep(now_ns);
            self.send_smps(out);
        }
        let out = self.sm.poll(now_ns);
        self.send_smps(out);
        self.refresh_sa();
        let (due, rest): (Vec<_>, Vec<_>) = self.delayed.drain(..).partition(|d| d.0 <= now_ns);
        self.delayed = rest;
        self.outbox.extend(due.into_iter().map(|(_, f)| (f, None)));
    }

    fn refresh_sa(&mut self) {
        if self.sm.sweep_done() {
            self.sa.ports = self.sm.ports();
        }
    }

    /// A frame reached the management port.
    pub fn deliver(&mut self, now_ns: u64, frame: &[u8]) {
        let p = match IbPacket::decode(frame) {
            Ok(p) => p,
            Err(e) => return self.dropped.push(format!("malformed: {e:?}")),
        };
        match p.bth.dest_qp {
            0 => match self.sm.on_smp(now_ns, &p.payload) {
                Ok(out) => {
                    self.send_smps(out);
                    self.refresh_sa();
                }
                Err(e) => self.dropped.push(format!("SMP answer refused: {e:?}")),
            },
            1 => self.sa_query(now_ns, &p),
            qp => self
                .dropped
                .push(format!("packet for QP {qp:#x} at the SM")),
        }
    }

    fn sa_query(&mut self, now_ns: u64, p: &IbPacket) {
        let ExtHeaders::Deth(deth) = p.ext else {
            return self.dropped.push("QP1 packet without a DETH".into());
        };
        if deth.q_key != GSI_QKEY {
            return self
                .dropped
                .push(format!("SA query with Q_Key {:#x}", deth.q_key));
        }
        let Ok(mad) = <[u8; 256]>::try_from(p.payload.as_slice()) else {
            return self
                .dropped
                .push(format!("{}-byte SA MAD", p.payload.len()));
        };
        let Some(sm_lid) = self.sm.sm_lid() else {
            return self.dropped.push("SA query before the first sweep".into());
        };
        if p.lrh.dlid != sm_lid {
            return self
                .dropped
                .push(format!("QP1 MAD for LID {:#x}", p.lrh.dlid));
        }
        self.sa_queries += 1;
        self.refresh_sa();
        let Some(reply) = self.sa.handle(&mad) else {
            return;
        };
        let psn = self.sa_psn;
        self.sa_psn = (psn + 1) & 0xFF_FFFF;
        if let Some(f) = ud_frame(
            sm_lid,
            p.lrh.slid,
            p.lrh.sl,
            p.bth.p_key,
            deth.src_qp,
            1,
            GSI_QKEY,
            psn,
            reply.to_vec(),
        ) {
            self.delayed.push((now_ns + self.sa_processing_ns, f));
        }
    }
}
