//! The adapter, from the port driver's point of view: finding the HCA function
//! (`HwFindAdapter`), checking it again (`HwInitialize`), and adapter control.
//!
//! Safe code: the port's services arrive through [`PortServices`], which the driver
//! images implement over scsiport/storport calls and tests implement over a model.

use fabboot_hca::Mmio;
use fabboot_hca::init_seg::{self, InitSegError, Revisions};

use crate::event::Event;
use crate::pci::{self, PciError, PciHeader};
use crate::port::abi::*;

/// What the miniport needs from its port driver while finding the adapter.
pub trait PortServices {
    /// The mapped BAR0.
    type Bar: Mmio;
    /// Reads the adapter function's PCI configuration space from offset 0 into `buf`;
    /// returns the number of bytes read (0 when there is no function).
    fn read_pci_config(&mut self, buf: &mut [u8]) -> usize;
    /// Maps `len` bytes of memory space at bus address `start`.
    fn map_memory(&mut self, start: u64, len: u32) -> Option<Self::Bar>;
    /// Releases a mapping made by [`PortServices::map_memory`].
    fn unmap(&mut self, bar: Self::Bar);
    /// Writes an event-log entry.
    fn log(&mut self, event: Event);
}

/// Smallest BAR0 that holds what the driver reads before bring-up: the initialization
/// segment, health buffer and health counter (reference/mlx5.md §C.2, up to 0x1014).
pub const MIN_BAR0_LEN: u32 = 0x2000;

/// A found, mapped, firmware-checked HCA.
#[derive(Debug)]
pub struct Found<B> {
    pub bar: B,
    pub pci: PciHeader,
    pub revisions: Revisions,
}

/// Why `HwFindAdapter` does not take a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FindError {
    /// Nothing usable answered in configuration space.
    NoFunction(PciError),
    /// A function, but not one of ours.
    NotOurs { vendor: u16, device: u16 },
    /// BAR0 is not among the memory ranges the port gave us, or is too small.
    Bar0NotAssigned { bar0: Option<u64>, ranges: usize },
    /// The port refused to map BAR0.
    Bar0MapFailed { start: u64, len: u32 },
    /// The HCA's initialization segment refused us.
    Hca(InitSegError),
}

impl FindError {
    /// The `SP_RETURN_*` value `HwFindAdapter` returns for this error.
    pub fn sp_return(&self) -> u32 {
        match self {
            FindError::NoFunction(_) | FindError::NotOurs { .. } => SP_RETURN_NOT_FOUND,
            FindError::Hca(InitSegError::UnsupportedCmdIf { .. }) => SP_RETURN_NOT_FOUND,
            FindError::Bar0NotAssigned { .. } => SP_RETURN_BAD_CONFIG,
            FindError::Bar0MapFailed { .. } | FindError::Hca(InitSegError::NotResponding) => {
                SP_RETURN_ERROR
            }
        }
    }

    /// The event-log entry for this error; `None` for functions that are simply not
    /// ours (scsiport offers every function it finds).
    pub fn event(&self) -> Option<Event> {
        match *self {
            FindError::NoFunction(_) | FindError::NotOurs { .. } => None,
            FindError::Bar0NotAssigned { ranges, .. } => Some(Event::Bar0NotAssigned {
                ranges: u16::try_from(ranges).unwrap_or(u16::MAX),
            }),
            FindError::Bar0MapFailed { .. } => Some(Event::Bar0MapFailed),
            FindError::Hca(InitSegError::NotResponding) => Some(Event::DeviceNotResponding),
            FindError::Hca(InitSegError::UnsupportedCmdIf { found, .. }) => {
                Some(Event::UnsupportedCmdIfRev { found })
            }
        }
    }
}

impl From<PciError> for FindError {
    fn from(e: PciError) -> Self {
        FindError::NoFunction(e)
    }
}

/// `HwFindAdapter`'s work: identify the function from its configuration header, find
/// BAR0 among the port's access ranges, map it, and read the firmware's revisions.
/// Errors a user must act on are logged before they are returned; a mapping is released
/// on every error after it was made.
pub fn find_adapter<P: PortServices>(
    port: &mut P,
    ranges: &[ACCESS_RANGE],
) -> Result<Found<P::Bar>, FindError> {
    let result = probe(port, ranges);
    if let Err(e) = &result
        && let Some(event) = e.event()
    {
        port.log(event);
    }
    result
}

