//! The installation files in `inf/`, parsed as Windows setup and NTLDR read them, held
//! against what the driver and `cargo xtask build` actually are: the PCI IDs the driver
//! binds (`fabboot::pci`), the files and directories the build writes
//! (`xtask/src/images.rs`), the target and LUN numbering the miniport presents
//! (`fabboot::port::config`, `fabboot::initiator::luns`), the `DriverParameter` syntax
//! (`fabboot::bootcfg::args`). Then each parser's checks are shown to fail on broken
//! copies of the shipped files, and no input makes any parser panic.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use fabboot_tool::inf::bootini::{self, Adapter, ArcError, BootIni, BootIniError, Target};
use fabboot_tool::inf::inf_file::{FLG_ADDREG_TYPE_EXPAND_SZ, InfError, InfFile, RegEntry};
use fabboot_tool::inf::ini::{Dialect, Ini, SyntaxError};
use fabboot_tool::inf::txtsetup::{FileType, RegValue, TxtSetup, TxtSetupError};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tool/ is inside the workspace")
        .to_path_buf()
}

fn read(rel: &str) -> String {
    let p = root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn inf_text() -> String {
    read("inf/fabboot.inf")
}

fn inf() -> InfFile {
    InfFile::parse(&inf_text()).expect("fabboot.inf parses")
}

/// The hardware IDs of the functions the driver binds (`fabboot::pci::DEVICE_IDS`), in
/// upper case.
fn driver_hardware_ids() -> BTreeSet<String> {
    fabboot::pci::DEVICE_IDS
        .iter()
        .map(|(id, _)| {
            format!(
                "PCI\\VEN_{:04X}&DEV_{id:04X}",
                fabboot::pci::VENDOR_MELLANOX
            )
        })
        .collect()
}

/// What `cargo xtask build` writes: `target/sys/<arch>/<file>` for each target and
/// flavour, read from xtask's own tables (xtask is a binary crate, so its source is
/// read: the `arch`/`triple` fields of `TARGETS` and `feature`/`file` of `FLAVOURS`).
struct Layout {
    /// (directory under target/sys, target triple)
    targets: Vec<(String, String)>,
    /// (cargo feature, file name)
    flavours: Vec<(String, String)>,
}

impl Layout {
    fn read() -> Layout {
        let src = read("xtask/src/images.rs");
        let block = |name: &str| {
            let start = src
                .find(&format!("pub const {name}"))
                .unwrap_or_else(|| panic!("images.rs has no {name}"));
            let len = src[start..].find("];").expect("the table ends");
            src[start..start + len].to_string()
        };
        let fields = |block: &str, field: &str| -> Vec<String> {
            block
                .split(&format!("{field}: \""))
                .skip(1)
                .map(|s| s.split('"').next().unwrap_or("").to_string())
                .collect()
        };
        let (t, f) = (block("TARGETS"), block("FLAVOURS"));
        let (arch, triple) = (fields(&t, "arch"), fields(&t, "triple"));
        let (feature, file) = (fields(&f, "feature"), fields(&f, "file"));
        assert!(!arch.is_empty() && arch.len() == triple.len(), "{t}");
        assert!(!feature.is_empty() && feature.len() == file.len(), "{f}");
        Layout {
            targets: arch.into_iter().zip(triple).collect(),
            flavours: feature.into_iter().zip(file).collect(),
        }
    }

    /// The file of a flavour (`storport`, `scsiport`).
    fn file(&self, feature: &str) -> &str {
        &self
            .flavours
            .iter()
            .find(|(f, _)| f == feature)
            .unwrap_or_else(|| panic!("no {feature} flavour"))
            .1
    }

    /// The directory of the target whose triple starts with `cpu`.
    fn dir(&self, cpu: &str) -> &str {
        &self
            .targets
            .iter()
            .find(|(_, t)| t.starts_with(cpu))
            .unwrap_or_else(|| panic!("no {cpu} target"))
            .0
    }
}

/// The models sections' platforms, each with its install section (decorated).
const PLATFORMS: [(&str, &str, &str); 2] = [
    // (models platform, SourceDisks decoration, target triple's CPU)
    ("NTx86", "x86", "i686"),
    ("NTamd64", "amd64", "x86_64"),
];

#[test]
fn inf_parses_and_every_reference_leads_somewhere() {
    let inf = inf();
    inf.check().expect("every section, token and file resolves");
    assert_eq!(
        inf.version("Class").unwrap().as_deref(),
        Some("SCSIAdapter")
    );
    assert_eq!(
        inf.version("ClassGUID").unwrap().as_deref(),
        Some("{4D36E97B-E325-11CE-BFC1-08002BE10318}")
    );
    assert_eq!(inf.version("Provider").unwrap().as_deref(), Some("fabboot"));
    assert_eq!(
        inf.version("CatalogFile").unwrap().as_deref(),
        Some("fabboot.cat")
    );
    assert_eq!(inf.version("PnpLockdown").unwrap().as_deref(), Some("1"));
    // DriverVer = mm/dd/yyyy,w.x.y.z with the crate's version: the one the images'
    // version resource carries.
    let driver_ver = inf.section("Version").unwrap().first("DriverVer").unwrap();
    let [date, version] = driver_ver.values.as_slice() else {
        panic!("DriverVer = date,version: {driver_ver:?}");
    };
    let date: Vec<u32> = date.split('/').map(|p| p.parse().unwrap()).collect();
    assert!(
        matches!(date[..], [m, d, y] if (1..=12).contains(&m) && (1..=31).contains(&d) && y >= 2000),
        "{driver_ver:?}"
    );
    let cargo = read("Cargo.toml");
    let crate_version = cargo
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("the driver crate's version");
    assert_eq!(*version, format!("{crate_version}.0"));
}

#[test]
fn inf_binds_exactly_the_functions_the_driver_accepts_on_both_architectures() {
    let inf = inf();
    let models = inf.models().unwrap();
    let platforms: BTreeSet<_> = models.iter().filter_map(|m| m.platform.clone()).collect();
    assert_eq!(
        platforms,
        PLATFORMS
            .iter()
            .map(|p| p.0.to_string())
            .collect::<BTreeSet<_>>()
    );
    assert!(
        models.iter().all(|m| m.platform.is_some()),
        "no undecorated models"
    );
    for (platform, _, _) in PLATFORMS {
        let here: Vec<_> = models
            .iter()
            .filter(|m| m.platform.as_deref() == Some(platform))
            .collect();
        let ids: BTreeSet<String> = here
            .iter()
            .map(|m| {
                assert_eq!(
                    m.hardware_ids.len(),
                    1,
                    "one hardware ID per line, no compatible IDs"
                );
                m.hardware_ids[0].to_ascii_uppercase()
            })
            .collect();
        assert_eq!(ids.len(), here.len(), "{platform}: an ID listed twice");
        assert_eq!(ids, driver_hardware_ids(), "{platform}");
        for (id, name) in fabboot::pci::DEVICE_IDS {
            let m = here
                .iter()
                .find(|m| {
                    m.hardware_ids[0]
                        .to_ascii_uppercase()
                        .ends_with(&format!("DEV_{id:04X}"))
                })
                .unwrap();
            assert!(m.description.contains(name), "{}: {name}", m.description);
            // The platform's own install section, not a fallback.
            let install = inf
                .install_section(&m.install, Some(platform))
                .expect("install section");
            assert_eq!(install.name, format!("{}.{platform}", m.install));
        }
    }
}

/// The install section of a platform.
fn install_name(inf: &InfFile, platform: &str) -> String {
    let m = inf.models().unwrap();
    let m = m
        .iter()
        .find(|m| m.platform.as_deref() == Some(platform))
        .unwrap();
    inf.install_section(&m.install, Some(platform))
        .unwrap()
        .name
        .clone()
}

fn reg(entries: &[RegEntry], subkey: &str, name: &str) -> Option<RegEntry> {
    entries
        .iter()
        .find(|e| e.subkey.eq_ignore_ascii_case(subkey) && e.name.eq_ignore_ascii_case(name))
        .cloned()
}

#[test]
fn inf_installs_a_boot_start_scsi_miniport_service() {
    let inf = inf();
    for (platform, _, _) in PLATFORMS {
        let install = install_name(&inf, platform);
        let services = inf
            .section(&format!("{install}.Services"))
            .expect(".Services");
        let adds = inf.add_services(services).unwrap();
        assert_eq!(adds.len(), 1, "{platform}");
        let add = &adds[0];
        assert_eq!(add.name, "fabboot");
        assert_eq!(
            add.flags, 0x2,
            "SPSVCINST_ASSOCSERVICE: the device's function driver"
        );
        let service = inf.service(&add.service_section).unwrap();
        assert_eq!(service.service_type, 1, "kernel driver");
        assert_eq!(service.start_type, 0, "boot start");
        assert_eq!(service.error_control, 1, "normal");
        assert_eq!(service.load_order_group.as_deref(), Some("SCSI miniport"));
        assert_eq!(service.binary, "%12%\\fabboot.sys");

        let params: Vec<RegEntry> = service
            .add_reg
            .iter()
            .flat_map(|s| inf.reg_entries(s).unwrap())
            .collect();
        let pnp = reg(&params, "Parameters\\PnpInterface", "5").expect("PnpInterface 5");
        assert_eq!((pnp.root.as_str(), pnp.dword()), ("HKR", Some(1)), "PCIBus");
        let bus = reg(&params, "Parameters", "BusType").expect("BusType");
        assert_eq!(bus.dword(), Some(1), "STORAGE_BUS_TYPE SCSI");
        assert!(
            reg(&params, "Parameters\\Device", "DriverParameter").is_none(),
            "no target is set by the INF"
        );

        let log_section = inf
            .section(add.event_log_section.as_deref().unwrap())
            .unwrap();
        let log: Vec<RegEntry> = log_section
            .keyed("AddReg")
            .flat_map(|l| l.values.clone())
            .flat_map(|s| inf.reg_entries(&s).unwrap())
            .collect();
        let file = reg(&log, "", "EventMessageFile").expect("EventMessageFile");
        assert_eq!(file.flags, FLG_ADDREG_TYPE_EXPAND_SZ);
        assert_eq!(file.data, ["%SystemRoot%\\System32\\IoLogMsg.dll"]);
        assert_eq!(
            reg(&log, "", "TypesSupported").and_then(|e| e.dword()),
            Some(7)
        );
    }
}

#[test]
fn inf_driver_parameter_example_is_commented_out_and_in_the_drivers_syntax() {
    let text = inf_text();
    let commented: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix(';'))
        .filter(|l| l.contains("DriverParameter") && l.trim_start().starts_with("HKR"))
        .collect();
    assert_eq!(commented.len(), 1, "one example line");
    let line = Ini::parse(&format!("[x]\n{}", commented[0]), Dialect::INF).unwrap();
    let line = &line.section("x").unwrap().lines[0];
    assert_eq!(line.value(1), Some("Parameters\\Device"));
    assert_eq!(line.value(3), Some("0x00000000"), "REG_SZ");
    let value = line.value(4).expect("the string");
    let config = fabboot::bootcfg::args::parse(value.as_bytes())
        .expect("the driver accepts the example")
        .expect("and it names a target");
    assert_eq!(config.lun, 0);
    assert_eq!(config.target.pkey, 0xFFFF);
}

