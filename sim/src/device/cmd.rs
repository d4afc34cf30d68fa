//! The command transport of the model: reads a command entry and its input mailbox
//! chain from host memory, checks them as firmware does (signature, type, token, block
//! numbers, alignment, lengths), hands the command to [`super::fw`], and writes the
//! output inline and into the output chain before handing the entry back.
//!
//! When `FABBOOT_CMDLOG` names a file, one JSON object per executed command is appended:
//! `{"opcode": N, "op_mod": N, "input": "<hex>", "output": "<hex>", "status": N,
//! "syndrome": N}` (input and output whole, mailbox data concatenated).

use std::io::Write as _;

use fabboot_hca::cmdif::{INLINE, MAILBOX_DATA, blocks, get_pointer, xor};
use fabboot_hca::dma::DmaRegion;
use fabboot_hca::ifc::cmd::{cmd_if_box as mbox, cmd_queue_entry as entry, hdr};

use super::{Mlx5Function, Violation};

/// Largest command input or output the model accepts (MANAGE_PAGES of 64 Ki pages).
const MAX_LEN: usize = 16 + 8 * 65536;

/// Delivery status values (reference/mlx5.md §C.3).
pub mod delivery {
    #![allow(missing_docs)]
    pub const SIGNATURE: u8 = 0x1;
    pub const TOKEN: u8 = 0x2;
    pub const BLOCK_NUMBER: u8 = 0x3;
    pub const OUTPUT_POINTER: u8 = 0x4;
    pub const INPUT_POINTER: u8 = 0x5;
    pub const INPUT_LENGTH: u8 = 0x7;
    pub const OUTPUT_LENGTH: u8 = 0x8;
    pub const DESCRIPTOR_TYPE: u8 = 0x10;
}

/// Executes the command in the entry at `entry_addr`.
pub fn execute(dev: &Mlx5Function, mem: &DmaRegion, entry_addr: u64) {
    let Some(at) = mem.offset_of(entry_addr, entry::SIZE) else {
        dev.refuse(Violation::OutsideRegion {
            addr: entry_addr,
            len: entry::SIZE,
            what: "command entry",
        });
        return;
    };
    let mut e = [0u8; entry::SIZE];
    if mem.read(at, &mut e).is_err() {
        return;
    }
    if entry::OWNERSHIP.get(&e) == 0 {
        dev.refuse(Violation::Doorbell {
            what: "entry not owned by the device",
            value: 0,
        });
        return;
    }
    let inline_in = entry::COMMAND_INPUT_INLINE_DATA
        .bytes(&e)
        .unwrap_or(&[0; 16])
        .to_vec();
    let opcode = hdr::OPCODE.get(&inline_in) as u16;
    let op_mod = hdr::OP_MOD.get(&inline_in) as u16;
    match transport(mem, &e) {
        Err((status, what)) => {
            dev.refuse(Violation::Delivery {
                opcode,
                status,
                what,
            });
            entry::STATUS.set(&mut e, status.into());
        }
        Ok((input, out_len, out_blocks)) => {
            let reply = dev
                .fw
                .borrow_mut()
                .execute(opcode, op_mod, &input, out_len, mem, &dev.clock);
            if let Some(what) = reply.violation {
                dev.refuse(Violation::Command {
                    opcode,
                    op_mod,
                    status: reply.status,
                    what,
                });
            }
            let mut output = reply.output;
            output.resize(out_len, 0);
            hdr::STATUS.set(&mut output, reply.status.into());
            hdr::SYNDROME.set(&mut output, reply.syndrome.into());
            let inline_out = entry::COMMAND_OUTPUT_INLINE_DATA.byte();
            let n = out_len.min(INLINE);
            e[inline_out..inline_out + n].copy_from_slice(&output[..n]);
            for (i, block_at) in out_blocks.iter().enumerate() {
                let data = output.get(INLINE + i * MAILBOX_DATA..).unwrap_or(&[]);
                let n = data.len().min(MAILBOX_DATA);
                let _ = mem.write(*block_at, &data[..n]);
            }
            log(
                opcode,
                op_mod,
                &input,
                &output,
                reply.status,
                reply.syndrome,
            );
            entry::STATUS.set(&mut e, 0);
        }
    }
    entry::OWNERSHIP.set(&mut e, 0);
    let _ = mem.write(at, &e);
}

