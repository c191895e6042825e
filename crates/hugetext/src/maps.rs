//! Reading `/proc/self/maps` and deciding what to remap: pure functions,
//! tested on recorded tables.

use std::ops::Range;

/// One line of `/proc/<pid>/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Virtual addresses covered.
    pub range: Range<usize>,
    /// The four permission characters, e.g. `r-xp`.
    pub perms: String,
    /// Offset in the mapped file of the mapping's first byte.
    pub offset: u64,
    /// Device of the mapped file (major, minor); (0, 0) when anonymous.
    pub device: (u32, u32),
    /// Inode of the mapped file; 0 when anonymous.
    pub inode: u64,
    /// Path of the mapped file, or a pseudo-name such as `[heap]`; empty
    /// when anonymous.
    pub path: String,
}

impl Mapping {
    /// Whether the mapping is executable.
    pub fn is_executable(&self) -> bool {
        self.perms.as_bytes().get(2) == Some(&b'x')
    }

    /// Whether the mapping is code: readable and executable, not writable.
    pub fn is_code(&self) -> bool {
        self.perms.as_bytes().get(..3) == Some(b"r-x")
    }

    /// Parses one line, `None` if it is not in the kernel's format.
    pub fn parse(line: &str) -> Option<Self> {
        let mut fields = line.split_ascii_whitespace();
        let (start, end) = fields.next()?.split_once('-')?;
        let perms = fields.next()?;
        let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
        let (major, minor) = fields.next()?.split_once(':')?;
        let inode = fields.next()?.parse().ok()?;
        let path = fields.collect::<Vec<_>>().join(" ");
        let range = usize::from_str_radix(start, 16).ok()?..usize::from_str_radix(end, 16).ok()?;
        if range.start >= range.end || perms.len() != 4 {
            return None;
        }
        Some(Self {
            range,
            perms: perms.to_owned(),
            offset,
            device: (
                u32::from_str_radix(major, 16).ok()?,
                u32::from_str_radix(minor, 16).ok()?,
            ),
            inode,
            path,
        })
    }
}

/// Parses a whole `maps` file, skipping lines it does not understand.
pub fn parse(maps: &str) -> Vec<Mapping> {
    maps.lines().filter_map(Mapping::parse).collect()
}

/// The mapping that holds `address`.
pub fn containing(mappings: &[Mapping], address: usize) -> Option<&Mapping> {
    mappings.iter().find(|mapping| mapping.range.contains(&address))
}

/// One region to move onto huge pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The addresses the new mapping will cover, aligned to the huge page
    /// size at both ends.
    pub target: Range<usize>,
    /// The part of `target` holding the executable's code, copied; the rest
    /// of `target` was unmapped and is filled with zeros.
    pub copy: Range<usize>,
    /// Where `copy` starts in the executable's file.
    pub file_offset: u64,
}

/// The regions to remap: for every code mapping of the file
/// `(device, inode)`, the huge-page-aligned range that covers as much of
/// it as possible. (Moving the read-only data segments as well measured
/// no better, for 4 MB more resident memory: docs/benchmarks.md.) A range may extend past the mapping into address space
/// no other mapping uses (the gaps a linker leaves when it aligns segments
/// to 2 MiB); where a neighbour is closer than the next boundary, the range
/// stops at the boundary inside the code, which then keeps its small pages
/// for that part. A range never extends past the first or last mapping
/// (towards address 0 or the end of the address space), and mappings that
/// hold no whole huge page yield nothing.
pub fn plan(mappings: &[Mapping], file: ((u32, u32), u64), huge_page: usize) -> Vec<Plan> {
    debug_assert!(huge_page.is_power_of_two());
    let down = |address: usize| address & !(huge_page - 1);
    let up = |address: usize| down(address + huge_page - 1);
    let mut plans = Vec::new();
    for (i, mapping) in mappings.iter().enumerate() {
        if !mapping.is_code() || (mapping.device, mapping.inode) != file || mapping.inode == 0 {
            continue;
        }
        // No neighbour: treat the mapping's own ends as the limits.
        let previous_end = i.checked_sub(1).map_or(mapping.range.start, |p| mappings[p].range.end);
        let next_start = mappings.get(i + 1).map_or(mapping.range.end, |n| n.range.start);
        let start = if down(mapping.range.start) >= previous_end {
            down(mapping.range.start)
        } else {
            up(mapping.range.start)
        };
        let end = if up(mapping.range.end) <= next_start {
            up(mapping.range.end)
        } else {
            down(mapping.range.end)
        };
        if start >= end {
            continue;
        }
        let copy = start.max(mapping.range.start)..end.min(mapping.range.end);
        plans.push(Plan {
            file_offset: mapping.offset + (copy.start - mapping.range.start) as u64,
            target: start..end,
            copy,
        });
    }
    plans
}

