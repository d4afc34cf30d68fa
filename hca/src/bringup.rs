//! Bring-up and teardown of the HCA function (reference/mlx5.md §C.4, §C.5).
//!
//! Every instance starts by resetting the function ([`Hal::reset_function`]): firmware,
//! a loader instance or a crashed kernel may have left it running, with queues, pages
//! and even a command of theirs still owned by the device. Then: point firmware at our
//! command queue, ENABLE_HCA, ISSI 1 when offered, boot pages, capabilities lowered so
//! firmware asks for few init pages (the internal timer's frequency, read from them on
//! the way, goes to the platform: [`Hal::set_device_clock_khz`]), init pages, INIT_HCA.

use crate::bytes;
use crate::cmdif::{CmdError, CmdIf, header, opcode};
use crate::dma::DmaRegion;
use crate::hal::Hal;
use crate::ifc::cmd::{
    query_hca_cap_out, query_issi_out, query_pages_out, set_hca_cap_in, set_issi_in,
    teardown_hca_in, teardown_hca_out,
};
use crate::ifc::hca_cap::cmd_hca_cap as cap;
use crate::pages::{PageError, PagePool};
use crate::plan::MemoryPlan;

/// Bytes of the capability area the driver reads and writes: the general caps.
const CAPS_PREFIX: usize = 16 + cap::SIZE;
// The general caps lie inside that prefix in both QUERY_HCA_CAP's output and
// SET_HCA_CAP's input, so copying them in and out cannot miss.
const _: () = assert!(query_hca_cap_out::CAPABILITY.byte() + cap::SIZE <= CAPS_PREFIX);
const _: () = assert!(query_hca_cap_out::CAPABILITY.byte() == set_hca_cap_in::CAPABILITY.byte());

/// Limits and timeouts of bring-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BringupConfig {
    /// How long firmware may stay `initializing` (Linux allows 120 s before the first
    /// command).
    pub ready_timeout_us: u64,
    /// How long one command may take.
    pub cmd_timeout_us: u64,
    /// log2 of the QPs asked for: QP1, the RC QP to the target and room for a
    /// reconnect. The largest driver of the init page count.
    pub log_max_qp: u8,
    /// log2 of the CQs asked for.
    pub log_max_cq: u8,
    /// log2 of the EQs asked for.
    pub log_max_eq: u8,
    /// log2 of the memory keys asked for.
    pub log_max_mkey: u8,
}

impl BringupConfig {
    /// What a boot driver needs: 16 QPs, 16 CQs, 4 EQs, 64 memory keys.
    pub const BOOT: BringupConfig = BringupConfig {
        ready_timeout_us: 120_000_000,
        cmd_timeout_us: 10_000_000,
        log_max_qp: 4,
        log_max_cq: 4,
        log_max_eq: 2,
        log_max_mkey: 6,
    };
}

/// Why bring-up or teardown stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BringupError {
    /// The platform cannot reset the function, so a device left running cannot be
    /// trusted.
    ResetUnavailable,
    /// A command failed.
    Cmd(CmdError),
    /// Firmware asked for more pages than the memory plan holds.
    NotEnoughPages {
        /// Pages firmware asked for, in total so far.
        asked: usize,
        /// Pages the plan holds.
        reserved: usize,
    },
    /// The port runs Ethernet, not InfiniBand.
    NotInfiniBand {
        /// `port_type` capability.
        port_type: u8,
    },
    /// Firmware returned, on teardown, a page this driver never gave it.
    ForeignPage {
        /// Its physical address.
        addr: u64,
    },
    /// A force-close TEARDOWN_HCA reported failure (`teardown_hca_out.state` 1).
    ForceCloseFailed,
}

impl From<PageError> for BringupError {
    fn from(e: PageError) -> Self {
        match e {
            PageError::NotEnough { asked, reserved } => {
                BringupError::NotEnoughPages { asked, reserved }
            }
            PageError::Foreign { addr } => BringupError::ForeignPage { addr },
            PageError::Cmd(c) => BringupError::Cmd(c),
        }
    }
}

impl From<CmdError> for BringupError {
    fn from(e: CmdError) -> Self {
        BringupError::Cmd(e)
    }
}

