//! The four driver images: which target and feature make each, and where it goes.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A Windows target the images are built for.
pub struct Target {
    /// Directory name under `target/sys/`.
    pub arch: &'static str,
    pub triple: &'static str,
}

pub const TARGETS: [Target; 2] = [
    Target {
        arch: "x86_64",
        triple: "x86_64-pc-windows-msvc",
    },
    Target {
        arch: "i686",
        triple: "i686-pc-windows-msvc",
    },
];

/// A port flavour: the cargo feature that selects it and the file it becomes.
pub struct Flavour {
    pub feature: &'static str,
    pub file: &'static str,
    /// The one module the image may import from.
    pub port_driver: &'static str,
}

pub const FLAVOURS: [Flavour; 2] = [
    Flavour {
        feature: "storport",
        file: "fabboot.sys",
        port_driver: "storport.sys",
    },
    Flavour {
        feature: "scsiport",
        file: "ntbootdd.sys",
        port_driver: "scsiport.sys",
    },
];

/// One built image.
pub struct Image {
    pub path: PathBuf,
    pub target: &'static Target,
    pub flavour: &'static Flavour,
}

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A `cargo` command in the workspace root. Flags from the caller's environment are
/// dropped, so the per-target flags in `.cargo/config.toml` (no SSE on i686) apply.
pub fn cargo_command(cargo: &str) -> Command {
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    cmd
}

/// Every image in the order they are built.
pub fn all_images() -> Vec<Image> {
    let out = workspace_root().join("target").join("sys");
    FLAVOURS
        .iter()
        .flat_map(|flavour| {
            TARGETS.iter().map(|target| Image {
                path: out.join(target.arch).join(flavour.file),
                target,
                flavour,
            })
        })
        .collect::<Vec<_>>()
}

/// Builds the four images in release mode and copies each to `target/sys/<arch>/`.
/// Each flavour has its own target directory so switching features never rebuilds
/// the other.
pub fn build_all() -> Result<Vec<Image>, String> {
    let root = workspace_root();
    let images = all_images();
    for image in &images {
        let target_dir = root
            .join("target")
            .join("sys-build")
            .join(image.flavour.feature);
        let target_dir_arg = target_dir.to_string_lossy().into_owned();
        crate::cargo(&[
            "build",
            "--release",
            "--package",
            "fabboot",
            "--lib",
            "--target",
            image.target.triple,
            "--features",
            image.flavour.feature,
            "--target-dir",
            &target_dir_arg,
        ])?;
        let linked = target_dir
            .join(image.target.triple)
            .join("release")
            .join("fabboot.dll");
        let dir = image.path.parent().ok_or("image path has no parent")?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::copy(&linked, &image.path)
            .map_err(|e| format!("copy {} -> {}: {e}", linked.display(), image.path.display()))?;
    }
    Ok(images)
}

/// Prints what was built and how large it is.
pub fn report(images: &[Image]) {
    for image in images {
        let size = std::fs::metadata(&image.path).map(|m| m.len()).unwrap_or(0);
        println!(
            "{:<34} {:>7} bytes  ({}, {})",
            image
                .path
                .strip_prefix(workspace_root())
                .unwrap_or(&image.path)
                .display(),
            size,
            image.flavour.port_driver,
            image.target.triple
        );
    }
}
