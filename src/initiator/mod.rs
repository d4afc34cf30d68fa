//! The initiator: everything between "the HCA answers" and "SRBs reach the disk", as
//! one state machine driven by [`Initiator::poll`] (DESIGN §4, "miniport").
//!
//! ```text
//!  bring-up ──▶ port ACTIVE ──▶ SA path ──▶ CM connect + SRP login ──▶ REPORT LUNS ──▶ ready
//!     (hca)      (MAD_IFC)      (ib::path)   (ib::connect, srp::session)               │
//!                    ▲                                                                  │
//!                    └──────────── back-off ◀── channel lost (QP error, DREQ, T_LOGOUT) ◀┘
//! ```
//!
//! The same code runs inside the driver images (over the port driver) and natively in
//! the simulator (over the device model): it sees the HCA only through a
//! [`fabboot_hca::hal::Hal`] and one DMA region laid out by [`layout::Layout`], and
//! the port driver only through [`Host`] (completions and event-log entries). Time is
//! an input (`now_us`); nothing here waits, except the access layer's firmware
//! commands, which are not on the I/O path.
//!
//! On the I/O path the CPU writes the SRP_CMD (its descriptors name the request's
//! own pages: [`remote::describe`]) and one doorbell; the target moves the data with
//! RDMA. The driver never reads or writes a request's data.

mod connection;
mod interrupts;
mod io;
pub mod layout;
pub mod luns;
pub mod mads;
pub mod remote;
pub mod request;

use core::mem::MaybeUninit;

use fabboot_hca::bringup::{self, BringupConfig, BringupError, Hca, Teardown};
use fabboot_hca::cmdif::CmdError;
use fabboot_hca::dma::{DmaRegion, Span};
use fabboot_hca::hal::Hal;
use fabboot_hca::objects::{self, QpAttrs, RemoteAccess, ServiceType, Transition};
use fabboot_hca::plan::PlanConfig;
use fabboot_hca::queues::PostError;
use fabboot_hca::resources::{self, PORT, Queues, Resources};
use fabboot_hca::wqe::CqeOpcode;
use fabboot_srp::cmd::{DataDir, MAX_DESC_COUNT, TaskAttr};
use fabboot_srp::desc::{BufferFormats, DirectDesc};
use fabboot_srp::iu::IuType;
use fabboot_srp::session::{
    Command, Incoming, Login, LoginError, LoginOutcome, LoginParams, Negotiated, Session,
    SessionError, StartError, Tag,
};
use fabboot_srp::tsk::TaskFunction;

use crate::event::Event;
use crate::ib::Gid;
use crate::ib::connect::{self, ConnectParams, ConnectStep, Connector, QpParams, State as CmState};
use crate::ib::mad::{SmpGet, attr};
use crate::ib::node_info::NodeInfo;
use crate::ib::path::{PathClient, PathError, PathParams, PathStep};
use crate::ib::port_info::{PkeyBlock, PortInfo, PortState};
use crate::ib::sa::PathRecord;
use crate::port::abi::{
    SRB_STATUS_BUS_RESET, SRB_STATUS_ERROR, SRB_STATUS_INVALID_LUN, SRB_STATUS_INVALID_REQUEST,
    SRB_STATUS_SELECTION_TIMEOUT, SRB_STATUS_SUCCESS,
};

use layout::{IT_IU_LEN, Layout, RECV_SLOT, RECV_SLOTS, SEND_SLOT, SEND_SLOTS};
use luns::LunMap;
use mads::MadRing;
use remote::DescribeError;
pub use request::{Outcome, Request, Response, Segment};

/// Command tags: the most SRP_CMDs in flight (the queue depth offered to the port).
pub const TAGS: usize = 32;

/// The first send slot for replies to the target's requests; slots below hold the
/// commands of the in-flight table, one each.
pub(crate) const REPLY_SLOT0: usize = TAGS + 1;
const _: () = assert!(
    REPLY_SLOT0 < SEND_SLOTS,
    "reply slots after the command slots"
);
const _: () = assert!(SEND_SLOTS <= 64, "one bit per send slot in a u64");

