package pglaunch

import "syscall"

// sysProcAttr runs Postgres as cred (when root) and makes the kernel stop it
// if the server dies without stopping it, so no orphan keeps the data folder.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGINT, Setpgid: true}
}
