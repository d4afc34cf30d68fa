//! The SRP target's DM agent ([`fabboot_sim::dm`]) on a real ibsim fabric configured by
//! a real OpenSM, found by srptools' unmodified `ibsrpdm` (Debian srptools; `ci/setup.sh`
//! installs it with ibsim-utils, opensm and libibverbs-dev).
//!
//! `ibsrpdm` is srp_daemon in one-shot mode (rdma-core `srp_daemon/srp_daemon.c`,
//! srp-cm-sa-dm.md §4.1). Under libumad2sim alone it cannot find a target, for four
//! reasons, each seen on this machine (ibsim 0.10, OpenSM 3.3.23, srptools 44.0):
//!
//! 1. It opens a verbs device and builds a UD QP even in one-shot mode
//!    (`alloc_res` → `ud_resources_create`), and reads P_Keys and the port LID through
//!    verbs. umad2sim emulates only umad and this kernel has no uverbs: it stops with
//!    "failed to get IB devices list", "Resource allocation failed". → An LD_PRELOAD
//!    stub (`SHIM_C` below) provides one inert verbs device: objects that are never used
//!    to send (one-shot mode posts no send), the port LID, and ibsim's default P_Key
//!    table (0xFFFF at index 0, ibsim `init_ports`).
//! 2. It reads `link_layer`, `sm_lid`, `lid` and `gids/0` from
//!    `$SYSFS_PATH/class/infiniband/<dev>/ports/<n>`; umad2sim's tree has no
//!    `link_layer` ("Couldn't read link layer"). → `SYSFS_PATH` points at a small tree
//!    written here from the port's PortInfo as OpenSM set it. Before printing a target it
//!    also lists the hard-coded `/sys/class/scsi_host/` and gives up when it cannot
//!    ("opendir - /sys/class/scsi_host/: No such file or directory" here); → the stub
//!    points that `opendir` at an empty directory (no SCSI host: nothing connected).
//! 3. It registers a umad agent for the SA class only and sends its DM Gets through it.
//!    The kernel routes responses by TID, but umad2sim routes received MADs by
//!    management class, finds no DM agent and dereferences a NULL queue in its receiver
//!    thread: `ibsrpdm` dies of SIGSEGV at the first DM GetResp. → The stub also
//!    registers a DM-class agent on the same port when the SA agent is registered, so DM
//!    responses reach the file the SA agent reads.
//! 4. It only asks ports whose PortInfo.CapabilityMask has IsDeviceManagementSupported
//!    (bit 19): by an SA GetTable(PortInfoRecord) in capability-mask-match mode (OpenSM's
//!    SA ClassPortInfo has capability bit 13), or, with an SM without that mode, by a
//!    NodeRecord walk that still skips ports without the bit (`handle_port`). ibsim fixes
//!    every HCA's CapabilityMask (0x0050C048) and a client cannot set bit 19
//!    (ibsim-opensm.md §2), so OpenSM's answer has no record. → `ibsrpdm`'s SM LID (in
//!    the `SYSFS_PATH` tree) is a relay port that forwards every SA MAD to OpenSM
//!    unchanged, except that PortInfoRecords of the target's LID carry bit 19 — what the
//!    target's port advertises on real hardware (ib_srpt sets it, §1.6) — and the
//!    capability query also gets the target's record, fetched from OpenSM. A first run
//!    with OpenSM itself as the SA shows the consequence: no DM MAD, no target.
//!
//! Every DM MAD is answered by [`DmAgent`]; `ibsrpdm` parses the answers itself and
//! prints the target. The test also walks the same DM sequence with its own client
//! through ibsim and checks the parsed attributes.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use fabboot_sim::dm::{
    self, DmAgent, DmHeader, EntryRange, IoUnitInfo, IocDescription, IocProfile, ServiceEntry,
    SlotState, attr, status,
};
use fabboot_sim::ibsim::mad::GSI_QKEY;
use fabboot_sim::ibsim::netfile::Topology;
use fabboot_sim::ibsim::{Client, Error, Fabric, MadAddress, PortIdentity, PortSpec, Received};

/// The binary under test (srptools). `ibsrpdm` is a link to srp_daemon, which switches
/// to one-shot mode by its argv[0].
const IBSRPDM: &str = "/usr/sbin/ibsrpdm";
/// A bound on one `ibsrpdm` run. Its MAD timeout is 5 s with 3 tries and cannot be
/// changed from `ibsrpdm`'s command line; a healthy run takes well under a second.
const IBSRPDM_TIMEOUT: Duration = Duration::from_secs(12);
/// A bound on one MAD round trip through ibsim (0.2 ms measured, ibsim-opensm.md §1.6).
const MAD_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the serving threads look at the stop flag.
const POLL: Duration = Duration::from_millis(20);

/// The names of the three ports. OpenSM gets its own HCA from the bridge (§0.8).
const INIT: &str = "init";
const TARGET: &str = "target";
const RELAY: &str = "sarelay";

