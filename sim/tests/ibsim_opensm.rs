//! The ibsim bridge against the real `ibsim` and an unmodified `opensm` (Debian packages
//! ibsim-utils and opensm; ci/setup.sh installs them). Reference: ibsim-opensm.md; the SA query
//! is built here from srp-cm-sa-dm.md §1.3 (MAD header) and §1.5 (SA MAD, PathRecord).

use std::fs;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fabboot_sim::ibsim::mad::{ATTR_PORT_INFO, PortInfo};
use fabboot_sim::ibsim::netfile::{SM_NODE_GUID, Topology};
use fabboot_sim::ibsim::{Error, Fabric, MAX_CLIENTS, MadAddress, PortSpec, PortState};

/// The tests look at this process's children in /proc, so they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const SA_TIMEOUT: Duration = Duration::from_secs(5);

// srp-cm-sa-dm.md §1.3 and §1.5
const CLASS_SA: u8 = 0x03;
const SA_CLASS_VERSION: u8 = 2;
const METHOD_GET_TABLE: u8 = 0x12;
const METHOD_GET_TABLE_RESP: u8 = 0x92;
const ATTR_NODE_RECORD: u16 = 0x0011;
const ATTR_PATH_RECORD: u16 = 0x0035;
const SA_DATA: usize = 56;
const PR_DGID: u64 = 1 << 2;
const PR_SGID: u64 = 1 << 3;
const PR_REVERSIBLE: u64 = 1 << 11;
const PR_NUMB_PATH: u64 = 1 << 12;

/// The 24-byte common MAD header (§1.3) of an SA request.
fn sa_header(method: u8, attr: u16, tid: u64) -> [u8; 256] {
    let mut m = [0u8; 256];
    m[0] = 1; // BaseVersion
    m[1] = CLASS_SA;
    m[2] = SA_CLASS_VERSION;
    m[3] = method;
    m[8..16].copy_from_slice(&tid.to_be_bytes());
    m[16..18].copy_from_slice(&attr.to_be_bytes());
    m
}

/// SubnAdmGetTable(PathRecord) for SGID → DGID, reversible, one path (§1.5).
fn path_record_query(tid: u64, sgid: [u8; 16], dgid: [u8; 16]) -> [u8; 256] {
    let mut m = sa_header(METHOD_GET_TABLE, ATTR_PATH_RECORD, tid);
    // RMPP header, SM_Key, AttributeOffset: zero in a request
    let mask = PR_DGID | PR_SGID | PR_REVERSIBLE | PR_NUMB_PATH;
    m[48..56].copy_from_slice(&mask.to_be_bytes());
    m[SA_DATA + 8..SA_DATA + 24].copy_from_slice(&dgid);
    m[SA_DATA + 24..SA_DATA + 40].copy_from_slice(&sgid);
    m[SA_DATA + 49] = 0x80 | 1; // Reversible, NumbPath 1
    m
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// `(pid, comm)` of this process's children whose name is ibsim or opensm.
fn our_fabric_children() -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ..."; comm may hold spaces, so split at the last ')'
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let ppid = stat[close + 1..].split_whitespace().nth(1);
        if ppid == Some(&me.to_string()) && (comm == "ibsim" || comm == "opensm") {
            out.push((pid, comm.to_string()));
        }
    }
    out
}