#[test]
fn inf_hw_section_enables_the_one_msix_message_the_driver_uses() {
    let inf = inf();
    for (platform, _, _) in PLATFORMS {
        let install = install_name(&inf, platform);
        let hw = inf.section(&format!("{install}.HW")).expect(".HW");
        let entries: Vec<RegEntry> = hw
            .keyed("AddReg")
            .flat_map(|l| l.values.clone())
            .flat_map(|s| inf.reg_entries(&s).unwrap())
            .collect();
        let key = "Interrupt Management\\MessageSignaledInterruptProperties";
        assert_eq!(
            reg(&entries, key, "MSISupported").and_then(|e| e.dword()),
            Some(1)
        );
        assert_eq!(
            reg(&entries, key, "MessageNumberLimit").and_then(|e| e.dword()),
            Some(1),
            "one event queue on vector 0"
        );
        assert!(entries.iter().all(|e| e.root == "HKR"));
    }
}

#[test]
fn inf_copies_the_storport_image_from_where_xtask_builds_it() {
    let inf = inf();
    let layout = Layout::read();
    let storport = layout.file("storport");
    for (platform, arch, cpu) in PLATFORMS {
        let install = inf.section(&install_name(&inf, platform)).unwrap().clone();
        let copied: Vec<String> = inf
            .copy_files(&install)
            .unwrap()
            .into_iter()
            .map(|(_, f)| f)
            .collect();
        assert_eq!(copied, [storport], "{platform}");
        let sources = inf.source_files(Some(arch));
        assert!(
            sources.iter().all(|s| s.name == storport),
            "{platform}: the package holds the storport image only: {sources:?}"
        );
        let disks = inf.source_disks(Some(arch)).unwrap();
        for file in &copied {
            let s = sources.iter().find(|s| &s.name == file).unwrap();
            let disk = disks.iter().find(|d| d.id == s.disk).unwrap();
            let mut dir = disk.path.clone().unwrap_or_default();
            if let Some(sub) = &s.subdir {
                dir = format!("{dir}\\{sub}");
            }
            // Relative to the package root, target/sys/ as xtask lays it out.
            assert_eq!(dir, format!("\\{}", layout.dir(cpu)), "{platform}: {file}");
        }
    }
}