/// Handles at or above this are the initiator's own commands.
pub const INTERNAL: u32 = 0x8000_0000;
const REPORT_LUNS_USER: u32 = INTERNAL | 1;

/// The SRP target to reach (from the sBFT, `DriverParameter` or the image's
/// configuration block).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetConfig {
    /// The target port's GID.
    pub dgid: Gid,
    /// CM Service ID the target listens on (ib_srpt: its service GUID).
    pub service_id: u64,
    /// SRP target port ID (id_ext ‖ IOC GUID).
    pub target_port_id: [u8; 16],
    /// High half of the initiator port ID (the low half is our port GUID).
    pub initiator_ext: u64,
    /// Partition key (0xFFFF: the default partition).
    pub pkey: u16,
}

/// Limits and timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The target.
    pub target: TargetConfig,
    /// How long the port may take to become ACTIVE after bring-up.
    pub port_active_timeout_us: u64,
    /// How often the port state is read while waiting for ACTIVE.
    pub port_poll_us: u64,
    /// How long a command may go unanswered before the channel is presumed broken
    /// and rebuilt (the only safe way to reuse its buffer: a QP in reset takes no
    /// more RDMA).
    pub command_timeout_us: u64,
    /// First delay before reconnecting after a loss; doubled per failed attempt.
    pub reconnect_delay_us: u64,
    /// Longest delay between reconnect attempts.
    pub reconnect_delay_max_us: u64,
    /// Delay before retrying a REQ rejected as a stale connection (CM reason 10).
    pub stale_retry_us: u64,
    /// Login attempts (each login reject that allows a retry counts) before the
    /// initiator gives up on a connection attempt.
    pub max_login_attempts: u8,
    /// Seed of the initiator's pseudo-random choices (PSNs, comm IDs, jitter).
    pub seed: u32,
}

impl Config {
    /// Defaults for `target`: 30 s for ACTIVE polled every 10 ms, 30 s per command,
    /// reconnect after 10 ms doubling to 2 s, stale-connection retry after 100 ms.
    pub const fn new(target: TargetConfig, seed: u32) -> Config {
        Config {
            target,
            port_active_timeout_us: 30_000_000,
            port_poll_us: 10_000,
            command_timeout_us: 30_000_000,
            reconnect_delay_us: 10_000,
            reconnect_delay_max_us: 2_000_000,
            stale_retry_us: 100_000,
            max_login_attempts: 8,
            seed,
        }
    }
}

/// Where the initiator stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Waiting for the port to become ACTIVE.
    PortWait,
    /// Asking the SA for a path.
    Path,
    /// Connecting and logging in.
    Connect,
    /// Logged in, learning the LUNs.
    Discover,
    /// Taking requests.
    Ready,
    /// Waiting before reconnecting.
    Backoff,
    /// Given up (see [`Initiator::fault`]).
    Failed,
}

/// Why the initiator gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The port did not become ACTIVE in time; the last state seen.
    PortNotActive {
        /// PortState (1 down, 2 init, 3 armed).
        state: u8,
    },
    /// No path to the target.
    NoPath(PathError),
    /// The target refused the login, for a reason that allows no retry.
    LoginRejected {
        /// The SRP_LOGIN_REJ reason.
        reason: u32,
    },
    /// The target's CM refused the connection.
    ConnectionRejected {
        /// The CM REJ reason.
        reason: u16,
    },
    /// The target's CM never answered.
    ConnectTimeout,
    /// The login was accepted but its response cannot be used.
    BadLoginResponse,
    /// Too many login attempts.
    LoginAttempts,
    /// A firmware command failed while running.
    Hca(CmdError),
    /// The HCA's own agent answered a port query with something unreadable.
    PortQuery(crate::ib::Error),
    /// A work request could not be posted to the RC QP.
    Post(PostError),
}

/// Why the channel was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Loss {
    /// A work completion with an error (QP in error: retries exhausted, a remote
    /// access error, a receive longer than its buffer).
    QpError = 1,
    /// The target's CM sent a DREQ.
    Dreq = 2,
    /// The target sent SRP_T_LOGOUT.
    TargetLogout = 3,
    /// A command went unanswered for [`Config::command_timeout_us`].
    CommandTimeout = 4,
    /// The port left ACTIVE.
    PortDown = 5,
    /// The subnet manager gave our port another LID, or another SM took over: the
    /// path to the target may have changed.
    PathChanged = 6,
}

