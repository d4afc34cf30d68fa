//! A ConnectX-4-class PCI function (`15b3:1013`): configuration header, BAR0 (the
//! initialization segment with the command queue registers, health buffer and internal
//! timer; the UAR pages' EQ, CQ and send doorbells) and the firmware that executes
//! commands ([`fw`]) delivered through the command queue ([`cmd`]). Armed CQs write
//! completion events and armed EQs raise MSI-X messages ([`datapath`]), which the
//! platform takes with [`Mlx5Function::take_msix`].
//!
//! Stricter than hardware: every access or command the real device would reject, or
//! that a correct driver never makes, is recorded as a [`Violation`]. A test that ends
//! with violations it did not take with [`Mlx5Function::take_violations`] fails when
//! the function is dropped.

pub mod cmd;
pub mod config;
pub mod connected;
pub mod datapath;
pub mod fw;
pub mod objects;
pub mod port;

use std::cell::{Cell, RefCell};

use fabboot_hca::Mmio;
use fabboot_hca::dma::DmaRegion;
use fabboot_hca::init_seg::offset;

use crate::clock::Clock;

/// PCI class code of an InfiniBand controller (network, InfiniBand, no prog-if).
pub const CLASS_INFINIBAND: u32 = 0x02_07_00;
/// Size of BAR0 on the modelled function (ConnectX-4: 32 MiB).
pub const BAR0_LEN: u32 = 32 << 20;
/// log2 of the command queue's entries and stride the model reports (32 × 64 bytes).
pub const LOG_CMDQ_SIZE: u32 = 5;
/// See [`LOG_CMDQ_SIZE`].
pub const LOG_CMDQ_STRIDE: u32 = 6;
/// How long firmware initialises after power-on or after a new command queue address.
pub const FW_INIT_US: u64 = 20_000;
/// How long a function-level reset takes before the function may be accessed
/// (PCIe Base 4.0 §6.6.2: 100 ms).
pub const FLR_US: u64 = 100_000;

/// Something the device refused, or that a correct driver never does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// Register offset not 4-byte aligned.
    Unaligned { offset: usize, write: bool },
    /// Register offset past the end of BAR0.
    OutOfBar { offset: usize, write: bool },
    /// A register the model does not implement: the driver reached further than this
    /// model can answer truthfully.
    Unmodelled { offset: usize, write: bool },
    /// A write to a read-only register.
    ReadOnly { offset: usize, value: u32 },
    /// The command doorbell rang with no command queue, no memory, or for a slot the
    /// queue does not have.
    Doorbell { what: &'static str, value: u32 },
    /// A command entry or mailbox the transport rejected (delivery status).
    Delivery {
        opcode: u16,
        status: u8,
        what: &'static str,
    },
    /// A command the firmware rejected (command status).
    Command {
        opcode: u16,
        op_mod: u16,
        status: u8,
        what: String,
    },
    /// The device was asked to reach memory outside the DMA region.
    OutsideRegion {
        addr: u64,
        len: usize,
        what: &'static str,
    },
    /// A doorbell, WQE or completion the data path refused.
    DataPath { what: String },
    /// A register access the function could not decode: memory decoding off, BAR0
    /// not (re)programmed, or inside the 100 ms after a function-level reset
    /// (PCIe Base 4.0 §6.6.2).
    Decode {
        offset: usize,
        write: bool,
        why: &'static str,
    },
    /// Work that needs DMA was started with bus mastering off.
    BusMaster { what: &'static str },
}

/// Register access counts, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmioCounts {
    pub reads: u64,
    pub writes: u64,
}

