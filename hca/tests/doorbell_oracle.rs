//! The numbers behind completion interrupts and the internal timer, checked against
//! independent definitions: Linux's `linux/mlx5/device.h` and `doorbell.h` (Debian's
//! `linux-headers-*-common`) and rdma-core's `infiniband/mlx5dv.h` (libibverbs-dev),
//! both installed by `ci/setup.sh`. Small C programs compiled against the headers
//! print the values and offsets; each must equal the access layer's. The headers are
//! oracles only: compiled here, never copied.

use std::path::{Path, PathBuf};
use std::process::Command;

use fabboot_hca::ifc::events::{comp_event, eqe};
use fabboot_hca::init_seg::offset;
use fabboot_hca::objects::event;
use fabboot_hca::queues::{ArmMode, UAR_BF, UAR_CQ_DB};

/// The newest kernel header tree with the mlx5 headers.
fn kernel_include() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/src")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.path().join("include"))
                .filter(|p| p.join("linux/mlx5/device.h").is_file())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().expect(
        "no /usr/src/linux-headers-*/include/linux/mlx5/device.h: install Debian's \
         linux-headers-amd64 (ci/setup.sh does)",
    )
}

/// Compiles and runs `program` in its own directory (with `include` first on the
/// include path); returns its `name value` lines.
fn run(tag: &str, program: &str, include: Option<&Path>) -> Vec<(String, u64)> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("doorbell_oracle")
        .join(tag);
    std::fs::create_dir_all(&dir).unwrap();
    let (src, exe) = (dir.join("p.c"), dir.join("p"));
    std::fs::write(&src, program).unwrap();
    let mut cc = Command::new("cc");
    cc.args(["-w", "-o"]).arg(&exe).arg(&src);
    if let Some(i) = include {
        cc.arg("-I").arg(i);
    }
    let out = cc.output().expect("a C compiler");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(&exe).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (name, value) = l.split_once(' ').unwrap();
            (name.to_string(), value.parse().unwrap())
        })
        .collect()
}

/// `device.h` and `doorbell.h` need the kernel's own includes; a directory of stubs
/// stands in for them (reference/mlx5.md §B: the shims device.h needs), with the
/// mlx5 headers themselves linked in.
fn kernel_stubs(root: &Path) -> PathBuf {
    let stub = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("doorbell_oracle")
        .join("stub");
    for d in ["linux/mlx5", "rdma"] {
        std::fs::create_dir_all(stub.join(d)).unwrap();
    }
    std::fs::write(stub.join("linux/types.h"), "").unwrap();
    std::fs::write(
        stub.join("rdma/ib_verbs.h"),
        "union ib_gid { unsigned char raw[16]; };\nstruct ib_grh { unsigned char b[40]; };\n",
    )
    .unwrap();
    for h in ["device.h", "doorbell.h", "mlx5_ifc.h", "mlx5_ifc_fpga.h"] {
        let link = stub.join("linux/mlx5").join(h);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(root.join("linux/mlx5").join(h), &link).unwrap();
    }
    stub
}

const KERNEL_PROGRAM: &str = r#"
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
typedef uint8_t u8; typedef uint16_t u16; typedef uint32_t u32; typedef uint64_t u64;
typedef uint8_t __u8; typedef uint16_t __u16; typedef uint32_t __u32; typedef uint64_t __u64;
typedef uint16_t __be16; typedef uint32_t __be32; typedef uint64_t __be64;
typedef _Bool bool;
#define BIT(n) (1UL << (n))
#define BIT_ULL(n) (1ULL << (n))
#define GENMASK(h, l) (((~0UL) << (l)) & (~0UL >> (63 - (h))))
#define DECLARE_FLEX_ARRAY(T, N) struct { struct {} __empty_##N; T N[]; }
#define __LITTLE_ENDIAN 1234
#define PAGE_SIZE 4096
#define PAGE_SHIFT 12
#define __packed __attribute__((packed))
#define __iomem
#define __force
#define BITS_PER_LONG 64
#define __raw_writeq(v, d) ((void)(v), (void)(d))
#define __raw_writel(v, d) ((void)(v), (void)(d))
#include <linux/mlx5/device.h>
#include <linux/mlx5/doorbell.h>
int main(void) {
  printf("internal_timer_h %zu\n", offsetof(struct mlx5_init_seg, internal_timer_h));
  printf("internal_timer_l %zu\n", offsetof(struct mlx5_init_seg, internal_timer_l));
  printf("event_type_comp %d\n", MLX5_EVENT_TYPE_COMP);
  printf("eqe_type %zu\n", offsetof(struct mlx5_eqe, type));
  printf("eqe_comp_cqn %zu\n", offsetof(struct mlx5_eqe, data) + offsetof(struct mlx5_eqe_comp, cqn));
  printf("cq_doorbell %d\n", MLX5_CQ_DOORBELL);
  printf("bf_offset %d\n", MLX5_BF_OFFSET);
  return 0;
}
"#;

const DV_PROGRAM: &str = r#"
#include <stdio.h>
#include <infiniband/mlx5dv.h>
int main(void) {
  printf("cq_doorbell %d\n", MLX5_CQ_DOORBELL);
  printf("cq_db_req_not %u\n", (unsigned)MLX5_CQ_DB_REQ_NOT);
  printf("cq_db_req_not_sol %u\n", (unsigned)MLX5_CQ_DB_REQ_NOT_SOL);
  return 0;
}
"#;

fn value(lines: &[(String, u64)], name: &str) -> u64 {
    lines
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("{name} not printed"))
}

#[test]
fn timer_event_and_doorbell_numbers_match_linux_headers() {
    let root = kernel_include();
    let stub = kernel_stubs(&root);
    let k = run("kernel", KERNEL_PROGRAM, Some(&stub));
    assert_eq!(k.len(), 7);
    assert_eq!(
        value(&k, "internal_timer_h"),
        offset::INTERNAL_TIMER_H as u64
    );
    assert_eq!(
        value(&k, "internal_timer_l"),
        offset::INTERNAL_TIMER_L as u64
    );
    assert_eq!(value(&k, "event_type_comp"), u64::from(event::COMPLETION));
    assert_eq!(value(&k, "eqe_type"), u64::from(eqe::EVENT_TYPE.bit / 8));
    // The CQN is the low 24 bits of the big-endian dword holding comp_event.cq_number.
    let cqn_dword = eqe::EVENT_DATA.byte() + (comp_event::CQ_NUMBER.bit / 32 * 4) as usize;
    assert_eq!(value(&k, "eqe_comp_cqn"), cqn_dword as u64);
    assert_eq!(value(&k, "cq_doorbell"), UAR_CQ_DB as u64);
    assert_eq!(value(&k, "bf_offset"), UAR_BF as u64);
}

#[test]
fn cq_arm_commands_match_mlx5dv_h() {
    let header = Path::new("/usr/include/infiniband/mlx5dv.h");
    assert!(
        header.is_file(),
        "{} missing: install libibverbs-dev (ci/setup.sh does)",
        header.display()
    );
    let dv = run("dv", DV_PROGRAM, None);
    assert_eq!(value(&dv, "cq_doorbell"), UAR_CQ_DB as u64);
    assert_eq!(
        value(&dv, "cq_db_req_not"),
        u64::from(ArmMode::Next.command())
    );
    assert_eq!(
        value(&dv, "cq_db_req_not_sol"),
        u64::from(ArmMode::Solicited.command())
    );
}
