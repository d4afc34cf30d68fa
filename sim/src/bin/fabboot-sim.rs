//! `fabboot-sim`: runs the driver's layers against the simulator.
//!
//! * `hca-bringup`: brings the simulated ConnectX function up and down with the access
//!   layer, from power-on and from a state an earlier driver left it in, and prints
//!   what it did. Exits non-zero on any error or device violation.
//! * `fabric [--sm builtin|opensm] [--pcap FILE]`: a whole subnet: the subnet manager
//!   brings a host function and an SRP target up, the host queries the SA, logs in
//!   and moves data by RDMA; with `--pcap`, every packet that crosses a link is
//!   written to FILE (LINKTYPE_INFINIBAND). Exits non-zero if anything fails.
//! * `driver [--sm builtin|opensm] [--pcap FILE] [--ios N] [--large N]`: the driver's
//!   own initiator (port bring-up, SA path, CM, SRP login, SCSI I/O) linked natively
//!   against the same subnet; prints the figures of [`fabboot_sim::drive`].
//! * `boot [--sm builtin|opensm] [--pcap FILE] [--disk IMAGE] [--loader-arch ARCH]
//!   [--kernel-arch ARCH] [--images DIR] [--report FILE] [--seed N] [--ios N]`: the main
//!   job. The shipped images in the host emulator boot a machine from the SRP disk:
//!   NTLDR through `ntbootdd.sys`, then the kernel through `fabboot.sys` with a
//!   paging-like workload, then a crash and the dump stack writing its dump
//!   ([`fabboot_sim::boot`]). Exits non-zero on any failure or violation.
//! * `faults [--sm builtin|opensm] [--seed N] [--images DIR] [--report FILE]
//!   [--arch ARCH] [--window-s N] [--flaps N]`: the fault campaign
//!   ([`fabboot_sim::faults`]): the kernel image pages while links flap, the target
//!   restarts, LIDs change, QPs fail, the SA is busy, and the target disconnects and
//!   logs out, all at seeded random times; then the dump instance writes its dump
//!   while the link flaps. Exits non-zero if any request is lost, duplicated, fails or
//!   returns stale data, or on any violation.

use std::process::ExitCode;

use fabboot_sim::scenario::{self, Start};

const USAGE: &str = "usage: fabboot-sim <hca-bringup | fabric [--sm builtin|opensm] [--pcap FILE] \
     | driver [--sm builtin|opensm] [--pcap FILE] [--ios N] [--large N] \
     | boot [--sm builtin|opensm] [--pcap FILE] [--disk IMAGE] [--loader-arch i686|x86_64] \
     [--kernel-arch i686|x86_64] [--images DIR] [--report FILE] [--seed N] [--ios N] \
     [--sbft base|rsdt|xsdt|none] [--sbft-order network|reversed] \
     | faults [--sm builtin|opensm] [--seed N] [--images DIR] [--report FILE] \
     [--arch i686|x86_64] [--window-s N] [--flaps N] | help>";

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("hca-bringup") => hca_bringup(),
        Some("fabric") => fabric(std::env::args().skip(2).collect()),
        Some("driver") => driver(std::env::args().skip(2).collect()),
        Some("boot") => boot(std::env::args().skip(2).collect()),
        Some("faults") => faults(std::env::args().skip(2).collect()),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::FAILURE
        }
    }
}

