//! The command queue entry, the mailbox block, and the commands of bring-up and
//! teardown (PRM "Command Interface" and "HCA Commands"; reference/mlx5.md §C.3–C.5).
//!
//! Every command input starts with `opcode` (bits 0x00–0x0f) and `op_mod` (0x30–0x3f);
//! every output with `status` (0x00–0x07) and `syndrome` (0x20–0x3f): [`hdr`].

use super::ifc_struct;

/// The fields every command input and output shares.
pub mod hdr {
    use crate::ifc::Field;

    /// Input: command opcode.
    pub const OPCODE: Field = Field::new(0x00, 16);
    /// Input: user context (0 for the kernel-level driver).
    pub const UID: Field = Field::new(0x10, 16);
    /// Input: opcode modifier.
    pub const OP_MOD: Field = Field::new(0x30, 16);
    /// Output: command status (0 = OK).
    pub const STATUS: Field = Field::new(0x00, 8);
    /// Output: syndrome identifying the failure.
    pub const SYNDROME: Field = Field::new(0x20, 32);
    /// Bytes of the shortest input and output (header only).
    pub const LEN: usize = 16;
}

ifc_struct! {
    /// A 64-byte command queue entry.
    cmd_queue_entry (0x200) {
        TYPE = "type": 0x000, 8;
        INPUT_LENGTH = "input_length": 0x020, 32;
        INPUT_MAILBOX_POINTER_HI = "input_mailbox_pointer_63_32": 0x040, 32;
        /// Bits 31:9 of the input mailbox address (mailboxes are 512-byte aligned here).
        INPUT_MAILBOX_POINTER_LO = "input_mailbox_pointer_31_9": 0x060, 23;
        COMMAND_INPUT_INLINE_DATA = "command_input_inline_data": 0x080, 128;
        COMMAND_OUTPUT_INLINE_DATA = "command_output_inline_data": 0x100, 128;
        OUTPUT_MAILBOX_POINTER_HI = "output_mailbox_pointer_63_32": 0x180, 32;
        OUTPUT_MAILBOX_POINTER_LO = "output_mailbox_pointer_31_9": 0x1A0, 23;
        OUTPUT_LENGTH = "output_length": 0x1C0, 32;
        TOKEN = "token": 0x1E0, 8;
        SIGNATURE = "signature": 0x1E8, 8;
        /// Delivery status (0 = delivered).
        STATUS = "status": 0x1F8, 7;
        /// 1 while the device owns the entry.
        OWNERSHIP = "ownership": 0x1FF, 1;
    }
}

ifc_struct! {
    /// A 576-byte command mailbox block; blocks chain through `next_pointer`.
    cmd_if_box (0x1200) {
        MAILBOX_DATA = "mailbox_data": 0x0000, 4096;
        NEXT_POINTER_HI = "next_pointer_63_32": 0x1180, 32;
        /// Bits 31:10 of the next block's address (blocks are 1 KiB aligned).
        NEXT_POINTER_LO = "next_pointer_31_10": 0x11A0, 22;
        BLOCK_NUMBER = "block_number": 0x11C0, 32;
        TOKEN = "token": 0x11E8, 8;
        CTRL_SIGNATURE = "ctrl_signature": 0x11F0, 8;
        SIGNATURE = "signature": 0x11F8, 8;
    }
}

ifc_struct! {
    /// ENABLE_HCA (0x104) input.
    enable_hca_in (0x80) {
        OPCODE = "opcode": 0x00, 16;
        OP_MOD = "op_mod": 0x30, 16;
        EMBEDDED_CPU_FUNCTION = "embedded_cpu_function": 0x40, 1;
        FUNCTION_ID = "function_id": 0x50, 16;
    }
}

ifc_struct! {
    /// ENABLE_HCA output (and the shape of every header-only output).
    enable_hca_out (0x60) {
        STATUS = "status": 0x00, 8;
        SYNDROME = "syndrome": 0x20, 32;
    }
}

ifc_struct! {
    /// DISABLE_HCA (0x105) input.
    disable_hca_in (0x80) {
        OPCODE = "opcode": 0x00, 16;
        OP_MOD = "op_mod": 0x30, 16;
        EMBEDDED_CPU_FUNCTION = "embedded_cpu_function": 0x40, 1;
        FUNCTION_ID = "function_id": 0x50, 16;
    }
}

ifc_struct! {
    /// QUERY_ISSI (0x10a) output.
    query_issi_out (0x380) {
        STATUS = "status": 0x000, 8;
        SYNDROME = "syndrome": 0x020, 32;
        CURRENT_ISSI = "current_issi": 0x050, 16;
        /// Bit n set: ISSI n supported (n < 32).
        SUPPORTED_ISSI_DW0 = "supported_issi_dw0": 0x360, 32;
    }
}

ifc_struct! {
    /// SET_ISSI (0x10b) input.
    set_issi_in (0x80) {
        OPCODE = "opcode": 0x00, 16;
        OP_MOD = "op_mod": 0x30, 16;
        CURRENT_ISSI = "current_issi": 0x50, 16;
    }
}