/// Replies that could not be read (detail of [`Event::MalformedReply`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Malformed {
    /// An IU the session could not read (short, lengths beyond it, unknown tag or
    /// opcode, sense too long).
    Iu = 1,
    /// A REPORT LUNS list that cannot be read (LUN 0 alone is presented).
    LunList = 2,
}

/// Why a request was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not connected, or no credit, tag or send buffer free: try again later (the
    /// port's BUSY).
    Busy,
}

/// What the initiator needs from its port driver.
pub trait Host {
    /// A request handed to [`Initiator::submit`] (or [`Initiator::reset_lun`]) ended.
    fn complete(&mut self, user: u32, outcome: &Outcome);
    /// Writes an event-log entry.
    fn log(&mut self, event: Event);
}

/// Counters and timestamps, for the figures the project reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// When the port was first seen ACTIVE.
    pub active_at_us: Option<u64>,
    /// When the first login completed.
    pub logged_in_at_us: Option<u64>,
    /// When the initiator first became ready.
    pub ready_at_us: Option<u64>,
    /// SRP_CMDs sent (including the initiator's own).
    pub commands: u64,
    /// SRP_RSPs read.
    pub responses: u64,
    /// Data bytes requested by completed commands.
    pub bytes: u64,
    /// IUs the session could not read.
    pub malformed: u64,
    /// CRED_REQ and AER_REQ answered.
    pub target_requests: u64,
    /// Times the channel was lost.
    pub losses: u64,
    /// Logins (accepted).
    pub logins: u64,
    /// REQs rejected as stale connections.
    pub stale: u64,
    /// Login rejects that were retried.
    pub login_retries: u64,
    /// Requests refused as busy.
    pub busy: u64,
    /// Error work completions seen on the RC QP.
    pub rc_errors: u64,
    /// IU bytes the CPU wrote into send buffers (SRP_CMD, TSK_MGMT, replies).
    pub iu_bytes: u64,
    /// Register writes made arming CQs and the EQ ([`Initiator::arm_interrupts`]).
    pub arm_writes: u64,
    /// Commands held across a loss and sent again after the next login.
    pub reissued: u64,
    /// Held commands that could not be sent again (the new login's IU limit or
    /// formats no longer fit them, or the port reset the bus while the channel was
    /// down) and were failed for the port to retry.
    pub failed_for_retry: u64,
    /// Longest time from losing the channel to being ready again.
    pub longest_outage_us: u64,
}

/// Events logged during the current outage (each at most once per outage).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Logged(u8);

impl Logged {
    pub(crate) const NO_PATH: Logged = Logged(1);
    pub(crate) const CONNECT_TIMEOUT: Logged = Logged(2);
    pub(crate) const PORT: Logged = Logged(4);
    pub(crate) const REJECTED: Logged = Logged(8);

    /// Marks `what` logged; true the first time.
    pub(crate) fn first(&mut self, what: Logged) -> bool {
        let first = self.0 & what.0 == 0;
        self.0 |= what.0;
        first
    }
}

/// The local port's attributes, from PortInfo and NodeInfo through MAD_IFC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortAttrs {
    /// Our LID.
    pub lid: u16,
    /// The SM's LID (where SA queries go).
    pub sm_lid: u16,
    /// The SM's service level.
    pub sm_sl: u8,
    /// SubnetTimeout.
    pub subnet_timeout: u8,
    /// GID prefix.
    pub gid_prefix: u64,
    /// P_Key table index of the configured partition key.
    pub pkey_index: u16,
    /// Node GUID (CM Local CA GUID).
    pub node_guid: u64,
    /// Port GUID.
    pub port_guid: u64,
}

impl PortAttrs {
    /// Our port GID.
    pub fn gid(&self) -> Gid {
        (u128::from(self.gid_prefix) << 64 | u128::from(self.port_guid)).to_be_bytes()
    }
}