/// The modelled function.
#[derive(Debug)]
pub struct Mlx5Function {
    config: RefCell<config::ConfigSpace>,
    bar0: u64,
    /// The last function-level reset through configuration space completes then.
    flr_done_at: Cell<u64>,
    clock: Clock,
    responding: Cell<bool>,
    /// Firmware revisions: (major, minor, subminor, cmdif).
    revisions: Cell<(u16, u16, u16, u16)>,
    /// Firmware is initialising until this time.
    initializing_until: Cell<u64>,
    cmdq: Cell<Option<u64>>,
    cmdq_high: Cell<u32>,
    /// The queue holding a command the device still owns (left by an earlier driver).
    command_in_flight: Cell<Option<u64>>,
    resets: Cell<u32>,
    port_type_after_reset: Cell<Option<u8>>,
    memory: RefCell<Option<DmaRegion>>,
    fw: RefCell<fw::Firmware>,
    /// Encoded packets the port has sent, oldest first.
    outbox: RefCell<Vec<Vec<u8>>>,
    /// The RC QPs' transport engines.
    rc: RefCell<connected::RcLinks>,
    /// Packets that arrived and were dropped, with the reason, for reports.
    dropped: RefCell<Vec<String>>,
    /// Ticks added to the internal timer (tests start it where they need it).
    timer_offset: Cell<u64>,
    /// The first dword of a 64-bit doorbell a 32-bit host is writing in two halves.
    split: Cell<Option<(usize, u32)>>,
    counts: Cell<MmioCounts>,
    violations: RefCell<Vec<Violation>>,
}

impl Mlx5Function {
    /// A ConnectX-4 with firmware 12.28.2006 and command interface 5, with a 64-bit
    /// BAR0 at `bar0`, just powered on (firmware initialising for [`FW_INIT_US`]).
    pub fn connectx4(bar0: u64, clock: Clock) -> Mlx5Function {
        let config = config::ConfigSpace::new(0x15B3, 0x1013, CLASS_INFINIBAND, bar0, BAR0_LEN);
        let now = clock.now_us();
        Mlx5Function {
            config: RefCell::new(config),
            bar0,
            flr_done_at: Cell::new(0),
            clock,
            responding: Cell::new(true),
            revisions: Cell::new((12, 28, 2006, 5)),
            initializing_until: Cell::new(now + FW_INIT_US),
            cmdq: Cell::new(None),
            cmdq_high: Cell::new(0),
            command_in_flight: Cell::new(None),
            resets: Cell::new(0),
            port_type_after_reset: Cell::new(None),
            memory: RefCell::new(None),
            fw: RefCell::new(fw::Firmware::connectx4()),
            outbox: RefCell::new(Vec::new()),
            rc: RefCell::new(connected::RcLinks::default()),
            dropped: RefCell::new(Vec::new()),
            timer_offset: Cell::new(0),
            split: Cell::new(None),
            counts: Cell::new(MmioCounts::default()),
            violations: RefCell::new(Vec::new()),
        }
    }

    /// Gives the device its view of host memory (the region the driver uses for DMA).
    pub fn attach_memory(&self, region: DmaRegion) {
        *self.memory.borrow_mut() = Some(region);
    }

    /// A PCIe function-level reset: firmware returns to its power-on state (function
    /// disabled, no pages or objects held, no command queue, any command in flight
    /// abandoned) and initialises again for [`FW_INIT_US`].
    pub fn function_level_reset(&self) {
        let mut fresh = fw::Firmware::connectx4();
        // The port's subnet configuration is the subnet manager's, not the function's:
        // the model keeps it across the reset (a real link retrains and the SM gives
        // the same LID back).
        fresh.port = self.fw.borrow().port.clone();
        if let Some(port_type) = self.port_type_after_reset.get() {
            fabboot_hca::ifc::hca_cap::cmd_hca_cap::PORT_TYPE
                .set(&mut fresh.max_caps, port_type.into());
            fresh.cur_caps = fresh.max_caps;
        }
        *self.fw.borrow_mut() = fresh;
        *self.rc.borrow_mut() = connected::RcLinks::default();
        self.cmdq.set(None);
        self.cmdq_high.set(0);
        self.command_in_flight.set(None);
        self.resets.set(self.resets.get() + 1);
        self.initializing_until
            .set(self.clock.now_us() + FW_INIT_US);
    }

    /// Makes the port report `port_type` (0 InfiniBand, 1 Ethernet) from the next
    /// function-level reset on, as a VPI card configured for Ethernet does.
    pub fn set_port_type_after_reset(&self, port_type: u8) {
        self.port_type_after_reset.set(Some(port_type));
    }

    /// Function-level resets so far.
    pub fn resets(&self) -> u32 {
        self.resets.get()
    }

