//! `fabboot-sim`: runs the driver's layers against the simulator.
//!
//! * `hca-bringup`: brings the simulated ConnectX function up and down with the access
//!   layer, from power-on and from a state an earlier driver left it in, and prints
//!   what it did. Exits non-zero on any error or device violation.

use std::process::ExitCode;

use fabboot_sim::scenario::{self, Start};

const USAGE: &str = "usage: fabboot-sim <hca-bringup | help>";

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("hca-bringup") => hca_bringup(),
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
