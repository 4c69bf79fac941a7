//! Unit tests of the SSH transport's pure parts: base64, fingerprints, known_hosts
//! names, parsing and checks, key preference, env overrides, signal statuses. No
//! network here; tests/ssh_transport.rs runs the real thing against sshd.

use std::fs;

use super::host_keys::*;
use super::*;

#[test]
fn base64_matches_rfc4648_vectors() {
    let cases = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];
    for (input, padded) in cases {
        assert_eq!(base64(input.as_bytes(), true), padded);
        assert_eq!(
            base64(input.as_bytes(), false),
            padded.trim_end_matches('=')
        );
    }
}

#[test]
fn fingerprint_is_printed_like_openssh() {
    // Key and fingerprint from `ssh-keygen -t ed25519` / `ssh-keygen -lf`.
    let blob_b64 = "AAAAC3NzaC1lZDI1NTE5AAAAIFBpMRJLJy7iJ8Beukk1yLoxqjLh/83161QwbIGGDe2Q";
    let blob = decode_base64(blob_b64);
    assert_eq!(base64(&blob, true), blob_b64);
    let key = HostKey::from_blob(&blob);
    assert_eq!(key.key_type, "ssh-ed25519");
    // What `ssh-keygen -lf` printed for this key.
    assert_eq!(
        key.fingerprint(),
        "SHA256:RWvqXDFb5bD/zIh+TwIo3kWx20x8TV9lh1+KW35898o"
    );
}

#[test]
fn blob_key_type_reads_the_length_prefixed_name() {
    assert_eq!(
        blob_key_type(b"\0\0\0\x07ssh-rsa\0\0").as_deref(),
        Some("ssh-rsa")
    );
    assert_eq!(blob_key_type(b"\0\0\0\x09ssh"), None);
    assert_eq!(blob_key_type(b"\0\0"), None);
}

#[test]
fn known_hosts_names_follow_openssh() {
    assert_eq!(known_hosts_name("198.18.0.2", 22), "198.18.0.2");
    assert_eq!(known_hosts_name("198.18.0.2", 2222), "[198.18.0.2]:2222");
    assert_eq!(
        known_hosts_name("node1.example", 2200),
        "[node1.example]:2200"
    );
    assert_eq!(display_address("198.18.0.2", 22), "198.18.0.2:22");
    assert_eq!(display_address("2001:db8::1", 22), "[2001:db8::1]:22");
}

