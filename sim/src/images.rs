//! The four driver images for tests, laid out as `cargo xtask build` lays them out
//! (`<dir>/<arch>/<name>.sys`, README "The commands"): taken from `FABBOOT_IMAGES` when
//! that names a directory, else built here (release, each flavour for each Windows
//! target, as `cargo xtask build` builds them) into a directory of the caller's.
//!
//! One copy of this builder serves every test that boots or patches a real image
//! (`sim/tests/boot_config.rs`, the `fabboot` command's tests).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use fabboot::port::Flavour;

use crate::host::Arch;

/// The environment variable naming a directory of built images.
pub const ENV: &str = "FABBOOT_IMAGES";

/// Each flavour: the cargo feature that selects it and the file it becomes.
pub const FLAVOURS: [(Flavour, &str, &str); 2] = [
    (Flavour::Storport, "storport", "fabboot.sys"),
    (Flavour::Scsiport, "scsiport", "ntbootdd.sys"),
];

/// Each architecture and its Rust target.
pub const TARGETS: [(Arch, &str); 2] = [
    (Arch::X86_64, "x86_64-pc-windows-msvc"),
    (Arch::I686, "i686-pc-windows-msvc"),
];

/// Why the images are not there.
#[derive(Debug)]
pub enum ImagesError {
    /// `cargo` could not be run.
    Cargo(std::io::Error),
    /// `cargo build` failed for this flavour and target; its standard error.
    Build {
        feature: &'static str,
        triple: &'static str,
        stderr: String,
    },
    /// Copying a built image into place failed.
    Copy {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl fmt::Display for ImagesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImagesError::Cargo(e) => write!(f, "running cargo: {e}"),
            ImagesError::Build {
                feature,
                triple,
                stderr,
            } => write!(f, "building the {feature} image for {triple}: {stderr}"),
            ImagesError::Copy { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for ImagesError {}

/// The file name of a flavour's image.
pub fn file_name(flavour: Flavour) -> &'static str {
    match flavour {
        Flavour::Storport => "fabboot.sys",
        Flavour::Scsiport => "ntbootdd.sys",
    }
}

/// Where an image lies in a directory laid out as `target/sys`.
pub fn path(dir: &Path, arch: Arch, flavour: Flavour) -> PathBuf {
    dir.join(arch.dir()).join(file_name(flavour))
}

/// The directory holding the four images: `FABBOOT_IMAGES` when set, else
/// `tmpdir/images`, built there now (cargo rebuilds nothing that is up to date, so a
/// second call, from this or another test binary, costs a few seconds). Builds in
/// one process are serialised; cargo's own lock serialises those of several.
pub fn built(tmpdir: &Path) -> Result<PathBuf, ImagesError> {
    if let Some(dir) = std::env::var_os(ENV) {
        return Ok(PathBuf::from(dir));
    }
    static BUILDING: Mutex<()> = Mutex::new(());
    // A test that panicked while holding the lock left nothing half done that the
    // next build does not redo.
    let _guard = BUILDING.lock().unwrap_or_else(|p| p.into_inner());
    let out = tmpdir.join("images");
    let root = workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    for (_, feature, name) in FLAVOURS {
        let target_dir = tmpdir.join("images-build").join(feature);
        for (arch, triple) in TARGETS {
            // The per-target flags of .cargo/config.toml (no SSE on i686) must apply:
            // the caller's RUSTFLAGS would replace them.
            let built = Command::new(&cargo)
                .current_dir(&root)
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .args(["build", "--quiet", "--release", "--package", "fabboot"])
                .args(["--lib", "--target", triple, "--features", feature])
                .arg("--target-dir")
                .arg(&target_dir)
                .output()
                .map_err(ImagesError::Cargo)?;
            // rustc's warning about -sse2 on i686 is expected (README, "i686 and
            // SSE"); the output is kept only when the build fails.
            if !built.status.success() {
                return Err(ImagesError::Build {
                    feature,
                    triple,
                    stderr: String::from_utf8_lossy(&built.stderr).into_owned(),
                });
            }
            let dir = out.join(arch.dir());
            std::fs::create_dir_all(&dir).map_err(|error| ImagesError::Copy {
                path: dir.clone(),
                error,
            })?;
            // Copied under a temporary name and renamed, so no reader ever sees half
            // an image.
            let from = target_dir.join(triple).join("release").join("fabboot.dll");
            let to = dir.join(name);
            let partial = dir.join(format!("{name}.partial"));
            std::fs::copy(&from, &partial)
                .and_then(|_| std::fs::rename(&partial, &to))
                .map_err(|error| ImagesError::Copy { path: to, error })?;
        }
    }
    Ok(out)
}

/// The workspace root: the simulator crate's parent directory.
fn workspace_root() -> PathBuf {
    let sim = Path::new(env!("CARGO_MANIFEST_DIR"));
    sim.parent().unwrap_or(sim).to_path_buf()
}