#[test]
fn txtsetup_installs_the_i686_scsiport_image_as_a_service_of_its_name() {
    let t = TxtSetup::parse(&read("inf/txtsetup.oem")).expect("txtsetup.oem parses");
    let layout = Layout::read();
    assert_eq!(t.options.len(), 1, "x86 only: one option");
    let o = &t.options[0];
    assert_eq!(t.default_scsi.as_deref(), Some(o.id.as_str()));
    assert!(o.description.contains("x86"));
    let drivers: Vec<_> = o.drivers().collect();
    assert_eq!(drivers.len(), 1);
    let d = drivers[0];
    assert_eq!(d.name, layout.file("scsiport"), "the loader flavour's file");
    let service = d.driver_key.clone().unwrap();
    assert_eq!(
        format!("{service}.sys").to_ascii_lowercase(),
        d.name.to_ascii_lowercase(),
        "setup loads system32\\drivers\\<service>.sys"
    );
    assert_eq!(o.key.as_deref(), Some(service.as_str()));
    assert!(
        o.files.iter().all(|f| f.kind != FileType::Inf),
        "no INF for this flavour"
    );
    let disk = t.disks.iter().find(|k| k.id == d.disk).unwrap();
    assert_eq!(
        (disk.directory.as_str(), disk.tag_file.as_str()),
        ("\\", "\\txtsetup.oem")
    );

    let ids: BTreeSet<String> = o
        .hardware_ids
        .iter()
        .map(|h| h.id.to_ascii_uppercase())
        .collect();
    assert_eq!(ids.len(), o.hardware_ids.len());
    assert_eq!(ids, driver_hardware_ids());
    assert!(o.hardware_ids.iter().all(|h| h.service == service));

    let value = |subkey: &str, name: &str| {
        o.config
            .iter()
            .find(|c| c.subkey.eq_ignore_ascii_case(subkey) && c.name.eq_ignore_ascii_case(name))
            .map(|c| c.value.clone())
    };
    assert!(o.config.iter().all(|c| c.driver_key == service));
    assert_eq!(value("", "Type"), Some(RegValue::Dword(1)));
    assert_eq!(value("", "Start"), Some(RegValue::Dword(0)));
    assert_eq!(value("", "ErrorControl"), Some(RegValue::Dword(1)));
    assert_eq!(
        value("", "Group"),
        Some(RegValue::Sz("SCSI miniport".into()))
    );
    assert_eq!(
        value("Parameters\\PnpInterface", "5"),
        Some(RegValue::Dword(1))
    );
}

