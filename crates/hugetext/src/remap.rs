//! The system calls: copy one planned range into a fresh anonymous mapping
//! that may use transparent huge pages, and move that mapping over the
//! original. The technique of Chromium's `hugepage_text` and HHVM.

use std::io;
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

/// An anonymous mapping that is unmapped on drop unless it was moved.
struct Staging {
    address: *mut libc::c_void,
    len: usize,
}

impl Drop for Staging {
    fn drop(&mut self) {
        // SAFETY: `address..address + len` is a mapping this module created
        // and nothing else refers to.
        unsafe {
            libc::munmap(self.address, self.len);
        }
    }
}

/// Remaps `plan.target` onto a copy of itself that may be backed by huge
/// pages.
///
/// # Safety
///
/// `plan` must come from [`crate::maps::plan`] on the current
/// `/proc/self/maps`: `plan.copy` is readable, the rest of `plan.target` is
/// not mapped. No other thread may run while this is called (none can
/// change the mappings between the plan and the move, or execute code that
/// is being replaced by identical code).
pub(crate) unsafe fn remap(plan: &Plan, huge_page: usize) -> Result<(), Error> {
    let len = plan.target.len();
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
    let raw_start = raw as usize;
    let aligned = (raw_start + huge_page - 1) & !(huge_page - 1);
    let head = aligned - raw_start;
    let tail = huge_page - head;
    if head > 0 {
        // SAFETY: the first `head` bytes of the mapping just created.
        unsafe { libc::munmap(raw, head) };
    }
    if tail > 0 {
        // SAFETY: the last `tail` bytes of the mapping just created.
        unsafe { libc::munmap((aligned + len) as *mut libc::c_void, tail) };
    }
    let staging = Staging {
        address: aligned as *mut libc::c_void,
        len,
    };
    // Ask for huge pages before the first write, so that the copy faults
    // them in as huge pages.
    // SAFETY: advice on the mapping owned by `staging`.
    if unsafe { libc::madvise(staging.address, len, libc::MADV_HUGEPAGE) } != 0 {
        return Err(sys("madvise(MADV_HUGEPAGE)"));
    }
    // SAFETY: `plan.copy` is readable (the caller's contract) and lies
    // within `plan.target`, so its offset in the staging mapping is in
    // bounds; the two ranges cannot overlap, as the staging mapping is new.
    unsafe {
        ptr::copy_nonoverlapping(
            plan.copy.start as *const u8,
            (aligned + (plan.copy.start - plan.target.start)) as *mut u8,
            plan.copy.len(),
        );
    }
    // SAFETY: advice on the mapping owned by `staging`; failure is fine.
    unsafe { libc::madvise(staging.address, len, MADV_COLLAPSE) };
    // SAFETY: changes the protection of the mapping owned by `staging`
    // only; it is written no more.
    if unsafe { libc::mprotect(staging.address, len, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
        return Err(sys("mprotect"));
    }
    // One system call replaces the original pages with the copy: the code
    // running now, this function included, continues on identical bytes.
    // SAFETY: the target holds the executable's code (read-only, the same
    // bytes as the copy, with the same protection) and unmapped space; no
    // other thread runs.
    let moved = unsafe {
        libc::mremap(
            staging.address,
            len,
            len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            plan.target.start as *mut libc::c_void,
        )
    };
    if moved == libc::MAP_FAILED {
        return Err(sys("mremap"));
    }
    std::mem::forget(staging);
    Ok(())
}
