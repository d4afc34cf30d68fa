//! A logical unit: a direct access block device (SBC-3) over a disk [`Image`], with
//! the SPC-4 commands an initiator needs to find and use it.
//!
//! Sense data is kept per logical unit (the simulator has one initiator per target
//! port): a command that ends in CHECK CONDITION leaves its sense for REQUEST SENSE,
//! any other command clears it, and REQUEST SENSE returns it once (SPC-4, "REQUEST
//! SENSE command": with nothing to report, NO SENSE / NO ADDITIONAL SENSE
//! INFORMATION).

use super::Outcome;
use super::cdb::Command;
use super::disk::{Access, DiskError, Image};
use super::inquiry::{self, LuIdentity};
use super::lun::Lun;
use super::mode::{self, Medium, ModeRequest};
use super::sense::{Asc, Sense, SenseKey};

/// Length of READ CAPACITY (10) parameter data.
const READ_CAPACITY_10_LEN: usize = 8;
/// Length of READ CAPACITY (16) parameter data.
const READ_CAPACITY_16_LEN: usize = 32;

/// A logical unit over a disk image.
#[derive(Debug)]
pub struct LogicalUnit {
    image: Image,
    identity: LuIdentity,
    last_sense: Option<Sense>,
}

impl LogicalUnit {
    /// A logical unit serving `image`, write protected when the image is read-only.
    pub fn new(image: Image, identity: LuIdentity) -> LogicalUnit {
        LogicalUnit {
            image,
            identity,
            last_sense: None,
        }
    }

    /// The backing store.
    pub fn image(&self) -> &Image {
        &self.image
    }

    /// Who it says it is.
    pub fn identity(&self) -> &LuIdentity {
        &self.identity
    }

    /// The sense data REQUEST SENSE would return now, if any.
    pub fn pending_sense(&self) -> Option<Sense> {
        self.last_sense
    }

    /// Runs a parsed command (or the sense that rejected its CDB); `luns` are the
    /// target's logical units, for REPORT LUNS.
    pub(super) fn execute(
        &mut self,
        parsed: Result<Command, Sense>,
        data_in_len: u32,
        data_out: &[u8],
        luns: &[Lun],
    ) -> Outcome {
        let outcome = match parsed {
            Ok(cmd) => self.run(cmd, data_in_len, data_out, luns),
            Err(sense) => Outcome::check(sense),
        };
        // A command that succeeds (REQUEST SENSE included: it handed the sense over)
        // clears the pending sense; one that fails leaves its own.
        self.last_sense = outcome.result.as_ref().err().copied();
        outcome
    }

    fn medium(&self) -> Medium {
        Medium {
            blocks: self.image.blocks(),
            block_len: self.image.block_size().bytes(),
            write_protected: self.image.access() == Access::ReadOnly,
        }
    }

    /// LBA OUT OF RANGE unless `lba` is a block of the medium and `lba + blocks` does
    /// not pass its end (SBC-3, READ (10): "If the specified LBA and the specified
    /// transfer length exceed the capacity of the medium").
    fn in_range(&self, lba: u64, blocks: u64) -> Result<(), Sense> {
        let capacity = self.image.blocks();
        match lba.checked_add(blocks) {
            Some(end) if lba < capacity && end <= capacity => Ok(()),
            _ => Err(Sense::illegal(Asc::LBA_OUT_OF_RANGE)),
        }
    }

