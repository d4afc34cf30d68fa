//! The access layer's command interface against the device model: commands with and
//! without mailboxes, the page and capability flow, and the model's strictness about
//! entries, mailboxes and commands a correct driver never sends.

use fabboot_hca::Mmio;
use fabboot_hca::cmdif::{CmdError, CmdIf, CmdLayout, opcode, xor};
use fabboot_hca::dma::{DmaRegion, Span};
use fabboot_hca::ifc::cmd::{
    cmd_queue_entry as entry, hdr, manage_pages_in, query_hca_cap_out, query_issi_out,
    query_pages_out, set_hca_cap_in,
};
use fabboot_hca::ifc::hca_cap::cmd_hca_cap as cap;
use fabboot_hca::init_seg::offset;
use fabboot_sim::clock::Clock;
use fabboot_sim::device::fw::BOOT_PAGES;
use fabboot_sim::device::{Mlx5Function, Violation};
use fabboot_sim::hal::SimHal;
use fabboot_sim::memory::HostMemory;

const BAR0: u64 = 0x38_0000_0000;
const PHYS: u64 = 0x1_0000_0000;
const SECOND: u64 = 1_000_000;

const LAYOUT: CmdLayout = CmdLayout {
    queue: Span {
        offset: 0,
        len: 4096,
    },
    input: Span {
        offset: 4096,
        len: 8 * 1024,
    },
    output: Span {
        offset: 12 * 1024,
        len: 8 * 1024,
    },
};
/// Pages the tests give to firmware start here.
const PAGES_AT: usize = 64 * 1024;

fn input(op: u16, op_mod: u16, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    hdr::OPCODE.set(&mut v, op.into());
    hdr::OP_MOD.set(&mut v, op_mod.into());
    v
}

fn run(
    cmd: &mut CmdIf,
    hal: &SimHal,
    dma: &DmaRegion,
    inp: &[u8],
    out_len: usize,
) -> Result<Vec<u8>, CmdError> {
    let mut out = vec![0u8; out_len];
    cmd.exec(hal, dma, inp, &mut out).map(|()| out)
}

fn give_pages(cmd: &mut CmdIf, hal: &SimHal, dma: &DmaRegion, first: usize, n: usize) {
    let mut inp = input(opcode::MANAGE_PAGES, 1, manage_pages_in::PAS.byte() + 8 * n);
    manage_pages_in::INPUT_NUM_ENTRIES.set(&mut inp, n as u64);
    for i in 0..n {
        let at = manage_pages_in::PAS.byte() + 8 * i;
        inp[at..at + 8].copy_from_slice(&(PHYS + (first + i * 4096) as u64).to_be_bytes());
    }
    run(cmd, hal, dma, &inp, 16).expect("MANAGE_PAGES give");
}

fn query_pages(cmd: &mut CmdIf, hal: &SimHal, dma: &DmaRegion, op_mod: u16) -> u32 {
    let out = run(cmd, hal, dma, &input(opcode::QUERY_PAGES, op_mod, 16), 16).unwrap();
    query_pages_out::NUM_PAGES.get(&out) as u32
}

