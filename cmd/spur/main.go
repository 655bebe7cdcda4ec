// Command spur is the command-line tool of a Spur (or gearmand) job server: it reads the
// server's state, acts on it, submits jobs and runs a shell command as a worker, all over
// the Gearman port (binary and text admin protocol, package client).
//
// One file per group of commands: admin.go (status, workers, jobs, result, pause, ...),
// schedules.go, dead.go, submit.go, work.go and top.go; output.go renders tables and JSON,
// errors.go maps failures to exit codes.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