/// One command in flight. Entry `i` of the table builds its IU in send slot `i`,
/// where it stays until the command ends: a command held across a reconnect is sent
/// again from there.
#[derive(Clone, Copy, Debug)]
struct Inflight {
    user: u32,
    /// Its tag on the current channel (stale while `held`).
    tag: Tag,
    transfer_len: u32,
    /// When the channel is presumed broken (`u64::MAX` while `held`).
    deadline_us: u64,
    /// Bytes of its IU in its send slot.
    iu_len: u16,
    /// Sent on a channel since lost: waits for the next login to be sent again.
    held: bool,
}

// The phase lives once, in the device extension: no heap to box the large variant into.
#[allow(clippy::large_enum_variant)]
enum Phase {
    PortWait { since_us: u64, next_us: u64 },
    Path(PathClient, Option<u64>),
    Connect(Connect),
    Discover,
    Ready,
    Backoff { until_us: u64 },
    Failed(Fault),
}

struct Connect {
    cm: Connector,
    login: Login,
    path: PathRecord,
    /// When set, the REQ waits until then (stale-connection retry).
    hold_until_us: Option<u64>,
    /// The CM's next deadline, from its last step.
    wait_until_us: Option<u64>,
}

/// The CM connection once established, with where its peer's CM is.
struct Conn {
    cm: Connector,
    dlid: u16,
    sl: u8,
}

/// Why [`Initiator::start`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartFault {
    /// The DMA region is smaller than [`Layout::total`].
    RegionTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes given.
        got: usize,
    },
    /// Bring-up failed.
    Bringup(BringupError),
    /// Creating the queues or keys failed.
    Resources(CmdError),
    /// Posting QP1's receives failed.
    Post(PostError),
}

/// The initiator.
pub struct Initiator<H: Hal> {
    hal: H,
    dma: DmaRegion,
    layout: Layout,
    cfg: Config,
    hca: Hca,
    res: Resources,
    q: Queues,
    rkey: u32,
    mads: MadRing,
    /// Stopped by [`Initiator::stop`]: the HCA is disabled until
    /// [`Initiator::restart`].
    stopped: bool,
    port: PortAttrs,
    phase: Phase,
    /// The CM connection, from REP to loss.
    conn: Option<Conn>,
    session: Option<Session<TAGS>>,
    negotiated: Option<Negotiated>,
    inflight: [Option<Inflight>; TAGS + 1],
    luns: LunMap,
    send_posted: u64,
    send_done: u64,
    /// The send slot of each WQE on the send queue, by send count modulo
    /// [`SEND_SLOTS`] (sends complete in order: the next completion retires
    /// `sent_from[send_done]`).
    sent_from: [u8; SEND_SLOTS],
    /// Bit `i`: send slot `i` is on the send queue (not to be written).
    slots_busy: u64,
    /// Next reply slot (CRED_RSP, AER_RSP), counted from [`REPLY_SLOT0`].
    reply_seq: usize,
    /// When the channel was last lost, until ready again.
    lost_at_us: Option<u64>,
    /// The disk was reached once: from then on every loss is waited out.
    ever_ready: bool,
    /// What the current outage has logged.
    logged: Logged,
    /// Entries of `inflight` that are `held`.
    held_count: u8,
    recv_posted: usize,
    descs: [DirectDesc; MAX_DESC_COUNT],
    iu: [u8; SEND_SLOT],
    rx: [u8; RECV_SLOT],
    mad: [u8; 256],
    rng: u32,
    comm_seq: u32,
    tid_seq: u64,
    losses_in_row: u32,
    login_attempts: u8,
    /// The target's LID as last known (for answering a stray DREQ).
    last_dlid: u16,
    stats: Stats,
}

/// The HCA brought up and its objects created in a DMA region: what a start and a
/// restart make, with little stack.
struct Hw {
    layout: Layout,
    hca: Hca,
    res: Resources,
    q: Queues,
    rkey: u32,
    mads: MadRing,
}

