//! `cargo xtask sign`: test-signs the built images with an embedded Authenticode
//! signature, the kind a boot-start driver on x64 Windows must carry, made with a
//! self-signed certificate that nothing trusts unless a test machine is told to.
//!
//! * The certificate is made once by `openssl` in `<target dir>/sign/` (or
//!   `--cert-dir DIR`), never committed: an RSA 3072 key, a self-signed SHA-256
//!   certificate for 10 years with key usage digitalSignature and extended key usage
//!   codeSigning, CN "fabboot test signing (not trusted)". Files: `fabboot-test.key`
//!   (private key, PEM), `fabboot-test.pem` and `fabboot-test.cer` (the certificate as
//!   PEM, and as DER for `certutil`/`certmgr` on Windows).
//! * Each image in `<target dir>/sys/` is signed by `osslsigncode sign` (SHA-256, page
//!   hashes) into `<target dir>/sys-signed/<arch>/<file>`; the unsigned image stays,
//!   since `fabboot configure` patches an image and must run before signing. No
//!   timestamp: that needs a time-stamping authority on the network.
//! * Each signed copy must verify with `osslsigncode verify` against the test
//!   certificate as the only trusted root, keep a right PE checksum (osslsigncode
//!   rewrites it), pass every image check of `check-images`, and hold its certificate
//!   table (`WIN_CERTIFICATE` revision 2.0 of type PKCS#7 SignedData, per the PE format's
//!   "Attribute Certificate Table") at the end of the file where the security directory
//!   says.
//! * The verification is shown to be live: a copy of each signed image with one byte of
//!   `.text` changed (its PE checksum made right again) must fail it with a digest
//!   mismatch.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use object::LittleEndian as LE;
use object::pe;
use object::read::pe::{ImageNtHeaders, PeFile};

use crate::images::{self, Image, shown};
use crate::pe as checks;

/// The certificate's subject common name.
const SUBJECT_CN: &str = "fabboot test signing (not trusted)";
/// File names in the certificate directory.
const KEY_FILE: &str = "fabboot-test.key";
const PEM_FILE: &str = "fabboot-test.pem";
const DER_FILE: &str = "fabboot-test.cer";
const CONFIG_FILE: &str = "fabboot-test.cnf";
/// The signature's description (`-n`), shown by Windows as the signed content's name.
const DESCRIPTION: &str = "fabboot SRP boot miniport (test-signed)";

/// `WIN_CERTIFICATE.wRevision`: `WIN_CERT_REVISION_2_0`.
const WIN_CERT_REVISION_2_0: u16 = 0x0200;
/// `WIN_CERTIFICATE.wCertificateType`: `WIN_CERT_TYPE_PKCS_SIGNED_DATA`.
const WIN_CERT_TYPE_PKCS_SIGNED_DATA: u16 = 0x0002;

/// The openssl configuration of the test certificate.
fn openssl_config() -> String {
    format!(
        "# Made by `cargo xtask sign`: a self-signed code-signing certificate for test machines.\n\
         [req]\n\
         distinguished_name = dn\n\
         x509_extensions = ext\n\
         prompt = no\n\
         [dn]\n\
         CN = {SUBJECT_CN}\n\
         [ext]\n\
         keyUsage = critical, digitalSignature\n\
         extendedKeyUsage = codeSigning\n\
         subjectKeyIdentifier = hash\n"
    )
}

/// `cargo xtask sign [--cert-dir DIR]`.
pub fn command(args: &[String]) -> Result<(), String> {
    let mut cert_dir = images::target_dir().join("sign");
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--cert-dir" => {
                cert_dir = PathBuf::from(args.next().ok_or("sign: --cert-dir needs a directory")?);
            }
            "--help" | "-h" => {
                println!("usage: cargo xtask sign [--cert-dir DIR]");
                return Ok(());
            }
            other => return Err(format!("sign: unknown argument `{other}`")),
        }
    }
    run(&cert_dir)
}