// SA facts (srp-cm-sa-dm.md §1.5; IBTA vol. 1 §15.2.5).
const CLASS_SA: u8 = 0x03;
const METHOD_GET_TABLE: u8 = 0x12;
const ATTR_CLASS_PORT_INFO: u16 = 0x0001;
const ATTR_NODE_RECORD: u16 = 0x0011;
const ATTR_PORT_INFO_RECORD: u16 = 0x0012;
const ATTR_PATH_RECORD: u16 = 0x0035;
const SA_ATTR_OFFSET: usize = 44;
const SA_COMPONENT_MASK: usize = 48;
const SA_DATA: usize = 56;
/// RMPP PayloadLength, bytes 8..12 of the RMPP header at 24.
const SA_RMPP_PAYLOAD_LEN: usize = 32;
/// The SA header bytes an RMPP PayloadLength counts besides the records (IBTA §15.2.1.1:
/// SM_Key, AttributeOffset, reserved, ComponentMask).
const SA_HEADER_AFTER_RMPP: u32 = 20;
/// PortInfoRecord: EndportLID at 0, PortNum at 2, then the 64-byte PortInfo at 4, whose
/// CapabilityMask is at PortInfo byte 20.
const PIR_LID: usize = 0;
const PIR_CAPABILITY_MASK: usize = 4 + 20;
/// PortInfoRecord component-mask bits: EndportLID and CapabilityMask.
const PIR_COMP_LID: u64 = 1 << 0;
const PIR_COMP_CAPABILITY_MASK: u64 = 1 << 7;
/// Attribute modifier bit 31 on a PortInfoRecord query: match the CapabilityMask bits
/// given, not the whole mask (what srp_daemon sends when the SA's ClassPortInfo has
/// capability bit 13).
const PIR_MASK_MATCH: u32 = 1 << 31;
/// PortInfo.CapabilityMask IsDeviceManagementSupported (srp-cm-sa-dm.md §1.6).
const IS_DM: u32 = 1 << 19;
/// Bits 47..40 tag the relay's own TIDs (ibsim owns 63..48, ibsim-opensm.md §0.5).
const RELAY_TID_TAG: u64 = 0x5A << 40;

/// The LD_PRELOAD stub for `ibsrpdm` (points 1–3 of the module docs), compiled with the
/// system C compiler against the installed `<infiniband/verbs.h>`. It sends nothing and
/// answers nothing on the fabric: all MADs go through libibumad → umad2sim → ibsim.
const SHIM_C: &str = r#"
/* Inert verbs device, /sys/class/scsi_host redirection and DM agent registration
 * for running srptools' ibsrpdm under ibsim's libumad2sim (fabboot-sim test). */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <infiniband/verbs.h>
#undef ibv_get_device_list
#undef ibv_query_port
#undef ibv_reg_mr

static struct ibv_device fake_dev;
static struct ibv_device *fake_list[2];
static struct ibv_context fake_ctx;

static long env_num(const char *name)
{
	const char *v = getenv(name);
	return v ? strtol(v, NULL, 0) : 0;
}

static int op_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc)
{
	(void)cq; (void)n; (void)wc;
	return 0;
}

static int op_req_notify_cq(struct ibv_cq *cq, int solicited)
{
	(void)cq; (void)solicited;
	return 0;
}

static int op_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr,
			struct ibv_send_wr **bad)
{
	(void)qp;
	*bad = wr;
	return ENOSYS; /* one-shot ibsrpdm never sends on its UD QP */
}

static int op_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr,
			struct ibv_recv_wr **bad)
{
	(void)qp; (void)wr; (void)bad;
	return 0;
}

struct ibv_device **ibv_get_device_list(int *num)
{
	/* umad2sim's device name, which srp_daemon looks the verbs device up by */
	strncpy(fake_dev.name, "ibsim0", sizeof(fake_dev.name) - 1);
	strncpy(fake_dev.dev_name, "uverbs0", sizeof(fake_dev.dev_name) - 1);
	fake_dev.node_type = IBV_NODE_CA;
	fake_dev.transport_type = IBV_TRANSPORT_IB;
	fake_list[0] = &fake_dev;
	fake_list[1] = NULL;
	if (num)
		*num = 1;
	return fake_list;
}

void ibv_free_device_list(struct ibv_device **list) { (void)list; }

const char *ibv_get_device_name(struct ibv_device *dev) { return dev->name; }

struct ibv_context *ibv_open_device(struct ibv_device *dev)
{
	fake_ctx.device = dev;
	fake_ctx.ops.poll_cq = op_poll_cq;
	fake_ctx.ops.req_notify_cq = op_req_notify_cq;
	fake_ctx.ops.post_send = op_post_send;
	fake_ctx.ops.post_recv = op_post_recv;
	fake_ctx.cmd_fd = -1;
	fake_ctx.async_fd = -1;
	fake_ctx.num_comp_vectors = 1;
	fake_ctx.abi_compat = NULL; /* not extended: inline verbs use the symbols here */
	return &fake_ctx;
}

int ibv_close_device(struct ibv_context *ctx) { (void)ctx; return 0; }

struct ibv_comp_channel *ibv_create_comp_channel(struct ibv_context *ctx)
{
	struct ibv_comp_channel *ch = calloc(1, sizeof(*ch));
	if (ch) {
		ch->context = ctx;
		ch->fd = -1;
	}
	return ch;
}

int ibv_destroy_comp_channel(struct ibv_comp_channel *ch) { free(ch); return 0; }

struct ibv_pd *ibv_alloc_pd(struct ibv_context *ctx)
{
	struct ibv_pd *pd = calloc(1, sizeof(*pd));
	if (pd)
		pd->context = ctx;
	return pd;
}

int ibv_dealloc_pd(struct ibv_pd *pd) { free(pd); return 0; }

