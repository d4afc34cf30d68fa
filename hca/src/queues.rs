//! The data path: posting send and receive WQEs, ringing doorbells, and reaping CQEs
//! and EQEs (reference/mlx5.md §C.6, C.7, C.9, C.10, C.12).
//!
//! Posting a request and reaping its completion reads no register: work and
//! completions live in host memory, the doorbell records are host memory, and the only
//! register access is one 64-bit write per send doorbell (receives need none; the EQ's
//! consumer index is reported with one 32-bit write when half the EQ has been read).
//!
//! Interrupts, when the platform wants them instead of a timer: a CQ is armed with its
//! arm record and one 64-bit write of the CQ doorbell ([`CompletionQueue::arm`]); the
//! device then writes one completion event to the CQ's EQ for the next CQE (or the
//! next solicited one) and disarms the CQ. The EQ is armed with one 32-bit write
//! ([`EventQueue::arm`]); its next event raises its MSI-X vector, and disarms it.
//! Arming what is already armed writes nothing.

use crate::bytes;
use crate::dma::{self, DmaRegion, OutOfRegion, Span};
use crate::hal::Hal;
use crate::ifc::events::{comp_event, eqe};
use crate::objects::{CQE_INVALID, ENTRY, event};
use crate::wqe::{self, AddressVector, Completion, WQEBB, ctrl, data};

/// Offset of the first BlueFlame/doorbell register in a UAR page.
pub const UAR_BF: usize = 0x800;
/// Half the BlueFlame register size (512 bytes on ConnectX-4): doorbells alternate
/// between the two halves.
pub const BF_HALF: usize = 0x100;
/// EQ doorbell that updates the consumer index without arming.
pub const UAR_EQ_CI: usize = 0x48;
/// EQ doorbell that updates the consumer index and arms the EQ.
pub const UAR_EQ_ARM: usize = 0x40;
/// CQ doorbell (Linux `MLX5_CQ_DOORBELL`): one 64-bit write, the arm word then the CQN.
pub const UAR_CQ_DB: usize = 0x20;
/// UAR page size.
pub const UAR_PAGE: usize = 4096;
/// Most WQE basic blocks a send queue may have (the plan's largest is 64).
pub const MAX_SQ_WQEBBS: usize = 64;

/// Why a WQE could not be posted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostError {
    /// The queue is full: completions must be reaped first.
    Full,
    /// Inline data longer than one WQE carries.
    TooLong {
        /// Bytes asked for.
        len: usize,
    },
    /// A buffer lies outside the DMA region.
    Dma(OutOfRegion),
}

impl From<OutOfRegion> for PostError {
    fn from(e: OutOfRegion) -> Self {
        PostError::Dma(e)
    }
}

/// A send queue: WQEs in 64-byte blocks, counted by the producer counter.
#[derive(Debug)]
pub struct SendQueue {
    qpn: u32,
    ring: Span,
    log_size: u8,
    /// Producer counter, in WQEBBs.
    pc: u16,
    /// Consumer counter: WQEBBs whose completion has been reaped.
    cc: u16,
    /// WQEBBs of the WQE posted at each index (to release them on completion).
    sizes: [u8; MAX_SQ_WQEBBS],
    dbr: Span,
    uar: u32,
    bf_odd: bool,
    lkey: u32,
}

impl SendQueue {
    /// The send queue of QP `qpn`: `ring` holds `64 << log_size` bytes.
    pub fn new(qpn: u32, ring: Span, log_size: u8, dbr: Span, uar: u32, lkey: u32) -> SendQueue {
        SendQueue {
            qpn,
            ring,
            log_size,
            pc: 0,
            cc: 0,
            sizes: [0; MAX_SQ_WQEBBS],
            dbr,
            uar,
            bf_odd: false,
            lkey,
        }
    }

    fn capacity(&self) -> u16 {
        (1u16 << self.log_size).min(MAX_SQ_WQEBBS as u16)
    }

    /// WQEBBs posted and not yet completed.
    pub fn outstanding(&self) -> u16 {
        self.pc.wrapping_sub(self.cc)
    }

    /// Starts the queue afresh after its QP went to RST (which makes the device start
    /// its own counters at zero): every WQE is forgotten and the doorbell record is
    /// zeroed. Nothing posted before may complete afterwards.
    pub fn reset(&mut self, dma: &DmaRegion) -> Result<(), OutOfRegion> {
        self.pc = 0;
        self.cc = 0;
        self.sizes = [0; MAX_SQ_WQEBBS];
        dma.write_be32(self.dbr.offset + 4, 0)
    }

