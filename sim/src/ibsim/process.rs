//! Starting and stopping `ibsim` and `opensm` (reference ibsim-opensm.md §3.2), and the
//! [`Fabric`] that owns them and the attached ports.
//!
//! Cleanup, in layers:
//! - every process is held by a guard that stops it, by its PID, in `Drop` — on success,
//!   on every `?` error path inside [`Fabric::start`] and while a panic unwinds;
//! - every process runs under `setpriv --pdeathsig KILL` (which then `exec`s it, so the PID is
//!   the process's own): if the thread that started the fabric dies without unwinding, the
//!   kernel kills the processes (checked here with `abort()`). Start and drop a fabric on the
//!   same thread;
//! - everything runs in a private temporary directory, removed after the processes are gone
//!   (only an abort leaves it behind).
//!
//! OpenSM is stopped with SIGKILL: its cache is in the private directory, and a wedged OpenSM
//! ignores SIGTERM anyway (§0.9, §3.2). ibsim gets `Quit` on its console first.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::client::{Client, LOCAL_TIMEOUT, PortIdentity};
use super::mad::{ATTR_NODE_INFO, ATTR_PORT_INFO, NodeInfo, PortInfo, PortState};
use super::netfile::{SM_NODE, SM_NODE_GUID, SM_SWITCH_PORT, Topology};
use super::{Error, MAX_CLIENTS};

/// Bound on ibsim parsing its netfile and opening its sockets (it takes milliseconds, §3.2).
pub const IBSIM_START_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on OpenSM reaching SUBNET UP and every port reaching Active (0.1 s measured, §3.2).
pub const OPENSM_SWEEP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long ibsim gets to honour `Quit` on its console before it is killed.
const QUIT_GRACE: Duration = Duration::from_secs(2);
/// Poll interval of the bounded waits.
const POLL: Duration = Duration::from_millis(20);
/// First client id; client k uses `CLIENT_ID_BASE + k`. Above any PID, which umad2sim uses as
/// OpenSM's id (§1.2), so the two never collide.
const CLIENT_ID_BASE: u32 = 0x4000_0000;
/// umad2sim, which OpenSM is run under; multiarch directory first (§3 "Installed paths").
const UMAD2SIM_DIRS: [&str; 3] = ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"];

/// How OpenSM is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenSmOptions {
    /// Seconds between its periodic (light) sweeps, `-s` (OpenSM's default 10; 5 here,
    /// as in reference ibsim-opensm.md §3.2; 1 bounds how long a port whose link came
    /// back waits when OpenSM ignores the trap, see [`crate::world::opensm`]).
    pub sweep_interval_s: u32,
}

impl Default for OpenSmOptions {
    fn default() -> Self {
        OpenSmOptions {
            sweep_interval_s: 5,
        }
    }
}

/// One port to attach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    /// Its node id in the netfile (1–31 of `[A-Za-z0-9._-]`).
    pub name: String,
    /// Attach as the node's `issm` client, so requests to QP0/QP1 (CM, DM, SA Reports) reach
    /// it (§0.4). Does not set IsSM in PortInfo.
    pub issm: bool,
    /// An extra QPN whose MADs this client also receives (§1.3 CONNECT `qp`); 0 for none.
    pub qp: u32,
}

impl PortSpec {
    /// A port that receives requests to its QP1 (`issm`), with no extra QP.
    pub fn new(name: &str) -> Self {
        PortSpec {
            name: name.to_string(),
            issm: true,
            qp: 0,
        }
    }
}

/// A running ibsim fabric, configured by a real OpenSM, with one attached [`Client`] per
/// requested port. Dropping it detaches the clients, stops OpenSM and ibsim and removes the
/// temporary directory.
#[derive(Debug)]
pub struct Fabric {
    // Field order is drop order: clients detach while ibsim still runs, then OpenSM stops,
    // then ibsim, then the directory goes.
    clients: Vec<Client>,
    opensm: Guarded,
    ibsim: Guarded,
    opensm_lid: u16,
    launch: OpenSmLaunch,
    /// OpenSM runs started, the first included.
    opensm_runs: u32,
    /// Heavy sweeps OpenSM has finished ("SUBNET UP" in its logs), as last counted.
    subnet_ups: u64,
    dir: TempDir,
}

