//! The 64-byte event queue entry and the event data the driver reads (PRM "Events";
//! reference/mlx5.md §C.8–C.9).

use super::ifc_struct;

ifc_struct! {
    /// An event queue entry.
    eqe (0x200) {
        EVENT_TYPE = "event_type": 0x008, 8;
        EVENT_SUB_TYPE = "event_sub_type": 0x018, 8;
        /// 28 bytes of event data; see the `*_event` structures.
        EVENT_DATA = "event_data": 0x100, 0xE0;
        SIGNATURE = "signature": 0x1F0, 8;
        /// Hardware writes the entry with this bit equal to the pass it is on.
        OWNER = "owner": 0x1FF, 1;
    }
}

ifc_struct! {
    /// Completion event data.
    comp_event (0xE0) {
        CQ_NUMBER = "cq_number": 0xC8, 24;
    }
}

ifc_struct! {
    /// CQ error event data.
    cq_error (0xE0) {
        CQN = "cqn": 0x08, 24;
        SYNDROME = "syndrome": 0x58, 8;
    }
}

ifc_struct! {
    /// Port change event data; the sub-type says what changed.
    port_state_change_event (0xE0) {
        PORT_NUM = "port_num": 0x40, 4;
    }
}

ifc_struct! {
    /// Page request event data.
    pages_req_event (0xE0) {
        FUNCTION_ID = "function_id": 0x10, 16;
        /// Signed: positive, pages wanted; negative, pages to take back.
        NUM_PAGES = "num_pages": 0x20, 32;
    }
}