    fn slot(&self, index: u16) -> usize {
        self.ring.offset + usize::from(index & (self.capacity() - 1)) * WQEBB
    }

    /// Writes a WQE of `bbs` blocks built in `wqe` and rings the doorbell.
    fn post<H: Hal>(
        &mut self,
        hal: &H,
        dma: &DmaRegion,
        wqe: &[u8],
        bbs: u16,
    ) -> Result<u16, PostError> {
        if self.outstanding() + bbs > self.capacity() {
            return Err(PostError::Full);
        }
        let index = self.pc;
        for b in 0..bbs {
            let chunk = wqe.get(usize::from(b) * WQEBB..).unwrap_or(&[]);
            let block = chunk.get(..WQEBB).unwrap_or(chunk);
            dma.write(self.slot(index.wrapping_add(b)), block)?;
        }
        let mask = self.capacity() - 1;
        if let Some(size) = self.sizes.get_mut(usize::from(index & mask)) {
            *size = bbs as u8;
        }
        self.pc = self.pc.wrapping_add(bbs);
        // WQE before doorbell record before doorbell (PRM "Send Doorbell").
        dma::publish();
        dma.write_be32(self.dbr.offset + 4, u32::from(self.pc))?;
        dma::publish();
        let first = bytes::read::<8>(wqe, 0).unwrap_or([0; 8]);
        let bf = self.uar as usize * UAR_PAGE + UAR_BF + if self.bf_odd { BF_HALF } else { 0 };
        self.bf_odd = !self.bf_odd;
        hal.write64(bf, u64::from_be_bytes(first));
        Ok(index)
    }

    /// Posts a UD send (QP1 MADs): control, address vector, one data segment.
    pub fn post_ud_send<H: Hal>(
        &mut self,
        hal: &H,
        dma: &DmaRegion,
        to: &AddressVector,
        buf: Span,
    ) -> Result<u16, PostError> {
        let phys = dma.phys_span(buf)?;
        let mut w = [0u8; 2 * WQEBB];
        wqe::write_ctrl(
            &mut w[..ctrl::LEN],
            wqe::opcode::SEND,
            self.pc,
            self.qpn,
            5,
            0,
        );
        wqe::write_av(&mut w[ctrl::LEN..ctrl::LEN + wqe::av::LEN], to);
        let d = ctrl::LEN + wqe::av::LEN;
        wqe::write_data(&mut w[d..d + data::LEN], buf.len as u32, self.lkey, phys);
        self.post(hal, dma, &w, 2)
    }

    /// Posts an RC SEND of `buf` by reference (one data segment).
    pub fn post_rc_send<H: Hal>(
        &mut self,
        hal: &H,
        dma: &DmaRegion,
        buf: Span,
    ) -> Result<u16, PostError> {
        let phys = dma.phys_span(buf)?;
        let mut w = [0u8; WQEBB];
        wqe::write_ctrl(
            &mut w[..ctrl::LEN],
            wqe::opcode::SEND,
            self.pc,
            self.qpn,
            2,
            0,
        );
        wqe::write_data(
            &mut w[ctrl::LEN..ctrl::LEN + data::LEN],
            buf.len as u32,
            self.lkey,
            phys,
        );
        self.post(hal, dma, &w, 1)
    }

    /// Posts an RC SEND carrying `payload` inline (up to 236 bytes: four WQEBBs).
    pub fn post_rc_send_inline<H: Hal>(
        &mut self,
        hal: &H,
        dma: &DmaRegion,
        payload: &[u8],
    ) -> Result<u16, PostError> {
        let mut w = [0u8; 4 * WQEBB];
        let max = w.len() - ctrl::LEN - 4;
        if payload.len() > max {
            return Err(PostError::TooLong { len: payload.len() });
        }
        let seg = 4 + payload.len();
        let ds = (ctrl::LEN + seg).div_ceil(16);
        let bbs = (ds * 16).div_ceil(WQEBB) as u16;
        wqe::write_ctrl(
            &mut w[..ctrl::LEN],
            wqe::opcode::SEND,
            self.pc,
            self.qpn,
            ds as u8,
            0,
        );
        // Both fit: `payload` is at most `max` long.
        bytes::put(
            &mut w,
            ctrl::LEN,
            &(wqe::INLINE | payload.len() as u32).to_be_bytes(),
        );
        bytes::put(&mut w, ctrl::LEN + 4, payload);
        let blocks = w
            .get(..usize::from(bbs) * WQEBB)
            .ok_or(PostError::TooLong { len: payload.len() })?;
        self.post(hal, dma, blocks, bbs)
    }