struct ibv_cq *ibv_create_cq(struct ibv_context *ctx, int cqe, void *cq_context,
			     struct ibv_comp_channel *channel, int comp_vector)
{
	struct ibv_cq *cq = calloc(1, sizeof(*cq));
	(void)comp_vector;
	if (cq) {
		cq->context = ctx;
		cq->channel = channel;
		cq->cq_context = cq_context;
		cq->cqe = cqe;
	}
	return cq;
}

int ibv_destroy_cq(struct ibv_cq *cq) { free(cq); return 0; }

struct ibv_mr *ibv_reg_mr(struct ibv_pd *pd, void *addr, size_t length, int access)
{
	struct ibv_mr *mr = calloc(1, sizeof(*mr));
	(void)access;
	if (mr) {
		mr->context = pd->context;
		mr->pd = pd;
		mr->addr = addr;
		mr->length = length;
	}
	return mr;
}

int ibv_dereg_mr(struct ibv_mr *mr) { free(mr); return 0; }

struct ibv_qp *ibv_create_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *attr)
{
	struct ibv_qp *qp = calloc(1, sizeof(*qp));
	if (qp) {
		qp->context = pd->context;
		qp->pd = pd;
		qp->send_cq = attr->send_cq;
		qp->recv_cq = attr->recv_cq;
		qp->qp_type = attr->qp_type;
		qp->state = IBV_QPS_RESET;
	}
	return qp;
}

int ibv_destroy_qp(struct ibv_qp *qp) { free(qp); return 0; }

int ibv_modify_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr, int mask)
{
	if (mask & IBV_QP_STATE)
		qp->state = attr->qp_state;
	return 0;
}

int ibv_query_port(struct ibv_context *ctx, uint8_t port,
		   struct _compat_ibv_port_attr *compat)
{
	struct ibv_port_attr *a = (struct ibv_port_attr *)compat;
	(void)ctx;
	if (port != 1)
		return EINVAL;
	memset(a, 0, sizeof(*a));
	a->state = IBV_PORT_ACTIVE;
	a->lid = (uint16_t)env_num("FABBOOT_VERBS_LID");
	a->sm_lid = (uint16_t)env_num("FABBOOT_VERBS_SM_LID");
	a->link_layer = IBV_LINK_LAYER_INFINIBAND;
	a->pkey_tbl_len = 32;
	a->gid_tbl_len = 1;
	a->max_mtu = IBV_MTU_2048;
	a->active_mtu = IBV_MTU_2048;
	return 0;
}

/* ibsim's P_Key table: 0xFFFF at index 0, then 31 empty entries. */
int ibv_query_pkey(struct ibv_context *ctx, uint8_t port, int index, __be16 *pkey)
{
	(void)ctx;
	if (port != 1 || index < 0 || index >= 32)
		return -1;
	*pkey = index == 0 ? htobe16(0xffff) : 0;
	return 0;
}

int ibv_get_pkey_index(struct ibv_context *ctx, uint8_t port, __be16 pkey)
{
	(void)ctx;
	return port == 1 && be16toh(pkey) == 0xffff ? 0 : -1;
}

struct ibv_ah *ibv_create_ah(struct ibv_pd *pd, struct ibv_ah_attr *attr)
{
	struct ibv_ah *ah = calloc(1, sizeof(*ah));
	(void)attr;
	if (ah) {
		ah->context = pd->context;
		ah->pd = pd;
	}
	return ah;
}

int ibv_destroy_ah(struct ibv_ah *ah) { free(ah); return 0; }

int ibv_get_cq_event(struct ibv_comp_channel *ch, struct ibv_cq **cq, void **cq_context)
{
	(void)ch; (void)cq; (void)cq_context;
	errno = EAGAIN;
	return -1;
}

void ibv_ack_cq_events(struct ibv_cq *cq, unsigned int n) { (void)cq; (void)n; }

int ibv_get_async_event(struct ibv_context *ctx, struct ibv_async_event *event)
{
	(void)ctx; (void)event;
	errno = EAGAIN;
	return -1;
}

void ibv_ack_async_event(struct ibv_async_event *event) { (void)event; }

DIR *opendir(const char *path)
{
	static DIR *(*next)(const char *);
	const char *empty = getenv("FABBOOT_SCSI_HOST_DIR");
	if (!next)
		next = (DIR *(*)(const char *))dlsym(RTLD_NEXT, "opendir");
	if (empty && strncmp(path, "/sys/class/scsi_host", 20) == 0)
		path = empty;
	return next(path);
}

int umad_register(int portid, int mgmt_class, int mgmt_version, uint8_t rmpp_version,
		  long method_mask[])
{
	static int (*next)(int, int, int, uint8_t, long *);
	int agent;
	if (!next)
		next = (int (*)(int, int, int, uint8_t, long *))dlsym(RTLD_NEXT, "umad_register");
	agent = next(portid, mgmt_class, mgmt_version, rmpp_version, method_mask);
	if (agent >= 0 && mgmt_class == 0x03)
		(void)next(portid, 0x06, 1, 0, NULL);
	return agent;
}
"#;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

/// Sets `stop` when dropped, so the serving threads end even if the test panics.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// One MAD a serving thread received: who got it and what it was.
#[derive(Clone, Debug)]
struct Seen {
    port: &'static str,
    class: u8,
    method: u8,
    attr_id: u16,
    attr_mod: u32,
    status: u16,
}

