//! A writer of classic pcap files of InfiniBand packets, stamped with the simulator's
//! virtual time.
//!
//! The format (the "libpcap" file format): a 24-byte global header (magic number,
//! version 2.4, time zone offset 0, accuracy 0, snapshot length, link type), then per
//! packet a 16-byte record header (seconds, microseconds or nanoseconds, captured
//! length, original length) and the packet's bytes. Everything is written
//! little-endian; readers tell the byte order and the timestamp resolution from the
//! magic number. The link type is [`LINKTYPE_INFINIBAND`]: raw packets starting with
//! the LRH and ending with the VCRC (IBTA vol. 1 ch. 5), as [`IbPacket::encode`]
//! makes them.
//!
//! tshark 4.0 does not map link type 247 to its InfiniBand dissector ("network type
//! 247 unknown or unsupported"). It reads the same records written with a user link
//! type ([`LINKTYPE_USER0`], [`PcapWriter::with_link_type`]) and
//! `-o 'uat:user_dlts:"User 0 (DLT=147)","infiniband","0","","0",""'`.

use std::io::{self, Write};

use super::IbPacket;

/// LINKTYPE_INFINIBAND: raw InfiniBand packets, LRH first.
pub const LINKTYPE_INFINIBAND: u32 = 247;

/// LINKTYPE_USER0, the first of the link types reserved for private use; tshark can
/// be told which dissector reads it.
pub const LINKTYPE_USER0: u32 = 147;

/// Magic number of a file with microsecond timestamps.
const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// Magic number of a file with nanosecond timestamps.
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;

/// Length of the file header.
pub const FILE_HEADER_LEN: usize = 24;
/// Length of each record header.
pub const RECORD_HEADER_LEN: usize = 16;

/// The snapshot length written: larger than any InfiniBand packet (a 4096-byte MTU
/// packet with all headers is under 4.3 KiB), so no packet is cut.
pub const SNAPLEN: u32 = 65_535;

/// The resolution of the record timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeResolution {
    /// Microseconds (the original pcap magic number, which every reader knows).
    Microseconds,
    /// Nanoseconds (the fabric's own resolution).
    Nanoseconds,
}

