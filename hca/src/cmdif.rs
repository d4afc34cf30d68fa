//! The command interface (PRM "Command Interface"; reference/mlx5.md §C.3): one
//! command at a time through slot 0 of the command queue, input and output beyond 16
//! bytes in chained 576-byte mailboxes, completion by polling the entry's ownership bit
//! in memory against a deadline (no register read while waiting).

use crate::Mmio;
use crate::bytes;
use crate::dma::{self, DmaRegion, OutOfRegion, Span};
use crate::hal::Hal;
use crate::ifc::Field;
use crate::ifc::cmd::{cmd_if_box as mbox, cmd_queue_entry as entry, hdr};
use crate::init_seg::offset;

/// Command opcodes (PRM "Command Reference"; reference/mlx5.md §C.4).
pub mod opcode {
    #![allow(missing_docs)]
    pub const QUERY_HCA_CAP: u16 = 0x100;
    pub const INIT_HCA: u16 = 0x102;
    pub const TEARDOWN_HCA: u16 = 0x103;
    pub const ENABLE_HCA: u16 = 0x104;
    pub const DISABLE_HCA: u16 = 0x105;
    pub const QUERY_PAGES: u16 = 0x107;
    pub const MANAGE_PAGES: u16 = 0x108;
    pub const SET_HCA_CAP: u16 = 0x109;
    pub const QUERY_ISSI: u16 = 0x10A;
    pub const SET_ISSI: u16 = 0x10B;
    pub const NOP: u16 = 0x80D;
}

/// `type` of a command entry: PCIe command transport.
pub const ENTRY_TYPE_PCIE: u8 = 7;
/// Bytes of command data carried in one mailbox block.
pub const MAILBOX_DATA: usize = 512;
/// Distance between mailbox blocks: they must be 1 KiB aligned.
pub const MAILBOX_STRIDE: usize = 1024;
/// Bytes of input and of output carried in the entry itself.
pub const INLINE: usize = 16;

/// Where the command interface lives in the DMA region (from the memory plan).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmdLayout {
    /// The command queue: one 4 KiB page, 4 KiB aligned.
    pub queue: Span,
    /// Input mailbox blocks, [`MAILBOX_STRIDE`] apart, 1 KiB aligned.
    pub input: Span,
    /// Output mailbox blocks, likewise.
    pub output: Span,
}

impl CmdLayout {
    /// Largest command input this layout can carry.
    pub fn max_input(&self) -> usize {
        INLINE + self.input.len / MAILBOX_STRIDE * MAILBOX_DATA
    }

    /// Largest command output this layout can carry.
    pub fn max_output(&self) -> usize {
        INLINE + self.output.len / MAILBOX_STRIDE * MAILBOX_DATA
    }
}

/// The firmware's health buffer and counter, read when a command times out
/// (reference/mlx5.md §C.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Health {
    /// Health syndrome (0 = healthy; 0x1 FW internal, 0x7 dead IRISC, 0x8 HW fatal, …).
    pub syndrome: u8,
    /// Extended syndrome.
    pub ext_syndrome: u16,
    /// Firmware version word of the health buffer (all ones: the PCI link is dead).
    pub fw_ver: u32,
    /// Health counter; it keeps changing while firmware lives.
    pub counter: u32,
}

impl Health {
    /// Reads the health buffer (register reads: only on the error path).
    pub fn read(bar: &impl Mmio) -> Health {
        let synd_word = bar.read32(offset::HEALTH + 0x3C);
        Health {
            syndrome: (synd_word >> 16) as u8,
            ext_syndrome: (synd_word & 0xFFFF) as u16,
            fw_ver: bar.read32(offset::HEALTH + 0x30),
            counter: bar.read32(0x1010) & 0x00FF_FFFF,
        }
    }
}