    /// Releases the blocks of every WQE up to and including the one at `wqe_counter`
    /// (all our WQEs ask for a CQE, so completions arrive in order).
    pub fn complete(&mut self, wqe_counter: u16) {
        let size = self
            .sizes
            .get(usize::from(wqe_counter & (self.capacity() - 1)))
            .copied()
            .unwrap_or(1);
        let done = wqe_counter.wrapping_add(u16::from(size));
        if done.wrapping_sub(self.cc) <= self.outstanding() {
            self.cc = done;
        }
    }
}

/// A receive queue: entries of `16 << log_stride` bytes of data segments.
#[derive(Debug)]
pub struct RecvQueue {
    ring: Span,
    log_size: u8,
    log_stride: u8,
    /// Producer counter.
    head: u16,
    /// Consumer counter: entries whose completion has been reaped.
    tail: u16,
    dbr: Span,
    lkey: u32,
}

impl RecvQueue {
    /// The receive queue at the start of a QP's work-queue buffer.
    pub fn new(ring: Span, log_size: u8, log_stride: u8, dbr: Span, lkey: u32) -> RecvQueue {
        RecvQueue {
            ring,
            log_size,
            log_stride,
            head: 0,
            tail: 0,
            dbr,
            lkey,
        }
    }

    /// Entries posted and not yet completed.
    pub fn outstanding(&self) -> u16 {
        self.head.wrapping_sub(self.tail)
    }

    /// Starts the queue afresh after its QP went to RST: every entry is forgotten and
    /// the doorbell record is zeroed.
    pub fn reset(&mut self, dma: &DmaRegion) -> Result<(), OutOfRegion> {
        self.head = 0;
        self.tail = 0;
        dma.write_be32(self.dbr.offset, 0)
    }

    /// Posts one receive scattering into `bufs` in order (at most the stride's worth of
    /// segments); no register access: the doorbell record is the doorbell.
    pub fn post(&mut self, dma: &DmaRegion, bufs: &[Span]) -> Result<u16, PostError> {
        let slots = (16usize << self.log_stride) / data::LEN;
        if self.outstanding() >= 1 << self.log_size {
            return Err(PostError::Full);
        }
        if bufs.len() > slots {
            return Err(PostError::TooLong { len: bufs.len() });
        }
        let index = self.head;
        let entry = self.ring.offset
            + usize::from(index & ((1 << self.log_size) - 1)) * (16 << self.log_stride);
        let mut seg = [0u8; data::LEN];
        for i in 0..slots {
            match bufs.get(i) {
                Some(b) => {
                    let phys = dma.phys_span(*b)?;
                    wqe::write_data(&mut seg, b.len as u32, self.lkey, phys);
                }
                None => wqe::write_data(&mut seg, 0, wqe::INVALID_LKEY, 0),
            }
            dma.write(entry + i * data::LEN, &seg)?;
        }
        self.head = self.head.wrapping_add(1);
        dma::publish();
        dma.write_be32(self.dbr.offset, u32::from(self.head))?;
        Ok(index)
    }

    /// Marks the entry at `wqe_counter` (and any before it) completed.
    pub fn complete(&mut self, wqe_counter: u16) {
        let done = wqe_counter.wrapping_add(1);
        if done.wrapping_sub(self.tail) <= self.outstanding() {
            self.tail = done;
        }
    }
}

/// What an armed CQ waits for before it writes a completion event: the command in
/// bits 26:24 of the CQ doorbell's arm word (Linux `MLX5_CQ_DB_REQ_NOT`,
/// `MLX5_CQ_DB_REQ_NOT_SOL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArmMode {
    /// The next CQE of any kind.
    Next,
    /// The next CQE of a message sent with the solicited-event bit, or the next error
    /// CQE.
    Solicited,
}

