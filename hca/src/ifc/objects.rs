//! Commands that create, change and destroy device objects (UAR, PD, memory key, EQ,
//! CQ, QP), their contexts, and MAD_IFC (PRM "Resource Commands" and "QP State
//! Transitions"; reference/mlx5.md §C.9–C.14). Only the fields the driver uses are
//! declared; each is checked against `mlx5_ifc.h`.

use super::ifc_struct;

ifc_struct! {
    /// ALLOC_UAR (0x802) output.
    alloc_uar_out (0x80) {
        STATUS = "status": 0x00, 8;
        SYNDROME = "syndrome": 0x20, 32;
        UAR = "uar": 0x48, 24;
    }
}

ifc_struct! {
    /// DEALLOC_UAR (0x803) input.
    dealloc_uar_in (0x80) {
        OPCODE = "opcode": 0x00, 16;
        OP_MOD = "op_mod": 0x30, 16;
        UAR = "uar": 0x48, 24;
    }
}

ifc_struct! {
    /// ALLOC_PD (0x800) output.
    alloc_pd_out (0x80) {
        STATUS = "status": 0x00, 8;
        SYNDROME = "syndrome": 0x20, 32;
        PD = "pd": 0x48, 24;
    }
}

ifc_struct! {
    /// DEALLOC_PD (0x801) input.
    dealloc_pd_in (0x80) {
        OPCODE = "opcode": 0x00, 16;
        OP_MOD = "op_mod": 0x30, 16;
        PD = "pd": 0x48, 24;
    }
}

ifc_struct! {
    /// Memory key context.
    mkc (0x200) {
        FREE = "free": 0x01, 1;
        ACCESS_MODE_4_2 = "access_mode_4_2": 0x03, 3;
        UMR_EN = "umr_en": 0x10, 1;
        A = "a": 0x11, 1;
        RW = "rw": 0x12, 1;
        RR = "rr": 0x13, 1;
        LW = "lw": 0x14, 1;
        LR = "lr": 0x15, 1;
        /// 0 physical addresses, 1 MTT, 2 KLM.
        ACCESS_MODE_1_0 = "access_mode_1_0": 0x16, 2;
        /// 0xFFFFFF: any QP.
        QPN = "qpn": 0x20, 24;
        MKEY_7_0 = "mkey_7_0": 0x38, 8;
        LENGTH64 = "length64": 0x60, 1;
        PD = "pd": 0x68, 24;
        START_ADDR = "start_addr": 0x80, 64;
        LEN = "len": 0xC0, 64;
        TRANSLATIONS_OCTWORD_SIZE = "translations_octword_size": 0x1A0, 32;
        LOG_PAGE_SIZE = "log_page_size": 0x1DB, 5;
    }
}

ifc_struct! {
    /// CREATE_MKEY (0x200) input; translation entries follow at 0x110.
    create_mkey_in (0x880) {
        OPCODE = "opcode": 0x00, 16;
        OP_MOD = "op_mod": 0x30, 16;
        PG_ACCESS = "pg_access": 0x60, 1;
        MKC = "memory_key_mkey_entry": 0x80, 0x200;
        TRANSLATIONS_OCTWORD_ACTUAL_SIZE = "translations_octword_actual_size": 0x300, 32;
        KLM_PAS_MTT = "klm_pas_mtt[0]": 0x880, 32;
    }
}

ifc_struct! {
    /// CREATE_MKEY output: the key is `mkey_index << 8 | mkey_7_0`.
    create_mkey_out (0x80) {
        STATUS = "status": 0x00, 8;
        SYNDROME = "syndrome": 0x20, 32;
        MKEY_INDEX = "mkey_index": 0x48, 24;
    }
}

ifc_struct! {
    /// DESTROY_MKEY (0x202) input.
    destroy_mkey_in (0x80) {
        OPCODE = "opcode": 0x00, 16;
        OP_MOD = "op_mod": 0x30, 16;
        MKEY_INDEX = "mkey_index": 0x48, 24;
    }
}