/// Why a command did not complete successfully.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdError {
    /// Firmware kept its `initializing` bit set past the deadline.
    NotReady {
        /// How long we waited, in microseconds.
        waited_us: u64,
    },
    /// The device reports a command-queue geometry this driver cannot use.
    QueueGeometry {
        /// log2 of the number of entries.
        log_size: u8,
        /// log2 of the entry stride in bytes.
        log_stride: u8,
    },
    /// A buffer of the layout is not placed as the device requires.
    Misaligned {
        /// Which buffer.
        what: &'static str,
    },
    /// The command's input or output does not fit the mailboxes the plan reserved.
    TooLong {
        /// The command.
        opcode: u16,
        /// Bytes asked for.
        len: usize,
        /// Bytes available.
        max: usize,
    },
    /// The device did not hand the entry back before the deadline.
    Timeout {
        /// The command.
        opcode: u16,
        /// What the health buffer said then.
        health: Health,
    },
    /// The device refused the entry itself (bad signature, token, length…).
    Delivery {
        /// The command.
        opcode: u16,
        /// Delivery status (1 signature, 2 token, 3 block number, 7 input length, …).
        status: u8,
    },
    /// The command was delivered and failed.
    Failed {
        /// The command.
        opcode: u16,
        /// Its opcode modifier.
        op_mod: u16,
        /// Command status (2 bad opcode, 3 bad parameter, 4 bad system state, …).
        status: u8,
        /// The firmware's syndrome.
        syndrome: u32,
    },
    /// The output mailboxes came back inconsistent (token or block number).
    BadOutput {
        /// The command.
        opcode: u16,
        /// What was wrong.
        what: &'static str,
    },
    /// A carved buffer lies outside the DMA region (a plan/region mismatch).
    Dma(OutOfRegion),
}

impl From<OutOfRegion> for CmdError {
    fn from(e: OutOfRegion) -> Self {
        CmdError::Dma(e)
    }
}

/// The command interface once the device has been pointed at our queue.
#[derive(Debug)]
pub struct CmdIf {
    layout: CmdLayout,
    token: u8,
    timeout_us: u64,
    /// Commands executed, for reports.
    pub executed: u32,
}

/// Polling interval while waiting for firmware, in microseconds.
const POLL_US: u32 = 10;

/// The XOR of `bytes`, for entry and mailbox signatures.
pub fn xor(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |a, b| a ^ b)
}

impl CmdIf {
    /// Waits for firmware to be ready, checks the queue geometry it reports, points it
    /// at our command queue and waits for it to accept the queue.
    pub fn start<H: Hal>(
        hal: &H,
        dma: &DmaRegion,
        layout: CmdLayout,
        ready_timeout_us: u64,
        cmd_timeout_us: u64,
    ) -> Result<CmdIf, CmdError> {
        let queue = dma.phys(layout.queue.offset).ok_or(OutOfRegion {
            offset: layout.queue.offset,
            len: layout.queue.len,
            region: dma.len(),
        })?;
        if !queue.is_multiple_of(4096) || layout.queue.len < 4096 {
            return Err(CmdError::Misaligned {
                what: "command queue",
            });
        }
        for (what, span) in [
            ("input mailboxes", layout.input),
            ("output mailboxes", layout.output),
        ] {
            let ok = dma
                .phys(span.offset)
                .is_some_and(|p| p.is_multiple_of(MAILBOX_STRIDE as u64))
                && span.len >= MAILBOX_STRIDE;
            if !ok {
                return Err(CmdError::Misaligned { what });
            }
            dma.fill(span.offset, span.len, 0)?;
        }
        wait_ready(hal, ready_timeout_us)?;
        let geometry = hal.read32(offset::CMDQ_ADDR_L_SZ);
        let log_size = ((geometry >> 4) & 0xF) as u8;
        let log_stride = (geometry & 0xF) as u8;
        if !(6..=12).contains(&log_stride) || log_size + log_stride > 12 {
            return Err(CmdError::QueueGeometry {
                log_size,
                log_stride,
            });
        }
        dma.fill(layout.queue.offset, layout.queue.len, 0)?;
        dma::publish();
        hal.write32(offset::CMDQ_ADDR_H, (queue >> 32) as u32);
        // The low word also sets nic_interface = 0: full driver.
        hal.write32(offset::CMDQ_ADDR_L_SZ, (queue as u32) & !0xFFF);
        wait_ready(hal, ready_timeout_us)?;
        Ok(CmdIf {
            layout,
            token: 0,
            timeout_us: cmd_timeout_us,
            executed: 0,
        })
    }

    /// Where the interface lives.
    pub fn layout(&self) -> CmdLayout {
        self.layout
    }