/// Narrows `plans` to the huge pages around `hot`, the file offsets of the
/// code that runs all the time ([`crate::bolt::hot_text`]): each plan keeps
/// the huge-page-aligned part of its target that covers its share of `hot`,
/// and plans without any of it are dropped. The code outside stays on
/// small pages, resident only where it runs.
pub fn keep_hot(plans: Vec<Plan>, hot: &Range<u64>, huge_page: usize) -> Vec<Plan> {
    debug_assert!(huge_page.is_power_of_two());
    let down = |address: usize| address & !(huge_page - 1);
    let up = |address: usize| down(address + huge_page - 1);
    plans
        .into_iter()
        .filter_map(|plan| {
            let copied = plan.file_offset..plan.file_offset + plan.copy.len() as u64;
            let (start, end) = (copied.start.max(hot.start), copied.end.min(hot.end));
            if start >= end {
                return None;
            }
            // Where those bytes of the file are in memory.
            let address = |offset: u64| plan.copy.start + usize::try_from(offset - plan.file_offset).unwrap_or(0);
            let target = down(address(start)).max(plan.target.start)..up(address(end)).min(plan.target.end);
            let copy = target.start.max(plan.copy.start)..target.end.min(plan.copy.end);
            Some(Plan {
                file_offset: plan.file_offset + (copy.start - plan.copy.start) as u64,
                target,
                copy,
            })
        })
        .collect()
}