impl Seen {
    fn of(port: &'static str, mad: &[u8; 256]) -> Self {
        Seen {
            port,
            class: mad[1],
            method: mad[3],
            attr_id: be16(mad, 16),
            attr_mod: be32(mad, 20),
            status: be16(mad, 4),
        }
    }

    fn name(&self) -> String {
        let class = match self.class {
            CLASS_SA => "SA",
            dm::MGMT_CLASS => "DM",
            _ => "?",
        };
        let method = match self.method {
            0x01 => "Get",
            0x02 => "Set",
            METHOD_GET_TABLE => "GetTable",
            m => return format!("{class} method {m:#04x} attr {:#06x}", self.attr_id),
        };
        let attr = match (self.class, self.attr_id) {
            (_, ATTR_CLASS_PORT_INFO) => "ClassPortInfo",
            (CLASS_SA, ATTR_NODE_RECORD) => "NodeRecord",
            (CLASS_SA, ATTR_PORT_INFO_RECORD) => "PortInfoRecord",
            (CLASS_SA, ATTR_PATH_RECORD) => "PathRecord",
            (dm::MGMT_CLASS, attr::IO_UNIT_INFO) => "IOUnitInfo",
            (dm::MGMT_CLASS, attr::IOC_PROFILE) => "IOControllerProfile",
            (dm::MGMT_CLASS, attr::SERVICE_ENTRIES) => "ServiceEntries",
            _ => return format!("{class} {method} attr {:#06x}", self.attr_id),
        };
        format!("{class} {method}({attr})")
    }
}

type Log = Mutex<Vec<Seen>>;

fn log(log: &Log, seen: Seen) {
    log.lock().unwrap_or_else(|e| e.into_inner()).push(seen);
}

fn snapshot(log: &Log) -> Vec<Seen> {
    log.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The target port: answers every DM request with [`DmAgent`] until `stop`.
fn serve_dm(client: &mut Client, mut agent: DmAgent, stop: &AtomicBool, seen: &Log) {
    while !stop.load(Ordering::SeqCst) {
        let got = match client.recv(POLL) {
            Ok(Some(got)) => got,
            Ok(None) => continue,
            Err(e) => panic!("target port: receive: {e}"),
        };
        if got.bounced {
            panic!("target port: a response of ours bounced: {got:?}");
        }
        log(seen, Seen::of(TARGET, &got.mad));
        if let Some(answer) = agent.handle(&got.mad) {
            let to = MadAddress {
                dlid: got.slid,
                dqp: got.sqp,
                qkey: GSI_QKEY,
                sqp: 1,
            };
            if let Err(e) = client.send(&to, &answer) {
                panic!("target port: answer to LID {:#x}: {e}", got.slid);
            }
        }
    }
}

/// The relay port standing in for the SM's SA (module docs, point 4).
struct SaRelay<'a> {
    client: &'a mut Client,
    opensm_lid: u16,
    /// LIDs whose ports run a DM agent and would advertise IsDM on real hardware.
    dm_lids: Vec<u16>,
    next_tid: u64,
    /// PortInfoRecords given bit 19.
    patched: usize,
    /// Records OpenSM itself returned for each capability-mask-match query.
    opensm_matches: Vec<usize>,
}

