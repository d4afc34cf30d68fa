//! A driver image as the command sees it: the file's bytes, its PE facts ([`pe`]),
//! its flavour (told by the port driver it imports, README "What the images are")
//! and its one embedded configuration block (`fabboot::bootcfg::block`, found with
//! the driver crate's own [`block::locate`]).

use std::path::{Path, PathBuf};

use fabboot::bootcfg::block::{self, Block, BlockError};

use super::Failure;
use super::pe::{self, PeFacts};

/// The two kinds of image `cargo xtask build` makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// `fabboot.sys`, imports from storport.sys.
    Storport,
    /// `ntbootdd.sys`, imports from scsiport.sys.
    Scsiport,
}

impl Flavour {
    /// The port driver's name.
    pub fn port(self) -> &'static str {
        match self {
            Flavour::Storport => "storport",
            Flavour::Scsiport => "scsiport",
        }
    }

    /// The file name the image ships as.
    pub fn file(self) -> &'static str {
        match self {
            Flavour::Storport => "fabboot.sys",
            Flavour::Scsiport => "ntbootdd.sys",
        }
    }
}

/// A loaded image.
#[derive(Debug)]
pub struct Image {
    /// Where it was read from.
    pub path: PathBuf,
    /// The whole file.
    pub data: Vec<u8>,
    /// Its PE facts.
    pub pe: PeFacts,
    /// File offset of the configuration block.
    pub block_at: usize,
    /// The block's content.
    pub block: Block,
}

impl Image {
    /// The flavour, when exactly one port driver is imported.
    pub fn flavour(&self) -> Option<Flavour> {
        let imports = |name: &str| self.pe.imports.iter().any(|i| i.eq_ignore_ascii_case(name));
        match (imports("storport.sys"), imports("scsiport.sys")) {
            (true, false) => Some(Flavour::Storport),
            (false, true) => Some(Flavour::Scsiport),
            _ => None,
        }
    }
}

/// What is wrong with a block, in words.
pub fn describe(e: BlockError) -> String {
    match e {
        BlockError::Truncated => "it is cut short".into(),
        BlockError::Magic => "it does not start with FBCONFIG".into(),
        BlockError::Version(v) => format!("version {v}, this tool knows {}", block::VERSION),
        BlockError::Length(l) => format!("length {l}, expected {}", block::LEN),
        BlockError::Checksum => "its CRC-32 does not match".into(),
        BlockError::Field => "flag bits or reserved bytes that must be zero are not".into(),
        BlockError::Value(k) => format!("its {} is a value no target can have", k.name()),
        BlockError::NotFound => "no configuration block".into(),
        BlockError::Several => "more than one configuration block".into(),
    }
}

/// Reads and checks an image: a PE file holding exactly one valid block.
pub fn load(path: &Path) -> Result<Image, Failure> {
    let shown = path.display();
    let data = std::fs::read(path).map_err(|e| Failure::failed(format!("{shown}: {e}")))?;
    let facts = pe::parse(&data).map_err(|e| Failure::failed(format!("{shown}: {e}")))?;
    let block_at = block::locate(&data).map_err(|e| match e {
        BlockError::NotFound => match facts
            .section(".fbcfg")
            .and_then(|(at, len)| data.get(at..at.saturating_add(len)))
        {
            // The section is there but holds no valid block: say what is wrong with
            // the block it holds.
            Some(section) => match section
                .windows(block::MAGIC.len())
                .position(|w| w == block::MAGIC)
                .and_then(|at| section.get(at..))
                .map(Block::parse)
            {
                Some(Err(e)) => Failure::failed(format!(
                    "{shown}: the configuration block in .fbcfg is damaged: {}",
                    describe(e)
                )),
                _ => Failure::failed(format!(
                    "{shown}: no configuration block (.fbcfg holds none)"
                )),
            },
            None => Failure::failed(format!(
                "{shown}: no configuration block (not a fabboot driver image)"
            )),
        },
        e => Failure::failed(format!("{shown}: {}", describe(e))),
    })?;
    let block = Block::parse(data.get(block_at..).unwrap_or(&[]))
        .map_err(|e| Failure::failed(format!("{shown}: {}", describe(e))))?;
    Ok(Image {
        path: path.to_path_buf(),
        data,
        pe: facts,
        block_at,
        block,
    })
}