impl ArmMode {
    /// The command bits of the arm word.
    pub const fn command(self) -> u32 {
        match self {
            ArmMode::Next => 0,
            ArmMode::Solicited => 1 << 24,
        }
    }
}

/// The CQ doorbell's arm word (also the CQ doorbell record's second dword): arm
/// sequence number in bits 29:28, command in 26:24, consumer index in 23:0
/// (reference/mlx5.md §C.6, C.7).
pub const fn arm_word(sn: u8, mode: ArmMode, ci: u32) -> u32 {
    ((sn & 3) as u32) << 28 | mode.command() | (ci & 0xFF_FFFF)
}

/// A completion queue, polled and, when interrupts are wanted, armed.
#[derive(Debug)]
pub struct CompletionQueue {
    ring: Span,
    log_size: u8,
    /// Consumer index.
    ci: u32,
    dbr: Span,
    cqn: u32,
    uar: u32,
    /// Arm sequence number: completion events reaped for this CQ, modulo 4. The device
    /// counts the events it writes the same way and ignores (the model: refuses) an arm
    /// that carries an older number.
    arm_sn: u8,
    /// How the CQ is armed, until its completion event is reaped.
    armed: Option<ArmMode>,
}

impl CompletionQueue {
    /// CQ `cqn`, whose ring and doorbell record `create_cq` initialised; its doorbell
    /// is in UAR page `uar`.
    pub fn new(ring: Span, log_size: u8, dbr: Span, cqn: u32, uar: u32) -> CompletionQueue {
        CompletionQueue {
            ring,
            log_size,
            ci: 0,
            dbr,
            cqn,
            uar,
            arm_sn: 0,
            armed: None,
        }
    }

    /// The CQ number.
    pub fn cqn(&self) -> u32 {
        self.cqn
    }

    /// How the CQ is armed (`None`: not armed, or its event has been reaped).
    pub fn armed(&self) -> Option<ArmMode> {
        self.armed
    }

    /// Asks the device for one completion event when the next CQE (`mode`) arrives, or
    /// at once when such a CQE is already there past the consumer index: writes the
    /// arm record (doorbell record dword 1), then the CQ doorbell (UAR 0x20: the arm
    /// word, then the CQN) in one 64-bit write. Returns whether a register was
    /// written: a CQ already armed for `mode` (or for every CQE) is left alone.
    pub fn arm<H: Hal>(
        &mut self,
        hal: &H,
        dma: &DmaRegion,
        mode: ArmMode,
    ) -> Result<bool, OutOfRegion> {
        if self.armed == Some(ArmMode::Next) || self.armed == Some(mode) {
            return Ok(false);
        }
        let word = arm_word(self.arm_sn, mode, self.ci);
        dma.write_be32(self.dbr.offset + 4, word)?;
        // The arm record before the doorbell that makes the device read it.
        dma::publish();
        let at = self.uar as usize * UAR_PAGE + UAR_CQ_DB;
        hal.write64(at, u64::from(word) << 32 | u64::from(self.cqn & 0xFF_FFFF));
        self.armed = Some(mode);
        Ok(true)
    }

    /// A completion event for this CQ was reaped from the EQ: the device disarmed the
    /// CQ when it wrote the event, and the arm sequence number moves on.
    pub fn on_completion_event(&mut self) {
        self.armed = None;
        self.arm_sn = (self.arm_sn + 1) & 3;
    }

    /// The next completion, if the device has written one; no register access.
    pub fn poll(&mut self, dma: &DmaRegion) -> Result<Option<Completion>, OutOfRegion> {
        let size = 1u32 << self.log_size;
        let at = self.ring.offset + (self.ci & (size - 1)) as usize * ENTRY;
        let op_own = dma.read_u8_volatile(at + wqe::cqe::OP_OWN)?;
        let owner = u32::from(op_own & 1);
        if op_own >> 4 == CQE_INVALID >> 4 || owner != (self.ci >> self.log_size) & 1 {
            return Ok(None);
        }
        dma::observe();
        let mut e = [0u8; wqe::cqe::LEN];
        dma.read(at, &mut e)?;
        let c = wqe::parse_cqe(&e);
        self.ci = self.ci.wrapping_add(1);
        dma::publish();
        dma.write_be32(self.dbr.offset, self.ci & 0xFF_FFFF)?;
        Ok(Some(c))
    }
}