fn probe<P: PortServices>(
    port: &mut P,
    ranges: &[ACCESS_RANGE],
) -> Result<Found<P::Bar>, FindError> {
    let mut config = [0u8; pci::HEADER_LEN];
    let len = port.read_pci_config(&mut config);
    let header = PciHeader::parse(config.get(..len).unwrap_or(&[]))?;
    if !pci::is_supported_device(header.vendor, header.device) {
        return Err(FindError::NotOurs {
            vendor: header.vendor,
            device: header.device,
        });
    }
    let not_assigned = FindError::Bar0NotAssigned {
        bar0: header.bar0,
        ranges: ranges.len(),
    };
    let bar0 = header.bar0.filter(|&b| b != 0).ok_or(not_assigned)?;
    let range = ranges
        .iter()
        .find(|r| r.RangeInMemory != 0 && u64::try_from(r.RangeStart) == Ok(bar0))
        .filter(|r| r.RangeLength >= MIN_BAR0_LEN)
        .ok_or(not_assigned)?;
    let len = range.RangeLength;
    let bar = port
        .map_memory(bar0, len)
        .ok_or(FindError::Bar0MapFailed { start: bar0, len })?;
    match init_seg::read_revisions(&bar) {
        Ok(revisions) => Ok(Found {
            bar,
            pci: header,
            revisions,
        }),
        Err(e) => {
            port.unmap(bar);
            Err(FindError::Hca(e))
        }
    }
}

/// `HwInitialize`'s check before the adapter is used: the function must still answer
/// with firmware the driver speaks to (it may have been reset or removed since
/// `HwFindAdapter`). The error is the event to log.
pub fn initialize<B: Mmio>(found: &Found<B>) -> Result<(), Event> {
    recheck(&found.bar)
}

/// [`initialize`]'s check on the BAR alone (once the BAR belongs to the initiator's
/// platform).
pub fn recheck(bar: &impl Mmio) -> Result<(), Event> {
    match init_seg::read_revisions(bar) {
        Ok(_) => Ok(()),
        Err(InitSegError::NotResponding) => Err(Event::DeviceNotResponding),
        Err(InitSegError::UnsupportedCmdIf { found, .. }) => {
            Err(Event::UnsupportedCmdIfRev { found })
        }
    }
}

