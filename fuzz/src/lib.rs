//! Checks shared by the fuzz targets in `fuzz_targets/`.
//!
//! Every target feeds the raw input to one module's parsers (the panic contract of
//! `src/ib/mod.rs` and `srp/src/wire.rs`: no input makes a parser panic). Whenever a
//! parser accepts the input, [`round_trip!`] re-emits the value and parses it again:
//!
//! 1. `emit(v)` succeeds: a value a parser produced is one its emitter can write;
//! 2. `emit(v)` writes the same bytes into a zeroed buffer and into one full of 0xA5
//!    (every byte the emitter owns is written or zeroed; none is left stale);
//! 3. `parse(emit(v)) == v`: nothing the parser keeps is lost or changed on the way;
//! 4. `emit(parse(emit(v))) == emit(v)`: the emitted form is a fixed point.
//!
//! The emitted bytes are *not* compared with the input: emitters write reserved bits
//! and fields the representation does not keep as zero (IBTA vol. 1 and SRP r16a
//! reserved fields; PortInfo's counters; the MAD header's reserved word), so the input
//! and its re-emission legitimately differ there.

use core::fmt::Debug;

/// What an emitter returns on success: `()` (the IB wire formats) or the number of
/// bytes written (the SRP IUs).
pub trait Emitted {
    /// The byte count the emitter reported, if it reports one.
    fn written(self) -> Option<usize>;
}

impl Emitted for () {
    fn written(self) -> Option<usize> {
        None
    }
}

impl Emitted for usize {
    fn written(self) -> Option<usize> {
        Some(self)
    }
}

/// Runs `emit` on a zeroed buffer of `len` bytes and on one filled with 0xA5; both
/// must succeed, report `len` bytes (when they report a count) and produce the same
/// bytes. Returns the emitted bytes.
pub fn emit_checked<R: Emitted, E: Debug>(
    what: &str,
    len: usize,
    mut emit: impl FnMut(&mut [u8]) -> Result<R, E>,
) -> Vec<u8> {
    let mut once = |fill: u8| {
        let mut buf = vec![fill; len];
        match emit(&mut buf) {
            Ok(r) => {
                if let Some(n) = r.written() {
                    assert_eq!(n, len, "{what}: emit reported {n} bytes, expected {len}");
                }
                buf
            }
            Err(e) => panic!("{what}: a parsed value does not emit: {e:?}"),
        }
    };
    let clean = once(0x00);
    let dirty = once(0xA5);
    assert_eq!(
        clean, dirty,
        "{what}: emit leaves bytes of the buffer unwritten (zeroed vs 0xA5-filled buffer)"
    );
    clean
}

/// Round trip of one parsed value `$v` of type `$ty` through `$ty::emit` into `$len`
/// bytes and `$ty::parse` back (checks 1–4 of the crate docs).
#[macro_export]
macro_rules! round_trip {
    ($ty:ident, $v:expr, $len:expr) => {{
        let first = $v;
        let what = stringify!($ty);
        let bytes = $crate::emit_checked(what, $len, |b| first.emit(b));
        let second = match $ty::parse(&bytes) {
            Ok(v) => v,
            Err(e) => panic!(
                "{what}: emitted bytes do not parse: {e:?}\nvalue: {first:?}\nbytes: {bytes:02x?}"
            ),
        };
        assert_eq!(first, second, "{what}: parse(emit(v)) != v");
        let again = $crate::emit_checked(what, $len, |b| second.emit(b));
        assert_eq!(bytes, again, "{what}: emit(parse(emit(v))) != emit(v)");
    }};
}