/// Signs every built image with the test certificate in `cert_dir` (made there first
/// if it is not), verifies the signed copies and proves the verification live.
pub fn run(cert_dir: &Path) -> Result<(), String> {
    let tools = [
        tool_version("openssl", &["version"])?,
        tool_version("osslsigncode", &["--version"])?,
    ];
    let cert = certificate(cert_dir)?;
    let version = images::fabboot_version()?;
    let mut report = String::new();
    for image in images::all_images() {
        let unsigned = std::fs::read(&image.path).map_err(|e| {
            format!(
                "{}: {e} (run `cargo xtask build` first)",
                image.path.display()
            )
        })?;
        checks::check(&unsigned, image.target.arch, image.flavour, version).map_err(|e| {
            format!(
                "{} fails the image checks before signing:\n    {}",
                image.path.display(),
                e.join("\n    ")
            )
        })?;
        let signed_path = images::signed_dir()
            .join(image.target.arch)
            .join(image.flavour.file);
        sign(&cert, &image.path, &signed_path)?;
        let signed =
            std::fs::read(&signed_path).map_err(|e| format!("{}: {e}", signed_path.display()))?;
        verify(&cert, &signed_path)?;
        let facts =
            checks::check(&signed, image.target.arch, image.flavour, version).map_err(|e| {
                format!(
                    "{}: the signed image fails the image checks:\n    {}",
                    signed_path.display(),
                    e.join("\n    ")
                )
            })?;
        let table = certificate_table(&signed, &image)
            .map_err(|e| format!("{}: {e}", signed_path.display()))?;
        prove_verify_live(&cert, &image_label(&image), &signed)?;
        let _ = writeln!(
            report,
            "signed {:<7} {:<13} {:>7} -> {:>7} bytes (+{table}, the certificate table at the \
             end): {VERIFIED}; PE checksum and image checks ok (version {}); a copy with a .text \
             byte changed fails",
            image.target.arch,
            image.flavour.file,
            unsigned.len(),
            facts.size,
            facts.version.as_ref().map_or("?", |(v, _)| v.as_str()),
        );
    }
    print!("{report}");
    println!("tools: {}; {}", tools[0], tools[1]);
    println!(
        "test certificate \"{SUBJECT_CN}\": {} (DER, for certutil), {} (PEM), private key {}",
        shown(&cert.der).display(),
        shown(&cert.pem).display(),
        shown(&cert.key).display()
    );
    println!(
        "signed images in {}/<arch>/ (not time-stamped; the unsigned ones stay in {})",
        shown(&images::signed_dir()).display(),
        shown(&images::sys_dir()).display()
    );
    Ok(())
}

/// The test certificate's files.
struct Certificate {
    key: PathBuf,
    pem: PathBuf,
    der: PathBuf,
}

/// The test certificate in `dir`, made now if it is not there or no longer valid.
fn certificate(dir: &Path) -> Result<Certificate, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let cert = Certificate {
        key: dir.join(KEY_FILE),
        pem: dir.join(PEM_FILE),
        der: dir.join(DER_FILE),
    };
    let present = cert.key.exists() && cert.pem.exists() && cert.der.exists();
    // Still valid for a day, and for code signing.
    if present {
        let valid = run_tool(
            "openssl",
            &[
                "x509".as_ref(),
                "-in".as_ref(),
                cert.pem.as_os_str(),
                "-noout".as_ref(),
                "-checkend".as_ref(),
                "86400".as_ref(),
                "-ext".as_ref(),
                "extendedKeyUsage".as_ref(),
            ],
        )?;
        if valid.status.success() && String::from_utf8_lossy(&valid.stdout).contains("Code Signing")
        {
            return Ok(cert);
        }
        eprintln!(
            "xtask sign: {} expires within a day or is not for code signing; making a new one",
            cert.pem.display()
        );
    }
    let config = dir.join(CONFIG_FILE);
    std::fs::write(&config, openssl_config()).map_err(|e| format!("{}: {e}", config.display()))?;
    eprintln!(
        "+ openssl req -x509 (test certificate into {})",
        dir.display()
    );
    let made = run_tool(
        "openssl",
        &[
            "req".as_ref(),
            "-x509".as_ref(),
            "-new".as_ref(),
            "-newkey".as_ref(),
            "rsa:3072".as_ref(),
            "-sha256".as_ref(),
            "-days".as_ref(),
            "3650".as_ref(),
            "-nodes".as_ref(),
            "-config".as_ref(),
            config.as_os_str(),
            "-keyout".as_ref(),
            cert.key.as_os_str(),
            "-out".as_ref(),
            cert.pem.as_os_str(),
        ],
    )?;
    expect_success("openssl req", &made)?;
    restrict_to_owner(&cert.key)?;
    let der = run_tool(
        "openssl",
        &[
            "x509".as_ref(),
            "-in".as_ref(),
            cert.pem.as_os_str(),
            "-outform".as_ref(),
            "DER".as_ref(),
            "-out".as_ref(),
            cert.der.as_os_str(),
        ],
    )?;
    expect_success("openssl x509 -outform DER", &der)?;
    Ok(cert)
}

