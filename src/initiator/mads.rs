//! QP1, the general services QP: management datagrams to and from the SA and the
//! target's CM (IBTA vol. 1 §13.5). Every receive entry scatters into its own slot of
//! the plan's MAD buffers (40-byte GRH, then the 256-byte MAD) and is posted again as
//! soon as it is read; sends go from eight 256-byte slots used in turn.

use fabboot_hca::dma::{DmaRegion, Span};
use fabboot_hca::hal::Hal;
use fabboot_hca::plan::{MAD_RECV_SLOTS, MAD_SEND_SLOTS, MAD_SLOT, MemoryPlan};
use fabboot_hca::queues::{CompletionQueue, PostError, RecvQueue, SendQueue};
use fabboot_hca::resources::GSI_QKEY;
use fabboot_hca::wqe::{AddressVector, CqeOpcode, GRH_BYTES};

/// A MAD as received, with where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// The 256 bytes (shorter arrivals are zero-filled; `len` tells).
    pub mad: [u8; 256],
    /// Bytes of MAD that arrived.
    pub len: usize,
    /// Source LID.
    pub slid: u16,
    /// Service level.
    pub sl: u8,
    /// Source QP.
    pub src_qp: u32,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MadStats {
    /// MADs sent.
    pub sent: u64,
    /// MADs received.
    pub received: u64,
    /// Send or receive completions with an error.
    pub errors: u64,
}

/// QP1's buffers and counters.
#[derive(Debug)]
pub struct MadRing {
    plan: MemoryPlan,
    sent: u64,
    done: u64,
    posted: usize,
    /// Counters.
    pub stats: MadStats,
}

impl MadRing {
    /// QP1's ring over `plan`'s MAD buffers.
    pub fn new(plan: MemoryPlan) -> MadRing {
        MadRing {
            plan,
            sent: 0,
            done: 0,
            posted: 0,
            stats: MadStats::default(),
        }
    }

    fn recv_slot(&self, i: usize) -> [Span; 2] {
        let at = self.plan.mad_buffers.offset + (i % MAD_RECV_SLOTS) * MAD_SLOT;
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

    /// Fills the receive queue.
    pub fn post_receives(&mut self, rq: &mut RecvQueue, dma: &DmaRegion) -> Result<(), PostError> {
        while usize::from(rq.outstanding()) < MAD_RECV_SLOTS {
            // Entry n of the queue (counted from its creation) scatters into slot
            // n % slots, which is where its completion's WQE counter points.
            rq.post(dma, &self.recv_slot(self.posted))?;
            self.posted = self.posted.wrapping_add(1);
        }
        Ok(())
    }

    /// Sends `mad` to QP1 at `dlid` (Q_Key 0x80010000, service level `sl`).
    pub fn send<H: Hal>(
        &mut self,
        hal: &H,
        dma: &DmaRegion,
        sq: &mut SendQueue,
        dlid: u16,
        sl: u8,
        mad: &[u8; 256],
    ) -> Result<(), PostError> {
        if self.sent.wrapping_sub(self.done) >= MAD_SEND_SLOTS as u64 {
            return Err(PostError::Full);
        }
        let buf = Span {
            offset: self.plan.mad_buffers.offset
                + MAD_RECV_SLOTS * MAD_SLOT
                + (self.sent % MAD_SEND_SLOTS as u64) as usize * 256,
            len: 256,
        };
        dma.write(buf.offset, mad)?;
        let to = AddressVector {
            dqpn: 1,
            qkey: GSI_QKEY,
            dlid,
            sl,
            path_bits: 0,
        };
        sq.post_ud_send(hal, dma, &to, buf)?;
        self.sent = self.sent.wrapping_add(1);
        self.stats.sent = self.stats.sent.wrapping_add(1);
        Ok(())
    }

    /// The next MAD received on QP1, if any. Send completions met on the way retire
    /// their slot; the receive entry read is posted again at once.
    pub fn next(
        &mut self,
        dma: &DmaRegion,
        cq: &mut CompletionQueue,
        sq: &mut SendQueue,
        rq: &mut RecvQueue,
    ) -> Result<Option<Received>, PostError> {
        while let Some(c) = cq.poll(dma)? {
            let receive = matches!(c.opcode, CqeOpcode::RespSend | CqeOpcode::RespErr);
            if c.is_error() {
                self.stats.errors = self.stats.errors.wrapping_add(1);
            }
            if !receive {
                sq.complete(c.wqe_counter);
                self.done = self.done.wrapping_add(1);
                continue;
            }
            rq.complete(c.wqe_counter);
            let mut got = None;
            if !c.is_error() {
                let slot = self.recv_slot(usize::from(c.wqe_counter));
                let mut r = Received {
                    mad: [0; 256],
                    len: (c.byte_cnt as usize).saturating_sub(GRH_BYTES).min(256),
                    slid: c.slid,
                    sl: c.sl,
                    src_qp: c.src_qpn,
                };
                dma.read(slot[1].offset, &mut r.mad)?;
                self.stats.received = self.stats.received.wrapping_add(1);
                got = Some(r);
            }
            self.post_receives(rq, dma)?;
            if got.is_some() {
                return Ok(got);
            }
        }
        Ok(None)
    }
}