impl SaRelay<'_> {
    fn serve(&mut self, stop: &AtomicBool, seen: &Log) {
        while !stop.load(Ordering::SeqCst) {
            let got = match self.client.recv(POLL) {
                Ok(Some(got)) => got,
                Ok(None) => continue,
                Err(e) => panic!("SA relay: receive: {e}"),
            };
            log(seen, Seen::of(RELAY, &got.mad));
            if got.bounced || got.mad[3] & 0x80 != 0 || got.mad[1] != CLASS_SA {
                continue; // only SA requests are relayed
            }
            if let Err(e) = self.relay(&got) {
                panic!(
                    "SA relay: {} from LID {:#x}: {e}",
                    Seen::of(RELAY, &got.mad).name(),
                    got.slid
                );
            }
        }
    }

    /// OpenSM's answer to `req`, with PortInfoRecords of DM ports carrying IsDM, sent back
    /// to the requester with its TID and OpenSM's MAD length. A capability-mask-match
    /// query also gets the DM ports' records (from OpenSM, IsDM added) that match.
    fn relay(&mut self, req: &Received) -> Result<(), Error> {
        let q = &req.mad;
        let answer = self.ask_opensm(q)?;
        let (mut out, mut length) = (answer.mad, answer.length);
        if be16(q, 16) == ATTR_PORT_INFO_RECORD && be16(&out, 4) == 0 {
            let mut size = usize::from(be16(&out, SA_ATTR_OFFSET)) * 8;
            let mut count = records(length, size);
            for i in 0..count {
                self.patch(&mut out[SA_DATA + i * size..SA_DATA + (i + 1) * size]);
            }
            if is_capability_match(q) {
                self.opensm_matches.push(count);
                let want = be32(q, SA_DATA + PIR_CAPABILITY_MASK);
                let before = count;
                for lid in self.dm_lids.clone() {
                    if (0..count).any(|i| be16(&out, SA_DATA + i * size + PIR_LID) == lid) {
                        continue;
                    }
                    let rec = self.port_info_record(lid)?;
                    if count > 0 && rec.len() != size {
                        return Err(Error::Malformed {
                            what: "PortInfoRecord answer",
                            detail: format!("{}-byte record in a table of {size}", rec.len()),
                        });
                    }
                    size = rec.len();
                    let at = SA_DATA + count * size;
                    if be32(&rec, PIR_CAPABILITY_MASK) & want == want && at + size <= out.len() {
                        out[at..at + size].copy_from_slice(&rec);
                        count += 1;
                    }
                }
                if count > before {
                    out[SA_ATTR_OFFSET..SA_ATTR_OFFSET + 2]
                        .copy_from_slice(&((size / 8) as u16).to_be_bytes());
                    let payload = SA_HEADER_AFTER_RMPP + (count * size) as u32;
                    out[SA_RMPP_PAYLOAD_LEN..SA_RMPP_PAYLOAD_LEN + 4]
                        .copy_from_slice(&payload.to_be_bytes());
                    length = (SA_DATA + count * size) as u64;
                }
            }
        }
        out[8..16].copy_from_slice(&q[8..16]); // the requester's TID, as ibsim set it
        let to = MadAddress {
            dlid: req.slid,
            dqp: req.sqp,
            qkey: GSI_QKEY,
            sqp: 1,
        };
        self.client.send_with_length(&to, &out, length)
    }

    /// Sends `q` to OpenSM's SA under a relay TID and returns its answer.
    fn ask_opensm(&mut self, q: &[u8; 256]) -> Result<Received, Error> {
        let mut fwd = *q;
        self.next_tid += 1;
        fwd[8..16].copy_from_slice(&(RELAY_TID_TAG | self.next_tid).to_be_bytes());
        self.client
            .request(&MadAddress::gsi(self.opensm_lid), &fwd, MAD_TIMEOUT)
    }

    /// OpenSM's PortInfoRecord of `lid` (SubnAdmGet by EndportLID), IsDM added.
    fn port_info_record(&mut self, lid: u16) -> Result<Vec<u8>, Error> {
        let mut q = [0u8; 256];
        q[0] = 1;
        q[1] = CLASS_SA;
        q[2] = 2;
        q[3] = 0x01; // Get
        q[16..18].copy_from_slice(&ATTR_PORT_INFO_RECORD.to_be_bytes());
        q[SA_COMPONENT_MASK..SA_COMPONENT_MASK + 8].copy_from_slice(&PIR_COMP_LID.to_be_bytes());
        q[SA_DATA + PIR_LID..SA_DATA + PIR_LID + 2].copy_from_slice(&lid.to_be_bytes());
        let a = self.ask_opensm(&q)?;
        let size = usize::from(be16(&a.mad, SA_ATTR_OFFSET)) * 8;
        if be16(&a.mad, 4) != 0 || size == 0 || SA_DATA + size > 256 {
            return Err(Error::Malformed {
                what: "PortInfoRecord answer",
                detail: format!(
                    "status {:#06x}, AttributeOffset {} for LID {lid:#x}",
                    be16(&a.mad, 4),
                    size / 8
                ),
            });
        }
        let mut rec = a.mad[SA_DATA..SA_DATA + size].to_vec();
        self.patch(&mut rec);
        Ok(rec)
    }

    /// Adds IsDM to a PortInfoRecord if its port runs a DM agent.
    fn patch(&mut self, rec: &mut [u8]) {
        if rec.len() >= PIR_CAPABILITY_MASK + 4 && self.dm_lids.contains(&be16(rec, PIR_LID)) {
            let cap = be32(rec, PIR_CAPABILITY_MASK) | IS_DM;
            rec[PIR_CAPABILITY_MASK..PIR_CAPABILITY_MASK + 4].copy_from_slice(&cap.to_be_bytes());
            self.patched += 1;
        }
    }
}

/// Whether `q` is srp_daemon's capability query: GetTable(PortInfoRecord) with the
/// CapabilityMask component in mask-match mode.
fn is_capability_match(q: &[u8; 256]) -> bool {
    q[3] == METHOD_GET_TABLE
        && be16(q, 16) == ATTR_PORT_INFO_RECORD
        && be64(q, SA_COMPONENT_MASK) & PIR_COMP_CAPABILITY_MASK != 0
        && be32(q, 20) & PIR_MASK_MATCH != 0
}

/// Records in an SA answer of `length` bytes with `size`-byte records.
fn records(length: u64, size: usize) -> usize {
    match (usize::try_from(length), size) {
        (_, 0) => 0,
        (Ok(len), _) => len.saturating_sub(SA_DATA).min(256 - SA_DATA) / size,
        (Err(_), _) => 0,
    }
}

/// `ibsrpdm`, stopped by its PID when dropped.
struct Ibsrpdm {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Ibsrpdm {
    /// Waits up to `timeout`; returns its exit status and output.
    fn finish(mut self, timeout: Duration) -> (Option<ExitStatus>, String, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
                _ => break None,
            }
        };
        let out = fs::read_to_string(&self.stdout).unwrap_or_default();
        let err = fs::read_to_string(&self.stderr).unwrap_or_default();
        (status, out, err)
    }
}

impl Drop for Ibsrpdm {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill(); // SIGKILL to its PID
        }
        let _ = self.child.wait();
    }
}

/// Everything an `ibsrpdm` run needs from the host.
struct Host {
    setpriv: PathBuf,
    env: PathBuf,
    umad2sim: PathBuf,
    shim: PathBuf,
    scsi_host: PathBuf,
    socket_base: String,
}

/// A program on `PATH` or in the sbin directories; the test fails, naming the Debian
/// package, when it is missing (CI installs them all, ci/setup.sh).
fn program(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found: install {package} (ci/setup.sh does)"))
}

