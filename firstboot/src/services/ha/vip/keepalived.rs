//! keepalived's config for the registry's virtual IP (pure).
//!
//! One VRRP instance and one check script. Every machine starts as
//! `BACKUP`; VRRP then elects the machine with the highest priority whose
//! check passes: host0 ([`HOST0_PRIORITY`]) over the replicas
//! ([`REPLICA_PRIORITY`]; ties go to the highest primary address). The
//! check has no weight, so a machine whose registry stops answering goes
//! to FAULT and lets go of the address until the check passes again.

use std::fmt::Write as _;

use super::{Role, VipSettings};

/// The name of the check script and of the VRRP instance.
pub const NAME: &str = "airlift_registry";
/// host0's VRRP priority.
pub const HOST0_PRIORITY: u8 = 150;
/// A replica's VRRP priority.
pub const REPLICA_PRIORITY: u8 = 100;
/// The first line of every file airlift writes.
pub const HEADER: &str = "# Written by airlift-firstboot";

/// Seconds between two runs of the check.
pub const CHECK_INTERVAL: u32 = 2;
/// Seconds after which keepalived counts a running check as failed.
pub const CHECK_TIMEOUT: u32 = 2;
/// Failed checks in a row before the machine lets the address go.
pub const CHECK_FALL: u32 = 2;
/// Passed checks in a row before the machine may hold it again.
pub const CHECK_RISE: u32 = 2;

/// A role's VRRP priority (a plain node never runs the instance; it gets
/// the replicas' priority if asked).
pub fn priority(role: Role) -> u8 {
    match role {
        Role::Host0 => HOST0_PRIORITY,
        Role::Replica | Role::Join => REPLICA_PRIORITY,
    }
}

/// `keepalived.conf` holding the address of `vip` for a machine of `role`;
/// keepalived runs `health_cmd` (a command line without `"`) as the check.
pub fn render(vip: &VipSettings, role: Role, health_cmd: &str) -> String {
    let health_cmd = health_cmd.replace('"', "");
    let role_name = match role {
        Role::Host0 => "host0",
        Role::Replica => "a replica",
        Role::Join => "a node",
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{HEADER} for the registry's virtual IP ({role_name}),\n\
         # from ha.virtualIp in /etc/airlift/appliance.json; it is rewritten at boot,\n\
         # so change the image config instead. A file that was here before is kept\n\
         # as keepalived.conf.airlift-orig.\n"
    );
    s.push_str(
        "global_defs {\n\
         \x20   # The check runs as root, which owns it and the folders above it.\n\
         \x20   script_user root\n\
         \x20   enable_script_security\n\
         }\n\n",
    );
    let _ = writeln!(
        s,
        "# Passes while this machine's registry answers GET /v2/.\n\
         vrrp_script {NAME} {{\n\
         \x20   script \"{health_cmd}\"\n\
         \x20   interval {CHECK_INTERVAL}\n\
         \x20   timeout {CHECK_TIMEOUT}\n\
         \x20   fall {CHECK_FALL}\n\
         \x20   rise {CHECK_RISE}\n\
         }}\n"
    );
    let _ = write!(
        s,
        "# Every machine starts as BACKUP; the highest priority with a passing check\n\
         # holds the address (host0 {HOST0_PRIORITY}, replicas {REPLICA_PRIORITY}).\n\
         vrrp_instance {NAME} {{\n\
         \x20   state BACKUP\n\
         \x20   interface {iface}\n\
         \x20   virtual_router_id {id}\n\
         \x20   priority {prio}\n\
         \x20   advert_int 1\n\
         \x20   virtual_ipaddress {{\n\
         \x20       {addr} dev {iface}\n\
         \x20   }}\n\
         \x20   track_script {{\n\
         \x20       {NAME}\n\
         \x20   }}\n\
         }}\n",
        iface = vip.interface,
        id = vip.virtual_router_id,
        prio = priority(role),
        addr = vip.address,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(addr: &str) -> VipSettings {
        VipSettings {
            address: addr.parse().unwrap(),
            interface: "eth0".into(),
            virtual_router_id: 51,
        }
    }

    const CMD: &str =
        "/usr/bin/airlift-firstboot health --url https://127.0.0.1:5000 --timeout-secs 1";

    const HOST0: &str = r#"# Written by airlift-firstboot for the registry's virtual IP (host0),
# from ha.virtualIp in /etc/airlift/appliance.json; it is rewritten at boot,
# so change the image config instead. A file that was here before is kept
# as keepalived.conf.airlift-orig.

global_defs {
    # The check runs as root, which owns it and the folders above it.
    script_user root
    enable_script_security
}

# Passes while this machine's registry answers GET /v2/.
vrrp_script airlift_registry {
    script "/usr/bin/airlift-firstboot health --url https://127.0.0.1:5000 --timeout-secs 1"
    interval 2
    timeout 2
    fall 2
    rise 2
}

# Every machine starts as BACKUP; the highest priority with a passing check
# holds the address (host0 150, replicas 100).
vrrp_instance airlift_registry {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        10.77.0.50/24 dev eth0
    }
    track_script {
        airlift_registry
    }
}
"#;

    #[test]
    fn host0_golden() {
        assert_eq!(render(&settings("10.77.0.50/24"), Role::Host0, CMD), HOST0);
    }

    #[test]
    fn replica_differs_only_in_role_and_priority() {
        let replica = render(&settings("10.77.0.50/24"), Role::Replica, CMD);
        let expected = HOST0
            .replace("virtual IP (host0)", "virtual IP (a replica)")
            .replace("    priority 150\n", "    priority 100\n");
        assert_eq!(replica, expected);
        assert!(priority(Role::Host0) > priority(Role::Replica));
    }

    #[test]
    fn ipv6_interface_and_router_id() {
        let mut v = settings("fd77::50/64");
        v.interface = "enp1s0".into();
        v.virtual_router_id = 7;
        let s = render(&v, Role::Host0, "/x health");
        assert!(s.contains("\n    interface enp1s0\n"), "{s}");
        assert!(s.contains("\n    virtual_router_id 7\n"), "{s}");
        assert!(s.contains("\n        fd77::50/64 dev enp1s0\n"), "{s}");
        assert!(s.contains("\n    script \"/x health\"\n"), "{s}");
        // A quote cannot end the script string early.
        let s = render(&v, Role::Host0, "/x \"health\"");
        assert!(s.contains("\n    script \"/x health\"\n"), "{s}");
        assert!(s.starts_with(HEADER));
    }
}
