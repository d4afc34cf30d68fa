//! The model's firmware: the function's life cycle (enable, ISSI, pages, capabilities,
//! init, teardown, disable) and the commands that drive it, with outputs shaped like a
//! ConnectX-4's (reference/mlx5.md §C.4–C.5).
//!
//! Page demand follows the capabilities the driver sets, roughly as real firmware's
//! does: a ConnectX-4 with `log_max_qp = 17` (other caps at their maximum) asked Linux
//! for 12,868 init pages and 6 boot pages (reference/mlx5.md §C.5). The model asks 6
//! boot pages and `32 + ⌈2^log_max_qp / 10⌉ + ⌈2^log_max_cq / 2^20⌉ +
//! ⌈2^log_max_mkey / 2^20⌉ + ⌈2^log_max_eq / 64⌉` init pages (13,176 for those caps):
//! QP contexts dominate, which is why drivers lower `log_max_qp` to shrink it.

use fabboot_hca::cmdif::opcode;
use fabboot_hca::dma::DmaRegion;
use fabboot_hca::ifc::Field;
use fabboot_hca::ifc::cmd::{
    manage_pages_in, manage_pages_out, query_hca_cap_out, query_issi_out, query_pages_out,
    set_hca_cap_in, set_issi_in, teardown_hca_in,
};
use fabboot_hca::ifc::hca_cap::cmd_hca_cap as cap;

use super::objects::Objects;
use super::port::Port;
use crate::clock::Clock;

/// Command status values (reference/mlx5.md §C.3).
pub mod status {
    #![allow(missing_docs)]
    pub const OK: u8 = 0x0;
    pub const BAD_OP: u8 = 0x2;
    pub const BAD_PARAM: u8 = 0x3;
    pub const BAD_SYS_STATE: u8 = 0x4;
    pub const BAD_INPUT_LEN: u8 = 0x50;
    pub const BAD_OUTPUT_LEN: u8 = 0x51;
}

/// Boot pages a ConnectX-4 asks for (measured: reference/mlx5.md §C.5).
pub const BOOT_PAGES: u32 = 6;

/// What a command produced.
#[derive(Debug, Default)]
pub struct Reply {
    pub status: u8,
    pub syndrome: u32,
    /// The output from its first byte (status and syndrome are filled in later).
    pub output: Vec<u8>,
    /// Set when the command was one a correct driver never sends.
    pub violation: Option<String>,
}

impl Reply {
    fn ok(output: Vec<u8>) -> Reply {
        Reply {
            output,
            ..Reply::default()
        }
    }

    fn refuse(status: u8, what: impl Into<String>) -> Reply {
        // The syndrome names the refusal so a driver's error carries it.
        Reply {
            status,
            syndrome: 0x5EED_0000 | u32::from(status),
            output: Vec::new(),
            violation: Some(what.into()),
        }
    }
}

/// The firmware's state.
#[derive(Debug, Clone)]
pub struct Firmware {
    pub enabled: bool,
    pub issi: u16,
    pub initialized: bool,
    /// Pages firmware still wants.
    pub demand: u32,
    /// Whether the init pages have been asked for (QUERY_PAGES op_mod 2).
    pub init_queried: bool,
    /// Physical addresses of the pages firmware holds.
    pub pages: Vec<u64>,
    pub max_caps: [u8; cap::SIZE],
    pub cur_caps: [u8; cap::SIZE],
    /// Init pages asked for, once queried (for reports).
    pub init_pages_asked: u32,
    /// Every command executed: (opcode, op_mod, status).
    pub history: Vec<(u16, u16, u8)>,
    /// The whole input of the last command, as the transport reassembled it.
    pub last_input: Vec<u8>,
    /// Pages firmware has offered back while running (a negative page request).
    pub returnable: u32,
    /// Objects created since INIT_HCA.
    pub objects: Objects,
    /// The physical port.
    pub port: Port,
}