    fn run(&mut self, cmd: Command, data_in_len: u32, data_out: &[u8], luns: &[Lun]) -> Outcome {
        match cmd {
            Command::TestUnitReady => Outcome::data(Vec::new(), 0),
            Command::RequestSense { alloc } => {
                let sense = self.last_sense.unwrap_or_else(Sense::none);
                Outcome::data(sense.to_fixed().to_vec(), alloc)
            }
            Command::Inquiry {
                evpd: false, alloc, ..
            } => Outcome::data(
                inquiry::standard(inquiry::PERIPHERAL_DISK, self.identity.product()),
                alloc,
            ),
            Command::Inquiry {
                evpd: true,
                page,
                alloc,
            } => Outcome::of(inquiry::vpd_page(page, &self.identity), alloc),
            Command::ModeSense {
                ten,
                dbd,
                llbaa,
                pc,
                page,
                subpage,
                alloc,
            } => {
                let req = ModeRequest {
                    ten,
                    dbd,
                    llbaa,
                    pc,
                    page,
                    subpage,
                };
                Outcome::of(mode::mode_sense(&req, &self.medium()), alloc)
            }
            Command::ReadCapacity10 => self.read_capacity_10(),
            Command::ReadCapacity16 { alloc } => self.read_capacity_16(alloc),
            Command::Read { lba, blocks } => self.read(lba, blocks, data_in_len),
            Command::Write { lba, blocks } => self.write(lba, blocks, data_out),
            Command::SynchronizeCache { lba, blocks } => {
                if let Err(sense) = self.in_range(lba, u64::from(blocks)) {
                    return Outcome::check(sense);
                }
                match self.image.sync() {
                    Ok(()) => Outcome::data(Vec::new(), 0),
                    Err(_) => Outcome::check(Sense::new(SenseKey::MediumError, Asc::WRITE_ERROR)),
                }
            }
            Command::ReportLuns { select, alloc } => Outcome::report_luns(select, alloc, luns),
        }
    }

    /// SBC-3, "READ CAPACITY (10) parameter data": RETURNED LOGICAL BLOCK ADDRESS (the
    /// last LBA, FFFFFFFFh when it does not fit: the initiator must use READ CAPACITY
    /// (16)) and LOGICAL BLOCK LENGTH IN BYTES.
    fn read_capacity_10(&self) -> Outcome {
        let last = self.image.blocks().saturating_sub(1);
        let mut d = Vec::with_capacity(READ_CAPACITY_10_LEN);
        d.extend_from_slice(&u32::try_from(last).unwrap_or(u32::MAX).to_be_bytes());
        d.extend_from_slice(&self.image.block_size().bytes().to_be_bytes());
        Outcome::data(d, READ_CAPACITY_10_LEN as u32)
    }

    /// SBC-3, "READ CAPACITY (16) parameter data": RETURNED LOGICAL BLOCK ADDRESS
    /// (bytes 0–7), LOGICAL BLOCK LENGTH IN BYTES (8–11), then zeros: no protection
    /// (P_TYPE, PROT_EN), one logical block per physical block, LOWEST ALIGNED LBA 0,
    /// no logical block provisioning.
    fn read_capacity_16(&self, alloc: u32) -> Outcome {
        let last = self.image.blocks().saturating_sub(1);
        let mut d = vec![0u8; READ_CAPACITY_16_LEN];
        d[..8].copy_from_slice(&last.to_be_bytes());
        d[8..12].copy_from_slice(&self.image.block_size().bytes().to_be_bytes());
        Outcome::data(d, alloc)
    }

    /// READ: the command's data-in length is the whole transfer, but only what the
    /// initiator can take (`data_in_len`, rounded up to whole blocks) is read.
    fn read(&mut self, lba: u64, blocks: u32, data_in_len: u32) -> Outcome {
        if let Err(sense) = self.in_range(lba, u64::from(blocks)) {
            return Outcome::check(sense);
        }
        let bs = u64::from(self.image.block_size().bytes());
        let total = u64::from(blocks) * bs;
        let wanted = total.min(u64::from(data_in_len));
        let read_len = wanted.div_ceil(bs) * bs;
        // At most `data_in_len` plus one block: fits unless usize is 32 bits wide.
        let Ok(read_len) = usize::try_from(read_len) else {
            return Outcome::check(Sense::new(
                SenseKey::MediumError,
                Asc::UNRECOVERED_READ_ERROR,
            ));
        };
        let mut buf = vec![0u8; read_len];
        match self.image.read(lba, &mut buf) {
            Ok(()) => {
                buf.truncate(wanted as usize);
                Outcome {
                    result: Ok(buf),
                    data_in_len: total,
                    data_out_len: 0,
                }
            }
            Err(_) => Outcome::check(Sense::new(
                SenseKey::MediumError,
                Asc::UNRECOVERED_READ_ERROR,
            )),
        }
    }