/// Adapter-control types this miniport implements (`HwAdapterControl`): the query,
/// and the stop / set-running-config / restart cycle of a power-down (sleep,
/// hibernation). `ScsiSetBootConfig` is not: the firmware's SRP boot (iPXE) resets the
/// function itself, and nothing else needs restoring for a reboot. Without
/// `ScsiRestartAdapter` storport would run `HwFindAdapter` again, which cannot take
/// the DMA memory a second time.
pub fn adapter_control_supported(control: SCSI_ADAPTER_CONTROL_TYPE) -> bool {
    [
        ScsiQuerySupportedControlTypes,
        ScsiStopAdapter,
        ScsiRestartAdapter,
        ScsiSetRunningConfig,
    ]
    .contains(&control)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::RefCell;
    use std::vec::Vec;

    /// BAR0 registers: offset → register value.
    #[derive(Debug)]
    struct FakeBar {
        regs: [(usize, u32); 2],
    }

    impl Mmio for FakeBar {
        fn read32(&self, offset: usize) -> u32 {
            self.regs
                .iter()
                .find(|(o, _)| *o == offset)
                .map_or(0, |(_, v)| *v)
        }
        fn write32(&self, _offset: usize, _value: u32) {
            panic!("probing must not write the device");
        }
    }

    struct FakePort {
        config: Vec<u8>,
        fw_rev: u32,
        cmdif: u32,
        map_ok: bool,
        mapped: RefCell<Vec<(u64, u32)>>,
        unmapped: usize,
        events: Vec<Event>,
    }

    impl PortServices for FakePort {
        type Bar = FakeBar;
        fn read_pci_config(&mut self, buf: &mut [u8]) -> usize {
            let n = buf.len().min(self.config.len());
            buf[..n].copy_from_slice(&self.config[..n]);
            n
        }
        fn map_memory(&mut self, start: u64, len: u32) -> Option<FakeBar> {
            self.mapped.borrow_mut().push((start, len));
            self.map_ok.then_some(FakeBar {
                regs: [(0, self.fw_rev), (4, self.cmdif)],
            })
        }
        fn unmap(&mut self, _bar: FakeBar) {
            self.unmapped += 1;
        }
        fn log(&mut self, event: Event) {
            self.events.push(event);
        }
    }

    const BAR0: u64 = 0xF800_0000;

    fn connectx5() -> FakePort {
        let mut config = std::vec![0u8; 256];
        config[0..2].copy_from_slice(&0x15B3u16.to_le_bytes());
        config[2..4].copy_from_slice(&0x1017u16.to_le_bytes());
        config[0x10..0x14].copy_from_slice(&(0xF800_000Cu32).to_le_bytes());
        FakePort {
            config,
            fw_rev: 0x001C_0010, // 16.28
            cmdif: 0x0005_0100,
            map_ok: true,
            mapped: RefCell::new(Vec::new()),
            unmapped: 0,
            events: Vec::new(),
        }
    }

    fn range(start: u64, len: u32, memory: bool) -> ACCESS_RANGE {
        ACCESS_RANGE {
            RangeStart: start as i64,
            RangeLength: len,
            RangeInMemory: u8::from(memory),
        }
    }

    #[test]
    fn finds_and_maps_a_connectx5() {
        let mut port = connectx5();
        let ranges = [range(BAR0, 0x0200_0000, true)];
        let found = find_adapter(&mut port, &ranges).unwrap();
        assert_eq!(found.pci.device, 0x1017);
        assert_eq!(found.revisions.cmdif, 5);
        assert_eq!(
            (found.revisions.fw.major, found.revisions.fw.minor),
            (16, 28)
        );
        assert_eq!(*port.mapped.borrow(), [(BAR0, 0x0200_0000)]);
        assert!(port.events.is_empty());
    }

    #[test]
    fn other_functions_are_not_found_and_not_logged() {
        let mut port = connectx5();
        port.config[2..4].copy_from_slice(&0x1015u16.to_le_bytes()); // ConnectX-4 Lx
        let err = find_adapter(&mut port, &[range(BAR0, 0x0200_0000, true)]).unwrap_err();
        assert_eq!(
            err,
            FindError::NotOurs {
                vendor: 0x15B3,
                device: 0x1015
            }
        );
        assert_eq!(err.sp_return(), SP_RETURN_NOT_FOUND);
        assert!(
            port.mapped.borrow().is_empty(),
            "never map a function that is not ours"
        );
        assert!(port.events.is_empty());

        let mut empty = connectx5();
        empty.config.clear();
        let err = find_adapter(&mut empty, &[]).unwrap_err();
        assert_eq!(err.sp_return(), SP_RETURN_NOT_FOUND);
        assert!(empty.events.is_empty());
    }

    #[test]
    fn unsupported_command_interface_is_refused_with_an_event() {
        let mut port = connectx5();
        port.cmdif = 0x0004_0000;
        let err = find_adapter(&mut port, &[range(BAR0, 0x0200_0000, true)]).unwrap_err();
        assert_eq!(err.sp_return(), SP_RETURN_NOT_FOUND);
        assert_eq!(port.events, [Event::UnsupportedCmdIfRev { found: 4 }]);
        assert_eq!(port.unmapped, 1, "the mapping is released");
    }

    #[test]
    fn a_dead_function_is_an_error_with_an_event() {
        let mut port = connectx5();
        port.fw_rev = u32::MAX;
        port.cmdif = u32::MAX;
        let err = find_adapter(&mut port, &[range(BAR0, 0x0200_0000, true)]).unwrap_err();
        assert_eq!(err.sp_return(), SP_RETURN_ERROR);
        assert_eq!(port.events, [Event::DeviceNotResponding]);
        assert_eq!(port.unmapped, 1);
    }

    #[test]
    fn bar0_must_be_an_assigned_memory_range_of_useful_size() {
        for ranges in [
            std::vec![],
            std::vec![range(BAR0, 0x0200_0000, false)],
            std::vec![range(BAR0 + 0x1000, 0x0200_0000, true)],
            std::vec![range(BAR0, 0x1000, true)],
        ] {
            let mut port = connectx5();
            let err = find_adapter(&mut port, &ranges).unwrap_err();
            assert_eq!(err.sp_return(), SP_RETURN_BAD_CONFIG, "{ranges:?}");
            assert!(port.mapped.borrow().is_empty());
            assert_eq!(
                port.events,
                [Event::Bar0NotAssigned {
                    ranges: ranges.len() as u16
                }]
            );
        }
    }

    #[test]
    fn a_refused_mapping_is_an_error_with_an_event() {
        let mut port = connectx5();
        port.map_ok = false;
        let err = find_adapter(&mut port, &[range(BAR0, 0x0200_0000, true)]).unwrap_err();
        assert_eq!(err.sp_return(), SP_RETURN_ERROR);
        assert_eq!(port.events, [Event::Bar0MapFailed]);
    }

    #[test]
    fn initialize_rechecks_that_the_function_still_answers() {
        let mut port = connectx5();
        let mut found = find_adapter(&mut port, &[range(BAR0, 0x0200_0000, true)]).unwrap();
        assert_eq!(initialize(&found), Ok(()));
        found.bar.regs = [(0, u32::MAX), (4, u32::MAX)];
        assert_eq!(initialize(&found), Err(Event::DeviceNotResponding));
        assert_eq!(recheck(&found.bar), Err(Event::DeviceNotResponding));
        found.bar.regs = [(0, 0x0010_0010), (4, 0x0006_0000)];
        assert_eq!(
            initialize(&found),
            Err(Event::UnsupportedCmdIfRev { found: 6 })
        );
    }

    #[test]
    fn adapter_control_reports_the_power_cycle_and_nothing_else() {
        for supported in [
            ScsiQuerySupportedControlTypes,
            ScsiStopAdapter,
            ScsiRestartAdapter,
            ScsiSetRunningConfig,
        ] {
            assert!(adapter_control_supported(supported), "{supported}");
        }
        assert!(!adapter_control_supported(ScsiSetBootConfig));
        assert!((5..64).all(|t| !adapter_control_supported(t)));
    }
}
