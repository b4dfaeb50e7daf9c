package eventstore

import "syscall"

// tmpfsMagic is statfs's f_type of tmpfs (linux/magic.h).
const tmpfsMagic = 0x01021994

// isTmpfs reports whether dir is on tmpfs.
func isTmpfs(dir string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && st.Type == tmpfsMagic
}
