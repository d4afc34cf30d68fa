//! The miniport's `HwFindAdapter` and `HwInitialize` logic, linked natively, against
//! the model of a ConnectX function and its port driver.

use fabboot::adapter::{self, FindError};
use fabboot::event::Event;
use fabboot::port::abi::{SP_RETURN_ERROR, SP_RETURN_NOT_FOUND};
use fabboot_hca::init_seg::InitSegError;
use fabboot_sim::clock::Clock;
use fabboot_sim::device::Mlx5Function;
use fabboot_sim::port::PortModel;

const BAR0: u64 = 0x38_0000_0000;

#[test]
fn a_connectx4_is_found_mapped_and_initialised_without_touching_anything_else() {
    let function = Mlx5Function::connectx4(BAR0, Clock::new());
    let mut port = PortModel::new(&function);
    let ranges = port.access_ranges();
    let found = adapter::find_adapter(&mut port, &ranges).expect("found");
    assert_eq!(
        (found.revisions.fw.major, found.revisions.fw.minor),
        (12, 28)
    );
    assert_eq!(found.revisions.fw.subminor, 2006);
    assert_eq!(adapter::initialize(&found), Ok(()));
    assert_eq!(port.log.mapped, [(BAR0, 32 << 20)]);
    assert!(port.log.events.is_empty() && port.log.bad_maps.is_empty());
    assert_eq!(
        function.violations(),
        [],
        "the driver stayed inside what it may touch"
    );
}

#[test]
fn old_firmware_is_refused_with_an_event_and_the_bar_released() {
    let function = Mlx5Function::connectx4(BAR0, Clock::new());
    function.set_firmware(10, 16, 1000, 4);
    let mut port = PortModel::new(&function);
    let ranges = port.access_ranges();
    let err = adapter::find_adapter(&mut port, &ranges).unwrap_err();
    assert!(matches!(
        err,
        FindError::Hca(InitSegError::UnsupportedCmdIf { found: 4, .. })
    ));
    assert_eq!(err.sp_return(), SP_RETURN_NOT_FOUND);
    assert_eq!(port.log.events, [Event::UnsupportedCmdIfRev { found: 4 }]);
    assert_eq!(port.log.unmapped, 1);
    assert_eq!(function.violations(), []);
}

#[test]
fn an_ethernet_only_part_is_left_to_its_own_driver() {
    let function = Mlx5Function::connectx4(BAR0, Clock::new());
    function.set_ids(0x15B3, 0x101D); // ConnectX-6 Dx
    let mut port = PortModel::new(&function);
    let ranges = port.access_ranges();
    let err = adapter::find_adapter(&mut port, &ranges).unwrap_err();
    assert_eq!(err.sp_return(), SP_RETURN_NOT_FOUND);
    assert!(port.log.mapped.is_empty() && port.log.events.is_empty());
}

#[test]
fn a_function_that_stops_answering_fails_initialisation_and_later_probes() {
    let function = Mlx5Function::connectx4(BAR0, Clock::new());
    let mut port = PortModel::new(&function);
    let ranges = port.access_ranges();
    let found = adapter::find_adapter(&mut port, &ranges).expect("found");
    function.set_responding(false);
    assert_eq!(adapter::initialize(&found), Err(Event::DeviceNotResponding));

    let mut again = PortModel::new(&function);
    let err = adapter::find_adapter(&mut again, &ranges).unwrap_err();
    assert_eq!(err.sp_return(), SP_RETURN_ERROR);
    assert_eq!(again.log.events, [Event::DeviceNotResponding]);
    assert_eq!(again.log.unmapped, 1);
}
