//! The PRM layouts of `fabboot_hca::ifc` checked against Linux's `mlx5_ifc.h` (from
//! Debian's `linux-headers-*-common`, installed by `ci/setup.sh`): a C program compiled
//! against the header prints the bit offset and width of every field the driver
//! declares, and each must equal ours. The header is an oracle only: it is compiled
//! here, never copied.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use fabboot_hca::ifc::{ALL, Field, IfcStruct};

/// The newest `mlx5_ifc.h` among the installed kernel header packages.
fn header() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/src")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.path().join("include/linux/mlx5/mlx5_ifc.h"))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().expect(
        "no /usr/src/linux-headers-*/include/linux/mlx5/mlx5_ifc.h: install Debian's \
         linux-headers-amd64 (ci/setup.sh does)",
    )
}

fn program(structs: &[IfcStruct], header: &Path) -> String {
    let mut c = String::new();
    // mlx5_ifc.h compiles standalone with three shims (reference/mlx5.md §B).
    writeln!(c, "#include <stdio.h>\n#include <stddef.h>").unwrap();
    writeln!(c, "typedef unsigned char u8;").unwrap();
    writeln!(
        c,
        "#define BIT(n) (1UL << (n))\n#define BIT_ULL(n) (1ULL << (n))"
    )
    .unwrap();
    writeln!(
        c,
        "#define DECLARE_FLEX_ARRAY(T, N) struct {{ struct {{}} __empty_##N; T N[]; }}"
    )
    .unwrap();
    writeln!(c, "#include \"{}\"", header.display()).unwrap();
    writeln!(c, "int main(void) {{").unwrap();
    for s in structs {
        let t = format!("struct mlx5_ifc_{}_bits", s.name);
        writeln!(
            c,
            "  printf(\"{} . %zu %zu\\n\", (size_t)0, sizeof({t}));",
            s.name
        )
        .unwrap();
        for (f, _) in s.fields {
            writeln!(
                c,
                "  printf(\"{} {f} %zu %zu\\n\", offsetof({t}, {f}), sizeof((({t} *)0)->{f}));",
                s.name
            )
            .unwrap();
        }
    }
    writeln!(c, "  return 0;\n}}").unwrap();
    c
}

/// Runs the program (built in its own directory `tag`, so tests may run in parallel);
/// returns (struct, field) → (bit offset, width); field "." is the size.
fn oracle(structs: &[IfcStruct], tag: &str) -> BTreeMap<(String, String), (u32, u32)> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ifc_oracle")
        .join(tag);
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("oracle.c");
    let exe = dir.join("oracle");
    std::fs::write(&src, program(structs, &header())).unwrap();
    let cc = Command::new("cc")
        .args(["-std=gnu11", "-w", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("a C compiler");
    assert!(
        cc.status.success(),
        "the oracle program does not compile (a field name we use is not in mlx5_ifc.h?):\n{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let out = Command::new(&exe).output().expect("run the oracle program");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Vec<&str> = l.split(' ').collect();
            let n = |i: usize| v[i].parse::<u32>().unwrap();
            ((v[0].to_string(), v[1].to_string()), (n(2), n(3)))
        })
        .collect()
}

/// Every difference between our tables and the oracle's numbers.
fn differences(
    structs: &[IfcStruct],
    oracle: &BTreeMap<(String, String), (u32, u32)>,
) -> Vec<String> {
    let mut diffs = Vec::new();
    for s in structs {
        match oracle.get(&(s.name.to_string(), ".".to_string())) {
            Some(&(_, size)) if size == s.size_bits => {}
            other => diffs.push(format!(
                "{} size {:#x}, oracle {other:?}",
                s.name, s.size_bits
            )),
        }
        for (name, Field { bit, width }) in s.fields {
            match oracle.get(&(s.name.to_string(), name.to_string())) {
                Some(&(b, w)) if b == *bit && w == *width => {}
                other => diffs.push(format!(
                    "{}.{name}: ours bit {bit:#x} width {width:#x}, mlx5_ifc.h {other:x?}",
                    s.name
                )),
            }
        }
    }
    diffs
}

#[test]
fn every_declared_field_matches_mlx5_ifc_h() {
    let numbers = oracle(ALL, "all");
    let diffs = differences(ALL, &numbers);
    assert!(
        diffs.is_empty(),
        "layouts differ from mlx5_ifc.h:\n{}",
        diffs.join("\n")
    );
    let fields: usize = ALL.iter().map(|s| s.fields.len()).sum();
    eprintln!(
        "mlx5_ifc.h oracle: {} structures, {fields} fields agree",
        ALL.len()
    );
}

#[test]
fn the_oracle_notices_a_wrong_field() {
    // One bit off in one field must be reported: the comparison is not vacuous.
    let numbers = oracle(ALL, "liveness");
    static MOVED: [(&str, Field); 1] = [("token", Field::new(0x1E1, 8))];
    let wrong = IfcStruct {
        name: "cmd_queue_entry",
        size_bits: 0x200,
        fields: &MOVED,
    };
    let diffs = differences(&[wrong], &numbers);
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert!(diffs[0].contains("cmd_queue_entry.token"));
}