/// Appends packets to a pcap file as they cross the fabric.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    sink: W,
    resolution: TimeResolution,
    records: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header for [`LINKTYPE_INFINIBAND`] to `sink`.
    pub fn new(sink: W, resolution: TimeResolution) -> io::Result<PcapWriter<W>> {
        PcapWriter::with_link_type(sink, resolution, LINKTYPE_INFINIBAND)
    }

    /// Writes the file header for `link_type` to `sink`.
    pub fn with_link_type(
        mut sink: W,
        resolution: TimeResolution,
        link_type: u32,
    ) -> io::Result<PcapWriter<W>> {
        let magic = match resolution {
            TimeResolution::Microseconds => MAGIC_MICROS,
            TimeResolution::Nanoseconds => MAGIC_NANOS,
        };
        let mut header = [0u8; FILE_HEADER_LEN];
        header[0..4].copy_from_slice(&magic.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes()); // version 2.4
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // 8..12 time zone offset and 12..16 timestamp accuracy: zero.
        header[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        header[20..24].copy_from_slice(&link_type.to_le_bytes());
        sink.write_all(&header)?;
        Ok(PcapWriter {
            sink,
            resolution,
            records: 0,
        })
    }

    /// Appends one record: `data` as seen at virtual time `time_ns` (nanoseconds
    /// since the simulation began, the epoch in the file). Bytes past [`SNAPLEN`]
    /// are not captured, though the record gives their original length.
    pub fn write_record(&mut self, time_ns: u64, data: &[u8]) -> io::Result<()> {
        let seconds = u32::try_from(time_ns / 1_000_000_000).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "virtual time beyond the 32-bit seconds of a pcap record",
            )
        })?;
        let below = time_ns % 1_000_000_000;
        let fraction = match self.resolution {
            TimeResolution::Microseconds => below / 1_000,
            TimeResolution::Nanoseconds => below,
        } as u32;
        let orig_len = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "record longer than 4 GiB"))?;
        let incl_len = orig_len.min(SNAPLEN);
        let mut header = [0u8; RECORD_HEADER_LEN];
        header[0..4].copy_from_slice(&seconds.to_le_bytes());
        header[4..8].copy_from_slice(&fraction.to_le_bytes());
        header[8..12].copy_from_slice(&incl_len.to_le_bytes());
        header[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.sink.write_all(&header)?;
        self.sink.write_all(&data[..incl_len as usize])?;
        self.records += 1;
        Ok(())
    }

    /// Encodes `packet` and appends it at virtual time `time_ns`; a packet that
    /// cannot be encoded is an [`io::ErrorKind::InvalidInput`] error carrying the
    /// [`super::WireError`].
    pub fn write_packet(&mut self, time_ns: u64, packet: &IbPacket) -> io::Result<()> {
        let bytes = packet
            .encode()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.write_record(time_ns, &bytes)
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Flushes the sink.
    pub fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()
    }

    /// The sink.
    pub fn get_ref(&self) -> &W {
        &self.sink
    }

    /// Gives the sink back.
    pub fn into_inner(self) -> W {
        self.sink
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_file_header() {
        let w = PcapWriter::new(Vec::new(), TimeResolution::Nanoseconds).unwrap();
        assert_eq!(
            w.get_ref().as_slice(),
            &[
                0x4d, 0x3c, 0xb2, 0xa1, // magic, nanoseconds
                0x02, 0x00, 0x04, 0x00, // version 2.4
                0x00, 0x00, 0x00, 0x00, // time zone
                0x00, 0x00, 0x00, 0x00, // accuracy
                0xff, 0xff, 0x00, 0x00, // snapshot length 65535
                0xf7, 0x00, 0x00, 0x00, // link type 247
            ]
        );
        let w = PcapWriter::with_link_type(Vec::new(), TimeResolution::Microseconds, 147).unwrap();
        assert_eq!(&w.get_ref()[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(&w.get_ref()[20..], &[0x93, 0, 0, 0]);
    }

    #[test]
    fn test_records() {
        let mut w = PcapWriter::new(Vec::new(), TimeResolution::Nanoseconds).unwrap();
        w.write_record(3_000_000_123, &[1, 2, 3]).unwrap();
        w.write_record(0, &[]).unwrap();
        assert_eq!(w.records(), 2);
        let file = w.into_inner();
        assert_eq!(
            &file[24..],
            &[
                0x03, 0x00, 0x00, 0x00, // 3 s
                0x7b, 0x00, 0x00, 0x00, // 123 ns
                0x03, 0x00, 0x00, 0x00, // captured
                0x03, 0x00, 0x00, 0x00, // original
                0x01, 0x02, 0x03, // data
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // empty record
            ]
        );
    }

    #[test]
    fn test_microsecond_timestamps_truncate() {
        let mut w = PcapWriter::new(Vec::new(), TimeResolution::Microseconds).unwrap();
        w.write_record(1_234_567_999, &[0xaa]).unwrap();
        let file = w.into_inner();
        assert_eq!(&file[24..32], &[1, 0, 0, 0, 0x47, 0x94, 0x03, 0x00]); // 1 s 234567 µs
    }

    #[test]
    fn test_time_beyond_32_bit_seconds_is_an_error() {
        let mut w = PcapWriter::new(Vec::new(), TimeResolution::Nanoseconds).unwrap();
        let err = w.write_record(u64::MAX, &[0]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(w.records(), 0);
        assert_eq!(w.get_ref().len(), FILE_HEADER_LEN, "nothing half-written");
    }

    #[test]
    fn test_oversized_record_is_cut_to_snaplen() {
        let mut w = PcapWriter::new(Vec::new(), TimeResolution::Nanoseconds).unwrap();
        w.write_record(0, &vec![7u8; 70_000]).unwrap();
        let file = w.into_inner();
        assert_eq!(&file[32..36], &65_535u32.to_le_bytes());
        assert_eq!(&file[36..40], &70_000u32.to_le_bytes());
        assert_eq!(file.len(), 24 + 16 + 65_535);
    }

    #[test]
    fn test_unencodable_packet_is_an_error() {
        use crate::wire::{BthRepr, ExtHeaders, Lnh, LrhRepr, Opcode};
        let packet = IbPacket {
            lrh: LrhRepr {
                vl: 0,
                lver: 0,
                sl: 0,
                lnh: Lnh::Local,
                dlid: 1,
                pkt_len: 0,
                slid: 2,
            },
            grh: None,
            bth: BthRepr {
                opcode: Opcode::UD_SEND_ONLY,
                se: false,
                mig_req: false,
                pad_cnt: 0,
                tver: 0,
                p_key: 0xffff,
                dest_qp: 1,
                ack_req: false,
                psn: 0,
            },
            ext: ExtHeaders::None, // UD SEND Only needs a DETH
            payload: vec![],
        };
        let mut w = PcapWriter::new(Vec::new(), TimeResolution::Nanoseconds).unwrap();
        let err = w.write_packet(5, &packet).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(w.records(), 0);
    }
}