#[test]
fn host_key_preference_puts_known_types_first_and_drops_unsupported() {
    let supported: Vec<String> = [
        "ecdsa-sha2-nistp256",
        "ssh-ed25519",
        "rsa-sha2-512",
        "rsa-sha2-256",
        "ssh-rsa",
        "ssh-dss",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(
        host_key_preference(&[], &supported),
        [
            "ssh-ed25519",
            "ecdsa-sha2-nistp256",
            "rsa-sha2-512",
            "rsa-sha2-256"
        ]
    );
    assert_eq!(
        host_key_preference(&["ssh-rsa".into()], &supported),
        [
            "rsa-sha2-512",
            "rsa-sha2-256",
            "ssh-ed25519",
            "ecdsa-sha2-nistp256"
        ]
    );
    assert_eq!(
        host_key_preference(
            &["ecdsa-sha2-nistp256".into(), "ssh-dss".into()],
            &supported
        ),
        [
            "ecdsa-sha2-nistp256",
            "ssh-ed25519",
            "rsa-sha2-512",
            "rsa-sha2-256"
        ]
    );
}

#[test]
fn known_hosts_parsing_skips_comments_and_broken_lines_and_keeps_markers() {
    let file = KnownHostsFile::parse(
        "# comment\n\n[198.18.0.2]:2222 ssh-ed25519 AAAAkey1 root@x\nbroken-line\n@revoked * ssh-rsa AAAAkey2\n|1|c2FsdA==|aGFzaA== ecdsa-sha2-nistp256 AAAAkey3\n",
    );
    let lines: Vec<(Option<&str>, &str, &str)> = file
        .entries
        .iter()
        .map(|e| (e.marker.as_deref(), e.key_type.as_str(), e.line.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (
                None,
                "ssh-ed25519",
                "[198.18.0.2]:2222 ssh-ed25519 AAAAkey1"
            ),
            (Some("@revoked"), "ssh-rsa", "* ssh-rsa AAAAkey2"),
            (
                None,
                "ecdsa-sha2-nistp256",
                "|1|c2FsdA==|aGFzaA== ecdsa-sha2-nistp256 AAAAkey3"
            ),
        ]
    );
}

#[test]
fn known_hosts_check_uses_libssh2_matching_by_key_type() {
    let session = Session::new().unwrap();
    let ed = decode_base64("AAAAC3NzaC1lZDI1NTE5AAAAIFBpMRJLJy7iJ8Beukk1yLoxqjLh/83161QwbIGGDe2Q");
    let other =
        decode_base64("AAAAC3NzaC1lZDI1NTE5AAAAIGfu8NYtB0wySdMPMU0x6Vcvoz7bUGvXiEpjS9j4yX4u");
    let key = HostKey::from_blob(&ed);
    let line = |name: &str, blob: &[u8]| format!("{name} ssh-ed25519 {}\n", base64(blob, true));

    let file = KnownHostsFile::parse(&line("[198.18.0.2]:2222", &ed));
    assert_eq!(
        file.check(&session, "[198.18.0.2]:2222", &key).unwrap(),
        HostKeyStatus::Known
    );
    // Port 22 and another port are different hosts to OpenSSH.
    assert_eq!(
        file.check(&session, "198.18.0.2", &key).unwrap(),
        HostKeyStatus::Unknown
    );
    assert_eq!(
        file.types_known_for(&session, "[198.18.0.2]:2222"),
        ["ssh-ed25519"]
    );
    assert!(file.types_known_for(&session, "198.18.0.3").is_empty());

    let changed = KnownHostsFile::parse(&line("198.18.0.2", &other));
    assert_eq!(
        changed.check(&session, "198.18.0.2", &key).unwrap(),
        HostKeyStatus::Changed
    );

    // Another key type on record: new, like OpenSSH, not changed.
    let rsa_only = KnownHostsFile::parse("198.18.0.2 ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8auy/luZbM71ZjkX1PYXHAh5okVBc9a7f0zBeDC62\n");
    assert_eq!(
        rsa_only.check(&session, "198.18.0.2", &key).unwrap(),
        HostKeyStatus::Unknown
    );

    let revoked = KnownHostsFile::parse(&format!(
        "{}@revoked * ssh-ed25519 {}\n",
        line("198.18.0.2", &ed),
        base64(&ed, true)
    ));
    assert_eq!(
        revoked.check(&session, "198.18.0.2", &key).unwrap(),
        HostKeyStatus::Revoked
    );
}

#[test]
fn accept_new_refuses_a_key_type_the_host_has_no_record_of_when_another_is_on_record() {
    let session = Session::new().unwrap();
    let ed = HostKey::from_blob(&decode_base64(
        "AAAAC3NzaC1lZDI1NTE5AAAAIFBpMRJLJy7iJ8Beukk1yLoxqjLh/83161QwbIGGDe2Q",
    ));
    let ecdsa = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBG7fwGy195gS67OgSM/fpomrg/fFNTr7i+sw1Bytg0Pq66q/3xfZxe0xUu2/kL6jKQrwTFN2NAAbXm4HtKys5J0=";
    let cases: [(&str, &str, Vec<&str>); 4] = [
        // Another type on record for the host: a downgrade, refused.
        (
            "ecdsa only",
            &*format!("[198.18.0.2]:2222 {ecdsa}\n"),
            vec!["ecdsa-sha2-nistp256"],
        ),
        // The same, hashed (`ssh-keygen -H`).
        (
            "ecdsa hashed",
            "|1|J6uP0LsDObYBulFFhpjbUEVaEes=|XrAEHvR6vtdpxwACBiU57YQbCY4= ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBG7fwGy195gS67OgSM/fpomrg/fFNTr7i+sw1Bytg0Pq66q/3xfZxe0xUu2/kL6jKQrwTFN2NAAbXm4HtKys5J0=\n",
            vec!["ecdsa-sha2-nistp256"],
        ),
        // Nothing for this host (another port, another host): new, recorded.
        (
            "other port",
            &*format!("198.18.0.2 {ecdsa}\n[198.18.0.3]:2222 {ecdsa}\n"),
            vec![],
        ),
        ("empty", "", vec![]),
    ];
    for (what, text, recorded) in cases {
        let file = KnownHostsFile::parse(text);
        let name = "[198.18.0.2]:2222";
        let status = file.check(&session, name, &ed).unwrap();
        assert_eq!(status, HostKeyStatus::Unknown, "{what}");
        let types = file.types_known_for(&session, name);
        let expected_types: Vec<String> = recorded.iter().map(|t| t.to_string()).collect();
        assert_eq!(types, expected_types, "{what}");
        let verdict = judge(status, &types, true);
        if types.is_empty() {
            assert_eq!(verdict, Judgement::Record, "{what}");
        } else {
            assert_eq!(verdict, Judgement::RefuseOtherType(types.clone()), "{what}");
        }
        // Without the flag, unknown stays unknown.
        assert_eq!(
            judge(status, &types, false),
            Judgement::RefuseUnknown,
            "{what}"
        );
    }
    // A changed key of the same type is refused with or without the flag.
    assert_eq!(
        judge(HostKeyStatus::Changed, &[], true),
        Judgement::RefuseChanged
    );
}

#[test]
fn append_creates_private_folder_and_file_and_keeps_lines_whole() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new/.ssh/known_hosts");
    let key = HostKey::from_blob(&decode_base64(
        "AAAAC3NzaC1lZDI1NTE5AAAAIFBpMRJLJy7iJ8Beukk1yLoxqjLh/83161QwbIGGDe2Q",
    ));
    append_known_host(&path, "[198.18.0.2]:2222", &key).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    // A file whose last line has no newline gets one before ours.
    fs::write(&path, "198.18.0.9 ssh-ed25519 AAAA").unwrap();
    append_known_host(&path, "198.18.0.2", &key).unwrap();
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "198.18.0.9 ssh-ed25519 AAAA\n198.18.0.2 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFBpMRJLJy7iJ8Beukk1yLoxqjLh/83161QwbIGGDe2Q\n"
    );
}

