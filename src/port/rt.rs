//! The runtime the driver image carries itself: NTLDR resolves only its scsiport
//! emulation and the image may import nothing else, so `memcpy`, `memmove`, `memset` and
//! `memcmp` (which the compiler emits calls to) are defined here, and a panic ends in
//! an invalid-opcode trap the kernel turns into a bug check.
//!
//! The memory routines are written in assembly (see `mem.rs` for the x86_64 ones and the
//! conventions they keep; the i686 ones below take cdecl stack arguments and preserve
//! `edi`/`esi`). Being defined in assembly, they are not exported from the image.

use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

// Two symbols the prebuilt `core` refers to once any of its out-of-line code is linked
// (a bounds-check or length-mismatch panic path, say):
// - `_fltused`, the marker MSVC's CRT defines when floating point is used. Nothing here
//   computes with floats (the i686 check in `cargo xtask check-images` proves there is
//   no x87/SSE instruction); the marker only satisfies the reference.
// - `__CxxFrameHandler3`, the language handler `core`'s unwind tables name (it is built
//   for panic=unwind). These images abort on panic and never unwind a Rust frame; if the
//   kernel's unwinder ever called it, the invalid opcode would stop the machine with a
//   bug check rather than run an unwinder this image does not have.
#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".section .rdata,\"dr\"",
    ".globl _fltused",
    ".p2align 2",
    "_fltused:",
    "    .long 0x9875",
    ".text",
    ".globl __CxxFrameHandler3",
    "__CxxFrameHandler3:",
    "    ud2",
);

#[cfg(target_arch = "x86")]
core::arch::global_asm!(
    ".section .rdata,\"dr\"",
    ".globl __fltused",
    ".p2align 2",
    "__fltused:",
    "    .long 0x9875",
    ".text",
    ".globl ___CxxFrameHandler3",
    "___CxxFrameHandler3:",
    "    ud2",
);

// 64-bit unsigned division and remainder, which the compiler calls on i686 by MSVC's
// names and convention (`_aulldiv`/`_aullrem`: dividend then divisor on the stack, low
// half first, result in edx:eax, the callee pops 16 bytes). The CRT that normally has
// them is not in a driver image. Restoring shift-and-subtract, one quotient bit per
// round: the remainder shifts left through the dividend's top bit, and whenever it
// reaches the divisor (or a bit carried out of it, so it certainly did) the divisor is
// taken off and the quotient bit set. Division by zero never reaches here (Rust checks
// first).
#[cfg(target_arch = "x86")]
core::arch::global_asm!(
    ".text",
    ".globl __aulldiv",
    "__aulldiv:",
    "    push ebx",
    "    push esi",
    "    push edi",
    "    push ebp",
    "    call 9f",
    "    pop ebp",
    "    pop edi",
    "    pop esi",
    "    pop ebx",
    "    ret 16",
    "",
    ".globl __aullrem",
    "__aullrem:",
    "    push ebx",
    "    push esi",
    "    push edi",
    "    push ebp",
    "    call 9f",
    "    mov eax, ebx",
    "    mov edx, ebp",
    "    pop ebp",
    "    pop edi",
    "    pop esi",
    "    pop ebx",
    "    ret 16",
    "",
    // Quotient in edx:eax, remainder in ebp:ebx. Arguments sit above the return
    // address of this call, the four saved registers and the caller's return address.
    "9:",
    "    mov eax, [esp + 24]",
    "    mov edx, [esp + 28]",
    "    mov esi, [esp + 32]",
    "    mov edi, [esp + 36]",
    "    xor ebx, ebx",
    "    xor ebp, ebp",
    "    mov ecx, 64",
    "1:  shl eax, 1",
    "    rcl edx, 1",
    "    rcl ebx, 1",
    "    rcl ebp, 1",
    "    jc 2f",
    "    cmp ebp, edi",
    "    ja 2f",
    "    jb 3f",
    "    cmp ebx, esi",
    "    jb 3f",
    "2:  sub ebx, esi",
    "    sbb ebp, edi",
    "    or eax, 1",
    "3:  dec ecx",
    "    jnz 1b",
    "    ret",
);

// The stack probe the compiler calls before it allocates a frame larger than a page
// (`__chkstk`, MSVC's convention): the kernel's stacks grow through a guard page, so a
// frame that skipped a page could land beyond it. Each page of the new frame is
// touched from the top down. x86_64: the frame size is in `rax`, the caller allocates
// after the call, every register is kept. i686: the size is in `eax`, the probe itself
// moves `esp` down by it and returns through the saved return address (`eax` is
// clobbered, as with MSVC's). No frame of the driver should need this (kernel stacks
// are 12 KiB on i686); `cargo xtask check-images` reports the largest frame.
#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".text",
    ".globl __chkstk",
    "__chkstk:",
    "    push rcx",
    "    push rax",
    "    lea rcx, [rsp + 24]",
    "    mov r10, rcx",
    "    sub r10, rax",
    "1:  sub rcx, 4096",
    "    cmp rcx, r10",
    "    jb 2f",
    "    test byte ptr [rcx], 0",
    "    jmp 1b",
    "2:  test byte ptr [r10], 0",
    "    pop rax",
    "    pop rcx",
    "    ret",
);

#[cfg(target_arch = "x86")]
core::arch::global_asm!(
    ".text",
    ".globl __chkstk",
    "__chkstk:",
    "    push ecx",
    "    lea ecx, [esp + 8]",
    "1:  cmp eax, 4096",
    "    jb 2f",
    "    sub ecx, 4096",
    "    test byte ptr [ecx], 0",
    "    sub eax, 4096",
    "    jmp 1b",
    "2:  sub ecx, eax",
    "    test byte ptr [ecx], 0",
    "    mov eax, esp",
    "    mov esp, ecx",
    "    mov ecx, [eax]",
    "    jmp dword ptr [eax + 4]",
);

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
