//! The port driver's side of `HwFindAdapter`, modelled: configuration-space reads,
//! BAR mapping and the event log, over a [`Mlx5Function`].

use fabboot::adapter::PortServices;
use fabboot::event::Event;
use fabboot::port::abi::ACCESS_RANGE;
use fabboot_hca::Mmio;

use crate::device::{BAR0_LEN, Mlx5Function};

/// A mapping of the function's BAR0 handed to the driver.
#[derive(Debug)]
pub struct MappedBar<'a> {
    function: &'a Mlx5Function,
}

impl Mmio for MappedBar<'_> {
    fn read32(&self, offset: usize) -> u32 {
        self.function.read32(offset)
    }
    fn write32(&self, offset: usize, value: u32) {
        self.function.write32(offset, value)
    }
}

/// What the model of the port saw the driver do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PortLog {
    pub config_reads: usize,
    pub mapped: Vec<(u64, u32)>,
    pub unmapped: usize,
    pub events: Vec<Event>,
    /// Mappings asked for that are not a range this port assigned.
    pub bad_maps: Vec<(u64, u32)>,
}

/// The port driver, for one PCI function.
pub struct PortModel<'a> {
    function: &'a Mlx5Function,
    pub log: PortLog,
}

impl<'a> PortModel<'a> {
    pub fn new(function: &'a Mlx5Function) -> PortModel<'a> {
        PortModel {
            function,
            log: PortLog::default(),
        }
    }

    /// The access ranges a PnP port driver gives for this function: BAR0.
    pub fn access_ranges(&self) -> [ACCESS_RANGE; 1] {
        [ACCESS_RANGE {
            RangeStart: self.function.bar0() as i64,
            RangeLength: BAR0_LEN,
            RangeInMemory: 1,
        }]
    }
}

impl<'a> PortServices for PortModel<'a> {
    type Bar = MappedBar<'a>;

    fn read_pci_config(&mut self, buf: &mut [u8]) -> usize {
        self.log.config_reads += 1;
        let space = self.function.config_space();
        let n = buf.len().min(space.len());
        buf[..n].copy_from_slice(&space[..n]);
        n
    }

    fn map_memory(&mut self, start: u64, len: u32) -> Option<MappedBar<'a>> {
        if start != self.function.bar0() || len > BAR0_LEN {
            self.log.bad_maps.push((start, len));
            return None;
        }
        self.log.mapped.push((start, len));
        Some(MappedBar {
            function: self.function,
        })
    }

    fn unmap(&mut self, _bar: MappedBar<'a>) {
        self.log.unmapped += 1;
    }

    fn log(&mut self, event: Event) {
        self.log.events.push(event);
    }
}
