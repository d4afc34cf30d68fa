//! A machine put together for the host emulator: one ConnectX function at
//! [`BAR0_PHYS`] with the machine's RAM attached, one SRP target whose LUN 0 is a disk
//! image file, a subnet manager (built-in or OpenSM on ibsim), and the CPU and port
//! around a driver image.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use fabboot::port::Flavour;

use super::Arch;
use super::port::{BAR0_PHYS, Env, HostError, Machine, MachineParts, PHYS_BASE};
use crate::clock::Clock;
use crate::device::Mlx5Function;
use crate::dm::{DmAgent, IocDescription};
use crate::fabric::FabricConfig;
use crate::memory::HostMemory;
use crate::scenario::SmChoice;
use crate::srpt::{SrpTarget, SrptConfig};
use crate::target::{Access, BlockSize, Image, LogicalUnit, LuIdentity, Lun, Product, Target};
use crate::world::probe::{TARGET_GUID, gid, target_port_id};
use crate::world::{Manager, Node, TargetNode, World};

/// Bytes of RAM the machine has for DMA (uncached extension, DumpRegion, buffers).
pub const RAM_BYTES: usize = 64 << 20;
/// The initiator port ID extension the emulated machines use.
pub const INITIATOR_EXT: u64 = 0x0000_0000_0000_0001;

/// What to build.
#[derive(Clone, Debug)]
pub struct RigOptions {
    pub arch: Arch,
    pub flavour: Flavour,
    pub env: Env,
    pub sm: SmChoice,
    /// The disk image LUN 0 exports (opened read-write).
    pub disk: PathBuf,
    /// Write every packet to this capture.
    pub pcap: Option<PathBuf>,
    /// Registry `DriverParameter` for the kernel; `None`: use [`target_parameter`].
    pub driver_parameter: Option<String>,
}

/// The target as the driver must be told about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetIdentity {
    pub dgid: [u8; 16],
    pub service_id: u64,
    pub target_port_id: [u8; 16],
    pub initiator_ext: u64,
    pub pkey: u16,
    /// The machine's port GID (what a firmware that booted through it records).
    pub sgid: [u8; 16],
}

impl TargetIdentity {
    /// The registry `DriverParameter` string naming this target (the driver's
    /// documented `key=value;` syntax).
    pub fn driver_parameter(&self) -> String {
        format!(
            "dgid={};service_id={:x};target_port_id={};initiator_ext={:x};pkey={:x}",
            crate::bootdisk::hex(&self.dgid),
            self.service_id,
            crate::bootdisk::hex(&self.target_port_id),
            self.initiator_ext,
            self.pkey
        )
    }

    /// What a firmware that booted LUN 0 of this target through the machine's port
    /// leaves in its sBFT (initiator port ID: the extension and the port GUID, as iPXE
    /// forms it).
    pub fn sbft(&self) -> super::firmware::SbftContent {
        let mut initiator_port_id = [0u8; 16];
        initiator_port_id[..8].copy_from_slice(&self.initiator_ext.to_be_bytes());
        initiator_port_id[8..].copy_from_slice(&self.sgid[8..]);
        super::firmware::SbftContent {
            lun: 0,
            initiator_port_id,
            target_port_id: self.target_port_id,
            sgid: self.sgid,
            dgid: self.dgid,
            service_id: self.service_id,
            pkey: self.pkey,
        }
    }
}

/// The machine and what was built around it.
pub struct HostRig {
    pub machine: Machine,
    pub target: TargetIdentity,
}

impl std::fmt::Debug for HostRig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostRig")
            .field("target", &self.target)
            .finish()
    }
}

fn target_node(disk: &Path) -> Result<TargetNode, HostError> {
    let image = Image::open(disk, BlockSize::B512, Access::ReadWrite)
        .map_err(|e| HostError::Contract(format!("disk image {}: {e}", disk.display())))?;
    let mut target = Target::new(Product::simulated());
    target
        .add(
            Lun::new(0).ok_or_else(|| HostError::Contract("LUN 0".into()))?,
            LogicalUnit::new(image, LuIdentity::simulated(0)),
        )
        .map_err(|e| HostError::Contract(format!("{e:?}")))?;
    let port_guid = TARGET_GUID + 1;
    let scfg = SrptConfig::ib_srpt(TARGET_GUID, gid(0xFE80_0000_0000_0000, port_guid), 0);
    let dm = DmAgent::new(IocDescription::srp_target(TARGET_GUID, 0x0002C9, 0x1017, 1))
        .map_err(|e| HostError::Contract(format!("{e:?}")))?;
    Ok(TargetNode::new(port_guid, SrpTarget::new(scfg, target), dm))
}

impl HostRig {
    /// Builds the world and the machine (no image loaded yet).
    pub fn new(opts: &RigOptions) -> Result<HostRig, HostError> {
        let clock = Clock::new();
        let ram = Rc::new(HostMemory::new(RAM_BYTES, PHYS_BASE));
        let dev = Rc::new(Mlx5Function::connectx4(BAR0_PHYS, clock.clone()));
        dev.attach_memory(ram.region());
        let target = target_node(&opts.disk)?;
        let nodes = vec![Node::Host(dev.clone()), Node::Target(Box::new(target))];
        let mut world = match opts.sm {
            SmChoice::Builtin => World::new(
                clock.clone(),
                FabricConfig::default(),
                nodes,
                Manager::default(),
            ),
            SmChoice::OpenSm => World::with_opensm(clock.clone(), FabricConfig::default(), nodes)
                .map_err(|e| HostError::Contract(format!("ibsim/OpenSM: {e}")))?,
        };
        if let Some(p) = &opts.pcap {
            world
                .capture_to(p)
                .map_err(|e| HostError::Contract(format!("capture {}: {e}", p.display())))?;
        }
        let dgid = {
            let t = world
                .target(1)
                .ok_or_else(|| HostError::Contract("no target node".into()))?;
            gid(t.port.gid_prefix, t.port.port_guid)
        };
        let sgid = {
            let fw = dev.firmware();
            gid(fw.port.gid_prefix, fw.port.port_guid)
        };
        let identity = TargetIdentity {
            dgid,
            service_id: TARGET_GUID,
            target_port_id: target_port_id(),
            initiator_ext: INITIATOR_EXT,
            pkey: 0xFFFF,
            sgid,
        };
        let driver_parameter = match opts.env {
            Env::Kernel => Some(
                opts.driver_parameter
                    .clone()
                    .unwrap_or_else(|| identity.driver_parameter()),
            ),
            _ => None,
        };
        let machine = Machine::new(MachineParts {
            arch: opts.arch,
            flavour: opts.flavour,
            env: opts.env,
            world,
            clock,
            dev,
            ram,
            driver_parameter,
        })?;
        Ok(HostRig {
            machine,
            target: identity,
        })
    }
}