#[cfg(unix)]
fn restrict_to_owner(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(not(unix))]
fn restrict_to_owner(_: &Path) -> Result<(), String> {
    Ok(())
}

/// `osslsigncode sign`: SHA-256 with page hashes, no timestamp.
fn sign(cert: &Certificate, unsigned: &Path, signed: &Path) -> Result<(), String> {
    let dir = signed.parent().ok_or("signed image path has no parent")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // osslsigncode does not overwrite its output.
    if signed.exists() {
        std::fs::remove_file(signed).map_err(|e| format!("{}: {e}", signed.display()))?;
    }
    eprintln!(
        "+ osslsigncode sign -h sha256 -ph {} -> {}",
        shown(unsigned).display(),
        shown(signed).display()
    );
    let out = run_tool(
        "osslsigncode",
        &[
            "sign".as_ref(),
            "-certs".as_ref(),
            cert.pem.as_os_str(),
            "-key".as_ref(),
            cert.key.as_os_str(),
            "-h".as_ref(),
            "sha256".as_ref(),
            "-ph".as_ref(),
            "-n".as_ref(),
            DESCRIPTION.as_ref(),
            "-in".as_ref(),
            unsigned.as_os_str(),
            "-out".as_ref(),
            signed.as_os_str(),
        ],
    )?;
    expect_success("osslsigncode sign", &out)
}

/// What a passed `verify` established.
const VERIFIED: &str = "osslsigncode verify ok (SHA-256 digest and page hashes)";

/// `osslsigncode verify` with the test certificate as the only trusted root.
fn verify(cert: &Certificate, signed: &Path) -> Result<(), String> {
    let out = verify_output(cert, signed)?;
    let text = output_text(&out);
    let ok = out.status.success()
        && text.contains("Signature verification: ok")
        && !text.contains("MISMATCH");
    if !ok {
        return Err(format!(
            "osslsigncode verify {} failed ({}):\n{text}",
            signed.display(),
            out.status
        ));
    }
    if !text.contains("Page hash algorithm  : SHA256") {
        return Err(format!(
            "osslsigncode verify {}: no SHA-256 page hashes in the signature:\n{text}",
            signed.display()
        ));
    }
    Ok(())
}

fn verify_output(cert: &Certificate, signed: &Path) -> Result<Output, String> {
    run_tool(
        "osslsigncode",
        &[
            "verify".as_ref(),
            "-CAfile".as_ref(),
            cert.pem.as_os_str(),
            "-in".as_ref(),
            signed.as_os_str(),
        ],
    )
}

/// A signed image with one byte of `.text` changed and its PE checksum made right
/// again must fail verification, on its digest.
fn prove_verify_live(cert: &Certificate, label: &str, signed: &[u8]) -> Result<(), String> {
    let mut tampered = signed.to_vec();
    let at = text_byte(&tampered).ok_or_else(|| format!("{label}: no .text section to change"))?;
    tampered[at] ^= 0x01;
    checks::fix_checksum(&mut tampered);
    let path = std::env::temp_dir().join(format!(
        "xtask-sign-{}-{}",
        std::process::id(),
        label.replace('/', "-")
    ));
    std::fs::write(&path, &tampered).map_err(|e| format!("{}: {e}", path.display()))?;
    let out = verify_output(cert, &path);
    let _ = std::fs::remove_file(&path);
    let out = out?;
    let text = output_text(&out);
    let digest_mismatch = text
        .lines()
        .any(|l| l.contains("Calculated message digest") && l.contains("MISMATCH"));
    if out.status.success() || !digest_mismatch {
        return Err(format!(
            "{label}: verification not live: a copy with .text byte {at:#x} changed gave \
             {} without a digest mismatch:\n{text}",
            out.status
        ));
    }
    Ok(())
}