/// What the scsiport miniport tells the port about its bus: (buses, targets,
/// initiator's own ID).
fn presented() -> (u8, u8, u8) {
    use fabboot::port::abi::PORT_CONFIGURATION_INFORMATION;
    let mut c = PORT_CONFIGURATION_INFORMATION::zeroed();
    c.Length = u32::try_from(size_of::<PORT_CONFIGURATION_INFORMATION>()).unwrap();
    fabboot::port::config::describe_adapter(&mut c, fabboot::port::Flavour::Scsiport, 17, None);
    (
        c.NumberOfBuses,
        c.MaximumNumberOfTargets,
        c.InitiatorBusId[0],
    )
}

#[test]
fn boot_ini_example_names_the_target_and_lun_the_driver_presents() {
    let b = BootIni::parse(&read("inf/boot.ini.example")).expect("boot.ini.example parses");
    let (buses, targets, initiator) = presented();
    assert_eq!(
        (buses, targets),
        (1, 1),
        "one bus with one target: the SRP target"
    );
    let default = b.default_entry().expect("default listed");
    let Target::Arc(d) = &default.target else {
        panic!("default is an ARC path");
    };
    assert_eq!(d.adapter, Adapter::Scsi(0));
    let mut kinds = BTreeSet::new();
    for e in &b.entries {
        let Target::Arc(a) = &e.target else {
            panic!("line {}: not an ARC path", e.line);
        };
        kinds.insert(match a.adapter {
            Adapter::Scsi(w) => {
                assert_eq!(w, 0, "the first adapter ntbootdd.sys finds");
                "scsi"
            }
            Adapter::Signature(_) => "signature",
            Adapter::Multi(_) => panic!("multi() does not go through ntbootdd.sys"),
        });
        // disk(X): the one target the driver presents, which is not the initiator's ID.
        assert!(
            a.disk < u32::from(targets) && a.disk != u32::from(initiator),
            "{a}"
        );
        // rdisk(Y): an index into the REPORT LUNS list; index 0 always exists (LUN 0
        // alone before the list is known or when it cannot be read).
        let lun = u8::try_from(a.rdisk).unwrap();
        assert!(usize::from(lun) < fabboot::initiator::luns::MAX_LUNS);
        assert!(
            fabboot::initiator::luns::LunMap::default()
                .get(lun)
                .is_some()
        );
        assert_eq!((a.partition, a.path.as_str()), (1, "\\WINDOWS"));
        assert!(e.options.iter().any(|o| o == "/fastdetect"));
        // What is printed is what parses.
        assert_eq!(bootini::parse_arc_path(&a.to_string()).unwrap(), *a);
    }
    assert_eq!(kinds, BTreeSet::from(["scsi", "signature"]));
}

