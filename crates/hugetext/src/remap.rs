//! The system calls: copy one planned range into a fresh anonymous mapping
//! that may use transparent huge pages, and move that mapping over the
//! original. The technique of Chromium's `hugepage_text` and HHVM.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::ptr;

use crate::Error;
use crate::maps::Plan;

/// `MADV_COLLAPSE` (Linux 6.1): make huge pages of the range now, rather
/// than at fault time or whenever `khugepaged` gets to it. Older kernels
/// answer `EINVAL`, which is ignored: the pages are then made as the copy
/// faults them in (THP `defrag` permitting) or later by `khugepaged`.
const MADV_COLLAPSE: libc::c_int = 25;

fn sys(call: &'static str) -> Error {
    Error::System {
        call,
        source: io::Error::last_os_error(),
    }
}

/// Whether transparent huge pages are disabled for this process
/// (`prctl(PR_SET_THP_DISABLE)`, inherited across `exec`).
pub(crate) fn disabled_for_process() -> bool {
    // SAFETY: PR_GET_THP_DISABLE reads a flag of the calling process.
    unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1 }
}

/// A mapping this module created, unmapped on drop unless forgotten.
struct Owned {
    address: usize,
    len: usize,
}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: `address..address + len` is a mapping this module created
        // and nothing else refers to.
        unsafe {
            libc::munmap(self.address as *mut libc::c_void, self.len);
        }
    }
}

/// Claims `start..end` (unused address space) with an inaccessible
/// mapping, so that nothing can be placed there before the move, and the
/// move replaces only this module's own mappings.
fn reserve(start: usize, end: usize) -> Result<Option<Owned>, Error> {
    if start == end {
        return Ok(None);
    }
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping.
    let got = unsafe {
        libc::mmap(
            start as *mut libc::c_void,
            end - start,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if got == libc::MAP_FAILED {
        return Err(Error::Conflict);
    }
    let owned = Owned {
        address: got as usize,
        len: end - start,
    };
    // Kernels before 4.17 ignore the flag and may map elsewhere: `owned`
    // gives that back on the way out.
    if owned.address == start {
        Ok(Some(owned))
    } else {
        Err(Error::Conflict)
    }
}

/// Remaps `plan.target` onto a copy of itself that may be backed by huge
/// pages. The copy is read from `file` (the executable) and must equal the
/// code in memory, else nothing changes ([`Error::CodeDiffers`]: a
/// breakpoint or uprobe is set in it, or `file` is not the executable).
///
/// # Safety
///
/// `plan` must come from [`crate::maps::plan`] on the current
/// `/proc/self/maps`, for code mapped from `file`. No other thread may run
/// while this is called (none can execute code that is being replaced by
/// identical code, or change the mappings).
pub(crate) unsafe fn remap(plan: &Plan, huge_page: usize, file: &File) -> Result<(), Error> {
    let len = plan.target.len();
    let below = reserve(plan.target.start, plan.copy.start)?;
    let above = reserve(plan.copy.end, plan.target.end)?;
    // Over-allocate by one huge page so that an aligned start exists
    // inside, then give back what lies outside it.
    // SAFETY: a new private anonymous mapping touches no existing memory.
    let raw = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len + huge_page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return Err(sys("mmap"));
    }
    let raw = raw as usize;
    let aligned = (raw + huge_page - 1) & !(huge_page - 1);
    let head = aligned - raw;
    let tail = huge_page - head;
    if head > 0 {
        // SAFETY: the first `head` bytes of the mapping just created.
        unsafe { libc::munmap(raw as *mut libc::c_void, head) };
    }
    // SAFETY: the last `tail` bytes (at least one page) of the mapping just
    // created.
    unsafe { libc::munmap((aligned + len) as *mut libc::c_void, tail) };
    let staging = Owned { address: aligned, len };
    // Ask for huge pages before the first write, so that the copy faults
    // them in as huge pages.
    // SAFETY: advice on the mapping owned by `staging`.
    if unsafe { libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE) } != 0 {
        return Err(sys("madvise(MADV_HUGEPAGE)"));
    }
    let offset = plan.copy.start - plan.target.start;
    // SAFETY: `offset..offset + copy.len()` lies within the staging mapping
    // (`copy` lies within `target`), which is writable, new and referred to
    // by nothing else.
    let copy = unsafe { std::slice::from_raw_parts_mut((aligned + offset) as *mut u8, plan.copy.len()) };
    file.read_exact_at(copy, plan.file_offset)
        .map_err(|source| Error::Read {
            path: "/proc/self/exe",
            source,
        })?;
    // SAFETY: `plan.copy` is mapped readable (the caller's contract) and is
    // not written while this slice lives (code is read-only).
    let running = unsafe { std::slice::from_raw_parts(plan.copy.start as *const u8, plan.copy.len()) };
    if copy != running {
        return Err(Error::CodeDiffers);
    }
    // SAFETY: advice on the mapping owned by `staging`; failure is fine.
    unsafe { libc::madvise(aligned as *mut libc::c_void, len, MADV_COLLAPSE) };
    // SAFETY: changes the protection of the mapping owned by `staging`
    // only; it is written no more.
    if unsafe { libc::mprotect(aligned as *mut libc::c_void, len, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
        return Err(sys("mprotect"));
    }
    // One system call replaces the original pages with the copy: the code
    // running now, this function included, continues on identical bytes.
    // The kernel unmaps the target before it moves the copy in; it can
    // fail after that only for lack of memory, which this process would
    // not survive (the caller checked the map count limit beforehand).
    // SAFETY: the target holds the executable's code (the same bytes as the
    // copy, checked above, with the same protection) and this module's
    // reservations; no other thread runs.
    let moved = unsafe {
        libc::mremap(
            aligned as *mut libc::c_void,
            len,
            len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            plan.target.start as *mut libc::c_void,
        )
    };
    if moved == libc::MAP_FAILED {
        return Err(sys("mremap"));
    }
    // The copy now lives at the target and the reservations are gone,
    // replaced by it.
    std::mem::forget(staging);
    std::mem::forget(below);
    std::mem::forget(above);
    Ok(())
}