/// What the link of a port does, by ibsim's console (reference ibsim-opensm.md §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkAction {
    /// `Unlink`: both ends go Down/Polling, the switch sends trap 128 to OpenSM, which
    /// sweeps and takes the port out of the SA. The port keeps its LID.
    Unlink,
    /// `ReLink`: the link saved by `Unlink` (or `Clear`) comes back; the port is in Init
    /// with the link up, trap 128 again, and OpenSM activates it.
    ReLink,
    /// `Clear`: unlink and reset the port (LID 0, SM LID 0), as a rebooting machine's HCA.
    Clear,
}

impl LinkAction {
    fn command(self) -> &'static str {
        match self {
            LinkAction::Unlink => "Unlink",
            LinkAction::ReLink => "ReLink",
            LinkAction::Clear => "Clear",
        }
    }
}

/// One line of OpenSM's `guid2lid` cache: a port GUID and its LID range (LMC 0: one
/// LID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guid2Lid {
    /// The port GUID.
    pub guid: u64,
    /// Its lowest LID.
    pub min_lid: u16,
    /// Its highest LID.
    pub max_lid: u16,
}

/// The programs OpenSM is started with, kept for restarts.
#[derive(Clone, Debug)]
struct OpenSmLaunch {
    options: OpenSmOptions,
    setpriv: PathBuf,
    env_bin: PathBuf,
    umad2sim: PathBuf,
    opensm_bin: PathBuf,
}

impl OpenSmLaunch {
    /// OpenSM on its own HCA (SIM_HOST), under umad2sim, with cache and temp files and
    /// umad2sim's fake sysfs (written to the CWD) all inside the directory (§3.2). Run `run`
    /// logs to `opensm.log` (the first) or `opensm-<run>.log`, so a restarted OpenSM's
    /// SUBNET UP is never read from its predecessor's log.
    fn spawn(&self, dir: &TempDir, run: u32) -> Result<Guarded, Error> {
        let osm_dir = dir.path.join("osm");
        let (log, out) = if run == 0 {
            ("opensm.log".to_string(), "opensm.out".to_string())
        } else {
            (format!("opensm-{run}.log"), format!("opensm-{run}.out"))
        };
        let osm_log = dir.path.join(log);
        let mut cmd = Command::new(&self.setpriv);
        cmd.args(["--pdeathsig", "KILL", "--"])
            .arg(&self.env_bin)
            .arg(format!("LD_PRELOAD={}", self.umad2sim.display()))
            .arg(&self.opensm_bin)
            .args(["-F", "/dev/null", "-f"])
            .arg(&osm_log)
            .args(["-e", "-d2", "-s"])
            .arg(self.options.sweep_interval_s.max(1).to_string())
            .env("IBSIM_SOCKNAME", &dir.socket_base)
            .env("SIM_HOST", SM_NODE)
            .env("OSM_CACHE_DIR", &osm_dir)
            .env("OSM_TMP_DIR", &osm_dir)
            .current_dir(&dir.path)
            .stdin(Stdio::null());
        Guarded::spawn("opensm", cmd, dir.path.join(out), osm_log)
    }
}

impl Fabric {
    /// Starts ibsim on a netfile with one switch, OpenSM's own HCA and one HCA per port;
    /// attaches every port; starts OpenSM under umad2sim on its HCA; waits (bounded) for SUBNET
    /// UP and for every port to be Active; finds OpenSM's LID by directed route.
    ///
    /// Refused up front: more than nine ports ([`Error::TooManyClients`]: ibsim takes ten
    /// clients and OpenSM needs one, §0.3), and names the netfile cannot carry or that are
    /// OpenSM's or the switch's ([`Error::Spec`]).
    pub fn start(ports: &[PortSpec]) -> Result<Self, Error> {
        Self::start_with(ports, OpenSmOptions::default())
    }