#[test]
fn arc_line_formats_what_boot_ini_parses_back() {
    let line = bootini::arc_line(
        Adapter::Scsi(0),
        0,
        0,
        1,
        "\\WINDOWS",
        "SRP",
        &["/fastdetect"],
    )
    .unwrap();
    assert_eq!(
        line,
        "scsi(0)disk(0)rdisk(0)partition(1)\\WINDOWS=\"SRP\" /fastdetect"
    );
    let sig = bootini::arc_line(
        Adapter::Signature(0x0012_ABCD),
        0,
        3,
        2,
        "\\WINNT\\X",
        "Windows, on SRP",
        &["/fastdetect", "/noexecute=optout"],
    )
    .unwrap();
    assert_eq!(
        sig,
        "signature(0012abcd)disk(0)rdisk(3)partition(2)\\WINNT\\X=\"Windows, on SRP\" /fastdetect /noexecute=optout"
    );
    let default = sig.split('=').next().unwrap();
    let b = BootIni::parse(&format!(
        "[boot loader]\r\ndefault={default}\r\n[operating systems]\r\n{line}\r\n{sig}\r\n"
    ))
    .unwrap();
    let e = b.default_entry().unwrap();
    assert_eq!(e.title, "Windows, on SRP");
    assert_eq!(e.options, ["/fastdetect", "/noexecute=optout"]);
    assert_eq!(
        e.target,
        Target::Arc(bootini::ArcPath {
            adapter: Adapter::Signature(0x0012_ABCD),
            disk: 0,
            rdisk: 3,
            partition: 2,
            path: "\\WINNT\\X".into(),
        })
    );
    // What cannot be written.
    let bad = |adapter, partition, path, title, options: &[&str]| {
        bootini::arc_line(adapter, 0, 0, partition, path, title, options).unwrap_err()
    };
    assert_eq!(
        bad(Adapter::Scsi(0), 0, "\\W", "t", &[]),
        ArcError::PartitionZero
    );
    for path in [
        "WINDOWS",
        "\\",
        "",
        "\\WIN DOWS",
        "\\A\\\\B",
        "\\A=B",
        "\\A\"",
    ] {
        assert_eq!(
            bad(Adapter::Scsi(0), 1, path, "t", &[]),
            ArcError::BadPath { path: path.into() }
        );
    }
    assert_eq!(
        bad(Adapter::Scsi(0), 1, "\\W", "a \"b\"", &[]),
        ArcError::BadTitle
    );
    assert_eq!(
        bad(Adapter::Scsi(0), 1, "\\W", "a\nb", &[]),
        ArcError::BadTitle
    );
    for option in ["fastdetect", "/", "/a b", "/\"x\""] {
        assert_eq!(
            bad(Adapter::Scsi(0), 1, "\\W", "t", &[option]),
            ArcError::BadOption {
                option: option.into()
            }
        );
    }
}

