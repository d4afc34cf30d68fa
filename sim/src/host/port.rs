//! Scsiport and storport, emulated around the device model: the imports a driver image
//! may use, its adapter's life cycle, and SRBs in the three environments.
//!
//! - **Loader** (NTLDR / ReactOS FreeLoader semantics, scsiport images):
//!   `ScsiPortInitialize` runs `HwFindAdapter` (no ArgumentString, 17 physical breaks
//!   preset) and `HwInitialize` itself; SRBs go one at a time through `HwStartIo`, then
//!   `HwInterrupt` is called every 100 ms of virtual time until the SRB completes, for at
//!   most 5 s; no interrupts, timers or DPCs; physical = virtual below 4 GiB.
//! - **Kernel** (storport images): `HwFindAdapter` at PASSIVE with the registry's
//!   `DriverParameter` as ArgumentString, `HwInitialize`, the passive initialisation
//!   routine if one was enabled; then many SRBs in flight through `HwBuildIo` and
//!   `HwStartIo`, MSI-X messages delivered to `HwMSInterruptRoutine` (or `HwInterrupt`)
//!   when the device model raises them, timer callbacks when virtual time reaches them,
//!   DPCs after the routine that issued them; SRB_STATUS_BUSY requeues; busy, pause and
//!   resume hold the queue. READ/WRITE data buffers have no CPU mapping at all.
//! - **Dump** (a second load of a storport image): `DumpMode` set, a `DumpRegion` of
//!   the size the normal instance asked for, no uncached extension, no interrupts,
//!   timers or DPCs (asking for one is recorded as a breach), one SRB at a time, polled.
//!
//! Memory policing: the guest sees its image, its stack, its device extension, the
//! port structures it is handed (configuration, access ranges, SRBs, sense buffers,
//! SG lists), the uncached extension or DumpRegion, mapped SRB buffers while their SRB
//! is in flight, and BAR0. See [`super::cpu`].
//!
//! Firmware memory ([`super::firmware`]: the first MiB, base memory and the BIOS area):
//! `*PortGetDeviceBase` maps a range of it read-only (memory space, in `HwFindAdapter`
//! only, as both ports allow mapping), each call at a fresh virtual address (the
//! loader's identity mapping is not modelled: page 0 stays unmapped);
//! `*PortFreeDeviceBase` unmaps it, and a window still mapped when `HwFindAdapter`
//! returns is a breach. Any other range that is not BAR0 is refused, as before.
//!
//! Dump pointers: after the kernel instance's `HwInitialize`, [`Machine::dump_pointers`]
//! sends `SRB_FUNCTION_DUMP_POINTERS` when the driver declared
//! `STOR_FEATURE_DUMP_POINTERS`, as storport does for the boot disk, and keeps the
//! `MiniportPrivateDumpData` it returns. When the machine is rebooted into the dump
//! environment, the guest region that pointer lies in (the normal instance's device
//! extension) is carried over read-only at the same address, and the dump instance's
//! `ConfigInfo->MiniportDumpData` is that pointer; the dump instance's own device
//! extension lies elsewhere.

use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use fabboot::port::Flavour;
use fabboot::port::abi::{
    ACCESS_RANGE, HW_INITIALIZATION_DATA, MEMORY_REGION, MINIPORT_DUMP_POINTERS,
    PORT_CONFIGURATION_INFORMATION, SCSI_REQUEST_BLOCK, STOR_SCATTER_GATHER_ELEMENT,
    STOR_SCATTER_GATHER_LIST,
};
use fabboot::port::layout::Layout;
use fabboot_hca::Mmio;
use fabboot_hca::dma::DmaRegion;
use unicorn_engine::unicorn_const::Prot;

use super::Arch;
use super::cpu::{Arg, ArgReader, Conv, Guest, Imports, RunError};
use super::layout::At;
use super::pe::{self, LoadError, Loaded};
use crate::clock::Clock;
use crate::device::{BAR0_LEN, Mlx5Function};
use crate::memory::HostMemory;
use crate::world::{Drive, World};

mod power;
pub use power::{
    Piece, Place, SCSI_QUERY_SUPPORTED_CONTROL_TYPES, SCSI_RESTART_ADAPTER,
    SCSI_SET_RUNNING_CONFIG, SCSI_STOP_ADAPTER, Sleeping,
};

/// The environment the image runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Env {
    Loader,
    Kernel,
    Dump,
}

impl Env {
    pub fn name(self) -> &'static str {
        match self {
            Env::Loader => "loader",
            Env::Kernel => "kernel",
            Env::Dump => "dump",
        }
    }
}

/// Physical address of the machine's RAM the device can reach (below 4 GiB, so the
/// loader's physical = virtual holds for i686).
pub const PHYS_BASE: u64 = 0x1000_0000;
/// Physical address of the function's BAR0 on this machine.
pub const BAR0_PHYS: u64 = 0xE000_0000;
/// Loader: the SRB timeout (NTLDR / FreeLoader).
pub const LOADER_SRB_TIMEOUT_NS: u64 = 5_000_000_000;
/// Loader: `HwInterrupt` polling period.
pub const LOADER_POLL_NS: u64 = 100_000_000;
/// Loader: `NumberOfPhysicalBreaks` the loader forces.
pub const LOADER_PHYSICAL_BREAKS: u32 = 17;
/// Kernel: how long a request completed with SRB_STATUS_BUSY waits before it is
/// started again.
pub const BUSY_RETRY_NS: u64 = 10_000_000;

const SP_RETURN_FOUND: u32 = 1;
const SP_UNINITIALIZED_VALUE: u32 = u32::MAX;
const PCI_BUS: u32 = 5;
const PCI_CONFIGURATION: u32 = 4;
const STATUS_SUCCESS: u64 = 0;
const STATUS_NO_SUCH_DEVICE: u64 = 0xC000_000E;
const STATUS_REVISION_MISMATCH: u64 = 0xC000_0059;
const SRB_STATUS_PENDING: u8 = 0;
const SRB_STATUS_BUSY: u8 = 5;
const SRB_FLAGS_DATA_IN: u32 = 0x40;
const SRB_FLAGS_DATA_OUT: u32 = 0x80;
const DUMP_MODE_CRASH: u8 = 1;
const SRB_FUNCTION_EXECUTE_SCSI: u8 = 0x00;
const SRB_FUNCTION_DUMP_POINTERS: u8 = 0x26;
const STOR_FEATURE_DUMP_POINTERS: u32 = 0x8;
const DUMP_MINIPORT_VERSION_1: u16 = 0x100;

/// Guest virtual layout for one architecture.
#[derive(Clone, Copy, Debug)]
struct Map {
    image: u64,
    stack: u64,
    stack_len: u64,
    heap: u64,
    heap_len: u64,
    devext: u64,
    /// The dump instance's device extension (the normal instance's, handed over, stays
    /// at `devext`).
    devext_dump: u64,
    /// Virtual addresses handed out for firmware memory windows.
    firmware_va: u64,
    /// Kernel-mode virtual address of physical RAM (loader: physical = virtual).
    ram_va: u64,
    /// Kernel-mode virtual address of BAR0.
    bar_va: u64,
    /// Virtual addresses handed out for unmapped data buffers.
    unmapped_va: u64,
}

fn map_for(arch: Arch) -> Map {
    match arch {
        Arch::I686 => Map {
            image: 0x0080_0000,
            stack: 0x0070_0000,
            stack_len: 12 << 10,
            heap: 0x0100_0000,
            heap_len: 4 << 20,
            devext: 0x0050_0000,
            devext_dump: 0x0400_0000,
            firmware_va: 0x2000_0000,
            ram_va: 0x3000_0000,
            bar_va: 0xC000_0000,
            unmapped_va: 0x6000_0000,
        },
        Arch::X86_64 => Map {
            image: 0x1_4000_0000,
            stack: 0x1_3000_0000,
            stack_len: 24 << 10,
            heap: 0x1_5000_0000,
            heap_len: 4 << 20,
            devext: 0x1_6000_0000,
            devext_dump: 0x1_6800_0000,
            firmware_va: 0x1_7000_0000,
            ram_va: 0x1_8000_0000,
            bar_va: 0x1_F000_0000,
            unmapped_va: 0x2_0000_0000,
        },
    }
}

/// Driver entry points that initialise (the rest are the I/O path).
const INIT_ENTRIES: &[&str] = &[
    "DriverEntry",
    "HwFindAdapter",
    "HwInitialize",
    "HwPassiveInitializeRoutine",
];

/// The port functions the host implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Func {
    Initialize,
    GetBusData,
    SetBusDataByOffset,
    GetDeviceBase,
    FreeDeviceBase,
    LogError,
    Notification,
    GetUncachedExtension,
    GetPhysicalAddress,
    StallExecution,
    GetScatterGatherList,
    Busy,
    Ready,
    Pause,
    Resume,
}

/// (name without the prefix, function, i686 stdcall argument slots).
const FUNCS: &[(&str, Func, u32)] = &[
    ("Initialize", Func::Initialize, 4),
    ("GetBusData", Func::GetBusData, 6),
    ("SetBusDataByOffset", Func::SetBusDataByOffset, 7),
    ("GetDeviceBase", Func::GetDeviceBase, 7),
    ("FreeDeviceBase", Func::FreeDeviceBase, 2),
    ("LogError", Func::LogError, 7),
    ("Notification", Func::Notification, 0),
    ("GetUncachedExtension", Func::GetUncachedExtension, 3),
    ("GetPhysicalAddress", Func::GetPhysicalAddress, 4),
    ("StallExecution", Func::StallExecution, 1),
    ("GetScatterGatherList", Func::GetScatterGatherList, 2),
    ("Busy", Func::Busy, 2),
    ("Ready", Func::Ready, 1),
    ("Pause", Func::Pause, 2),
    ("Resume", Func::Resume, 1),
];

