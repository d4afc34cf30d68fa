//! The runtime the driver image carries itself: NTLDR resolves only its scsiport
//! emulation and the image may import nothing else, so `memcpy`, `memmove`, `memset` and
//! `memcmp` (which the compiler emits calls to) are defined here, and a panic ends in
//! an invalid-opcode trap the kernel turns into a bug check.
//!
//! The memory routines are written in assembly (see `mem.rs` for the x86_64 ones and the
//! conventions they keep; the i686 ones below take cdecl stack arguments and preserve
//! `edi`/`esi`). Being defined in assembly, they are not exported from the image.

use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

#[cfg(target_arch = "x86_64")]
super::mem::x86_64_mem_routines!("memcpy", "memmove", "memset", "memcmp");

#[cfg(target_arch = "x86")]
core::arch::global_asm!(
    ".text",
    ".globl _memcpy",
    "_memcpy:",
    "    push edi",
    "    push esi",
    "    mov edi, [esp + 12]",
    "    mov esi, [esp + 16]",
    "    mov ecx, [esp + 20]",
    "    mov eax, edi",
    "    rep movsb",
    "    pop esi",
    "    pop edi",
    "    ret",
    "",
    ".globl _memmove",
    "_memmove:",
    "    push edi",
    "    push esi",
    "    mov edi, [esp + 12]",
    "    mov esi, [esp + 16]",
    "    mov ecx, [esp + 20]",
    "    mov eax, edi",
    "    cmp edi, esi",
    "    jbe 2f",
    "    lea edx, [esi + ecx]",
    "    cmp edi, edx",
    "    jae 2f",
    "    lea esi, [esi + ecx - 1]",
    "    lea edi, [edi + ecx - 1]",
    "    std",
    "    rep movsb",
    "    cld",
    "    jmp 3f",
    "2:  rep movsb",
    "3:  pop esi",
    "    pop edi",
    "    ret",
    "",
    ".globl _memset",
    "_memset:",
    "    push edi",
    "    mov edi, [esp + 8]",
    "    mov eax, [esp + 12]",
    "    mov ecx, [esp + 16]",
    "    mov edx, edi",
    "    rep stosb",
    "    mov eax, edx",
    "    pop edi",
    "    ret",
    "",
    ".globl _memcmp",
    "_memcmp:",
    "    push edi",
    "    push esi",
    "    mov esi, [esp + 12]",
    "    mov edi, [esp + 16]",
    "    mov ecx, [esp + 20]",
    "    xor eax, eax",
    "    test ecx, ecx",
    "    jz 3f",
    "    repe cmpsb",
    "    je 3f",
    "    movzx eax, byte ptr [esi - 1]",
    "    movzx edx, byte ptr [edi - 1]",
    "    sub eax, edx",
    "3:  pop esi",
    "    pop edi",
    "    ret",
);

/// Line of the last panic, for a debugger or crash dump (0: none).
static PANIC_LINE: AtomicU32 = AtomicU32::new(0);
/// Source file of the last panic (not NUL-terminated; null: none).
static PANIC_FILE: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());

/// A panic is a bug in the driver: record where it happened and trap. Parsing and I/O
/// paths are written so that no input can reach this.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    if let Some(location) = info.location() {
        PANIC_LINE.store(location.line(), Ordering::Relaxed);
        PANIC_FILE.store(location.file().as_ptr().cast_mut(), Ordering::Relaxed);
    }
    // SAFETY: `ud2` raises #UD, which the kernel reports as a bug check whose trap
    // frame points here; nothing after it runs.
    unsafe { core::arch::asm!("ud2", options(noreturn, nomem, nostack)) }
}