ifc_struct! {
    /// QUERY_SPECIAL_CONTEXTS (0x203) output.
    query_special_contexts_out (0x100) {
        STATUS = "status": 0x00, 8;
        SYNDROME = "syndrome": 0x20, 32;
        DUMP_FILL_MKEY = "dump_fill_mkey": 0x40, 32;
        RESD_LKEY = "resd_lkey": 0x60, 32;
        NULL_MKEY = "null_mkey": 0x80, 32;
    }
}

ifc_struct! {
    /// Event queue context.
    eqc (0x200) {
        STATUS = "status": 0x000, 4;
        EC = "ec": 0x00D, 1;
        OI = "oi": 0x00E, 1;
        /// 0x9 armed, 0xA fired.
        ST = "st": 0x014, 4;
        PAGE_OFFSET = "page_offset": 0x054, 6;
        LOG_EQ_SIZE = "log_eq_size": 0x063, 5;
        UAR_PAGE = "uar_page": 0x068, 24;
        /// MSI-X vector index.
        INTR = "intr": 0x0B4, 12;
        /// Page size is 4 KiB << log_page_size.
        LOG_PAGE_SIZE = "log_page_size": 0x0C3, 5;
        CONSUMER_COUNTER = "consumer_counter": 0x148, 24;
        PRODUCER_COUNTER = "producer_counter": 0x168, 24;
    }
}

ifc_struct! {
    /// CREATE_EQ (0x301) input; the page list follows at 0x110.
    create_eq_in (0x880) {
        OPCODE = "opcode": 0x000, 16;
        OP_MOD = "op_mod": 0x030, 16;
        EQC = "eq_context_entry": 0x080, 0x200;
        /// Four 64-bit words; bit n of the first is event type n.
        EVENT_BITMASK = "event_bitmask": 0x2C0, 0x100;
        PAS = "pas[0]": 0x880, 64;
    }
}

ifc_struct! {
    /// CREATE_EQ output.
    create_eq_out (0x80) {
        STATUS = "status": 0x00, 8;
        SYNDROME = "syndrome": 0x20, 32;
        EQ_NUMBER = "eq_number": 0x58, 8;
    }
}

ifc_struct! {
    /// DESTROY_EQ (0x302) input.
    destroy_eq_in (0x80) {
        OPCODE = "opcode": 0x00, 16;
        OP_MOD = "op_mod": 0x30, 16;
        EQ_NUMBER = "eq_number": 0x58, 8;
    }
}

ifc_struct! {
    /// Completion queue context.
    cqc (0x200) {
        STATUS = "status": 0x000, 4;
        /// 0 = 64-byte CQEs.
        CQE_SZ = "cqe_sz": 0x008, 3;
        CC = "cc": 0x00B, 1;
        OI = "oi": 0x00E, 1;
        ST = "st": 0x014, 4;
        PAGE_OFFSET = "page_offset": 0x054, 6;
        LOG_CQ_SIZE = "log_cq_size": 0x063, 5;
        UAR_PAGE = "uar_page": 0x068, 24;
        CQ_PERIOD = "cq_period": 0x084, 12;
        CQ_MAX_COUNT = "cq_max_count": 0x090, 16;
        /// The EQ completion events go to (mandatory even when polling).
        C_EQN = "c_eqn_or_apu_element": 0x0A0, 32;
        LOG_PAGE_SIZE = "log_page_size": 0x0C3, 5;
        CONSUMER_COUNTER = "consumer_counter": 0x148, 24;
        PRODUCER_COUNTER = "producer_counter": 0x168, 24;
        DBR_ADDR = "dbr_addr": 0x1C0, 64;
    }
}

ifc_struct! {
    /// CREATE_CQ (0x400) input; the page list follows at 0x110.
    create_cq_in (0x880) {
        OPCODE = "opcode": 0x000, 16;
        OP_MOD = "op_mod": 0x030, 16;
        CQC = "cq_context": 0x080, 0x200;
        PAS = "pas[0]": 0x880, 64;
    }
}

ifc_struct! {
    /// CREATE_CQ output.
    create_cq_out (0x80) {
        STATUS = "status": 0x00, 8;
        SYNDROME = "syndrome": 0x20, 32;
        CQN = "cqn": 0x48, 24;
    }
}