fn comm(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

#[test]
fn opensm_configures_ports_and_answers_path_records() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let mut fabric = match Fabric::start(&[PortSpec::new("initiator"), PortSpec::new("target")]) {
        Ok(f) => f,
        Err(e) => panic!("fabric did not start: {e}"),
    };
    eprintln!("fabric up in {:?}", started.elapsed());

    // The processes are ours, running, under their own names (setpriv exec'd them).
    let pids = fabric.process_ids();
    for (name, pid) in pids {
        assert_eq!(comm(pid).as_deref(), Some(name), "PID {pid}");
    }
    let dir = fabric.dir().to_path_buf();
    assert!(dir.join("net").is_file());

    // Both ports Active with distinct non-zero LIDs; SMP PortInfo agrees with GET_PORT; GUIDs
    // are the netfile's.
    let init = fabric.identity("initiator").expect("initiator PortInfo");
    let tgt = fabric.identity("target").expect("target PortInfo");
    for (k, (name, id)) in [("initiator", init), ("target", tgt)]
        .into_iter()
        .enumerate()
    {
        assert_eq!(id.state, PortState::Active, "{name}");
        assert_ne!(id.lid, 0, "{name}");
        assert_eq!(id.port_guid, Topology::port_guid(k), "{name}");
        let client = fabric.client(name).expect("attached");
        let ls = client.lid_state().expect("GET_PORT");
        assert_eq!(
            (ls.lid, ls.state),
            (id.lid, 4),
            "{name}: GET_PORT vs PortInfo"
        );
    }
    assert_ne!(init.lid, tgt.lid);

    // The SM LID both ports were given is the LID of OpenSM's own HCA, found by directed
    // route through the switch and recognised by its netfile GUID.
    let (sm_node, sm_port) = fabric.opensm_port().expect("OpenSM's port by DR");
    assert_eq!(sm_node.node_guid, SM_NODE_GUID);
    assert_eq!(sm_port.state, PortState::Active);
    assert_eq!(sm_port.lid, fabric.opensm_lid());
    assert_eq!(init.sm_lid, sm_port.lid);
    assert_eq!(tgt.sm_lid, sm_port.lid);
    assert!(sm_port.lid != init.lid && sm_port.lid != tgt.lid);
    let sm_lid = sm_port.lid;

    let client = fabric.client("initiator").expect("attached");

    // A CM-class MAD to OpenSM's node would crash it (reference §0.8): refused, not sent.
    let mut cm = sa_header(0x03, 0x0010, 0x77);
    cm[1] = 0x07; // CM
    match client.send(&MadAddress::gsi(sm_lid), &cm) {
        Err(Error::WouldCrashOpenSm { class: 0x07, dlid }) => assert_eq!(dlid, sm_lid),
        other => panic!("CM to OpenSM: {other:?}"),
    }

    // A DM Get to the switch, where no client takes it, comes back undelivered (§1.6).
    let switch = PortInfo::parse(&client.smp_get(&[1], ATTR_PORT_INFO, 0).expect("switch"));
    let mut dm = sa_header(0x01, 0x0010, 0x78);
    dm[1] = 0x06; // DevMgt
    dm[2] = 1;
    match client.request(&MadAddress::gsi(switch.lid), &dm, SA_TIMEOUT) {
        Err(Error::Bounced { dlid, dqp: 1, .. }) => assert_eq!(dlid, switch.lid),
        other => panic!("DM to the switch: {other:?}"),
    }

    // The PathRecord query, initiator → SA at the SM LID, QP1, timed.
    let query = path_record_query(0x0000_1234_5678_0001, init.gid(), tgt.gid());
    let t = Instant::now();
    let answer = client
        .request(&MadAddress::gsi(sm_lid), &query, SA_TIMEOUT)
        .expect("PathRecord answer");
    let first_rtt = t.elapsed();
    let m = &answer.mad;
    assert_eq!(answer.slid, sm_lid, "answered by OpenSM");
    assert_eq!((m[1], m[2], m[3]), (CLASS_SA, 2, METHOD_GET_TABLE_RESP));
    assert_eq!(be16(m, 4), 0, "MAD status");
    assert_eq!(
        u64::from_be_bytes(m[8..16].try_into().expect("8 bytes")) & ((1 << 48) - 1),
        0x1234_5678_0001
    );
    assert_eq!(be16(m, 16), ATTR_PATH_RECORD);
    assert_eq!(be16(m, 44), 8, "AttributeOffset: 64-byte records");
    assert_eq!(answer.length, (SA_DATA + 64) as u64, "exactly one record");
    let rec = &m[SA_DATA..SA_DATA + 64];
    assert_eq!(rec[8..24], tgt.gid(), "DGID");
    assert_eq!(rec[24..40], init.gid(), "SGID");
    assert_eq!(be16(rec, 40), tgt.lid, "DLID is the target's LID");
    assert_eq!(be16(rec, 42), init.lid, "SLID is the initiator's LID");
    assert_ne!(rec[49] & 0x80, 0, "reversible");

    let n = 50u32;
    let t = Instant::now();
    for i in 0..n {
        let q = path_record_query(0x0000_1234_5678_1000 + u64::from(i), init.gid(), tgt.gid());
        let a = client
            .request(&MadAddress::gsi(sm_lid), &q, SA_TIMEOUT)
            .expect("PathRecord answer");
        assert_eq!(be16(&a.mad, SA_DATA + 40), tgt.lid);
    }
    eprintln!(
        "SA PathRecord round trip: first {first_rtt:?}, mean of next {n}: {:?}",
        t.elapsed() / n
    );

    // All NodeRecords (four nodes, 112 bytes each) need more than one MAD: ibsim cuts the
    // answer, and the bridge says so (§0.7).
    let all_nodes = sa_header(METHOD_GET_TABLE, ATTR_NODE_RECORD, 0x0000_1234_5678_0002);
    match client.request(&MadAddress::gsi(sm_lid), &all_nodes, SA_TIMEOUT) {
        Err(Error::SaAnswerTooLarge {
            length,
            record_bytes,
        }) => assert!(
            length >= 256 && record_bytes == 112,
            "{length} {record_bytes}"
        ),
        other => panic!("all NodeRecords: {other:?}"),
    }

    // OpenSM survived all of it, and the target can query too.
    let target = fabric.client("target").expect("attached");
    let q = path_record_query(0x0000_1234_5678_0003, tgt.gid(), init.gid());
    let a = target
        .request(&MadAddress::gsi(sm_lid), &q, SA_TIMEOUT)
        .expect("reverse PathRecord");
    assert_eq!(be16(&a.mad, SA_DATA + 40), init.lid);

    drop(fabric);
    for (name, pid) in pids {
        // Reaped: the PID is gone (or, if reused in between, not an ibsim/opensm of ours).
        assert!(
            comm(pid).as_deref() != Some(name),
            "{name} (PID {pid}) survived the fabric"
        );
    }
    assert!(our_fabric_children().is_empty());
    assert!(!dir.exists(), "private directory removed");
    eprintln!("whole run {:?}", started.elapsed());
}

