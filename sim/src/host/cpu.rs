//! The emulated CPU: unicorn's x86 (i686 protected mode or x86_64 long mode, flat), the
//! guest's memory map, calls into guest code and calls out of it.
//!
//! Policing is by construction: only what the driver may touch is mapped (its image, its
//! stack, its extensions, the uncached extension or DumpRegion, mapped SRB buffers, the
//! port's structures it is handed and BAR0). Any other access, a write to a read-only
//! section or a fetch outside the image stops the run with a [`Violation`] naming the
//! address, the instruction, the mode and the driver entry point it happened under.
//!
//! Calls out (imports): every import resolves to a one-byte `int3` in the thunk page. The
//! interrupt stops the CPU; the host reads the arguments by the import's convention,
//! runs its implementation (which may call back into the driver: a nested
//! [`Guest::call`], with the CPU state saved around it), writes the result, pops what
//! the convention says and resumes at the return address. Calls in: arguments are placed
//! per convention and the return address is a sentinel `int3`.

use std::cell::RefCell;
use std::rc::Rc;

use unicorn_engine::unicorn_const::{Arch as UcArch, HookType, MemType, Mode, Prot};
use unicorn_engine::{RegisterX86, Unicorn};

use super::Arch;

/// Guest address of the page holding import thunks and the return sentinel.
pub const THUNK_PAGE: u64 = 0x7FFE_0000;
/// Bytes per import thunk.
const THUNK_STRIDE: u64 = 16;
/// The return sentinel's offset in the thunk page.
const SENTINEL: u64 = THUNK_PAGE + 0xFF0;
/// Most imports an image may have.
pub const MAX_IMPORTS: usize = (0xFF0 / THUNK_STRIDE) as usize;
/// Instructions one top-level call may execute before it is stopped as a runaway.
const RUNAWAY: u64 = 2_000_000_000;

/// How an access broke the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Fetch,
    /// A write to a read-only mapping (an image section that is not writable).
    WriteProtected,
    /// An instruction fetch from memory that is not executable.
    FetchProtected,
}

/// A memory access outside what the driver may touch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub address: u64,
    pub size: usize,
    pub access: Access,
    /// The instruction that made it.
    pub pc: u64,
    /// The driver entry point the host had called (innermost).
    pub entry: String,
    /// The environment (loader, kernel, dump).
    pub mode: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} mode: {:?} of {} byte(s) at {:#x} by the instruction at {:#x}, under {}",
            self.mode, self.access, self.size, self.address, self.pc, self.entry
        )
    }
}

/// Why a call into the guest did not return normally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunError {
    Violation(Violation),
    /// The CPU stopped for another reason (an invalid opcode: the driver's panic path is
    /// `ud2`; a division fault; an interrupt instruction).
    Fault {
        what: String,
        pc: u64,
        entry: String,
    },
    /// More than [`RUNAWAY`] instructions in one call.
    Runaway {
        entry: String,
    },
    /// An import's implementation refused the call (a bad argument, say).
    Import {
        name: String,
        what: String,
    },
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Violation(v) => write!(f, "memory violation: {v}"),
            RunError::Fault { what, pc, entry } => {
                write!(f, "CPU fault under {entry}: {what} at {pc:#x}")
            }
            RunError::Runaway { entry } => {
                write!(f, "{entry} did not return ({RUNAWAY} instructions)")
            }
            RunError::Import { name, what } => write!(f, "{name}: {what}"),
        }
    }
}

impl std::error::Error for RunError {}

/// What the hooks saw; shared between the hooks and the host.
#[derive(Debug, Default)]
struct HookState {
    stop: Option<Stop>,
    /// Instructions executed inside the driver image.
    instructions: u64,
    /// Instructions at the start of the current top-level call.
    call_start: u64,
    entries: Vec<String>,
    mode: String,
}

#[derive(Clone, Debug)]
enum Stop {
    Returned,
    Import(usize),
    Violation(Violation),
    Fault(String, u64),
    Runaway,
}