/// A brought-up HCA function.
#[derive(Debug)]
pub struct Hca {
    /// The command interface.
    pub cmd: CmdIf,
    /// Interface step sequence ID in use.
    pub issi: u16,
    /// Current general capabilities, after SET_HCA_CAP.
    pub caps: [u8; cap::SIZE],
    /// Boot pages firmware asked for.
    pub boot_pages: usize,
    /// Init pages firmware asked for.
    pub init_pages: usize,
    plan: MemoryPlan,
    /// The firmware page pool.
    pub pages: PagePool,
}

impl Hca {
    /// Pages of the plan's pool firmware holds.
    pub fn pages_given(&self) -> usize {
        self.pages.held()
    }

    /// The plan this function was brought up with.
    pub fn plan(&self) -> MemoryPlan {
        self.plan
    }

    /// Frequency of the device's internal timer in kHz (`device_frequency_khz`);
    /// 0 when the device reports none (see [`crate::timer`]).
    pub fn device_frequency_khz(&self) -> u32 {
        cap::DEVICE_FREQUENCY_KHZ.get(&self.caps) as u32
    }
}

/// Resets the function and brings it up to INIT_HCA.
pub fn bring_up<H: Hal>(
    hal: &H,
    dma: &DmaRegion,
    plan: MemoryPlan,
    cfg: BringupConfig,
) -> Result<Hca, BringupError> {
    if !hal.reset_function() {
        return Err(BringupError::ResetUnavailable);
    }
    let mut cmd = CmdIf::start(hal, dma, plan.cmd, cfg.ready_timeout_us, cfg.cmd_timeout_us)?;
    cmd.exec_short(hal, dma, opcode::ENABLE_HCA, 0, None)?;

    let mut input = [0u8; 16];
    header(&mut input, opcode::QUERY_ISSI, 0);
    let mut out = [0u8; query_issi_out::SIZE];
    cmd.exec(hal, dma, &input, &mut out)?;
    let mut issi = query_issi_out::CURRENT_ISSI.get(&out) as u16;
    if query_issi_out::SUPPORTED_ISSI_DW0.get(&out) & 0b10 != 0 {
        header(&mut input, opcode::SET_ISSI, 0);
        set_issi_in::CURRENT_ISSI.set(&mut input, 1);
        let mut out = [0u8; 16];
        cmd.exec(hal, dma, &input, &mut out)?;
        issi = 1;
    }

    let mut hca = Hca {
        cmd,
        issi,
        caps: [0; cap::SIZE],
        boot_pages: 0,
        init_pages: 0,
        plan,
        pages: PagePool::new(plan.firmware_pages),
    };
    hca.boot_pages = satisfy_pages(&mut hca, hal, dma, 1)?;

    // Start from the current capabilities; lower only what sizes firmware's tables.
    let mut input = [0u8; 16];
    header(&mut input, opcode::QUERY_HCA_CAP, 1);
    let mut out = [0u8; CAPS_PREFIX];
    hca.cmd
        .exec_sized(hal, dma, &input, 16, &mut out, query_hca_cap_out::SIZE)?;
    let at = query_hca_cap_out::CAPABILITY.byte();
    hca.caps = bytes::read(&out, at).unwrap_or([0; cap::SIZE]); // cannot miss (above)
    // The internal timer's frequency, for a platform that keeps time by it (0: none).
    hal.set_device_clock_khz(hca.device_frequency_khz());
    let port_type = cap::PORT_TYPE.get(&hca.caps) as u8;
    if port_type != 0 {
        return Err(BringupError::NotInfiniBand { port_type });
    }
    for (field, want) in [
        (cap::LOG_MAX_QP, cfg.log_max_qp),
        (cap::LOG_MAX_CQ, cfg.log_max_cq),
        (cap::LOG_MAX_EQ, cfg.log_max_eq),
        (cap::LOG_MAX_MKEY, cfg.log_max_mkey),
    ] {
        let current = field.get(&hca.caps);
        field.set(&mut hca.caps, current.min(want.into()));
    }
    // 128-entry P_Key table, no mailbox checksums (we never sign mailboxes), 4 KiB UARs.
    cap::PKEY_TABLE_SIZE.set(&mut hca.caps, 0);
    cap::CMDIF_CHECKSUM.set(&mut hca.caps, 0);
    cap::LOG_UAR_PAGE_SZ.set(&mut hca.caps, 0);
    let mut set = [0u8; CAPS_PREFIX];
    header(&mut set, opcode::SET_HCA_CAP, 0);
    bytes::put(&mut set, at, &hca.caps);
    let mut out = [0u8; 16];
    hca.cmd
        .exec_sized(hal, dma, &set, set_hca_cap_in::SIZE, &mut out, 16)?;

    hca.init_pages = satisfy_pages(&mut hca, hal, dma, 2)?;
    let mut init = [0u8; 32];
    header(&mut init, opcode::INIT_HCA, 0);
    hca.cmd.exec(hal, dma, &init, &mut out)?;
    Ok(hca)
}