#[test]
fn client_limit_and_reserved_names_are_typed_errors() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    assert!(our_fabric_children().is_empty());

    // Ten ports + OpenSM = eleven clients: refused before anything starts.
    let ten: Vec<PortSpec> = (0..10).map(|i| PortSpec::new(&format!("h{i}"))).collect();
    match Fabric::start(&ten) {
        Err(Error::TooManyClients { requested, max }) => {
            assert_eq!((requested, max), (11, MAX_CLIENTS));
        }
        other => panic!("eleven clients: {other:?}"),
    }
    assert!(our_fabric_children().is_empty());

    // OpenSM's HCA is not for a port; names must be unique.
    for bad in [
        vec![PortSpec::new("opensm")],
        vec![PortSpec::new("a"), PortSpec::new("a")],
    ] {
        match Fabric::start(&bad) {
            Err(Error::Spec { .. }) => {}
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert!(our_fabric_children().is_empty());

    // A panic while a fabric is up: unwinding stops its processes.
    let panicked = std::thread::spawn(|| {
        let fabric = match Fabric::start(&[PortSpec::new("doomed")]) {
            Ok(f) => f,
            Err(e) => panic!("one port: {e}"),
        };
        std::panic::panic_any(fabric.process_ids());
    })
    .join();
    let payload = panicked.expect_err("the thread panicked");
    let Some(pids) = payload.downcast_ref::<[(&'static str, u32); 2]>() else {
        panic!("the fabric did not start in the panicking thread");
    };
    for (name, pid) in pids {
        assert!(
            comm(*pid).as_deref() != Some(*name),
            "{name} survived a panic"
        );
    }
    assert!(our_fabric_children().is_empty());

    // Nine ports + OpenSM = exactly ten: all of them come up.
    let nine = &ten[..9];
    let mut fabric = match Fabric::start(nine) {
        Ok(f) => f,
        Err(e) => panic!("nine ports: {e}"),
    };
    let pids = fabric.process_ids();
    let mut lids = Vec::new();
    for spec in nine {
        let id = fabric.identity(&spec.name).expect("PortInfo");
        assert_eq!(id.state, PortState::Active);
        assert_eq!(id.sm_lid, fabric.opensm_lid());
        lids.push(id.lid);
    }
    lids.sort_unstable();
    lids.dedup();
    assert_eq!(lids.len(), 9);
    assert_eq!(our_fabric_children().len(), 2);
    drop(fabric);
    for (name, pid) in pids {
        assert!(
            comm(pid).as_deref() != Some(name),
            "{name} (PID {pid}) survived"
        );
    }
    assert!(our_fabric_children().is_empty());
}