/// Frequency of the internal timer the model reports in `device_frequency_khz` and
/// counts at (156.25 MHz, a ConnectX-4's).
pub const DEVICE_FREQUENCY_KHZ: u32 = 156_250;

/// Capability fields the driver may lower with SET_HCA_CAP.
const WRITABLE_CAPS: &[Field] = &[
    cap::LOG_MAX_QP,
    cap::LOG_MAX_QP_SZ,
    cap::LOG_MAX_CQ,
    cap::LOG_MAX_CQ_SZ,
    cap::LOG_MAX_EQ,
    cap::LOG_MAX_EQ_SZ,
    cap::LOG_MAX_MKEY,
    cap::LOG_MAX_PD,
    cap::PKEY_TABLE_SIZE,
    cap::CMDIF_CHECKSUM,
    cap::LOG_UAR_PAGE_SZ,
];

impl Firmware {
    /// A ConnectX-4's firmware after power-on: function disabled, ISSI 0.
    pub fn connectx4() -> Firmware {
        let mut max = [0u8; cap::SIZE];
        for (field, value) in [
            (cap::LOG_MAX_QP_SZ, 15),
            (cap::LOG_MAX_QP, 18),
            (cap::LOG_MAX_CQ_SZ, 22),
            (cap::LOG_MAX_CQ, 24),
            (cap::LOG_MAX_EQ_SZ, 22),
            (cap::LOG_MAX_MKEY, 24),
            (cap::LOG_MAX_EQ, 8),
            (cap::MAX_INDIRECTION, 4),
            (cap::LOG_MAX_MRW_SZ, 64),
            (cap::LOG_MAX_KLM_LIST_SIZE, 16),
            (cap::GID_TABLE_SIZE, 1),
            (cap::PKEY_TABLE_SIZE, 0),
            (cap::PORT_TYPE, 0),
            (cap::NUM_PORTS, 1),
            (cap::LOG_MAX_MSG, 30),
            (cap::CQE_VERSION, 1),
            (cap::CMDIF_CHECKSUM, 0),
            (cap::LOG_PG_SZ, 12),
            (cap::BF, 1),
            (cap::LOG_BF_REG_SIZE, 9),
            (cap::MAX_WQE_SZ_SQ, 1024),
            (cap::MAX_WQE_SZ_RQ, 512),
            (cap::LOG_MAX_PD, 24),
            (cap::LOG_UAR_PAGE_SZ, 0),
            (cap::NUM_OF_UARS_PER_PAGE, 1),
            (cap::DEVICE_FREQUENCY_KHZ, DEVICE_FREQUENCY_KHZ.into()),
        ] {
            field.set(&mut max, value);
        }
        Firmware {
            enabled: false,
            issi: 0,
            initialized: false,
            demand: 0,
            init_queried: false,
            pages: Vec::new(),
            max_caps: max,
            cur_caps: max,
            init_pages_asked: 0,
            history: Vec::new(),
            last_input: Vec::new(),
            returnable: 0,
            objects: Objects::default(),
            port: Port::unconfigured(0x0002_C903_0010_1013),
        }
    }

    /// Init pages the current capabilities need.
    pub fn init_pages_needed(&self) -> u32 {
        let pow = |f: Field| 1u64 << cap_value(&self.cur_caps, f).min(40);
        let pages = 32
            + pow(cap::LOG_MAX_QP).div_ceil(10)
            + pow(cap::LOG_MAX_CQ).div_ceil(1 << 20)
            + pow(cap::LOG_MAX_MKEY).div_ceil(1 << 20)
            + pow(cap::LOG_MAX_EQ).div_ceil(64);
        u32::try_from(pages).unwrap_or(u32::MAX)
    }

    /// A function an earlier driver left running: enabled at ISSI 1, initialised, its
    /// pages (at addresses outside anything the new driver owns) still held.
    pub fn leave_running(&mut self, foreign_pages_at: u64) {
        self.enabled = true;
        self.issi = 1;
        cap::LOG_MAX_QP.set(&mut self.cur_caps, 4);
        self.init_queried = true;
        let n = BOOT_PAGES + self.init_pages_needed();
        self.init_pages_asked = n - BOOT_PAGES;
        self.pages = (0..u64::from(n))
            .map(|i| foreign_pages_at + i * 4096)
            .collect();
        self.demand = 0;
        self.initialized = true;
    }