#[test]
fn bring_up_commands_run_through_entries_and_mailboxes() {
    let clock = Clock::new();
    let memory = HostMemory::new(1 << 20, PHYS);
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    dev.attach_memory(memory.region());
    let hal = SimHal::new(&dev, clock.clone());
    let dma = memory.region();
    let mut cmd = CmdIf::start(&hal, &dma, LAYOUT, 10 * SECOND, SECOND).expect("start");
    assert!(
        clock.now_us() >= 20_000,
        "waited for firmware to initialise"
    );

    run(&mut cmd, &hal, &dma, &input(opcode::ENABLE_HCA, 0, 16), 16).expect("ENABLE_HCA");
    // QUERY_ISSI: 0x70 bytes of output, the tail through an output mailbox.
    let issi = run(
        &mut cmd,
        &hal,
        &dma,
        &input(opcode::QUERY_ISSI, 0, 16),
        query_issi_out::SIZE,
    )
    .unwrap();
    assert_eq!(query_issi_out::SUPPORTED_ISSI_DW0.get(&issi), 0b11);
    let mut set = input(opcode::SET_ISSI, 0, 16);
    fabboot_hca::ifc::cmd::set_issi_in::CURRENT_ISSI.set(&mut set, 1);
    run(&mut cmd, &hal, &dma, &set, 16).expect("SET_ISSI");

    let boot = query_pages(&mut cmd, &hal, &dma, 1);
    assert_eq!(boot, BOOT_PAGES);
    give_pages(&mut cmd, &hal, &dma, PAGES_AT, boot as usize);

    // QUERY_HCA_CAP: 0x1010 bytes of output over eight chained mailboxes.
    let caps = run(
        &mut cmd,
        &hal,
        &dma,
        &input(opcode::QUERY_HCA_CAP, 1, 16),
        query_hca_cap_out::SIZE,
    )
    .unwrap();
    let at = query_hca_cap_out::CAPABILITY.byte();
    let mut current = caps[at..at + cap::SIZE].to_vec();
    assert_eq!(cap::LOG_MAX_QP.get(&current), 18);
    assert_eq!(cap::NUM_PORTS.get(&current), 1);
    // SET_HCA_CAP: 0x1010 bytes of input over eight chained mailboxes.
    cap::LOG_MAX_QP.set(&mut current, 4);
    let mut set = input(opcode::SET_HCA_CAP, 0, set_hca_cap_in::SIZE);
    set[at..at + cap::SIZE].copy_from_slice(&current);
    run(&mut cmd, &hal, &dma, &set, 16).expect("SET_HCA_CAP");
    assert_eq!(
        cap::LOG_MAX_QP.get(&dev.firmware().cur_caps),
        4,
        "the caps crossed the mailboxes"
    );

    let init = query_pages(&mut cmd, &hal, &dma, 2);
    assert!(init > 0 && init < 13_000, "{init}");
    give_pages(
        &mut cmd,
        &hal,
        &dma,
        PAGES_AT + boot as usize * 4096,
        init as usize,
    );
    run(&mut cmd, &hal, &dma, &input(opcode::INIT_HCA, 0, 32), 16).expect("INIT_HCA");
    assert!(dev.firmware().initialized);
    assert_eq!(dev.firmware().pages.len(), (boot + init) as usize);
    assert_eq!(cmd.executed, 10);
    assert_eq!(dev.violations(), []);
}

#[test]
fn failed_commands_carry_opcode_status_and_syndrome() {
    let clock = Clock::new();
    let memory = HostMemory::new(1 << 20, PHYS);
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    dev.attach_memory(memory.region());
    let hal = SimHal::new(&dev, clock.clone());
    let dma = memory.region();
    let mut cmd = CmdIf::start(&hal, &dma, LAYOUT, 10 * SECOND, SECOND).unwrap();

    // Anything but ENABLE_HCA first is a bad system state.
    let err = run(&mut cmd, &hal, &dma, &input(opcode::INIT_HCA, 0, 32), 16).unwrap_err();
    assert!(
        matches!(err, CmdError::Failed { opcode: opcode::INIT_HCA, status: 0x4, syndrome, .. } if syndrome != 0),
        "{err:?}"
    );
    run(&mut cmd, &hal, &dma, &input(opcode::ENABLE_HCA, 0, 16), 16).unwrap();
    let err = run(&mut cmd, &hal, &dma, &input(0x7777, 0, 16), 16).unwrap_err();
    assert!(
        matches!(
            err,
            CmdError::Failed {
                opcode: 0x7777,
                status: 0x2,
                ..
            }
        ),
        "{err:?}"
    );
    let err = run(&mut cmd, &hal, &dma, &input(opcode::QUERY_PAGES, 9, 16), 16).unwrap_err();
    assert!(
        matches!(
            err,
            CmdError::Failed {
                op_mod: 9,
                status: 0x2,
                ..
            }
        ),
        "{err:?}"
    );
    // More pages than firmware asked for.
    let mut many = input(opcode::MANAGE_PAGES, 1, manage_pages_in::PAS.byte() + 8 * 7);
    manage_pages_in::INPUT_NUM_ENTRIES.set(&mut many, 7);
    let err = run(&mut cmd, &hal, &dma, &many, 16).unwrap_err();
    assert!(
        matches!(err, CmdError::Failed { status: 0x3, .. }),
        "{err:?}"
    );
    let v = dev.take_violations();
    assert_eq!(v.len(), 4, "{v:#?}");
    assert!(v.iter().all(|v| matches!(v, Violation::Command { .. })));
}