/// Bytes of `AnonHugePages` that `smaps` reports for the mappings starting
/// at each of `starts`.
pub fn huge_bytes(smaps: &str, starts: &[usize]) -> usize {
    let mut total = 0;
    let mut counting = false;
    for line in smaps.lines() {
        if let Some(mapping) = Mapping::parse(line) {
            counting = starts.contains(&mapping.range.start);
        } else if counting && let Some(value) = line.strip_prefix("AnonHugePages:") {
            let kib: usize = value.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
            total += kib * 1024;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;
    const HUGE: usize = 2 * MIB;
    const EXE: ((u32, u32), u64) = ((0xfe, 0), 10_010_625);

    fn line(start: usize, end: usize, perms: &str, file: Option<((u32, u32), u64)>) -> Mapping {
        let ((major, minor), inode) = file.unwrap_or(((0, 0), 0));
        // The file offset: the address's low 32 bits (the tables' base has none).
        let offset = start & 0xffff_ffff;
        Mapping::parse(&format!(
            "{start:x}-{end:x} {perms} {offset:08x} {major:02x}:{minor:02x} {inode} {}",
            if inode == 0 { "" } else { "/usr/bin/ecm" }
        ))
        .unwrap()
    }

    #[test]
    fn keeps_only_the_huge_pages_around_the_hot_code() {
        // A binary laid out by BOLT: the original code segment (file
        // offsets 0x3d_6500..) and BOLT's new one at 0x120_0000, whose first
        // 0x6_c377 bytes are the hot `.text`.
        let base = 0x5600_0000_0000;
        let original = Plan {
            target: base + 6 * MIB..base + 20 * MIB,
            copy: base + 6 * MIB..base + 20 * MIB,
            file_offset: 0x40_0000,
        };
        let new = Plan {
            target: base + 24 * MIB..base + 44 * MIB,
            copy: base + 24 * MIB..base + 0x2a0_2e44,
            file_offset: 0x120_0000,
        };
        let hot = 0x120_0000..0x126_c377;
        assert_eq!(
            keep_hot(vec![original.clone(), new.clone()], &hot, HUGE),
            [Plan {
                target: base + 24 * MIB..base + 26 * MIB,
                copy: base + 24 * MIB..base + 26 * MIB,
                file_offset: 0x120_0000,
            }]
        );
        // Hot code across a boundary keeps both huge pages; one that ends
        // in a plan's partly copied last page keeps the copy's end.
        // (file 0x130_0000..0x150_0000 is memory 25..27 MiB past the base).
        let across = 0x130_0000..0x150_0000;
        assert_eq!(
            keep_hot(vec![new.clone()], &across, HUGE)[0].target,
            base + 24 * MIB..base + 28 * MIB
        );
        let tail = 0x240_0000..0x240_1000;
        let kept = keep_hot(vec![new], &tail, HUGE);
        assert_eq!(kept[0].target, base + 42 * MIB..base + 44 * MIB);
        assert_eq!(kept[0].copy, base + 42 * MIB..base + 0x2a0_2e44);
        assert_eq!(kept[0].file_offset, 0x240_0000);
        // Hot code in no plan: nothing to move.
        assert!(keep_hot(vec![original], &hot, HUGE).is_empty());
    }

    #[test]
    fn parses_the_kernels_lines() {
        let maps = "\
560eef07b000-560eef200000 r-xp 003c5000 fe:00 10010625                   /tmp/ecm (deleted)
7f013180e000-7f0131964000 r-xp 00026000 fe:00 326279                     /usr/lib/x86_64-linux-gnu/libc.so.6
7ffd5a1f2000-7ffd5a213000 rw-p 00000000 00:00 0                          [stack]
7f0131964000-7f0131970000 rw-p 00000000 00:00 0
not a mapping
";
        let parsed = parse(maps);
        assert_eq!(parsed.len(), 4);
        assert_eq!(parsed[0].range, 0x560e_ef07_b000..0x560e_ef20_0000);
        assert_eq!(parsed[0].perms, "r-xp");
        assert_eq!(parsed[0].device, (0xfe, 0));
        assert_eq!(parsed[0].inode, 10_010_625);
        assert_eq!(parsed[0].path, "/tmp/ecm (deleted)");
        assert!(parsed[0].is_executable());
        assert!(!parsed[2].is_executable());
        assert_eq!(parsed[2].path, "[stack]");
        assert_eq!(parsed[3].path, "");
        assert_eq!(parsed[3].inode, 0);
    }

    #[test]
    fn plans_the_aligned_inside_when_neighbours_are_adjacent() {
        // The layout of a binary linked with 4 KiB segment alignment:
        // constants, code, RELRO and writable data back to back.
        let base = 0x5600_0000_0000;
        let maps = [
            line(base, base + 0x3c_6000, "r--p", Some(EXE)),
            line(base + 0x3c_6000, base + 0x132_8000, "r-xp", Some(EXE)),
            line(base + 0x132_8000, base + 0x138_2000, "r--p", Some(EXE)),
            line(base + 0x138_2000, base + 0x138_f000, "rw-p", Some(EXE)),
        ];
        assert_eq!(
            plan(&maps, EXE, HUGE),
            [Plan {
                target: base + 4 * MIB..base + 18 * MIB,
                copy: base + 4 * MIB..base + 18 * MIB,
                file_offset: 4 << 20,
            }]
        );
    }

    #[test]
    fn plans_outwards_into_unused_space() {
        // Segments aligned to 2 MiB (`-z max-page-size=2097152`): each one
        // is alone in its huge pages, with unused addresses around it.
        let base = 0x5600_0000_0000;
        let maps = [
            line(base, base + 0x3c_8000, "r--p", Some(EXE)),
            line(base + 0x5c_7000, base + 0x152_e000, "r-xp", Some(EXE)),
            line(base + 0x172_d000, base + 0x178_7000, "r--p", Some(EXE)),
            line(base + 0x198_6000, base + 0x199_3000, "rw-p", Some(EXE)),
            line(base + 0x199_3000, base + 0x1a0_0000, "rw-p", None),
        ];
        assert_eq!(
            plan(&maps, EXE, HUGE),
            [Plan {
                target: base + 4 * MIB..base + 22 * MIB,
                copy: base + 0x5c_7000..base + 0x152_e000,
                file_offset: 0x5c_7000,
            }]
        );
    }

    #[test]
    fn never_extends_past_the_first_or_last_mapping() {
        // Code alone in the table (as if at the bottom and the top of the
        // address space): only its aligned inside.
        let maps = [line(MIB, 5 * MIB + 0x1000, "r-xp", Some(EXE))];
        assert_eq!(
            plan(&maps, EXE, HUGE),
            [Plan {
                target: 2 * MIB..4 * MIB,
                copy: 2 * MIB..4 * MIB,
                file_offset: 2 << 20,
            }]
        );
    }

    #[test]
    fn finds_the_mapping_of_an_address() {
        let base = 0x5600_0000_0000;
        let maps = [
            line(base, base + MIB, "r--p", Some(EXE)),
            line(base + MIB, base + 3 * MIB, "r-xp", Some(EXE)),
        ];
        assert_eq!(containing(&maps, base + 2 * MIB), Some(&maps[1]));
        assert_eq!(containing(&maps, base + 3 * MIB), None);
    }

    #[test]
    fn skips_other_files_anonymous_code_data_and_small_segments() {
        let base = 0x5600_0000_0000;
        let libc = ((0xfe, 0), 326_279);
        let maps = [
            // Less than one huge page, with neighbours on both sides.
            line(base, base + MIB, "r--p", Some(EXE)),
            line(base + MIB, base + 3 * MIB, "r-xp", Some(EXE)),
            line(base + 3 * MIB, base + 4 * MIB, "rw-p", Some(EXE)),
            // Not the executable.
            line(base + 8 * MIB, base + 16 * MIB, "r-xp", Some(libc)),
            line(base + 16 * MIB, base + 24 * MIB, "r-xp", None),
            // The executable, but not code, or writable code.
            line(base + 24 * MIB, base + 32 * MIB, "r--p", Some(EXE)),
            line(base + 32 * MIB, base + 40 * MIB, "rwxp", Some(EXE)),
        ];
        assert_eq!(plan(&maps, EXE, HUGE), []);
    }

    #[test]
    fn sums_anon_huge_pages_of_the_remapped_ranges() {
        let smaps = "\
560eef07b000-560eef200000 r-xp 003c5000 fe:00 10010625                   /tmp/ecm
Rss:                1364 kB
AnonHugePages:         0 kB
560eef200000-560eefe00000 r-xp 00000000 00:00 0
Rss:               12288 kB
AnonHugePages:     12288 kB
560ef0000000-560ef0200000 r-xp 00000000 00:00 0
AnonHugePages:      2048 kB
7f013180e000-7f0131964000 rw-p 00000000 00:00 0
AnonHugePages:      4096 kB
";
        assert_eq!(huge_bytes(smaps, &[0x560e_ef20_0000]), 12 * MIB);
        assert_eq!(huge_bytes(smaps, &[0x560e_ef20_0000, 0x560e_f000_0000]), 14 * MIB);
        assert_eq!(huge_bytes(smaps, &[]), 0);
    }
}