/// A calling convention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conv {
    /// i686 `__stdcall` (callee pops) or the x64 convention.
    Stdcall,
    /// i686 `__cdecl` (caller pops; varargs) or the x64 convention.
    Cdecl,
}

/// An argument for a call into the guest.
#[derive(Clone, Copy, Debug)]
pub enum Arg {
    /// A pointer-sized value.
    Ptr(u64),
    /// A 32-bit value (one stack slot on i686, a register on x86_64).
    U32(u32),
}

/// A guest memory region the host mapped.
#[derive(Clone, Debug)]
pub struct Region {
    pub name: String,
    pub base: u64,
    pub len: u64,
}

/// Something that implements the guest's imports.
pub trait Imports {
    /// Runs import `index` (in the order the image's imports were bound), reading its
    /// arguments through `args`; returns the value for `eax`/`rax` (on i686 a 64-bit
    /// result also fills `edx`).
    fn call_import(
        &mut self,
        guest: &mut Guest,
        index: usize,
        args: &mut ArgReader,
    ) -> Result<u64, RunError>;

    /// The convention and (i686 stdcall) the number of 32-bit stack slots the callee
    /// pops, for import `index`.
    fn convention(&self, index: usize) -> (Conv, u32);

    /// The import's name, for reports.
    fn import_name(&self, index: usize) -> String;
}

/// Reads an import's arguments in order, by the guest's convention.
#[derive(Debug)]
pub struct ArgReader {
    arch: Arch,
    /// Stack pointer at the import's entry (pointing at the return address).
    sp: u64,
    /// Next argument slot (x86_64: 0-3 are registers).
    slot: u64,
    regs: [u64; 4],
}

impl ArgReader {
    fn new(guest: &Guest) -> ArgReader {
        let sp = guest.sp();
        let regs = match guest.arch {
            Arch::I686 => [0; 4],
            Arch::X86_64 => [
                guest.reg(RegisterX86::RCX),
                guest.reg(RegisterX86::RDX),
                guest.reg(RegisterX86::R8),
                guest.reg(RegisterX86::R9),
            ],
        };
        ArgReader {
            arch: guest.arch,
            sp,
            slot: 0,
            regs,
        }
    }

    fn next_slot(&mut self, guest: &Guest) -> u64 {
        let s = self.slot;
        self.slot += 1;
        match self.arch {
            Arch::I686 => u64::from(guest.read_u32(self.sp + 4 + 4 * s).unwrap_or(0)),
            Arch::X86_64 if s < 4 => self.regs[s as usize],
            // Return address, then 32 bytes of home space, then the fifth argument on.
            Arch::X86_64 => guest.read_u64(self.sp + 8 + 8 * s).unwrap_or(0),
        }
    }

    /// A pointer-sized argument.
    pub fn ptr(&mut self, guest: &Guest) -> u64 {
        self.next_slot(guest)
    }

    /// A 32-bit (or smaller) argument.
    pub fn u32(&mut self, guest: &Guest) -> u32 {
        self.next_slot(guest) as u32
    }

    /// A 64-bit argument passed by value (two slots on i686, low half first).
    pub fn u64(&mut self, guest: &Guest) -> u64 {
        match self.arch {
            Arch::I686 => {
                let lo = self.next_slot(guest);
                let hi = self.next_slot(guest);
                hi << 32 | lo
            }
            Arch::X86_64 => self.next_slot(guest),
        }
    }
}

/// The guest CPU and its memory.
pub struct Guest {
    uc: Unicorn<'static, ()>,
    pub arch: Arch,
    hooks: Rc<RefCell<HookState>>,
    regions: Vec<Region>,
}

impl std::fmt::Debug for Guest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guest")
            .field("arch", &self.arch)
            .field("regions", &self.regions)
            .finish()
    }
}

fn uc_err(e: unicorn_engine::unicorn_const::uc_error) -> String {
    format!("unicorn: {e:?}")
}