    /// Puts the function in the state an earlier driver (firmware, a loader, a crashed
    /// kernel) left it in: enabled and initialised with pages at `foreign` (memory the
    /// new driver does not own), its command queue at `foreign` too, and one of its
    /// commands still owned by the device.
    pub fn leave_running(&self, foreign: u64) {
        self.fw.borrow_mut().leave_running(foreign + 0x10_0000);
        self.cmdq.set(Some(foreign));
        self.cmdq_high.set((foreign >> 32) as u32);
        self.command_in_flight.set(Some(foreign));
        self.initializing_until.set(self.clock.now_us());
    }

    /// Changes vendor and device ID.
    pub fn set_ids(&self, vendor: u16, device: u16) {
        self.config.borrow_mut().set_ids(vendor, device);
    }

    /// Changes the firmware version and command-interface revision it reports.
    pub fn set_firmware(&self, major: u16, minor: u16, subminor: u16, cmdif: u16) {
        self.revisions.set((major, minor, subminor, cmdif));
    }

    /// Makes the function stop answering (every read returns all ones), as after a
    /// surprise removal or a fatal PCI error.
    pub fn set_responding(&self, responding: bool) {
        self.responding.set(responding);
    }

    /// Configuration space, little-endian as on the bus.
    pub fn config_space(&self) -> [u8; 256] {
        self.config.borrow().bytes()
    }

    /// A configuration write (the port's `*SetBusDataByOffset`): only writable bits
    /// change; Initiate Function Level Reset resets the function
    /// ([`Mlx5Function::function_level_reset`]) and its header, after which the
    /// function answers nothing for 100 ms and decodes nothing until software programs
    /// BAR0 and Command again. Returns the bytes written.
    pub fn config_write(&self, offset: usize, data: &[u8]) -> usize {
        let (n, effect) = self.config.borrow_mut().write(offset, data);
        if effect == config::WriteEffect::FunctionLevelReset {
            self.config.borrow_mut().reset_registers();
            self.function_level_reset();
            self.flr_done_at.set(self.clock.now_us() + FLR_US);
        }
        n
    }

    /// Bus address of BAR0.
    pub fn bar0(&self) -> u64 {
        self.bar0
    }

    /// Register accesses so far.
    pub fn mmio_counts(&self) -> MmioCounts {
        self.counts.get()
    }

