//! The configuration of a failover lab node: one interface, one VRRPv3
//! group with a notify hook, an admin socket. `vipdrift lab` writes it for
//! its two nodes, and the end-to-end tests' lab (vipdrift-tests) includes
//! this same file for theirs, so what a person explores with `vipdrift lab
//! up` is what the tests fail over.

/// One node's facts; [`LabNode::config`] turns them into its configuration.
pub(crate) struct LabNode<'a> {
    /// The first line, a comment saying who wrote the file.
    pub(crate) header: &'a str,
    pub(crate) iface: &'a str,
    /// The node's IPv4 address, in a /24.
    pub(crate) address: &'a str,
    /// The node's link-local IPv6 address.
    pub(crate) address6: &'a str,
    pub(crate) vrid: u8,
    pub(crate) priority: u8,
    pub(crate) advert_interval_ms: u32,
    pub(crate) preempt: bool,
    /// "vmac" or "physical".
    pub(crate) mode: &'a str,
    /// "ADDRESS/PREFIX" each.
    pub(crate) vips: &'a [&'a str],
    pub(crate) hook: &'a str,
    pub(crate) socket: &'a str,
}

impl LabNode<'_> {
    pub(crate) fn config(&self) -> String {
        let vips: Vec<String> = self.vips.iter().map(|v| format!("\"{v}\"")).collect();
        format!(
            r#"# {header}
[[interface]]
name = "{iface}"
address = "{address}/24"
address6 = "{address6}"
bind = "copy"
idle = "sleep"
link_check_ms = 5

[[group]]
name = "web"
interface = "{iface}"
vrid = {vrid}
priority = {priority}
advert_interval_ms = {interval}
preempt = {preempt}
mode = "{mode}"
vips = [{vips}]
notify = "{hook}"

[admin]
socket = "{socket}"
"#,
            header = self.header,
            iface = self.iface,
            address = self.address,
            address6 = self.address6,
            vrid = self.vrid,
            priority = self.priority,
            interval = self.advert_interval_ms,
            preempt = self.preempt,
            mode = self.mode,
            vips = vips.join(", "),
            hook = self.hook,
            socket = self.socket,
        )
    }
}