/// The file offset of a byte in the middle of `.text`'s initialised data.
fn text_byte(data: &[u8]) -> Option<usize> {
    let pe = PeFile::<pe::ImageNtHeaders32>::parse(data)
        .map(|f| text_range(&f))
        .or_else(|_| PeFile::<pe::ImageNtHeaders64>::parse(data).map(|f| text_range(&f)))
        .ok()??;
    Some(pe.0 + pe.1 / 2)
}

fn text_range<Pe: ImageNtHeaders>(file: &PeFile<'_, Pe>) -> Option<(usize, usize)> {
    file.section_table()
        .iter()
        .find(|s| s.raw_name() == b".text")
        .map(|s| {
            let size = s.virtual_size.get(LE).min(s.size_of_raw_data.get(LE));
            (s.pointer_to_raw_data.get(LE) as usize, size as usize)
        })
}

/// Checks the security directory of a signed image and returns the table's size.
fn certificate_table(data: &[u8], image: &Image) -> Result<usize, String> {
    let directory = if image.target.arch == "i686" {
        security_directory::<pe::ImageNtHeaders32>(data)
    } else {
        security_directory::<pe::ImageNtHeaders64>(data)
    }?;
    check_certificate_table(data, directory)
}

fn security_directory<Pe: ImageNtHeaders>(data: &[u8]) -> Result<(usize, usize), String> {
    let file = PeFile::<Pe>::parse(data).map_err(|e| format!("not a PE image: {e}"))?;
    let entry = file
        .data_directories()
        .get(pe::IMAGE_DIRECTORY_ENTRY_SECURITY)
        .ok_or("no security directory entry")?;
    // The security directory holds a file offset, not an RVA.
    Ok((
        entry.virtual_address.get(LE) as usize,
        entry.size.get(LE) as usize,
    ))
}

/// The attribute certificate table at file offset `at`, `size` bytes, must be the end
/// of the file, 8-byte aligned, and start with a `WIN_CERTIFICATE` (`dwLength`,
/// `wRevision`, `wCertificateType`) of revision 2.0 holding PKCS#7 SignedData that fits
/// in the table.
fn check_certificate_table(data: &[u8], (at, size): (usize, usize)) -> Result<usize, String> {
    if at == 0 || size == 0 {
        return Err("no certificate table (security directory empty)".into());
    }
    if at % 8 != 0 || at.checked_add(size) != Some(data.len()) {
        return Err(format!(
            "certificate table at {at:#x}, {size} bytes: not 8-byte aligned at the end of the \
             {}-byte file",
            data.len()
        ));
    }
    let header = data
        .get(at..at + 8)
        .ok_or("certificate table shorter than a WIN_CERTIFICATE header")?;
    let length = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let revision = u16::from_le_bytes([header[4], header[5]]);
    let kind = u16::from_le_bytes([header[6], header[7]]);
    if revision != WIN_CERT_REVISION_2_0 || kind != WIN_CERT_TYPE_PKCS_SIGNED_DATA {
        return Err(format!(
            "WIN_CERTIFICATE revision {revision:#06x} type {kind:#06x}, expected \
             {WIN_CERT_REVISION_2_0:#06x} / {WIN_CERT_TYPE_PKCS_SIGNED_DATA:#06x} (PKCS#7)"
        ));
    }
    if length <= 8 || length > size {
        return Err(format!(
            "WIN_CERTIFICATE dwLength {length} does not fit the {size}-byte table"
        ));
    }
    Ok(size)
}

fn image_label(image: &Image) -> String {
    format!("{}/{}", image.target.arch, image.flavour.file)
}

/// Runs `program` with `args`, capturing its output.
fn run_tool(program: &str, args: &[&std::ffi::OsStr]) -> Result<Output, String> {
    Command::new(program).args(args).output().map_err(|e| {
        format!(
            "cannot run {program}: {e} (install it: ci/setup.sh installs openssl and osslsigncode)"
        )
    })
}

