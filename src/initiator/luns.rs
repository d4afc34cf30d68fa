//! The target's logical units as the port driver sees them: SRB target 0, LUN n is
//! the n-th entry of the target's REPORT LUNS list (SPC-4 §6.33), in the target's
//! order. Until the list is known, and when the target cannot report it, LUN 0 alone
//! is presented.

use fabboot_hca::bytes;

/// Most LUNs presented (the rest of a longer list is ignored and counted).
pub const MAX_LUNS: usize = 32;

/// REPORT LUNS (SPC-4 §6.33), SELECT REPORT 0, for `alloc` bytes.
pub fn report_luns_cdb(alloc: u32) -> [u8; 12] {
    let [a0, a1, a2, a3] = alloc.to_be_bytes();
    [0xA0, 0, 0, 0, 0, 0, a0, a1, a2, a3, 0, 0]
}

/// Why a REPORT LUNS parameter list was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LunListError {
    /// Shorter than its 8-byte header.
    Short {
        /// Bytes received.
        got: usize,
    },
    /// LUN LIST LENGTH is not a multiple of 8.
    Ragged {
        /// The LUN LIST LENGTH field.
        list_len: u32,
    },
    /// The list holds no LUN.
    Empty,
}

/// The LUN map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LunMap {
    luns: [[u8; 8]; MAX_LUNS],
    count: usize,
    /// LUNs the target listed beyond [`MAX_LUNS`] or beyond the bytes received.
    pub dropped: u32,
}

impl Default for LunMap {
    fn default() -> Self {
        Self::lun0()
    }
}

impl LunMap {
    /// LUN 0 alone.
    pub const fn lun0() -> LunMap {
        LunMap {
            luns: [[0; 8]; MAX_LUNS],
            count: 1,
            dropped: 0,
        }
    }

    /// Reads a REPORT LUNS parameter list (`data` is what arrived).
    pub fn parse(data: &[u8]) -> Result<LunMap, LunListError> {
        let head = data
            .get(..8)
            .ok_or(LunListError::Short { got: data.len() })?;
        let list_len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if list_len % 8 != 0 {
            return Err(LunListError::Ragged { list_len });
        }
        let listed = (list_len / 8) as usize;
        let mut map = LunMap {
            luns: [[0; 8]; MAX_LUNS],
            count: 0,
            dropped: 0,
        };
        for (i, entry) in data
            .get(8..)
            .unwrap_or(&[])
            .chunks_exact(8)
            .take(listed.min(MAX_LUNS))
            .enumerate()
        {
            if let Some(slot) = map.luns.get_mut(i)
                && bytes::copy(slot, entry)
            {
                map.count = i + 1;
            }
        }
        map.dropped = u32::try_from(listed.saturating_sub(map.count)).unwrap_or(u32::MAX);
        if map.count == 0 {
            return Err(LunListError::Empty);
        }
        Ok(map)
    }

    /// LUNs presented.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no LUN is presented (never, for a map built here).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The 8-byte SAM LUN of SRB LUN `index`.
    pub fn get(&self, index: u8) -> Option<[u8; 8]> {
        self.luns
            .get(..self.count)?
            .get(usize::from(index))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn list(luns: &[[u8; 8]], claimed: u32) -> Vec<u8> {
        let mut d = claimed.to_be_bytes().to_vec();
        d.extend_from_slice(&[0; 4]);
        for l in luns {
            d.extend_from_slice(l);
        }
        d
    }

    #[test]
    fn maps_srb_luns_to_the_listed_order() {
        let a = [0, 0, 0, 0, 0, 0, 0, 0];
        let b = [0x40, 0x05, 0, 0, 0, 0, 0, 0];
        let m = LunMap::parse(&list(&[b, a], 16)).unwrap();
        assert_eq!(
            (m.len(), m.get(0), m.get(1), m.get(2)),
            (2, Some(b), Some(a), None)
        );
        assert_eq!(LunMap::default().get(0), Some([0; 8]));
        assert_eq!(report_luns_cdb(4096)[6..10], [0, 0, 0x10, 0]);
    }

    #[test]
    fn short_ragged_empty_and_truncated_lists() {
        assert_eq!(LunMap::parse(&[0; 7]), Err(LunListError::Short { got: 7 }));
        assert_eq!(
            LunMap::parse(&list(&[], 12)),
            Err(LunListError::Ragged { list_len: 12 })
        );
        assert_eq!(LunMap::parse(&list(&[], 0)), Err(LunListError::Empty));
        // The list claims 3 LUNs but only 1 arrived (allocation length too small).
        let m = LunMap::parse(&list(&[[0; 8]], 24)).unwrap();
        assert_eq!((m.len(), m.dropped), (1, 2));
        // More than MAX_LUNS.
        let many: Vec<[u8; 8]> = (0..40u8).map(|i| [0, i, 0, 0, 0, 0, 0, 0]).collect();
        let m = LunMap::parse(&list(&many, 320)).unwrap();
        assert_eq!(
            (m.len(), m.dropped, m.get(31)),
            (32, 8, Some([0, 31, 0, 0, 0, 0, 0, 0]))
        );
    }
}
