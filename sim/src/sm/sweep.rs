//! The built-in subnet manager's sweep: discovery, LID assignment, switch programming
//! and port activation with directed-route SMPs (IBTA vol. 1 §14.2.2, attributes
//! §14.2.5), in the order OpenSM works (reference/ibsim-opensm.md §2–§3: it discovers,
//! assigns LIDs and keeps them stable by GUID, programs the switches' forwarding
//! tables, then brings every port to ARMED and ACTIVE; a light sweep every sweep
//! interval looks for port state changes and starts a heavy sweep when it finds one).
//!
//! The subnet manager lives on the switch's management port (port 0), so the switch
//! is hop count 0 and the CA on switch port `p` is the path `[p]`; its LID is the
//! switch's LID, which is assigned first. The engine is transport-agnostic and driven
//! by virtual time (nanoseconds): [`SubnetManager::start_sweep`],
//! [`SubnetManager::on_smp`] and [`SubnetManager::poll`] return the SMPs to send, as
//! 256-byte MADs with the path they carry; [`SubnetManager::next_deadline`] says when
//! to poll next. At most [`SmConfig::max_outstanding`] SMPs are on the wire at once;
//! an SMP not answered within [`SmConfig::smp_timeout_ns`] is sent again with the same
//! TID, up to [`SmConfig::retries`] times, then the sweep gives up on that port (or,
//! for the switch itself, fails) and records it.
//!
//! A heavy sweep, phase by phase (each phase waits for the previous one's answers):
//! 1. switch: SubnGet NodeInfo and SwitchInfo (and a SubnSet SwitchInfo that clears
//!    PortStateChange if it is set, so changes during the sweep are seen next time);
//! 2. SubnGet PortInfo of every switch port, 0..=n; ports whose link is down are
//!    skipped (and recorded);
//! 3. through each live port: SubnGet NodeInfo, then PortInfo of the CA's port;
//! 4. LIDs: the switch's (and so the SM's) first, then the CAs', stable by port GUID
//!    from sweep to sweep; SubnSet PortInfo with LID, SM LID, SM SL, subnet timeout
//!    and M_Key 0 wherever they differ;
//! 5. SubnSet LinearForwardingTable for every 64-LID block that differs from what was
//!    programmed, then SubnSet SwitchInfo for LinearFDBTop and LifeTimeValue;
//! 6. SubnSet PortInfo PortState ARMED on every port in INIT (switch ports included),
//!    then 7. ACTIVE on every port in ARMED.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use crate::fabric::switch::{
    LFT_BLOCK, LFT_NO_PORT, NODE_TYPE_CA, NODE_TYPE_SWITCH, NodeInfo, PortInfo, SMP_DATA_LEN,
    SmpError, SmpRepr, SwitchInfo, attr, method, phys_state, port_state,
};
use crate::sm::sa::PortEntry;

/// The highest unicast LID.
pub const MAX_UNICAST_LID: u16 = 0xBFFF;

/// What the subnet manager does and how long it waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmConfig {
    /// The switch's LID, which is also the SM's (it lives on switch port 0).
    pub first_lid: u16,
    /// PortInfo.SubnetTimeOut every port is given (4.096 µs × 2^value).
    pub subnet_timeout: u8,
    /// PortInfo.MasterSMSL every port is given.
    pub sm_sl: u8,
    /// SwitchInfo.LifeTimeValue the switch is given.
    pub life_time_value: u8,
    /// GID prefix every port is given.
    pub gid_prefix: u64,
    /// How long an SMP waits for its answer (OpenSM's transaction timeout, 200 ms).
    pub smp_timeout_ns: u64,
    /// How many times an unanswered SMP is sent again (OpenSM's transaction retries, 3).
    pub retries: u32,
    /// SMPs on the wire at once (OpenSM's max_wire_smps, 4).
    pub max_outstanding: usize,
    /// Time between light sweeps (OpenSM's sweep interval, 10 s).
    pub sweep_interval_ns: u64,
}

impl Default for SmConfig {
    fn default() -> Self {
        SmConfig {
            first_lid: 1,
            subnet_timeout: 18,
            sm_sl: 0,
            life_time_value: 18,
            gid_prefix: 0xFE80_0000_0000_0000,
            smp_timeout_ns: 200_000_000,
            retries: 3,
            max_outstanding: 4,
            sweep_interval_ns: 10_000_000_000,
        }
    }
}

/// One SMP for the transport to send: a directed-route MAD from the SM's node (the
/// switch), whose path is `path` (empty: the switch's own SMA; `[p]`: out of switch
/// port `p`). The path is also in the MAD's InitialPath.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmpOut {
    /// The 256-byte MAD.
    pub mad: [u8; 256],
    /// The output port at each hop.
    pub path: Vec<u8>,
}

/// What a sweep step was addressed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// The switch as a node (NodeInfo, SwitchInfo, its forwarding table).
    Switch,
    /// A port of the switch (0: the management port).
    SwitchPort(u8),
    /// The CA cabled to this switch port.
    Ca(u8),
}

/// Something a sweep could not do, or found wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweepIssue {
    /// No answer after every try.
    GaveUp {
        /// Whom the SMP was for.
        target: Target,
        /// Its attribute.
        attr_id: u16,
        /// Times it was sent.
        tries: u32,
    },
    /// The answer carried a non-zero status.
    Status {
        /// Whom the SMP was for.
        target: Target,
        /// Its attribute.
        attr_id: u16,
        /// The MAD status (15 bits).
        status: u16,
    },
    /// The answer's attribute could not be read.
    Malformed {
        /// Whom the SMP was for.
        target: Target,
        /// Why.
        error: SmpError,
    },
    /// The node at hop 0 is not a switch, or has no ports.
    NotASwitch {
        /// NodeInfo.NodeType.
        node_type: u8,
        /// NodeInfo.NumPorts.
        num_ports: u8,
    },
    /// Behind this switch port is something other than a CA (this manager handles one
    /// switch), or a CA reporting port 0.
    NotACa {
        /// The switch port.
        port: u8,
        /// NodeInfo.NodeType.
        node_type: u8,
        /// NodeInfo.LocalPortNum.
        local_port: u8,
    },
    /// A port GUID seen behind two switch ports; the second is left alone.
    DuplicateGuid {
        /// The switch port of the second.
        port: u8,
        /// The GUID.
        guid: u64,
    },
    /// No free unicast LID left.
    LidSpaceFull {
        /// The switch port of the CA that got none.
        port: u8,
    },
    /// A port did not reach the state it was set to.
    StateNotReached {
        /// Which port.
        target: Target,
        /// The state asked for.
        wanted: u8,
        /// The state reported.
        got: u8,
    },
}