ifc_struct! {
    /// DESTROY_CQ (0x401) input.
    destroy_cq_in (0x80) {
        OPCODE = "opcode": 0x00, 16;
        OP_MOD = "op_mod": 0x30, 16;
        CQN = "cqn": 0x48, 24;
    }
}

ifc_struct! {
    /// Address path (inside the QP context).
    ads (0x160) {
        FL = "fl": 0x000, 1;
        FREE_AR = "free_ar": 0x001, 1;
        PKEY_INDEX = "pkey_index": 0x010, 16;
        GRH = "grh": 0x028, 1;
        /// Source path bits.
        MLID = "mlid": 0x029, 7;
        RLID = "rlid": 0x030, 16;
        /// Local ACK timeout: 4.096 µs × 2^ack_timeout.
        ACK_TIMEOUT = "ack_timeout": 0x040, 5;
        SRC_ADDR_INDEX = "src_addr_index": 0x048, 8;
        STAT_RATE = "stat_rate": 0x054, 4;
        HOP_LIMIT = "hop_limit": 0x058, 8;
        TCLASS = "tclass": 0x064, 8;
        FLOW_LABEL = "flow_label": 0x06C, 20;
        RGID = "rgid_rip": 0x080, 128;
        SL = "sl": 0x124, 4;
        VHCA_PORT_NUM = "vhca_port_num": 0x128, 8;
    }
}

ifc_struct! {
    /// Queue pair context.
    qpc (0x740) {
        /// 0 RST, 1 INIT, 2 RTR, 3 RTS, 4 SQER, 6 ERR, 7 SQD.
        STATE = "state": 0x000, 4;
        /// Service type: 0x0 RC, 0x2 UD, 0x7 QP0, 0x8 QP1.
        ST = "st": 0x008, 8;
        /// 3: migrated (no automatic path migration).
        PM_STATE = "pm_state": 0x013, 2;
        PD = "pd": 0x028, 24;
        /// 1 256, 2 512, 3 1K, 4 2K, 5 4K.
        MTU = "mtu": 0x040, 3;
        LOG_MSG_MAX = "log_msg_max": 0x043, 5;
        LOG_RQ_SIZE = "log_rq_size": 0x049, 4;
        /// Receive WQE stride is 16 << log_rq_stride.
        LOG_RQ_STRIDE = "log_rq_stride": 0x04D, 3;
        NO_SQ = "no_sq": 0x050, 1;
        /// In 64-byte WQEBBs.
        LOG_SQ_SIZE = "log_sq_size": 0x051, 4;
        RLKY = "rlky": 0x05B, 1;
        UAR_PAGE = "uar_page": 0x068, 24;
        USER_INDEX = "user_index": 0x088, 24;
        LOG_PAGE_SIZE = "log_page_size": 0x0A3, 5;
        REMOTE_QPN = "remote_qpn": 0x0A8, 24;
        PRIMARY_ADDRESS_PATH = "primary_address_path": 0x0C0, 0x160;
        LOG_ACK_REQ_FREQ = "log_ack_req_freq": 0x380, 4;
        LOG_SRA_MAX = "log_sra_max": 0x388, 3;
        RETRY_COUNT = "retry_count": 0x38D, 3;
        RNR_RETRY = "rnr_retry": 0x390, 3;
        FRE = "fre": 0x394, 1;
        NEXT_SEND_PSN = "next_send_psn": 0x3C8, 24;
        CQN_SND = "cqn_snd": 0x3E8, 24;
        DETH_SQPN = "deth_sqpn": 0x408, 24;
        LOG_RRA_MAX = "log_rra_max": 0x488, 3;
        RRE = "rre": 0x490, 1;
        RWE = "rwe": 0x491, 1;
        RAE = "rae": 0x492, 1;
        PAGE_OFFSET = "page_offset": 0x494, 6;
        MIN_RNR_NAK = "min_rnr_nak": 0x4A3, 5;
        NEXT_RCV_PSN = "next_rcv_psn": 0x4A8, 24;
        CQN_RCV = "cqn_rcv": 0x4E8, 24;
        DBR_ADDR = "dbr_addr": 0x500, 64;
        Q_KEY = "q_key": 0x540, 32;
        /// 0 regular RQ.
        RQ_TYPE = "rq_type": 0x565, 3;
    }
}