fn storport_only(f: Func) -> bool {
    matches!(
        f,
        Func::GetScatterGatherList | Func::Busy | Func::Ready | Func::Pause | Func::Resume
    )
}

/// The entry points the driver registered.
#[derive(Clone, Copy, Debug, Default)]
pub struct HwInit {
    pub size: u32,
    pub initialize: u64,
    pub start_io: u64,
    pub interrupt: u64,
    pub find_adapter: u64,
    pub reset_bus: u64,
    pub adapter_control: u64,
    pub build_io: u64,
    pub device_extension_size: u32,
    pub srb_extension_size: u32,
    pub map_buffers: u8,
    /// `FeatureSupport` (storport, when the structure's size includes it; else 0).
    pub feature_support: u32,
}

/// What `HwFindAdapter` told the port.
#[derive(Clone, Copy, Debug, Default)]
pub struct AdapterConfig {
    pub max_transfer: u32,
    pub physical_breaks: u32,
    pub ms_interrupt: u64,
    pub requested_dump_buffer: u32,
    pub map_buffers: u8,
}

/// An event-log entry the driver wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub error_code: u32,
    pub unique_id: u32,
    pub at_ns: u64,
}

/// A memory block the device can reach, with the guest address the driver sees it at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub pa: u64,
    pub va: u64,
    pub len: u64,
}

/// Direction of an SRB's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    None,
    In,
    Out,
}

/// A request for the driver, as a class driver would build it.
#[derive(Clone, Debug)]
pub struct SrbRequest {
    pub cdb: Vec<u8>,
    pub lun: u8,
    pub dir: Dir,
    /// The data buffer: physical pages (address, length) in RAM, in order.
    pub pages: Vec<(u64, u32)>,
    /// Whether the driver gets a CPU mapping of the buffer (storport maps only
    /// non-READ/WRITE buffers; the loader maps everything).
    pub mapped: bool,
}

impl SrbRequest {
    pub fn len(&self) -> u32 {
        self.pages.iter().map(|p| p.1).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A completed SRB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completed {
    pub id: u64,
    pub srb_status: u8,
    pub scsi_status: u8,
    pub transferred: u32,
    pub sense: Vec<u8>,
    /// Virtual time from start to completion.
    pub latency_ns: u64,
}

/// Figures of the run so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct Figures {
    pub srbs: u64,
    pub bytes: u64,
    pub instructions: u64,
    pub stack_high_water: u64,
    /// The deepest stack of a call on the I/O path (HwStartIo, HwBuildIo, interrupts,
    /// DPCs, the timer), after initialisation.
    pub stack_io_high_water: u64,
    pub interrupts: u64,
    pub timer_calls: u64,
    pub dpcs: u64,
    pub busy_requeues: u64,
    /// The deepest stack of an `HwFindAdapter` call (with the port frames below it).
    pub find_adapter_stack: u64,
    /// Firmware memory windows the driver mapped, and their bytes.
    pub firmware_maps: u64,
    pub firmware_bytes: u64,
}

/// A firmware memory window the driver mapped.
#[derive(Clone, Copy, Debug)]
struct FirmwareWindow {
    /// What `GetDeviceBase` returned.
    base: u64,
    /// The pages mapped.
    page_va: u64,
    page_len: u64,
}

/// The normal instance's hand-over, as the dump instance's machine carries it.
#[derive(Clone, Debug)]
struct HandedOver {
    /// `MiniportDumpData`.
    ptr: u64,
    /// The guest region it lies in, and its bytes at the crash.
    base: u64,
    bytes: Vec<u8>,
}

struct InFlight {
    id: u64,
    /// `SRB_FUNCTION_*` (a non-SCSI SRB is never requeued).
    function: u8,
    srb: u64,
    sense: u64,
    mapped: Vec<(u64, u64)>,
    req: SrbRequest,
    started_ns: u64,
    /// Host-side view of the SRB for a requeue.
    done: Option<Completed>,
}

/// The emulated port driver and everything outside the CPU.
pub struct Port {
    pub arch: Arch,
    pub flavour: Flavour,
    pub env: Env,
    pub world: World,
    pub clock: Clock,
    pub dev: Rc<Mlx5Function>,
    ram: Rc<HostMemory>,
    pub dma: DmaRegion,
    map: Map,
    imports: Vec<(String, Func, u32)>,
    heap_next: u64,
    phys_next: u64,
    pub image: Option<Loaded>,
    pub hw: Option<HwInit>,
    pub adapter: Option<AdapterConfig>,
    pub found: bool,
    pub devext: u64,
    config: u64,
    pub uncached: Option<Block>,
    pub dump_region: Option<Block>,
    bar_mapped: Option<u64>,
    /// Firmware memory: the first MiB of physical memory ([`super::firmware`]). It
    /// survives reboots; a test or the boot puts tables in it.
    pub firmware: Vec<u8>,
    firmware_windows: Vec<FirmwareWindow>,
    firmware_next_va: u64,
    /// The `MiniportPrivateDumpData` the kernel instance returned for DUMP_POINTERS.
    pub dump_data: Option<u64>,
    /// Dump environment: the hand-over mapped for the dump instance.
    handed_over: Option<HandedOver>,
    /// Dump environment: the `DumpMode` `HwFindAdapter` gets (crash unless the
    /// machine is the hibernation stack's, [`Machine::hibernate`]).
    dump_mode: u8,
    /// What the last `HwFindAdapter` returned.
    pub find_status: Option<u32>,
    pub argument_string: Option<String>,
    /// Timer: (deadline, routine).
    timer: Option<(u64, u64)>,
    dpcs: BTreeMap<u64, u64>,
    dpc_queue: VecDeque<(u64, u64, u64)>,
    passive_init: Option<u64>,
    pending_msix: Vec<u16>,
    in_flight: Vec<InFlight>,
    queue: VecDeque<(u64, SrbRequest, u64)>,
    pub completed: Vec<Completed>,
    next_id: u64,
    busy_until_ns: u64,
    paused_until_ns: u64,
    pub log: Vec<LogEntry>,
    /// Things the driver did that its environment forbids (a timer in dump mode, a
    /// physical address asked for memory the port did not give, ...).
    pub breaches: Vec<String>,
    pub figures: Figures,
    unmapped_next: u64,
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port")
            .field("arch", &self.arch)
            .field("flavour", &self.flavour)
            .field("env", &self.env)
            .finish()
    }
}

/// Why the host could not go on.
#[derive(Debug)]
pub enum HostError {
    Load(LoadError),
    Run(RunError),
    /// The driver did something the port contract does not allow, or did not do
    /// what it must (e.g. no adapter found).
    Contract(String),
    /// An SRB did not complete in time (loader: 5 s).
    Timeout {
        what: String,
    },
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostError::Load(e) => write!(f, "load: {e}"),
            HostError::Run(e) => write!(f, "{e}"),
            HostError::Contract(w) => write!(f, "port contract: {w}"),
            HostError::Timeout { what } => write!(f, "timeout: {what}"),
        }
    }
}

impl std::error::Error for HostError {}

impl From<RunError> for HostError {
    fn from(e: RunError) -> Self {
        HostError::Run(e)
    }
}

impl From<LoadError> for HostError {
    fn from(e: LoadError) -> Self {
        HostError::Load(e)
    }
}

fn guest_err(e: String) -> HostError {
    HostError::Contract(e)
}

/// One machine: CPU, port, device, fabric.
pub struct Machine {
    pub guest: Guest,
    pub port: Port,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine").field("port", &self.port).finish()
    }
}

/// How a machine is put together.
pub struct MachineParts {
    pub arch: Arch,
    pub flavour: Flavour,
    pub env: Env,
    pub world: World,
    pub clock: Clock,
    pub dev: Rc<Mlx5Function>,
    /// The machine's RAM; the device model must already have it attached.
    pub ram: Rc<HostMemory>,
    /// Registry `DriverParameter` (kernel) — the ArgumentString.
    pub driver_parameter: Option<String>,
}