#[test]
fn bad_arc_paths_are_typed_errors() {
    let cases: [(&str, ArcError); 13] = [
        ("", ArcError::Empty),
        (
            "eisa(0)disk(0)rdisk(0)partition(1)\\W",
            ArcError::UnknownAdapter {
                name: "eisa".into(),
            },
        ),
        (
            "scsi(0)disk(0)partition(1)\\W",
            ArcError::Expected {
                component: "rdisk",
                found: "partition".into(),
            },
        ),
        (
            "scsi(0)disk(0)rdisk(0)\\W",
            ArcError::Expected {
                component: "partition",
                found: String::new(),
            },
        ),
        (
            "scsi(x)disk(0)rdisk(0)partition(1)\\W",
            ArcError::BadNumber {
                component: "scsi",
                text: "x".into(),
            },
        ),
        (
            "scsi(0)disk(4294967296)rdisk(0)partition(1)\\W",
            ArcError::BadNumber {
                component: "disk",
                text: "4294967296".into(),
            },
        ),
        (
            "signature(123456789)disk(0)rdisk(0)partition(1)\\W",
            ArcError::BadSignature {
                text: "123456789".into(),
            },
        ),
        (
            "signature(xyz)disk(0)rdisk(0)partition(1)\\W",
            ArcError::BadSignature { text: "xyz".into() },
        ),
        (
            "multi(0)disk(0)rdisk(0)partition(0)\\W",
            ArcError::PartitionZero,
        ),
        (
            "scsi(0)disk(0)rdisk(0)partition(1)WINDOWS",
            ArcError::Syntax { at: 34 },
        ),
        (
            "scsi(0disk(0)rdisk(0)partition(1)\\W",
            ArcError::Syntax { at: 0 },
        ),
        (
            "scsi(0)disk(0)rdisk(0)partition(1)\\WIN DOWS",
            ArcError::BadPath {
                path: "\\WIN DOWS".into(),
            },
        ),
        (
            "scsi(0)disk(0)rdisk(0)partition(1)extra(2)\\W",
            ArcError::Expected {
                component: "the system directory",
                found: "extra".into(),
            },
        ),
    ];
    for (text, want) in cases {
        assert_eq!(bootini::parse_arc_path(text), Err(want), "{text:?}");
    }
    // Names ignore case; hex signatures too.
    let a = bootini::parse_arc_path("SCSI(1)Disk(0)RDISK(2)Partition(3)\\Windows").unwrap();
    assert_eq!(
        (a.adapter, a.disk, a.rdisk, a.partition),
        (Adapter::Scsi(1), 0, 2, 3)
    );
    let s = bootini::parse_arc_path("signature(ABCDEF)disk(0)rdisk(0)partition(1)").unwrap();
    assert_eq!(
        (s.adapter, s.path.as_str()),
        (Adapter::Signature(0xABCDEF), "")
    );
}

#[test]
fn bad_boot_ini_files_are_typed_errors_with_lines() {
    let shipped = read("inf/boot.ini.example");
    let lines: Vec<&str> = shipped.lines().collect();
    let line_of = |needle: &str| lines.iter().position(|l| l.starts_with(needle)).unwrap() + 1;
    let edit = |from: &str, to: &str| {
        assert!(shipped.contains(from), "{from}");
        BootIni::parse(&shipped.replacen(from, to, 1)).unwrap_err()
    };
    assert_eq!(edit("default=", "fallback="), BootIniError::NoDefault);
    assert_eq!(
        edit(
            "default=scsi(0)disk(0)rdisk(0)",
            "default=scsi(1)disk(0)rdisk(0)"
        ),
        BootIniError::DefaultNotListed {
            line: line_of("default=")
        }
    );
    assert_eq!(
        edit("timeout=10", "timeout=ten"),
        BootIniError::BadTimeout {
            line: line_of("timeout=")
        }
    );
    assert_eq!(
        edit(
            "\\WINDOWS=\"Windows Server 2003 (SRP disk, fabboot)\"",
            "\\WINDOWS=Windows"
        ),
        BootIniError::BadEntry {
            line: line_of("scsi(0)")
        }
    );
    assert_eq!(
        edit("signature(8b467c12)", "signature(8b467c12z)"),
        BootIniError::BadPath {
            line: line_of("signature("),
            error: ArcError::BadSignature {
                text: "8b467c12z".into()
            }
        }
    );
    assert_eq!(
        edit("[operating systems]", "[systems]"),
        BootIniError::MissingSection {
            name: "operating systems"
        }
    );
    assert_eq!(
        edit(
            "\"Windows Server 2003 (SRP disk, fabboot)\"",
            "\"Windows Server 2003 (SRP disk, fabboot)"
        ),
        BootIniError::Syntax(SyntaxError::UnterminatedQuote {
            line: line_of("scsi(0)")
        })
    );
}

/// The shipped INF with `from` replaced by `to` (which must be there).
fn broken_inf(from: &str, to: &str) -> (String, usize) {
    let text = inf_text();
    let at = text
        .find(from)
        .unwrap_or_else(|| panic!("{from:?} is not in fabboot.inf"));
    let line = text[..at].lines().count() + usize::from(text[..at].ends_with('\n'));
    (text.replacen(from, to, 1), line.max(1))
}

/// 1-based line of the first line starting with `prefix` in the shipped INF.
fn inf_line(prefix: &str) -> usize {
    inf_text()
        .lines()
        .position(|l| l.starts_with(prefix))
        .unwrap()
        + 1
}

