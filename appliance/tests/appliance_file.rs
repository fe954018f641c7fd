//! `appliance.json` as the appliance reads it: what a rendered file looks
//! like as JSON, which files parse, and errors that name the file and the
//! field for those that do not.

use std::path::Path;

use airlift_appliance::*;

fn sample() -> ApplianceFile {
    ApplianceFile {
        schema: SCHEMA,
        name: "demo".into(),
        version: "0.1.0".into(),
        volume_label: "AIRLIFT_DEMO".into(),
        role: Role::Host0,
        join_token: "ab".repeat(32),
        kernel_release: "6.1.0-test".into(),
        registry: RegistryFile {
            port: 5000,
            tls: TlsMode::Generate,
            tls_cert: None,
            tls_key: None,
            extra_names: vec!["registry.airlift.test".into()],
            push: false,
            allow_delete: false,
        },
        mirrors: vec!["docker.io".into(), "quay.io".into()],
        runtimes: vec![Runtime::Crio, Runtime::Containerd],
        netboot: Netboot::default(),
        storage: Storage::default(),
        ha: None,
        trust: None,
        base: None,
    }
}

#[test]
fn round_trips() {
    let f = sample();
    let bytes = f.render().unwrap();
    let back = ApplianceFile::parse(&bytes, Path::new("a.json")).unwrap();
    assert_eq!(back, f);
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["volumeLabel"], "AIRLIFT_DEMO");
    assert_eq!(v["registry"]["tls"], "generate");
    assert_eq!(v["runtimes"][1], "containerd");
    assert!(!f.has_data_disk());
}

#[test]
fn bad_files_name_the_file_and_field() {
    let mut f = sample();
    f.schema = 9;
    let err = ApplianceFile::parse(&f.render().unwrap(), Path::new("/etc/a.json")).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("/etc/a.json") && msg.contains("schema is 9"),
        "{msg}"
    );

    let mut f = sample();
    f.join_token = "short".into();
    assert!(format!("{:#}", f.validate().unwrap_err()).contains("joinToken"));

    let mut f = sample();
    f.registry.tls = TlsMode::Provided;
    assert!(format!("{:#}", f.validate().unwrap_err()).contains("tlsCert"));

    let err = ApplianceFile::parse(br#"{"schema":1,"bogus":1}"#, Path::new("x.json")).unwrap_err();
    assert!(format!("{err:#}").contains("x.json"));
}

#[test]
fn data_disk_presence() {
    let mut f = sample();
    f.storage.data_disk = Some(DataDisk {
        device: Some("/dev/vdb".into()),
        filesystem: Filesystem::Ext4,
        min_size_gib: None,
        wipe: false,
    });
    assert!(f.has_data_disk());
    let mut v: serde_json::Value = serde_json::from_slice(&f.render().unwrap()).unwrap();
    assert_eq!(v["storage"]["dataDisk"]["device"], "/dev/vdb");
    v["storage"]["dataDisk"] = serde_json::Value::Null;
    let back = ApplianceFile::parse(&serde_json::to_vec(&v).unwrap(), Path::new("a")).unwrap();
    assert!(!back.has_data_disk());
}

#[test]
fn files_without_ha_still_parse_and_ha_round_trips() {
    let f = sample();
    let mut v: serde_json::Value = serde_json::from_slice(&f.render().unwrap()).unwrap();
    assert!(v.get("ha").is_none(), "no ha key when unset");
    v.as_object_mut().unwrap().remove("ha");
    let back = ApplianceFile::parse(&serde_json::to_vec(&v).unwrap(), Path::new("a")).unwrap();
    assert_eq!(back.ha, None);
    assert!(back.virtual_ip().is_none());

    let mut f = sample();
    f.ha = Some(Ha {
        virtual_ip: Some(VirtualIp {
            address: "10.77.0.50/24".parse().unwrap(),
            interface: None,
            virtual_router_id: 51,
        }),
    });
    let bytes = f.render().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["ha"]["virtualIp"]["address"], "10.77.0.50/24");
    assert_eq!(v["ha"]["virtualIp"]["virtualRouterId"], 51);
    assert_eq!(ApplianceFile::parse(&bytes, Path::new("a")).unwrap(), f);

    let bad = String::from_utf8(bytes.clone())
        .unwrap()
        .replace("10.77.0.50/24", "10.77.0.50/33");
    let err = ApplianceFile::parse(bad.as_bytes(), Path::new("/etc/a.json")).unwrap_err();
    assert!(format!("{err:#}").contains("prefix length"), "{err:#}");
    let zero = String::from_utf8(bytes)
        .unwrap()
        .replace("\"virtualRouterId\": 51", "\"virtualRouterId\": 0");
    let err = ApplianceFile::parse(zero.as_bytes(), Path::new("a")).unwrap_err();
    assert!(
        format!("{err:#}").contains("virtualRouterId is 0"),
        "{err:#}"
    );
}

#[test]
fn netboot_is_typed_and_null_reads_as_off() {
    let mut f = sample();
    f.netboot.enabled = true;
    f.netboot.dhcp = DhcpMode::Full;
    f.netboot.nodes.push(Node {
        hostname: Some("n1".into()),
        kernel_args: vec![],
        mac: "52:54:00:a1:00:01".into(),
        role: Role::Replica,
    });
    let mut v: serde_json::Value = serde_json::from_slice(&f.render().unwrap()).unwrap();
    assert_eq!(v["netboot"]["dhcp"], "full");
    assert_eq!(v["netboot"]["nodes"][0]["role"], "replica");
    let back = ApplianceFile::parse(&serde_json::to_vec(&v).unwrap(), Path::new("a")).unwrap();
    assert_eq!(back, f);

    v["netboot"] = serde_json::Value::Null;
    let back = ApplianceFile::parse(&serde_json::to_vec(&v).unwrap(), Path::new("a")).unwrap();
    assert_eq!(back.netboot, Netboot::default());
    v.as_object_mut().unwrap().remove("netboot");
    let back = ApplianceFile::parse(&serde_json::to_vec(&v).unwrap(), Path::new("a")).unwrap();
    assert_eq!(back.netboot, Netboot::default());
}

#[test]
fn a_section_of_the_wrong_shape_names_the_file() {
    for (section, value) in [
        ("netboot", serde_json::json!({"bogus": 1})),
        ("netboot", serde_json::json!({"dhcp": "maybe"})),
        ("storage", serde_json::json!({"dataDisk": {"device": 7}})),
        ("runtimes", serde_json::json!(["cri-o"])),
    ] {
        let mut v: serde_json::Value = serde_json::from_slice(&sample().render().unwrap()).unwrap();
        v[section] = value;
        let bytes = serde_json::to_vec(&v).unwrap();
        let err = ApplianceFile::parse(&bytes, Path::new("/etc/b.json")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("/etc/b.json") && msg.contains("rebuild the ISO"),
            "{section}: {msg}"
        );
    }
}