impl Machine {
    /// Builds the CPU and the port around `parts` (nothing is loaded yet).
    pub fn new(parts: MachineParts) -> Result<Machine, HostError> {
        let MachineParts {
            arch,
            flavour,
            env,
            world,
            clock,
            dev,
            ram,
            driver_parameter,
        } = parts;
        if env == Env::Loader && flavour != Flavour::Scsiport {
            return Err(HostError::Contract(
                "the loader loads scsiport images (ntbootdd.sys) only".into(),
            ));
        }
        let map = map_for(arch);
        let mut guest = Guest::new(arch, env.name()).map_err(guest_err)?;
        guest
            .map("stack", map.stack, map.stack_len, Prot::READ | Prot::WRITE)
            .map_err(guest_err)?;
        guest
            .write(map.stack, &vec![0xCC; map.stack_len as usize])
            .map_err(guest_err)?;
        guest.set_stack(map.stack + map.stack_len);
        guest
            .map(
                "port structures",
                map.heap,
                map.heap_len,
                Prot::READ | Prot::WRITE,
            )
            .map_err(guest_err)?;
        let prefix = match flavour {
            Flavour::Scsiport => "ScsiPort",
            Flavour::Storport => "StorPort",
        };
        let imports = FUNCS
            .iter()
            .filter(|(_, f, _)| flavour == Flavour::Storport || !storport_only(*f))
            .map(|(n, f, s)| (format!("{prefix}{n}"), *f, *s))
            .collect();
        let dma = ram.region();
        let argument_string = match env {
            Env::Loader => None,
            Env::Kernel => driver_parameter,
            Env::Dump => Some("dump=1".into()),
        };
        Ok(Machine {
            guest,
            port: Port {
                arch,
                flavour,
                env,
                world,
                clock,
                dev,
                ram,
                dma,
                map,
                imports,
                heap_next: map.heap,
                phys_next: 0,
                image: None,
                hw: None,
                adapter: None,
                found: false,
                devext: 0,
                config: 0,
                uncached: None,
                dump_region: None,
                bar_mapped: None,
                firmware: super::firmware::fresh(),
                firmware_windows: Vec::new(),
                firmware_next_va: map.firmware_va,
                dump_data: None,
                handed_over: None,
                dump_mode: if env == Env::Dump { DUMP_MODE_CRASH } else { 0 },
                find_status: None,
                argument_string,
                timer: None,
                dpcs: BTreeMap::new(),
                dpc_queue: VecDeque::new(),
                passive_init: None,
                pending_msix: Vec::new(),
                in_flight: Vec::new(),
                queue: VecDeque::new(),
                completed: Vec::new(),
                next_id: 1,
                busy_until_ns: 0,
                paused_until_ns: 0,
                log: Vec::new(),
                breaches: Vec::new(),
                figures: Figures::default(),
                unmapped_next: map.unmapped_va,
            },
        })
    }

    /// The same machine started again with another image and environment (the
    /// kernel after the loader, the dump instance after the kernel): the world, the
    /// device (in whatever state the last instance left it), RAM and firmware memory
    /// carry over, RAM in use stays in use; the CPU, the port's state and the figures
    /// start afresh. Into the dump environment, the normal instance's dump data (its
    /// device extension region, as it is at the crash) is carried over read-only.
    pub fn reboot(
        self,
        env: Env,
        flavour: Flavour,
        arch: Arch,
        driver_parameter: Option<String>,
    ) -> Result<Machine, HostError> {
        let handed_over = match env {
            Env::Dump => self.port.handed_over_snapshot(&self.guest)?,
            _ => None,
        };
        let Port {
            world,
            clock,
            dev,
            ram,
            phys_next,
            firmware,
            ..
        } = self.port;
        drop(self.guest);
        let mut m = Machine::new(MachineParts {
            arch,
            flavour,
            env,
            world,
            clock,
            dev,
            ram,
            driver_parameter,
        })?;
        m.port.phys_next = phys_next;
        m.port.firmware = firmware;
        if let Some(h) = handed_over {
            m.map_handed_over(h)?;
        }
        Ok(m)
    }

    /// Dump environment: maps dump data for the dump instance read-only at `h.base`
    /// and makes `h.ptr` its `MiniportDumpData`.
    fn map_handed_over(&mut self, h: HandedOver) -> Result<(), HostError> {
        if self.port.env != Env::Dump {
            return Err(HostError::Contract(
                "dump data is for the dump environment".into(),
            ));
        }
        let len = (h.bytes.len() as u64).next_multiple_of(4096).max(4096);
        self.guest
            .map(
                "the normal instance's dump data",
                h.base,
                len,
                Prot::READ | Prot::WRITE,
            )
            .map_err(guest_err)?;
        self.guest.write(h.base, &h.bytes).map_err(guest_err)?;
        self.guest
            .protect(h.base, len, Prot::READ)
            .map_err(guest_err)?;
        self.port.handed_over = Some(h);
        Ok(())
    }

    /// Dump environment, before [`Machine::start_adapter`]: hands the dump instance
    /// `bytes` as its `MiniportDumpData` (what a normal instance of another build, or a
    /// damaged one, would have left), read-only at the address the normal instance's
    /// device extension has. Returns that address.
    pub fn hand_over(&mut self, bytes: &[u8]) -> Result<u64, HostError> {
        let base = self.port.map.devext;
        self.map_handed_over(HandedOver {
            ptr: base,
            base,
            bytes: bytes.to_vec(),
        })?;
        Ok(base)
    }

    /// Kernel: `SRB_FUNCTION_DUMP_POINTERS`, as storport sends it to the boot disk's
    /// miniport when the crash dump stack is set up (at the end of
    /// [`Machine::start_adapter`]), if the driver declared `STOR_FEATURE_DUMP_POINTERS`.
    /// Returns the `MiniportPrivateDumpData` it gave (kept in [`Port::dump_data`] for
    /// [`Machine::reboot`] into the dump environment), `None` when it declared no
    /// support. A driver that declares it must answer with the structure filled.
    pub fn dump_pointers(&mut self) -> Result<Option<u64>, HostError> {
        let hw = self
            .port
            .hw
            .ok_or_else(|| HostError::Contract("no adapter".into()))?;
        if self.port.env != Env::Kernel
            || self.port.flavour != Flavour::Storport
            || hw.feature_support & STOR_FEATURE_DUMP_POINTERS == 0
        {
            return Ok(None);
        }
        let arch = self.port.arch;
        let l = MINIPORT_DUMP_POINTERS::LAYOUT;
        let size = At::size(&l, arch);
        let buf = self.port.heap_alloc(&mut self.guest, size)?;
        // What storport fills before it asks (the adapter's description).
        let d = At::new(l, buf);
        d.set_u32(&mut self.guest, "SystemIoBusNumber", 3);
        d.set_u32(&mut self.guest, "AdapterInterfaceType", PCI_BUS);
        d.set_u32(&mut self.guest, "NumberOfAccessRanges", 1);
        let id = self.port.next_id;
        self.port.next_id += 1;
        let srb =
            self.port
                .function_srb(&mut self.guest, id, SRB_FUNCTION_DUMP_POINTERS, buf, size)?;
        if hw.build_io != 0 {
            let ok = self.top_call(
                "HwBuildIo",
                hw.build_io,
                &[Arg::Ptr(self.port.devext), Arg::Ptr(srb)],
            )?;
            if ok & 0xFF == 0 {
                self.port.complete_srb(&mut self.guest, srb)?;
            }
        }
        if self
            .port
            .in_flight
            .iter()
            .any(|f| f.srb == srb && f.done.is_none())
        {
            self.top_call(
                "HwStartIo",
                hw.start_io,
                &[Arg::Ptr(self.port.devext), Arg::Ptr(srb)],
            )?;
        }
        self.run_deferred()?;
        self.pump(1_000_000_000, |p| p.completed.iter().any(|c| c.id == id), 1)?;
        let i = self
            .port
            .completed
            .iter()
            .position(|c| c.id == id)
            .ok_or_else(|| HostError::Timeout {
                what: "SRB_FUNCTION_DUMP_POINTERS not completed in 1 s".into(),
            })?;
        let done = self.port.completed.remove(i);
        if done.srb_status & 0x3F != 1 {
            return Err(HostError::Contract(format!(
                "SRB_FUNCTION_DUMP_POINTERS failed with SRB status {:#04x}",
                done.srb_status
            )));
        }
        let version = d.u16(&self.guest, "Version");
        let got_size = d.u16(&self.guest, "Size");
        let ptr = d.ptr(&self.guest, "MiniportPrivateDumpData");
        if version != DUMP_MINIPORT_VERSION_1 || u64::from(got_size) != size || ptr == 0 {
            return Err(HostError::Contract(format!(
                "MINIPORT_DUMP_POINTERS answered with Version {version:#x}, Size {got_size}, \
                 MiniportPrivateDumpData {ptr:#x} (want {DUMP_MINIPORT_VERSION_1:#x}, \
                 {size}, non-null)"
            )));
        }
        self.port.dump_data = Some(ptr);
        Ok(Some(ptr))
    }

    /// Loads the image (`file` is the .sys) and binds its imports to this port.
    pub fn load(&mut self, file: &[u8]) -> Result<(), HostError> {
        let dll = match self.port.flavour {
            Flavour::Scsiport => "scsiport.sys",
            Flavour::Storport => "storport.sys",
        };
        let names: Vec<String> = self.port.imports.iter().map(|i| i.0.clone()).collect();
        let loaded = pe::load(&mut self.guest, file, self.port.map.image, |d, n| {
            if !d.eq_ignore_ascii_case(dll) {
                return None;
            }
            names.iter().position(|x| x == n)
        })?;
        self.port.image = Some(loaded);
        Ok(())
    }

    /// Allocates physical RAM (page aligned) for a caller such as a workload's data
    /// buffers; the driver sees none of it unless an SRB maps it.
    pub fn alloc_ram(&mut self, len: u64) -> Result<u64, HostError> {
        self.port.alloc_phys(len)
    }

    /// The machine's RAM, for a workload's data.
    pub fn ram(&self) -> &DmaRegion {
        &self.port.dma
    }

    fn top_call(&mut self, entry: &str, func: u64, args: &[Arg]) -> Result<u64, HostError> {
        let before = self.guest.instructions();
        let r = self.guest.call(&mut self.port, entry, func, args);
        self.port.figures.instructions += self.guest.instructions() - before;
        self.port.note_stack(&mut self.guest, entry);
        Ok(r?)
    }