/// Writes a hand-made entry to slot 0 and rings the doorbell.
fn ring_raw(hal: &SimHal, dma: &DmaRegion, e: &[u8; 64]) -> [u8; 64] {
    dma.write(LAYOUT.queue.offset, e).unwrap();
    hal.write32(offset::CMD_DBELL, 1);
    let mut back = [0u8; 64];
    dma.read(LAYOUT.queue.offset, &mut back).unwrap();
    back
}

fn raw_entry(op: u16, token: u8) -> [u8; 64] {
    let mut e = [0u8; 64];
    entry::TYPE.set(&mut e, 7);
    entry::INPUT_LENGTH.set(&mut e, 16);
    entry::OUTPUT_LENGTH.set(&mut e, 16);
    let inl = entry::COMMAND_INPUT_INLINE_DATA.byte();
    hdr::OPCODE.set(&mut e[inl..], op.into());
    entry::TOKEN.set(&mut e, token.into());
    entry::OWNERSHIP.set(&mut e, 1);
    let sig = !xor(&e);
    entry::SIGNATURE.set(&mut e, sig.into());
    e
}

#[test]
fn the_transport_refuses_bad_entries_and_mailboxes() {
    let clock = Clock::new();
    let memory = HostMemory::new(1 << 20, PHYS);
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    dev.attach_memory(memory.region());
    let hal = SimHal::new(&dev, clock.clone());
    let dma = memory.region();
    let _cmd = CmdIf::start(&hal, &dma, LAYOUT, 10 * SECOND, SECOND).unwrap();

    let good = raw_entry(opcode::ENABLE_HCA, 5);
    let mut bad_sig = good;
    bad_sig[entry::SIGNATURE.byte()] ^= 0x40;
    let back = ring_raw(&hal, &dma, &bad_sig);
    assert_eq!(entry::STATUS.get(&back), 1, "signature error");
    assert_eq!(entry::OWNERSHIP.get(&back), 0, "entry handed back");

    let back = ring_raw(&hal, &dma, &raw_entry(opcode::ENABLE_HCA, 0));
    assert_eq!(entry::STATUS.get(&back), 2, "token error");

    let mut wrong_type = raw_entry(opcode::ENABLE_HCA, 5);
    entry::TYPE.set(&mut wrong_type, 3);
    entry::SIGNATURE.set(&mut wrong_type, 0);
    let sig = !xor(&wrong_type);
    entry::SIGNATURE.set(&mut wrong_type, sig.into());
    assert_eq!(entry::STATUS.get(&ring_raw(&hal, &dma, &wrong_type)), 0x10);

    // An output mailbox chain whose block carries another token.
    let mut chained = raw_entry(opcode::QUERY_ISSI, 9);
    entry::OUTPUT_LENGTH.set(&mut chained, query_issi_out::SIZE as u64);
    let mbox = PHYS + LAYOUT.output.offset as u64;
    entry::OUTPUT_MAILBOX_POINTER_HI.set(&mut chained, mbox >> 32);
    entry::OUTPUT_MAILBOX_POINTER_LO.set(&mut chained, (mbox & 0xFFFF_FFFF) >> 9);
    entry::SIGNATURE.set(&mut chained, 0);
    let sig = !xor(&chained);
    entry::SIGNATURE.set(&mut chained, sig.into());
    dma.fill(LAYOUT.output.offset, 1024, 0).unwrap();
    dma.write(LAYOUT.output.offset + 0x23D, &[8]).unwrap(); // token 8, entry says 9
    assert_eq!(entry::STATUS.get(&ring_raw(&hal, &dma, &chained)), 2);

    // A doorbell for an entry the device does not own.
    let mut idle = good;
    entry::OWNERSHIP.set(&mut idle, 0);
    ring_raw(&hal, &dma, &idle);

    let v = dev.take_violations();
    assert_eq!(v.len(), 5, "{v:#?}");
    assert!(matches!(v[0], Violation::Delivery { status: 1, .. }));
    assert!(matches!(
        v[3],
        Violation::Delivery {
            status: 2,
            what: "mailbox token differs from the entry's",
            ..
        }
    ));
    assert!(matches!(v[4], Violation::Doorbell { .. }));
}

