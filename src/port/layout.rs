//! Layout records for the port ABI, and the macros that declare ABI structures.
//!
//! Every `#[repr(C)]` structure shared with scsiport or storport is declared through
//! [`abi_struct!`], which emits three things from one list:
//!
//! * the structure itself;
//! * `static_assertions` checks that its size and every field offset equal the numbers
//!   written beside the field, for the architecture being compiled (i686 or x86_64;
//!   the build compiles the crate for both Windows targets, so both columns are checked);
//! * a [`StructLayout`] record naming the independent definition each number was taken
//!   from ([`Oracle`]). A test turns the records marked [`Oracle::Mingw`] into a C file of
//!   `_Static_assert`s and compiles it against mingw-w64's DDK headers for both
//!   architectures (`tests/abi_mingw.rs`), so our numbers, our structures and a definition
//!   this project did not write must all agree. Records marked [`Oracle::Doc`] name the
//!   Microsoft documentation the numbers were derived from.
//!
//! The records are also what a host-side emulator needs to read these structures out of
//! a 32-bit guest's memory.

/// Where a number in the ABI tables comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Oracle {
    /// Checked by compiling against mingw-w64's `ddk/` headers. `c_name` is the member or
    /// constant's name there when it differs from ours (for example a member mingw still
    /// calls `Reserved` that later headers named).
    Mingw { c_name: Option<&'static str> },
    /// Not (or not correctly) in mingw-w64's headers; derived from Microsoft's documented
    /// layout, which the string names.
    Doc(&'static str),
    /// Architecture-dependent padding that only exists in one column; not a C member.
    Padding,
}

impl Oracle {
    /// Name to use in C for a Rust member `rust_name`, if this record is checked by mingw.
    pub fn mingw_name(&self, rust_name: &'static str) -> Option<&'static str> {
        match self {
            Oracle::Mingw { c_name } => Some(c_name.unwrap_or(rust_name)),
            _ => None,
        }
    }
}

/// Offset of one member, per architecture.
#[derive(Clone, Copy, Debug)]
pub struct FieldLayout {
    pub name: &'static str,
    pub off32: usize,
    pub off64: usize,
    pub oracle: Oracle,
}

/// Size and member offsets of one structure, per architecture.
#[derive(Clone, Copy, Debug)]
pub struct StructLayout {
    pub name: &'static str,
    pub size32: usize,
    pub size64: usize,
    pub size_oracle: Oracle,
    pub fields: &'static [FieldLayout],
}

/// A constant (enumerator, flag, status code or size) and its value per architecture.
#[derive(Clone, Copy, Debug)]
pub struct ConstLayout {
    pub name: &'static str,
    pub value32: u64,
    pub value64: u64,
    pub oracle: Oracle,
    /// C expression to compare with, when it is not simply the constant's name.
    pub c_expr: Option<&'static str>,
}

/// Implemented by every structure declared with [`abi_struct!`].
pub trait Layout {
    const LAYOUT: StructLayout;
}

/// Picks the i686 or the x86_64 column for the architecture being compiled.
pub const fn pick(v32: usize, v64: usize) -> usize {
    if cfg!(target_pointer_width = "64") {
        v64
    } else {
        v32
    }
}

/// Builds an [`Oracle`] from the short forms used in the tables.
macro_rules! oracle {
    (mingw) => {
        $crate::port::layout::Oracle::Mingw { c_name: None }
    };
    (mingw($c:expr)) => {
        $crate::port::layout::Oracle::Mingw { c_name: Some($c) }
    };
    (doc($d:expr)) => {
        $crate::port::layout::Oracle::Doc($d)
    };
    (padding) => {
        $crate::port::layout::Oracle::Padding
    };
}

/// Declares a `#[repr(C)]` ABI structure with its checked layout (see the module docs).
///
/// ```text
/// abi_struct! {
///     /// docs
///     pub struct NAME: size(I686, X86_64) ORACLE {
///         pub Member: Type = (I686, X86_64) ORACLE,
///     }
/// }
/// ```
macro_rules! abi_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident : size($s32:expr, $s64:expr) $sor:ident $(($sarg:expr))? {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident : $ty:ty = ($o32:expr, $o64:expr) $or:ident $(($oarg:expr))?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        static_assertions::const_assert_eq!(
            core::mem::size_of::<$name>(),
            $crate::port::layout::pick($s32, $s64)
        );
        $(
            static_assertions::const_assert_eq!(
                core::mem::offset_of!($name, $field),
                $crate::port::layout::pick($o32, $o64)
            );
        )*

        impl $name {
            /// A value with every member zero: null pointers, absent callbacks.
            pub const fn zeroed() -> Self {
                // SAFETY: structures declared through `abi_struct!` hold only integers,
                // arrays of integers, raw pointers, `Option`s of function pointers and
                // other such structures; all-zero bytes are a valid value of each.
                unsafe { core::mem::zeroed() }
            }
        }

        impl $crate::port::layout::Layout for $name {
            const LAYOUT: $crate::port::layout::StructLayout = $crate::port::layout::StructLayout {
                name: stringify!($name),
                size32: $s32,
                size64: $s64,
                size_oracle: oracle!($sor $(($sarg))?),
                fields: &[
                    $(
                        $crate::port::layout::FieldLayout {
                            name: stringify!($field),
                            off32: $o32,
                            off64: $o64,
                            oracle: oracle!($or $(($oarg))?),
                        },
                    )*
                ],
            };
        }
    };
}

/// Declares ABI constants with their values and oracles, and a table of them.
///
/// ```text
/// abi_consts! { TABLE_NAME;
///     /// docs
///     pub const NAME: Type = VALUE, ORACLE;
/// }
/// ```
macro_rules! abi_consts {
    (
        $table:ident;
        $(
            $(#[$meta:meta])*
            pub const $name:ident : $ty:ty = $value:expr, $or:ident $(($oarg:expr))?;
        )*
    ) => {
        $(
            $(#[$meta])*
            pub const $name: $ty = $value;
        )*

        /// Every constant of this group with its value and oracle.
        pub const $table: &[$crate::port::layout::ConstLayout] = &[
            $(
                $crate::port::layout::ConstLayout {
                    name: stringify!($name),
                    value32: $name as u64,
                    value64: $name as u64,
                    oracle: oracle!($or $(($oarg))?),
                    c_expr: None,
                },
            )*
        ];
    };
}

pub(crate) use {abi_consts, abi_struct, oracle};
