//! General device capabilities (`cmd_hca_cap`, capability type 0; PRM "HCA
//! Capabilities"; reference/mlx5.md §C.4). QUERY_HCA_CAP returns them at offset 0x10
//! of its output; SET_HCA_CAP takes them at offset 0x10 of its input.

use super::ifc_struct;

ifc_struct! {
    /// The general capability structure (256 bytes at the start of the 4 KiB
    /// capability area).
    cmd_hca_cap (0x800) {
        LOG_MAX_QP_SZ = "log_max_qp_sz": 0x088, 8;
        LOG_MAX_QP = "log_max_qp": 0x09B, 5;
        LOG_MAX_CQ_SZ = "log_max_cq_sz": 0x0C8, 8;
        LOG_MAX_CQ = "log_max_cq": 0x0DB, 5;
        LOG_MAX_EQ_SZ = "log_max_eq_sz": 0x0E0, 8;
        LOG_MAX_MKEY = "log_max_mkey": 0x0EA, 6;
        LOG_MAX_EQ = "log_max_eq": 0x0FC, 4;
        MAX_INDIRECTION = "max_indirection": 0x100, 8;
        LOG_MAX_MRW_SZ = "log_max_mrw_sz": 0x109, 7;
        LOG_MAX_KLM_LIST_SIZE = "log_max_klm_list_size": 0x11A, 6;
        GID_TABLE_SIZE = "gid_table_size": 0x170, 16;
        /// 0 means 128 entries.
        PKEY_TABLE_SIZE = "pkey_table_size": 0x190, 16;
        /// 0 InfiniBand, 1 Ethernet.
        PORT_TYPE = "port_type": 0x1B6, 2;
        NUM_PORTS = "num_ports": 0x1B8, 8;
        LOG_MAX_MSG = "log_max_msg": 0x1C3, 5;
        CQE_VERSION = "cqe_version": 0x1FC, 4;
        /// Mailbox signatures checked when non-zero; drivers turn it off.
        CMDIF_CHECKSUM = "cmdif_checksum": 0x210, 2;
        UAR_4K = "uar_4k": 0x240, 1;
        UAR_SZ = "uar_sz": 0x24A, 6;
        LOG_PG_SZ = "log_pg_sz": 0x258, 8;
        BF = "bf": 0x260, 1;
        LOG_BF_REG_SIZE = "log_bf_reg_size": 0x26B, 5;
        MAX_WQE_SZ_SQ = "max_wqe_sz_sq": 0x290, 16;
        MAX_WQE_SZ_RQ = "max_wqe_sz_rq": 0x2B0, 16;
        LOG_MAX_PD = "log_max_pd": 0x32B, 5;
        LOG_UAR_PAGE_SZ = "log_uar_page_sz": 0x490, 16;
        /// Frequency of the internal timer (init segment 0x1000) in kHz; 0 when the
        /// device does not report one.
        DEVICE_FREQUENCY_KHZ = "device_frequency_khz": 0x4E0, 32;
        NUM_OF_UARS_PER_PAGE = "num_of_uars_per_page": 0x520, 32;
    }
}