    /// Calls `DriverEntry` as the environment does. Loader: scsiport finds and
    /// initialises the adapter inside `ScsiPortInitialize`. Kernel and dump: the
    /// adapter is started afterwards ([`Machine::start_adapter`]).
    pub fn driver_entry(&mut self) -> Result<u64, HostError> {
        let entry = self
            .port
            .image
            .as_ref()
            .ok_or_else(|| HostError::Contract("no image loaded".into()))?
            .entry;
        let (drv, reg) = match self.port.env {
            Env::Dump => (0, 0),
            _ => {
                let drv = self.port.heap_alloc(&mut self.guest, 0x150)?;
                let reg = self.port.unicode_string(
                    &mut self.guest,
                    "\\Registry\\Machine\\System\\CurrentControlSet\\Services\\fabboot",
                )?;
                (drv, reg)
            }
        };
        let status =
            self.top_call("DriverEntry", entry, &[Arg::Ptr(drv), Arg::Ptr(reg)])? & 0xFFFF_FFFF;
        if self.port.env == Env::Loader && !self.port.found {
            return Err(HostError::Contract(format!(
                "no adapter found (DriverEntry returned {status:#x}); event log: {:?}",
                self.port.log
            )));
        }
        Ok(status)
    }

    /// Kernel and dump: `HwFindAdapter`, `HwInitialize` and (kernel) the passive
    /// initialisation routine. `dump_buffer`: the normal instance's
    /// `RequestedDumpBufferSize` (dump mode).
    pub fn start_adapter(&mut self, dump_buffer: u32) -> Result<(), HostError> {
        if self.port.env == Env::Loader {
            return Ok(());
        }
        let hw = self
            .port
            .hw
            .ok_or_else(|| HostError::Contract("DriverEntry registered no adapter".into()))?;
        if self.port.env == Env::Dump {
            let len = u64::from(dump_buffer).next_multiple_of(4096).max(4096);
            let pa = self.port.alloc_phys(len)?;
            let va = self.port.ram_va(pa);
            self.port.map_ram(&mut self.guest, "DumpRegion", pa, len)?;
            self.port.dump_region = Some(Block { pa, va, len });
        }
        let (found, _) = self.port.find_adapter(&mut self.guest, hw)?;
        if !found {
            return Err(HostError::Contract(format!(
                "HwFindAdapter did not find the adapter; event log: {:?}",
                self.port.log
            )));
        }
        let ok = self.top_call("HwInitialize", hw.initialize, &[Arg::Ptr(self.port.devext)])?;
        if ok & 0xFF == 0 {
            return Err(HostError::Contract(format!(
                "HwInitialize failed; event log: {:?}",
                self.port.log
            )));
        }
        if let Some(routine) = self.port.passive_init.take() {
            self.top_call(
                "HwPassiveInitializeRoutine",
                routine,
                &[Arg::Ptr(self.port.devext)],
            )?;
        }
        self.run_deferred()?;
        // Storport asks the boot disk's miniport for its dump pointers when the crash
        // dump stack is set up.
        if self.port.env == Env::Kernel {
            self.dump_pointers()?;
        }
        Ok(())
    }

    /// Loader and dump: runs one SRB to completion, polled.
    pub fn execute(&mut self, req: SrbRequest) -> Result<Completed, HostError> {
        let hw = self
            .port
            .hw
            .ok_or_else(|| HostError::Contract("no adapter".into()))?;
        let id = self.start(req, hw)?;
        let (period, limit) = match self.port.env {
            Env::Loader => (LOADER_POLL_NS, LOADER_SRB_TIMEOUT_NS),
            // The dump port polls as fast as it can; virtual time moves only with the
            // driver's stalls, plus a microsecond per poll.
            _ => (1_000, 60_000_000_000),
        };
        let start = self.port.clock.now_ns();
        loop {
            if let Some(i) = self.port.completed.iter().position(|c| c.id == id) {
                return Ok(self.port.completed.remove(i));
            }
            if self.port.clock.now_ns() - start >= limit {
                return Err(HostError::Timeout {
                    what: format!(
                        "SRB {id} not completed after {} ms of HwInterrupt polling",
                        limit / 1_000_000
                    ),
                });
            }
            let until = self.port.clock.now_ns() + period;
            self.port.world.run_until(until);
            let _ = self.port.dev.take_msix();
            self.top_call("HwInterrupt", hw.interrupt, &[Arg::Ptr(self.port.devext)])?;
            self.port.figures.interrupts += 1;
            self.port.reap(&mut self.guest)?;
        }
    }

    /// Kernel: queues a request (started when the queue is not held).
    pub fn submit(&mut self, req: SrbRequest) -> u64 {
        let id = self.port.next_id;
        self.port.next_id += 1;
        let now = self.port.clock.now_ns();
        self.port.queue.push_back((id, req, now));
        id
    }

    /// Requests in flight in the driver or queued in the port.
    pub fn outstanding(&self) -> usize {
        self.port.in_flight.len() + self.port.queue.len()
    }

    /// Requests the driver holds (started, not completed).
    pub fn in_driver(&self) -> usize {
        self.port.in_flight.len()
    }

    /// Kernel: runs the machine (starting queued requests, delivering interrupts,
    /// timers and DPCs, running the world) until `done` says so or `limit_ns` of
    /// virtual time passes. Returns whether `done` was reached.
    pub fn pump(
        &mut self,
        limit_ns: u64,
        mut done: impl FnMut(&Port) -> bool,
        max_in_flight: usize,
    ) -> Result<bool, HostError> {
        let hw = self
            .port
            .hw
            .ok_or_else(|| HostError::Contract("no adapter".into()))?;
        let until = self.port.clock.now_ns() + limit_ns;
        loop {
            if done(&self.port) {
                return Ok(true);
            }
            let now = self.port.clock.now_ns();
            if now >= until {
                return Ok(false);
            }
            // Start what the queue allows.
            while self.port.in_flight.len() < max_in_flight
                && now >= self.port.busy_until_ns
                && now >= self.port.paused_until_ns
            {
                let Some(pos) = self.port.queue.iter().position(|q| q.2 <= now) else {
                    break;
                };
                let Some((id, req, _)) = self.port.queue.remove(pos) else {
                    break;
                };
                self.start_with_id(id, req, hw)?;
                self.run_deferred()?;
            }
            // Timer due?
            if let Some((deadline, routine)) = self.port.timer
                && deadline <= now
            {
                self.port.timer = None;
                self.port.figures.timer_calls += 1;
                self.top_call("HwTimer", routine, &[Arg::Ptr(self.port.devext)])?;
                self.run_deferred()?;
                continue;
            }
            if !self.port.pending_msix.is_empty() {
                let msgs = std::mem::take(&mut self.port.pending_msix);
                for m in msgs {
                    self.interrupt(hw, m)?;
                }
                self.run_deferred()?;
                continue;
            }
            // Wait for the world: an MSI-X message, the timer, a requeue.
            let mut wake = self.port.timer.map(|t| t.0);
            if let Some(q) = self.port.queue.iter().map(|q| q.2).min()
                && self.port.in_flight.len() < max_in_flight
            {
                let q = q
                    .max(self.port.busy_until_ns)
                    .max(self.port.paused_until_ns);
                wake = Some(wake.map_or(q, |w| w.min(q)));
            }
            let dev = self.port.dev.clone();
            let pending = &mut self.port.pending_msix;
            let left = until.saturating_sub(now);
            let limit = wake.map_or(left, |w| w.saturating_sub(now).min(left));
            if limit == 0 {
                continue;
            }
            // Runs until a message arrives (time stops there) or for `limit` (time
            // reaches the wake-up).
            self.port.world.run_driven(limit, |_| {
                pending.extend(dev.take_msix());
                Drive {
                    done: !pending.is_empty(),
                    wake_ns: wake,
                }
            });
        }
    }

    fn interrupt(&mut self, hw: HwInit, message: u16) -> Result<(), HostError> {
        self.port.figures.interrupts += 1;
        let ms = self.port.adapter.map_or(0, |a| a.ms_interrupt);
        if ms != 0 {
            self.top_call(
                "HwMSInterruptRoutine",
                ms,
                &[Arg::Ptr(self.port.devext), Arg::U32(u32::from(message))],
            )?;
        } else {
            self.top_call("HwInterrupt", hw.interrupt, &[Arg::Ptr(self.port.devext)])?;
        }
        Ok(())
    }

    /// DPCs issued by the last routine, then completions.
    fn run_deferred(&mut self) -> Result<(), HostError> {
        while let Some((dpc, a1, a2)) = self.port.dpc_queue.pop_front() {
            let Some(&routine) = self.port.dpcs.get(&dpc) else {
                continue;
            };
            self.port.figures.dpcs += 1;
            self.top_call(
                "HwDpcRoutine",
                routine,
                &[
                    Arg::Ptr(dpc),
                    Arg::Ptr(self.port.devext),
                    Arg::Ptr(a1),
                    Arg::Ptr(a2),
                ],
            )?;
        }
        self.port.reap(&mut self.guest)
    }

    fn start(&mut self, req: SrbRequest, hw: HwInit) -> Result<u64, HostError> {
        let id = self.port.next_id;
        self.port.next_id += 1;
        self.start_with_id(id, req, hw)?;
        Ok(id)
    }

