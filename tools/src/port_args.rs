//! The AF_XDP options `gen` and `fwd` share, and the counters both report.

use clap::Args;
use serde_json::{json, Map, Value};
use vipdrift_control::NicLock;
use vipdrift_engine::{AfXdpConfig, AfXdpPort, BindMode, Counters, DropReason, XdpSocketStats};

/// How to open an AF_XDP port.
#[derive(Args, Debug, Clone)]
pub(crate) struct PortArgs {
    /// NIC queue.
    #[arg(long, default_value_t = 0)]
    pub(crate) queue: u32,
    /// AF_XDP bind mode: auto, zero-copy, copy, skb.
    #[arg(long, default_value = "auto")]
    pub(crate) bind: BindMode,
    /// Frames per burst.
    #[arg(long, default_value_t = 64)]
    pub(crate) burst: usize,
    /// AF_XDP ring size (fill, completion, rx and tx); the UMEM holds four times as many frames.
    #[arg(long, default_value_t = 2048)]
    pub(crate) ring_size: u32,
}

impl PortArgs {
    /// Opens `iface` with these options, after taking the NIC's lock (see
    /// [`NicLock`]): the port brings its own XDP program, which would
    /// replace a running daemon's.
    pub(crate) fn open(&self, iface: &str) -> Result<(AfXdpPort, NicLock), String> {
        let lock = NicLock::take(iface).map_err(|e| e.to_string())?;
        let mut config = AfXdpConfig::new(iface, self.queue);
        config.bind = self.bind;
        config.fill_ring = self.ring_size;
        config.comp_ring = self.ring_size;
        config.rx_ring = self.ring_size;
        config.tx_ring = self.ring_size;
        config.frame_count = self.ring_size.saturating_mul(4).max(4096);
        let port = AfXdpPort::open(&config).map_err(|e| e.to_string())?;
        Ok((port, lock))
    }
}

/// The counters every AF_XDP summary carries; wakeups are per `packets`.
pub(crate) fn counters_json(c: &Counters, packets: u64, frames_leaked: u32) -> Map<String, Value> {
    let mut drops = Map::new();
    for reason in DropReason::ALL {
        drops.insert(reason.name().to_owned(), json!(c.drops_for(reason)));
    }
    let wakeups = c.tx_wakeups + c.rx_wakeups;
    let per_packet = if packets > 0 { wakeups as f64 / packets as f64 } else { 0.0 };
    let fields = json!({
        "rx_packets": c.rx_packets,
        "rx_bytes": c.rx_bytes,
        "tx_packets": c.tx_packets,
        "tx_bytes": c.tx_bytes,
        "drops": drops,
        "tx_wakeups": c.tx_wakeups,
        "rx_wakeups": c.rx_wakeups,
        "wakeups_per_packet": per_packet,
        "fill_ring_empty": c.fill_ring_empty,
        "frames_leaked": frames_leaked,
        "tx_completed": c.tx_completed,
        "tx_kernel_dropped": c.tx_kernel_dropped,
        "kernel": kernel_json(&c.kernel),
    });
    match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The kernel's statistics of a socket (`XDP_STATISTICS`) as a JSON object.
pub(crate) fn kernel_json(k: &XdpSocketStats) -> Value {
    Value::Object(k.named().into_iter().map(|(name, n)| (name.to_owned(), json!(n))).collect())
}

/// One of an interface's counters in `/sys/class/net/IFACE/statistics/`
/// (`rx_dropped`, `tx_dropped`, ...), in this network namespace.
pub(crate) fn iface_stat(iface: &str, name: &str) -> Option<u64> {
    let path = format!("/sys/class/net/{iface}/statistics/{name}");
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
