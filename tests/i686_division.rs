//! The i686 images' own 64-bit division (`__aulldiv`, `__aullrem` in src/port/rt.rs),
//! run for real: the assembly is taken from the source, put in a 32-bit Linux program
//! with GNU `as --32` and `ld -m elf_i386` (binutils, which every Rust host here has),
//! called by MSVC's convention (dividend then divisor on the stack, low half first,
//! callee pops) and checked against Rust's own `/` and `%`.

use std::process::Command;

/// The assembly lines of the global_asm! block that defines `__aulldiv`.
fn division_asm() -> Vec<String> {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/port/rt.rs"))
        .expect("read rt.rs");
    let start = src
        .find("\".globl __aulldiv\",")
        .expect("__aulldiv in rt.rs");
    let end = start + src[start..].find(");").expect("end of the block");
    src[start..end]
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            l.strip_prefix('"')?.strip_suffix("\",").map(str::to_string)
        })
        .collect()
}

#[test]
fn the_i686_division_helpers_divide_like_rust() {
    let cases: [(u64, u64); 10] = [
        (100, 7),
        (u64::MAX, 3),
        ((1 << 63) + 12345, (1 << 40) + 7),
        (12_345_678_901_234_567, 987_654_321),
        (5, u64::MAX),
        (u64::MAX, u64::MAX),
        (0, 9),
        (u64::MAX - 1, 1 << 63),
        (0xDEAD_BEEF_0000_0001, 0x1_0000_0000),
        (1 << 32, 1),
    ];
    let mut s = vec![".intel_syntax noprefix".to_string(), ".text".to_string()];
    s.extend(division_asm());
    s.push(".globl _start".into());
    s.push("_start:".into());
    for (i, (a, b)) in cases.iter().enumerate() {
        for (f, want) in [("__aulldiv", a / b), ("__aullrem", a % b)] {
            s.push(format!("    push {}", b >> 32));
            s.push(format!("    push {}", b & 0xFFFF_FFFF));
            s.push(format!("    push {}", a >> 32));
            s.push(format!("    push {}", a & 0xFFFF_FFFF));
            s.push(format!("    call {f}"));
            s.push(format!("    mov ebx, {}", i + 1));
            s.push(format!("    cmp eax, {}", want & 0xFFFF_FFFF));
            s.push("    jne 8f".into());
            s.push(format!("    cmp edx, {}", want >> 32));
            s.push("    jne 8f".into());
        }
    }
    s.extend(["    mov ebx, 0", "8:  mov eax, 1", "    int 0x80"].map(String::from));
    let dir = std::env::temp_dir().join(format!("fabboot-div-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (asm, obj, exe) = (dir.join("t.s"), dir.join("t.o"), dir.join("t"));
    std::fs::write(&asm, s.join("\n") + "\n").unwrap();
    let ok = |c: &mut Command| {
        let out = c.output().expect("run binutils");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ok(Command::new("as").arg("--32").arg(&asm).arg("-o").arg(&obj));
    ok(Command::new("ld")
        .args(["-m", "elf_i386"])
        .arg(&obj)
        .arg("-o")
        .arg(&exe));
    let status = Command::new(&exe).status().expect("run the 32-bit program");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        status.code(),
        Some(0),
        "case {} (1-based) came out wrong",
        status.code().unwrap_or(-1)
    );
}