ifc_struct! {
    /// QUERY_PAGES (0x107) input; op_mod 1 boot, 2 init, 3 regular.
    query_pages_in (0x80) {
        OPCODE = "opcode": 0x00, 16;
        OP_MOD = "op_mod": 0x30, 16;
        EMBEDDED_CPU_FUNCTION = "embedded_cpu_function": 0x40, 1;
        FUNCTION_ID = "function_id": 0x50, 16;
    }
}

ifc_struct! {
    /// QUERY_PAGES output.
    query_pages_out (0x80) {
        STATUS = "status": 0x00, 8;
        SYNDROME = "syndrome": 0x20, 32;
        EMBEDDED_CPU_FUNCTION = "embedded_cpu_function": 0x40, 1;
        FUNCTION_ID = "function_id": 0x50, 16;
        /// Signed: negative means pages the driver may take back.
        NUM_PAGES = "num_pages": 0x60, 32;
    }
}

ifc_struct! {
    /// MANAGE_PAGES (0x108) input; op_mod 0 cannot give, 1 give, 2 take. The
    /// physical-address list follows the 16-byte header, 8 bytes per page.
    manage_pages_in (0x80) {
        OPCODE = "opcode": 0x00, 16;
        OP_MOD = "op_mod": 0x30, 16;
        EMBEDDED_CPU_FUNCTION = "embedded_cpu_function": 0x40, 1;
        FUNCTION_ID = "function_id": 0x50, 16;
        INPUT_NUM_ENTRIES = "input_num_entries": 0x60, 32;
        PAS = "pas[0]": 0x80, 64;
    }
}

ifc_struct! {
    /// MANAGE_PAGES output; for "take", the returned addresses follow the header.
    manage_pages_out (0x80) {
        STATUS = "status": 0x00, 8;
        SYNDROME = "syndrome": 0x20, 32;
        OUTPUT_NUM_ENTRIES = "output_num_entries": 0x40, 32;
        PAS = "pas[0]": 0x80, 64;
    }
}

ifc_struct! {
    /// QUERY_HCA_CAP (0x100) input; op_mod = capability type << 1 | (1 current, 0 max).
    query_hca_cap_in (0x80) {
        OPCODE = "opcode": 0x00, 16;
        OP_MOD = "op_mod": 0x30, 16;
        OTHER_FUNCTION = "other_function": 0x40, 1;
        FUNCTION_ID = "function_id": 0x50, 16;
    }
}

ifc_struct! {
    /// QUERY_HCA_CAP output: the 4 KiB capability area follows the header.
    query_hca_cap_out (0x8080) {
        STATUS = "status": 0x00, 8;
        SYNDROME = "syndrome": 0x20, 32;
        CAPABILITY = "capability": 0x80, 0x8000;
    }
}

ifc_struct! {
    /// SET_HCA_CAP (0x109) input; op_mod = capability type << 1. The capability area
    /// follows the header.
    set_hca_cap_in (0x8080) {
        OPCODE = "opcode": 0x00, 16;
        OP_MOD = "op_mod": 0x30, 16;
        OTHER_FUNCTION = "other_function": 0x40, 1;
        FUNCTION_ID = "function_id": 0x50, 16;
        CAPABILITY = "capability": 0x80, 0x8000;
    }
}

ifc_struct! {
    /// INIT_HCA (0x102) input.
    init_hca_in (0x100) {
        OPCODE = "opcode": 0x00, 16;
        OP_MOD = "op_mod": 0x30, 16;
        SW_OWNER_ID = "sw_owner_id": 0x80, 128;
    }
}

ifc_struct! {
    /// TEARDOWN_HCA (0x103) input; profile 0 graceful, 1 force close.
    teardown_hca_in (0x80) {
        OPCODE = "opcode": 0x00, 16;
        OP_MOD = "op_mod": 0x30, 16;
        PROFILE = "profile": 0x50, 16;
    }
}

ifc_struct! {
    /// TEARDOWN_HCA output; `state` 1: a forced teardown failed.
    teardown_hca_out (0x80) {
        STATUS = "status": 0x00, 8;
        SYNDROME = "syndrome": 0x20, 32;
        STATE = "state": 0x7F, 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ifc::ALL;

    #[test]
    fn every_command_shares_the_header() {
        for s in ALL {
            for (name, field) in s.fields {
                let expect = match *name {
                    "opcode" if s.name.ends_with("_in") => hdr::OPCODE,
                    "op_mod" if s.name.ends_with("_in") => hdr::OP_MOD,
                    "status" if s.name.ends_with("_out") => hdr::STATUS,
                    "syndrome" if s.name.ends_with("_out") => hdr::SYNDROME,
                    _ => continue,
                };
                assert_eq!(*field, expect, "{}.{name}", s.name);
            }
        }
    }

    #[test]
    fn entry_and_mailbox_sizes() {
        assert_eq!(cmd_queue_entry::SIZE, 64);
        assert_eq!(cmd_if_box::SIZE, 576);
        assert_eq!(cmd_if_box::NEXT_POINTER_HI.byte(), 0x230);
        assert_eq!(cmd_if_box::BLOCK_NUMBER.byte(), 0x238);
        assert_eq!(cmd_queue_entry::TOKEN.byte(), 0x3C);
    }
}