    /// WRITE: write protected → DATA PROTECT / WRITE PROTECTED; out of range → LBA OUT
    /// OF RANGE; data-out shorter than the transfer → INVALID FIELD IN COMMAND
    /// INFORMATION UNIT (nothing written, data-out overflow reported); an I/O failure →
    /// MEDIUM ERROR / WRITE ERROR. GOOD only once the data is on stable storage.
    fn write(&mut self, lba: u64, blocks: u32, data_out: &[u8]) -> Outcome {
        if self.image.access() == Access::ReadOnly {
            return Outcome::check(Sense::new(SenseKey::DataProtect, Asc::WRITE_PROTECTED));
        }
        if let Err(sense) = self.in_range(lba, u64::from(blocks)) {
            return Outcome::check(sense);
        }
        let needed = u64::from(blocks) * u64::from(self.image.block_size().bytes());
        let data = usize::try_from(needed).ok().and_then(|n| data_out.get(..n));
        let Some(data) = data else {
            return Outcome {
                result: Err(Sense::illegal(Asc::INVALID_FIELD_IN_COMMAND_IU)),
                data_in_len: 0,
                data_out_len: needed,
            };
        };
        match self.image.write(lba, data) {
            Ok(()) => Outcome {
                result: Ok(Vec::new()),
                data_in_len: 0,
                data_out_len: needed,
            },
            Err(DiskError::ReadOnly) => {
                Outcome::check(Sense::new(SenseKey::DataProtect, Asc::WRITE_PROTECTED))
            }
            Err(_) => Outcome::check(Sense::new(SenseKey::MediumError, Asc::WRITE_ERROR)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::cdb;
    use crate::target::disk::BlockSize;
    use std::path::PathBuf;

    struct Fixture {
        lu: LogicalUnit,
        path: PathBuf,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    fn fixture(tag: &str, bs: BlockSize, blocks: u64) -> Fixture {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "fabboot-lu-{tag}-{}-{}.img",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let image = Image::create(&path, bs, blocks).unwrap();
        Fixture {
            lu: LogicalUnit::new(image, LuIdentity::simulated(1)),
            path,
        }
    }

    fn run(lu: &mut LogicalUnit, cdb: &[u8], data_in_len: u32, out: &[u8]) -> Outcome {
        lu.execute(cdb::parse(cdb), data_in_len, out, &[])
    }

    #[test]
    fn read_capacity_10_and_16() {
        let mut f = fixture("cap", BlockSize::B4096, 100);
        let o = run(&mut f.lu, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8, &[]);
        assert_eq!(o.result.unwrap(), [0, 0, 0, 99, 0, 0, 0x10, 0]);
        let mut rc16 = [0u8; 16];
        rc16[0] = 0x9E;
        rc16[1] = 0x10;
        rc16[13] = 12;
        let o = run(&mut f.lu, &rc16, 32, &[]);
        assert_eq!(o.data_in_len, 12);
        assert_eq!(o.result.unwrap(), [0, 0, 0, 0, 0, 0, 0, 99, 0, 0, 0x10, 0]);
    }

    #[test]
    fn write_read_and_ranges() {
        let mut f = fixture("rw", BlockSize::B512, 16);
        let data: Vec<u8> = (0..1024u32).map(|i| (i % 251) as u8).collect();
        let w = [0x2A, 0, 0, 0, 0, 14, 0, 0, 2, 0];
        let o = run(&mut f.lu, &w, 0, &data);
        assert!(o.result.is_ok());
        assert_eq!(o.data_out_len, 1024);
        let r = [0x28, 0, 0, 0, 0, 14, 0, 0, 2, 0];
        let o = run(&mut f.lu, &r, 1024, &[]);
        assert_eq!(o.result.unwrap(), data);
        // Only what the initiator can take is read: 700 of 1024 bytes.
        let o = run(&mut f.lu, &r, 700, &[]);
        assert_eq!(o.data_in_len, 1024);
        assert_eq!(o.result.unwrap(), &data[..700]);
        // 15 + 2 > 16; 16 + 0 is past the last LBA; 15 + 1 and 0 blocks at 15 are fine.
        let bad = [0x28, 0, 0, 0, 0, 15, 0, 0, 2, 0];
        assert_eq!(
            run(&mut f.lu, &bad, 1024, &[]).result,
            Err(Sense::illegal(Asc::LBA_OUT_OF_RANGE))
        );
        let past = [0x2A, 0, 0, 0, 0, 16, 0, 0, 0, 0];
        assert!(run(&mut f.lu, &past, 0, &[]).result.is_err());
        let last = [0x28, 0, 0, 0, 0, 15, 0, 0, 1, 0];
        assert!(run(&mut f.lu, &last, 512, &[]).result.is_ok());
        let zero = [0x2A, 0, 0, 0, 0, 15, 0, 0, 0, 0];
        let o = run(&mut f.lu, &zero, 0, &[]);
        assert_eq!(o.result, Ok(Vec::new()));
        assert_eq!(o.data_out_len, 0);
    }

    #[test]
    fn short_data_out_is_refused_and_nothing_written() {
        let mut f = fixture("short", BlockSize::B512, 4);
        let w = [0x2A, 0, 0, 0, 0, 0, 0, 0, 2, 0];
        let o = run(&mut f.lu, &w, 0, &[0xEE; 600]);
        assert_eq!(
            o.result,
            Err(Sense::illegal(Asc::INVALID_FIELD_IN_COMMAND_IU))
        );
        assert_eq!(o.data_out_len, 1024);
        assert!(std::fs::read(&f.path).unwrap().iter().all(|&b| b == 0));
        assert_eq!(f.lu.image().syncs(), 0);
    }

    #[test]
    fn request_sense_returns_the_last_sense_once() {
        let mut f = fixture("rs", BlockSize::B512, 4);
        let rs = [0x03, 0, 0, 0, 252, 0];
        let o = run(&mut f.lu, &rs, 252, &[]);
        assert_eq!(o.result.unwrap(), Sense::none().to_fixed());
        let o = run(&mut f.lu, &[0xC1, 0, 0, 0, 0, 0], 0, &[]);
        assert!(o.result.is_err());
        assert_eq!(
            f.lu.pending_sense(),
            Some(Sense::illegal(Asc::INVALID_COMMAND_OPERATION_CODE))
        );
        let o = run(&mut f.lu, &rs, 252, &[]);
        let d = o.result.unwrap();
        assert_eq!((d[2], d[12], d[13]), (0x05, 0x20, 0x00));
        assert_eq!(f.lu.pending_sense(), None);
        let o = run(&mut f.lu, &rs, 252, &[]);
        assert_eq!(o.result.unwrap()[2], 0x00);
        // A GOOD command clears a pending sense too.
        run(&mut f.lu, &[0xC1, 0, 0, 0, 0, 0], 0, &[]);
        run(&mut f.lu, &[0, 0, 0, 0, 0, 0], 0, &[]);
        assert_eq!(f.lu.pending_sense(), None);
    }

    #[test]
    fn read_only_image_is_write_protected() {
        let f = fixture("ro", BlockSize::B512, 4);
        let image = Image::open(&f.path, BlockSize::B512, Access::ReadOnly).unwrap();
        let mut lu = LogicalUnit::new(image, LuIdentity::simulated(2));
        let o = run(&mut lu, &[0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0], 0, &[1; 512]);
        assert_eq!(
            o.result,
            Err(Sense::new(SenseKey::DataProtect, Asc::WRITE_PROTECTED))
        );
        let o = run(&mut lu, &[0x1A, 0x08, 0x3F, 0, 255, 0], 255, &[]);
        assert_eq!(o.result.unwrap()[2], 0x90);
    }

    #[test]
    fn synchronize_cache_flushes_and_checks_its_range() {
        let mut f = fixture("sync", BlockSize::B4096, 8);
        let o = run(&mut f.lu, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0, &[]);
        assert!(o.result.is_ok());
        assert_eq!(f.lu.image().syncs(), 1);
        let o = run(&mut f.lu, &[0x35, 0, 0, 0, 0, 7, 0, 0, 2, 0], 0, &[]);
        assert_eq!(o.result, Err(Sense::illegal(Asc::LBA_OUT_OF_RANGE)));
        assert_eq!(f.lu.image().syncs(), 1);
    }

    #[test]
    fn a_failing_image_reads_as_a_medium_error() {
        let mut f = fixture("eof", BlockSize::B512, 8);
        // Someone truncates the file behind the target's back.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&f.path)
            .unwrap()
            .set_len(1024)
            .unwrap();
        let o = run(&mut f.lu, &[0x28, 0, 0, 0, 0, 6, 0, 0, 1, 0], 512, &[]);
        assert_eq!(
            o.result,
            Err(Sense::new(
                SenseKey::MediumError,
                Asc::UNRECOVERED_READ_ERROR
            ))
        );
    }
}