    fn start_with_id(&mut self, id: u64, req: SrbRequest, hw: HwInit) -> Result<(), HostError> {
        let inflight = self.port.build_srb(&mut self.guest, id, req, hw)?;
        let srb = inflight.srb;
        self.port.in_flight.push(inflight);
        self.port.figures.srbs += 1;
        if self.port.flavour == Flavour::Storport && hw.build_io != 0 {
            let ok = self.top_call(
                "HwBuildIo",
                hw.build_io,
                &[Arg::Ptr(self.port.devext), Arg::Ptr(srb)],
            )?;
            if ok & 0xFF == 0 {
                // Storport completes the request with the status the driver set.
                self.port.complete_srb(&mut self.guest, srb)?;
                return self.port.reap(&mut self.guest);
            }
        }
        self.top_call(
            "HwStartIo",
            hw.start_io,
            &[Arg::Ptr(self.port.devext), Arg::Ptr(srb)],
        )?;
        self.port.reap(&mut self.guest)
    }
}

impl Port {
    /// The normal instance's dump data as it is now (the guest region its
    /// `MiniportPrivateDumpData` lies in), for a dump or hibernation instance.
    fn handed_over_snapshot(&self, guest: &Guest) -> Result<Option<HandedOver>, HostError> {
        let Some(ptr) = self.dump_data else {
            return Ok(None);
        };
        let region = guest
            .regions()
            .iter()
            .find(|r| (r.base..r.base + r.len).contains(&ptr))
            .map(|r| (r.base, r.len))
            .ok_or_else(|| {
                HostError::Contract(format!(
                    "MiniportPrivateDumpData {ptr:#x} points at no memory of the normal instance"
                ))
            })?;
        let bytes = guest
            .read_vec(region.0, region.1 as usize)
            .map_err(guest_err)?;
        Ok(Some(HandedOver {
            ptr,
            base: region.0,
            bytes,
        }))
    }

    /// Both ports allow configuration-space access in `HwFindAdapter`, storport also
    /// in `ScsiSetRunningConfig` (not in `HwInitialize` or `ScsiRestartAdapter`,
    /// windows-side.md §3.6); `import` under any other routine is a breach.
    fn config_space_allowed(&mut self, guest: &Guest, import: &str) -> bool {
        let entry = guest.current_entry().unwrap_or_default();
        let allowed = power::config_space_allowed(&entry);
        if !allowed {
            self.breaches.push(format!(
                "{import} under {entry}, not HwFindAdapter or ScsiSetRunningConfig"
            ));
        }
        allowed
    }

    fn heap_alloc(&mut self, guest: &mut Guest, len: u64) -> Result<u64, HostError> {
        let at = self.heap_next.next_multiple_of(16);
        if at + len > self.map.heap + self.map.heap_len {
            return Err(HostError::Contract("port structure heap exhausted".into()));
        }
        self.heap_next = at + len;
        guest.write(at, &vec![0; len as usize]).map_err(guest_err)?;
        Ok(at)
    }

    fn unicode_string(&mut self, guest: &mut Guest, s: &str) -> Result<u64, HostError> {
        let utf16: Vec<u8> = s.encode_utf16().flat_map(|c| c.to_le_bytes()).collect();
        let buf = self.heap_alloc(guest, utf16.len() as u64 + 2)?;
        guest.write(buf, &utf16).map_err(guest_err)?;
        let us = self.heap_alloc(guest, 16)?;
        guest.write_u16(us, utf16.len() as u16).map_err(guest_err)?;
        guest
            .write_u16(us + 2, utf16.len() as u16 + 2)
            .map_err(guest_err)?;
        let off = guest.ptr_size();
        guest.write_ptr(us + off, buf).map_err(guest_err)?;
        Ok(us)
    }

    fn alloc_phys(&mut self, len: u64) -> Result<u64, HostError> {
        let len = len.next_multiple_of(4096).max(4096);
        if self.phys_next + len > self.ram.len() as u64 {
            return Err(HostError::Contract(format!(
                "machine RAM exhausted ({} bytes asked)",
                len
            )));
        }
        let pa = PHYS_BASE + self.phys_next;
        self.phys_next += len;
        Ok(pa)
    }

    /// Where the driver sees physical address `pa`: itself in the loader, the kernel's
    /// mapping otherwise.
    pub fn ram_va(&self, pa: u64) -> u64 {
        match self.env {
            Env::Loader => pa,
            _ => self.map.ram_va + (pa - PHYS_BASE),
        }
    }

    fn ram_pa(&self, va: u64) -> Option<u64> {
        let len = self.ram.len() as u64;
        match self.env {
            Env::Loader => (PHYS_BASE..PHYS_BASE + len).contains(&va).then_some(va),
            _ => (self.map.ram_va..self.map.ram_va + len)
                .contains(&va)
                .then(|| va - self.map.ram_va + PHYS_BASE),
        }
    }

    fn map_ram(
        &mut self,
        guest: &mut Guest,
        name: &str,
        pa: u64,
        len: u64,
    ) -> Result<(), HostError> {
        let off = (pa - PHYS_BASE) as usize;
        let ptr = self
            .ram
            .host_ptr(off, len as usize)
            .ok_or_else(|| HostError::Contract(format!("{name}: {pa:#x}+{len:#x} outside RAM")))?;
        let va = self.ram_va(pa);
        // SAFETY: `ptr` points into the machine's RAM block, which `self.ram` keeps
        // alive (and in place) for as long as the guest exists: both live in the
        // same `Machine`, and the port unmaps SRB buffers before their RAM is reused.
        unsafe { guest.map_host(name, va, len, ptr) }.map_err(guest_err)
    }

    /// Measures how deep the call that just returned went (the stack is 0xCC-filled
    /// below its top), then fills what it used again, so each call is measured alone.
    fn note_stack(&mut self, guest: &mut Guest, entry: &str) {
        let len = self.map.stack_len;
        if let Ok(bytes) = guest.read_vec(self.map.stack, len as usize) {
            let untouched = bytes.iter().take_while(|&&b| b == 0xCC).count() as u64;
            let used = len - untouched;
            self.figures.stack_high_water = self.figures.stack_high_water.max(used);
            if entry == "HwFindAdapter" {
                self.figures.find_adapter_stack = self.figures.find_adapter_stack.max(used);
            }
            if !INIT_ENTRIES.contains(&entry) {
                self.figures.stack_io_high_water = self.figures.stack_io_high_water.max(used);
            }
            // Only below the stack pointer: a nested call (HwFindAdapter inside
            // ScsiPortInitialize) returns into frames that are still live.
            let from = self.map.stack + untouched;
            let to = guest.stack_pointer().min(self.map.stack + len);
            if to > from {
                let _ = guest.write(from, &vec![0xCC; (to - from) as usize]);
            }
        }
    }

    /// `HwFindAdapter` with the environment's configuration.
    fn find_adapter(&mut self, guest: &mut Guest, hw: HwInit) -> Result<(bool, u32), HostError> {
        let arch = self.arch;
        let devext = match self.env {
            Env::Dump => self.map.devext_dump,
            _ => self.map.devext,
        };
        let ext_len = u64::from(hw.device_extension_size)
            .next_multiple_of(4096)
            .max(4096);
        if self.devext == 0 {
            guest
                .map(
                    "device extension",
                    devext,
                    ext_len,
                    Prot::READ | Prot::WRITE,
                )
                .map_err(guest_err)?;
            self.devext = devext;
        }
        let pci = PORT_CONFIGURATION_INFORMATION::LAYOUT;
        // Scsiport's structure ends after WmiDataProvider, where storport's tail starts.
        let length = match self.flavour {
            Flavour::Scsiport => At::offset(&pci, "SynchronizationModel", arch),
            Flavour::Storport => At::size(&pci, arch),
        };
        let config = self.heap_alloc(guest, At::size(&pci, arch))?;
        self.config = config;
        let c = At::new(pci, config);
        c.set_u32(guest, "Length", length as u32);
        c.set_u32(guest, "SystemIoBusNumber", 3);
        c.set_u32(guest, "AdapterInterfaceType", PCI_BUS);
        c.set_u32(guest, "SlotNumber", 0);
        c.set_u32(guest, "MaximumTransferLength", SP_UNINITIALIZED_VALUE);
        c.set_u32(
            guest,
            "NumberOfPhysicalBreaks",
            match self.env {
                Env::Loader => LOADER_PHYSICAL_BREAKS,
                _ => SP_UNINITIALIZED_VALUE,
            },
        );
        c.set_u32(guest, "NumberOfAccessRanges", 1);
        let ar = ACCESS_RANGE::LAYOUT;
        let ranges = self.heap_alloc(guest, At::size(&ar, arch))?;
        let r = At::new(ar, ranges);
        r.set_u64(guest, "RangeStart", self.dev.bar0());
        r.set_u32(guest, "RangeLength", BAR0_LEN);
        r.set_u8(guest, "RangeInMemory", 1);
        c.set_ptr(guest, "AccessRanges", ranges);
        c.set_u8(guest, "NumberOfBuses", 1);
        if self.flavour == Flavour::Storport {
            c.set_u32(guest, "MaxNumberOfIO", 1000);
            c.set_u32(guest, "MaxIOsPerLun", 255);
            c.set_u32(guest, "InitialLunQueueDepth", 20);
        }
        if let Some(d) = self.dump_region {
            c.set_u8(guest, "DumpMode", self.dump_mode);
            let mr = At::new(MEMORY_REGION::LAYOUT, c.field("DumpRegion", arch));
            mr.set_ptr(guest, "VirtualBase", d.va);
            mr.set_u64(guest, "PhysicalBase", d.pa);
            mr.set_u32(guest, "Length", d.len as u32);
        }
        if let Some(h) = &self.handed_over {
            c.set_ptr(guest, "MiniportDumpData", h.ptr);
        }
        let arg = match self.argument_string.clone() {
            Some(s) => {
                let p = self.heap_alloc(guest, s.len() as u64 + 1)?;
                guest.write(p, s.as_bytes()).map_err(guest_err)?;
                p
            }
            None => 0,
        };
        let again = self.heap_alloc(guest, 8)?;
        let before = guest.instructions();
        let status = guest.call(
            self,
            "HwFindAdapter",
            hw.find_adapter,
            &[
                Arg::Ptr(devext),
                Arg::Ptr(0),
                Arg::Ptr(0),
                Arg::Ptr(arg),
                Arg::Ptr(config),
                Arg::Ptr(again),
            ],
        )? as u32;
        self.figures.instructions += guest.instructions() - before;
        self.note_stack(guest, "HwFindAdapter");
        self.find_status = Some(status);
        // Windows on firmware memory are the configuration search's alone.
        for w in std::mem::take(&mut self.firmware_windows) {
            self.breaches.push(format!(
                "firmware memory window {:#x} still mapped when HwFindAdapter returned",
                w.base
            ));
            guest.unmap(w.page_va, w.page_len).map_err(guest_err)?;
        }
        if status != SP_RETURN_FOUND {
            return Ok((false, status));
        }
        let ms = if self.flavour == Flavour::Storport {
            c.ptr(guest, "HwMSInterruptRoutine")
        } else {
            0
        };
        self.adapter = Some(AdapterConfig {
            max_transfer: c.u32(guest, "MaximumTransferLength"),
            physical_breaks: c.u32(guest, "NumberOfPhysicalBreaks"),
            ms_interrupt: ms,
            requested_dump_buffer: if self.flavour == Flavour::Storport {
                c.u32(guest, "RequestedDumpBufferSize")
            } else {
                0
            },
            map_buffers: c.u8(guest, "MapBuffers"),
        });
        self.found = true;
        Ok((true, status))
    }

