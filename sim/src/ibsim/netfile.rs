//! The ibsim netfile for a bridge topology: one switch, one HCA for OpenSM's own port, and one
//! single-port HCA per requested port, with pinned GUIDs (reference ibsim-opensm.md §3.1).
//!
//! Switch port 1 goes to OpenSM's HCA and port k+2 to the k-th requested port. GUIDs are fixed
//! by position, so a topology always gets the same ones: OpenSM's HCA is [`SM_NODE_GUID`], the
//! k-th port's HCA is `HCA_GUID_BASE + (k + 2) * HCA_GUID_STRIDE`, and a port GUID is its node
//! GUID + 1 (a CA uses node GUID, then node GUID + port number; §3.1 format notes).

use super::Error;
use super::protocol::NODE_ID_MAX;

/// The node id of OpenSM's HCA; `SIM_HOST` for OpenSM (§3.2). Reserved.
pub const SM_NODE: &str = "opensm";
/// The node id of the switch. Reserved.
pub const SWITCH_NODE: &str = "sw1";
/// The switch's GUID.
pub const SWITCH_GUID: u64 = 0x0002_c902_0000_0100;
/// Node GUIDs of HCAs are spaced this far apart.
pub const HCA_GUID_STRIDE: u64 = 0x1000;
/// Node GUID of HCA number 0; OpenSM's is number 1, the k-th requested port number k+2.
pub const HCA_GUID_BASE: u64 = 0x0002_c903_0000_0000;
/// Node GUID of OpenSM's HCA.
pub const SM_NODE_GUID: u64 = HCA_GUID_BASE + HCA_GUID_STRIDE;
/// The switch port OpenSM's HCA is cabled to.
pub const SM_SWITCH_PORT: u8 = 1;

/// The topology: the names of the requested ports, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    names: Vec<String>,
}

impl Topology {
    /// Checks the names: non-empty, unique, at most 31 bytes (§1.2), only `[A-Za-z0-9._-]` (so
    /// no quote, space or newline breaks the netfile, and no name can equal one of the
    /// descriptions, which contain spaces), and not a reserved id — OpenSM must have its own
    /// HCA, which no client may take (§0.8).
    pub fn new<S: AsRef<str>>(names: &[S]) -> Result<Self, Error> {
        if names.is_empty() {
            return Err(Error::Spec {
                what: String::new(),
                reason: "at least one port is needed",
            });
        }
        let mut out: Vec<String> = Vec::with_capacity(names.len());
        for name in names.iter().map(AsRef::as_ref) {
            let spec = |reason| Error::Spec {
                what: name.to_string(),
                reason,
            };
            if name.is_empty() || name.len() > NODE_ID_MAX {
                return Err(spec("a node id is 1 to 31 bytes"));
            }
            if !name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
            {
                return Err(spec("a node id uses only A-Z a-z 0-9 . _ -"));
            }
            if name == SM_NODE || name == SWITCH_NODE {
                return Err(spec("reserved: OpenSM's own HCA and the switch"));
            }
            if out.iter().any(|n| n == name) {
                return Err(spec("duplicate node id"));
            }
            out.push(name.to_string());
        }
        Ok(Topology { names: out })
    }

    /// The requested ports' names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Node GUID of the k-th requested port's HCA.
    pub fn node_guid(k: usize) -> u64 {
        HCA_GUID_BASE + (k as u64 + 2) * HCA_GUID_STRIDE
    }

    /// Port GUID of the k-th requested port (node GUID + port number 1).
    pub fn port_guid(k: usize) -> u64 {
        Self::node_guid(k) + 1
    }

    /// The switch port the k-th requested port is cabled to.
    pub fn switch_port(k: usize) -> u8 {
        (k + 2) as u8
    }

    /// The netfile text (§3.1 format: a header line per node, one `[local] "remote"[port]` line
    /// per cable, both ends listed, a blank line after each record, `switchguid=`/`caguid=`
    /// setting the next node's GUID).
    pub fn netfile(&self) -> String {
        let mut s = String::from("# fabboot-sim ibsim bridge topology\n");
        s += &format!("switchguid={SWITCH_GUID:#018x}\n");
        s += &format!(
            "Switch\t{} \"{SWITCH_NODE}\"\t# \"fabboot switch\"\n",
            self.names.len() + 1
        );
        s += &format!("[{SM_SWITCH_PORT}]\t\"{SM_NODE}\"[1]\n");
        for (k, name) in self.names.iter().enumerate() {
            s += &format!("[{}]\t\"{name}\"[1]\n", Self::switch_port(k));
        }
        s += "\n";
        s += &hca(SM_NODE, "opensm host", SM_NODE_GUID, SM_SWITCH_PORT);
        for (k, name) in self.names.iter().enumerate() {
            s += &hca(
                name,
                &format!("{name} host"),
                Self::node_guid(k),
                Self::switch_port(k),
            );
        }
        s
    }
}

fn hca(id: &str, description: &str, guid: u64, switch_port: u8) -> String {
    format!(
        "caguid={guid:#018x}\nHca\t1 \"{id}\"\t# \"{description}\"\n[1]\t\"{SWITCH_NODE}\"[{switch_port}]\n\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_port_netfile_text() {
        let t = Topology::new(&["initiator", "target"]).expect("valid names");
        let want = "\
# fabboot-sim ibsim bridge topology
switchguid=0x0002c90200000100
Switch\t3 \"sw1\"\t# \"fabboot switch\"
[1]\t\"opensm\"[1]
[2]\t\"initiator\"[1]
[3]\t\"target\"[1]

caguid=0x0002c90300001000
Hca\t1 \"opensm\"\t# \"opensm host\"
[1]\t\"sw1\"[1]

caguid=0x0002c90300002000
Hca\t1 \"initiator\"\t# \"initiator host\"
[1]\t\"sw1\"[2]

caguid=0x0002c90300003000
Hca\t1 \"target\"\t# \"target host\"
[1]\t\"sw1\"[3]

";
        assert_eq!(t.netfile(), want);
        assert_eq!(Topology::port_guid(1), 0x0002_c903_0000_3001);
    }

    #[test]
    fn names_are_checked() {
        for bad in ["", "opensm", "sw1", "has space", "quo\"te", &"x".repeat(32)] {
            assert!(
                matches!(Topology::new(&[bad]), Err(Error::Spec { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Topology::new(&["a", "a"]),
            Err(Error::Spec { .. })
        ));
        assert!(matches!(
            Topology::new::<&str>(&[]),
            Err(Error::Spec { .. })
        ));
        assert!(Topology::new(&["a.b_c-1", &"y".repeat(31)]).is_ok());
    }
}
