#!/usr/bin/env bash
# Brings a fresh Debian machine up to what fabboot needs; safe to run again.
#   - rustup: the toolchain and Windows targets named in rust-toolchain.toml
#   - cargo-fuzz (crates.io) for `cargo xtask fuzz` (libFuzzer is built with the g++
#     the machine image already has)
#   - Debian: mingw-w64 (the DDK headers and cross compilers the ABI check compiles with),
#     linux-headers-amd64 (linux/mlx5/mlx5_ifc.h, the oracle for the PRM layouts) and
#     libibverbs-dev (infiniband/mlx5dv.h, the oracle for WQE and CQE layouts),
#     tshark (reads the simulator's packet captures), ibsim-utils, opensm and
#     infiniband-diags (a real subnet manager on a simulated fabric), srptools (a real
#     SRP discovery client against the simulated target), dosfstools and mtools (fsck.fat,
#     mkfs.fat and mcopy: independent checks of the boot disk's FAT32), cmake, libclang-dev and
#     pkg-config (the unicorn-engine crate builds unicorn's C sources, x86 only, with them;
#     unicorn is GPL-2.0, see sim/Cargo.toml), openssl and osslsigncode (`cargo xtask sign`:
#     a self-signed test certificate, Authenticode signatures with page hashes and their
#     verification; Debian 12's osslsigncode 2.5 and backports' 2.9 both work)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(mingw-w64 gcc-mingw-w64-i686 gcc-mingw-w64-x86-64 linux-headers-amd64 libibverbs-dev
          tshark ibsim-utils opensm infiniband-diags srptools dosfstools mtools
          cmake libclang-dev pkg-config openssl osslsigncode)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "ci/setup.sh: installing ${missing[*]}"
    $sudo apt-get update -qq
    # tshark asks whether non-root users may capture; they need not.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | $sudo debconf-set-selections
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# rust-toolchain.toml names the channel, components and targets; `rustup show` installs
# whatever of it is missing (older rustup: add the targets explicitly).
rustup show active-toolchain >/dev/null 2>&1 || rustup show >/dev/null
rustup target add x86_64-pc-windows-msvc i686-pc-windows-msvc >/dev/null
rustup component add rustfmt clippy >/dev/null
# cargo-fuzz (from crates.io) for `cargo xtask fuzz`; it runs on the stable toolchain
# with RUSTC_BOOTSTRAP=1, which xtask sets for that child process only.
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "ci/setup.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
echo "ci/setup.sh: $(rustc --version); targets: $(rustup target list --installed | tr '\n' ' ')"