impl Hw {
    /// Resets (when needed) and brings up the function in `dma`, creates the queues
    /// and keys (including the physical-address key with remote rights the target's
    /// RDMA uses) and fills QP1's receive queue. Failures are logged.
    #[inline(always)]
    fn open<H: Hal>(hal: &H, dma: &DmaRegion, host: &mut impl Host) -> Result<Hw, StartFault> {
        let layout = Layout::new(PlanConfig::BOOT);
        if dma.len() < layout.total {
            return Err(StartFault::RegionTooSmall {
                need: layout.total,
                got: dma.len(),
            });
        }
        let mut hca = match bringup::bring_up(hal, dma, layout.hca, BringupConfig::BOOT) {
            Ok(h) => h,
            Err(e) => {
                host.log(bringup_event(&e));
                return Err(StartFault::Bringup(e));
            }
        };
        let opened = resources::open(&mut hca, hal, dma).and_then(|res| {
            let remote = RemoteAccess {
                read: true,
                write: true,
            };
            let rkey = objects::create_pa_mkey(&mut hca.cmd, hal, dma, res.pd, 0x5A, remote)?;
            Ok((res, rkey))
        });
        let (res, rkey) = match opened {
            Ok(r) => r,
            Err(e) => {
                host.log(Event::HcaBringupFailed {
                    status: cmd_status(&e),
                });
                return Err(StartFault::Resources(e));
            }
        };
        let mut q = Queues::new(&layout.hca, &res);
        let mut mads = MadRing::new(layout.hca);
        mads.post_receives(&mut q.gsi_rq, dma)
            .map_err(StartFault::Post)?;
        Ok(Hw {
            layout,
            hca,
            res,
            q,
            rkey,
            mads,
        })
    }
}

/// The HCA opened, with the platform and configuration it was opened with.
struct Opened<H: Hal> {
    hal: H,
    dma: DmaRegion,
    cfg: Config,
    hw: Hw,
}

impl<H: Hal> Opened<H> {
    #[inline(always)]
    fn open(hal: H, dma: DmaRegion, cfg: Config, host: &mut impl Host) -> Result<Self, StartFault> {
        let hw = Hw::open(&hal, &dma, host)?;
        Ok(Opened { hal, dma, cfg, hw })
    }

    /// The initiator around the opened HCA, waiting for the port. Inlined so that the
    /// caller's destination is built in place rather than copied from a temporary.
    #[inline(always)]
    fn into_initiator(self, now_us: u64) -> Initiator<H> {
        let Opened { hal, dma, cfg, hw } = self;
        let Hw {
            layout,
            hca,
            res,
            q,
            rkey,
            mads,
        } = hw;
        let seed = cfg.seed | 1;
        Initiator {
            hal,
            dma,
            layout,
            cfg,
            hca,
            res,
            q,
            rkey,
            mads,
            stopped: false,
            port: PortAttrs::default(),
            phase: Phase::PortWait {
                since_us: now_us,
                next_us: now_us,
            },
            conn: None,
            session: None,
            negotiated: None,
            inflight: [None; TAGS + 1],
            luns: LunMap::lun0(),
            send_posted: 0,
            send_done: 0,
            sent_from: [0; SEND_SLOTS],
            slots_busy: 0,
            reply_seq: 0,
            lost_at_us: None,
            ever_ready: false,
            logged: Logged::default(),
            held_count: 0,
            recv_posted: 0,
            descs: [DirectDesc {
                va: 0,
                rkey: 0,
                len: 0,
            }; MAX_DESC_COUNT],
            iu: [0; SEND_SLOT],
            rx: [0; RECV_SLOT],
            mad: [0; 256],
            rng: seed,
            comm_seq: seed.rotate_left(16),
            tid_seq: u64::from(seed) << 32,
            losses_in_row: 0,
            login_attempts: 0,
            last_dlid: 0,
            stats: Stats::default(),
        }
    }
}

impl<H: Hal> Initiator<H> {
    /// The region bytes the initiator needs.
    pub const fn region_len() -> usize {
        Layout::new(PlanConfig::BOOT).total
    }

    /// Resets and brings up the HCA, creates the queues and keys (including the
    /// physical-address key with remote rights the target's RDMA uses), fills QP1's
    /// receive queue, and starts waiting for the port. Failures are logged.
    pub fn start(
        hal: H,
        dma: DmaRegion,
        cfg: Config,
        now_us: u64,
        host: &mut impl Host,
    ) -> Result<Self, StartFault> {
        Opened::open(hal, dma, cfg, host).map(|o| o.into_initiator(now_us))
    }