    fn build_srb(
        &mut self,
        guest: &mut Guest,
        id: u64,
        req: SrbRequest,
        hw: HwInit,
    ) -> Result<InFlight, HostError> {
        let arch = self.arch;
        let l = SCSI_REQUEST_BLOCK::LAYOUT;
        let size = At::size(&l, arch);
        // Each SRB gets fresh port memory: an SRB and its sense buffer live in the
        // port's structures; the heap is recycled when nothing is in flight.
        if self.in_flight.is_empty() && self.heap_next > self.map.heap + (self.map.heap_len / 2) {
            self.heap_next = self.map.heap + (self.map.heap_len / 4);
        }
        let srb = self.heap_alloc(guest, size)?;
        let sense = self.heap_alloc(guest, 32)?;
        let ext = if hw.srb_extension_size > 0 {
            self.heap_alloc(guest, u64::from(hw.srb_extension_size))?
        } else {
            0
        };
        let s = At::new(l, srb);
        s.set_u16(guest, "Length", size as u16);
        s.set_u8(guest, "Function", 0);
        s.set_u8(guest, "SrbStatus", SRB_STATUS_PENDING);
        s.set_u8(guest, "Lun", req.lun);
        s.set_u8(guest, "CdbLength", req.cdb.len() as u8);
        s.set_u8(guest, "SenseInfoBufferLength", 18);
        let flags = match req.dir {
            Dir::None => 0,
            Dir::In => SRB_FLAGS_DATA_IN,
            Dir::Out => SRB_FLAGS_DATA_OUT,
        };
        s.set_u32(guest, "SrbFlags", flags);
        s.set_u32(guest, "DataTransferLength", req.len());
        s.set_u32(guest, "TimeOutValue", 10);
        s.set_ptr(guest, "SenseInfoBuffer", sense);
        s.set_ptr(guest, "SrbExtension", ext);
        s.set_u8(guest, "QueueTag", (id & 0xFF) as u8);
        let mut cdb = [0u8; 16];
        cdb[..req.cdb.len().min(16)].copy_from_slice(&req.cdb[..req.cdb.len().min(16)]);
        guest.write(s.field("Cdb", arch), &cdb).map_err(guest_err)?;
        // The data buffer: mapped contiguously (loader: physical = virtual; the kernel
        // maps a mapped buffer's pages at their RAM address) or given an address with no
        // mapping at all.
        let mut mapped = Vec::new();
        let data_va = if req.pages.is_empty() {
            0
        } else if req.mapped {
            let (pa, _) = req.pages[0];
            let contiguous = req
                .pages
                .windows(2)
                .all(|w| w[0].0 + u64::from(w[0].1) == w[1].0);
            if !contiguous || pa % 4096 != 0 {
                return Err(HostError::Contract(
                    "a mapped buffer must be one page-aligned run".into(),
                ));
            }
            let len = u64::from(req.len()).next_multiple_of(4096);
            self.map_ram(guest, "SRB buffer", pa, len)?;
            mapped.push((self.ram_va(pa), len));
            self.ram_va(pa)
        } else {
            let va = self.unmapped_next;
            self.unmapped_next += u64::from(req.len()).next_multiple_of(4096) + 4096;
            va
        };
        s.set_ptr(guest, "DataBuffer", data_va);
        Ok(InFlight {
            id,
            function: SRB_FUNCTION_EXECUTE_SCSI,
            srb,
            sense,
            mapped,
            req,
            started_ns: self.clock.now_ns(),
            done: None,
        })
    }

    /// An SRB of another function than EXECUTE_SCSI, with its mapped data buffer of
    /// `len` bytes at `buffer` (port structures), put in flight.
    fn function_srb(
        &mut self,
        guest: &mut Guest,
        id: u64,
        function: u8,
        buffer: u64,
        len: u64,
    ) -> Result<u64, HostError> {
        let l = SCSI_REQUEST_BLOCK::LAYOUT;
        let size = At::size(&l, self.arch);
        let srb = self.heap_alloc(guest, size)?;
        let s = At::new(l, srb);
        s.set_u16(guest, "Length", size as u16);
        s.set_u8(guest, "Function", function);
        s.set_u8(guest, "SrbStatus", SRB_STATUS_PENDING);
        s.set_u32(guest, "SrbFlags", SRB_FLAGS_DATA_IN);
        s.set_u32(guest, "DataTransferLength", len as u32);
        s.set_u32(guest, "TimeOutValue", 10);
        s.set_ptr(guest, "DataBuffer", buffer);
        self.in_flight.push(InFlight {
            id,
            function,
            srb,
            sense: 0,
            mapped: Vec::new(),
            req: SrbRequest {
                cdb: Vec::new(),
                lun: 0,
                dir: Dir::In,
                pages: Vec::new(),
                mapped: true,
            },
            started_ns: self.clock.now_ns(),
            done: None,
        });
        Ok(srb)
    }

    /// Reads back an SRB the driver completed.
    fn complete_srb(&mut self, guest: &mut Guest, srb: u64) -> Result<(), HostError> {
        let Some(f) = self.in_flight.iter_mut().find(|f| f.srb == srb) else {
            return Err(HostError::Contract(format!(
                "RequestComplete for SRB {srb:#x}, which is not in flight (completed twice?)"
            )));
        };
        if f.done.is_some() {
            return Err(HostError::Contract(format!("SRB {srb:#x} completed twice")));
        }
        let s = At::new(SCSI_REQUEST_BLOCK::LAYOUT, srb);
        let status = s.u8(guest, "SrbStatus");
        let sense = if status & 0x80 != 0 && f.sense != 0 {
            let n = s.u8(guest, "SenseInfoBufferLength").min(18) as usize;
            guest.read_vec(f.sense, n).map_err(guest_err)?
        } else {
            Vec::new()
        };
        f.done = Some(Completed {
            id: f.id,
            srb_status: status,
            scsi_status: s.u8(guest, "ScsiStatus"),
            transferred: s.u32(guest, "DataTransferLength"),
            sense,
            latency_ns: self.clock.now_ns() - f.started_ns,
        });
        Ok(())
    }

    /// Moves completed SRBs out of flight (unmapping their buffers); BUSY ones are
    /// requeued.
    fn reap(&mut self, guest: &mut Guest) -> Result<(), HostError> {
        let now = self.clock.now_ns();
        let mut i = 0;
        while i < self.in_flight.len() {
            if self.in_flight[i].done.is_none() {
                i += 1;
                continue;
            }
            let f = self.in_flight.remove(i);
            for (va, len) in &f.mapped {
                guest.unmap(*va, *len).map_err(guest_err)?;
            }
            let Some(done) = f.done else { continue };
            if self.env == Env::Kernel
                && f.function == SRB_FUNCTION_EXECUTE_SCSI
                && done.srb_status & 0x3F == SRB_STATUS_BUSY
            {
                self.figures.busy_requeues += 1;
                self.queue.push_back((f.id, f.req, now + BUSY_RETRY_NS));
                continue;
            }
            if done.srb_status & 0x3F == 1 {
                self.figures.bytes += u64::from(done.transferred);
            }
            self.completed.push(done);
        }
        Ok(())
    }