    /// Executes one command.
    pub fn execute(
        &mut self,
        op: u16,
        op_mod: u16,
        input: &[u8],
        out_len: usize,
        mem: &DmaRegion,
        _clock: &Clock,
    ) -> Reply {
        self.last_input = input.to_vec();
        let reply = self.dispatch(op, op_mod, input, out_len, mem);
        let reply = match reply {
            Reply {
                status: 0,
                ref output,
                ..
            } if output.len() > out_len => Reply::refuse(
                status::BAD_OUTPUT_LEN,
                format!("output needs {} bytes, {out_len} given", output.len()),
            ),
            r => r,
        };
        self.history.push((op, op_mod, reply.status));
        reply
    }

    fn dispatch(
        &mut self,
        op: u16,
        op_mod: u16,
        input: &[u8],
        out_len: usize,
        mem: &DmaRegion,
    ) -> Reply {
        let header_only = || Reply::ok(vec![0; 16]);
        if !self.enabled && op != opcode::ENABLE_HCA && op != opcode::QUERY_ISSI {
            return Reply::refuse(status::BAD_SYS_STATE, "command before ENABLE_HCA");
        }
        match op {
            opcode::ENABLE_HCA => {
                if self.enabled {
                    return Reply::refuse(
                        status::BAD_SYS_STATE,
                        "ENABLE_HCA on an enabled function",
                    );
                }
                self.enabled = true;
                self.demand = BOOT_PAGES;
                header_only()
            }
            opcode::DISABLE_HCA => {
                if self.initialized {
                    return Reply::refuse(status::BAD_SYS_STATE, "DISABLE_HCA before TEARDOWN_HCA");
                }
                if !self.pages.is_empty() {
                    return Reply::refuse(
                        status::BAD_SYS_STATE,
                        format!("DISABLE_HCA with {} pages not taken back", self.pages.len()),
                    );
                }
                // As across a function-level reset, the port's subnet configuration
                // is the subnet manager's, not the function's: it is kept (a real link
                // retrains and the SM gives the same LID back).
                *self = Firmware {
                    history: std::mem::take(&mut self.history),
                    port: self.port.clone(),
                    ..Firmware::connectx4()
                };
                header_only()
            }
            opcode::QUERY_ISSI => {
                let mut out = vec![0u8; query_issi_out::SIZE];
                query_issi_out::CURRENT_ISSI.set(&mut out, self.issi.into());
                query_issi_out::SUPPORTED_ISSI_DW0.set(&mut out, 0b11);
                Reply::ok(out)
            }
            opcode::SET_ISSI => {
                let issi = set_issi_in::CURRENT_ISSI.get(input);
                if issi > 1 {
                    return Reply::refuse(status::BAD_PARAM, format!("ISSI {issi} not supported"));
                }
                if self.initialized {
                    return Reply::refuse(status::BAD_SYS_STATE, "SET_ISSI after INIT_HCA");
                }
                self.issi = issi as u16;
                header_only()
            }
            opcode::QUERY_PAGES => {
                let count: u32 = match op_mod {
                    1 => self.demand,
                    2 => {
                        if !self.init_queried {
                            self.init_queried = true;
                            self.init_pages_asked = self.init_pages_needed();
                            self.demand += self.init_pages_asked;
                        }
                        self.demand
                    }
                    3 => 0,
                    _ => {
                        return Reply::refuse(
                            status::BAD_OP,
                            format!("QUERY_PAGES op_mod {op_mod}"),
                        );
                    }
                };
                let mut out = vec![0u8; query_pages_out::SIZE];
                query_pages_out::NUM_PAGES.set(&mut out, count.into());
                Reply::ok(out)
            }
            opcode::MANAGE_PAGES => self.manage_pages(op_mod, input, out_len, mem),
            opcode::QUERY_HCA_CAP => {
                let (cap_type, current) = (op_mod >> 1, op_mod & 1 == 1);
                if cap_type != 0 {
                    return Reply::refuse(
                        status::BAD_OP,
                        format!("capability type {cap_type} not modelled"),
                    );
                }
                let mut out = vec![0u8; query_hca_cap_out::SIZE];
                let caps = if current {
                    &self.cur_caps
                } else {
                    &self.max_caps
                };
                let at = query_hca_cap_out::CAPABILITY.byte();
                out[at..at + cap::SIZE].copy_from_slice(caps);
                Reply::ok(out)
            }
            opcode::SET_HCA_CAP => self.set_hca_cap(op_mod, input),
            // NOP: any input, a bare header out (a liveness probe).
            opcode::NOP => header_only(),
            opcode::INIT_HCA => {
                if self.initialized {
                    return Reply::refuse(status::BAD_SYS_STATE, "INIT_HCA twice");
                }
                if !self.init_queried || self.demand != 0 {
                    return Reply::refuse(
                        status::BAD_SYS_STATE,
                        format!(
                            "INIT_HCA with {} pages still owed (init pages queried: {})",
                            self.demand, self.init_queried
                        ),
                    );
                }
                self.initialized = true;
                header_only()
            }
            opcode::TEARDOWN_HCA => {
                let profile = teardown_hca_in::PROFILE.get(input);
                match profile {
                    0 if !self.initialized => Reply::refuse(
                        status::BAD_SYS_STATE,
                        "graceful TEARDOWN_HCA of an uninitialised HCA",
                    ),
                    0 if self.objects.live() > 0 => Reply::refuse(
                        status::BAD_SYS_STATE,
                        format!(
                            "graceful TEARDOWN_HCA with {} objects alive",
                            self.objects.live()
                        ),
                    ),
                    0 | 1 => {
                        self.objects = Objects::default();
                        self.initialized = false;
                        self.init_queried = false;
                        self.demand = 0;
                        Reply::ok(vec![0u8; 16])
                    }
                    _ => Reply::refuse(
                        status::BAD_PARAM,
                        format!("teardown profile {profile} not modelled"),
                    ),
                }
            }
            _ if Objects::handles(op) => {
                if !self.initialized {
                    return Reply::refuse(
                        status::BAD_SYS_STATE,
                        format!("object command {op:#x} before INIT_HCA"),
                    );
                }
                self.objects
                    .dispatch(op, input, &self.cur_caps, mem, &mut self.port)
            }
            _ => Reply::refuse(status::BAD_OP, format!("opcode {op:#x} not modelled")),
        }
    }