/// Compiles [`SHIM_C`] into `dir`.
fn build_shim(dir: &Path) -> PathBuf {
    let cc = program("cc", "gcc");
    let src = dir.join("ibsrpdm-shim.c");
    let so = dir.join("ibsrpdm-shim.so");
    fs::write(&src, SHIM_C).expect("write shim source");
    let out = Command::new(cc)
        .args([
            "-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror", "-o",
        ])
        .arg(&so)
        .arg(&src)
        .arg("-ldl")
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "compiling the ibsrpdm verbs stub failed (needs libibverbs-dev, ci/setup.sh):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    so
}

/// The sysfs files srp_daemon reads itself (module docs, point 2), from the port's
/// PortInfo, with `sm_lid` as the SM's LID.
fn fake_sysfs(dir: &Path, port: &PortIdentity, sm_lid: u16) -> PathBuf {
    let root = dir.join(format!("sysfs-sm{sm_lid:x}"));
    let p = root.join("class/infiniband/ibsim0/ports/1");
    fs::create_dir_all(p.join("gids")).expect("sysfs dir");
    let gid = port.gid();
    let words: Vec<String> = gid
        .chunks(2)
        .map(|w| format!("{:02x}{:02x}", w[0], w[1]))
        .collect();
    for (file, text) in [
        ("link_layer", "InfiniBand\n".to_string()),
        ("sm_lid", format!("0x{sm_lid:x}\n")),
        ("lid", format!("0x{:x}\n", port.lid)),
        ("gids/0", format!("{}\n", words.join(":"))),
    ] {
        fs::write(p.join(file), text).expect("sysfs file");
    }
    root
}

/// Starts `ibsrpdm args` on the initiator's node, its SM LID being `sm_lid`.
fn start_ibsrpdm(
    host: &Host,
    dir: &Path,
    init: &PortIdentity,
    sm_lid: u16,
    args: &[&str],
    tag: &str,
) -> Ibsrpdm {
    let sysfs = fake_sysfs(dir, init, sm_lid);
    let cwd = dir.join(format!("ibsrpdm-{tag}"));
    fs::create_dir_all(&cwd).expect("ibsrpdm cwd");
    let stdout = cwd.join("stdout");
    let stderr = cwd.join("stderr");
    let preload = format!("{}:{}", host.shim.display(), host.umad2sim.display());
    let child = Command::new(&host.setpriv)
        .args(["--pdeathsig", "KILL", "--"])
        .arg(&host.env)
        .arg(format!("LD_PRELOAD={preload}"))
        .arg(IBSRPDM)
        .args(args)
        .current_dir(&cwd) // umad2sim writes its sysfs tree into the CWD
        .env("IBSIM_SOCKNAME", &host.socket_base)
        .env("SIM_HOST", INIT)
        .env("SYSFS_PATH", &sysfs)
        .env("FABBOOT_SCSI_HOST_DIR", &host.scsi_host)
        .env("FABBOOT_VERBS_LID", init.lid.to_string())
        .env("FABBOOT_VERBS_SM_LID", sm_lid.to_string())
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout).expect("stdout file"))
        .stderr(fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("spawn ibsrpdm");
    Ibsrpdm {
        child,
        stdout,
        stderr,
    }
}

