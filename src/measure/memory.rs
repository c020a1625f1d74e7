//! Memory views of an instance. (Being written.)
use crate::host::cgroup::InstanceCgroup;
use std::time::Duration;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcMem {
    pub pss_kib: u64,
    pub uss_kib: u64,
    pub rss_kib: u64,
}
pub fn rollup(_pids: &[i32]) -> ProcMem {
    ProcMem::default()
}
pub fn cgroup_mem_kib(_cg: &InstanceCgroup) -> Option<u64> {
    None
}
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostMem {
    pub mem_available_kib: u64,
    pub slab_kib: u64,
    pub anon_pages_kib: u64,
    pub kernel_stack_kib: u64,
    pub page_tables_kib: u64,
}
pub fn host_mem() -> HostMem {
    HostMem::default()
}
pub fn settle(_drop_caches: bool, _timeout: Duration) -> HostMem {
    HostMem::default()
}
pub fn guest_ram_resident_kib(_qemu_pid: i32, _guest_mib: u64) -> Option<u64> {
    None
}
