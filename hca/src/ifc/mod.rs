//! PRM structure layouts ("ifc": the interface the mlx5 firmware defines), as bit fields.
//!
//! Each structure is declared with `ifc_struct!` under its PRM name (the name Linux's
//! `mlx5_ifc.h` gives it, without `mlx5_ifc_` and `_bits`), and each field by its bit
//! offset from the start of the structure and its width, exactly as the PRM numbers
//! them: bit 0 is the most significant bit of byte 0, and every multi-byte field is
//! big-endian. The tables are also what `tests/ifc_oracle.rs` compares with
//! `mlx5_ifc.h` (compiled with gcc, never copied), field by field.
//!
//! Accessors never panic: a field that does not fit the buffer reads as zero and is not
//! written ([`Field::get`], [`Field::set`]); the structures' fixed sizes make that a
//! programming error the tests catch, not a runtime condition.

pub mod cmd;
pub mod events;
pub mod hca_cap;
pub mod objects;

/// A field of a PRM structure: `width` bits starting `bit` bits into the structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// Offset in bits from the start of the structure (PRM numbering: MSB first).
    pub bit: u32,
    /// Width in bits.
    pub width: u32,
}

impl Field {
    /// A field of `width` bits at bit offset `bit`.
    pub const fn new(bit: u32, width: u32) -> Field {
        Field { bit, width }
    }

    /// The same field inside a structure nested at `outer` (for example a QP context
    /// inside `create_qp_in`).
    pub const fn within(self, outer: Field) -> Field {
        Field {
            bit: outer.bit + self.bit,
            width: self.width,
        }
    }

    /// Byte offset of the field's first byte.
    pub const fn byte(self) -> usize {
        (self.bit / 8) as usize
    }

    /// Length in bytes of a byte-aligned field.
    pub const fn byte_len(self) -> usize {
        self.width.div_ceil(8) as usize
    }

    /// Reads the field (at most 64 bits wide) from a big-endian structure.
    pub fn get(self, buf: &[u8]) -> u64 {
        if self.width == 0 || self.width > 64 {
            return 0;
        }
        let first = self.byte();
        let last = ((self.bit + self.width - 1) / 8) as usize;
        let Some(bytes) = buf.get(first..=last) else {
            return 0;
        };
        let mut acc: u128 = 0;
        for &b in bytes {
            acc = acc << 8 | u128::from(b);
        }
        let total = (bytes.len() * 8) as u32;
        let shift = total - (self.bit % 8) - self.width;
        ((acc >> shift) & mask(self.width)) as u64
    }

    /// Writes the field (at most 64 bits wide); bits of `value` above the width are
    /// dropped and neighbouring fields keep their bits.
    pub fn set(self, buf: &mut [u8], value: u64) {
        if self.width == 0 || self.width > 64 {
            return;
        }
        let first = self.byte();
        let last = ((self.bit + self.width - 1) / 8) as usize;
        let Some(bytes) = buf.get_mut(first..=last) else {
            return;
        };
        let mut acc: u128 = 0;
        for &b in bytes.iter() {
            acc = acc << 8 | u128::from(b);
        }
        let total = (bytes.len() * 8) as u32;
        let shift = total - (self.bit % 8) - self.width;
        let m = mask(self.width) << shift;
        acc = (acc & !m) | ((u128::from(value) << shift) & m);
        for (i, b) in bytes.iter_mut().rev().enumerate() {
            *b = (acc >> (8 * i)) as u8;
        }
    }

    /// Whether the field starts and ends on byte boundaries.
    pub const fn byte_aligned(self) -> bool {
        self.bit.is_multiple_of(8) && self.width.is_multiple_of(8)
    }

    /// The bytes of a byte-aligned field (an inline array, a nested structure).
    pub fn bytes(self, buf: &[u8]) -> Option<&[u8]> {
        if !self.byte_aligned() {
            return None;
        }
        buf.get(self.byte()..self.byte() + self.byte_len())
    }