    /// The firmware state, for inspection.
    pub fn firmware(&self) -> std::cell::Ref<'_, fw::Firmware> {
        self.fw.borrow()
    }

    /// The firmware state, for tests that set a starting state.
    pub fn firmware_mut(&self) -> std::cell::RefMut<'_, fw::Firmware> {
        self.fw.borrow_mut()
    }

    /// Every violation so far, without taking them.
    pub fn violations(&self) -> Vec<Violation> {
        self.settle();
        self.violations.borrow().clone()
    }

    /// Takes the violations recorded so far (a test that provokes them on purpose).
    pub fn take_violations(&self) -> Vec<Violation> {
        self.settle();
        std::mem::take(&mut *self.violations.borrow_mut())
    }

    /// Moves the violations met while writing events (which happens deep in the data
    /// path) to the function's list: after every access that can write a CQE, and
    /// before the list is read. While the firmware state is borrowed (a caller
    /// inspecting it) they wait for the next time.
    fn settle(&self) {
        let Ok(mut fw) = self.fw.try_borrow_mut() else {
            return;
        };
        let faults = std::mem::take(&mut fw.objects.event_faults);
        drop(fw);
        self.violations
            .borrow_mut()
            .extend(faults.into_iter().map(|what| Violation::DataPath { what }));
    }

    /// The internal timer (init segment 0x1000/0x1004): ticks of
    /// `device_frequency_khz` since power-on, plus what [`Self::set_internal_timer`]
    /// added. A device reporting no frequency has a timer that does not move.
    pub fn internal_timer(&self) -> u64 {
        let khz = fabboot_hca::ifc::hca_cap::cmd_hca_cap::DEVICE_FREQUENCY_KHZ
            .get(&self.fw.borrow().max_caps);
        let ticks = u128::from(self.clock.now_ns()) * u128::from(khz) / 1_000_000;
        (ticks as u64).wrapping_add(self.timer_offset.get())
    }

    /// Makes the internal timer read `ticks` now (it keeps counting from there).
    pub fn set_internal_timer(&self, ticks: u64) {
        let now = self.internal_timer().wrapping_sub(self.timer_offset.get());
        self.timer_offset.set(ticks.wrapping_sub(now));
    }

    pub(crate) fn refuse(&self, v: Violation) {
        self.violations.borrow_mut().push(v);
    }

    fn count(&self, write: bool) {
        let mut c = self.counts.get();
        if write {
            c.writes += 1;
        } else {
            c.reads += 1;
        }
        self.counts.set(c);
    }

    fn check(&self, offset: usize, write: bool) -> bool {
        self.count(write);
        let decode = |why| Violation::Decode { offset, write, why };
        if self.clock.now_us() < self.flr_done_at.get() {
            self.refuse(decode("within 100 ms of a function-level reset"));
            false
        } else if self.config.borrow().decoded_bar0() != Some(self.bar0) {
            self.refuse(decode("memory decoding off or BAR0 not at its address"));
            false
        } else if !offset.is_multiple_of(4) {
            self.refuse(Violation::Unaligned { offset, write });
            false
        } else if offset + 4 > BAR0_LEN as usize {
            self.refuse(Violation::OutOfBar { offset, write });
            false
        } else {
            true
        }
    }

    fn initializing(&self) -> bool {
        self.clock.now_us() < self.initializing_until.get()
    }

    /// Takes the packets the function has sent: whole encoded packets, LRH to VCRC.
    pub fn take_outbox(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.outbox.borrow_mut())
    }

    /// Takes the reasons arriving packets were dropped for.
    pub fn take_dropped(&self) -> Vec<String> {
        std::mem::take(&mut *self.dropped.borrow_mut())
    }

    fn port_view(&self) -> datapath::PortView {
        let fw = self.fw.borrow();
        datapath::PortView {
            lid: fw.port.lid,
            pkeys: fw.port.pkeys.clone(),
            active: fw.port.state == port::state::ACTIVE,
        }
    }

    fn drop_packet(&self, why: String) {
        self.dropped.borrow_mut().push(why);
    }

    /// A packet arrives at the port: whole bytes, LRH to VCRC. A packet with a bad
    /// CRC or length, for another LID, or failing the P_Key and Q_Key checks is
    /// dropped and counted, as the port would; SMPs (QP0) go to the port's agent,
    /// which answers them; everything else only while the port is ACTIVE.
    pub fn deliver(&self, frame: &[u8]) {
        self.receive(frame);
        self.settle();
    }

    fn receive(&self, frame: &[u8]) {
        if !self.responding.get() {
            return;
        }
        if !self.config.borrow().bus_master() {
            return self.drop_packet("bus mastering off: nowhere to put it".into());
        }
        let packet = match crate::wire::IbPacket::decode(frame) {
            Ok(p) => p,
            Err(e) => return self.drop_packet(format!("malformed: {e:?}")),
        };
        let view = self.port_view();
        let dlid = packet.lrh.dlid;
        if packet.bth.dest_qp == 0 {
            return self.smp(&packet, &view);
        }
        if dlid != view.lid || !view.active {
            return self.drop_packet(format!(
                "DLID {dlid:#x} at port LID {:#x} (active {})",
                view.lid, view.active
            ));
        }
        let memory = self.memory.borrow();
        let Some(mem) = memory.as_ref() else { return };
        let mut violations = Vec::new();
        let mut frames = Vec::new();
        if packet.bth.opcode.0 >> 5 == 0 {
            // RC (IBTA vol. 1 §9.2.1: opcode bits 7..5 = 000).
            if view.pkey_match(packet.bth.p_key).is_none() {
                return self.drop_packet(format!("RC P_Key {:#x}", packet.bth.p_key));
            }
            let mut fw = self.fw.borrow_mut();
            frames = self.rc.borrow_mut().receive(
                self.clock.now_ns(),
                &packet,
                &mut fw.objects,
                &view,
                mem,
                &mut violations,
            );
        } else {
            let r = self.fw.borrow_mut().objects.receive_ud(&packet, &view, mem);
            match r {
                Ok(()) => {}
                Err(datapath::UdDrop::Violation(v)) => violations.push(v),
                Err(why) => self.drop_packet(format!("{why:?}")),
            }
        }
        drop(memory);
        for v in violations {
            self.refuse(Violation::DataPath { what: v });
        }
        self.outbox.borrow_mut().extend(frames);
    }

    /// The port's subnet management agent answers an SMP on QP0 (IBTA vol. 1
    /// §14.2.2: a directed-route response goes back to the permissive LID; a
    /// LID-routed one to the requester's LID). A PortInfo Set that changes the
    /// port's state or LID raises the port-change event.
    fn smp(&self, p: &crate::wire::IbPacket, view: &datapath::PortView) {
        let directed = p.payload.get(1) == Some(&0x81);
        if !directed && p.lrh.dlid != view.lid {
            return self.drop_packet(format!("SMP for LID {:#x}", p.lrh.dlid));
        }
        let before = {
            let fw = self.fw.borrow();
            (fw.port.state, fw.port.lid, fw.port.sm_lid)
        };
        let answered = self.fw.borrow_mut().port.answer_smp(&p.payload);
        let Some((reply, changed)) = answered else {
            return self.drop_packet("SMP that is not a request ending at this port".into());
        };
        let dlid = if directed { 0xFFFF } else { p.lrh.slid };
        let slid = if directed { 0xFFFF } else { view.lid };
        let src_qp = match p.ext {
            crate::wire::ExtHeaders::Deth(d) => d.src_qp,
            _ => 0,
        };
        if let Some(f) = datapath::ud_frame(slid, dlid, 0, 0xFFFF, src_qp, 0, 0, 0, reply.to_vec())
        {
            self.outbox.borrow_mut().push(f);
        }
        if changed {
            self.port_changed(before);
        }
    }

    /// Raises the port-change events a subnet manager's PortInfo Set causes
    /// (`MLX5_PORT_CHANGE_SUBTYPE_*`: 1 down, 4 active, 6 LID change).
    fn port_changed(&self, before: (u8, u16, u16)) {
        let now = {
            let fw = self.fw.borrow();
            (fw.port.state, fw.port.lid, fw.port.sm_lid)
        };
        let mut data = [0u8; 28];
        data[8] = 1 << 4;
        if now.0 != before.0 {
            match now.0 {
                port::state::ACTIVE => self.post_event(0x09, 4, &data),
                port::state::DOWN => self.post_event(0x09, 1, &data),
                _ => {}
            }
        } else if now.0 == port::state::ACTIVE && (now.1 != before.1 || now.2 != before.2) {
            self.post_event(0x09, 6, &data);
        }
    }

    /// Runs the RC engines' timers (retransmissions, RNR waits) up to now.
    pub fn poll(&self) {
        self.run_timers();
        self.settle();
    }

    fn run_timers(&self) {
        let memory = self.memory.borrow();
        let Some(mem) = memory.as_ref() else { return };
        let mut violations = Vec::new();
        let frames = {
            let mut fw = self.fw.borrow_mut();
            self.rc.borrow_mut().transmit(
                self.clock.now_ns(),
                &mut fw.objects,
                mem,
                &mut violations,
            )
        };
        drop(memory);
        for v in violations {
            self.refuse(Violation::DataPath { what: v });
        }
        self.outbox.borrow_mut().extend(frames);
    }

    /// When [`Self::poll`] next has timer work to do.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        self.rc.borrow().next_deadline_ns()
    }

    /// Statistics of QP `qpn`'s RC engine, if it has one.
    pub fn rc_stats(&self, qpn: u32) -> Option<crate::rc::RcStats> {
        self.rc.borrow().engine(qpn).map(|e| e.stats().clone())
    }

    /// Changes the port's logical state as a subnet manager (or a cable) would, and
    /// raises the port-change event (sub-type 1 down, 4 active, as PortState).
    pub fn set_port_state(&self, state: u8) {
        self.fw.borrow_mut().port.state = state;
        let mut data = [0u8; 28];
        data[8] = 1 << 4; // port number in the high nibble
        let sub_type = if state == port::state::ACTIVE { 4 } else { 1 };
        self.post_event(0x09, sub_type, &data);
    }

    /// The port's cable goes down or comes up, as the port's own hardware sees it
    /// (IBTA vol. 1 §7.2): down, PortState DOWN and PortPhysicalState Polling, and the
    /// port-change event with sub-type 1 (down); up, the link trains (LinkUp) and the
    /// port enters INIT to wait for a subnet manager, with sub-type 5 (initialized;
    /// reference/mlx5.md §C.8). Nothing is raised when the state does not change. The
    /// LID and the SM's other settings stay until a subnet manager sets others; the
    /// subnet manager activates the port ([`Self::configure_port`], or its SMPs).
    pub fn set_link(&self, up: bool) {
        let changed = self.fw.borrow_mut().port.set_link(up);
        if changed {
            let mut data = [0u8; 28];
            data[8] = 1 << 4; // port number in the high nibble
            let sub_type = if up { 5 } else { 1 };
            self.post_event(0x09, sub_type, &data);
        }
    }

    /// What a subnet manager's PortInfo Set does to the port, for a subnet manager
    /// whose SMPs do not reach the model (OpenSM configures the port's ibsim twin;
    /// [`crate::world::opensm`]): LID, SM LID and state, with the port-change events
    /// an SMP would raise (sub-type 4 active, 1 down, 6 LID change while active).
    pub fn configure_port(&self, lid: u16, sm_lid: u16, state: u8) {
        let before = {
            let mut fw = self.fw.borrow_mut();
            let before = (fw.port.state, fw.port.lid, fw.port.sm_lid);
            fw.port.lid = lid;
            fw.port.sm_lid = sm_lid;
            fw.port.state = state;
            before
        };
        self.port_changed(before);
    }

    /// Injects a fatal local error into RC QP `qpn` ([`connected::RcLinks::inject_error`]):
    /// the oldest outstanding WQE completes with syndrome 0x02 (local QP operation
    /// error), the rest and the posted receives are flushed, the QP is in ERR; with
    /// nothing outstanding, the QP's next WQE fails so.
    pub fn inject_qp_error(&self, qpn: u32) -> Result<connected::Injected, connected::InjectError> {
        let view = self.port_view();
        let memory = self.memory.borrow();
        let Some(mem) = memory.as_ref() else {
            return Err(connected::InjectError::NoQp(qpn));
        };
        let mut violations = Vec::new();
        let result = {
            let mut fw = self.fw.borrow_mut();
            self.rc
                .borrow_mut()
                .inject_error(qpn, &mut fw.objects, &view, mem, &mut violations)
        };
        drop(memory);
        for v in violations {
            self.refuse(Violation::DataPath { what: v });
        }
        self.settle();
        result
    }

    /// Firmware asks for `num_pages` more pages (positive) or offers that many back
    /// (negative) while running, with a page-request event (type 0x0b).
    pub fn request_pages(&self, num_pages: i32) {
        {
            let mut fw = self.fw.borrow_mut();
            if num_pages > 0 {
                fw.demand += num_pages as u32;
            } else {
                fw.returnable += num_pages.unsigned_abs();
            }
        }
        let mut data = [0u8; 28];
        data[4..8].copy_from_slice(&num_pages.to_be_bytes());
        self.post_event(0x0B, 0, &data);
    }

    fn post_event(&self, kind: u8, sub_type: u8, data: &[u8; 28]) {
        let memory = self.memory.borrow();
        let Some(mem) = memory.as_ref() else { return };
        let v = self
            .fw
            .borrow_mut()
            .objects
            .post_event(kind, sub_type, data, mem);
        for what in v {
            self.refuse(Violation::DataPath { what });
        }
        self.settle();
    }

    /// Takes the MSI-X messages raised so far (one per armed EQ that got an event).
    pub fn take_msix(&self) -> Vec<u16> {
        std::mem::take(&mut self.fw.borrow_mut().objects.msix)
    }

    /// The last EQ consumer index the driver reported for `eqn` (0 until it reports
    /// one); `None` for an EQ that does not exist.
    pub fn eq_consumer_index(&self, eqn: u8) -> Option<u32> {
        self.fw.borrow().objects.eqs.get(&eqn).map(|eq| eq.ci)
    }

    fn absorb(&self, outcome: datapath::Outcome) {
        let mut violations = outcome.violations;
        let mut frames = outcome.frames;
        if !outcome.rc.is_empty() {
            let view = self.port_view();
            let memory = self.memory.borrow();
            if let Some(mem) = memory.as_ref() {
                let mut fw = self.fw.borrow_mut();
                let mut rc = self.rc.borrow_mut();
                rc.post(outcome.rc, &mut fw.objects, &view, mem, &mut violations);
                frames.extend(rc.transmit(
                    self.clock.now_ns(),
                    &mut fw.objects,
                    mem,
                    &mut violations,
                ));
            }
        }
        for v in violations {
            self.refuse(Violation::DataPath { what: v });
        }
        self.outbox.borrow_mut().extend(frames);
    }

    /// A 64-bit register write: send doorbells (BlueFlame registers of a UAR page) and
    /// CQ doorbells (UAR offset 0x20).
    pub fn write64(&self, off: usize, value: u64) {
        self.count(true);
        self.doorbell64(off, value);
        self.settle();
    }

    fn doorbell64(&self, off: usize, value: u64) {
        if !self.responding.get() {
            return;
        }
        if !self.config.borrow().bus_master() {
            return self.refuse(Violation::BusMaster {
                what: "send or CQ doorbell",
            });
        }
        let (page, within) = ((off / 4096) as u32, off % 4096);
        if within == 0x20 && self.fw.borrow().objects.uars.contains(&page) {
            let memory = self.memory.borrow();
            let Some(mem) = memory.as_ref() else { return };
            let r = self.fw.borrow_mut().objects.cq_doorbell(page, value, mem);
            if let Err(what) = r {
                self.refuse(Violation::DataPath { what });
            }
            return;
        }
        if !self.fw.borrow().objects.uars.contains(&page)
            || !(0x800..0xC00).contains(&within)
            || within % 8 != 0
        {
            self.refuse(Violation::Unmodelled {
                offset: off,
                write: true,
            });
            return;
        }
        let qpn = ((value & 0xFFFF_FFFF) >> 8) as u32;
        let view = self.port_view();
        let memory = self.memory.borrow();
        let Some(mem) = memory.as_ref() else { return };
        let outcome = self
            .fw
            .borrow_mut()
            .objects
            .execute_sends(qpn, page, &view, mem);
        drop(memory);
        self.absorb(outcome);
    }

    /// 32-bit writes to a UAR page: the EQ doorbells, and either half of a 64-bit
    /// doorbell (CQ at 0x20, BlueFlame registers from 0x800) written as two 32-bit
    /// writes, first dword first, as a 32-bit host does (Linux `mlx5_write64` without
    /// 64-bit MMIO): the second half rings it.
    fn uar_write32(&self, off: usize, value: u32) -> bool {
        let (page, within) = ((off / 4096) as u32, off % 4096);
        if !self.fw.borrow().objects.uars.contains(&page) {
            return false;
        }
        let wide = within == 0x20 || (0x800..0xC00).contains(&within);
        match within {
            _ if wide && within % 8 == 0 => {
                if let Some((o, _)) = self.split.replace(Some((off, value))) {
                    self.refuse(Violation::DataPath {
                        what: format!("64-bit doorbell at {o:#x} left half-written"),
                    });
                }
                true
            }
            _ if (wide || within == 0x24) && within % 8 == 4 => {
                match self.split.take() {
                    Some((o, first)) if o + 4 == off => {
                        self.doorbell64(o, u64::from(first) << 32 | u64::from(value))
                    }
                    _ => self.refuse(Violation::DataPath {
                        what: format!("second half of a 64-bit doorbell at {off:#x} alone"),
                    }),
                }
                true
            }
            0x40 | 0x48 => {
                let r = self
                    .fw
                    .borrow_mut()
                    .objects
                    .eq_doorbell(page, value, within == 0x40);
                if let Err(what) = r {
                    self.refuse(Violation::DataPath { what });
                }
                true
            }
            _ => false,
        }
    }

    fn ring_command_doorbell(&self, value: u32) {
        if !self.config.borrow().bus_master() {
            return self.refuse(Violation::BusMaster {
                what: "command doorbell",
            });
        }
        let Some(queue) = self.cmdq.get() else {
            self.refuse(Violation::Doorbell {
                what: "no command queue address set",
                value,
            });
            return;
        };
        if self.initializing() {
            self.refuse(Violation::Doorbell {
                what: "rung while firmware initialises",
                value,
            });
            return;
        }
        let memory = self.memory.borrow();
        let Some(memory) = memory.as_ref() else {
            self.refuse(Violation::Doorbell {
                what: "device has no memory attached",
                value,
            });
            return;
        };
        for slot in 0..32u32 {
            if value & (1 << slot) == 0 {
                continue;
            }
            if slot >= 1 << LOG_CMDQ_SIZE {
                self.refuse(Violation::Doorbell {
                    what: "slot beyond the queue",
                    value,
                });
                continue;
            }
            let entry = queue + u64::from(slot << LOG_CMDQ_STRIDE);
            cmd::execute(self, memory, entry);
        }
    }
}