    /// [`Initiator::start`] into `slot`, for a caller whose stack cannot hold an
    /// initiator (its staging buffers alone are 9 KB; an i686 kernel stack is 12 KiB):
    /// only the opened HCA passes through the stack, and the initiator is built where
    /// it will live (the driver's device extension).
    pub fn start_in<'a>(
        slot: &'a mut MaybeUninit<Self>,
        hal: H,
        dma: DmaRegion,
        cfg: Config,
        now_us: u64,
        host: &mut impl Host,
    ) -> Result<&'a mut Self, StartFault> {
        let opened = Opened::open(hal, dma, cfg, host)?;
        Ok(slot.write(opened.into_initiator(now_us)))
    }

    /// Returns the HCA to the disabled state (force-close TEARDOWN_HCA, which drops
    /// the queues and keys still alive; every firmware page taken back; DISABLE_HCA),
    /// so the device no longer touches the DMA region: for a
    /// driver that gives its region back to the port. The initiator is unusable
    /// afterwards.
    pub fn teardown(&mut self) -> Result<usize, BringupError> {
        bringup::teardown_with(&mut self.hca, &self.hal, &self.dma, Teardown::ForceClose)
    }

    /// Where the initiator stands.
    pub fn state(&self) -> State {
        match self.phase {
            Phase::PortWait { .. } => State::PortWait,
            Phase::Path(..) => State::Path,
            Phase::Connect(_) => State::Connect,
            Phase::Discover => State::Discover,
            Phase::Ready => State::Ready,
            Phase::Backoff { .. } => State::Backoff,
            Phase::Failed(_) => State::Failed,
        }
    }

    /// Why the initiator gave up, once [`State::Failed`].
    pub fn fault(&self) -> Option<Fault> {
        match self.phase {
            Phase::Failed(f) => Some(f),
            _ => None,
        }
    }

    /// Counters and timestamps.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// QP1's counters (MADs sent and received).
    pub fn mad_stats(&self) -> mads::MadStats {
        self.mads.stats
    }

    /// The local port, as last read.
    pub fn port(&self) -> PortAttrs {
        self.port
    }

    /// What the login settled (IU lengths, credits, formats, scatter-gather limit).
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.negotiated
    }

    /// Most scatter-gather elements a request may have: what the port driver is told
    /// (`NumberOfPhysicalBreaks` + 1). Before a login, what the driver asks for.
    pub fn max_sg(&self) -> usize {
        self.negotiated
            .map_or(MAX_DESC_COUNT, |n| n.max_sg.min(MAX_DESC_COUNT))
    }

    /// The LUNs presented.
    pub fn luns(&self) -> &LunMap {
        &self.luns
    }

    /// The platform (the driver images read their clock through it once per port
    /// callback).
    pub fn hal(&self) -> &H {
        &self.hal
    }

    pub(super) fn random(&mut self) -> u32 {
        // xorshift32
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        x
    }

    /// Does what is due at `now_us`: reads the event queue, QP1 and the RC QP,
    /// advances the connection, fails commands that overran their time. Returns when
    /// it next needs to run if nothing arrives before (a completion or an interrupt
    /// calls it sooner).
    pub fn poll(&mut self, now_us: u64, host: &mut impl Host) -> Option<u64> {
        if self.stopped {
            return None;
        }
        self.poll_events(now_us, host);
        self.poll_mads(now_us, host);
        self.poll_rc(now_us, host);
        self.advance(now_us, host);
        if self.held_count > 0 {
            self.reissue(now_us, host);
        }
        self.check_timeouts(now_us, host);
        self.next_wake()
    }

    /// Port requests held across a lost channel, waiting to be sent again after the
    /// next login.
    pub fn held(&self) -> usize {
        usize::from(self.held_count)
    }

    pub(super) fn poll_events(&mut self, now_us: u64, host: &mut impl Host) {
        let mut port_changed = false;
        while let Ok(Some(e)) = self.q.eq.poll(&self.dma) {
            // A completion event disarmed its CQ: nothing else to do, the CQs are
            // read next whether or not an event came.
            self.q.on_event(&e);
            match e.kind {
                objects::event::PORT_CHANGE => port_changed = true,
                objects::event::PAGE_REQUEST => {
                    let n = i32::from_be_bytes([e.data[4], e.data[5], e.data[6], e.data[7]]);
                    let _ = bringup::service_page_request(&mut self.hca, &self.hal, &self.dma, n);
                }
                objects::event::CQ_ERROR
                | objects::event::WQ_CATASTROPHIC
                | objects::event::WQ_INVALID_REQUEST
                | objects::event::WQ_ACCESS_ERROR
                    if self.session.is_some() =>
                {
                    self.lose(now_us, Loss::QpError, host);
                }
                _ => {}
            }
        }
        self.q.eq.report_consumed(&self.hal);
        if port_changed {
            match self.phase {
                Phase::PortWait { since_us, .. } => {
                    self.phase = Phase::PortWait {
                        since_us,
                        next_us: now_us,
                    };
                }
                _ => {
                    // Down, or ACTIVE at another LID or under another SM after a
                    // re-sweep (the target's LID may have moved with ours): start over
                    // from the port, which reads it again and asks for a new path.
                    let why = match self.query_port_info() {
                        Ok(info) if info.port_state != PortState::Active => Some(Loss::PortDown),
                        Ok(info)
                            if info.lid != self.port.lid
                                || info.master_sm_lid != self.port.sm_lid =>
                        {
                            Some(Loss::PathChanged)
                        }
                        _ => None,
                    };
                    if let Some(why) = why {
                        self.lose(now_us, why, host);
                        self.phase = Phase::PortWait {
                            since_us: now_us,
                            next_us: now_us,
                        };
                    }
                }
            }
        }
    }

    pub(super) fn mad_ifc(&mut self, smp: &SmpGet) -> Result<[u8; 256], CmdError> {
        let mut m = [0u8; 256];
        let _ = smp.emit(&mut m);
        objects::mad_ifc(&mut self.hca.cmd, &self.hal, &self.dma, PORT, &m)
    }

    pub(super) fn smp(&mut self, attr_id: u16, attr_mod: u32) -> SmpGet {
        self.tid_seq = self.tid_seq.wrapping_add(1);
        SmpGet {
            tid: self.tid_seq,
            attr_id,
            attr_mod,
            m_key: 0,
        }
    }

    pub(super) fn query_port_info(&mut self) -> Result<PortInfo, Fault> {
        let smp = self.smp(attr::PORT_INFO, u32::from(PORT));
        let r = self.mad_ifc(&smp).map_err(Fault::Hca)?;
        PortInfo::parse_smp(&r).map_err(Fault::PortQuery)
    }

    /// Reads PortInfo, NodeInfo and the P_Key table; returns the port state.
    pub(super) fn read_port(&mut self) -> Result<u8, Fault> {
        let info = self.query_port_info()?;
        let state: u8 = info.port_state.into();
        if info.port_state != PortState::Active {
            return Ok(state);
        }
        let smp = self.smp(attr::NODE_INFO, 0);
        let reply = self.mad_ifc(&smp).map_err(Fault::Hca)?;
        let node = NodeInfo::parse_smp(&reply).map_err(Fault::PortQuery)?;
        let want = self.cfg.target.pkey & 0x7FFF;
        let mut pkey_index = 0u16;
        'blocks: for block in 0..4u16 {
            let smp = self.smp(attr::PKEY_TABLE, u32::from(block));
            let reply = self.mad_ifc(&smp).map_err(Fault::Hca)?;
            let Ok(b) = PkeyBlock::parse_smp(&reply) else {
                break;
            };
            for (i, k) in b.entries.iter().enumerate() {
                if *k & 0x7FFF == want && *k != 0 {
                    pkey_index = block * 32 + i as u16;
                    break 'blocks;
                }
            }
        }
        self.port = PortAttrs {
            lid: info.lid,
            sm_lid: info.master_sm_lid,
            sm_sl: info.master_sm_sl,
            subnet_timeout: info.subnet_timeout,
            gid_prefix: info.gid_prefix,
            pkey_index,
            node_guid: node.node_guid,
            port_guid: node.port_guid,
        };
        Ok(state)
    }

    pub(super) fn poll_mads(&mut self, now_us: u64, host: &mut impl Host) {
        loop {
            let got = self.mads.next(
                &self.dma,
                &mut self.q.gsi_cq,
                &mut self.q.gsi_sq,
                &mut self.q.gsi_rq,
            );
            match got {
                Ok(Some(r)) => self.on_mad(now_us, &r.mad, host),
                _ => break,
            }
        }
    }

    pub(super) fn send_mad(&mut self, dlid: u16, sl: u8) {
        let mad = self.mad;
        let _ = self
            .mads
            .send(&self.hal, &self.dma, &mut self.q.gsi_sq, dlid, sl, &mad);
    }

    pub(super) fn on_mad(&mut self, now_us: u64, mad: &[u8; 256], host: &mut impl Host) {
        // The SA client first: it takes only its own replies.
        if let Phase::Path(client, _) = &mut self.phase {
            if client.on_mad(now_us, mad) {
                self.advance(now_us, host);
            }
            return;
        }
        let mut out = [0u8; 256];
        if let Phase::Connect(c) = &mut self.phase
            && let Some(step) = c.cm.on_mad(now_us, mad, &mut out)
        {
            self.mad = out;
            self.on_connect_step(now_us, step, host);
            return;
        }
        if let Some(conn) = &mut self.conn
            && let Some(step) = conn.cm.on_mad(now_us, mad, &mut out)
        {
            self.mad = out;
            let (dlid, sl) = (conn.dlid, conn.sl);
            match step {
                ConnectStep::Send => self.send_mad(dlid, sl),
                ConnectStep::Disconnected { drep } => {
                    if drep {
                        self.send_mad(dlid, sl);
                    }
                    self.conn = None;
                    self.lose(now_us, Loss::Dreq, host);
                }
                _ => {}
            }
            return;
        }
        // A DREQ for a connection we no longer know (one the target kept after we
        // lost ours, or the old one a stale-connection REJ tears down) is answered
        // with a DREP, as IBTA vol. 1 §12.9.7 asks of a CM with no record of it.
        if connect::drep_for_stray_dreq(mad, &mut out) {
            self.mad = out;
            let dlid = self.peer_lid();
            if dlid != 0 {
                self.send_mad(dlid, 0);
            }
        }
    }

    pub(super) fn peer_lid(&self) -> u16 {
        match &self.phase {
            Phase::Connect(c) => c.path.dlid,
            _ => self.conn.as_ref().map_or(self.last_dlid, |c| c.dlid),
        }
    }

    pub(super) fn next_wake(&self) -> Option<u64> {
        let phase = match &self.phase {
            Phase::PortWait { next_us, .. } => Some(*next_us),
            Phase::Path(_, wait) => *wait,
            Phase::Connect(c) => c.hold_until_us.or(c.wait_until_us),
            Phase::Backoff { until_us } => Some(*until_us),
            Phase::Discover | Phase::Ready | Phase::Failed(_) => None,
        };
        let commands = self.inflight.iter().flatten().map(|f| f.deadline_us).min();
        [phase, commands].into_iter().flatten().min()
    }
}

fn log2_floor(v: u8) -> u8 {
    if v == 0 {
        0
    } else {
        7 - v.leading_zeros() as u8
    }
}

fn cmd_status(e: &CmdError) -> u16 {
    match e {
        CmdError::Timeout { .. } => 0xFFFF,
        _ => 0xFFFE,
    }
}

/// The event for a failed bring-up: firmware that never finished initialising has
/// its own; anything else is the failure's status.
fn bringup_event(e: &BringupError) -> Event {
    match e {
        BringupError::Cmd(CmdError::NotReady { waited_us }) => Event::FirmwareNotReady {
            seconds: u16::try_from(waited_us / 1_000_000).unwrap_or(u16::MAX),
        },
        BringupError::Cmd(c) => Event::HcaBringupFailed {
            status: cmd_status(c),
        },
        _ => Event::HcaBringupFailed { status: 0xFFFD },
    }
}

fn path_status(e: &PathError) -> u16 {
    match *e {
        PathError::Status { status } => status,
        PathError::NoRecord => 0xFFFE,
        _ => 0xFFFF,
    }
}
