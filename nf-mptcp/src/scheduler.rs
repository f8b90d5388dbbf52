//! Packet schedulers: which subflow carries the next data (DESIGN.md §1,
//! BBF TR-348 / 3GPP ATSSS steering modes). Pure decision logic over a
//! snapshot of the subflows, so every policy is unit-testable.

use nf_core::sim::Time;

/// The access a subflow runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathRole {
    Fixed,
    Cellular,
    Other,
}

/// What a scheduler sees of one subflow.
#[derive(Clone, Copy, Debug)]
pub struct PathView {
    pub id: usize,
    pub role: PathRole,
    pub srtt: Option<Time>,
    pub cwnd: usize,
    pub in_flight: usize,
    /// MP_PRIO / MP_JOIN backup bit.
    pub backup: bool,
    /// Established and not failed.
    pub usable: bool,
}

impl PathView {
    /// Room in the congestion window.
    pub fn room(&self) -> usize {
        self.cwnd.saturating_sub(self.in_flight)
    }
    /// Usable and with room in its window.
    pub fn ready(&self) -> bool {
        self.usable && self.room() > 0
    }
}

/// Where the next bytes go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Send on this subflow.
    One(usize),
    /// Send a copy on every ready path (redundant).
    AllReady,
    /// Nothing can send now.
    Wait,
}

/// A scheduling policy.
pub trait Scheduler: Send {
    fn pick(&mut self, paths: &[PathView], bytes: usize) -> Pick;
    fn name(&self) -> &'static str;
}

fn rtt(p: &PathView) -> Time {
    p.srtt.unwrap_or(Time::MAX / 2)
}

/// The ready path with the smallest RTT, preferring non-backup paths.
fn min_rtt_of<'a>(paths: impl Iterator<Item = &'a PathView> + Clone) -> Option<usize> {
    let primary = paths
        .clone()
        .filter(|p| p.ready() && !p.backup)
        .min_by_key(|p| rtt(p));
    let any = || paths.clone().filter(|p| p.ready()).min_by_key(|p| rtt(p));
    primary.or_else(any).map(|p| p.id)
}

/// `min-rtt` (ATSSS "smallest delay", the Linux default).
#[derive(Default)]
pub struct MinRtt;

impl Scheduler for MinRtt {
    fn pick(&mut self, paths: &[PathView], _bytes: usize) -> Pick {
        min_rtt_of(paths.iter()).map_or(Pick::Wait, Pick::One)
    }
    fn name(&self) -> &'static str {
        "min-rtt"
    }
}

/// `fixed-first` (TR-348 hybrid access): the fixed access until its
/// congestion window is full, overflow to the others.
#[derive(Default)]
pub struct FixedFirst;

impl Scheduler for FixedFirst {
    fn pick(&mut self, paths: &[PathView], _bytes: usize) -> Pick {
        if let Some(p) = paths
            .iter()
            .filter(|p| p.role == PathRole::Fixed && p.ready())
            .min_by_key(|p| rtt(p))
        {
            return Pick::One(p.id);
        }
        min_rtt_of(paths.iter().filter(|p| p.role != PathRole::Fixed)).map_or(Pick::Wait, Pick::One)
    }
    fn name(&self) -> &'static str {
        "fixed-first"
    }
}

/// `active-standby` (ATSSS): only the active path (fixed, else the first
/// non-backup) carries data; the standby takes over when it is unusable.
#[derive(Default)]
pub struct ActiveStandby;

impl Scheduler for ActiveStandby {
    fn pick(&mut self, paths: &[PathView], _bytes: usize) -> Pick {
        let active = paths
            .iter()
            .filter(|p| p.usable && !p.backup)
            .min_by_key(|p| (p.role != PathRole::Fixed, p.id))
            .or_else(|| paths.iter().filter(|p| p.usable).min_by_key(|p| p.id));
        match active {
            Some(p) if p.room() > 0 => Pick::One(p.id),
            _ => Pick::Wait,
        }
    }
    fn name(&self) -> &'static str {
        "active-standby"
    }
}

/// `weighted` (ATSSS load balancing): bytes split by per-role weights with
/// a deficit counter, among paths with room.
pub struct Weighted {
    pub fixed: u32,
    pub cellular: u32,
    pub other: u32,
    sent: [u64; 3],
}

impl Weighted {
    pub fn new(fixed: u32, cellular: u32, other: u32) -> Self {
        Weighted {
            fixed,
            cellular,
            other,
            sent: [0; 3],
        }
    }
    fn slot(r: PathRole) -> usize {
        match r {
            PathRole::Fixed => 0,
            PathRole::Cellular => 1,
            PathRole::Other => 2,
        }
    }
    fn weight(&self, r: PathRole) -> u32 {
        [self.fixed, self.cellular, self.other][Self::slot(r)]
    }
}