    fn import(&mut self, guest: &mut Guest, f: Func, a: &mut ArgReader) -> Result<u64, RunError> {
        let refuse = |name: &str, what: String| RunError::Import {
            name: name.into(),
            what,
        };
        match f {
            Func::Initialize => {
                let _a1 = a.ptr(guest);
                let _a2 = a.ptr(guest);
                let init = a.ptr(guest);
                let _ctx = a.ptr(guest);
                self.initialize(guest, init)
            }
            Func::GetBusData => {
                let _ext = a.ptr(guest);
                let kind = a.u32(guest);
                let _bus = a.u32(guest);
                let _slot = a.u32(guest);
                let buf = a.ptr(guest);
                let len = a.u32(guest);
                if !self.config_space_allowed(guest, "GetBusData") {
                    return Ok(0);
                }
                if kind != PCI_CONFIGURATION {
                    return Ok(0);
                }
                let space = self.dev.config_space();
                let n = (len as usize).min(space.len());
                guest
                    .write(buf, &space[..n])
                    .map_err(|e| refuse("GetBusData", e))?;
                Ok(n as u64)
            }
            Func::SetBusDataByOffset => {
                let _ext = a.ptr(guest);
                let kind = a.u32(guest);
                let _bus = a.u32(guest);
                let _slot = a.u32(guest);
                let buf = a.ptr(guest);
                let offset = a.u32(guest);
                let len = a.u32(guest);
                if !self.config_space_allowed(guest, "SetBusDataByOffset") {
                    return Ok(0);
                }
                if kind != PCI_CONFIGURATION || offset >= 256 {
                    return Ok(0);
                }
                let n = (len as usize).min(256 - offset as usize);
                let data = guest
                    .read_vec(buf, n)
                    .map_err(|e| refuse("SetBusDataByOffset", e))?;
                let written = self.dev.config_write(offset as usize, &data);
                Ok(written as u64)
            }
            Func::GetDeviceBase => {
                let _ext = a.ptr(guest);
                let _bus_type = a.u32(guest);
                let _bus = a.u32(guest);
                let pa = a.u64(guest);
                let len = a.u32(guest);
                let io = a.u32(guest) & 0xFF;
                let firmware = self.firmware.len() as u64;
                if io == 0 && len > 0 && pa < firmware && u64::from(len) <= firmware - pa {
                    return self
                        .map_firmware(guest, pa, u64::from(len))
                        .map_err(|e| refuse("GetDeviceBase", e.to_string()));
                }
                if io != 0 || pa != self.dev.bar0() || len > BAR0_LEN || len == 0 {
                    self.breaches.push(format!(
                        "GetDeviceBase({pa:#x}, {len:#x}, io {io}) is not BAR0"
                    ));
                    return Ok(0);
                }
                if let Some(va) = self.bar_mapped {
                    return Ok(va);
                }
                let va = match self.env {
                    Env::Loader => pa,
                    _ => self.map.bar_va,
                };
                let (rd, wr) = (self.dev.clone(), self.dev.clone());
                guest
                    .map_mmio(
                        "BAR0",
                        va,
                        u64::from(BAR0_LEN),
                        move |off, size| mmio_read(&rd, off as usize, size),
                        move |off, size, v| mmio_write(&wr, off as usize, size, v),
                    )
                    .map_err(|e| refuse("GetDeviceBase", e))?;
                self.bar_mapped = Some(va);
                Ok(va)
            }
            Func::FreeDeviceBase => {
                let _ext = a.ptr(guest);
                let base = a.ptr(guest);
                if let Some(i) = self.firmware_windows.iter().position(|w| w.base == base) {
                    let w = self.firmware_windows.remove(i);
                    guest
                        .unmap(w.page_va, w.page_len)
                        .map_err(|e| refuse("FreeDeviceBase", e))?;
                } else if self.bar_mapped == Some(base) {
                    guest
                        .unmap(base, u64::from(BAR0_LEN))
                        .map_err(|e| refuse("FreeDeviceBase", e))?;
                    self.bar_mapped = None;
                } else {
                    self.breaches
                        .push(format!("FreeDeviceBase({base:#x}) of nothing mapped"));
                }
                Ok(0)
            }
            Func::LogError => {
                let _ext = a.ptr(guest);
                let _srb = a.ptr(guest);
                let _path = a.u32(guest);
                let _target = a.u32(guest);
                let _lun = a.u32(guest);
                let code = a.u32(guest);
                let unique = a.u32(guest);
                self.log.push(LogEntry {
                    error_code: code,
                    unique_id: unique,
                    at_ns: self.clock.now_ns(),
                });
                Ok(0)
            }
            Func::Notification => self.notification(guest, a),
            Func::GetUncachedExtension => {
                let _ext = a.ptr(guest);
                let _config = a.ptr(guest);
                let len = a.u32(guest);
                if self.env == Env::Dump {
                    self.breaches.push(
                        "GetUncachedExtension in dump mode (the dump port gives DumpRegion)".into(),
                    );
                    return Ok(0);
                }
                if self.uncached.is_some() {
                    self.breaches
                        .push("GetUncachedExtension called twice".into());
                    return Ok(0);
                }
                let len = u64::from(len).next_multiple_of(4096);
                let pa = self
                    .alloc_phys(len)
                    .map_err(|e| refuse("GetUncachedExtension", e.to_string()))?;
                self.map_ram(guest, "uncached extension", pa, len)
                    .map_err(|e| refuse("GetUncachedExtension", e.to_string()))?;
                let va = self.ram_va(pa);
                self.uncached = Some(Block { pa, va, len });
                Ok(va)
            }
            Func::GetPhysicalAddress => {
                let _ext = a.ptr(guest);
                let srb = a.ptr(guest);
                let va = a.ptr(guest);
                let plen = a.ptr(guest);
                let (pa, len) = self.physical(srb, va);
                if pa == 0 {
                    self.breaches.push(format!(
                        "GetPhysicalAddress({va:#x}) of memory the port did not give"
                    ));
                }
                if plen != 0 {
                    guest
                        .write_u32(plen, len)
                        .map_err(|e| refuse("GetPhysicalAddress", e))?;
                }
                Ok(pa)
            }
            Func::StallExecution => {
                let us = a.u32(guest);
                let until = self.clock.now_ns() + u64::from(us) * 1000;
                self.world.run_until(until);
                let m = self.dev.take_msix();
                if self.env == Env::Kernel {
                    self.pending_msix.extend(m);
                }
                Ok(0)
            }
            Func::GetScatterGatherList => {
                let _ext = a.ptr(guest);
                let srb = a.ptr(guest);
                self.sg_list(guest, srb)
                    .map_err(|e| refuse("GetScatterGatherList", e.to_string()))
            }
            Func::Busy => {
                let _ext = a.ptr(guest);
                let n = a.u32(guest);
                // Held until that many requests complete; modelled as a short hold.
                self.busy_until_ns = self.clock.now_ns() + BUSY_RETRY_NS * u64::from(n.max(1));
                Ok(1)
            }
            Func::Ready => {
                self.busy_until_ns = 0;
                Ok(1)
            }
            Func::Pause => {
                let _ext = a.ptr(guest);
                let secs = a.u32(guest);
                self.paused_until_ns = self.clock.now_ns() + u64::from(secs) * 1_000_000_000;
                Ok(1)
            }
            Func::Resume => {
                self.paused_until_ns = 0;
                Ok(1)
            }
        }
    }

    /// `GetDeviceBase` of firmware memory: the pages holding `pa..pa + len`, read-only,
    /// at a fresh virtual address.
    fn map_firmware(&mut self, guest: &mut Guest, pa: u64, len: u64) -> Result<u64, HostError> {
        let entry = guest.current_entry().unwrap_or_default();
        if entry != "HwFindAdapter" {
            self.breaches.push(format!(
                "GetDeviceBase of firmware memory under {entry}, not HwFindAdapter"
            ));
            return Ok(0);
        }
        let first = pa & !0xFFF;
        let end = (pa + len)
            .next_multiple_of(4096)
            .min(self.firmware.len() as u64);
        let page_len = end - first;
        let page_va = self.firmware_next_va;
        // A guard page between windows: a read past one faults.
        self.firmware_next_va += page_len + 4096;
        guest
            .map(
                "firmware memory (read-only)",
                page_va,
                page_len,
                Prot::READ | Prot::WRITE,
            )
            .map_err(guest_err)?;
        guest
            .write(page_va, &self.firmware[first as usize..end as usize])
            .map_err(guest_err)?;
        guest
            .protect(page_va, page_len, Prot::READ)
            .map_err(guest_err)?;
        let base = page_va + (pa - first);
        self.firmware_windows.push(FirmwareWindow {
            base,
            page_va,
            page_len,
        });
        self.figures.firmware_maps += 1;
        self.figures.firmware_bytes += len;
        Ok(base)
    }

    fn physical(&self, srb: u64, va: u64) -> (u64, u32) {
        for b in [self.uncached, self.dump_region].into_iter().flatten() {
            if (b.va..b.va + b.len).contains(&va) {
                return (b.pa + (va - b.va), (b.len - (va - b.va)) as u32);
            }
        }
        if let Some(f) = self.in_flight.iter().find(|f| f.srb == srb && srb != 0) {
            let s_va = f.mapped.first().map(|m| m.0);
            let base = s_va.unwrap_or(0);
            if base != 0 && (base..base + u64::from(f.req.len())).contains(&va) {
                let pa = self.ram_pa(va).unwrap_or(0);
                return (pa, (base + u64::from(f.req.len()) - va) as u32);
            }
        }
        (0, 0)
    }