#[test]
fn inf_checks_fail_on_broken_copies() {
    let parse = |text: &str| InfFile::parse(text);
    let check = |text: &str| parse(text).unwrap().check();

    let (t, line) = broken_inf("Provider    = \"fabboot\"", "Provider    = \"fabboot");
    assert_eq!(
        parse(&t).unwrap_err(),
        InfError::Syntax(SyntaxError::UnterminatedQuote { line })
    );
    let (t, _) = broken_inf("[Version]", "[Versions]");
    assert_eq!(
        parse(&t).unwrap_err(),
        InfError::MissingSection {
            name: "Version".into()
        }
    );
    let (t, line) = broken_inf("\"$WINDOWS NT$\"", "\"$Windows 95$\"");
    assert_eq!(
        parse(&t).unwrap_err(),
        InfError::BadSignature {
            line,
            found: "$Windows 95$".into()
        }
    );
    // A section a directive names, gone.
    let (t, _) = broken_inf("[fabboot_Msi]", "[fabboot_Msi_renamed]");
    assert_eq!(
        check(&t),
        Err(InfError::MissingReference {
            line: inf_line("AddReg = fabboot_Msi"),
            directive: "AddReg".into(),
            section: "fabboot_Msi".into(),
        })
    );
    // A models section [Manufacturer] names, gone.
    let (t, _) = broken_inf("[fabboot.NTamd64]", "[fabboot.NTarm64]");
    assert_eq!(
        check(&t),
        Err(InfError::MissingReference {
            line: inf_line("%Mfg%"),
            directive: "Manufacturer".into(),
            section: "fabboot.NTamd64".into(),
        })
    );
    // AddService's service section, gone.
    let (t, _) = broken_inf("[fabboot_Service]", "[fabboot_Svc]");
    assert_eq!(
        check(&t),
        Err(InfError::MissingReference {
            line: inf_line("AddService"),
            directive: "AddService".into(),
            section: "fabboot_Service".into(),
        })
    );
    // An install section a models line names, gone (no fallback either).
    let (t, _) = broken_inf("[fabboot_Inst.NTx86]", "[fabboot_Inst.NTia64]");
    assert!(
        matches!(check(&t), Err(InfError::MissingReference { ref section, .. }) if section == "fabboot_Inst"),
        "{:?}",
        check(&t)
    );
    // A token [Strings] does not define, and one not closed.
    let (t, _) = broken_inf("Dev1017     = ", "Dev1017x    = ");
    assert_eq!(
        check(&t),
        Err(InfError::UndefinedToken {
            line: inf_line("%Dev1017%"),
            token: "Dev1017".into()
        })
    );
    let (t, line) = broken_inf(
        "DisplayName    = %ServiceName%",
        "DisplayName    = %ServiceName",
    );
    assert_eq!(check(&t), Err(InfError::UnterminatedToken { line }));
    // A copied file no SourceDisksFiles lists; a source file on no listed disk.
    let (t, _) = broken_inf(
        "[fabboot_Files]\nfabboot.sys",
        "[fabboot_Files]\nfabboot2.sys",
    );
    assert_eq!(
        check(&t),
        Err(InfError::NoSourceFile {
            line: inf_line("[fabboot_Files]") + 1,
            file: "fabboot2.sys".into()
        })
    );
    let (t, line) = broken_inf(
        "[SourceDisksFiles.amd64]\nfabboot.sys = 1",
        "[SourceDisksFiles.amd64]\nfabboot.sys = 2",
    );
    assert_eq!(
        check(&t),
        Err(InfError::NoSourceDisk {
            line: line + 1,
            disk: "2".into()
        })
    );
    // No destination for a copied section.
    let (t, _) = broken_inf("DefaultDestDir = 12\nfabboot_Files  = 12\n", "");
    assert!(
        matches!(check(&t), Err(InfError::NoDestination { .. })),
        "{:?}",
        check(&t)
    );
    // A service section without its StartType.
    let (t, _) = broken_inf("StartType      = 0\n", "");
    assert_eq!(
        check(&t),
        Err(InfError::MissingKey {
            section: "fabboot_Service".into(),
            key: "StartType".into()
        })
    );
    // A continuation at the end of the file.
    let t = format!("{}\\\n", inf_text());
    assert!(matches!(
        parse(&t),
        Err(InfError::Syntax(SyntaxError::ContinuationAtEnd { .. }))
    ));
}