impl Guest {
    /// A CPU of `arch` with the thunk page mapped and the policing hooks installed.
    /// `imports` thunks are laid out (each an `int3`).
    pub fn new(arch: Arch, mode: &str) -> Result<Guest, String> {
        let uc_mode = match arch {
            Arch::I686 => Mode::MODE_32,
            Arch::X86_64 => Mode::MODE_64,
        };
        let mut uc = Unicorn::new(UcArch::X86, uc_mode).map_err(uc_err)?;
        let hooks = Rc::new(RefCell::new(HookState {
            mode: mode.to_string(),
            ..HookState::default()
        }));
        uc.mem_map(THUNK_PAGE, 0x1000, Prot::READ | Prot::EXEC)
            .map_err(uc_err)?;
        uc.mem_write(THUNK_PAGE, &[0xCC; 0x1000]).map_err(uc_err)?;

        let h = hooks.clone();
        uc.add_intr_hook(move |uc, intno| {
            let pc = uc.pc_read().unwrap_or(0);
            let mut st = h.borrow_mut();
            // int3 leaves the PC after the breakpoint.
            let at = pc.wrapping_sub(1);
            st.stop = Some(if intno == 3 && at == SENTINEL {
                Stop::Returned
            } else if intno == 3 && (THUNK_PAGE..SENTINEL).contains(&at) {
                Stop::Import(((at - THUNK_PAGE) / THUNK_STRIDE) as usize)
            } else {
                Stop::Fault(format!("interrupt {intno}"), at)
            });
            drop(st);
            let _ = uc.emu_stop();
        })
        .map_err(uc_err)?;

        let h = hooks.clone();
        uc.add_insn_invalid_hook(move |uc| {
            let pc = uc.pc_read().unwrap_or(0);
            h.borrow_mut().stop = Some(Stop::Fault(
                "invalid opcode (the driver's panic path is ud2)".into(),
                pc,
            ));
            let _ = uc.emu_stop();
            false
        })
        .map_err(uc_err)?;

        let h = hooks.clone();
        uc.add_mem_hook(
            HookType::MEM_UNMAPPED | HookType::MEM_PROT,
            0,
            u64::MAX,
            move |uc, kind, address, size, _value| {
                let pc = uc.pc_read().unwrap_or(0);
                let access = match kind {
                    MemType::READ_UNMAPPED => Access::Read,
                    MemType::WRITE_UNMAPPED => Access::Write,
                    MemType::FETCH_UNMAPPED => Access::Fetch,
                    MemType::WRITE_PROT => Access::WriteProtected,
                    MemType::FETCH_PROT => Access::FetchProtected,
                    _ => Access::Read,
                };
                let mut st = h.borrow_mut();
                let v = Violation {
                    address,
                    size,
                    access,
                    pc,
                    entry: st.entries.last().cloned().unwrap_or_default(),
                    mode: st.mode.clone(),
                };
                st.stop = Some(Stop::Violation(v));
                false
            },
        )
        .map_err(uc_err)?;

        Ok(Guest {
            uc,
            arch,
            hooks,
            regions: Vec::new(),
        })
    }

    /// The guest address of import `index`'s thunk.
    pub fn thunk(index: usize) -> u64 {
        THUNK_PAGE + index as u64 * THUNK_STRIDE
    }

    /// Counts instructions executed in `[base, base + len)` (the driver image).
    pub fn count_instructions_in(&mut self, base: u64, len: u64) -> Result<(), String> {
        let h = self.hooks.clone();
        self.uc
            .add_code_hook(base, base + len - 1, move |uc, _addr, _size| {
                let mut st = h.borrow_mut();
                st.instructions += 1;
                if st.instructions - st.call_start > RUNAWAY {
                    st.stop = Some(Stop::Runaway);
                    drop(st);
                    let _ = uc.emu_stop();
                }
            })
            .map_err(uc_err)?;
        Ok(())
    }

    /// Instructions executed in the driver image so far.
    pub fn instructions(&self) -> u64 {
        self.hooks.borrow().instructions
    }

    /// Sets the environment name used in violation reports.
    pub fn set_mode(&mut self, mode: &str) {
        self.hooks.borrow_mut().mode = mode.to_string();
    }

