//! What a batch does differently per backend kind, in one place: the batch steps ask here and
//! never match on the kind themselves. Almost all of it is about VMs, whose instances boot a
//! kernel of their own behind a hypervisor: their agent cannot be seen from the host, their
//! facts describe a guest (memory, kernel threads, kernel memory), QEMU's memory beyond guest
//! RAM is the VMM's overhead, and identical pages across guests are worth merging (KSM).

use crate::agent::Facts;
use crate::backend::Instance;
use crate::results::record::Sample;
use crate::scenario::BackendKind;

/// Whether instances of `kind` run a kernel of their own behind a hypervisor (a guest).
pub fn own_kernel(kind: BackendKind) -> bool {
    kind == BackendKind::Vm
}

/// Whether each instance of `kind` runs a user-space kernel of its own on the host: gVisor's
/// Sentry (with its Gofer) per sandbox. Each counts as a distinct kernel, and the memory of
/// those processes is its kernel's memory.
pub fn user_space_kernel(kind: BackendKind) -> bool {
    kind == BackendKind::Gvisor
}

/// Whether one launch right after a baseline's settle is worth it to re-warm the host's
/// caches: the settle slows the next launches of a host-kernel backend by milliseconds, which
/// a VM's seconds-long boot does not notice (and a re-warm would cost a boot).
pub fn rewarm_after_settle(kind: BackendKind) -> bool {
    !own_kernel(kind)
}

/// Whether KSM merging is tried for a batch of `kind` when the scenario asks for it: only
/// guests hold large identical memory (their kernels, their page caches).
pub fn merges_pages(kind: BackendKind) -> bool {
    own_kernel(kind)
}

/// What the death watch calls an instance's first host process, in the row's `error`.
pub fn watched_process(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Vm => "qemu",
        BackendKind::Unshare => "unshare",
        BackendKind::Gvisor => "sentry",
        _ => "agent",
    }
}

/// The host pid of the instance's agent, whose isolation is read back: unshare's agent is its
/// child; a VM's agent runs behind the hypervisor, where the host cannot look; gVisor's agent
/// is no host process either, and what is read back is the Sentry's: the host's boundary
/// around the sandbox (the profile itself is applied by the Sentry, out of the host's sight).
pub fn agent_pid(kind: BackendKind, inst: &dyn Instance) -> Option<i32> {
    match kind {
        BackendKind::Vm => None,
        BackendKind::Unshare => crate::host::with_descendants(inst.pid())
            .into_iter()
            .find(|p| *p != inst.pid()),
        _ => Some(inst.pid()),
    }
}

/// QEMU's private memory that is not guest RAM: the VMM's own cost (None for other kinds).
pub fn vmm_overhead_kib(
    kind: BackendKind,
    inst: &dyn Instance,
    guest_mib: u64,
    uss_kib: u64,
) -> Option<u64> {
    if !own_kernel(kind) {
        return None;
    }
    crate::measure::memory::guest_ram_resident_kib(inst.pid(), guest_mib)
        .map(|g| uss_kib.saturating_sub(g))
}

/// The guest's own view in a sample row (its meminfo, kernel memory, kernel threads); other
/// kinds' facts describe the host, and these columns stay empty.
pub fn guest_columns(kind: BackendKind, row: &mut Sample, f: &Facts) {
    if !own_kernel(kind) {
        return;
    }
    row.guest_mem_total_kib = f.mem_total_kib;
    row.guest_mem_used_kib = f
        .mem_total_kib
        .zip(f.mem_available_kib)
        .map(|(t, a)| t.saturating_sub(a));
    row.guest_kernel_kib = f.kernel_kib();
    row.guest_kthreads = f.kthreads;
}

/// The guests' kernel threads and kernel memory (KiB) summed over `facts`; None for kinds
/// without a kernel of their own, and when no instance is alive.
pub fn guest_totals<'a>(
    kind: BackendKind,
    facts: impl Iterator<Item = &'a Facts>,
) -> (Option<u64>, Option<u64>) {
    if !own_kernel(kind) {
        return (None, None);
    }
    facts.fold((None, None), |(kthreads, kernel), f| {
        (
            Some(kthreads.unwrap_or(0) + u64::from(f.kthreads.unwrap_or(0))),
            Some(kernel.unwrap_or(0) + f.kernel_kib().unwrap_or(0)),
        )
    })
}

