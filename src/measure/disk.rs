//! Disk views. (Being written.)
use std::path::Path;
pub fn allocated_kib(_path: &Path) -> u64 {
    0
}
pub fn apparent_kib(_path: &Path) -> u64 {
    0
}
