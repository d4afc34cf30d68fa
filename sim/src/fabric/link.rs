//! A cable between a CA port and a switch port: its speed and width, state, loss and
//! delay, and when each direction is free again.

/// InfiniBand link speeds, with their data rate per lane after line coding (IBTA vol.
/// 2: SDR/DDR/QDR 8b/10b, FDR and later 64b/66b).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkSpeed {
    /// 2.5 Gb/s signalling, 2 Gb/s data per lane.
    Sdr,
    /// 5 Gb/s signalling, 4 Gb/s data.
    Ddr,
    /// 10 Gb/s signalling, 8 Gb/s data.
    Qdr,
    /// 14.0625 Gb/s signalling, 13.64 Gb/s data.
    Fdr,
    /// 25.78125 Gb/s signalling, 25 Gb/s data.
    Edr,
    /// 53.125 Gb/s signalling (PAM4), 50 Gb/s data.
    Hdr,
}

impl LinkSpeed {
    /// Data rate per lane in Mb/s.
    pub fn lane_mbps(self) -> u64 {
        match self {
            LinkSpeed::Sdr => 2_000,
            LinkSpeed::Ddr => 4_000,
            LinkSpeed::Qdr => 8_000,
            LinkSpeed::Fdr => 13_636,
            LinkSpeed::Edr => 25_000,
            LinkSpeed::Hdr => 50_000,
        }
    }
}

/// Loss injected on a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Nothing is lost.
    None,
    /// Every `n`-th frame is lost (`count` frames seen so far).
    EveryNth { n: u64, count: u64 },
    /// Each frame is lost with probability `per_million` / 1 000 000, from a seeded
    /// xorshift generator (deterministic runs).
    Random { per_million: u32, state: u64 },
}

impl Loss {
    /// Whether the next frame is lost.
    pub fn drops(&mut self) -> bool {
        match self {
            Loss::None => false,
            Loss::EveryNth { n, count } => {
                *count += 1;
                *n > 0 && *count % *n == 0
            }
            Loss::Random { per_million, state } => {
                *state ^= *state << 13;
                *state ^= *state >> 7;
                *state ^= *state << 17;
                (*state % 1_000_000) < u64::from(*per_million)
            }
        }
    }
}

/// One cable.
#[derive(Clone, Debug)]
pub struct Link {
    pub up: bool,
    pub loss: Loss,
    /// Delay added to every frame.
    pub extra_ns: u64,
    /// Data rate in Mb/s (lanes × per-lane rate).
    mbps: u64,
    cable_ns: u64,
    /// When each direction (0: to the switch, 1: to the CA) is free again.
    busy_until: [u64; 2],
}

impl Link {
    /// A link of `width` lanes at `speed`.
    pub fn new(speed: LinkSpeed, width: u8, cable_ns: u64) -> Link {
        Link {
            up: true,
            loss: Loss::None,
            extra_ns: 0,
            mbps: speed.lane_mbps() * u64::from(width.max(1)),
            cable_ns,
            busy_until: [0; 2],
        }
    }

    /// Time to serialise `bytes`.
    pub fn serialise_ns(&self, bytes: usize) -> u64 {
        (bytes as u64 * 8 * 1000).div_ceil(self.mbps)
    }

    /// Sends `bytes` in one direction starting no earlier than `at`; returns when the
    /// last bit arrives at the far end.
    pub fn transmit(&mut self, to_switch: bool, at: u64, bytes: usize) -> u64 {
        let dir = usize::from(!to_switch);
        let start = at.max(self.busy_until[dir]);
        let done = start + self.serialise_ns(bytes);
        self.busy_until[dir] = done;
        done + self.cable_ns + self.extra_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialisation_follows_width_and_speed() {
        assert_eq!(Link::new(LinkSpeed::Edr, 4, 0).serialise_ns(1000), 80);
        assert_eq!(Link::new(LinkSpeed::Sdr, 4, 0).serialise_ns(1000), 1000);
        assert_eq!(Link::new(LinkSpeed::Qdr, 1, 0).serialise_ns(1000), 1000);
        assert_eq!(Link::new(LinkSpeed::Hdr, 4, 0).serialise_ns(1000), 40);
    }

    #[test]
    fn seeded_loss_is_repeatable_and_near_its_rate() {
        let count = |seed| {
            let mut l = Loss::Random {
                per_million: 100_000,
                state: seed,
            };
            (0..10_000).filter(|_| l.drops()).count()
        };
        assert_eq!(count(42), count(42));
        let n = count(42);
        assert!((800..1200).contains(&n), "{n} of 10000 at 10%");
        let mut every = Loss::EveryNth { n: 3, count: 0 };
        let pattern: Vec<bool> = (0..6).map(|_| every.drops()).collect();
        assert_eq!(pattern, [false, false, true, false, false, true]);
    }
}
