//! SRP_CMD (`CmdIu::parse`), srp/src/cmd.rs.
//!
//! `CmdIu` has no emitter; the initiator's emitter is `SrpCmd`, which writes a subset
//! of what `CmdIu` reads. The round trip goes through `SrpCmd` whenever the parsed
//! command lies in that subset, and is skipped otherwise:
//!
//! * additional CDB bytes (`SrpCmd` sends none);
//! * data in both directions (`SrpCmd` has one direction);
//! * an indirect table whose address is below 68 (`SrpCmd` puts the table at its IU's
//!   address + 68, reference §1.2) or whose TOTAL LENGTH is not the sum of its
//!   entries' lengths (`SrpCmd` computes it).
//!
//! What `SrpCmd` re-emits differently, by design: the solicited-notification byte
//! (always 0), a direct descriptor's count (always 0, where 0 and 1 both parse), and
//! an indirect descriptor with a single entry (sent as that entry, direct). For those
//! the comparison is on the meaning: same tag, LUN, task attribute, CDB, direction and
//! segments.
#![no_main]

use fabboot_fuzz::emit_checked;
use fabboot_srp::cmd::{CmdIu, DataBuffer, DataDir, SrpCmd, TABLE_OFFSET};
use fabboot_srp::desc::DirectDesc;
use libfuzzer_sys::fuzz_target;

/// The segments and `SrpCmd` table address/key a parsed buffer stands for, or `None`
/// when `SrpCmd` cannot express it.
fn segments(buffer: &DataBuffer<'_>) -> Option<(Vec<DirectDesc>, u64, u32)> {
    match buffer {
        DataBuffer::None => Some((Vec::new(), 0, 0)),
        DataBuffer::Direct(d) => Some((vec![*d], 0, 0)),
        DataBuffer::Indirect(t) => {
            let entries: Vec<DirectDesc> = t.entries().collect();
            assert_eq!(entries.len(), t.len(), "every inline entry parses");
            assert!(!t.is_empty(), "a parsed indirect table is never empty");
            let total = entries
                .iter()
                .try_fold(0u32, |sum, e| sum.checked_add(e.len))?;
            if total != t.header.total_len {
                return None;
            }
            let iu_addr = t.header.table.va.checked_sub(TABLE_OFFSET as u64)?;
            Some((entries, iu_addr, t.header.table.rkey))
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(cmd) = CmdIu::parse(data) else {
        return;
    };
    if !cmd.additional_cdb.is_empty() {
        return;
    }
    let (dir, buffer) = match (cmd.data_out, cmd.data_in) {
        (DataBuffer::None, DataBuffer::None) => (DataDir::None, DataBuffer::None),
        (out, DataBuffer::None) => (DataDir::Out, out),
        (DataBuffer::None, into) => (DataDir::In, into),
        _ => return,
    };
    let Some((segs, iu_addr, iu_rkey)) = segments(&buffer) else {
        return;
    };
    let srp = SrpCmd {
        tag: cmd.tag,
        lun: cmd.lun,
        task_attr: cmd.task_attr,
        cdb: &cmd.cdb,
        dir,
        segments: &segs,
        iu_addr,
        iu_rkey,
    };
    let bytes = emit_checked("SrpCmd", srp.buffer_len(), |b| srp.emit(b));
    let back = match CmdIu::parse(&bytes) {
        Ok(v) => v,
        Err(e) => panic!("SrpCmd: emitted bytes do not parse as CmdIu: {e:?}\nvalue: {srp:?}"),
    };
    assert_eq!(back.sol_not, 0, "SrpCmd: solicited-notification byte");
    assert_eq!(
        (back.tag, back.lun, back.task_attr, back.cdb),
        (cmd.tag, cmd.lun, cmd.task_attr, cmd.cdb),
        "SrpCmd: fixed fields"
    );
    assert!(back.additional_cdb.is_empty(), "SrpCmd: additional CDB");
    let (back_buffer, other) = match dir {
        DataDir::Out => (back.data_out, back.data_in),
        DataDir::In | DataDir::None => (back.data_in, back.data_out),
    };
    assert_eq!(
        other,
        DataBuffer::None,
        "SrpCmd: data in the other direction"
    );
    match (&buffer, &back_buffer) {
        // One indirect entry goes out as a direct descriptor.
        (DataBuffer::Indirect(_), DataBuffer::Direct(d)) if segs.len() == 1 => {
            assert_eq!(*d, segs[0], "SrpCmd: single indirect entry");
        }
        _ => assert_eq!(buffer, back_buffer, "SrpCmd: data buffer"),
    }
    // The emitted form is a fixed point.
    let (segs2, addr2, rkey2) = segments(&back_buffer).expect("an emitted buffer re-emits");
    let srp2 = SrpCmd {
        tag: back.tag,
        lun: back.lun,
        task_attr: back.task_attr,
        cdb: &back.cdb,
        dir,
        segments: &segs2,
        iu_addr: addr2,
        iu_rkey: rkey2,
    };
    let again = emit_checked("SrpCmd", srp2.buffer_len(), |b| srp2.emit(b));
    assert_eq!(bytes, again, "SrpCmd: emit(parse(emit(v))) != emit(v)");
});
