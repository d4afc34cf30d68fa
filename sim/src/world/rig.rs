//! The driver's initiator ([`fabboot::initiator`]) linked natively and run against the
//! world: one ConnectX function with the initiator on it, one SRP target whose LUNs
//! are disk images, and a subnet manager (built-in or OpenSM). Shared by the
//! end-to-end tests and `fabboot-sim driver`.
//!
//! The rig stands in for the port driver: it hands requests to the initiator, keeps
//! their completions and event-log entries, and owns host memory for data buffers.
//! Test equipment: a step that cannot go on (an image that cannot be created, OpenSM
//! that does not start) panics with what went wrong.

#![allow(missing_docs, clippy::missing_panics_doc)]

use std::rc::Rc;

use fabboot::event::Event;
use fabboot::initiator::{
    Config, Host as PortHost, Initiator, Outcome, Refused, Request, Segment, State, TargetConfig,
};

use crate::clock::Clock;
use crate::device::Mlx5Function;
use crate::dm::{DmAgent, IocDescription};
use crate::fabric::FabricConfig;
use crate::hal::SharedHal;
use crate::memory::HostMemory;
use crate::scenario::SmChoice;
use crate::srpt::{SrpTarget, SrptConfig};
use crate::target::{BlockSize, Image, LogicalUnit, LuIdentity, Lun, Product, Target};
use crate::world::probe::{HOST_BASE, TARGET_GUID, TempImage, function, gid};
use crate::world::{Drive, Manager, Node, TargetNode, World};

/// One LUN's disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disk {
    pub block_size: BlockSize,
    pub blocks: u64,
}

/// What the rig is built with.
#[derive(Clone, Debug)]
pub struct RigConfig {
    pub sm: SmChoice,
    pub disks: Vec<Disk>,
    /// ib_srpt's defaults, adjusted by the test.
    pub srpt: fn(&mut SrptConfig),
    /// Bytes of host memory for data buffers, after the initiator's region.
    pub data_bytes: usize,
    pub seed: u32,
}

impl Default for RigConfig {
    fn default() -> Self {
        RigConfig {
            sm: SmChoice::Builtin,
            disks: vec![Disk {
                block_size: BlockSize::B512,
                blocks: 1 << 16,
            }],
            srpt: |_| {},
            data_bytes: 8 << 20,
            seed: 1,
        }
    }
}

/// Completions and event-log entries, as the port driver would see them.
#[derive(Debug, Default)]
pub struct Recorder {
    pub done: Vec<(u32, Outcome)>,
    pub events: Vec<Event>,
}

impl PortHost for Recorder {
    fn complete(&mut self, user: u32, outcome: &Outcome) {
        self.done.push((user, *outcome));
    }
    fn log(&mut self, event: Event) {
        self.events.push(event);
    }
}

pub struct Rig {
    pub world: World,
    pub clock: Clock,
    pub memory: HostMemory,
    pub dev: Rc<Mlx5Function>,
    pub init: Initiator<SharedHal>,
    pub port: Recorder,
    /// Offset in the region of the data area.
    pub data_offset: usize,
    pub data_bytes: usize,
    _images: Vec<TempImage>,
}

/// The target node: LUN i is a sparse image of `disks[i]` (zeros until written).
fn target_node(cfg: &RigConfig, images: &mut Vec<TempImage>) -> TargetNode {
    let mut target = Target::new(Product::simulated());
    for (i, d) in cfg.disks.iter().enumerate() {
        let file = TempImage::new();
        let image = Image::create(&file.0, d.block_size, d.blocks).expect("a sparse image");
        images.push(file);
        target
            .add(
                Lun::new(i as u16).expect("a LUN number"),
                LogicalUnit::new(image, LuIdentity::simulated(i as u32)),
            )
            .expect("LUN added");
    }
    let port_guid = TARGET_GUID + 1;
    let mut scfg = SrptConfig::ib_srpt(TARGET_GUID, gid(0xFE80_0000_0000_0000, port_guid), 0);
    (cfg.srpt)(&mut scfg);
    let dm = DmAgent::new(IocDescription::srp_target(TARGET_GUID, 0x0002C9, 0x1017, 1))
        .expect("a DM agent");
    TargetNode::new(port_guid, SrpTarget::new(scfg, target), dm)
}

/// The target port ID of the rig's target (id_ext ‖ IOC GUID).
pub fn target_port_id() -> [u8; 16] {
    crate::world::probe::target_port_id()
}