    /// Maps `len` bytes (page multiple) of fresh zeroed memory.
    pub fn map(&mut self, name: &str, base: u64, len: u64, prot: Prot) -> Result<(), String> {
        self.uc
            .mem_map(base, len, prot)
            .map_err(|e| format!("mapping {name} at {base:#x}+{len:#x}: {e:?}"))?;
        self.regions.push(Region {
            name: name.into(),
            base,
            len,
        });
        Ok(())
    }

    /// Maps host memory (shared with the device model) at guest address `base`.
    ///
    /// # Safety
    /// `ptr` points at `len` bytes that stay allocated, and are not moved, until
    /// [`Guest::unmap`] for this range or the guest is dropped.
    pub unsafe fn map_host(
        &mut self,
        name: &str,
        base: u64,
        len: u64,
        ptr: *mut u8,
    ) -> Result<(), String> {
        // SAFETY: the caller's contract keeps the block alive and in place while mapped.
        unsafe {
            self.uc
                .mem_map_ptr(base, len, Prot::READ | Prot::WRITE, ptr.cast())
        }
        .map_err(|e| format!("mapping {name} at {base:#x}+{len:#x}: {e:?}"))?;
        self.regions.push(Region {
            name: name.into(),
            base,
            len,
        });
        Ok(())
    }

    /// Maps a device's registers: reads and writes of `base..base+len` go to the
    /// callbacks with the offset, access size and (writes) the value as the CPU stored
    /// it (little-endian load of the bytes).
    pub fn map_mmio(
        &mut self,
        name: &str,
        base: u64,
        len: u64,
        read: impl FnMut(u64, usize) -> u64 + 'static,
        write: impl FnMut(u64, usize, u64) + 'static,
    ) -> Result<(), String> {
        let mut read = read;
        let mut write = write;
        self.uc
            .mmio_map(
                base,
                len,
                Some(move |_: &mut Unicorn<'_, ()>, off: u64, size: usize| read(off, size)),
                Some(
                    move |_: &mut Unicorn<'_, ()>, off: u64, size: usize, v: u64| {
                        write(off, size, v)
                    },
                ),
            )
            .map_err(|e| format!("mapping {name} at {base:#x}: {e:?}"))?;
        self.regions.push(Region {
            name: name.into(),
            base,
            len,
        });
        Ok(())
    }

    /// Removes a mapping.
    pub fn unmap(&mut self, base: u64, len: u64) -> Result<(), String> {
        self.uc
            .mem_unmap(base, len)
            .map_err(|e| format!("unmapping {base:#x}+{len:#x}: {e:?}"))?;
        self.regions.retain(|r| r.base != base);
        Ok(())
    }

    /// Changes a mapping's protection.
    pub fn protect(&mut self, base: u64, len: u64, prot: Prot) -> Result<(), String> {
        self.uc
            .mem_protect(base, len, prot)
            .map_err(|e| format!("protecting {base:#x}+{len:#x}: {e:?}"))
    }

