use super::authenticode::{signers, Signer};
use super::*;

/// A minimal PE32+ image: DOS header, PE signature, COFF header, an
/// optional header with 16 data directories, one section, some data.
fn tiny_pe() -> Vec<u8> {
    let mut b = vec![0u8; 0x400];
    b[..2].copy_from_slice(b"MZ");
    b[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
    b[0x40..0x44].copy_from_slice(b"PE\0\0");
    let coff = 0x44;
    b[coff..coff + 2].copy_from_slice(&0x8664u16.to_le_bytes());
    b[coff + 2..coff + 4].copy_from_slice(&1u16.to_le_bytes());
    b[coff + 4..coff + 8].copy_from_slice(&0x1234_5678u32.to_le_bytes());
    b[coff + 16..coff + 18].copy_from_slice(&240u16.to_le_bytes());
    let opt = coff + 20;
    b[opt..opt + 2].copy_from_slice(&0x20bu16.to_le_bytes());
    b[opt + 32..opt + 36].copy_from_slice(&0x200u32.to_le_bytes());
    b[opt + 56..opt + 60].copy_from_slice(&0x600u32.to_le_bytes());
    b[opt + 108..opt + 112].copy_from_slice(&16u32.to_le_bytes());
    let sec = opt + 240;
    b[sec..sec + 5].copy_from_slice(b".text");
    b[sec + 8..sec + 12].copy_from_slice(&0x100u32.to_le_bytes());
    b[sec + 12..sec + 16].copy_from_slice(&0x400u32.to_le_bytes());
    b[sec + 16..sec + 20].copy_from_slice(&0x200u32.to_le_bytes());
    b[sec + 20..sec + 24].copy_from_slice(&0x200u32.to_le_bytes());
    b[0x200..0x210].copy_from_slice(&[0xAB; 16]);
    b
}

#[test]
fn parses_headers_and_sections() {
    let h = Headers::parse(&tiny_pe()).unwrap();
    assert!(h.pe32_plus);
    assert_eq!(h.sections.len(), 1);
    assert_eq!(h.sections[0].name, ".text");
    assert_eq!(h.sections[0].virtual_address, 0x400);
    assert_eq!(h.section_alignment, 0x200);
    assert_eq!(h.cert_table, (0, 0));
    assert_eq!(h.end_of_sections(), 0x600);
    assert!(signatures(&tiny_pe()).unwrap().is_empty(), "unsigned");
}

#[test]
fn refuses_what_is_not_pe() {
    assert!(Headers::parse(b"").is_err());
    assert!(Headers::parse(&[b'M', b'Z', 0, 0]).is_err());
    let mut b = tiny_pe();
    b[0x40] = b'X';
    assert!(Headers::parse(&b).is_err());
    let mut b = tiny_pe();
    b.truncate(0x100);
    assert!(Headers::parse(&b).is_err(), "section table cut off");
    // A certificate table past the end of the file.
    let mut b = tiny_pe();
    let dir = 0x44 + 20 + 112 + 4 * 8;
    b[dir..dir + 4].copy_from_slice(&0x3f0u32.to_le_bytes());
    b[dir + 4..dir + 8].copy_from_slice(&0x100u32.to_le_bytes());
    assert!(signatures(&b).is_err());
}

#[test]
fn timestamp_is_set_and_checksum_follows() {
    let mut b = tiny_pe();
    set_timestamp(&mut b, 0).unwrap();
    let h = Headers::parse(&b).unwrap();
    assert_eq!(&b[h.timestamp_at()..h.timestamp_at() + 4], &[0; 4]);
    let stored = u32_at(&b, h.checksum_at()).unwrap();
    assert_eq!(stored, checksum(&b, h.checksum_at()));
    // The checksum ignores its own field and counts the length.
    let mut other = b.clone();
    other[h.checksum_at()] ^= 0xff;
    assert_eq!(checksum(&other, h.checksum_at()), stored);
    assert_eq!(checksum(&[1, 0, 2, 0], 100), 3 + 4);
    assert_eq!(
        checksum(&[0xff, 0xff, 0x02, 0x00], 100),
        2 + 4,
        "carry folds"
    );
}

#[test]
fn certificate_entries_are_8_byte_aligned() {
    let mut t = Vec::new();
    for (len, kind) in [(13u32, 2u16), (9, 1), (8, 2)] {
        t.extend(len.to_le_bytes());
        t.extend(0x200u16.to_le_bytes());
        t.extend(kind.to_le_bytes());
        t.resize(t.len() + (len as usize - 8).div_ceil(8) * 8, 7);
    }
    let e = certificate_entries(&t, 0).unwrap();
    assert_eq!(e.iter().map(|b| b.len()).collect::<Vec<_>>(), [5, 0]);
    t[0] = 200;
    assert!(certificate_entries(&t, 0).is_err());
}

fn signers_of_table(table: &[u8]) -> Vec<Signer> {
    let mut out = Vec::new();
    for blob in certificate_entries(table, 0).unwrap() {
        out.extend(signers(blob).unwrap());
    }
    out
}

fn signer(subject: &str, issuer: &str) -> Signer {
    Signer {
        subject: subject.into(),
        issuer: issuer.into(),
    }
}

/// Real signatures from the boot base (`fixtures/extract.py`); the names
/// are the ones `sbverify --list` prints for the same files.
#[test]
fn signers_of_real_boot_files() {
    assert_eq!(
        signers_of_table(include_bytes!("fixtures/shimx64.certs")),
        [
            signer(
                "Microsoft Windows UEFI Driver Publisher",
                "Microsoft Corporation UEFI CA 2011"
            ),
            signer("Microsoft UEFI CA 2023 signer", "Microsoft UEFI CA 2023"),
        ]
    );
    assert_eq!(
        signers_of_table(include_bytes!("fixtures/vmlinuz.certs")),
        [signer(
            "Debian Secure Boot Signer 2022 - linux",
            "Debian Secure Boot CA"
        )]
    );
    let snakeoil = "C=US, ST=Colorado, L=Fort Collins, O=SnakeOil";
    assert_eq!(
        signers_of_table(include_bytes!("fixtures/snakeoil.certs")),
        [signer(snakeoil, snakeoil)]
    );
}

#[test]
fn damaged_signatures_are_errors_not_panics() {
    let table = include_bytes!("fixtures/vmlinuz.certs");
    let blob = certificate_entries(table, 0).unwrap()[0];
    for cut in [0, 1, 10, 100, blob.len() / 2, blob.len() - 1] {
        assert!(signers(&blob[..cut]).is_err(), "cut at {cut}");
    }
    let mut wrong = blob.to_vec();
    wrong[6] ^= 1; // inside the signedData OID
    assert!(signers(&wrong).is_err());
}