impl Mmio for Mlx5Function {
    fn read32(&self, off: usize) -> u32 {
        if !self.check(off, false) || !self.responding.get() {
            return u32::MAX;
        }
        let (major, minor, subminor, cmdif) = self.revisions.get();
        match off {
            offset::FW_REV => u32::from(minor) << 16 | u32::from(major),
            offset::CMDIF_REV_FW_SUB => u32::from(cmdif) << 16 | u32::from(subminor),
            offset::CMDQ_ADDR_H => self.cmdq_high.get(),
            offset::CMDQ_ADDR_L_SZ => {
                let low = self.cmdq.get().map_or(0, |a| a as u32 & !0xFFF);
                low | LOG_CMDQ_SIZE << 4 | LOG_CMDQ_STRIDE
            }
            offset::INITIALIZING => u32::from(self.initializing()) << 31,
            o if (offset::HEALTH..offset::HEALTH + 0x40).contains(&o) => {
                // A healthy device: no assert, no syndrome; fw_ver mirrors fw_rev.
                if o == offset::HEALTH + 0x30 {
                    u32::from(minor) << 16 | u32::from(major)
                } else {
                    0
                }
            }
            offset::INTERNAL_TIMER_H => (self.internal_timer() >> 32) as u32,
            offset::INTERNAL_TIMER_L => self.internal_timer() as u32,
            // Health counter: advances with time, as living firmware's does.
            0x1010 => (self.clock.now_us() / 1000) as u32 & 0x00FF_FFFF,
            _ => {
                self.refuse(Violation::Unmodelled {
                    offset: off,
                    write: false,
                });
                u32::MAX
            }
        }
    }