    /// The regions mapped now.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    pub fn write(&mut self, addr: u64, bytes: &[u8]) -> Result<(), String> {
        self.uc
            .mem_write(addr, bytes)
            .map_err(|e| format!("host write at {addr:#x}+{}: {e:?}", bytes.len()))
    }

    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), String> {
        self.uc
            .mem_read(addr, buf)
            .map_err(|e| format!("host read at {addr:#x}+{}: {e:?}", buf.len()))
    }

    pub fn read_vec(&self, addr: u64, len: usize) -> Result<Vec<u8>, String> {
        let mut v = vec![0; len];
        self.read(addr, &mut v)?;
        Ok(v)
    }

    pub fn read_u8(&self, addr: u64) -> Result<u8, String> {
        let mut b = [0; 1];
        self.read(addr, &mut b)?;
        Ok(b[0])
    }

    pub fn read_u16(&self, addr: u64) -> Result<u16, String> {
        let mut b = [0; 2];
        self.read(addr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    pub fn read_u32(&self, addr: u64) -> Result<u32, String> {
        let mut b = [0; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    pub fn read_u64(&self, addr: u64) -> Result<u64, String> {
        let mut b = [0; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// A pointer-sized value.
    pub fn read_ptr(&self, addr: u64) -> Result<u64, String> {
        match self.arch {
            Arch::I686 => self.read_u32(addr).map(u64::from),
            Arch::X86_64 => self.read_u64(addr),
        }
    }

    pub fn write_u8(&mut self, addr: u64, v: u8) -> Result<(), String> {
        self.write(addr, &[v])
    }

    pub fn write_u16(&mut self, addr: u64, v: u16) -> Result<(), String> {
        self.write(addr, &v.to_le_bytes())
    }

    pub fn write_u32(&mut self, addr: u64, v: u32) -> Result<(), String> {
        self.write(addr, &v.to_le_bytes())
    }

    pub fn write_u64(&mut self, addr: u64, v: u64) -> Result<(), String> {
        self.write(addr, &v.to_le_bytes())
    }

    pub fn write_ptr(&mut self, addr: u64, v: u64) -> Result<(), String> {
        match self.arch {
            Arch::I686 => self.write_u32(addr, v as u32),
            Arch::X86_64 => self.write_u64(addr, v),
        }
    }

    /// The innermost driver entry point running (None: the driver is not running).
    pub fn current_entry(&self) -> Option<String> {
        self.hooks.borrow().entries.last().cloned()
    }

    /// Bytes in a pointer.
    pub fn ptr_size(&self) -> u64 {
        match self.arch {
            Arch::I686 => 4,
            Arch::X86_64 => 8,
        }
    }

    fn reg(&self, r: RegisterX86) -> u64 {
        self.uc.reg_read(r).unwrap_or(0)
    }

    fn set_reg(&mut self, r: RegisterX86, v: u64) {
        let _ = self.uc.reg_write(r, v);
    }

    fn sp(&self) -> u64 {
        match self.arch {
            Arch::I686 => self.reg(RegisterX86::ESP),
            Arch::X86_64 => self.reg(RegisterX86::RSP),
        }
    }

    fn set_sp(&mut self, v: u64) {
        match self.arch {
            Arch::I686 => self.set_reg(RegisterX86::ESP, v),
            Arch::X86_64 => self.set_reg(RegisterX86::RSP, v),
        }
    }

    /// The stack pointer now (the host reads it for stack high-water marks).
    pub fn stack_pointer(&self) -> u64 {
        self.sp()
    }

    /// Sets the stack pointer before the first call (the top of the stack region).
    pub fn set_stack(&mut self, top: u64) {
        self.set_sp(top);
    }

    /// Calls `func` in the guest with `args` by `conv` and runs until it returns;
    /// imports it makes go to `imports`. `entry` names the call in reports.
    pub fn call(
        &mut self,
        imports: &mut dyn Imports,
        entry: &str,
        func: u64,
        args: &[Arg],
    ) -> Result<u64, RunError> {
        let saved = self.uc.context_init().map_err(|e| RunError::Fault {
            what: uc_err(e),
            pc: func,
            entry: entry.into(),
        })?;
        {
            let mut st = self.hooks.borrow_mut();
            if st.entries.is_empty() {
                st.call_start = st.instructions;
            }
            st.entries.push(entry.to_string());
        }
        let result = self.call_inner(imports, entry, func, args);
        self.hooks.borrow_mut().entries.pop();
        let restore = self.uc.context_restore(&saved);
        let value = result?;
        restore.map_err(|e| RunError::Fault {
            what: uc_err(e),
            pc: func,
            entry: entry.into(),
        })?;
        Ok(value)
    }

    fn call_inner(
        &mut self,
        imports: &mut dyn Imports,
        entry: &str,
        func: u64,
        args: &[Arg],
    ) -> Result<u64, RunError> {
        // Leave room below whatever frame is live, aligned as each ABI wants at a call.
        let mut sp = (self.sp() - 64) & !0xF;
        let fault = |what: String| RunError::Fault {
            what,
            pc: func,
            entry: entry.to_string(),
        };
        match self.arch {
            Arch::I686 => {
                sp -= 4 * args.len() as u64;
                sp &= !0xF;
                for (i, a) in args.iter().enumerate() {
                    let v = match *a {
                        Arg::Ptr(p) => p as u32,
                        Arg::U32(v) => v,
                    };
                    self.write_u32(sp + 4 * i as u64, v).map_err(fault)?;
                }
                sp -= 4;
                self.write_u32(sp, SENTINEL as u32).map_err(fault)?;
            }
            Arch::X86_64 => {
                let stack_args = args.len().saturating_sub(4) as u64;
                // At the call: rsp 16-aligned; return address, 32 bytes home space, then
                // the fifth argument onward.
                sp -= 32 + 8 * stack_args;
                sp &= !0xF;
                for (i, a) in args.iter().enumerate() {
                    let v = match *a {
                        Arg::Ptr(p) => p,
                        Arg::U32(v) => u64::from(v),
                    };
                    match i {
                        0 => self.set_reg(RegisterX86::RCX, v),
                        1 => self.set_reg(RegisterX86::RDX, v),
                        2 => self.set_reg(RegisterX86::R8, v),
                        3 => self.set_reg(RegisterX86::R9, v),
                        _ => self.write_u64(sp + 8 * i as u64, v).map_err(fault)?,
                    }
                }
                sp -= 8;
                self.write_u64(sp, SENTINEL).map_err(fault)?;
            }
        }
        self.set_sp(sp);
        let mut pc = func;
        loop {
            self.hooks.borrow_mut().stop = None;
            let started = self.uc.emu_start(pc, 0, 0, 0);
            let stop = self.hooks.borrow_mut().stop.take();
            let entry_now = || {
                self.hooks
                    .borrow()
                    .entries
                    .last()
                    .cloned()
                    .unwrap_or_default()
            };
            match stop {
                Some(Stop::Returned) => {
                    let v = match self.arch {
                        Arch::I686 => self.reg(RegisterX86::EDX) << 32 | self.reg(RegisterX86::EAX),
                        Arch::X86_64 => self.reg(RegisterX86::RAX),
                    };
                    return Ok(v);
                }
                Some(Stop::Import(index)) => {
                    pc = self.do_import(imports, index)?;
                }
                Some(Stop::Violation(v)) => return Err(RunError::Violation(v)),
                Some(Stop::Fault(what, at)) => {
                    return Err(RunError::Fault {
                        what,
                        pc: at,
                        entry: entry_now(),
                    });
                }
                Some(Stop::Runaway) => return Err(RunError::Runaway { entry: entry_now() }),
                None => {
                    let at = self.uc.pc_read().unwrap_or(0);
                    return Err(RunError::Fault {
                        what: match started {
                            Err(e) => format!("emulation stopped: {e:?}"),
                            Ok(()) => "emulation stopped without a cause".into(),
                        },
                        pc: at,
                        entry: entry_now(),
                    });
                }
            }
        }
    }

    /// Runs import `index` for the guest, whose stack holds the return address; returns
    /// where to resume.
    fn do_import(&mut self, imports: &mut dyn Imports, index: usize) -> Result<u64, RunError> {
        let mut args = ArgReader::new(self);
        let sp = args.sp;
        let value = imports.call_import(self, index, &mut args)?;
        let (conv, slots) = imports.convention(index);
        let bad = |what: String| RunError::Import {
            name: imports.import_name(index),
            what,
        };
        match self.arch {
            Arch::I686 => {
                let ret = u64::from(self.read_u32(sp).map_err(bad)?);
                let pop = match conv {
                    Conv::Stdcall => 4 * u64::from(slots),
                    Conv::Cdecl => 0,
                };
                self.set_reg(RegisterX86::EAX, value & 0xFFFF_FFFF);
                self.set_reg(RegisterX86::EDX, value >> 32);
                self.set_sp(sp + 4 + pop);
                Ok(ret)
            }
            Arch::X86_64 => {
                let ret = self.read_u64(sp).map_err(bad)?;
                self.set_reg(RegisterX86::RAX, value);
                self.set_sp(sp + 8);
                Ok(ret)
            }
        }
    }
}