    /// [`Fabric::start`] with OpenSM run as `options` say.
    pub fn start_with(ports: &[PortSpec], options: OpenSmOptions) -> Result<Self, Error> {
        let requested = ports.len() + 1;
        if requested > MAX_CLIENTS {
            return Err(Error::TooManyClients {
                requested,
                max: MAX_CLIENTS,
            });
        }
        let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
        let topology = Topology::new(&names)?;
        let ibsim_bin = find_program("ibsim")?;
        let opensm_bin = find_program("opensm")?;
        let setpriv = find_program("setpriv")?;
        let env_bin = find_program("env")?;
        let umad2sim = find_umad2sim()?;

        let dir = TempDir::create()?;
        let netfile = dir.path.join("net");
        fs::write(&netfile, topology.netfile())
            .map_err(|e| Error::io("write netfile", netfile.display().to_string(), e))?;
        let base = dir.socket_base.clone();

        // ibsim: console on a pipe we keep open (EOF on its stdin makes it spin, §0.11).
        let ibsim_log = dir.path.join("ibsim.log");
        let mut cmd = Command::new(&setpriv);
        cmd.args(["--pdeathsig", "KILL", "--"])
            .arg(&ibsim_bin)
            .arg("-s")
            .arg(&netfile)
            .env("IBSIM_SOCKNAME", &base)
            .current_dir(&dir.path)
            .stdin(Stdio::piped());
        let mut ibsim = Guarded::spawn("ibsim", cmd, ibsim_log.clone(), ibsim_log)?;
        ibsim.wait_for_log("sim>", "wait for ibsim's console", IBSIM_START_TIMEOUT)?;

        // Our ports attach before OpenSM, so a refused slot fails before OpenSM runs.
        let mut clients = Vec::with_capacity(ports.len());
        for (k, p) in ports.iter().enumerate() {
            let id = CLIENT_ID_BASE + k as u32 + 1;
            match Client::attach(&base, &p.name, id, p.issm, p.qp) {
                Ok(c) => clients.push(c),
                // a dead ibsim is the better diagnosis
                Err(e) => return Err(ibsim.check_alive("attach ports").err().unwrap_or(e)),
            }
        }

        let osm_dir = dir.path.join("osm");
        fs::create_dir(&osm_dir)
            .map_err(|e| Error::io("create OpenSM cache dir", osm_dir.display().to_string(), e))?;
        let launch = OpenSmLaunch {
            options,
            setpriv,
            env_bin,
            umad2sim,
            opensm_bin,
        };
        let mut opensm = launch.spawn(&dir, 0)?;

        let deadline = Instant::now() + OPENSM_SWEEP_TIMEOUT;
        loop {
            ibsim.check_alive("wait for SUBNET UP")?;
            opensm.check_alive("wait for SUBNET UP")?;
            if opensm.log_contains("SUBNET UP") {
                break;
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    step: "wait for OpenSM's SUBNET UP",
                    context: format!("opensm; its output ends:\n{}", opensm.tail()),
                    waited: OPENSM_SWEEP_TIMEOUT,
                });
            }
            thread::sleep(POLL);
        }
        for c in &mut clients {
            loop {
                let s = c.lid_state()?;
                if PortState::from_u8(s.state) == PortState::Active && s.lid != 0 {
                    break;
                }
                opensm.check_alive("wait for ports Active")?;
                if Instant::now() >= deadline {
                    return Err(Error::Timeout {
                        step: "wait for port Active",
                        context: format!(
                            "port {:?} at LID {:#x} state {}; opensm output ends:\n{}",
                            c.name(),
                            s.lid,
                            s.state,
                            opensm.tail()
                        ),
                        waited: OPENSM_SWEEP_TIMEOUT,
                    });
                }
                thread::sleep(POLL);
            }
        }

        let (sm_node, sm_port) = query_opensm_port(&mut clients[0])?;
        if sm_node.node_guid != SM_NODE_GUID {
            return Err(Error::Malformed {
                what: "OpenSM's HCA",
                detail: format!(
                    "switch port {SM_SWITCH_PORT} leads to GUID {:#x}, netfile says {SM_NODE_GUID:#x}",
                    sm_node.node_guid
                ),
            });
        }
        for c in &mut clients {
            c.guard_opensm_lid(sm_port.lid);
        }
        Ok(Fabric {
            clients,
            opensm,
            ibsim,
            opensm_lid: sm_port.lid,
            launch,
            opensm_runs: 1,
            subnet_ups: 0,
            dir,
        })
    }

    /// Writes one command to ibsim's console (one command per write, never a batch: §3.2,
    /// §0.9). ibsim runs it in its select loop, within a millisecond.
    pub fn console(&mut self, command: &str) -> Result<(), Error> {
        if command.contains(['\n', '\r']) {
            return Err(Error::Spec {
                what: command.to_string(),
                reason: "one console command, on one line",
            });
        }
        self.ibsim.check_alive("write ibsim's console")?;
        let stdin = self.ibsim.stdin.as_mut().ok_or_else(|| {
            Error::io(
                "write ibsim's console",
                command,
                std::io::Error::from(std::io::ErrorKind::BrokenPipe),
            )
        })?;
        stdin
            .write_all(format!("{command}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| Error::io("write ibsim's console", command, e))
    }

    /// Unlinks, relinks or clears the link of port `name` (its port 1) through ibsim's
    /// console. `Unlink` and `Clear` return once ibsim shows the port Down (bounded by
    /// [`LOCAL_TIMEOUT`]), so that a `ReLink` right after is never mistaken for the state
    /// before; `ReLink` returns at once (OpenSM then activates the port: watch it with
    /// [`Client::lid_state`]).
    pub fn link(&mut self, name: &str, action: LinkAction) -> Result<(), Error> {
        if self.client(name).is_none() {
            return Err(Error::Spec {
                what: name.to_string(),
                reason: "no such port",
            });
        }
        self.console(&format!("{} \"{name}\"[1]", action.command()))?;
        if action == LinkAction::ReLink {
            return Ok(());
        }
        let deadline = Instant::now() + LOCAL_TIMEOUT;
        loop {
            let c = self.client(name).ok_or_else(|| Error::Spec {
                what: name.to_string(),
                reason: "no such port",
            })?;
            let s = c.lid_state()?;
            if PortState::from_u8(s.state) == PortState::Down {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    step: "wait for the unlinked port to go Down",
                    context: format!("port {name:?} in state {}", s.state),
                    waited: LOCAL_TIMEOUT,
                });
            }
            thread::sleep(Duration::from_micros(200));
        }
    }

    /// OpenSM's `guid2lid` cache as it is now (OpenSM rewrites it after each heavy sweep).
    pub fn guid2lid(&self) -> Result<Vec<Guid2Lid>, Error> {
        let path = self.dir.path.join("osm").join("guid2lid");
        let text = fs::read_to_string(&path)
            .map_err(|e| Error::io("read OpenSM's guid2lid", path.display().to_string(), e))?;
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|l| {
                parse_guid2lid(l).ok_or_else(|| Error::Malformed {
                    what: "guid2lid line",
                    detail: l.to_string(),
                })
            })
            .collect()
    }

    /// Restarts OpenSM with `lids` in its `guid2lid` cache (other ports keep theirs): the
    /// running OpenSM is killed, its ibsim slot freed (`X <slot>`: ibsim keeps a dead
    /// client's slot, and ten is all there is, §0.3), the cache rewritten, and OpenSM
    /// started again without `-r`. Its first sweep as master takes the cached LIDs over the
    /// ones the ports hold (a LID of the persistent cache wins over a discovered one) and
    /// sets them on the ports. Returns once the new OpenSM runs; its sweep takes some tens
    /// of milliseconds more (watch the ports with [`Client::lid_state`]).
    pub fn restart_opensm(&mut self, lids: &[Guid2Lid]) -> Result<(), Error> {
        let mut cache = self.guid2lid()?;
        for l in lids {
            match cache.iter_mut().find(|c| c.guid == l.guid) {
                Some(c) => *c = *l,
                None => cache.push(*l),
            }
        }
        self.opensm.stop();
        self.opensm_sweeps();
        let used: Vec<u32> = self.clients.iter().map(Client::index).collect();
        if let Some(slot) = (0..MAX_CLIENTS as u32).find(|i| !used.contains(i)) {
            self.console(&format!("X {slot}"))?;
        }
        // OpenSM's own layout: one entry per line, a blank line after each (an entry not
        // followed by one is not read back).
        let text: String = cache
            .iter()
            .map(|c| format!("{:#018x} {:#06x} {:#06x}\n\n", c.guid, c.min_lid, c.max_lid))
            .collect();
        let path = self.dir.path.join("osm").join("guid2lid");
        fs::write(&path, text)
            .map_err(|e| Error::io("write OpenSM's guid2lid", path.display().to_string(), e))?;
        let mut opensm = self.launch.spawn(&self.dir, self.opensm_runs)?;
        self.opensm_runs += 1;
        opensm.check_alive("restart OpenSM")?;
        self.opensm = opensm;
        Ok(())
    }

    /// [`Error::Exited`] if ibsim or OpenSM is gone.
    pub fn check_alive(&mut self, step: &'static str) -> Result<(), Error> {
        self.ibsim.check_alive(step)?;
        self.opensm.check_alive(step)
    }

    /// Times OpenSM has been started, the first included.
    pub fn opensm_runs(&self) -> u32 {
        self.opensm_runs
    }

    /// Heavy sweeps OpenSM has finished so far, all its runs together: the "SUBNET UP"
    /// lines of its logs (OpenSM writes one at the end of every heavy sweep, the first
    /// and those a trap or a light sweep's finding starts; `-d2` flushes each line).
    pub fn opensm_sweeps(&mut self) -> u64 {
        self.subnet_ups += self.opensm.count_new("SUBNET UP");
        self.subnet_ups
    }

    /// The client of the port named `name`.
    pub fn client(&mut self, name: &str) -> Option<&mut Client> {
        self.clients.iter_mut().find(|c| c.name() == name)
    }

    /// All clients, in the order of the specs.
    pub fn clients(&mut self) -> &mut [Client] {
        &mut self.clients
    }

    /// LID, SM LID, state and GID of port `name` as OpenSM configured them.
    pub fn identity(&mut self, name: &str) -> Result<PortIdentity, Error> {
        let c = self.client(name).ok_or_else(|| Error::Spec {
            what: name.to_string(),
            reason: "no such port",
        })?;
        c.identity()
    }

    /// OpenSM's LID, read at start by directed route to OpenSM's HCA.
    pub fn opensm_lid(&self) -> u16 {
        self.opensm_lid
    }

    /// NodeInfo and PortInfo of OpenSM's own port, read now by directed route (out of the first
    /// port, through the switch to port [`SM_SWITCH_PORT`]) from ibsim's SMA.
    pub fn opensm_port(&mut self) -> Result<(NodeInfo, PortInfo), Error> {
        query_opensm_port(&mut self.clients[0])
    }

    /// PIDs of the processes the fabric started: `("ibsim", pid)` and `("opensm", pid)`.
    pub fn process_ids(&self) -> [(&'static str, u32); 2] {
        [
            (self.ibsim.name, self.ibsim.child.id()),
            (self.opensm.name, self.opensm.child.id()),
        ]
    }

    /// The private directory: netfile, logs, OpenSM's cache. Removed on drop.
    pub fn dir(&self) -> &Path {
        &self.dir.path
    }

    /// The `IBSIM_SOCKNAME` this fabric's sockets are named under.
    pub fn socket_base(&self) -> &str {
        &self.dir.socket_base
    }
}