/// An event read from the EQ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// Event type (0x00 completion, 0x09 port change, 0x04 CQ error, 0x0b page request, …).
    pub kind: u8,
    /// Sub-type (port change: 1 down, 4 active, 6 LID change, …).
    pub sub_type: u8,
    /// The 28 bytes of event data.
    pub data: [u8; 28],
}

impl Event {
    /// The CQ a completion event (type 0x00) is for: `comp_event.cq_number`, the low 24
    /// bits of event data dword 6. `None` for every other type.
    pub fn completion_cqn(&self) -> Option<u32> {
        (self.kind == event::COMPLETION).then(|| comp_event::CQ_NUMBER.get(&self.data) as u32)
    }
}

/// The event queue, polled and, when interrupts are wanted, armed.
#[derive(Debug)]
pub struct EventQueue {
    ring: Span,
    log_size: u8,
    ci: u32,
    eqn: u8,
    uar: u32,
    /// The consumer index the device was last told of by [`EventQueue::arm`] or
    /// [`EventQueue::report_consumed`].
    reported: u32,
    /// Armed and no event read since (the device disarms the EQ when it raises the
    /// interrupt for an event).
    armed: bool,
}

impl EventQueue {
    /// An EQ whose ring `create_eq` initialised.
    pub fn new(ring: Span, log_size: u8, eqn: u8, uar: u32) -> EventQueue {
        EventQueue {
            ring,
            log_size,
            ci: 0,
            eqn,
            uar,
            reported: 0,
            armed: false,
        }
    }

    /// Whether the EQ is armed (no event read since it was).
    pub fn armed(&self) -> bool {
        self.armed
    }

    /// The next event, if any; no register access (see [`EventQueue::update_ci`]).
    pub fn poll(&mut self, dma: &DmaRegion) -> Result<Option<Event>, OutOfRegion> {
        let size = 1u32 << self.log_size;
        let at = self.ring.offset + (self.ci & (size - 1)) as usize * ENTRY;
        let owner = dma.read_u8_volatile(at + eqe::OWNER.byte())? & 1;
        if u32::from(owner) != (self.ci >> self.log_size) & 1 {
            return Ok(None);
        }
        dma::observe();
        let mut e = [0u8; ENTRY];
        dma.read(at, &mut e)?;
        let data = bytes::read(&e, eqe::EVENT_DATA.byte()).unwrap_or([0; 28]);
        self.ci = self.ci.wrapping_add(1);
        // An event written after the EQ was armed raised its interrupt and disarmed it;
        // one written before made the arm raise it at once.
        self.armed = false;
        Ok(Some(Event {
            kind: eqe::EVENT_TYPE.get(&e) as u8,
            sub_type: eqe::EVENT_SUB_TYPE.get(&e) as u8,
            data,
        }))
    }

    fn doorbell(&self) -> u32 {
        u32::from(self.eqn) << 24 | (self.ci & 0xFF_FFFF)
    }

    /// Tells the device how far the EQ has been read (one register write, without
    /// arming: the driver polls).
    pub fn update_ci<H: Hal>(&self, hal: &H) {
        let at = self.uar as usize * UAR_PAGE + UAR_EQ_CI;
        hal.write32(at, self.doorbell());
    }

    /// Tells the device how far the EQ has been read (UAR 0x48, without arming) once
    /// half of its entries have been read unreported; returns whether it wrote. The
    /// device writes an event only into an entry it knows is free, so the EQ never
    /// overruns while fewer than half its entries arrive between two polls; an arm
    /// reports the consumer index too.
    pub fn report_consumed<H: Hal>(&mut self, hal: &H) -> bool {
        let half = 1u32 << self.log_size.saturating_sub(1);
        if self.ci.wrapping_sub(self.reported) < half {
            return false;
        }
        self.update_ci(hal);
        self.reported = self.ci;
        true
    }

    /// Reports the consumer index and arms the EQ (UAR 0x40): its next event raises
    /// its MSI-X vector; an event already written past the consumer index raises it at
    /// once. Returns whether it wrote: an EQ still armed is left alone.
    pub fn arm<H: Hal>(&mut self, hal: &H) -> bool {
        if self.armed {
            return false;
        }
        let at = self.uar as usize * UAR_PAGE + UAR_EQ_ARM;
        hal.write32(at, self.doorbell());
        self.reported = self.ci;
        self.armed = true;
        true
    }
}