#[test]
fn a_silent_device_times_out_with_its_health() {
    let clock = Clock::new();
    let memory = HostMemory::new(1 << 20, PHYS);
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    dev.attach_memory(memory.region());
    let hal = SimHal::new(&dev, clock.clone());
    let dma = memory.region();
    let mut cmd = CmdIf::start(&hal, &dma, LAYOUT, 10 * SECOND, SECOND).unwrap();
    dev.set_responding(false);
    let before = clock.now_us();
    let err = run(&mut cmd, &hal, &dma, &input(opcode::ENABLE_HCA, 0, 16), 16).unwrap_err();
    let CmdError::Timeout { opcode: op, health } = err else {
        panic!("{err:?}")
    };
    assert_eq!(op, opcode::ENABLE_HCA);
    assert_eq!(health.fw_ver, u32::MAX, "a dead link reads all ones");
    let waited = clock.now_us() - before;
    assert!(
        (SECOND..SECOND + 1_000).contains(&waited),
        "gave up at the deadline: {waited} us"
    );
}

#[test]
fn firmware_that_never_finishes_initialising_is_reported() {
    let clock = Clock::new();
    let memory = HostMemory::new(1 << 20, PHYS);
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    dev.attach_memory(memory.region());
    let hal = SimHal::new(&dev, clock.clone());
    let dma = memory.region();
    let err = CmdIf::start(&hal, &dma, LAYOUT, 5_000, SECOND).unwrap_err();
    assert!(
        matches!(err, CmdError::NotReady { waited_us } if waited_us > 5_000),
        "{err:?}"
    );
}

/// xorshift64: deterministic pseudo-random bytes for the property tests.
fn bytes(seed: &mut u64, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *seed as u8
        })
        .collect()
}

#[test]
fn mailbox_chains_carry_any_input_and_output_length_exactly() {
    let clock = Clock::new();
    let memory = HostMemory::new(1 << 20, PHYS);
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    dev.attach_memory(memory.region());
    let hal = SimHal::new(&dev, clock.clone());
    let dma = memory.region();
    let mut cmd = CmdIf::start(&hal, &dma, LAYOUT, 10 * SECOND, SECOND).unwrap();
    run(&mut cmd, &hal, &dma, &input(opcode::ENABLE_HCA, 0, 16), 16).unwrap();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let max = LAYOUT.max_input();
    // Every length around each block boundary, plus random ones.
    let mut lengths: Vec<usize> = (0..=8)
        .flat_map(|b| [15, 16, 17].map(|d| 16 + b * 512 + d - 16))
        .collect();
    lengths.extend(
        bytes(&mut seed, 200)
            .chunks(2)
            .map(|c| 16 + usize::from(u16::from_le_bytes([c[0], c[1]])) % (max - 15)),
    );
    for len in lengths.into_iter().filter(|&l| (16..=max).contains(&l)) {
        // Full-length buffer.
        let mut inp = bytes(&mut seed, len);
        hdr::OPCODE.set(&mut inp, opcode::NOP.into());
        hdr::OP_MOD.set(&mut inp, 0);
        run(&mut cmd, &hal, &dma, &inp, 16).unwrap();
        assert_eq!(dev.firmware().last_input, inp, "input of {len} bytes");
        // A short buffer declared long: the rest arrives as zeros.
        let short = len.min(40);
        let mut out = [0u8; 16];
        cmd.exec_sized(&hal, &dma, &inp[..short], len, &mut out, 16)
            .unwrap();
        let mut expect = inp[..short].to_vec();
        expect.resize(len, 0);
        assert_eq!(
            dev.firmware().last_input,
            expect,
            "input of {len} bytes from {short}"
        );
    }
    // Output: the capability area read back through any prefix length.
    let whole = run(
        &mut cmd,
        &hal,
        &dma,
        &input(opcode::QUERY_HCA_CAP, 1, 16),
        query_hca_cap_out::SIZE,
    )
    .unwrap();
    for want in [16, 17, 272, 512, 528, 529, 1000, 4111, 4112] {
        let mut out = vec![0u8; want];
        cmd.exec_sized(
            &hal,
            &dma,
            &input(opcode::QUERY_HCA_CAP, 1, 16),
            16,
            &mut out,
            query_hca_cap_out::SIZE,
        )
        .unwrap();
        assert_eq!(out, whole[..want], "output prefix of {want} bytes");
    }
    assert_eq!(dev.violations(), []);
}