fn expect_success(what: &str, out: &Output) -> Result<(), String> {
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}",
            out.status,
            output_text(out)
        ))
    }
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The first line of `program args`, for the report.
fn tool_version(program: &str, args: &[&str]) -> Result<String, String> {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
    let out = run_tool(program, &args)?;
    expect_success(program, &out)?;
    let text = output_text(&out);
    let first = text.lines().next().unwrap_or_default().trim();
    Ok(first.trim_end_matches(", using:").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of `len` bytes whose certificate table of `size` bytes starts at `at`,
    /// with the given WIN_CERTIFICATE fields.
    fn file(len: usize, at: usize, length: u32, revision: u16, kind: u16) -> Vec<u8> {
        let mut d = vec![0u8; len];
        d[at..at + 4].copy_from_slice(&length.to_le_bytes());
        d[at + 4..at + 6].copy_from_slice(&revision.to_le_bytes());
        d[at + 6..at + 8].copy_from_slice(&kind.to_le_bytes());
        d
    }

    #[test]
    fn the_certificate_table_must_end_the_file_and_hold_pkcs7() {
        let good = file(4096 + 64, 4096, 60, 0x0200, 2);
        assert_eq!(check_certificate_table(&good, (4096, 64)), Ok(64));
        let err = |d: &[u8], dir| check_certificate_table(d, dir).unwrap_err();
        assert!(err(&good, (0, 0)).contains("no certificate table"));
        // Not at the end (bytes after it), not aligned.
        assert!(err(&good, (4096, 32)).contains("at the end"));
        let odd = file(4100 + 60, 4100, 56, 0x0200, 2);
        assert!(err(&odd, (4100, 60)).contains("aligned"));
        // Revision 1.0, an X.509 certificate instead of SignedData, a length past it.
        assert!(err(&file(4160, 4096, 60, 0x0100, 2), (4096, 64)).contains("revision 0x0100"));
        assert!(err(&file(4160, 4096, 60, 0x0200, 1), (4096, 64)).contains("PKCS#7"));
        assert!(err(&file(4160, 4096, 65, 0x0200, 2), (4096, 64)).contains("dwLength 65"));
    }

    fn x509_text(pem: &Path) -> String {
        let out = run_tool(
            "openssl",
            &[
                "x509".as_ref(),
                "-in".as_ref(),
                pem.as_os_str(),
                "-noout".as_ref(),
                "-text".as_ref(),
            ],
        )
        .unwrap();
        expect_success("openssl x509", &out).unwrap();
        output_text(&out)
    }

    #[test]
    fn makes_a_code_signing_certificate_once_and_replaces_an_unfit_one() {
        let dir = std::env::temp_dir().join(format!("xtask-sign-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cert = certificate(&dir).unwrap();
        let text = x509_text(&cert.pem);
        assert!(
            text.contains(&format!("Subject: CN = {SUBJECT_CN}")),
            "{text}"
        );
        assert!(
            text.contains(&format!("Issuer: CN = {SUBJECT_CN}")),
            "{text}"
        );
        assert!(text.contains("Public-Key: (3072 bit)"), "{text}");
        assert!(
            text.contains("Signature Algorithm: sha256WithRSAEncryption"),
            "{text}"
        );
        assert!(
            text.contains("X509v3 Extended Key Usage: \n                Code Signing\n"),
            "{text}"
        );
        assert!(
            text.contains("X509v3 Key Usage: critical\n                Digital Signature\n"),
            "{text}"
        );
        // The DER file is the same certificate.
        let der = std::fs::read(&cert.der).unwrap();
        assert_eq!(der[0], 0x30, "a DER SEQUENCE");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&cert.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A second run keeps it.
        let first = std::fs::read(&cert.pem).unwrap();
        certificate(&dir).unwrap();
        assert_eq!(std::fs::read(&cert.pem).unwrap(), first);
        // A certificate that is not for code signing is replaced.
        let other = run_tool(
            "openssl",
            &[
                "req",
                "-x509",
                "-new",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=other",
                "-days",
                "1",
                "-keyout",
            ]
            .map(std::ffi::OsStr::new)
            .into_iter()
            .chain([cert.key.as_os_str(), "-out".as_ref(), cert.pem.as_os_str()])
            .collect::<Vec<_>>(),
        )
        .unwrap();
        expect_success("openssl req", &other).unwrap();
        certificate(&dir).unwrap();
        assert!(x509_text(&cert.pem).contains(SUBJECT_CN));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_unknown_arguments() {
        assert!(
            command(&["--frobnicate".into()])
                .unwrap_err()
                .contains("--frobnicate")
        );
        assert!(
            command(&["--cert-dir".into()])
                .unwrap_err()
                .contains("needs a directory")
        );
    }
}
