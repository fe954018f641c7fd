//! libblkid's verdict on a device, asked through `blkid -p -o export`:
//! the low-level probe that `wipefs` and `mkfs` trust, with hundreds of
//! signatures (RAID metadata at the end of a disk, filesystems airlift's
//! own [`probe`](super::probe) has never heard of). It is the authority
//! on "may this disk be formatted"; the byte probe is the second opinion
//! ([`combine`]). Reading blkid's answer is pure and unit-tested.

use std::path::Path;
use std::process::Command;

use super::probe::Finding;

/// What `blkid -p` said about a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No signature at all.
    Blank,
    /// A signature: its type, usage and label, as one line.
    Found(String),
    /// No verdict (blkid missing, failed, or answered something this code
    /// does not read): the disk is not known to be blank.
    Unknown(String),
}

/// The keys of blkid's export output worth naming, in this order.
const SHOWN: [&str; 4] = ["TYPE", "PTTYPE", "USAGE", "LABEL"];

/// Read `blkid -p -o export`'s answer: its exit code (None: killed by a
/// signal), stdout and stderr. blkid exits 0 with `KEY=value` lines when
/// it finds a signature, 2 when it finds none, 8 when signatures
/// contradict each other (not blank either), and 4 or more on a usage
/// or I/O error.
pub fn parse(code: Option<i32>, stdout: &str, stderr: &str) -> Verdict {
    let found = summary(stdout);
    match code {
        Some(0) => Verdict::Found(found.unwrap_or_else(|| "a signature it does not name".into())),
        Some(2) if found.is_none() && stderr.trim().is_empty() => Verdict::Blank,
        Some(2) => match found {
            Some(f) => Verdict::Found(f),
            None => Verdict::Unknown(format!("blkid -p failed: {}", first_line(stderr))),
        },
        Some(8) => {
            Verdict::Found("more than one signature (blkid cannot tell which is valid)".into())
        }
        Some(c) => Verdict::Unknown(format!("blkid -p exited with {c}: {}", first_line(stderr))),
        None => Verdict::Unknown("blkid -p was killed by a signal".into()),
    }
}

/// `TYPE=… PTTYPE=… USAGE=… LABEL=…` of the shown keys present.
fn summary(stdout: &str) -> Option<String> {
    let pairs: Vec<(&str, &str)> = stdout.lines().filter_map(|l| l.split_once('=')).collect();
    let keep: Vec<String> = SHOWN
        .iter()
        .filter_map(|k| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(key, v)| format!("{key}={v}"))
        })
        .collect();
    (!keep.is_empty()).then(|| keep.join(" "))
}

fn first_line(s: &str) -> &str {
    match s.trim().lines().next() {
        Some(l) if !l.trim().is_empty() => l.trim(),
        _ => "no message",
    }
}

/// Ask `blkid -p` about `path`.
pub fn ask(path: &Path) -> Verdict {
    match Command::new("blkid")
        .args(["-p", "-o", "export"])
        .arg(path)
        .output()
    {
        Ok(out) => parse(
            out.status.code(),
            &String::from_utf8_lossy(&out.stdout),
            &String::from_utf8_lossy(&out.stderr),
        ),
        Err(e) => Verdict::Unknown(format!(
            "blkid could not be run ({e}); it must be in the appliance's root filesystem \
             (util-linux)"
        )),
    }
}

/// The findings that decide a disk, from the byte probe's and blkid's:
/// blank only when both find nothing. What the byte probe names it
/// describes best (airlift's own partition, labels, UUIDs) and is kept;
/// bytes it cannot name are named by blkid when blkid can; and when the
/// byte probe finds nothing, blkid's signature, or its missing verdict,
/// is what stops the format.
pub fn combine(bytes: Vec<Finding>, blkid: Verdict) -> Vec<Finding> {
    match (bytes.as_slice(), blkid) {
        ([], Verdict::Blank) => bytes,
        ([] | [Finding::Unrecognised], Verdict::Found(s)) => vec![Finding::Blkid(s)],
        ([], Verdict::Unknown(why)) => vec![Finding::NoBlkidVerdict(why)],
        _ => bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIX: &str =
        "DEVNAME=/dev/loop3\nVERSION=1\nBLOCK_SIZE=1024\nTYPE=minix\nUSAGE=filesystem\n";

    #[test]
    fn reads_blkids_answers() {
        assert_eq!(
            parse(Some(0), MINIX, ""),
            Verdict::Found("TYPE=minix USAGE=filesystem".into())
        );
        assert_eq!(
            parse(
                Some(0),
                "DEVNAME=/d\nPTUUID=x\nPTTYPE=gpt\nLABEL=old\nTYPE=ext4\n",
                ""
            ),
            Verdict::Found("TYPE=ext4 PTTYPE=gpt LABEL=old".into())
        );
        assert_eq!(
            parse(Some(0), "DEVNAME=/d\n", ""),
            Verdict::Found("a signature it does not name".into())
        );
        assert_eq!(parse(Some(2), "", ""), Verdict::Blank);
        assert!(matches!(parse(Some(8), "", ""), Verdict::Found(s) if s.contains("more than one")));
    }

    #[test]
    fn no_verdict_is_never_blank() {
        assert_eq!(
            parse(Some(2), "", "blkid: /dev/x: Permission denied\nmore"),
            Verdict::Unknown("blkid -p failed: blkid: /dev/x: Permission denied".into())
        );
        assert_eq!(
            parse(Some(4), "", ""),
            Verdict::Unknown("blkid -p exited with 4: no message".into())
        );
        assert_eq!(
            parse(None, "", ""),
            Verdict::Unknown("blkid -p was killed by a signal".into())
        );
        let missing = ask(Path::new("/nonexistent/airlift-no-such-device"));
        assert!(!matches!(missing, Verdict::Found(_)), "{missing:?}");
    }

    #[test]
    fn blank_only_when_both_say_so() {
        let ext4 = Finding::Filesystem {
            kind: "ext4",
            label: None,
            uuid: None,
        };
        assert_eq!(combine(vec![], Verdict::Blank), vec![]);
        assert_eq!(
            combine(vec![], Verdict::Found("TYPE=isw_raid_member".into())),
            vec![Finding::Blkid("TYPE=isw_raid_member".into())]
        );
        assert_eq!(
            combine(vec![], Verdict::Unknown("no blkid".into())),
            vec![Finding::NoBlkidVerdict("no blkid".into())]
        );
        // The byte probe's findings stand, whatever blkid says.
        for v in [
            Verdict::Blank,
            Verdict::Found("TYPE=ext4".into()),
            Verdict::Unknown("x".into()),
        ] {
            assert_eq!(combine(vec![ext4.clone()], v), vec![ext4.clone()]);
        }
        // Bytes the probe cannot name, named by blkid.
        assert_eq!(
            combine(
                vec![Finding::Unrecognised],
                Verdict::Found("TYPE=minix".into())
            ),
            vec![Finding::Blkid("TYPE=minix".into())]
        );
        assert_eq!(
            combine(vec![Finding::Unrecognised], Verdict::Blank),
            vec![Finding::Unrecognised]
        );
    }
}