/// Asks firmware how many pages it wants for `phase` (1 boot, 2 init) and gives them
/// from the plan's pool; returns how many it asked for.
fn satisfy_pages<H: Hal>(
    hca: &mut Hca,
    hal: &H,
    dma: &DmaRegion,
    phase: u16,
) -> Result<usize, BringupError> {
    let out = hca
        .cmd
        .exec_short(hal, dma, opcode::QUERY_PAGES, phase, None)?;
    // num_pages is signed: zero or negative means nothing to give.
    let asked = query_pages_out::NUM_PAGES.get(&out) as u32 as i32;
    let Ok(asked) = usize::try_from(asked) else {
        return Ok(0);
    };
    hca.pages.give(&mut hca.cmd, hal, dma, asked)?;
    Ok(asked)
}

/// Services a page request event (type 0x0b) while running: positive, give that many
/// pages; negative, take that many back.
pub fn service_page_request<H: Hal>(
    hca: &mut Hca,
    hal: &H,
    dma: &DmaRegion,
    num_pages: i32,
) -> Result<(), BringupError> {
    let n = num_pages.unsigned_abs() as usize;
    if num_pages > 0 {
        hca.pages.give(&mut hca.cmd, hal, dma, n)?;
    } else if num_pages < 0 {
        hca.pages.take(&mut hca.cmd, hal, dma, n)?;
    }
    Ok(())
}

/// How TEARDOWN_HCA closes the function (`teardown_hca_in.profile`, reference/mlx5.md
/// §C.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Teardown {
    /// Profile 0: every object must have been destroyed first.
    Graceful,
    /// Profile 1: firmware drops whatever objects are alive (a driver abandoning
    /// its queues, as when the port takes its memory back after a failed start).
    ForceClose,
}

/// Returns the function to the disabled state: TEARDOWN_HCA, every page taken back
/// (each must be one we gave), DISABLE_HCA. Returns the pages taken back.
pub fn teardown<H: Hal>(hca: &mut Hca, hal: &H, dma: &DmaRegion) -> Result<usize, BringupError> {
    teardown_with(hca, hal, dma, Teardown::Graceful)
}

/// [`teardown`] with the given TEARDOWN_HCA profile.
pub fn teardown_with<H: Hal>(
    hca: &mut Hca,
    hal: &H,
    dma: &DmaRegion,
    how: Teardown,
) -> Result<usize, BringupError> {
    let mut input = [0u8; 16];
    header(&mut input, opcode::TEARDOWN_HCA, 0);
    let profile = match how {
        Teardown::Graceful => 0,
        Teardown::ForceClose => 1,
    };
    teardown_hca_in::PROFILE.set(&mut input, profile);
    let mut out = [0u8; 16];
    hca.cmd.exec(hal, dma, &input, &mut out)?;
    if how == Teardown::ForceClose && teardown_hca_out::STATE.get(&out) & 1 != 0 {
        return Err(BringupError::ForceCloseFailed);
    }

    let held = hca.pages.held();
    let taken = hca.pages.take(&mut hca.cmd, hal, dma, held)?;
    hca.cmd.exec_short(hal, dma, opcode::DISABLE_HCA, 0, None)?;
    Ok(taken)
}
