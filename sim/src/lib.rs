//! fabboot's simulator: the hardware this project has instead of hardware.
//!
//! Deterministic and single-threaded, on one virtual [`clock`]:
//! - [`device`]: the ConnectX function (configuration space, initialization segment,
//!   command queue, firmware, objects, data path, the port's agent); [`memory`] and
//!   [`hal`]: host memory for DMA and the access layer's platform over the model;
//!   [`port`]: the port driver's services around `HwFindAdapter`;
//! - [`fabric`]: links and a switch with LID routing and a timing model; [`wire`]: the
//!   InfiniBand packet format with its CRCs and a pcap writer;
//! - [`rc`]: the reliable-connected transport engine of one queue pair;
//! - [`sm`]: the built-in subnet manager and SA; [`ibsim`]: a bridge to the real ibsim
//!   and OpenSM;
//! - [`target`]: the SCSI logical units of the SRP target; [`dm`]: its Device Management agent;
//! - [`srpt`]: the SRP target's protocol side (passive CM, SRP login, IU handling);
//! - [`world`]: a whole subnet on the clock: fabric, subnet manager and SA, functions
//!   and targets, with captures, or OpenSM on ibsim;
//! - [`host`]: the Windows host emulator: the shipped `.sys` images in an emulated CPU,
//!   driven as NTLDR, storport and the dump stack would;
//! - [`scenario`]: whole runs shared by the `fabboot-sim` command and the tests.
//! - [`bootdisk`]: the boot disk NTLDR reads: a generated MBR + FAT32 system partition
//!   and a FAT32 reader over a sector interface, with `boot.ini` and the load list.

pub mod boot;
pub mod bootdisk;
pub mod clock;
pub mod device;
pub mod dm;
pub mod drive;
pub mod fabric;
pub mod faults;
pub mod hal;
pub mod host;
pub mod ibsim;
pub mod images;
pub mod memory;
pub mod port;
pub mod rc;
pub mod scenario;
pub mod sm;
pub mod srpt;
pub mod target;
pub mod wire;
pub mod world;