/// Checks the entry and gathers the input; returns the input, the output length and
/// the offsets of the output blocks, or a delivery status and what was wrong.
#[allow(clippy::type_complexity)]
fn transport(
    mem: &DmaRegion,
    e: &[u8],
) -> Result<(Vec<u8>, usize, Vec<usize>), (u8, &'static str)> {
    if xor(e) != 0xFF {
        return Err((delivery::SIGNATURE, "entry signature"));
    }
    if entry::TYPE.get(e) != 7 {
        return Err((delivery::DESCRIPTOR_TYPE, "entry type is not PCIe command"));
    }
    let token = entry::TOKEN.get(e) as u8;
    if token == 0 {
        return Err((delivery::TOKEN, "token zero"));
    }
    let in_len = entry::INPUT_LENGTH.get(e) as usize;
    let out_len = entry::OUTPUT_LENGTH.get(e) as usize;
    if !(16..=MAX_LEN).contains(&in_len) {
        return Err((delivery::INPUT_LENGTH, "input length"));
    }
    if !(16..=MAX_LEN).contains(&out_len) {
        return Err((delivery::OUTPUT_LENGTH, "output length"));
    }
    let mut input = entry::COMMAND_INPUT_INLINE_DATA
        .bytes(e)
        .unwrap_or(&[])
        .to_vec();
    input.truncate(in_len);
    let in_first = get_pointer(
        e,
        entry::INPUT_MAILBOX_POINTER_HI,
        entry::INPUT_MAILBOX_POINTER_LO,
        9,
    );
    let in_blocks = walk(
        mem,
        in_first,
        blocks(in_len),
        token,
        delivery::INPUT_POINTER,
    )?;
    let mut block = [0u8; MAILBOX_DATA];
    for at in &in_blocks {
        let need = (in_len - input.len()).min(MAILBOX_DATA);
        let _ = mem.read(*at, &mut block);
        input.extend_from_slice(&block[..need]);
    }
    let out_first = get_pointer(
        e,
        entry::OUTPUT_MAILBOX_POINTER_HI,
        entry::OUTPUT_MAILBOX_POINTER_LO,
        9,
    );
    let out_blocks = walk(
        mem,
        out_first,
        blocks(out_len),
        token,
        delivery::OUTPUT_POINTER,
    )?;
    Ok((input, out_len, out_blocks))
}

/// Follows a mailbox chain of `count` blocks from `first`, checking each block's
/// placement, number and token; returns their offsets in the region.
fn walk(
    mem: &DmaRegion,
    first: u64,
    count: usize,
    token: u8,
    misplaced: u8,
) -> Result<Vec<usize>, (u8, &'static str)> {
    let mut out = Vec::with_capacity(count);
    let mut addr = first;
    for i in 0..count {
        if !addr.is_multiple_of(1024) {
            return Err((misplaced, "mailbox not 1 KiB aligned"));
        }
        let Some(at) = mem.offset_of(addr, mbox::SIZE) else {
            return Err((misplaced, "mailbox outside the DMA region"));
        };
        let mut b = [0u8; mbox::SIZE];
        let _ = mem.read(at, &mut b);
        if mbox::BLOCK_NUMBER.get(&b) != i as u64 {
            return Err((delivery::BLOCK_NUMBER, "mailbox block number"));
        }
        if mbox::TOKEN.get(&b) != u64::from(token) {
            return Err((delivery::TOKEN, "mailbox token differs from the entry's"));
        }
        out.push(at);
        addr = get_pointer(&b, mbox::NEXT_POINTER_HI, mbox::NEXT_POINTER_LO, 10);
    }
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn log(opcode: u16, op_mod: u16, input: &[u8], output: &[u8], status: u8, syndrome: u32) {
    let Some(path) = std::env::var_os("FABBOOT_CMDLOG") else {
        return;
    };
    let line = format!(
        "{{\"opcode\": {opcode}, \"op_mod\": {op_mod}, \"input\": \"{}\", \"output\": \"{}\", \"status\": {status}, \"syndrome\": {syndrome}}}\n",
        hex(input),
        hex(output)
    );
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(line.as_bytes());
    }
}