    fn manage_pages(
        &mut self,
        op_mod: u16,
        input: &[u8],
        out_len: usize,
        mem: &DmaRegion,
    ) -> Reply {
        let n = manage_pages_in::INPUT_NUM_ENTRIES.get(input) as usize;
        match op_mod {
            0 => Reply::ok(vec![0u8; 16]),
            1 => {
                let list = manage_pages_in::PAS.byte();
                if input.len() < list + 8 * n {
                    return Reply::refuse(
                        status::BAD_INPUT_LEN,
                        format!(
                            "{n} pages but input holds {}",
                            (input.len().saturating_sub(list)) / 8
                        ),
                    );
                }
                if n as u64 > u64::from(self.demand) {
                    return Reply::refuse(
                        status::BAD_PARAM,
                        format!("{n} pages given, {} asked for", self.demand),
                    );
                }
                for i in 0..n {
                    let at = list + 8 * i;
                    let addr =
                        u64::from_be_bytes(input[at..at + 8].try_into().unwrap_or([0xFF; 8]));
                    if !addr.is_multiple_of(4096) {
                        return Reply::refuse(
                            status::BAD_PARAM,
                            format!("page {addr:#x} not 4 KiB aligned"),
                        );
                    }
                    if mem.offset_of(addr, 4096).is_none() {
                        return Reply::refuse(
                            status::BAD_PARAM,
                            format!("page {addr:#x} outside the DMA region"),
                        );
                    }
                    if self.pages.contains(&addr) {
                        return Reply::refuse(
                            status::BAD_PARAM,
                            format!("page {addr:#x} given twice"),
                        );
                    }
                    self.pages.push(addr);
                }
                self.demand -= n as u32;
                Reply::ok(vec![0u8; 16])
            }
            2 => {
                let available = if self.initialized {
                    self.returnable as usize
                } else {
                    self.pages.len()
                };
                if available == 0 {
                    return Reply::refuse(
                        status::BAD_SYS_STATE,
                        "MANAGE_PAGES take while firmware offers no pages back",
                    );
                }
                let count = n.min(self.pages.len()).min(available);
                if self.initialized {
                    self.returnable -= count as u32;
                }
                let needed = manage_pages_out::PAS.byte() + 8 * count;
                if out_len < needed {
                    return Reply::refuse(
                        status::BAD_OUTPUT_LEN,
                        format!(
                            "{count} pages returned need {needed} output bytes, {out_len} given"
                        ),
                    );
                }
                let mut out = vec![0u8; needed];
                manage_pages_out::OUTPUT_NUM_ENTRIES.set(&mut out, count as u64);
                for i in 0..count {
                    let addr = self.pages.pop().unwrap_or(0);
                    let at = manage_pages_out::PAS.byte() + 8 * i;
                    out[at..at + 8].copy_from_slice(&addr.to_be_bytes());
                }
                Reply::ok(out)
            }
            _ => Reply::refuse(status::BAD_OP, format!("MANAGE_PAGES op_mod {op_mod}")),
        }
    }