impl Scheduler for Weighted {
    fn pick(&mut self, paths: &[PathView], bytes: usize) -> Pick {
        // the role furthest behind its share (sent / weight smallest)
        let best = paths
            .iter()
            .filter(|p| p.ready() && self.weight(p.role) > 0)
            .min_by(|a, b| {
                let ka = self.sent[Self::slot(a.role)] as f64 / f64::from(self.weight(a.role));
                let kb = self.sent[Self::slot(b.role)] as f64 / f64::from(self.weight(b.role));
                ka.partial_cmp(&kb)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(rtt(a).cmp(&rtt(b)))
            });
        match best {
            Some(p) => {
                self.sent[Self::slot(p.role)] += bytes as u64;
                Pick::One(p.id)
            }
            None => Pick::Wait,
        }
    }
    fn name(&self) -> &'static str {
        "weighted"
    }
}

/// `redundant`: every usable path with room gets a copy.
#[derive(Default)]
pub struct Redundant;

impl Scheduler for Redundant {
    fn pick(&mut self, paths: &[PathView], _bytes: usize) -> Pick {
        if paths.iter().any(PathView::ready) {
            Pick::AllReady
        } else {
            Pick::Wait
        }
    }
    fn name(&self) -> &'static str {
        "redundant"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const MS: Time = 1_000_000;

    fn p(id: usize, role: PathRole, rtt_ms: u64, cwnd: usize, in_flight: usize) -> PathView {
        PathView {
            id,
            role,
            srtt: Some(rtt_ms * MS),
            cwnd,
            in_flight,
            backup: false,
            usable: true,
        }
    }

    #[test]
    fn min_rtt_prefers_the_fastest_path_with_room() {
        let paths = [
            p(0, PathRole::Fixed, 10, 10_000, 0),
            p(1, PathRole::Cellular, 40, 10_000, 0),
        ];
        assert_eq!(MinRtt.pick(&paths, 1000), Pick::One(0));
        let full = [
            p(0, PathRole::Fixed, 10, 10_000, 10_000),
            p(1, PathRole::Cellular, 40, 10_000, 0),
        ];
        assert_eq!(MinRtt.pick(&full, 1000), Pick::One(1));
        let mut backup = paths;
        backup[0].backup = true;
        assert_eq!(
            MinRtt.pick(&backup, 1000),
            Pick::One(1),
            "backup only when nothing else can send"
        );
    }

    #[test]
    fn fixed_first_overflows_only_when_fixed_is_full() {
        // cellular is faster, but fixed goes first while it has room
        let paths = [
            p(0, PathRole::Fixed, 40, 10_000, 5_000),
            p(1, PathRole::Cellular, 10, 10_000, 0),
        ];
        assert_eq!(FixedFirst.pick(&paths, 1000), Pick::One(0));
        let full = [
            p(0, PathRole::Fixed, 40, 10_000, 10_000),
            p(1, PathRole::Cellular, 10, 10_000, 0),
        ];
        assert_eq!(FixedFirst.pick(&full, 1000), Pick::One(1));
        let mut down = paths;
        down[0].usable = false;
        assert_eq!(FixedFirst.pick(&down, 1000), Pick::One(1));
    }

    #[test]
    fn active_standby_waits_for_the_active_path() {
        let paths = [
            p(0, PathRole::Cellular, 10, 10_000, 0),
            p(1, PathRole::Fixed, 40, 10_000, 10_000),
        ];
        assert_eq!(
            ActiveStandby.pick(&paths, 1000),
            Pick::Wait,
            "fixed is active and full: no overflow"
        );
        let mut failed = paths;
        failed[1].usable = false;
        assert_eq!(
            ActiveStandby.pick(&failed, 1000),
            Pick::One(0),
            "standby takes over"
        );
    }

    #[test]
    fn weighted_splits_by_weight() {
        let mut s = Weighted::new(3, 1, 0);
        let paths = [
            p(0, PathRole::Fixed, 10, 1 << 30, 0),
            p(1, PathRole::Cellular, 10, 1 << 30, 0),
        ];
        let mut n = [0u32; 2];
        for _ in 0..4000 {
            if let Pick::One(i) = s.pick(&paths, 1000) {
                n[i] += 1;
            }
        }
        assert_eq!(n, [3000, 1000]);
    }

    #[test]
    fn redundant_uses_every_path_with_room() {
        let paths = [
            p(0, PathRole::Fixed, 10, 10_000, 0),
            p(1, PathRole::Cellular, 40, 10_000, 10_000),
            p(2, PathRole::Other, 5, 100, 0),
        ];
        assert_eq!(Redundant.pick(&paths, 1000), Pick::AllReady);
        let ready: Vec<usize> = paths.iter().filter(|p| p.ready()).map(|p| p.id).collect();
        assert_eq!(ready, vec![0, 2]);
        assert_eq!(Redundant.pick(&paths[1..2], 1000), Pick::Wait);
    }
}
