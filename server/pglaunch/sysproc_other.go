//go:build unix && !linux

package pglaunch

import "syscall"

// sysProcAttr runs Postgres as cred (when root), in its own process group so
// a Ctrl-C reaches the server first and the server stops Postgres in order.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true}
}