fn comm(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Per-(port, MAD) counts, in order of first appearance.
fn counts(seen: &[Seen]) -> Vec<(String, usize)> {
    let mut order: Vec<String> = Vec::new();
    let mut n: BTreeMap<String, usize> = BTreeMap::new();
    for s in seen {
        let key = format!("{}: {}", s.port, s.name());
        if !n.contains_key(&key) {
            order.push(key.clone());
        }
        *n.entry(key).or_default() += 1;
    }
    order
        .into_iter()
        .map(|k| {
            let count = n[&k];
            (k, count)
        })
        .collect()
}

/// The DM walk with the test's own client: IOUnitInfo, IOControllerProfile of every
/// present slot, ServiceEntries, through ibsim to the target's LID.
fn walk_dm(client: &mut Client, target_lid: u16, want: &IocDescription) {
    let mut tid = 0x00D0_0000_0000u64;
    let mut get = |client: &mut Client, attr_id: u16, attr_mod: u32| {
        tid += 1;
        let answer = client
            .request(
                &MadAddress::gsi(target_lid),
                &dm::get_request(tid, attr_id, attr_mod),
                MAD_TIMEOUT,
            )
            .unwrap_or_else(|e| panic!("DM Get {attr_id:#06x}/{attr_mod:#x}: {e}"));
        let h = DmHeader::parse(&answer.mad).expect("a MAD header");
        assert_eq!(
            (h.mgmt_class, h.method, h.attr_id, h.attr_mod),
            (0x06, 0x81, attr_id, attr_mod)
        );
        assert_eq!(
            h.tid & ((1 << 48) - 1),
            tid,
            "TID echoed below ibsim's bits"
        );
        (h.status, answer.mad)
    };
    let (s, m) = get(client, attr::IO_UNIT_INFO, 0);
    assert_eq!(s, status::OK);
    let unit = IoUnitInfo::parse(dm::data(&m)).expect("IOUnitInfo");
    let present: Vec<u32> = (1..=u32::from(unit.max_controllers))
        .filter(|&k| unit.slot(k) == Some(SlotState::Present))
        .collect();
    assert_eq!(present, [dm::IOC_SLOT]);
    let (s, m) = get(client, attr::IOC_PROFILE, dm::IOC_SLOT);
    assert_eq!(s, status::OK);
    let p = IocProfile::parse(dm::data(&m)).expect("IOControllerProfile");
    assert_eq!(
        (p.guid, p.vendor_id, p.device_id),
        (want.ioc_guid, want.vendor_id, want.device_id)
    );
    assert_eq!(
        (p.io_class, p.io_subclass, p.protocol),
        (0x0100, 0x609E, 0x0108)
    );
    assert_eq!(
        (p.send_msg_size, p.service_entries),
        (want.send_msg_size, 1)
    );
    assert_eq!(p.id_str(), Some(want.id_string.as_str()));
    let range = EntryRange {
        slot: 1,
        first: 0,
        last: p.service_entries - 1,
    };
    let (s, m) = get(client, attr::SERVICE_ENTRIES, range.modifier());
    assert_eq!(s, status::OK);
    let e = ServiceEntry::parse(dm::data(&m)).expect("ServiceEntry");
    assert_eq!((e.srp_id_ext(), e.id), (Some(want.id_ext), want.service_id));
    // An empty slot, over the fabric too.
    let (s, _) = get(client, attr::IOC_PROFILE, 2);
    assert_eq!(s, status::NO_IOC);
}

#[test]
fn ibsrpdm_finds_the_target_through_its_dm_agent() {
    let started = Instant::now();
    assert!(
        Path::new(IBSRPDM).is_file(),
        "{IBSRPDM} not found: install srptools (ci/setup.sh does)"
    );
    let setpriv = program("setpriv", "util-linux");
    let env = program("env", "coreutils");
    let umad2sim = ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"]
        .iter()
        .map(|d| Path::new(d).join("umad2sim/libumad2sim.so"))
        .find(|p| p.is_file())
        .expect("libumad2sim.so not found: install libumad2sim0 (ibsim-utils, ci/setup.sh)");

    let mut fabric = Fabric::start(&[
        PortSpec {
            name: INIT.into(),
            issm: false,
            qp: 0,
        }, // ibsrpdm's node
        PortSpec::new(TARGET),
        PortSpec::new(RELAY),
    ])
    .unwrap_or_else(|e| panic!("fabric did not start: {e}"));
    let up = started.elapsed();
    let init = fabric.identity(INIT).expect("initiator port");
    let target = fabric.identity(TARGET).expect("target port");
    let relay_port = fabric.identity(RELAY).expect("relay port");
    let opensm_lid = fabric.opensm_lid();
    let dir = fabric.dir().to_path_buf();
    let scsi_host = dir.join("no-scsi-hosts");
    fs::create_dir(&scsi_host).expect("empty scsi_host dir");
    let host = Host {
        setpriv,
        env,
        umad2sim,
        shim: build_shim(&dir),
        scsi_host,
        socket_base: fabric.socket_base().to_string(),
    };

    // ib_srpt's identity: the node GUID as IOC GUID, id_ext and service ID (§3.1).
    let target_guid = Topology::node_guid(1);
    assert_eq!(target.port_guid, target_guid + 1, "the netfile's GUIDs");
    let ioc = IocDescription::srp_target(target_guid, 0x0002C9, 0x1017, 0x00A1);
    let agent = DmAgent::new(ioc.clone()).expect("valid description");

    let [init_client, target_client, relay_client] = fabric.clients() else {
        panic!("three ports were requested");
    };
    let stop = AtomicBool::new(false);
    let seen: Log = Mutex::new(Vec::new());
    let mut relay = SaRelay {
        client: relay_client,
        opensm_lid,
        dm_lids: vec![target.lid],
        next_tid: 0,
        patched: 0,
        opensm_matches: Vec::new(),
    };
    let mut ibsrpdm_pids = Vec::new();

    let (plain, patched, human, marks) = thread::scope(|s| {
        let _stop = StopOnDrop(&stop);
        s.spawn(|| serve_dm(target_client, agent, &stop, &seen));
        s.spawn(|| relay.serve(&stop, &seen));

        // 1. The DM walk with our own client.
        walk_dm(init_client, target.lid, &ioc);
        let own = snapshot(&seen).len();
        assert_eq!(own, 4, "the target saw our four DM Gets");

        // 2. ibsrpdm with OpenSM as its SA: no port advertises IsDM, so no DM MAD.
        let run = start_ibsrpdm(&host, &dir, &init, opensm_lid, &["-c", "-v"], "opensm");
        ibsrpdm_pids.push(run.child.id());
        let plain = run.finish(IBSRPDM_TIMEOUT);
        let after_plain = snapshot(&seen).len();

        // 3. ibsrpdm with the relay as its SA, once for the add_target line (-c), once
        //    for the human-readable dump.
        let run = start_ibsrpdm(&host, &dir, &init, relay_port.lid, &["-c", "-v"], "relay-c");
        ibsrpdm_pids.push(run.child.id());
        let patched = run.finish(IBSRPDM_TIMEOUT);
        let after_patched = snapshot(&seen).len();
        let run = start_ibsrpdm(&host, &dir, &init, relay_port.lid, &[], "relay-human");
        ibsrpdm_pids.push(run.child.id());
        let human = run.finish(IBSRPDM_TIMEOUT);
        (plain, patched, human, [own, after_plain, after_patched])
    });
    let (relay_patched, opensm_matches) = (relay.patched, relay.opensm_matches);
    let seen = seen.into_inner().unwrap_or_else(|e| e.into_inner());

    let show = |what: &str, (status, out, err): &(Option<ExitStatus>, String, String)| {
        eprintln!("--- ibsrpdm {what}: exit {status:?}\n--- stdout:\n{out}--- stderr:\n{err}");
    };
    show("with OpenSM as SA (-c -v)", &plain);
    show("with the relay as SA (-c -v)", &patched);
    show("with the relay as SA (human)", &human);
    let [own, after_plain, after_patched] = marks;
    let runs = [
        ("run 2 (OpenSM as SA)", &seen[own..after_plain]),
        ("run 3 (relay as SA, -c)", &seen[after_plain..after_patched]),
        ("run 4 (relay as SA, human)", &seen[after_patched..]),
    ];
    for (what, mads) in runs {
        eprintln!("--- MADs the target and the relay received in {what}:");
        for (k, n) in counts(mads) {
            eprintln!("{n:3} x {k}");
        }
    }

    // Run 2: OpenSM alone finds no DM port; ibsrpdm exits 0 having sent no DM MAD and
    // printed no target.
    assert!(
        plain.0.is_some_and(|s| s.success()),
        "plain run: {:?}",
        plain.0
    );
    assert!(
        plain
            .1
            .contains("Advanced SM, performing a capability query")
    );
    assert!(!plain.1.contains("id_ext="), "no target without IsDM");
    assert_eq!(after_plain, own, "nothing reached the target or the relay");

    // Run 3: the target, named exactly as ib_srp's add_target wants it.
    assert!(
        patched.0.is_some_and(|s| s.success()),
        "relay run: {:?}\n{}",
        patched.0,
        patched.2
    );
    let line = format!(
        "id_ext={:016X},ioc_guid={:016x},dgid={:016x}{:016x},pkey=ffff,service_id={:016x}",
        ioc.id_ext, ioc.ioc_guid, target.gid_prefix, target.port_guid, ioc.service_id
    );
    let lines: Vec<&str> = patched
        .1
        .lines()
        .filter(|l| l.starts_with("id_ext="))
        .collect();
    assert_eq!(lines, [line.as_str()], "exactly our target, once");
    assert_eq!(
        relay_patched, 2,
        "IsDM added to the target's PortInfoRecord, once a run"
    );
    assert_eq!(
        opensm_matches,
        [0, 0],
        "OpenSM itself knows no DM port (ibsim's fixed CapabilityMask)"
    );

    // The human-readable dump: srp_daemon's own parse of IOUnitInfo, the profile and
    // the service entry.
    assert!(
        human.0.is_some_and(|s| s.success()),
        "human run: {:?}",
        human.0
    );
    let h = &human.1;
    for want in [
        format!("port LID:        {:04x}", target.lid),
        format!(
            "port GID:        {:016x}{:016x}",
            target.gid_prefix, target.port_guid
        ),
        "change ID:       0001".to_string(),
        "max controllers: 0x10".to_string(),
        format!("GUID:      {target_guid:016x}"),
        "vendor ID: 0002c9".to_string(),
        "device ID: 001017".to_string(),
        "IO class : 0100".to_string(),
        "Maximum size of Send Messages in bytes: 8276".to_string(),
        "ID:        fabboot-sim SRP target".to_string(),
        "service entries: 1".to_string(),
        format!("service[  0]: {target_guid:016x} / SRP.T10:{target_guid:016X}"),
    ] {
        assert!(h.contains(&want), "human dump lacks {want:?}");
    }

    // What ibsrpdm sent in runs 3 and 4: its SA queries to the relay, then the DM walk
    // to the target.
    for (what, mads) in &runs[1..] {
        let sa: Vec<String> = mads
            .iter()
            .filter(|s| s.port == RELAY)
            .map(|s| s.name())
            .collect();
        assert_eq!(
            sa,
            [
                "SA Get(ClassPortInfo)",
                "SA GetTable(PortInfoRecord)",
                "SA Get(NodeRecord)",
                "SA Get(PathRecord)",
            ],
            "{what}: capability query, then NodeRecord and one PathRecord per P_Key"
        );
        let dm: Vec<&Seen> = mads.iter().filter(|s| s.port == TARGET).collect();
        let names: Vec<String> = dm.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "DM Get(IOUnitInfo)",
                "DM Get(IOControllerProfile)",
                "DM Get(ServiceEntries)"
            ],
            "{what}: IOUnitInfo, the profile of the present slot, its entries"
        );
        let mods: Vec<u32> = dm.iter().map(|s| s.attr_mod).collect();
        assert_eq!(mods, [0, 1, 1 << 16], "{what}: slot 1, entries 0..=0");
        assert!(
            dm.iter().all(|s| s.status == 0),
            "{what}: requests carry status 0"
        );
    }

    let pids = fabric.process_ids();
    drop(fabric);
    for (name, pid) in pids {
        assert_ne!(
            comm(pid).as_deref(),
            Some(name),
            "{name} (PID {pid}) survived"
        );
    }
    for pid in ibsrpdm_pids {
        assert_ne!(
            comm(pid).as_deref(),
            Some("ibsrpdm"),
            "ibsrpdm (PID {pid}) survived"
        );
    }
    eprintln!("fabric up in {up:?}; whole test {:?}", started.elapsed());
}