fn hca_bringup() -> ExitCode {
    let mut ok = true;
    for start in [Start::PowerOn, Start::LeftRunning] {
        println!("== hca-bringup from {start:?}");
        match scenario::hca_bringup(start) {
            Ok(r) => {
                let p = r.plan;
                println!(
                    "memory plan: {} bytes: command queue {:#x}+{:#x}, input mailboxes {:#x}+{:#x}, \
                     output mailboxes {:#x}+{:#x}, firmware pages {:#x}+{:#x} ({} pages), \
                     queues and buffers to {:#x}",
                    p.total,
                    p.cmd.queue.offset,
                    p.cmd.queue.len,
                    p.cmd.input.offset,
                    p.cmd.input.len,
                    p.cmd.output.offset,
                    p.cmd.output.len,
                    p.firmware_pages.offset,
                    p.firmware_pages.len,
                    p.firmware_page_count(),
                    p.total
                );
                println!("function resets: {}", r.resets);
                println!("commands executed: {}", r.commands.len());
                for (op, op_mod, status) in &r.commands {
                    println!(
                        "  {:<14} op_mod {op_mod} -> status {status:#x}",
                        scenario::opcode_name(*op)
                    );
                }
                println!(
                    "firmware pages: {} boot + {} init = {} ({} KiB); {} taken back at teardown",
                    r.boot_pages,
                    r.init_pages,
                    r.boot_pages + r.init_pages,
                    (r.boot_pages + r.init_pages) * 4,
                    r.pages_returned
                );
                let o = r.resources;
                println!(
                    "objects: UAR {:#x}, PD {}, lkey {:#x}, EQ {:#x}, CQs {:#x}/{:#x}, QP1 {:#x} (RTS), RC QP {:#x} (RST)",
                    o.uar, o.pd, o.lkey, o.eqn, o.gsi_cqn, o.rc_cqn, o.gsi_qpn, o.rc_qpn
                );
                println!(
                    "PortInfo via MAD_IFC: state {}, LID {:#x}, SM LID {:#x}",
                    r.port_info.0, r.port_info.1, r.port_info.2
                );
                println!(
                    "per posted request (QP1 send + its completion): {} register reads, {} writes",
                    r.mmio_per_send.0, r.mmio_per_send.1
                );
                println!(
                    "register accesses: {} reads, {} writes",
                    r.mmio.reads, r.mmio.writes
                );
                println!("virtual time: {} ms", r.virtual_us / 1000);
                if r.violations.is_empty() {
                    println!("violations: none");
                } else {
                    ok = false;
                    println!("violations: {:#?}", r.violations);
                }
                if r.pages_returned != r.boot_pages + r.init_pages {
                    ok = false;
                    println!("error: firmware kept pages");
                }
            }
            Err(e) => {
                ok = false;
                println!("error: {e}");
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn fabric(args: Vec<String>) -> ExitCode {
    let mut sm = scenario::SmChoice::Builtin;
    let mut pcap = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match (a.as_str(), it.next()) {
            ("--sm", Some(v)) if v == "builtin" => sm = scenario::SmChoice::Builtin,
            ("--sm", Some(v)) if v == "opensm" => sm = scenario::SmChoice::OpenSm,
            ("--pcap", Some(v)) => pcap = Some(std::path::PathBuf::from(v)),
            (flag, value) => {
                eprintln!(
                    "fabboot-sim fabric: bad argument {flag} {}",
                    value.unwrap_or_default()
                );
                eprintln!("{USAGE}");
                return ExitCode::FAILURE;
            }
        }
    }
    match scenario::fabric_run(sm, pcap.as_deref()) {
        Ok(r) => {
            println!("== fabric with the {sm:?} subnet manager");
            println!(
                "subnet up after {} us of virtual time: host LID {:#x}, target LID {:#x}, SM LID {:#x}",
                r.subnet_up_ns / 1000,
                r.lids.0,
                r.lids.1,
                r.lids.2
            );
            println!(
                "SA PathRecord round trip: {} ns virtual, {} us wall",
                r.sa_round_trip_ns, r.sa_round_trip_wall_us
            );
            println!("login: {} credits", r.req_lim);
            println!(
                "READ {} bytes by RDMA WRITE in {} us of virtual time; WRITE {} bytes by RDMA READ; both checked against the image",
                r.bytes_read,
                r.read_ns / 1000,
                r.bytes_written
            );
            if let Some(p) = &pcap {
                println!(
                    "capture: {} packets, {} bytes in {}",
                    r.captured,
                    r.capture_bytes,
                    p.display()
                );
            }
            if r.violations.is_empty() {
                ExitCode::SUCCESS
            } else {
                println!("violations: {:#?}", r.violations);
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("fabboot-sim fabric: {e}");
            ExitCode::FAILURE
        }
    }
}

fn driver(args: Vec<String>) -> ExitCode {
    let mut sm = scenario::SmChoice::Builtin;
    let mut pcap = None;
    let (mut ios, mut large) = (10_000u64, 256u64);
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let v = it.next();
        let n = v.as_deref().and_then(|v| v.parse::<u64>().ok());
        match (a.as_str(), v.as_deref()) {
            ("--sm", Some("builtin")) => sm = scenario::SmChoice::Builtin,
            ("--sm", Some("opensm")) => sm = scenario::SmChoice::OpenSm,
            ("--pcap", Some(v)) => pcap = Some(std::path::PathBuf::from(v)),
            ("--ios", Some(_)) if n.is_some_and(|n| n > 0) => ios = n.unwrap_or(1),
            ("--large", Some(_)) if n.is_some_and(|n| n > 0) => large = n.unwrap_or(1),
            (flag, value) => {
                eprintln!(
                    "fabboot-sim driver: bad argument {flag} {}",
                    value.unwrap_or_default()
                );
                eprintln!("{USAGE}");
                return ExitCode::FAILURE;
            }
        }
    }
    let wall = std::time::Instant::now();
    match fabboot_sim::drive::drive(sm, pcap.as_deref(), ios, large) {
        Ok(r) => {
            println!("== the driver's initiator with the {sm:?} subnet manager");
            println!(
                "virtual time: port ACTIVE at {} us, logged in at {} us, ready (LUNs known) at {} us",
                r.active_us, r.logged_in_us, r.ready_us
            );
            println!(
                "port ACTIVE to the first 4 KiB READ completing: {} us; {} MADs sent and {} received \
                 (SA path, CM REQ/REP/RTU), {} SRP IUs (REPORT LUNS, READ)",
                r.active_to_first_read_us, r.mads_sent, r.mads_received, r.ius_to_first_read
            );
            println!(
                "{} random 4 KiB requests (1 WRITE in 4) at queue depth 32: {:.0} IOPS virtual; \
                 per I/O {:.2} register reads, {:.2} register writes, {:.1} SRP_CMD bytes written \
                 by the CPU, 0 data bytes touched",
                r.small_ios,
                r.small_iops,
                r.mmio_reads_per_io,
                r.mmio_writes_per_io,
                r.iu_bytes_per_io
            );
            println!(
                "{} sequential 1 MiB READs at queue depth 8: {:.1} Gb/s virtual of a {:.0} Gb/s link",
                r.large_ios, r.large_gbps, r.link_gbps
            );
            println!(
                "largest transfer {} bytes; scatter-gather limit {} elements",
                r.largest_transfer, r.max_sg
            );
            if let Some(p) = &pcap {
                println!("capture: {} packets written to {}", r.captured, p.display());
            }
            println!(
                "losses and malformed replies: {}; event-log entries: {} {:?}; wall time {:.1} s",
                r.losses,
                r.events.len(),
                r.events,
                wall.elapsed().as_secs_f64()
            );
            if r.losses == 0 && r.events.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("fabboot-sim driver: {e}");
            ExitCode::FAILURE
        }
    }
}

fn boot(args: Vec<String>) -> ExitCode {
    use fabboot_sim::boot::{self, BootOptions};
    let mut opts = BootOptions::new(std::path::PathBuf::from("target/sys"));
    let mut report = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let v = it.next();
        let bad = |why: &str| {
            eprintln!("fabboot-sim boot: {a}: {why}");
            eprintln!("{USAGE}");
            ExitCode::FAILURE
        };
        let Some(v) = v else {
            return bad("needs a value");
        };
        match a.as_str() {
            "--sm" if v == "builtin" => opts.sm = scenario::SmChoice::Builtin,
            "--sm" if v == "opensm" => opts.sm = scenario::SmChoice::OpenSm,
            "--pcap" => opts.pcap = Some(v.into()),
            "--disk" => opts.disk = Some(v.into()),
            "--images" => opts.images = v.into(),
            "--report" => report = Some(std::path::PathBuf::from(v)),
            "--loader-arch" => match v.parse() {
                Ok(a) => opts.loader_arch = a,
                Err(e) => return bad(&e),
            },
            "--kernel-arch" => match v.parse() {
                Ok(a) => opts.kernel_arch = a,
                Err(e) => return bad(&e),
            },
            "--seed" => match v.parse() {
                Ok(n) => opts.seed = n,
                Err(_) => return bad("not a number"),
            },
            "--ios" => match v.parse() {
                Ok(n) if n > 0 => opts.random_ios = n,
                _ => return bad("not a positive number"),
            },
            "--sbft" if v == "none" => opts.sbft = None,
            "--sbft" => match (v.parse(), opts.sbft) {
                (Ok(p), Some((_, order))) => opts.sbft = Some((p, order)),
                (Ok(p), None) => opts.sbft = Some((p, fabboot::bootcfg::sbft::ByteOrder::Network)),
                (Err(e), _) => return bad(&e),
            },
            "--sbft-order" => {
                let order = match v.as_str() {
                    "network" => fabboot::bootcfg::sbft::ByteOrder::Network,
                    "reversed" => fabboot::bootcfg::sbft::ByteOrder::Reversed,
                    _ => return bad("network or reversed"),
                };
                let placement = opts
                    .sbft
                    .map_or(fabboot_sim::host::firmware::Placement::BaseMemory, |s| s.0);
                opts.sbft = Some((placement, order));
            }
            _ => return bad(&format!("unknown option or value `{v}`")),
        }
    }
    let wall = std::time::Instant::now();
    println!("== fabboot-sim boot: the shipped images boot a machine from an SRP disk");
    let (r, result) = boot::run(&opts, |line| println!("{line}"));
    if let Err(e) = &result {
        eprintln!("BOOT FAILED: {e}");
    }
    {
        println!("== summary ({} SM, disk {})", r.sm, r.disk);
        let mut violations = 0;
        let mut numbered = 0;
        for p in &r.phases {
            // The three phases are numbered; the hibernate/resume cycle between the
            // second and the third is named.
            let label = match p.name.as_str() {
                "hibernate" | "resume" => p.name.clone(),
                name => {
                    numbered += 1;
                    format!("phase {numbered} ({name})")
                }
            };
            let image = std::path::Path::new(&p.image)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let files = if p.files.is_empty() {
                String::new()
            } else {
                format!("{} files, ", p.files.len())
            };
            println!(
                "{label}: {image} {}: {files}{} SRBs, {} KiB in {:.3} s virtual; \
                 first {} at {:.1} ms; {} {} instructions",
                p.arch,
                p.srbs,
                p.bytes >> 10,
                p.virtual_ns as f64 / 1e9,
                match p.name.as_str() {
                    "dump" => "dump write done, after the crash,",
                    "hibernate" => "hibernation write done, after the stop,",
                    "resume" => "request done, after the power came back,",
                    _ => "sector",
                },
                p.first_sector_ns as f64 / 1e6,
                if p.name == "resume" {
                    "restart (set running config, restart, reconnect)"
                } else {
                    "bring-up and login"
                },
                p.init_instructions,
            );
            let per = if p.sequential.is_some() {
                "per 4 KiB SRB"
            } else {
                "per SRB"
            };
            println!(
                "    {per}: {:.0} instructions in the driver, {:.2} MMIO reads, {:.2} MMIO \
                 writes; stack {} B deepest, {} B while these SRBs ran; {} interrupts, {} timer calls, \
                 {} BUSY requeues; {} violations",
                p.instructions_per_srb,
                p.mmio_reads_per_srb,
                p.mmio_writes_per_srb,
                p.stack_high_water,
                p.stack_io_high_water,
                p.interrupts,
                p.timer_calls,
                p.busy_requeues,
                p.violations.len()
            );
            if let Some(q) = &p.sequential {
                println!(
                    "    sequential read: {} MiB in {} SRBs of {} KiB, {:.1} Gb/s virtual, \
                     {:.0} instructions, {:.2} MMIO reads, {:.2} MMIO writes per SRB",
                    q.bytes >> 20,
                    q.srbs,
                    q.transfer >> 10,
                    q.bytes as f64 * 8.0 / q.virtual_ns.max(1) as f64,
                    q.instructions_per_srb,
                    q.mmio_reads_per_srb,
                    q.mmio_writes_per_srb
                );
            }
            for v in &p.violations {
                println!("  violation: {v}");
            }
            for e in &p.event_log {
                println!("  event log: {e}");
            }
            violations += p.violations.len();
        }
        println!("wall time {:.1} s", wall.elapsed().as_secs_f64());
        if let Some(path) = &report
            && let Err(e) = std::fs::write(path, r.to_json(result.as_ref().err()))
        {
            eprintln!("fabboot-sim boot: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        if result.is_err() {
            return ExitCode::FAILURE;
        }
        if violations > 0 {
            eprintln!("BOOT FAILED: {violations} violation(s)");
            return ExitCode::FAILURE;
        }
        println!(
            "BOOT OK: {numbered} phases{} verified, zero violations",
            if r.phases.iter().any(|p| p.name == "resume") {
                " and a hibernate/resume cycle"
            } else {
                ""
            }
        );
    }
    ExitCode::SUCCESS
}

fn faults(args: Vec<String>) -> ExitCode {
    use fabboot_sim::faults::{self, FaultOptions};
    let mut opts = FaultOptions::new(
        std::path::PathBuf::from("target/sys"),
        scenario::SmChoice::Builtin,
        1,
    );
    let mut report = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let v = it.next();
        let bad = |why: &str| {
            eprintln!("fabboot-sim faults: {a}: {why}");
            eprintln!("{USAGE}");
            ExitCode::FAILURE
        };
        let Some(v) = v else {
            return bad("needs a value");
        };
        match a.as_str() {
            "--sm" if v == "builtin" => opts.sm = scenario::SmChoice::Builtin,
            "--sm" if v == "opensm" => opts.sm = scenario::SmChoice::OpenSm,
            "--images" => opts.images = v.into(),
            "--report" => report = Some(std::path::PathBuf::from(v)),
            "--arch" => match v.parse() {
                Ok(a) => opts.arch = a,
                Err(e) => return bad(&e),
            },
            "--seed" => match v.parse() {
                Ok(n) => opts.seed = n,
                Err(_) => return bad("not a number"),
            },
            "--window-s" => match v.parse::<u64>() {
                Ok(n) if n >= 2 => opts.window_ns = n * 1_000_000_000,
                _ => return bad("a number of seconds, at least 2"),
            },
            "--flaps" => match v.parse() {
                Ok(n) => opts.link_flaps = n,
                Err(_) => return bad("not a number"),
            },
            _ => return bad(&format!("unknown option or value `{v}`")),
        }
    }
    println!("== fabboot-sim faults: the kernel image pages through fabric and target faults");
    let (r, result) = faults::run(&opts, |line| println!("{line}"));
    let c = &r.counts;
    println!(
        "== summary ({} SM, seed {}): faults injected: {} link downs / {} link ups, {} target restarts, \
         {} LID changes, {} QP errors ({} skipped: no channel), {} SA BUSY periods ({} BUSY answers by the bridge), \
         {} stale-connection rejects, {} DREQs, {} T_LOGOUTs",
        r.sm,
        r.seed,
        c.link_downs,
        c.link_ups,
        c.target_restarts,
        c.lid_changes,
        c.qp_errors,
        r.qp_errors_skipped,
        c.sa_busy_periods,
        c.sa_busy_answers,
        c.stale_rejects,
        c.dreqs,
        c.t_logouts
    );
    println!(
        "    {} paging requests ({} writes), {} failed for retry and sent again, {} BUSY requeues; \
         longest request {:.1} ms, longest stall {:.1} ms; {:.1} s virtual, {:.1} s wall",
        r.requests,
        r.writes,
        r.retried,
        r.busy_requeues,
        r.longest_request_ns as f64 / 1e6,
        r.longest_stall_ns as f64 / 1e6,
        r.virtual_ns as f64 / 1e9,
        r.wall_ms as f64 / 1e3
    );
    println!(
        "    dump: {} KiB DumpRegion, {} link flaps, {} MiB written and verified, first dump write {:.1} ms after the crash",
        r.dump_region >> 10,
        r.dump_counts.link_downs,
        r.dump_bytes >> 20,
        r.dump_first_write_ns as f64 / 1e6
    );
    let events: Vec<String> = r
        .events
        .iter()
        .map(|(n, c)| format!("0xFB{n:02X} x{c}"))
        .collect();
    println!("    event log: {}", events.join(", "));
    for v in &r.violations {
        println!("  violation: {v}");
    }
    if let Some(path) = &report
        && let Err(e) = std::fs::write(path, r.to_json(result.as_ref().err()))
    {
        eprintln!("fabboot-sim faults: writing {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    match result {
        Ok(()) => {
            println!("FAULTS OK: every request ended once with the disk's data; zero violations");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("FAULTS FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