    fn sg_list(&mut self, guest: &mut Guest, srb: u64) -> Result<u64, HostError> {
        let arch = self.arch;
        let Some(f) = self.in_flight.iter().find(|f| f.srb == srb) else {
            return Ok(0);
        };
        // Adjacent pages merge into one element, as the HAL's DMA adapter does.
        let mut elems: Vec<(u64, u32)> = Vec::new();
        for &(pa, len) in &f.req.pages {
            match elems.last_mut() {
                Some(last) if last.0 + u64::from(last.1) == pa => last.1 += len,
                _ => elems.push((pa, len)),
            }
        }
        let head = At::size(&STOR_SCATTER_GATHER_LIST::LAYOUT, arch);
        let el = At::size(&STOR_SCATTER_GATHER_ELEMENT::LAYOUT, arch);
        let list = self.heap_alloc(guest, head + el * elems.len() as u64)?;
        let l = At::new(STOR_SCATTER_GATHER_LIST::LAYOUT, list);
        l.set_u32(guest, "NumberOfElements", elems.len() as u32);
        for (i, (pa, len)) in elems.iter().enumerate() {
            let e = At::new(
                STOR_SCATTER_GATHER_ELEMENT::LAYOUT,
                list + head + el * i as u64,
            );
            e.set_u64(guest, "PhysicalAddress", *pa);
            e.set_u32(guest, "Length", *len);
        }
        Ok(list)
    }

    fn notification(&mut self, guest: &mut Guest, a: &mut ArgReader) -> Result<u64, RunError> {
        let kind = a.u32(guest);
        let refuse = |what: String| RunError::Import {
            name: "Notification".into(),
            what,
        };
        match kind {
            // RequestComplete (ext, srb)
            0 => {
                let _ext = a.ptr(guest);
                let srb = a.ptr(guest);
                self.complete_srb(guest, srb)
                    .map_err(|e| refuse(e.to_string()))?;
                Ok(0)
            }
            // NextRequest, NextLuRequest
            1 | 2 => Ok(0),
            // RequestTimerCall (ext, routine, microseconds)
            6 => {
                let _ext = a.ptr(guest);
                let routine = a.ptr(guest);
                let us = a.u32(guest);
                match self.env {
                    Env::Loader => {}
                    Env::Dump => self
                        .breaches
                        .push("RequestTimerCall in dump mode (no timers there)".into()),
                    Env::Kernel => {
                        self.timer = (us != 0 && routine != 0)
                            .then(|| (self.clock.now_ns() + u64::from(us) * 1000, routine));
                    }
                }
                Ok(0)
            }
            // EnablePassiveInitialization (ext, routine) -> BOOLEAN
            0x1000 => {
                let _ext = a.ptr(guest);
                let routine = a.ptr(guest);
                if self.env != Env::Kernel {
                    self.breaches
                        .push("EnablePassiveInitialization outside the kernel".into());
                    return Ok(0);
                }
                self.passive_init = Some(routine);
                Ok(1)
            }
            // InitializeDpc (ext, dpc, routine)
            0x1001 => {
                let _ext = a.ptr(guest);
                let dpc = a.ptr(guest);
                let routine = a.ptr(guest);
                if self.env != Env::Kernel {
                    self.breaches
                        .push("InitializeDpc outside the kernel".into());
                    return Ok(0);
                }
                self.dpcs.insert(dpc, routine);
                Ok(0)
            }
            // IssueDpc (ext, dpc, arg1, arg2) -> BOOLEAN
            0x1002 => {
                let _ext = a.ptr(guest);
                let dpc = a.ptr(guest);
                let a1 = a.ptr(guest);
                let a2 = a.ptr(guest);
                if self.env != Env::Kernel || !self.dpcs.contains_key(&dpc) {
                    self.breaches.push("IssueDpc of no initialised DPC".into());
                    return Ok(0);
                }
                if self.dpc_queue.iter().any(|d| d.0 == dpc) {
                    return Ok(0);
                }
                self.dpc_queue.push_back((dpc, a1, a2));
                Ok(1)
            }
            other => Err(refuse(format!(
                "notification type {other:#x} not implemented"
            ))),
        }
    }

    fn initialize(&mut self, guest: &mut Guest, init: u64) -> Result<u64, RunError> {
        let arch = self.arch;
        let l = HW_INITIALIZATION_DATA::LAYOUT;
        let d = At::new(l, init);
        let size = d.u32(guest, "HwInitializationDataSize");
        let full = At::size(&l, arch) as u32;
        let scsiport = At::offset(&l, "HwBuildIo", arch) as u32;
        let legacy = At::offset(&l, "HwFreeAdapterResources", arch) as u32;
        let ok = match self.flavour {
            Flavour::Scsiport => size == scsiport,
            Flavour::Storport => size == full || size == legacy,
        };
        if !ok {
            return Ok(STATUS_REVISION_MISMATCH);
        }
        // Scsiport matches adapters by vendor and device ID strings.
        if self.flavour == Flavour::Scsiport {
            let ven = guest
                .read_vec(
                    d.ptr(guest, "VendorId"),
                    usize::from(d.u16(guest, "VendorIdLength")),
                )
                .unwrap_or_default();
            let dev = guest
                .read_vec(
                    d.ptr(guest, "DeviceId"),
                    usize::from(d.u16(guest, "DeviceIdLength")),
                )
                .unwrap_or_default();
            let space = self.dev.config_space();
            let want_ven = format!("{:04x}", u16::from_le_bytes([space[0], space[1]]));
            let want_dev = format!("{:04x}", u16::from_le_bytes([space[2], space[3]]));
            if !String::from_utf8_lossy(&ven).eq_ignore_ascii_case(&want_ven)
                || !String::from_utf8_lossy(&dev).eq_ignore_ascii_case(&want_dev)
            {
                return Ok(STATUS_NO_SUCH_DEVICE);
            }
        }
        let hw = HwInit {
            size,
            initialize: d.ptr(guest, "HwInitialize"),
            start_io: d.ptr(guest, "HwStartIo"),
            interrupt: d.ptr(guest, "HwInterrupt"),
            find_adapter: d.ptr(guest, "HwFindAdapter"),
            reset_bus: d.ptr(guest, "HwResetBus"),
            adapter_control: d.ptr(guest, "HwAdapterControl"),
            build_io: if self.flavour == Flavour::Storport {
                d.ptr(guest, "HwBuildIo")
            } else {
                0
            },
            device_extension_size: d.u32(guest, "DeviceExtensionSize"),
            srb_extension_size: d.u32(guest, "SrbExtensionSize"),
            map_buffers: d.u8(guest, "MapBuffers"),
            feature_support: if self.flavour == Flavour::Storport && size == full {
                d.u32(guest, "FeatureSupport")
            } else {
                0
            },
        };
        self.hw = Some(hw);
        if self.env != Env::Loader {
            return Ok(STATUS_SUCCESS);
        }
        // The loader finds and initialises the adapter right here.
        if self.found {
            return Ok(STATUS_NO_SUCH_DEVICE);
        }
        let (found, _) = self.find_adapter(guest, hw).map_err(|e| RunError::Import {
            name: "ScsiPortInitialize".into(),
            what: e.to_string(),
        })?;
        if !found {
            return Ok(STATUS_NO_SUCH_DEVICE);
        }
        let before = guest.instructions();
        let devext = self.devext;
        let ok = guest.call(self, "HwInitialize", hw.initialize, &[Arg::Ptr(devext)])?;
        self.figures.instructions += guest.instructions() - before;
        if ok & 0xFF == 0 {
            self.found = false;
            return Ok(STATUS_NO_SUCH_DEVICE);
        }
        Ok(STATUS_SUCCESS)
    }
}

/// A register read as the CPU sees it: mlx5 registers are big-endian, so the bytes of
/// the model's value are stored most significant first and the CPU's little-endian load
/// sees them swapped.
fn mmio_read(dev: &Mlx5Function, off: usize, size: usize) -> u64 {
    match size {
        4 => u64::from(dev.read32(off).swap_bytes()),
        8 => {
            let hi = dev.read32(off);
            let lo = dev.read32(off + 4);
            (u64::from(hi) << 32 | u64::from(lo)).swap_bytes()
        }
        _ => {
            let word = dev.read32(off & !3).to_be_bytes();
            let start = off & 3;
            let mut v = 0u64;
            for i in 0..size.min(4 - start) {
                v |= u64::from(word[start + i]) << (8 * i);
            }
            v
        }
    }
}

fn mmio_write(dev: &Mlx5Function, off: usize, size: usize, v: u64) {
    match size {
        4 => dev.write32(off, (v as u32).swap_bytes()),
        8 => dev.write64(off, v.swap_bytes()),
        // mlx5 registers are written 32 or 64 bits at a time; a narrower store is a
        // driver bug the device model reports as a write it does not model.
        _ => dev.write32(off | 1, v as u32),
    }
}

impl Imports for Port {
    fn call_import(
        &mut self,
        guest: &mut Guest,
        index: usize,
        args: &mut ArgReader,
    ) -> Result<u64, RunError> {
        let f = self.imports[index].1;
        self.import(guest, f, args)
    }

    fn convention(&self, index: usize) -> (Conv, u32) {
        match self.imports[index] {
            (_, Func::Notification, _) => (Conv::Cdecl, 0),
            (_, _, slots) => (Conv::Stdcall, slots),
        }
    }

    fn import_name(&self, index: usize) -> String {
        self.imports[index].0.clone()
    }
}