    /// The bytes of a byte-aligned field, writable.
    pub fn bytes_mut(self, buf: &mut [u8]) -> Option<&mut [u8]> {
        if !self.byte_aligned() {
            return None;
        }
        let start = self.byte();
        buf.get_mut(start..start + self.byte_len())
    }
}

/// Whether a field of `width` bits at `bit` lies inside a structure of `size` bits (a
/// flexible array's first element starts where the structure ends).
pub const fn fits(bit: u32, width: u32, size: u32) -> bool {
    bit + width <= size || bit == size
}

const fn mask(width: u32) -> u128 {
    (1u128 << width) - 1
}

/// A PRM structure's name, size and fields, for the oracle test.
#[derive(Clone, Copy, Debug)]
pub struct IfcStruct {
    /// PRM name (`mlx5_ifc_<name>_bits` in Linux).
    pub name: &'static str,
    /// Size in bits.
    pub size_bits: u32,
    /// `(PRM field name, field)`.
    pub fields: &'static [(&'static str, Field)],
}

/// Declares a PRM structure as a module of [`Field`] constants plus its [`IfcStruct`].
///
/// ```text
/// ifc_struct! {
///     /// docs
///     name (SIZE_IN_BITS) {
///         CONST = "prm_field_name": BIT_OFFSET, WIDTH;
///     }
/// }
/// ```
///
/// A flexible array is named by its first element (`"pas[0]"`); the oracle then
/// compares that element's offset and width.
/// ```text
/// {
///     }
/// }
/// ```
macro_rules! ifc_struct {
    (
        $(#[$meta:meta])*
        $name:ident ($size:expr) {
            $( $(#[$fmeta:meta])* $konst:ident = $prm:literal : $bit:expr, $width:expr; )*
        }
    ) => {
        $(#[$meta])*
        #[allow(missing_docs)]
        pub mod $name {
            use $crate::ifc::{Field, IfcStruct};

            /// Size of the structure in bits.
            pub const SIZE_BITS: u32 = $size;
            /// Size of the structure in bytes.
            pub const SIZE: usize = ($size / 8) as usize;
            $(
                $(#[$fmeta])*
                pub const $konst: Field = Field::new($bit, $width);
                const _: () = assert!(
                    $crate::ifc::fits($bit, $width, $size),
                    "field outside its structure"
                );
            )*
            /// Name, size and fields, for the oracle test.
            pub const STRUCT: IfcStruct = IfcStruct {
                name: stringify!($name),
                size_bits: $size,
                fields: &[ $( ($prm, $konst), )* ],
            };
        }
    };
}
pub(crate) use ifc_struct;

/// Every structure declared, for the oracle test.
pub const ALL: &[IfcStruct] = &[
    cmd::cmd_queue_entry::STRUCT,
    cmd::cmd_if_box::STRUCT,
    cmd::enable_hca_in::STRUCT,
    cmd::enable_hca_out::STRUCT,
    cmd::disable_hca_in::STRUCT,
    cmd::query_issi_out::STRUCT,
    cmd::set_issi_in::STRUCT,
    cmd::query_pages_in::STRUCT,
    cmd::query_pages_out::STRUCT,
    cmd::manage_pages_in::STRUCT,
    cmd::manage_pages_out::STRUCT,
    cmd::query_hca_cap_in::STRUCT,
    cmd::query_hca_cap_out::STRUCT,
    cmd::set_hca_cap_in::STRUCT,
    cmd::init_hca_in::STRUCT,
    cmd::teardown_hca_in::STRUCT,
    cmd::teardown_hca_out::STRUCT,
    hca_cap::cmd_hca_cap::STRUCT,
    objects::alloc_uar_out::STRUCT,
    objects::dealloc_uar_in::STRUCT,
    objects::alloc_pd_out::STRUCT,
    objects::dealloc_pd_in::STRUCT,
    objects::mkc::STRUCT,
    objects::create_mkey_in::STRUCT,
    objects::create_mkey_out::STRUCT,
    objects::destroy_mkey_in::STRUCT,
    objects::query_special_contexts_out::STRUCT,
    objects::eqc::STRUCT,
    objects::create_eq_in::STRUCT,
    objects::create_eq_out::STRUCT,
    objects::destroy_eq_in::STRUCT,
    objects::cqc::STRUCT,
    objects::create_cq_in::STRUCT,
    objects::create_cq_out::STRUCT,
    objects::destroy_cq_in::STRUCT,
    objects::ads::STRUCT,
    objects::qpc::STRUCT,
    objects::create_qp_in::STRUCT,
    objects::create_qp_out::STRUCT,
    objects::rst2init_qp_in::STRUCT,
    objects::init2rtr_qp_in::STRUCT,
    objects::rtr2rts_qp_in::STRUCT,
    objects::qp_2err_in::STRUCT,
    objects::qp_2rst_in::STRUCT,
    objects::destroy_qp_in::STRUCT,
    objects::mad_ifc_in::STRUCT,
    objects::mad_ifc_out::STRUCT,
    events::eqe::STRUCT,
    events::comp_event::STRUCT,
    events::cq_error::STRUCT,
    events::port_state_change_event::STRUCT,
    events::pages_req_event::STRUCT,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_fields_across_byte_boundaries() {
        let mut buf = [0xA5u8; 8];
        // Bits 31:9 of the second dword, like input_mailbox_pointer_31_9.
        let f = Field::new(32, 23);
        f.set(&mut buf, 0x7F_FFFF);
        assert_eq!(buf, [0xA5, 0xA5, 0xA5, 0xA5, 0xFF, 0xFF, 0xFF, 0xA5]);
        assert_eq!(f.get(&buf), 0x7F_FFFF);
        f.set(&mut buf, 0x12_3456);
        assert_eq!(f.get(&buf), 0x12_3456);
        assert_eq!(buf[4..7], [0x24, 0x68, 0xAD], "0x123456 << 9, bit 8 kept");
        assert_eq!(buf[7], 0xA5, "the low bits after the field are untouched");
        assert_eq!(buf[..4], [0xA5; 4]);
    }

    #[test]
    fn single_bits_and_big_endian_words() {
        let mut buf = [0u8; 16];
        Field::new(0x7F, 1).set(&mut buf, 1); // ownership: last bit of dword 3
        assert_eq!(buf[15], 0x01);
        Field::new(0x20, 32).set(&mut buf, 0x0102_0304);
        assert_eq!(buf[4..8], [1, 2, 3, 4]);
        Field::new(0x40, 64).set(&mut buf, 0x1122_3344_5566_7788);
        assert_eq!(Field::new(0x40, 64).get(&buf), 0x1122_3344_5566_7788);
        assert_eq!(Field::new(0x40, 16).get(&buf), 0x1122);
    }

    #[test]
    fn out_of_range_fields_read_zero_and_write_nothing() {
        let mut buf = [0xFFu8; 4];
        assert_eq!(Field::new(24, 16).get(&buf), 0);
        Field::new(24, 16).set(&mut buf, 0);
        assert_eq!(buf, [0xFF; 4]);
        assert_eq!(Field::new(0, 65).get(&buf), 0);
        assert_eq!(Field::new(4, 8).bytes(&buf), None);
    }

    #[test]
    fn every_declared_structure_has_distinct_non_overlapping_fields() {
        for s in ALL {
            for (i, (na, a)) in s.fields.iter().enumerate() {
                for (nb, b) in &s.fields[i + 1..] {
                    let disjoint = a.bit + a.width <= b.bit || b.bit + b.width <= a.bit;
                    assert!(disjoint, "{}: {na} overlaps {nb}", s.name);
                }
            }
        }
    }
}
