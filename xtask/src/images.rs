//! The four driver images: which target and feature make each, and where it goes.
//!
//! Everything xtask generates lies under the cargo target directory: `CARGO_TARGET_DIR`
//! when it is set (a relative one from the workspace root, where xtask runs cargo), else
//! `target/` in the workspace root.

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

/// The cargo target directory xtask writes under (see the module documentation).
pub fn target_dir() -> PathBuf {
    target_dir_from(std::env::var_os("CARGO_TARGET_DIR").as_deref())
}

fn target_dir_from(env: Option<&std::ffi::OsStr>) -> PathBuf {
    match env {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

/// Where `build` puts the images: `<target dir>/sys/<arch>/<file>`.
pub fn sys_dir() -> PathBuf {
    target_dir().join("sys")
}

/// Where `sign` puts the signed copies: `<target dir>/sys-signed/<arch>/<file>`.
pub fn signed_dir() -> PathBuf {
    target_dir().join("sys-signed")
}

/// The version of the `fabboot` crate, `[package] version` of the root `Cargo.toml`, as
/// the four parts `major.minor.patch.0` its images' version resource carries (the build
/// script takes the same three numbers from cargo).
pub fn fabboot_version() -> Result<[u16; 4], String> {
    let path = workspace_root().join("Cargo.toml");
    let manifest =
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    package_version(&manifest).ok_or_else(|| {
        format!(
            "{}: no [package] version MAJOR.MINOR.PATCH with parts of 0 to 65535",
            path.display()
        )
    })
}

/// `version = "a.b.c"` (a pre-release or build suffix ignored) of the `[package]` table.
fn package_version(manifest: &str) -> Option<[u16; 4]> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if !in_package || key.trim() != "version" {
            continue;
        }
        let value = value.trim().strip_prefix('"')?.split('"').next()?;
        let core = value.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u16>().ok());
        let quad = [parts.next()??, parts.next()??, parts.next()??, 0];
        return parts.next().is_none().then_some(quad);
    }
    None
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
    let out = sys_dir();
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

/// Builds the four images in release mode and copies each to `<target dir>/sys/<arch>/`.
/// Each flavour has its own target directory so switching features never rebuilds
/// the other.
pub fn build_all() -> Result<Vec<Image>, String> {
    let images = all_images();
    for image in &images {
        let target_dir = target_dir().join("sys-build").join(image.flavour.feature);
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
            shown(&image.path).display(),
            size,
            image.flavour.port_driver,
            image.target.triple
        );
    }
}

/// `path` relative to the workspace root when it lies inside it, for messages.
pub fn shown(path: &Path) -> &Path {
    path.strip_prefix(workspace_root()).unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn the_target_dir_follows_cargo_target_dir() {
        let root = workspace_root();
        assert_eq!(target_dir_from(None), root.join("target"));
        assert_eq!(target_dir_from(Some(OsStr::new(""))), root.join("target"));
        // Relative values are taken from the workspace root, absolute ones as they are.
        assert_eq!(target_dir_from(Some(OsStr::new("out"))), root.join("out"));
        assert_eq!(
            target_dir_from(Some(OsStr::new("/tmp/t"))),
            PathBuf::from("/tmp/t")
        );
    }

    #[test]
    fn the_package_version_is_read_from_the_package_table_only() {
        let manifest = "[workspace.package]\nversion = \"9.9.9\"\n\n[package]\nname = \"fabboot\"\n\
                        version = \"0.12.3\" # comment\n[dependencies]\nversion = \"1.0.0\"\n";
        assert_eq!(package_version(manifest), Some([0, 12, 3, 0]));
        assert_eq!(
            package_version("[package]\nversion = \"1.2.3-rc.1+b5\""),
            Some([1, 2, 3, 0])
        );
        assert_eq!(package_version("[package]\nversion = \"1.2\""), None);
        assert_eq!(package_version("[package]\nversion = \"1.2.3.4\""), None);
        assert_eq!(package_version("[package]\nversion = \"1.70000.3\""), None);
        assert_eq!(package_version("[dependencies]\nversion = \"1.2.3\""), None);
        // The workspace's own manifest.
        assert!(fabboot_version().is_ok());
    }
}