#[test]
fn env_overrides_count_only_when_non_empty_and_expand_the_home_folder() {
    // A variable of its own, so no other test sees it change.
    let name = "GEARTOPO_TEST_ENV_PATH_SSH_RS";
    std::env::remove_var(name);
    assert_eq!(env_path(name), None);
    std::env::set_var(name, "");
    assert_eq!(env_path(name), None);
    std::env::set_var(name, "/lab/id_ed25519");
    assert_eq!(env_path(name), Some(PathBuf::from("/lab/id_ed25519")));
    std::env::remove_var(name);
    let home = Some(PathBuf::from("/home/op"));
    assert_eq!(
        expand_home("~/.ssh/kh".into(), home.clone()),
        PathBuf::from("/home/op/.ssh/kh")
    );
    assert_eq!(
        expand_home("~".into(), home.clone()),
        PathBuf::from("/home/op")
    );
    assert_eq!(
        expand_home("~other/kh".into(), home.clone()),
        PathBuf::from("~other/kh")
    );
    assert_eq!(expand_home("rel/kh".into(), home), PathBuf::from("rel/kh"));
    assert_eq!(expand_home("~/kh".into(), None), PathBuf::from("~/kh"));
}

#[test]
fn signals_map_to_shell_style_statuses() {
    assert_eq!(signal_number("KILL"), Some(9));
    assert_eq!(signal_number("TERM"), Some(15));
    assert_eq!(signal_number("NOPE"), None);
}

fn decode_base64(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = s.bytes().filter(|c| *c != b'=').map(value).collect();
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, d)| n | (u32::from(*d) << (18 - 6 * i)));
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

#[test]
fn cert_authority_lines_are_recognised_for_the_hosts_they_cover() {
    let session = Session::new().unwrap();
    let ca = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFBpMRJLJy7iJ8Beukk1yLoxqjLh/83161QwbIGGDe2Q";
    let file = KnownHostsFile::parse(&format!(
        "@cert-authority [198.18.0.2]:2222,*.lab.example {ca}\n198.18.0.9 {ca}\n"
    ));
    assert!(file.cert_authority_for(&session, "[198.18.0.2]:2222"));
    assert!(file.cert_authority_for(&session, "db1.lab.example"));
    assert!(!file.cert_authority_for(&session, "198.18.0.2"));
    // A plain line is a host key, not an authority.
    assert!(!file.cert_authority_for(&session, "198.18.0.9"));
    assert!(glob_matches("198.18.0.?", "198.18.0.7"));
    assert!(!glob_matches("198.18.0.?", "198.18.0.17"));
}