/// gVisor's kernels among `alive` instances of `kind`: how many Sentries (`runsc-sandbox`)
/// their processes hold, and the PSS (KiB) of those and of the Gofers (`runsc-gofer`). None
/// for other kinds.
pub fn user_space_kernels<'a>(
    kind: BackendKind,
    alive: impl Iterator<Item = &'a dyn Instance>,
) -> Option<(u32, u64)> {
    use crate::backend::oci::{GOFER_COMM, SENTRY_COMM, argv0_is};
    if !user_space_kernel(kind) {
        return None;
    }
    let (mut sentries, mut kernel_pids) = (0u32, Vec::new());
    for inst in alive {
        for pid in inst.pids() {
            if argv0_is(pid, SENTRY_COMM) {
                sentries += 1;
                kernel_pids.push(pid);
            } else if argv0_is(pid, GOFER_COMM) {
                kernel_pids.push(pid);
            }
        }
    }
    Some((
        sentries,
        crate::measure::memory::rollup(&kernel_pids).pss_kib,
    ))
}

/// Kernel memory per kernel, KiB: a guest's own (the guests' sum over the live instances; for
/// gVisor, `guest_kernel_kib` is the Sentries' and Gofers' PSS), or
/// for host-kernel backends the host's kernel-memory increase shared out over the instances.
pub fn kernel_kib_per_kernel(
    kind: BackendKind,
    guest_kernel_kib: Option<u64>,
    host_kernel_kib_delta: Option<i64>,
    alive: usize,
) -> Option<f64> {
    if alive == 0 {
        return None;
    }
    if own_kernel(kind) || user_space_kernel(kind) {
        guest_kernel_kib.map(|g| g as f64 / alive as f64)
    } else {
        host_kernel_kib_delta.map(|d| d as f64 / alive as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(kthreads: u32, slab: u64) -> Facts {
        Facts {
            kthreads: Some(kthreads),
            slab_kib: Some(slab),
            kernel_stack_kib: Some(10),
            page_tables_kib: Some(5),
            mem_total_kib: Some(1000),
            mem_available_kib: Some(600),
            ..Facts::default()
        }
    }

    #[test]
    fn only_vms_sum_guest_kernels_and_get_guest_columns() {
        let f = [facts(50, 100), facts(60, 200)];
        assert_eq!(
            guest_totals(BackendKind::Vm, f.iter()),
            (Some(110), Some(115 + 215))
        );
        assert_eq!(guest_totals(BackendKind::Vm, [].iter()), (None, None));
        assert_eq!(guest_totals(BackendKind::Container, f.iter()), (None, None));

        let mut row = Sample::default();
        guest_columns(BackendKind::Container, &mut row, &f[0]);
        assert_eq!(row.guest_mem_total_kib, None);
        guest_columns(BackendKind::Vm, &mut row, &f[0]);
        assert_eq!(
            (row.guest_mem_total_kib, row.guest_mem_used_kib),
            (Some(1000), Some(400))
        );
        assert_eq!(
            (row.guest_kernel_kib, row.guest_kthreads),
            (Some(115), Some(50))
        );
    }

    #[test]
    fn kernel_memory_per_kernel_is_the_guests_for_vms_and_the_hosts_otherwise() {
        assert_eq!(
            kernel_kib_per_kernel(BackendKind::Vm, Some(300), Some(9), 2),
            Some(150.0)
        );
        assert_eq!(
            kernel_kib_per_kernel(BackendKind::Vm, None, Some(9), 2),
            None
        );
        assert_eq!(
            kernel_kib_per_kernel(BackendKind::Process, Some(300), Some(-8), 4),
            Some(-2.0)
        );
        assert_eq!(
            kernel_kib_per_kernel(BackendKind::Process, None, Some(8), 0),
            None
        );
    }

    #[test]
    fn the_watch_names_each_kinds_first_process() {
        assert_eq!(watched_process(BackendKind::Vm), "qemu");
        assert_eq!(watched_process(BackendKind::Unshare), "unshare");
        assert_eq!(watched_process(BackendKind::Oci), "agent");
        assert!(
            rewarm_after_settle(BackendKind::Container) && !rewarm_after_settle(BackendKind::Vm)
        );
        assert!(merges_pages(BackendKind::Vm) && !merges_pages(BackendKind::Process));
    }
}