#[test]
fn txtsetup_checks_fail_on_broken_copies() {
    let shipped = read("inf/txtsetup.oem");
    let line_of = |needle: &str| shipped.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    let edit = |from: &str, to: &str| {
        assert!(shipped.contains(from), "{from}");
        TxtSetup::parse(&shipped.replacen(from, to, 1)).unwrap_err()
    };
    let option_line = line_of("ntbootdd = ");
    for section in [
        "Files.scsi.ntbootdd",
        "HardwareIds.scsi.ntbootdd",
        "Config.ntbootdd",
    ] {
        assert_eq!(
            edit(&format!("[{section}]"), &format!("[{section}x]")),
            TxtSetupError::MissingOptionSection {
                line: option_line,
                section: section.into()
            }
        );
    }
    assert_eq!(
        edit("[Disks]", "[Disk]"),
        TxtSetupError::MissingSection {
            name: "Disks".into()
        }
    );
    assert_eq!(
        edit("driver = d1,", "driver = d2,"),
        TxtSetupError::UnknownDisk {
            line: line_of("driver = "),
            disk: "d2".into()
        }
    );
    assert_eq!(
        edit(
            "driver = d1, ntbootdd.sys, ntbootdd",
            "inf = d1, ntbootdd.inf"
        ),
        TxtSetupError::NoDriver {
            line: option_line,
            id: "ntbootdd".into()
        }
    );
    assert_eq!(
        edit("DEV_1019\", \"ntbootdd\"", "DEV_1019\", \"fabboot\""),
        TxtSetupError::UnknownService {
            line: line_of("id = \"PCI\\VEN_15B3&DEV_1019"),
            service: "fabboot".into()
        }
    );
    assert_eq!(
        edit("scsi = ntbootdd", "scsi = other"),
        TxtSetupError::DefaultNotListed {
            line: line_of("scsi = "),
            id: "other".into()
        }
    );
    assert_eq!(
        edit("Start, REG_DWORD, 0", "Start, REG_DWORD, 123456789"),
        TxtSetupError::BadValue {
            line: line_of("value = \"\", Start"),
            what: "REG_DWORD data is 1 to 8 hex digits"
        }
    );
    assert_eq!(
        edit("Type, REG_DWORD, 1", "Type, REG_QWORD, 1"),
        TxtSetupError::BadValue {
            line: line_of("value = \"\", Type"),
            what: "unknown value type"
        }
    );
    assert_eq!(
        edit("driver = d1", "drivers = d1"),
        TxtSetupError::UnknownFileType {
            line: line_of("driver = "),
            kind: "drivers".into()
        }
    );
    assert_eq!(
        edit("\"SCSI miniport\"", "\"SCSI miniport"),
        TxtSetupError::Syntax(SyntaxError::UnterminatedQuote {
            line: line_of("value = \"\", Group")
        })
    );
}

/// xorshift64*: a fixed, seeded sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Runs every parser and every reader on `text`; any panic fails the test.
fn exercise(text: &str) {
    if let Ok(inf) = InfFile::parse(text) {
        let _ = inf.check();
        let _ = inf.models();
        for s in &inf.ini().sections {
            let _ = inf.reg_entries(&s.name);
            let _ = inf.service(&s.name);
            let _ = inf.add_services(s);
            let _ = inf.copy_files(s);
        }
        let _ = inf.source_disks(Some("amd64"));
    }
    let _ = TxtSetup::parse(text);
    let _ = BootIni::parse(text);
    for line in text.lines() {
        let _ = bootini::parse_arc_path(line);
    }
}

#[test]
fn no_input_makes_a_parser_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // Random text over the characters the syntax gives meaning to.
    const ALPHABET: &[&str] = &[
        "[",
        "]",
        "=",
        ",",
        ";",
        "\"",
        "\\",
        "%",
        "(",
        ")",
        "#",
        "\n",
        "\r\n",
        " ",
        "a",
        "0",
        "9",
        "x",
        "é",
        "Version",
        "Signature",
        "$Windows NT$",
        "Manufacturer",
        "scsi",
        "disk",
        "rdisk",
        "partition",
        "signature",
        "multi",
        "AddReg",
        "CopyFiles",
        "AddService",
        "Strings",
        "@",
        "Disks",
        "Defaults",
        "Files.scsi.",
        "driver",
        "HardwareIds.scsi.",
        "Config.",
        "value",
        "REG_DWORD",
        "boot loader",
        "default",
        "operating systems",
        "/",
    ];
    for _ in 0..20_000 {
        let len = rng.below(60);
        let text: String = (0..len)
            .map(|_| ALPHABET[rng.below(ALPHABET.len())])
            .collect();
        exercise(&text);
    }
    // The shipped files, each damaged at random places.
    for rel in [
        "inf/fabboot.inf",
        "inf/txtsetup.oem",
        "inf/boot.ini.example",
    ] {
        let original = read(rel);
        let chars: Vec<char> = original.chars().collect();
        for _ in 0..300 {
            let mut c = chars.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(c.len());
                match rng.below(3) {
                    0 => {
                        c.remove(at);
                    }
                    1 => c.insert(at, ['"', '%', '\\', '[', ']', ',', '=', '('][rng.below(8)]),
                    _ => c.truncate(at),
                }
                if c.is_empty() {
                    break;
                }
            }
            exercise(&c.into_iter().collect::<String>());
        }
    }
}
