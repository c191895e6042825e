//! Finding the hot code of an executable laid out by BOLT, from its ELF
//! section headers (pure: the file is read through a closure).
//!
//! BOLT, LLVM's post-link optimizer, rewrites the functions a training run
//! used into a new code segment, hottest first: the section `.text` of the
//! result holds the code that runs all the time (a few hundred kilobytes),
//! `.text.cold` the split-off cold blocks, and `.bolt.org.text` the original
//! code, of which only the functions the training never ran are still
//! reached. Moving all of that onto huge pages costs the whole code's size in
//! resident memory for the sake of a small part; [`hot_text`] names that
//! part, and the remap keeps to the huge pages around it.

use std::ops::Range;

/// The section BOLT leaves the original code in; its presence tells a
/// binary BOLT rewrote.
pub const ORIGINAL_TEXT: &str = ".bolt.org.text";

/// The section holding BOLT's hot code.
pub const HOT_TEXT: &str = ".text";

/// Reads `len` bytes at `offset` of the file; `None` past its end or on an
/// error.
pub type ReadAt<'a> = dyn Fn(u64, usize) -> Option<Vec<u8>> + 'a;

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// One section header: its name's offset in the name table, and where its
/// bytes are in the file.
struct Section {
    name: u32,
    file: Range<u64>,
}

/// More section headers than any executable has: a corrupt count reads
/// nothing rather than megabytes.
const MAX_SECTIONS: usize = 1 << 16;

/// The file bytes of BOLT's hot code (`.text`) when the executable read by
/// `read` was rewritten by BOLT (it has `.bolt.org.text`); `None` for any
/// other executable, and for anything that is not a little-endian 64-bit
/// ELF file with readable section headers.
pub fn hot_text(read: &ReadAt<'_>) -> Option<Range<u64>> {
    let header = read(0, 64)?;
    if header.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let table = u64_at(&header, 0x28)?;
    let entry = usize::from(u16_at(&header, 0x3a)?);
    let count = usize::from(u16_at(&header, 0x3c)?);
    let names_index = usize::from(u16_at(&header, 0x3e)?);
    if entry < 64 || count == 0 || count > MAX_SECTIONS || names_index >= count {
        return None;
    }
    let headers = read(table, entry.checked_mul(count)?)?;
    let sections: Vec<Section> = headers
        .chunks_exact(entry)
        .map(|h| {
            let offset = u64_at(h, 24)?;
            let size = u64_at(h, 32)?;
            Some(Section {
                name: u32_at(h, 0)?,
                file: offset..offset.checked_add(size)?,
            })
        })
        .collect::<Option<_>>()?;
    let names_section = &sections[names_index].file;
    let names = read(
        names_section.start,
        usize::try_from(names_section.end - names_section.start).ok()?,
    )?;
    let name_of = |section: &Section| -> Option<&[u8]> {
        let rest = names.get(usize::try_from(section.name).ok()?..)?;
        Some(&rest[..rest.iter().position(|&b| b == 0)?])
    };
    let section_named = |wanted: &str| sections.iter().find(|s| name_of(s) == Some(wanted.as_bytes()));
    section_named(ORIGINAL_TEXT)?;
    let hot = section_named(HOT_TEXT)?;
    (hot.file.start < hot.file.end).then(|| hot.file.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF file: the header, a name table, and section headers
    /// for the null section, the name table and `sections` (name, file
    /// offset, size).
    fn elf(sections: &[(&str, u64, u64)]) -> Vec<u8> {
        let mut names = vec![0_u8];
        let mut name_offsets = Vec::new();
        for name in [".shstrtab"].iter().chain(sections.iter().map(|(n, _, _)| n)) {
            name_offsets.push(u32::try_from(names.len()).unwrap());
            names.extend_from_slice(name.as_bytes());
            names.push(0);
        }
        let names_at = 64_u64;
        let table_at = names_at + names.len() as u64;
        let mut file = vec![0_u8; 64];
        file[..6].copy_from_slice(b"\x7fELF\x02\x01");
        file[0x28..0x30].copy_from_slice(&table_at.to_le_bytes());
        file[0x3a..0x3c].copy_from_slice(&64_u16.to_le_bytes());
        file[0x3c..0x3e].copy_from_slice(&u16::try_from(sections.len() + 2).unwrap().to_le_bytes());
        file[0x3e..0x40].copy_from_slice(&1_u16.to_le_bytes());
        file.extend_from_slice(&names);
        let mut header = |name: u32, offset: u64, size: u64| {
            let mut h = [0_u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[24..32].copy_from_slice(&offset.to_le_bytes());
            h[32..40].copy_from_slice(&size.to_le_bytes());
            file.extend_from_slice(&h);
        };
        header(0, 0, 0);
        header(name_offsets[0], names_at, names.len() as u64);
        for (i, (_, offset, size)) in sections.iter().enumerate() {
            header(name_offsets[i + 1], *offset, *size);
        }
        file
    }

    fn reader(file: &[u8]) -> impl Fn(u64, usize) -> Option<Vec<u8>> + '_ {
        |offset, len| {
            let start = usize::try_from(offset).ok()?;
            file.get(start..start.checked_add(len)?).map(<[u8]>::to_vec)
        }
    }

    #[test]
    fn a_bolt_binary_names_its_hot_text() {
        let file = elf(&[
            (".bolt.org.text", 0x3d_6500, 0xd8_8332),
            (".text", 0x120_0000, 0x6_c377),
            (".text.cold", 0x126_c380, 0xd0_2e89),
        ]);
        assert_eq!(hot_text(&reader(&file)), Some(0x120_0000..0x126_c377));
    }

    #[test]
    fn other_binaries_have_none() {
        // Linked as usual: `.text` alone.
        let plain = elf(&[(".text", 0x3d_6500, 0xd8_8332), (".rodata", 0x1000, 0x2000)]);
        assert_eq!(hot_text(&reader(&plain)), None);
        // BOLT's original text, but no hot section (or an empty one).
        let no_hot = elf(&[(".bolt.org.text", 0x3d_6500, 0xd8_8332)]);
        assert_eq!(hot_text(&reader(&no_hot)), None);
        let empty_hot = elf(&[(".bolt.org.text", 0x3d_6500, 0xd8_8332), (".text", 0x120_0000, 0)]);
        assert_eq!(hot_text(&reader(&empty_hot)), None);
    }

    #[test]
    fn garbage_is_not_an_elf_file() {
        let file = elf(&[(".bolt.org.text", 1, 1), (".text", 2, 2)]);
        // Truncated anywhere: nothing, and no panic.
        for len in 0..file.len() {
            assert_eq!(hot_text(&reader(&file[..len])), None, "truncated to {len}");
        }
        // 32-bit, big-endian, or not ELF at all.
        for (at, byte) in [(4, 1_u8), (5, 2), (0, b'M')] {
            let mut bad = file.clone();
            bad[at] = byte;
            assert_eq!(hot_text(&reader(&bad)), None);
        }
        // A name index past the table.
        let mut bad = file;
        bad[0x3e] = 200;
        assert_eq!(hot_text(&reader(&bad)), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn this_test_binary_is_not_bolted() {
        use std::os::unix::fs::FileExt as _;
        let exe = std::fs::File::open("/proc/self/exe").unwrap();
        let read = |offset: u64, len: usize| {
            let mut buf = vec![0; len];
            exe.read_exact_at(&mut buf, offset).ok().map(|()| buf)
        };
        assert_eq!(hot_text(&read), None);
    }
}