    fn set_hca_cap(&mut self, op_mod: u16, input: &[u8]) -> Reply {
        if op_mod >> 1 != 0 {
            return Reply::refuse(
                status::BAD_OP,
                format!("capability type {} not modelled", op_mod >> 1),
            );
        }
        if self.initialized || self.init_queried {
            return Reply::refuse(
                status::BAD_SYS_STATE,
                "SET_HCA_CAP after init pages were counted",
            );
        }
        let at = set_hca_cap_in::CAPABILITY.byte();
        let Some(new) = input.get(at..at + cap::SIZE) else {
            return Reply::refuse(
                status::BAD_INPUT_LEN,
                format!("SET_HCA_CAP input of {} bytes", input.len()),
            );
        };
        let mut checked = self.cur_caps;
        for f in WRITABLE_CAPS {
            let v = f.get(new);
            if v > f.get(&self.max_caps) && *f != cap::CMDIF_CHECKSUM {
                return Reply::refuse(
                    status::BAD_PARAM,
                    format!(
                        "capability at bit {:#x} set to {v}, above the maximum",
                        f.bit
                    ),
                );
            }
            f.set(&mut checked, v);
        }
        if checked.as_slice() != new {
            return Reply::refuse(
                status::BAD_PARAM,
                "SET_HCA_CAP changes a read-only capability",
            );
        }
        self.cur_caps = checked;
        Reply::ok(vec![0u8; 16])
    }
}

/// Reads a capability field.
pub fn cap_value(caps: &[u8], f: Field) -> u64 {
    f.get(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_demand_is_shaped_like_a_connectx4s() {
        let mut fw = Firmware::connectx4();
        cap::LOG_MAX_QP.set(&mut fw.cur_caps, 17);
        let linux = fw.init_pages_needed();
        // Measured on a ConnectX-4 with these caps: 12,868; the model is within 3%.
        assert!((12_500..13_300).contains(&linux), "{linux}");
        cap::LOG_MAX_QP.set(&mut fw.cur_caps, 4);
        assert!(
            fw.init_pages_needed() < 100,
            "a small QP limit keeps the demand small"
        );
    }
}