    /// Executes one command: `input` is the whole command input (header first), and the
    /// whole output is written to `output`, whose length is the output length asked
    /// for. A non-zero command status is an error carrying opcode, status and syndrome.
    pub fn exec<H: Hal>(
        &mut self,
        hal: &H,
        dma: &DmaRegion,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<(), CmdError> {
        let out_len = output.len();
        self.exec_sized(hal, dma, input, input.len(), output, out_len)
    }

    /// As [`CmdIf::exec`] for commands whose declared lengths exceed what the caller
    /// needs to hold (QUERY_HCA_CAP's 4 KiB capability area, of which 256 bytes are
    /// used): the input is `input` followed by zeros up to `in_len`, and only the first
    /// `output.len()` bytes of the `out_len`-byte output are copied out. Large payloads
    /// thus never sit on a kernel stack.
    pub fn exec_sized<H: Hal>(
        &mut self,
        hal: &H,
        dma: &DmaRegion,
        input: &[u8],
        in_len: usize,
        output: &mut [u8],
        out_len: usize,
    ) -> Result<(), CmdError> {
        let opcode = hdr::OPCODE.get(input) as u16;
        let op_mod = hdr::OP_MOD.get(input) as u16;
        if in_len < hdr::LEN
            || in_len > self.layout.max_input()
            || input.len() > in_len
            || input.len() < hdr::LEN
        {
            let max = self.layout.max_input();
            return Err(CmdError::TooLong {
                opcode,
                len: in_len,
                max,
            });
        }
        if out_len < hdr::LEN
            || out_len > self.layout.max_output()
            || output.len() > out_len
            || output.len() < hdr::LEN
        {
            let max = self.layout.max_output();
            return Err(CmdError::TooLong {
                opcode,
                len: out_len,
                max,
            });
        }
        self.token = match self.token.wrapping_add(1) {
            0 => 1,
            t => t,
        };
        let token = self.token;
        let in_blocks = blocks(in_len);
        let out_blocks = blocks(out_len);
        self.chain(
            dma,
            self.layout.input,
            in_blocks,
            token,
            input.get(INLINE..).unwrap_or(&[]),
        )?;
        self.chain(dma, self.layout.output, out_blocks, token, &[])?;

        let mut e = [0u8; entry::SIZE];
        entry::TYPE.set(&mut e, ENTRY_TYPE_PCIE.into());
        entry::INPUT_LENGTH.set(&mut e, in_len as u64);
        entry::OUTPUT_LENGTH.set(&mut e, out_len as u64);
        if in_blocks > 0 {
            set_pointer(
                &mut e,
                entry::INPUT_MAILBOX_POINTER_HI,
                entry::INPUT_MAILBOX_POINTER_LO,
                9,
                self.block_phys(dma, self.layout.input, 0)?,
            );
        }
        if out_blocks > 0 {
            set_pointer(
                &mut e,
                entry::OUTPUT_MAILBOX_POINTER_HI,
                entry::OUTPUT_MAILBOX_POINTER_LO,
                9,
                self.block_phys(dma, self.layout.output, 0)?,
            );
        }
        // The first INLINE bytes travel in the entry, the rest in the mailboxes.
        if let Some(inline) = entry::COMMAND_INPUT_INLINE_DATA.bytes_mut(&mut e) {
            bytes::copy_prefix(inline, input);
        }
        entry::TOKEN.set(&mut e, token.into());
        entry::OWNERSHIP.set(&mut e, 1);
        let signature = !xor(&e);
        entry::SIGNATURE.set(&mut e, signature.into());
        let at = self.layout.queue.offset;
        dma.write(at, &e)?;
        dma::publish();
        hal.write32(offset::CMD_DBELL, 1); // slot 0
        self.executed = self.executed.wrapping_add(1);

        // Wait for the device to give the entry back: memory polls, no register reads.
        let own = at + entry::OWNERSHIP.byte();
        let start = hal.now_us();
        while dma.read_u8_volatile(own)? & 1 != 0 {
            if hal.now_us().saturating_sub(start) > self.timeout_us {
                return Err(CmdError::Timeout {
                    opcode,
                    health: Health::read(hal),
                });
            }
            hal.stall_us(POLL_US);
        }
        dma::observe();
        dma.read(at, &mut e)?;
        let delivery = entry::STATUS.get(&e) as u8;
        if delivery != 0 {
            return Err(CmdError::Delivery {
                opcode,
                status: delivery,
            });
        }
        if let Some(inline) = entry::COMMAND_OUTPUT_INLINE_DATA.bytes(&e) {
            bytes::copy_prefix(output, inline);
        }
        self.gather(
            dma,
            opcode,
            out_blocks,
            token,
            output.get_mut(INLINE..).unwrap_or(&mut []),
        )?;
        let status = hdr::STATUS.get(output) as u8;
        if status != 0 {
            let syndrome = hdr::SYNDROME.get(output) as u32;
            return Err(CmdError::Failed {
                opcode,
                op_mod,
                status,
                syndrome,
            });
        }
        Ok(())
    }

    fn block_phys(&self, dma: &DmaRegion, span: Span, block: usize) -> Result<u64, CmdError> {
        let offset = span.offset + block * MAILBOX_STRIDE;
        dma.phys(offset).ok_or(CmdError::Dma(OutOfRegion {
            offset,
            len: MAILBOX_STRIDE,
            region: dma.len(),
        }))
    }

    /// Writes a chain of `count` blocks at `span`, carrying `data` (zero-padded).
    fn chain(
        &self,
        dma: &DmaRegion,
        span: Span,
        count: usize,
        token: u8,
        data: &[u8],
    ) -> Result<(), CmdError> {
        let mut block = [0u8; mbox::SIZE];
        for i in 0..count {
            block.fill(0);
            let chunk = data.get(i * MAILBOX_DATA..).unwrap_or(&[]);
            if let Some(room) = mbox::MAILBOX_DATA.bytes_mut(&mut block) {
                bytes::copy_prefix(room, chunk);
            }
            if i + 1 < count {
                let next = self.block_phys(dma, span, i + 1)?;
                set_pointer(
                    &mut block,
                    mbox::NEXT_POINTER_HI,
                    mbox::NEXT_POINTER_LO,
                    10,
                    next,
                );
            }
            mbox::BLOCK_NUMBER.set(&mut block, i as u64);
            mbox::TOKEN.set(&mut block, token.into());
            dma.write(span.offset + i * MAILBOX_STRIDE, &block)?;
        }
        Ok(())
    }

    /// Reads `count` output blocks into `out`, checking each block's number and token.
    fn gather(
        &self,
        dma: &DmaRegion,
        opcode: u16,
        count: usize,
        token: u8,
        out: &mut [u8],
    ) -> Result<(), CmdError> {
        let mut block = [0u8; mbox::SIZE];
        for i in 0..count {
            dma.read(self.layout.output.offset + i * MAILBOX_STRIDE, &mut block)?;
            if mbox::BLOCK_NUMBER.get(&block) != i as u64 {
                return Err(CmdError::BadOutput {
                    opcode,
                    what: "output mailbox block number",
                });
            }
            if mbox::TOKEN.get(&block) != u64::from(token) {
                return Err(CmdError::BadOutput {
                    opcode,
                    what: "output mailbox token",
                });
            }
            // Every block is checked; only those the caller has room for are copied.
            let Some(dst) = out.get_mut(i * MAILBOX_DATA..) else {
                continue;
            };
            if let Some(data) = mbox::MAILBOX_DATA.bytes(&block) {
                bytes::copy_prefix(dst, data);
            }
        }
        Ok(())
    }
}

/// Writes a command input's opcode and opcode modifier.
pub fn header(buf: &mut [u8], op: u16, op_mod: u16) {
    hdr::OPCODE.set(buf, op.into());
    hdr::OP_MOD.set(buf, op_mod.into());
}

impl CmdIf {
    /// Runs a command of 16 bytes each way: the header, plus `value` in `field` (an
    /// object number, say; `None` for none). Returns the output.
    pub fn exec_short<H: Hal>(
        &mut self,
        hal: &H,
        dma: &DmaRegion,
        op: u16,
        op_mod: u16,
        field: Option<(Field, u64)>,
    ) -> Result<[u8; 16], CmdError> {
        let mut input = [0u8; 16];
        header(&mut input, op, op_mod);
        if let Some((f, v)) = field {
            f.set(&mut input, v);
        }
        let mut out = [0u8; 16];
        self.exec(hal, dma, &input, &mut out)?;
        Ok(out)
    }
}

/// Mailbox blocks needed for a command input or output of `len` bytes.
pub fn blocks(len: usize) -> usize {
    len.saturating_sub(INLINE).div_ceil(MAILBOX_DATA)
}

/// Writes a physical address split into a high word and a low field holding bits
/// 31:`low_shift`.
fn set_pointer(buf: &mut [u8], hi: Field, lo: Field, low_shift: u32, addr: u64) {
    hi.set(buf, addr >> 32);
    lo.set(buf, (addr & 0xFFFF_FFFF) >> low_shift);
}

/// Reads a physical address split into a high word and a low field holding bits
/// 31:`low_shift`.
pub fn get_pointer(buf: &[u8], hi: Field, lo: Field, low_shift: u32) -> u64 {
    hi.get(buf) << 32 | lo.get(buf) << low_shift
}

/// Polls the `initializing` bit until firmware is ready or the deadline passes.
fn wait_ready<H: Hal>(hal: &H, timeout_us: u64) -> Result<(), CmdError> {
    let start = hal.now_us();
    loop {
        if hal.read32(offset::INITIALIZING) & (1 << 31) == 0 {
            return Ok(());
        }
        let waited_us = hal.now_us().saturating_sub(start);
        if waited_us > timeout_us {
            return Err(CmdError::NotReady { waited_us });
        }
        hal.stall_us(1000);
    }
}
