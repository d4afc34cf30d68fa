//! WQE segment and CQE layouts checked against rdma-core's `infiniband/mlx5dv.h`
//! (Debian's libibverbs-dev, installed by `ci/setup.sh`): a C program prints the offset
//! and size of every member `fabboot_hca::wqe::DV` names, and each must equal ours.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use fabboot_hca::wqe::{DV, DvStruct};

fn oracle(structs: &[DvStruct], tag: &str) -> Vec<(String, usize, usize)> {
    let header = std::path::Path::new("/usr/include/infiniband/mlx5dv.h");
    assert!(
        header.is_file(),
        "{} missing: install libibverbs-dev (ci/setup.sh does)",
        header.display()
    );
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include <infiniband/mlx5dv.h>\nint main(void) {\n",
    );
    for s in structs {
        let t = format!("struct {}", s.name);
        writeln!(c, "  printf(\"{} . 0 %zu\\n\", sizeof({t}));", s.name).unwrap();
        for m in s.members {
            writeln!(
                c,
                "  printf(\"{} {} %zu %zu\\n\", offsetof({t}, {}), sizeof((({t} *)0)->{}));",
                s.name, m.c, m.c, m.c
            )
            .unwrap();
        }
    }
    c.push_str("  return 0;\n}\n");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("dv_oracle")
        .join(tag);
    std::fs::create_dir_all(&dir).unwrap();
    let (src, exe) = (dir.join("dv.c"), dir.join("dv"));
    std::fs::write(&src, c).unwrap();
    let cc = Command::new("cc")
        .args(["-w", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("a C compiler");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let out = Command::new(&exe).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Vec<&str> = l.split(' ').collect();
            (
                format!("{}.{}", v[0], v[1]),
                v[2].parse().unwrap(),
                v[3].parse().unwrap(),
            )
        })
        .collect()
}

fn differences(structs: &[DvStruct], oracle: &[(String, usize, usize)]) -> Vec<String> {
    let find = |k: &str| {
        oracle
            .iter()
            .find(|(n, _, _)| n == k)
            .map(|&(_, o, l)| (o, l))
    };
    let mut d = Vec::new();
    for s in structs {
        if find(&format!("{}..", s.name)).map(|(_, l)| l) != Some(s.size) {
            d.push(format!("{} size {}", s.name, s.size));
        }
        for m in s.members {
            let key = format!("{}.{}", s.name, m.c);
            if find(&key) != Some((m.offset, m.len)) {
                d.push(format!(
                    "{key}: ours {}+{}, mlx5dv.h {:?}",
                    m.offset,
                    m.len,
                    find(&key)
                ));
            }
        }
    }
    d
}

#[test]
fn wqe_and_cqe_layouts_match_mlx5dv_h() {
    let o = oracle(DV, "all");
    let d = differences(DV, &o);
    assert!(
        d.is_empty(),
        "layouts differ from mlx5dv.h:\n{}",
        d.join("\n")
    );
    let n: usize = DV.iter().map(|s| s.members.len()).sum();
    eprintln!(
        "mlx5dv.h oracle: {} structures, {n} members agree",
        DV.len()
    );
}

#[test]
fn the_dv_oracle_notices_a_wrong_member() {
    let o = oracle(DV, "liveness");
    static MOVED: [fabboot_hca::wqe::Member; 1] = [fabboot_hca::wqe::Member {
        c: "byte_cnt",
        offset: 40,
        len: 4,
    }];
    let wrong = DvStruct {
        name: "mlx5_cqe64",
        size: 64,
        members: &MOVED,
    };
    assert_eq!(differences(&[wrong], &o).len(), 1);
}