/// `0x<guid> 0x<min lid> 0x<max lid>`, as OpenSM writes its cache.
fn parse_guid2lid(line: &str) -> Option<Guid2Lid> {
    let mut f = line.split_whitespace();
    let hex = |s: &str| {
        s.strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .map(str::to_owned)
    };
    let guid = u64::from_str_radix(&hex(f.next()?)?, 16).ok()?;
    let min_lid = u16::from_str_radix(&hex(f.next()?)?, 16).ok()?;
    let max_lid = u16::from_str_radix(&hex(f.next()?)?, 16).ok()?;
    (f.next().is_none() && min_lid <= max_lid).then_some(Guid2Lid {
        guid,
        min_lid,
        max_lid,
    })
}

fn query_opensm_port(c: &mut Client) -> Result<(NodeInfo, PortInfo), Error> {
    let path = [1, SM_SWITCH_PORT];
    let node = NodeInfo::parse(&c.smp_get(&path, ATTR_NODE_INFO, 0)?);
    let port = PortInfo::parse(&c.smp_get(&path, ATTR_PORT_INFO, 0)?);
    Ok((node, port))
}

/// A child process that is stopped, by PID, when dropped.
#[derive(Debug)]
struct Guarded {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    /// Where its stdout and stderr go.
    out: PathBuf,
    /// The log that readiness is read from (`out`, or OpenSM's `-f` file).
    log: PathBuf,
    exited: bool,
    /// How far [`Guarded::count_new`] has read the log.
    log_read: u64,
}

