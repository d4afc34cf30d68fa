//! `memcpy`, `memmove`, `memset` and `memcmp` for the x86_64 images, in assembly: a Rust
//! loop could be recognised by the optimiser as the very routine it implements and become
//! a call to itself.
//!
//! Microsoft x64 convention: arguments in `rcx`, `rdx`, `r8`; `rdi`/`rsi` are
//! callee-saved and are preserved through `r9`/`r10`. The routines use `rep movsb`,
//! `rep stosb` and `repe cmpsb`, rely on the direction flag being clear on entry (the ABI
//! guarantees it) and clear it again after the one backward copy. The same text is
//! assembled under test names on x86_64 hosts and exercised there through
//! `extern "win64"`; the i686 versions live in `rt.rs`.

/// Emits the routines under the given symbol names.
macro_rules! x86_64_mem_routines {
    ($memcpy:literal, $memmove:literal, $memset:literal, $memcmp:literal) => {
        core::arch::global_asm!(
            ".text",
            concat!(".globl ", $memcpy),
            concat!($memcpy, ":"),
            "    mov rax, rcx",
            "    mov r9, rdi",
            "    mov r10, rsi",
            "    mov rdi, rcx",
            "    mov rsi, rdx",
            "    mov rcx, r8",
            "    rep movsb",
            "    mov rdi, r9",
            "    mov rsi, r10",
            "    ret",
            "",
            concat!(".globl ", $memmove),
            concat!($memmove, ":"),
            "    mov rax, rcx",
            "    mov r9, rdi",
            "    mov r10, rsi",
            "    mov rdi, rcx",
            "    mov rsi, rdx",
            "    mov rcx, r8",
            "    cmp rdi, rsi",
            "    jbe 2f",
            "    lea r11, [rsi + rcx]",
            "    cmp rdi, r11",
            "    jae 2f",
            "    lea rsi, [rsi + rcx - 1]",
            "    lea rdi, [rdi + rcx - 1]",
            "    std",
            "    rep movsb",
            "    cld",
            "    jmp 3f",
            "2:  rep movsb",
            "3:  mov rdi, r9",
            "    mov rsi, r10",
            "    ret",
            "",
            concat!(".globl ", $memset),
            concat!($memset, ":"),
            "    mov r9, rdi",
            "    mov r10, rcx",
            "    mov rdi, rcx",
            "    mov eax, edx",
            "    mov rcx, r8",
            "    rep stosb",
            "    mov rax, r10",
            "    mov rdi, r9",
            "    ret",
            "",
            concat!(".globl ", $memcmp),
            concat!($memcmp, ":"),
            "    mov r9, rdi",
            "    mov r10, rsi",
            "    mov rsi, rcx",
            "    mov rdi, rdx",
            "    mov rcx, r8",
            "    xor eax, eax",
            "    test rcx, rcx",
            "    jz 3f",
            "    repe cmpsb",
            "    je 3f",
            "    movzx eax, byte ptr [rsi - 1]",
            "    movzx edx, byte ptr [rdi - 1]",
            "    sub eax, edx",
            "3:  mov rdi, r9",
            "    mov rsi, r10",
            "    ret",
        );
    };
}

#[cfg(target_os = "windows")]
pub(crate) use x86_64_mem_routines;

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    x86_64_mem_routines!(
        "fabboot_test_memcpy",
        "fabboot_test_memmove",
        "fabboot_test_memset",
        "fabboot_test_memcmp"
    );

    unsafe extern "win64" {
        fn fabboot_test_memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8;
        fn fabboot_test_memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8;
        fn fabboot_test_memset(dst: *mut u8, c: i32, n: usize) -> *mut u8;
        fn fabboot_test_memcmp(a: *const u8, b: *const u8, n: usize) -> i32;
    }

    fn pattern(n: usize) -> std::vec::Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn memcpy_copies_and_returns_the_destination() {
        for n in [0, 1, 7, 64, 4099] {
            let src = pattern(n);
            let mut dst = std::vec![0xA5u8; n + 2];
            // SAFETY: both buffers hold at least n bytes and do not overlap.
            let ret = unsafe { fabboot_test_memcpy(dst.as_mut_ptr(), src.as_ptr(), n) };
            assert_eq!(ret, dst.as_mut_ptr());
            assert_eq!(&dst[..n], &src[..]);
            assert_eq!(&dst[n..], &[0xA5, 0xA5], "nothing written past n");
        }
    }

    #[test]
    fn memmove_handles_overlap_in_both_directions() {
        for (from, to, n) in [
            (0, 5, 40),
            (5, 0, 40),
            (0, 1, 63),
            (1, 0, 63),
            (3, 3, 10),
            (0, 60, 4),
        ] {
            let mut buf = pattern(128);
            let mut expect = buf.clone();
            expect.copy_within(from..from + n, to);
            let dst = buf[to..].as_mut_ptr();
            let src = buf[from..].as_ptr();
            // SAFETY: from + n and to + n stay inside the 128-byte buffer.
            let ret = unsafe { fabboot_test_memmove(dst, src, n) };
            assert_eq!(ret, dst);
            assert_eq!(buf, expect, "from {from} to {to} len {n}");
        }
    }

    #[test]
    fn memset_fills_with_the_low_byte_and_returns_the_destination() {
        let mut buf = std::vec![0u8; 33];
        // SAFETY: 32 bytes of a 33-byte buffer.
        let ret = unsafe { fabboot_test_memset(buf.as_mut_ptr(), 0x1C5, 32) };
        assert_eq!(ret, buf.as_mut_ptr());
        assert!(buf[..32].iter().all(|&b| b == 0xC5));
        assert_eq!(buf[32], 0);
    }

    #[test]
    fn memcmp_orders_by_the_first_differing_unsigned_byte() {
        let cmp = |a: &[u8], b: &[u8]| {
            // SAFETY: both slices hold a.len() bytes.
            unsafe { fabboot_test_memcmp(a.as_ptr(), b.as_ptr(), a.len()) }
        };
        assert_eq!(cmp(b"", b""), 0);
        assert_eq!(cmp(b"abc", b"abc"), 0);
        assert!(cmp(b"abd", b"abc") > 0);
        assert!(cmp(b"abc", b"abd") < 0);
        assert!(cmp(&[0x80], &[0x7F]) > 0, "bytes compare unsigned");
        assert!(
            cmp(&[1, 0, 0], &[2, 0xFF, 0xFF]) < 0,
            "the first difference decides"
        );
    }
}
