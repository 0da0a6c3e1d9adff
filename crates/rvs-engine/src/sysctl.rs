//! The IPVS sysctls (`/proc/sys/net/ipv4/vs/*`) the engine implements, by their kernel names.

/// Engine tunables with the kernel's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctls {
    /// Expire connections whose real server was deleted instead of dropping their packets.
    pub expire_nodest_conn: bool,
    /// Invalidate persistence templates of weight-0 real servers.
    pub expire_quiescent_template: bool,
    /// Reschedule a new SYN that hits a closing connection (bit 0; bit 1 also FIN_WAIT on DR).
    pub conn_reuse_mode: u8,
    /// Create TCP connections on any non-RST segment, not only SYN.
    pub sloppy_tcp: bool,
    /// Create SCTP connections on any chunk, not only INIT.
    pub sloppy_sctp: bool,
    /// Answer NAT replies without a connection with ICMP port unreachable.
    pub nat_icmp_send: bool,
    /// Reject oversized DF packets with ICMP (1) or let tunnels fragment (0).
    pub pmtu_disc: bool,
    /// Schedule new connections from ICMP errors that match none.
    pub schedule_icmp: bool,
    /// Secure TCP state table mode (0..3; ≥ 2 uses the secure table, 3 = always).
    pub secure_tcp: u8,
    /// lblc entry expiry in seconds.
    pub lblc_expiration: u32,
    /// lblcr entry expiry in seconds.
    pub lblcr_expiration: u32,
}

impl Default for Sysctls {
    fn default() -> Self {
        Self {
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            conn_reuse_mode: 1,
            sloppy_tcp: false,
            sloppy_sctp: false,
            nat_icmp_send: false,
            pmtu_disc: true,
            schedule_icmp: false,
            secure_tcp: 0,
            lblc_expiration: 86_400,
            lblcr_expiration: 86_400,
        }
    }
}

/// Why a sysctl write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SysctlError {
    /// The name is not an IPVS sysctl rvs implements.
    #[error("unknown sysctl `{0}`")]
    Unknown(String),
    /// The value is outside the sysctl's range.
    #[error("invalid value {value} for `{name}`")]
    Range {
        /// Sysctl name.
        name: String,
        /// Rejected value.
        value: i64,
    },
}

const NAMES: [&str; 11] = [
    "conn_reuse_mode",
    "expire_nodest_conn",
    "expire_quiescent_template",
    "lblc_expiration",
    "lblcr_expiration",
    "nat_icmp_send",
    "pmtu_disc",
    "schedule_icmp",
    "secure_tcp",
    "sloppy_sctp",
    "sloppy_tcp",
];

impl Sysctls {
    /// Every implemented sysctl with its value, in name order.
    pub fn list(&self) -> Vec<(String, i64)> {
        NAMES
            .iter()
            .filter_map(|n| self.get(n).map(|v| ((*n).to_owned(), v)))
            .collect()
    }

    /// One value by kernel name.
    pub fn get(&self, name: &str) -> Option<i64> {
        Some(match name {
            "conn_reuse_mode" => self.conn_reuse_mode.into(),
            "expire_nodest_conn" => self.expire_nodest_conn.into(),
            "expire_quiescent_template" => self.expire_quiescent_template.into(),
            "lblc_expiration" => self.lblc_expiration.into(),
            "lblcr_expiration" => self.lblcr_expiration.into(),
            "nat_icmp_send" => self.nat_icmp_send.into(),
            "pmtu_disc" => self.pmtu_disc.into(),
            "schedule_icmp" => self.schedule_icmp.into(),
            "secure_tcp" => self.secure_tcp.into(),
            "sloppy_sctp" => self.sloppy_sctp.into(),
            "sloppy_tcp" => self.sloppy_tcp.into(),
            _ => return None,
        })
    }

    /// Sets one value by kernel name, validating it as the kernel does.
    pub fn set(&mut self, name: &str, value: i64) -> Result<(), SysctlError> {
        let range = |lo: i64, hi: i64| {
            if (lo..=hi).contains(&value) {
                Ok(value)
            } else {
                Err(SysctlError::Range {
                    name: name.to_owned(),
                    value,
                })
            }
        };
        match name {
            "conn_reuse_mode" => self.conn_reuse_mode = range(0, 3)? as u8,
            "expire_nodest_conn" => self.expire_nodest_conn = range(0, 1)? != 0,
            "expire_quiescent_template" => self.expire_quiescent_template = range(0, 1)? != 0,
            "lblc_expiration" => self.lblc_expiration = range(1, i64::from(i32::MAX))? as u32,
            "lblcr_expiration" => self.lblcr_expiration = range(1, i64::from(i32::MAX))? as u32,
            "nat_icmp_send" => self.nat_icmp_send = range(0, 1)? != 0,
            "pmtu_disc" => self.pmtu_disc = range(0, 1)? != 0,
            "schedule_icmp" => self.schedule_icmp = range(0, 1)? != 0,
            "secure_tcp" => self.secure_tcp = range(0, 3)? as u8,
            "sloppy_sctp" => self.sloppy_sctp = range(0, 1)? != 0,
            "sloppy_tcp" => self.sloppy_tcp = range(0, 1)? != 0,
            _ => return Err(SysctlError::Unknown(name.to_owned())),
        }
        Ok(())
    }

    /// Whether the secure TCP state table is in force.
    pub const fn secure_tcp_table(&self) -> bool {
        self.secure_tcp >= 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_set_and_validate() {
        let mut s = Sysctls::default();
        assert_eq!(s.get("conn_reuse_mode"), Some(1));
        s.set("expire_nodest_conn", 1).unwrap();
        assert!(s.expire_nodest_conn);
        assert!(matches!(
            s.set("secure_tcp", 4),
            Err(SysctlError::Range { .. })
        ));
        assert!(matches!(s.set("bogus", 1), Err(SysctlError::Unknown(_))));
        assert_eq!(s.list().len(), NAMES.len());
    }
}