impl Guarded {
    /// Spawns `cmd` with stdout and stderr to `out`; readiness is read from `log`.
    fn spawn(
        name: &'static str,
        mut cmd: Command,
        out: PathBuf,
        log: PathBuf,
    ) -> Result<Self, Error> {
        let stdout = File::create(&out)
            .map_err(|e| Error::io("create log", out.display().to_string(), e))?;
        let stderr = stdout
            .try_clone()
            .map_err(|e| Error::io("create log", out.display().to_string(), e))?;
        let mut child = cmd
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| Error::io("spawn", name, e))?;
        let stdin = child.stdin.take();
        Ok(Guarded {
            name,
            child,
            stdin,
            out,
            log,
            exited: false,
            log_read: 0,
        })
    }

    /// [`Error::Exited`] if the process is gone.
    fn check_alive(&mut self, step: &'static str) -> Result<(), Error> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                self.exited = true;
                Err(Error::Exited {
                    process: self.name,
                    step,
                    status,
                    log_tail: self.tail(),
                })
            }
            Err(e) => Err(Error::io(step, self.name, e)),
        }
    }

    /// The end of its output and, if separate, of its log (the directory is gone by the time
    /// an error is read, so errors carry the text).
    fn tail(&self) -> String {
        let mut t = log_tail(&self.out);
        if self.log != self.out {
            t = format!("{t}\n--- {}:\n{}", self.log.display(), log_tail(&self.log));
        }
        t
    }

    /// Lines of the log written since the last call (whole lines only) that contain
    /// `needle`.
    fn count_new(&mut self, needle: &str) -> u64 {
        let Ok(mut f) = File::open(&self.log) else {
            return 0;
        };
        if f.seek(SeekFrom::Start(self.log_read)).is_err() {
            return 0;
        }
        let mut b = Vec::new();
        if f.read_to_end(&mut b).is_err() {
            return 0;
        }
        let Some(end) = b.iter().rposition(|&c| c == b'\n') else {
            return 0;
        };
        self.log_read += end as u64 + 1;
        String::from_utf8_lossy(&b[..end])
            .lines()
            .filter(|l| l.contains(needle))
            .count() as u64
    }

    fn log_contains(&self, needle: &str) -> bool {
        fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).contains(needle))
            .unwrap_or(false)
    }

    fn wait_for_log(
        &mut self,
        needle: &str,
        step: &'static str,
        limit: Duration,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + limit;
        while !self.log_contains(needle) {
            self.check_alive(step)?;
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    step,
                    context: format!("{}; its output ends:\n{}", self.name, self.tail()),
                    waited: limit,
                });
            }
            thread::sleep(POLL);
        }
        Ok(())
    }

    /// ibsim: `Quit` on its console, a short grace, then SIGKILL; others: SIGKILL. Always
    /// reaped, so no zombie stays behind. The console pipe stays open until the process is
    /// gone (an EOF would make ibsim spin).
    fn stop(&mut self) {
        if self.exited {
            return;
        }
        if let Some(stdin) = self.stdin.as_mut()
            && stdin
                .write_all(b"Quit\n")
                .and_then(|()| stdin.flush())
                .is_ok()
        {
            let deadline = Instant::now() + QUIT_GRACE;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    break;
                }
                thread::sleep(POLL);
            }
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        self.stdin = None;
        self.exited = true;
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last 20 lines of a log, for error messages.
fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(4096)));
        let mut b = Vec::new();
        let _ = f.read_to_end(&mut b);
        text = String::from_utf8_lossy(&b).into_owned();
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A private directory, removed on drop; also names the fabric's sockets.
#[derive(Debug)]
struct TempDir {
    path: PathBuf,
    socket_base: String,
}

impl TempDir {
    fn create() -> Result<Self, Error> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!("fabboot-ibsim-{pid}-{seq}-{nanos}"));
        fs::create_dir(&path)
            .map_err(|e| Error::io("create private directory", path.display().to_string(), e))?;
        Ok(TempDir {
            path,
            socket_base: format!("fabboot{pid}.{seq}.{nanos}"),
        })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// `name` on `PATH`, or in the sbin directories a non-root `PATH` may lack (`opensm` is in
/// `/usr/sbin`).
fn find_program(name: &'static str) -> Result<PathBuf, Error> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::io(
                "find program",
                name,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })
}

fn find_umad2sim() -> Result<PathBuf, Error> {
    UMAD2SIM_DIRS
        .iter()
        .map(|d| Path::new(d).join("umad2sim/libumad2sim.so"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::io(
                "find libumad2sim.so",
                "package libumad2sim0",
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })
}
