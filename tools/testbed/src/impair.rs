//! Impairing a host's link: random loss with nftables, a rate limit with tc. (The kernel of the
//! build machines has no netem, so no delay or reordering: see `docs/TESTING.md`.)

use std::process::Command;

use crate::command::{self, IP, NFT, TC};
use crate::{Bed, BedError, SETUP_LIMIT};

impl Bed {
    /// Makes `host` drop `percent` % of the IP packets it sends on `eth0`, at random and
    /// silently, as a lossy link would; 0 removes the loss. Replaces any loss set before.
    ///
    /// An nftables table `netdev shoal_testbed` in the host's namespace, with a chain on `eth0`'s
    /// egress hook holding `meta protocol { ip, ip6 } numgen random mod 100 < P counter drop`
    /// (for 100 %, the same without `numgen`, since nft accepts no 100 there), replaced in one
    /// transaction. `nft list table netdev shoal_testbed` in the host shows the drop counter.
    ///
    /// Why not `oifname "eth0" ... drop` on the `inet` output hook, as a hand-written
    /// nftables rule would (`docs/TESTING.md`): a packet dropped there makes the sender's `sendto()` fail with EPERM
    /// (measured: 24 of 50 datagrams at 50 %), which no real lossy network does and which would
    /// test the program's error handling instead of its loss recovery. On the egress hook the
    /// packet has left the IP stack and the send succeeds. ARP and other non-IP frames pass, so
    /// loss never adds ARP-retry stalls. Only what `host` sends is dropped; to lose both ways,
    /// set it on both hosts.
    pub fn set_loss(&self, host: usize, percent: u32) -> Result<(), BedError> {
        let namespace = &self.host(host)?.namespace;
        self.refuse_on_loopback("set_loss")?;
        if percent > 100 {
            return Err(BedError::InvalidArgument(format!(
                "set_loss: {percent} % is not a percentage (0-100)"
            )));
        }
        let nft = command::find(NFT)?;
        // `add` then `delete` makes the delete succeed whether or not the table existed.
        let mut script = "add table netdev shoal_testbed ; delete table netdev shoal_testbed".to_owned();
        if percent > 0 {
            let chance =
                if percent == 100 { String::new() } else { format!("numgen random mod 100 < {percent} ") };
            script.push_str(&format!(
                " ; add table netdev shoal_testbed \
                 ; add chain netdev shoal_testbed loss \
                 {{ type filter hook egress device \"eth0\" priority 0 ; policy accept ; }} \
                 ; add rule netdev shoal_testbed loss meta protocol {{ ip, ip6 }} {chance}counter drop"
            ));
        }
        let mut command = Command::new(command::find(IP)?);
        command.args(["netns", "exec", namespace]).arg(nft).arg(script);
        command::run_ok(command, SETUP_LIMIT).map(drop)
    }

    /// Limits what `host` sends on `eth0` to `mbit` Mbit/s with a token bucket; 0 removes the
    /// limit. `tc qdisc replace dev eth0 root tbf rate <mbit>mbit burst 32kb latency 50ms`.
    ///
    /// Only the host's egress is shaped; to shape a link both ways, set it on both hosts.
    pub fn set_rate(&self, host: usize, mbit: u32) -> Result<(), BedError> {
        let namespace = &self.host(host)?.namespace;
        self.refuse_on_loopback("set_rate")?;
        let mut tc = Command::new(command::find(TC)?);
        tc.args(["-n", namespace, "qdisc"]);
        if mbit > 0 {
            let rate = format!("{mbit}mbit");
            tc.args(["replace", "dev", "eth0", "root", "tbf", "rate", &rate])
                .args(["burst", "32kb", "latency", "50ms"]);
            return command::run_ok(tc, SETUP_LIMIT).map(drop);
        }
        tc.args(["del", "dev", "eth0", "root"]);
        let line = command::describe(&tc);
        let output = command::run(tc, SETUP_LIMIT)?;
        // The kernel's answer when there is no root qdisc to delete: nothing to undo.
        let nothing_to_delete =
            String::from_utf8_lossy(&output.stderr).contains("Cannot delete qdisc with handle of zero");
        if nothing_to_delete {
            return Ok(());
        }
        command::check(line, output).map(drop)
    }

    /// Impairment acts on `eth0`, which a loopback bed does not have.
    fn refuse_on_loopback(&self, what: &str) -> Result<(), BedError> {
        if self.is_loopback() {
            return Err(BedError::InvalidArgument(format!("{what}: a loopback bed has no eth0 to impair")));
        }
        Ok(())
    }
}
