//! A streaming encoder for the cpio "newc" format (magic `070701`), the
//! format the Linux kernel unpacks as an initramfs.
//!
//! Each member is a 110-byte ASCII header of hex fields, the NUL-ended
//! name padded to a multiple of 4, then the data padded to a multiple of
//! 4. The archive ends with a member named `TRAILER!!!`.

use std::io::{self, Read, Write};

/// File type bits of `st_mode`.
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFIFO: u32 = 0o010000;

/// One member's header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Path inside the archive, without a leading `/`.
    pub name: String,
    /// Type and permission bits (`S_IF* | 0o7777`).
    pub mode: u32,
    pub ino: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub size: u64,
    /// Device numbers for character and block devices.
    pub rdev_major: u32,
    pub rdev_minor: u32,
}

/// Encodes members into `W`, counting bytes so padding is right.
pub struct Writer<W: Write> {
    out: W,
    written: u64,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Writer { out, written: 0 }
    }

    /// Bytes of archive written so far (uncompressed).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Writes a header and its name; the caller then writes exactly
    /// `header.size` bytes of data with [`Writer::data`] and pads.
    fn header(&mut self, h: &Header) -> io::Result<()> {
        if h.size > u32::MAX as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: {} bytes is too big for cpio newc", h.name, h.size),
            ));
        }
        let text = encode_header(h);
        self.put(text.as_bytes())?;
        self.put(h.name.as_bytes())?;
        self.put(&[0])?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let n = (4 - (self.written % 4) as usize) % 4;
        self.put(&[0u8; 3][..n])
    }

    /// A member without data (directory, device, fifo).
    pub fn empty(&mut self, h: &Header) -> io::Result<()> {
        debug_assert_eq!(h.size, 0);
        self.header(h)
    }

    /// A member whose data is in memory (symlink target, small file).
    pub fn bytes(&mut self, h: &Header, data: &[u8]) -> io::Result<()> {
        debug_assert_eq!(h.size, data.len() as u64);
        self.header(h)?;
        self.put(data)?;
        self.pad()
    }

    /// A member whose data is streamed from `data`, which must yield
    /// exactly `h.size` bytes (a file that changed size is an error).
    pub fn stream(&mut self, h: &Header, data: &mut dyn Read) -> io::Result<()> {
        self.header(h)?;
        let copied = io::copy(&mut data.take(h.size), &mut self.out)?;
        self.written += copied;
        let mut probe = [0u8; 1];
        if copied != h.size || data.read(&mut probe)? != 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: size changed while reading (expected {} bytes)",
                    h.name, h.size
                ),
            ));
        }
        self.pad()
    }

    /// Writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.header(&Header {
            name: "TRAILER!!!".into(),
            mode: 0,
            ino: 0,
            uid: 0,
            gid: 0,
            nlink: 1,
            mtime: 0,
            size: 0,
            rdev_major: 0,
            rdev_minor: 0,
        })?;
        Ok(self.out)
    }
}

/// The 110-byte header text (without the name).
pub fn encode_header(h: &Header) -> String {
    let namesize = h.name.len() as u32 + 1;
    format!(
        "070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
        h.ino,
        h.mode,
        h.uid,
        h.gid,
        h.nlink,
        h.mtime,
        h.size as u32,
        0, // devmajor
        0, // devminor
        h.rdev_major,
        h.rdev_minor,
        namesize,
        0, // check
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(name: &str, mode: u32, size: u64) -> Header {
        Header {
            name: name.into(),
            mode,
            ino: 1,
            uid: 0,
            gid: 0,
            nlink: 1,
            mtime: 0,
            size,
            rdev_major: 0,
            rdev_minor: 0,
        }
    }

    #[test]
    fn header_is_110_bytes_of_hex() {
        let h = hdr("init", S_IFREG | 0o755, 5);
        let text = encode_header(&h);
        assert_eq!(text.len(), 110);
        assert!(text.starts_with("070701"));
        // mode field, size field, namesize field
        assert_eq!(&text[14..22], "000081ED");
        assert_eq!(&text[54..62], "00000005");
        assert_eq!(&text[94..102], "00000005");
    }

    #[test]
    fn header_carries_the_owner() {
        let mut h = hdr("etc/shadow", S_IFREG | 0o640, 0);
        h.uid = 0;
        h.gid = 42;
        let text = encode_header(&h);
        assert_eq!(&text[22..30], "00000000");
        assert_eq!(&text[30..38], "0000002A");
    }

    #[test]
    fn members_are_padded_to_four_bytes() {
        let mut w = Writer::new(Vec::new());
        w.bytes(&hdr("a", S_IFREG | 0o644, 3), b"xyz").unwrap();
        // 110 + "a\0" = 112 (aligned), + 3 data + 1 pad
        assert_eq!(w.written(), 116);
        let out = w.finish().unwrap();
        assert_eq!(out.len() % 4, 0);
        assert!(out.windows(10).any(|win| win == b"TRAILER!!!"));
    }

    #[test]
    fn stream_rejects_a_short_source() {
        let mut w = Writer::new(Vec::new());
        let err = w
            .stream(&hdr("f", S_IFREG | 0o644, 10), &mut &b"short"[..])
            .unwrap_err();
        assert!(err.to_string().contains("size changed"), "{err}");
    }

    #[test]
    fn stream_rejects_a_long_source() {
        let mut w = Writer::new(Vec::new());
        let err = w
            .stream(&hdr("f", S_IFREG | 0o644, 2), &mut &b"longer"[..])
            .unwrap_err();
        assert!(err.to_string().contains("size changed"), "{err}");
    }
}