/// A CA port whose LID a sweep changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LidChange {
    /// The switch port the CA is cabled to.
    pub port: u8,
    /// The CA's port GUID.
    pub guid: u64,
    /// The LID it had (0: none).
    pub old: u16,
    /// The LID it was given.
    pub new: u16,
}

/// What one heavy sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// When it started (virtual ns).
    pub started_ns: u64,
    /// When it finished or failed.
    pub finished_ns: u64,
    /// SMPs sent, retransmissions included.
    pub smps: u64,
    /// Of those, retransmissions.
    pub retries: u64,
    /// Answers taken.
    pub replies: u64,
    /// Switch ports skipped because their link was down.
    pub ports_down: Vec<u8>,
    /// CA ports whose LID changed.
    pub lid_changes: Vec<LidChange>,
    /// What went wrong.
    pub issues: Vec<SweepIssue>,
    /// The sweep failed (the switch itself could not be read or programmed).
    pub failed: bool,
}

/// Why [`SubnetManager::on_smp`] would not take an answer. The manager's state is
/// unchanged by a rejected answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyError {
    /// Not an SMP.
    Smp(SmpError),
    /// The method is not a response.
    NotAResponse {
        /// The method.
        method: u8,
    },
    /// No SMP with this TID is waiting for an answer.
    UnknownTid(u64),
    /// The TID is known but the answer is not to that SMP (class, version, attribute,
    /// modifier), or a directed-route answer lacks the D bit.
    Mismatch {
        /// The TID.
        tid: u64,
    },
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ReplyError::Smp(e) => write!(f, "{e}"),
            ReplyError::NotAResponse { method } => {
                write!(f, "method {method:#04x} is not a response")
            }
            ReplyError::UnknownTid(tid) => write!(f, "no SMP with TID {tid:#x} outstanding"),
            ReplyError::Mismatch { tid } => {
                write!(f, "answer with TID {tid:#x} does not match its request")
            }
        }
    }
}

impl std::error::Error for ReplyError {}

/// Why a relabel is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelabelError {
    /// A CA's LID would leave the unicast range.
    OutOfRange {
        /// The LID.
        lid: u16,
        /// The offset asked for.
        offset: u16,
    },
    /// A moved LID would land on a LID that is not moved (the switch's).
    Collision {
        /// The LID.
        lid: u16,
    },
}

impl fmt::Display for RelabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RelabelError::OutOfRange { lid, offset } => {
                write!(f, "LID {lid:#06x} + {offset} leaves the unicast range")
            }
            RelabelError::Collision { lid } => write!(f, "moved LID {lid:#06x} is taken"),
        }
    }
}

impl std::error::Error for RelabelError {}

/// Counts over the manager's life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SmStats {
    /// SMPs sent, retransmissions and light-sweep probes included.
    pub smps: u64,
    /// Retransmissions.
    pub retries: u64,
    /// Answers taken.
    pub replies: u64,
    /// Answers rejected by [`SubnetManager::on_smp`].
    pub rejected: u64,
    /// Heavy sweeps started.
    pub heavy_sweeps: u64,
    /// Light sweeps (SwitchInfo probes) started.
    pub light_sweeps: u64,
}

/// Why an SMP is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Job {
    SwitchNode,
    SwitchInfo,
    ClearChange,
    SwitchPort(u8),
    CaNode(u8),
    CaPort(u8),
    Configure(Target),
    Lft(u16),
    SwitchTop,
    Arm(Target),
    Activate(Target),
    Probe,
}