ifc_struct! {
    /// CREATE_QP (0x500) input; the page list follows at 0x110.
    create_qp_in (0x880) {
        OPCODE = "opcode": 0x000, 16;
        OP_MOD = "op_mod": 0x030, 16;
        OPT_PARAM_MASK = "opt_param_mask": 0x080, 32;
        QPC = "qpc": 0x0C0, 0x740;
        PAS = "pas[0]": 0x880, 64;
    }
}

ifc_struct! {
    /// CREATE_QP output.
    create_qp_out (0x80) {
        STATUS = "status": 0x00, 8;
        SYNDROME = "syndrome": 0x20, 32;
        QPN = "qpn": 0x48, 24;
    }
}

ifc_struct! {
    /// RST2INIT_QP (0x502) input (INIT2RTR 0x503 and RTR2RTS 0x504 share the layout).
    rst2init_qp_in (0x880) {
        OPCODE = "opcode": 0x000, 16;
        OP_MOD = "op_mod": 0x030, 16;
        QPN = "qpn": 0x048, 24;
        OPT_PARAM_MASK = "opt_param_mask": 0x080, 32;
        QPC = "qpc": 0x0C0, 0x740;
    }
}

ifc_struct! {
    /// INIT2RTR_QP (0x503) input.
    init2rtr_qp_in (0x880) {
        OPCODE = "opcode": 0x000, 16;
        OP_MOD = "op_mod": 0x030, 16;
        QPN = "qpn": 0x048, 24;
        OPT_PARAM_MASK = "opt_param_mask": 0x080, 32;
        QPC = "qpc": 0x0C0, 0x740;
    }
}

ifc_struct! {
    /// RTR2RTS_QP (0x504) input.
    rtr2rts_qp_in (0x880) {
        OPCODE = "opcode": 0x000, 16;
        OP_MOD = "op_mod": 0x030, 16;
        QPN = "qpn": 0x048, 24;
        OPT_PARAM_MASK = "opt_param_mask": 0x080, 32;
        QPC = "qpc": 0x0C0, 0x740;
    }
}

ifc_struct! {
    /// 2ERR_QP (0x507) input (2RST_QP 0x50a and DESTROY_QP 0x501 share it).
    qp_2err_in (0x80) {
        OPCODE = "opcode": 0x00, 16;
        OP_MOD = "op_mod": 0x30, 16;
        QPN = "qpn": 0x48, 24;
    }
}

ifc_struct! {
    /// 2RST_QP (0x50a) input.
    qp_2rst_in (0x80) {
        OPCODE = "opcode": 0x00, 16;
        OP_MOD = "op_mod": 0x30, 16;
        QPN = "qpn": 0x48, 24;
    }
}

ifc_struct! {
    /// DESTROY_QP (0x501) input.
    destroy_qp_in (0x80) {
        OPCODE = "opcode": 0x00, 16;
        OP_MOD = "op_mod": 0x30, 16;
        QPN = "qpn": 0x48, 24;
    }
}

ifc_struct! {
    /// MAD_IFC (0x50d) input: a 256-byte MAD for the port's management agents.
    mad_ifc_in (0x880) {
        OPCODE = "opcode": 0x000, 16;
        /// Bit 0: ignore M_Key; bit 1: ignore B_Key.
        OP_MOD = "op_mod": 0x030, 16;
        REMOTE_LID = "remote_lid": 0x040, 16;
        PORT = "port": 0x058, 8;
        MAD = "mad": 0x080, 0x800;
    }
}

ifc_struct! {
    /// MAD_IFC output: the response MAD.
    mad_ifc_out (0x880) {
        STATUS = "status": 0x000, 8;
        SYNDROME = "syndrome": 0x020, 32;
        RESPONSE_MAD_PACKET = "response_mad_packet": 0x080, 0x800;
    }
}