impl Rig {
    /// Builds the world and starts the initiator (bring-up happens here, before the
    /// world runs).
    pub fn new(cfg: RigConfig) -> Rig {
        let clock = Clock::new();
        let region = Initiator::<SharedHal>::region_len();
        let memory = HostMemory::new(region + cfg.data_bytes, HOST_BASE);
        let dev = function(&clock, &memory);
        let mut images = Vec::new();
        let target = target_node(&cfg, &mut images);
        let nodes = vec![Node::Host(dev.clone()), Node::Target(Box::new(target))];
        let mut world = match cfg.sm {
            SmChoice::Builtin => World::new(
                clock.clone(),
                FabricConfig::default(),
                nodes,
                Manager::default(),
            ),
            SmChoice::OpenSm => World::with_opensm(clock.clone(), FabricConfig::default(), nodes)
                .expect("ibsim and OpenSM start"),
        };
        let dgid = {
            let t = world.target(1).expect("the target node");
            gid(t.port.gid_prefix, t.port.port_guid)
        };
        let target = TargetConfig {
            dgid,
            service_id: TARGET_GUID,
            target_port_id: target_port_id(),
            initiator_ext: 0x0000_0000_0000_0001,
            pkey: 0xFFFF,
        };
        let hal = SharedHal::new(dev.clone(), clock.clone());
        let mut port = Recorder::default();
        let init = Initiator::start(
            hal,
            memory.region(),
            Config::new(target, cfg.seed),
            clock.now_us(),
            &mut port,
        )
        .expect("the initiator starts");
        Rig {
            world,
            clock,
            memory,
            dev,
            init,
            port,
            data_offset: region,
            data_bytes: cfg.data_bytes,
            _images: images,
        }
    }

    pub fn now_us(&self) -> u64 {
        self.clock.now_us()
    }

    /// Runs the world with the initiator polled after every event until `done` says
    /// so or `limit_ns` of virtual time passes. The polls have the port's view: the
    /// recorder and the initiator.
    pub fn run(
        &mut self,
        limit_ns: u64,
        mut done: impl FnMut(&Initiator<SharedHal>, &Recorder) -> bool,
    ) -> bool {
        let Rig {
            world,
            init,
            port,
            clock,
            ..
        } = self;
        world.run_driven(limit_ns, |_| {
            let wake = init.poll(clock.now_us(), port);
            Drive {
                done: done(init, port),
                wake_ns: wake.map(|us| us.saturating_mul(1000)),
            }
        })
    }

    /// Runs until the initiator is ready (or failed); its state.
    pub fn until_ready(&mut self, limit_ns: u64) -> State {
        self.run(limit_ns, |i, _| {
            matches!(i.state(), State::Ready | State::Failed)
        });
        self.init.state()
    }

    /// Hands a request to the initiator.
    pub fn submit(&mut self, req: &Request<'_>, segs: &[Segment]) -> Result<(), Refused> {
        let now = self.clock.now_us();
        self.init
            .submit(now, req, segs.iter().copied(), &mut self.port)
    }

    /// Submits one request and waits for its completion.
    pub fn command(
        &mut self,
        req: &Request<'_>,
        segs: &[Segment],
        limit_ns: u64,
    ) -> Option<Outcome> {
        let user = req.user;
        let mut tries = 0;
        while self.submit(req, segs).is_err() {
            tries += 1;
            if tries > 1000 {
                return None;
            }
            self.run(1_000_000, |_, _| false);
        }
        let mut found = None;
        self.run(limit_ns, |_, p| {
            found = p.done.iter().rposition(|(u, _)| *u == user);
            found.is_some()
        });
        found.map(|i| self.port.done.remove(i).1)
    }

    /// Bus address of byte `offset` of the data area.
    pub fn data_phys(&self, offset: usize) -> u64 {
        HOST_BASE + (self.data_offset + offset) as u64
    }

    pub fn write_data(&self, offset: usize, bytes: &[u8]) {
        self.memory
            .region()
            .write(self.data_offset + offset, bytes)
            .expect("inside the data area");
    }

    pub fn read_data(&self, offset: usize, out: &mut [u8]) {
        self.memory
            .region()
            .read(self.data_offset + offset, out)
            .expect("inside the data area");
    }

    /// Reads LUN `lun`'s image directly (the test's view of the disk).
    pub fn image_read(&mut self, lun: u16, lba: u64, out: &mut [u8]) {
        let t = self.world.target(1).expect("the target");
        let lu = t.srpt.target().lu(Lun::new(lun).unwrap()).expect("the LUN");
        lu.image().read(lba, out).expect("inside the image");
    }
}