impl Job {
    fn target(self) -> Target {
        match self {
            Job::SwitchNode
            | Job::SwitchInfo
            | Job::ClearChange
            | Job::Lft(_)
            | Job::SwitchTop
            | Job::Probe => Target::Switch,
            Job::SwitchPort(p) => Target::SwitchPort(p),
            Job::CaNode(p) | Job::CaPort(p) => Target::Ca(p),
            Job::Configure(t) | Job::Arm(t) | Job::Activate(t) => t,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Request {
    job: Job,
    method: u8,
    attr_id: u16,
    attr_mod: u32,
    /// `None`: the switch; `Some(p)`: the CA out of switch port `p`.
    via: Option<u8>,
    data: [u8; SMP_DATA_LEN],
}

#[derive(Clone, Copy, Debug)]
struct InFlight {
    req: Request,
    tid: u64,
    deadline: u64,
    tries: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Discover,
    SwitchPorts,
    Remote,
    Configure,
    Route,
    Arm,
    Activate,
}

#[derive(Clone, Copy, Debug, Default)]
struct CaSeen {
    node: Option<NodeInfo>,
    info: Option<PortInfo>,
    lid: u16,
    dropped: bool,
}

impl CaSeen {
    fn live(&self) -> bool {
        !self.dropped && self.node.is_some() && self.info.is_some()
    }
}

#[derive(Clone, Debug)]
struct Sweep {
    phase: Phase,
    report: SweepReport,
    node: Option<NodeInfo>,
    info: Option<SwitchInfo>,
    sw_ports: BTreeMap<u8, PortInfo>,
    cas: BTreeMap<u8, CaSeen>,
    switch_lid: u16,
}

/// The subnet manager.
#[derive(Clone, Debug)]
pub struct SubnetManager {
    cfg: SmConfig,
    next_tid: u64,
    queue: VecDeque<Request>,
    in_flight: Vec<InFlight>,
    sweep: Option<Sweep>,
    /// When to look again: a light sweep, or a heavy one after a failure.
    next_look_ns: Option<u64>,
    /// A trap came while a sweep was under way: look again as soon as it ends.
    trap_pending: bool,
    heavy_next: bool,
    guid2lid: BTreeMap<u64, u16>,
    switch_guid: Option<u64>,
    switch_lid: Option<u16>,
    ca_base: u16,
    /// The switch's LFT blocks as this manager last programmed them (absent: unknown).
    lft: BTreeMap<u16, [u8; LFT_BLOCK]>,
    entries: Vec<PortEntry>,
    reports: Vec<SweepReport>,
    done: bool,
    stats: SmStats,
}

/// Rate code (IBTA vol. 1 §15.2.5.16, PathRecord Rate) of a link of `width` (the
/// LinkWidthActive code) at `speed` (LinkSpeedActive) / `ext` (LinkSpeedExtActive).
fn rate_code(width: u8, speed: u8, ext: u8) -> u8 {
    let lanes: u32 = match width {
        1 => 1,
        2 => 4,
        4 => 8,
        8 => 12,
        16 => 2,
        _ => 1,
    };
    // Per-lane rate in tenths of Gb/s, by the names the rate codes use.
    let lane = match (ext, speed) {
        (4, _) => 500,
        (2, _) => 250,
        (1, _) => 140,
        (_, 4) => 100,
        (_, 2) => 50,
        _ => 25,
    };
    match lanes * lane {
        25 => 2,
        50 => 5,
        100 => 3,
        140 => 11,
        200 => 6,
        250 => 15,
        280 => 19,
        300 => 4,
        400 => 7,
        500 => 20,
        560 => 12,
        600 => 8,
        800 => 9,
        1000 => 16,
        1120 => 13,
        1200 => 10,
        1680 => 14,
        2000 => 17,
        3000 => 18,
        4000 => 21,
        6000 => 22,
        _ => 2,
    }
}

/// Gb/s × 10 behind a rate code, for taking the slower of two ends.
fn rate_value(code: u8) -> u32 {
    match code {
        2 => 25,
        5 => 50,
        3 => 100,
        11 => 140,
        6 => 200,
        15 => 250,
        19 => 280,
        4 => 300,
        7 => 400,
        20 => 500,
        12 => 560,
        8 => 600,
        9 => 800,
        16 => 1000,
        13 => 1120,
        10 => 1200,
        14 => 1680,
        17 => 2000,
        18 => 3000,
        21 => 4000,
        22 => 6000,
        _ => 0,
    }
}

fn port_rate(p: &PortInfo) -> u8 {
    rate_code(
        p.link_width_active,
        p.link_speed_active,
        p.link_speed_ext_active,
    )
}

impl SubnetManager {
    /// A manager that has swept nothing yet.
    pub fn new(cfg: SmConfig) -> SubnetManager {
        SubnetManager {
            cfg,
            next_tid: 1,
            queue: VecDeque::new(),
            in_flight: Vec::new(),
            sweep: None,
            next_look_ns: None,
            trap_pending: false,
            heavy_next: false,
            guid2lid: BTreeMap::new(),
            switch_guid: None,
            switch_lid: None,
            ca_base: cfg.first_lid.saturating_add(1),
            lft: BTreeMap::new(),
            entries: Vec::new(),
            reports: Vec::new(),
            done: false,
            stats: SmStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SmConfig {
        &self.cfg
    }

    /// Starts a heavy sweep at `now`, abandoning any sweep or probe in progress (their
    /// late answers are then rejected as unknown TIDs). Returns the first SMPs.
    pub fn start_sweep(&mut self, now: u64) -> Vec<SmpOut> {
        self.queue.clear();
        self.in_flight.clear();
        self.done = false;
        self.heavy_next = false;
        self.next_look_ns = None;
        self.stats.heavy_sweeps += 1;
        self.sweep = Some(Sweep {
            phase: Phase::Discover,
            report: SweepReport {
                started_ns: now,
                ..SweepReport::default()
            },
            node: None,
            info: None,
            sw_ports: BTreeMap::new(),
            cas: BTreeMap::new(),
            switch_lid: 0,
        });
        self.queue
            .push_back(get(Job::SwitchNode, attr::NODE_INFO, 0, None));
        self.queue
            .push_back(get(Job::SwitchInfo, attr::SWITCH_INFO, 0, None));
        self.drive(now)
    }

    /// Takes an answer (a 256-byte SMP GetResp) at `now`; returns the SMPs that follow.
    /// An answer that is not one to an outstanding SMP is rejected and changes
    /// nothing; an answer with a bad status ends that step (recorded in the report).
    pub fn on_smp(&mut self, now: u64, reply: &[u8]) -> Result<Vec<SmpOut>, ReplyError> {
        let r = self.match_reply(reply);
        let (req, smp) = match r {
            Ok(x) => x,
            Err(e) => {
                self.stats.rejected += 1;
                return Err(e);
            }
        };
        self.stats.replies += 1;
        if let Some(s) = self.sweep.as_mut() {
            s.report.replies += 1;
        }
        let mut out = Vec::new();
        if smp.status != 0 {
            self.step_failed(
                now,
                req.job,
                SweepIssue::Status {
                    target: req.job.target(),
                    attr_id: req.attr_id,
                    status: smp.status,
                },
                &mut out,
            );
        } else {
            self.handle(now, req, &smp, &mut out);
        }
        out.extend(self.drive(now));
        Ok(out)
    }

    fn match_reply(&mut self, reply: &[u8]) -> Result<(Request, SmpRepr), ReplyError> {
        let smp = SmpRepr::parse(reply).map_err(ReplyError::Smp)?;
        if !smp.is_response() {
            return Err(ReplyError::NotAResponse { method: smp.method });
        }
        let at = self
            .in_flight
            .iter()
            .position(|f| f.tid == smp.tid)
            .ok_or(ReplyError::UnknownTid(smp.tid))?;
        let req = self.in_flight[at].req;
        if !smp.directed
            || !smp.direction
            || smp.class_version != 1
            || smp.method != method::GET_RESP
            || smp.attr_id != req.attr_id
            || smp.attr_mod != req.attr_mod
        {
            return Err(ReplyError::Mismatch { tid: smp.tid });
        }
        self.in_flight.swap_remove(at);
        Ok((req, smp))
    }

    /// Sends again what has waited too long, gives up on what has been tried enough,
    /// and starts a light sweep (or a heavy one after a failure) when it is due.
    pub fn poll(&mut self, now: u64) -> Vec<SmpOut> {
        let mut out = Vec::new();
        let mut expired = Vec::new();
        for f in self.in_flight.iter_mut().filter(|f| f.deadline <= now) {
            if f.tries <= self.cfg.retries {
                f.tries += 1;
                f.deadline = now.saturating_add(self.cfg.smp_timeout_ns);
                self.stats.smps += 1;
                self.stats.retries += 1;
                if let Some(s) = self.sweep.as_mut() {
                    s.report.smps += 1;
                    s.report.retries += 1;
                }
                out.push(render(&f.req, f.tid));
            } else {
                expired.push(f.tid);
            }
        }
        for tid in expired {
            let Some(at) = self.in_flight.iter().position(|f| f.tid == tid) else {
                continue;
            };
            let f = self.in_flight.swap_remove(at);
            let issue = SweepIssue::GaveUp {
                target: f.req.job.target(),
                attr_id: f.req.attr_id,
                tries: f.tries,
            };
            self.step_failed(now, f.req.job, issue, &mut out);
        }
        if self.sweep.is_none() && std::mem::take(&mut self.trap_pending) {
            self.heavy_next = true;
            self.next_look_ns = Some(now);
        }
        let probing = self.in_flight.iter().any(|f| f.req.job == Job::Probe);
        if self.sweep.is_none() && !probing && self.next_look_ns.is_some_and(|t| t <= now) {
            self.next_look_ns = None;
            if self.heavy_next {
                out.extend(self.start_sweep(now));
                return out;
            }
            self.stats.light_sweeps += 1;
            self.queue
                .push_back(get(Job::Probe, attr::SWITCH_INFO, 0, None));
        }
        out.extend(self.drive(now));
        out
    }

    /// A switch reported a link state change (Trap 128, IBTA vol. 1 §14.3.11, which
    /// a switch's SMA sends when PortStateChange is set): a heavy sweep at `at`, as
    /// OpenSM sweeps on a trap rather than waiting for its sweep interval; during a
    /// sweep, right after it (the sweep under way may have read the port before the
    /// change, and cleared PortStateChange after it).
    pub fn trap(&mut self, at: u64) {
        self.heavy_next = true;
        if self.sweep.is_some() {
            self.trap_pending = true;
        } else {
            self.next_look_ns = Some(self.next_look_ns.map_or(at, |t| t.min(at)));
        }
    }

    /// When [`SubnetManager::poll`] next has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        let flight = self.in_flight.iter().map(|f| f.deadline).min();
        let look = if self.sweep.is_none() {
            self.next_look_ns
        } else {
            None
        };
        match (flight, look) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the last heavy sweep finished and none is running.
    pub fn sweep_done(&self) -> bool {
        self.done && self.sweep.is_none()
    }

    /// The CA ports the last finished sweep left ACTIVE, for the SA.
    pub fn ports(&self) -> Vec<PortEntry> {
        self.entries.clone()
    }

    /// The switch's LID, which is the SM's LID, once assigned.
    pub fn sm_lid(&self) -> Option<u16> {
        self.switch_lid
    }

    /// The LID this manager keeps for a port GUID.
    pub fn lid_of(&self, guid: u64) -> Option<u16> {
        self.guid2lid.get(&guid).copied()
    }

    /// Every heavy sweep's report, oldest first.
    pub fn reports(&self) -> &[SweepReport] {
        &self.reports
    }

    /// The last finished (or failed) heavy sweep's report.
    pub fn last_report(&self) -> Option<&SweepReport> {
        self.reports.last()
    }

    /// Counts over the manager's life.
    pub fn stats(&self) -> SmStats {
        self.stats
    }

    /// A new LID policy, as after a restart with another one: every CA's LID moves up
    /// by `offset`, and new CAs are numbered from the moved base. Takes effect at the
    /// next heavy sweep, which sets the new LIDs on the ports (each port's agent then
    /// sees its LID change).
    pub fn relabel(&mut self, offset: u16) -> Result<(), RelabelError> {
        let fixed: BTreeSet<u16> = self
            .guid2lid
            .iter()
            .filter(|(g, _)| Some(**g) == self.switch_guid)
            .map(|(_, l)| *l)
            .collect();
        let mut moved = BTreeMap::new();
        for (&guid, &lid) in &self.guid2lid {
            if Some(guid) == self.switch_guid {
                continue;
            }
            let new = lid
                .checked_add(offset)
                .filter(|&l| l <= MAX_UNICAST_LID)
                .ok_or(RelabelError::OutOfRange { lid, offset })?;
            if fixed.contains(&new) {
                return Err(RelabelError::Collision { lid: new });
            }
            moved.insert(guid, new);
        }
        let base = self
            .ca_base
            .checked_add(offset)
            .filter(|&l| l <= MAX_UNICAST_LID)
            .ok_or(RelabelError::OutOfRange {
                lid: self.ca_base,
                offset,
            })?;
        self.guid2lid.extend(moved);
        self.ca_base = base;
        Ok(())
    }

    /// Sends what the window allows; when a sweep's phase has nothing left queued or
    /// outstanding, moves it to the next phase.
    fn drive(&mut self, now: u64) -> Vec<SmpOut> {
        let mut out = Vec::new();
        loop {
            while self.in_flight.len() < self.cfg.max_outstanding.max(1) {
                let Some(req) = self.queue.pop_front() else {
                    break;
                };
                let tid = self.next_tid;
                self.next_tid = self.next_tid.wrapping_add(1).max(1);
                self.in_flight.push(InFlight {
                    req,
                    tid,
                    deadline: now.saturating_add(self.cfg.smp_timeout_ns),
                    tries: 1,
                });
                self.stats.smps += 1;
                if req.job != Job::Probe
                    && let Some(s) = self.sweep.as_mut()
                {
                    s.report.smps += 1;
                }
                out.push(render(&req, tid));
            }
            if !self.queue.is_empty() || !self.in_flight.is_empty() || self.sweep.is_none() {
                return out;
            }
            self.advance(now);
        }
    }

    /// The current phase is complete: queue the next one's SMPs, or finish.
    fn advance(&mut self, now: u64) {
        let Some(mut s) = self.sweep.take() else {
            return;
        };
        match s.phase {
            Phase::Discover => {
                let Some(node) = s.node.filter(|_| s.info.is_some()) else {
                    return self.fail(now, s, None);
                };
                for p in 0..=node.num_ports {
                    self.queue
                        .push_back(get(Job::SwitchPort(p), attr::PORT_INFO, p.into(), None));
                }
                s.phase = Phase::SwitchPorts;
            }
            Phase::SwitchPorts => {
                if !s.sw_ports.contains_key(&0) {
                    return self.fail(now, s, None);
                }
                for (&p, info) in s.sw_ports.range(1..) {
                    if info.port_phys_state == phys_state::LINK_UP
                        && info.port_state != port_state::DOWN
                    {
                        s.cas.insert(p, CaSeen::default());
                        self.queue
                            .push_back(get(Job::CaNode(p), attr::NODE_INFO, 0, Some(p)));
                    } else {
                        s.report.ports_down.push(p);
                    }
                }
                s.phase = Phase::Remote;
            }
            Phase::Remote => {
                self.assign_lids(&mut s);
                self.queue_configure(&mut s);
                s.phase = Phase::Configure;
            }
            Phase::Configure => {
                self.queue_routes(&s);
                s.phase = Phase::Route;
            }
            Phase::Route => {
                self.queue_states(&s, port_state::INIT, port_state::ARMED);
                s.phase = Phase::Arm;
            }
            Phase::Arm => {
                self.queue_states(&s, port_state::ARMED, port_state::ACTIVE);
                s.phase = Phase::Activate;
            }
            Phase::Activate => return self.finish(now, s),
        }
        self.sweep = Some(s);
    }

    fn fail(&mut self, now: u64, mut s: Sweep, issue: Option<SweepIssue>) {
        s.report.issues.extend(issue);
        s.report.failed = true;
        s.report.finished_ns = now;
        self.reports.push(s.report);
        self.queue.clear();
        self.in_flight.clear();
        self.done = false;
        self.heavy_next = true;
        self.next_look_ns = Some(now.saturating_add(self.cfg.sweep_interval_ns));
    }

    fn finish(&mut self, now: u64, mut s: Sweep) {
        let mut entries = Vec::new();
        for (&p, ca) in &s.cas {
            let (Some(node), Some(info)) = (ca.node, ca.info) else {
                continue;
            };
            if ca.dropped || info.port_state != port_state::ACTIVE {
                continue;
            }
            let sw = s.sw_ports.get(&p).copied().unwrap_or(info);
            let mtu = info.mtu_cap.min(sw.mtu_cap);
            let (a, b) = (port_rate(&info), port_rate(&sw));
            let rate = if rate_value(a) <= rate_value(b) { a } else { b };
            entries.push(PortEntry {
                guid: node.port_guid,
                lid: ca.lid,
                mtu,
                rate,
            });
        }
        self.entries = entries;
        s.report.finished_ns = now;
        self.reports.push(s.report);
        self.done = true;
        self.heavy_next = false;
        self.next_look_ns = Some(now.saturating_add(self.cfg.sweep_interval_ns));
    }

    /// A step ended without a usable answer: the switch's own steps fail the sweep, a
    /// CA's or a switch port's drop that port from the rest of it; a failed probe
    /// waits for the next interval.
    fn step_failed(&mut self, now: u64, job: Job, issue: SweepIssue, out: &mut Vec<SmpOut>) {
        if job == Job::Probe {
            self.next_look_ns = Some(now.saturating_add(self.cfg.sweep_interval_ns));
            return;
        }
        let Some(mut s) = self.sweep.take() else {
            return;
        };
        match job.target() {
            Target::Ca(p) | Target::SwitchPort(p) if p != 0 => {
                s.report.issues.push(issue);
                if let Some(ca) = s.cas.get_mut(&p) {
                    ca.dropped = true;
                }
                self.sweep = Some(s);
            }
            _ => {
                self.fail(now, s, Some(issue));
                out.clear();
            }
        }
    }

    fn handle(&mut self, now: u64, req: Request, smp: &SmpRepr, out: &mut Vec<SmpOut>) {
        if req.job == Job::Probe {
            match SwitchInfo::parse(&smp.data) {
                Ok(si) if si.port_state_change => out.extend(self.start_sweep(now)),
                _ => self.next_look_ns = Some(now.saturating_add(self.cfg.sweep_interval_ns)),
            }
            return;
        }
        let Some(mut s) = self.sweep.take() else {
            return;
        };
        let target = req.job.target();
        let malformed = |e| SweepIssue::Malformed { target, error: e };
        let result: Result<(), SweepIssue> = match req.job {
            Job::SwitchNode => match NodeInfo::parse(&smp.data) {
                Ok(n) if n.node_type == NODE_TYPE_SWITCH && n.num_ports > 0 => {
                    if self.switch_guid != Some(n.node_guid) {
                        self.lft.clear();
                    }
                    self.switch_guid = Some(n.node_guid);
                    s.node = Some(n);
                    Ok(())
                }
                Ok(n) => Err(SweepIssue::NotASwitch {
                    node_type: n.node_type,
                    num_ports: n.num_ports,
                }),
                Err(e) => Err(malformed(e)),
            },
            Job::SwitchInfo => match SwitchInfo::parse(&smp.data) {
                Ok(si) => {
                    if si.port_state_change {
                        // Clear it now, so a change during this sweep shows next time.
                        let mut d = [0u8; SMP_DATA_LEN];
                        si.emit(&mut d);
                        self.queue
                            .push_back(set(Job::ClearChange, attr::SWITCH_INFO, 0, None, d));
                    }
                    s.info = Some(si);
                    Ok(())
                }
                Err(e) => Err(malformed(e)),
            },
            Job::SwitchPort(p) => PortInfo::parse(&smp.data)
                .map(|pi| {
                    s.sw_ports.insert(p, pi);
                })
                .map_err(malformed),
            Job::CaNode(p) => match NodeInfo::parse(&smp.data) {
                Ok(n) if n.node_type == NODE_TYPE_CA && n.local_port_num != 0 => {
                    if let Some(ca) = s.cas.get_mut(&p) {
                        ca.node = Some(n);
                    }
                    self.queue.push_back(get(
                        Job::CaPort(p),
                        attr::PORT_INFO,
                        n.local_port_num.into(),
                        Some(p),
                    ));
                    Ok(())
                }
                Ok(n) => Err(SweepIssue::NotACa {
                    port: p,
                    node_type: n.node_type,
                    local_port: n.local_port_num,
                }),
                Err(e) => Err(malformed(e)),
            },
            Job::CaPort(p) => match PortInfo::parse(&smp.data) {
                Ok(pi) => {
                    if let Some(ca) = s.cas.get_mut(&p) {
                        ca.info = Some(pi);
                    }
                    Ok(())
                }
                Err(e) => Err(malformed(e)),
            },
            Job::Configure(t) | Job::Arm(t) | Job::Activate(t) => {
                match PortInfo::parse(&smp.data) {
                    Ok(pi) => record_port(&mut s, t, req.job, pi),
                    Err(e) => Err(malformed(e)),
                }
            }
            Job::Lft(block) => {
                self.lft.insert(block, smp.data);
                Ok(())
            }
            Job::ClearChange | Job::SwitchTop | Job::Probe => Ok(()),
        };
        self.sweep = Some(s);
        if let Err(issue) = result {
            self.step_failed(now, req.job, issue, out);
        }
    }

    /// LIDs: the switch's first (kept by GUID, else `first_lid`), then each live CA's,
    /// kept by port GUID or the lowest free one from the CA base.
    fn assign_lids(&mut self, s: &mut Sweep) {
        let Some(sw_guid) = s.node.map(|n| n.node_guid) else {
            return;
        };
        let mut used: BTreeSet<u16> = self.guid2lid.values().copied().collect();
        let switch_lid = match self.guid2lid.get(&sw_guid) {
            Some(&l) => l,
            None => {
                let l = free_lid(&used, self.cfg.first_lid).unwrap_or(self.cfg.first_lid);
                self.guid2lid.insert(sw_guid, l);
                used.insert(l);
                l
            }
        };
        s.switch_lid = switch_lid;
        self.switch_lid = Some(switch_lid);
        let mut seen = BTreeSet::new();
        for (&p, ca) in s.cas.iter_mut() {
            if !ca.live() {
                continue;
            }
            let (Some(node), Some(info)) = (ca.node, ca.info) else {
                continue;
            };
            let guid = node.port_guid;
            if !seen.insert(guid) || guid == sw_guid {
                s.report
                    .issues
                    .push(SweepIssue::DuplicateGuid { port: p, guid });
                ca.dropped = true;
                continue;
            }
            let lid = match self.guid2lid.get(&guid) {
                Some(&l) => l,
                None => match free_lid(&used, self.ca_base) {
                    Some(l) => {
                        self.guid2lid.insert(guid, l);
                        used.insert(l);
                        l
                    }
                    None => {
                        s.report.issues.push(SweepIssue::LidSpaceFull { port: p });
                        ca.dropped = true;
                        continue;
                    }
                },
            };
            ca.lid = lid;
            if info.lid != lid {
                s.report.lid_changes.push(LidChange {
                    port: p,
                    guid,
                    old: info.lid,
                    new: lid,
                });
            }
        }
    }

    /// The PortInfo a SubnSet carries: the port's own, with this subnet's LID, SM LID
    /// and SL, subnet timeout and M_Key 0, and `state`; every link setting "no change".
    fn port_set(&self, base: &PortInfo, lid: u16, sm_lid: u16, state: u8) -> [u8; SMP_DATA_LEN] {
        let p = PortInfo {
            m_key: 0,
            gid_prefix: self.cfg.gid_prefix,
            lid,
            master_sm_lid: sm_lid,
            m_key_lease_period: 0,
            link_width_enabled: 0,
            port_state: state,
            port_phys_state: 0,
            link_down_default_state: 0,
            m_key_protect_bits: 0,
            lmc: 0,
            link_speed_enabled: 0,
            master_sm_sl: self.cfg.sm_sl,
            client_reregister: false,
            subnet_timeout: self.cfg.subnet_timeout,
            link_speed_ext_enabled: 0,
            ..*base
        };
        let mut d = [0u8; SMP_DATA_LEN];
        p.emit(&mut d);
        d
    }

    fn needs_config(&self, info: &PortInfo, lid: u16, sm_lid: u16) -> bool {
        info.lid != lid
            || info.master_sm_lid != sm_lid
            || info.master_sm_sl != self.cfg.sm_sl
            || info.subnet_timeout != self.cfg.subnet_timeout
            || info.m_key != 0
            || info.gid_prefix != self.cfg.gid_prefix
    }

    fn queue_configure(&mut self, s: &mut Sweep) {
        let sm_lid = s.switch_lid;
        if let Some(p0) = s.sw_ports.get(&0)
            && self.needs_config(p0, sm_lid, sm_lid)
        {
            let d = self.port_set(p0, sm_lid, sm_lid, port_state::NO_CHANGE);
            self.queue.push_back(set(
                Job::Configure(Target::SwitchPort(0)),
                attr::PORT_INFO,
                0,
                None,
                d,
            ));
        }
        for (&p, ca) in &s.cas {
            let (Some(node), Some(info)) = (ca.node, ca.info) else {
                continue;
            };
            if ca.dropped || !self.needs_config(&info, ca.lid, sm_lid) {
                continue;
            }
            let d = self.port_set(&info, ca.lid, sm_lid, port_state::NO_CHANGE);
            self.queue.push_back(set(
                Job::Configure(Target::Ca(p)),
                attr::PORT_INFO,
                node.local_port_num.into(),
                Some(p),
                d,
            ));
        }
    }

    /// LFT blocks that differ from what was programmed, then SwitchInfo if its
    /// LinearFDBTop or LifeTimeValue differ.
    fn queue_routes(&mut self, s: &Sweep) {
        let mut want: BTreeMap<u16, u8> = BTreeMap::new();
        want.insert(s.switch_lid, 0);
        for (&p, ca) in &s.cas {
            if ca.live() {
                want.insert(ca.lid, p);
            }
        }
        let top = want.keys().next_back().copied().unwrap_or(0);
        let blocks = top / LFT_BLOCK as u16 + 1;
        for b in 0..blocks {
            let mut block = [LFT_NO_PORT; LFT_BLOCK];
            let first = b * LFT_BLOCK as u16;
            for (&lid, &port) in want.range(first..first + LFT_BLOCK as u16) {
                block[usize::from(lid - first)] = port;
            }
            if self.lft.get(&b) != Some(&block) {
                self.queue.push_back(set(
                    Job::Lft(b),
                    attr::LINEAR_FORWARDING_TABLE,
                    b.into(),
                    None,
                    block,
                ));
            }
        }
        if let Some(si) = s.info
            && (si.linear_fdb_top != top || si.life_time_value != self.cfg.life_time_value)
        {
            let mut d = [0u8; SMP_DATA_LEN];
            SwitchInfo {
                linear_fdb_top: top,
                life_time_value: self.cfg.life_time_value,
                port_state_change: false,
                ..si
            }
            .emit(&mut d);
            self.queue
                .push_back(set(Job::SwitchTop, attr::SWITCH_INFO, 0, None, d));
        }
    }

    /// SubnSet PortState `to` on every port (switch ports with a live CA, switch port
    /// 0, and the CAs) that is in `from`.
    fn queue_states(&mut self, s: &Sweep, from: u8, to: u8) {
        let job = |t| {
            if to == port_state::ARMED {
                Job::Arm(t)
            } else {
                Job::Activate(t)
            }
        };
        let sm_lid = s.switch_lid;
        for (&p, info) in &s.sw_ports {
            let live = p == 0 || s.cas.get(&p).is_some_and(|c| c.live());
            if live && info.port_state == from {
                let lid = if p == 0 { sm_lid } else { info.lid };
                let sm = if p == 0 { sm_lid } else { info.master_sm_lid };
                let d = self.port_set(info, lid, sm, to);
                self.queue.push_back(set(
                    job(Target::SwitchPort(p)),
                    attr::PORT_INFO,
                    p.into(),
                    None,
                    d,
                ));
            }
        }
        for (&p, ca) in &s.cas {
            let (Some(node), Some(info)) = (ca.node, ca.info) else {
                continue;
            };
            if ca.dropped || info.port_state != from {
                continue;
            }
            let d = self.port_set(&info, ca.lid, sm_lid, to);
            self.queue.push_back(set(
                job(Target::Ca(p)),
                attr::PORT_INFO,
                node.local_port_num.into(),
                Some(p),
                d,
            ));
        }
    }
}

/// Stores the PortInfo a SubnSet answered with, and checks the port took what was set.
fn record_port(s: &mut Sweep, t: Target, job: Job, pi: PortInfo) -> Result<(), SweepIssue> {
    let wanted = match job {
        Job::Arm(_) => Some(port_state::ARMED),
        Job::Activate(_) => Some(port_state::ACTIVE),
        _ => None,
    };
    match t {
        Target::SwitchPort(p) => {
            s.sw_ports.insert(p, pi);
        }
        Target::Ca(p) => {
            if let Some(ca) = s.cas.get_mut(&p) {
                ca.info = Some(pi);
            }
        }
        Target::Switch => {}
    }
    match wanted {
        Some(w) if pi.port_state != w => Err(SweepIssue::StateNotReached {
            target: t,
            wanted: w,
            got: pi.port_state,
        }),
        _ => Ok(()),
    }
}

/// The lowest LID from `from` up that `used` lacks.
fn free_lid(used: &BTreeSet<u16>, from: u16) -> Option<u16> {
    (from.max(1)..=MAX_UNICAST_LID).find(|l| !used.contains(l))
}

fn get(job: Job, attr_id: u16, attr_mod: u32, via: Option<u8>) -> Request {
    Request {
        job,
        method: method::GET,
        attr_id,
        attr_mod,
        via,
        data: [0; SMP_DATA_LEN],
    }
}

fn set(job: Job, attr_id: u16, attr_mod: u32, via: Option<u8>, data: [u8; 64]) -> Request {
    Request {
        job,
        method: method::SET,
        attr_id,
        attr_mod,
        via,
        data,
    }
}

/// The directed-route MAD for a request: from the switch (hop count 0) or out of one
/// switch port (hop count 1, InitialPath[1] = the port).
fn render(req: &Request, tid: u64) -> SmpOut {
    let path: Vec<u8> = req.via.into_iter().collect();
    let mad =
        SmpRepr::directed_request(req.method, tid, req.attr_id, req.attr_mod, &path, req.data)
            .map(|s| s.to_bytes())
            .unwrap_or([0; 256]);
    SmpOut { mad, path }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn be16(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    fn be64(b: &[u8], at: usize) -> u64 {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[at..at + 8]);
        u64::from_be_bytes(x)
    }

    /// Answers `out` as the SMA would, echoing the request with GetResp, D set, the
    /// given attribute data and status.
    fn reply(out: &SmpOut, data: [u8; 64], status: u16) -> [u8; 256] {
        let mut r = out.mad;
        r[3] = 0x81;
        r[4..6].copy_from_slice(&(0x8000 | status).to_be_bytes());
        r[64..128].copy_from_slice(&data);
        r
    }

    fn switch_node(ports: u8) -> [u8; 64] {
        let mut d = [0u8; 64];
        d[..4].copy_from_slice(&[1, 1, 2, ports]);
        d[12..20].copy_from_slice(&0x0002_C902_0000_0100u64.to_be_bytes());
        d
    }

    #[test]
    fn a_sweep_starts_with_directed_gets_of_the_switch() {
        let mut sm = SubnetManager::new(SmConfig::default());
        let out = sm.start_sweep(0);
        assert_eq!(out.len(), 2);
        for (o, attr) in out.iter().zip([0x0011u16, 0x0012]) {
            let m = &o.mad;
            // Header by IBTA vol. 1 §14.2.1.2: version 1, class 0x81, Get, hop 0 of 0.
            assert_eq!(&m[..8], &[1, 0x81, 1, 1, 0, 0, 0, 0]);
            assert_eq!(be16(m, 16), attr);
            assert_eq!((be16(m, 32), be16(m, 34)), (0xFFFF, 0xFFFF));
            assert_eq!(be64(m, 24), 0, "M_Key 0");
            assert!(o.path.is_empty());
        }
        assert_ne!(be64(&out[0].mad, 8), be64(&out[1].mad, 8), "distinct TIDs");
        assert_eq!(sm.next_deadline(), Some(200_000_000));
    }

    #[test]
    fn unanswered_smps_are_retried_then_the_sweep_fails_on_the_switch() {
        let mut sm = SubnetManager::new(SmConfig::default());
        let first = sm.start_sweep(0);
        let tids: Vec<u64> = first.iter().map(|o| be64(&o.mad, 8)).collect();
        for round in 1..=3 {
            let t = sm.next_deadline().unwrap();
            assert_eq!(t, round * 200_000_000);
            let again = sm.poll(t);
            assert_eq!(again.len(), 2, "round {round}");
            let again_tids: Vec<u64> = again.iter().map(|o| be64(&o.mad, 8)).collect();
            assert_eq!(again_tids, tids, "same TIDs on retransmission");
        }
        let t = sm.next_deadline().unwrap();
        assert!(sm.poll(t).is_empty(), "given up after four tries");
        let r = sm.last_report().unwrap();
        assert!(r.failed);
        assert_eq!(
            r.issues,
            [SweepIssue::GaveUp {
                target: Target::Switch,
                attr_id: 0x0011,
                tries: 4
            }]
        );
        assert_eq!((r.smps, r.retries), (8, 6));
        assert!(!sm.sweep_done());
        // After the sweep interval the manager tries a heavy sweep again.
        assert_eq!(sm.next_deadline(), Some(t + 10_000_000_000));
        let again = sm.poll(t + 10_000_000_000);
        assert_eq!(again.len(), 2);
        assert_eq!(sm.stats().heavy_sweeps, 2);
    }

    #[test]
    fn answers_that_do_not_fit_are_rejected_and_change_nothing() {
        let mut sm = SubnetManager::new(SmConfig::default());
        let out = sm.start_sweep(0);
        assert!(matches!(
            sm.on_smp(1, &[1, 0x81]),
            Err(ReplyError::Smp(SmpError::Truncated { got: 2, .. }))
        ));
        assert_eq!(
            sm.on_smp(1, &out[0].mad),
            Err(ReplyError::NotAResponse { method: 1 })
        );
        let mut wrong = reply(&out[0], switch_node(2), 0);
        wrong[8] ^= 0x40;
        assert!(matches!(
            sm.on_smp(1, &wrong),
            Err(ReplyError::UnknownTid(_))
        ));
        let mut other_attr = reply(&out[0], switch_node(2), 0);
        other_attr[17] = 0x15;
        assert!(matches!(
            sm.on_smp(1, &other_attr),
            Err(ReplyError::Mismatch { .. })
        ));
        let mut no_d = reply(&out[0], switch_node(2), 0);
        no_d[4] = 0;
        assert!(matches!(
            sm.on_smp(1, &no_d),
            Err(ReplyError::Mismatch { .. })
        ));
        assert_eq!(sm.stats().rejected, 5);
        // The genuine answer is still taken.
        assert_eq!(sm.on_smp(1, &reply(&out[0], switch_node(2), 0)), Ok(vec![]));
        // An answer to the same TID again is unknown now.
        assert!(matches!(
            sm.on_smp(1, &reply(&out[0], switch_node(2), 0)),
            Err(ReplyError::UnknownTid(_))
        ));
    }

    #[test]
    fn a_bad_status_from_the_switch_fails_the_sweep() {
        let mut sm = SubnetManager::new(SmConfig::default());
        let out = sm.start_sweep(0);
        let more = sm.on_smp(5, &reply(&out[1], [0; 64], 0x001C)).unwrap();
        assert!(more.is_empty());
        let r = sm.last_report().unwrap();
        assert!(r.failed);
        assert_eq!(
            r.issues,
            [SweepIssue::Status {
                target: Target::Switch,
                attr_id: 0x0012,
                status: 0x001C
            }]
        );
        // The other answer, now late, is unknown.
        assert!(sm.on_smp(6, &reply(&out[0], switch_node(2), 0)).is_err());
        // Something that is not a switch fails it too.
        let out = sm.start_sweep(10);
        let mut ca = switch_node(1);
        ca[2] = 1;
        sm.on_smp(11, &reply(&out[0], ca, 0)).unwrap();
        assert_eq!(
            sm.last_report().unwrap().issues,
            [SweepIssue::NotASwitch {
                node_type: 1,
                num_ports: 1
            }]
        );
    }

    #[test]
    fn relabel_moves_ca_lids_but_not_the_switch() {
        let mut sm = SubnetManager::new(SmConfig::default());
        sm.switch_guid = Some(0x100);
        sm.guid2lid.insert(0x100, 1);
        sm.guid2lid.insert(0x201, 2);
        sm.guid2lid.insert(0x202, 3);
        sm.relabel(100).unwrap();
        assert_eq!(
            (sm.lid_of(0x100), sm.lid_of(0x201), sm.lid_of(0x202)),
            (Some(1), Some(102), Some(103))
        );
        assert_eq!(sm.ca_base, 102);
        assert_eq!(
            sm.relabel(0xBFA0),
            Err(RelabelError::OutOfRange {
                lid: 102,
                offset: 0xBFA0
            })
        );
        assert_eq!(
            sm.lid_of(0x201),
            Some(102),
            "a refused relabel changes nothing"
        );
        sm.guid2lid.insert(0x203, 0);
        assert_eq!(sm.relabel(1), Err(RelabelError::Collision { lid: 1 }));
    }

    #[test]
    fn rate_codes_follow_width_and_speed() {
        assert_eq!(rate_code(2, 4, 0), 7, "4x QDR: 40 Gb/s");
        assert_eq!(rate_code(2, 1, 2), 16, "4x EDR: 100 Gb/s");
        assert_eq!(rate_code(1, 1, 0), 2, "1x SDR: 2.5 Gb/s");
        assert_eq!(rate_code(8, 4, 0), 10, "12x QDR: 120 Gb/s");
        assert_eq!(rate_code(2, 4, 1), 12, "4x FDR: 56 Gb/s");
        assert!(rate_value(7) < rate_value(16));
    }
}