    fn write32(&self, off: usize, value: u32) {
        self.register_write(off, value);
        self.settle();
    }
}

impl Mlx5Function {
    fn register_write(&self, off: usize, value: u32) {
        if !self.check(off, true) || !self.responding.get() {
            return;
        }
        match off {
            offset::CMDQ_ADDR_H => self.cmdq_high.set(value),
            offset::CMDQ_ADDR_L_SZ => {
                if value & 0xFFF != 0 {
                    self.refuse(Violation::ReadOnly { offset: off, value });
                }
                let addr = u64::from(self.cmdq_high.get()) << 32 | u64::from(value & !0xFFF);
                if let Some(old) = self.command_in_flight.get() {
                    // The device would finish that command into memory that is no longer
                    // the new driver's view of the world: a driver must reset first.
                    self.refuse(Violation::Doorbell {
                        what: "command queue moved while the device owns a command",
                        value: old as u32,
                    });
                }
                self.cmdq.set(Some(addr));
                // Firmware takes the new queue after a short initialisation.
                let now = self.clock.now_us();
                self.initializing_until
                    .set(self.initializing_until.get().max(now + 1_000));
            }
            offset::CMD_DBELL => self.ring_command_doorbell(value),
            o if self.uar_write32(o, value) => {}
            offset::FW_REV
            | offset::CMDIF_REV_FW_SUB
            | offset::INITIALIZING
            | offset::INTERNAL_TIMER_H
            | offset::INTERNAL_TIMER_L => self.refuse(Violation::ReadOnly { offset: off, value }),
            _ => self.refuse(Violation::Unmodelled {
                offset: off,
                write: true,
            }),
        }
    }
}

impl Drop for Mlx5Function {
    fn drop(&mut self) {
        let faults = std::mem::take(&mut self.fw.get_mut().objects.event_faults);
        let left = self.violations.get_mut();
        left.extend(faults.into_iter().map(|what| Violation::DataPath { what }));
        if !left.is_empty() && !std::thread::panicking() {
            panic!("device violations nobody checked: {left:#?}");
        }
    }
}
