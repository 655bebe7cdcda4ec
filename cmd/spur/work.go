package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/spur-gearman/spur/cmd/spur/client"
)

// maxStderr bounds the stderr kept of a failed command, sent as its WORK_EXCEPTION.
const maxStderr = 64 << 10

func (a *app) workCmd() *cobra.Command {
	var (
		concurrency int
		id          string
	)
	c := &cobra.Command{
		Use:   "work FN [FN...] -- CMD [ARGS...]",
		Short: "be a worker: run CMD for each job, its data on stdin, its stdout the result",
		Long: `Registers for the functions and runs CMD once per job: the job's data on its stdin, its
stdout the job's result (WORK_COMPLETE). A non-zero exit fails the job: WORK_EXCEPTION with
its stderr when the server takes exceptions (and stderr is not empty), else WORK_FAIL.
CMD sees GEARMAN_HANDLE, GEARMAN_FUNCTION and GEARMAN_UNIQUE in its environment.

On SIGTERM or SIGINT spur finishes the jobs it runs, takes no new one and exits 0. CMD runs
in its own process group, so that a Ctrl-C in the terminal does not kill it mid-job.`,
		Example: `  spur work resize -- convert - -resize 640x480 -
  spur work wc --concurrency 4 -- wc -c`,
		Args: args(func(cmd *cobra.Command, argv []string) error {
			dash := cmd.ArgsLenAtDash()
			if dash < 1 || dash == len(argv) {
				return errors.New("want FN [FN...] -- CMD [ARGS...]")
			}
			return nil
		}),
		RunE: func(cmd *cobra.Command, argv []string) error {
			dash := cmd.ArgsLenAtDash()
			fns, command := argv[:dash], argv[dash:]
			if concurrency < 1 {
				return usagef("--concurrency %d: at least 1", concurrency)
			}
			if id == "" {
				host, _ := os.Hostname()
				id = "spur-work-" + host + "-" + strconv.Itoa(os.Getpid())
			}
			stop := make(chan struct{})
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
			defer signal.Stop(sig)
			go func() {
				s := <-sig
				fmt.Fprintf(cmd.ErrOrStderr(), "spur work: %s: finishing the running jobs, taking no new one\n", s)
				close(stop)
			}()
			errs := make(chan error, concurrency)
			var wg sync.WaitGroup
			for range concurrency {
				c, err := a.dial()
				if err != nil {
					return err
				}
				defer c.Close()
				w, err := c.NewWorker(id, fns...)
				if err != nil {
					return err
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- work(w, command, stop, cmd.ErrOrStderr())
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
	c.Flags().IntVar(&concurrency, "concurrency", 1, "jobs run at once (one connection each)")
	c.Flags().StringVar(&id, "id", "", "the worker's client id, shown by `spur workers` (default spur-work-HOST-PID)")
	return c
}

// work takes jobs until stop, running command for each.
func work(w *client.Worker, command []string, stop <-chan struct{}, log io.Writer) error {
	for {
		j, err := w.Next(stop)
		if err != nil || j == nil {
			return err
		}
		start := time.Now()
		out, errOut, runErr := runJob(j, command)
		took := time.Since(start).Round(time.Millisecond)
		switch {
		case runErr == nil:
			err = w.Complete(j, out)
			fmt.Fprintf(log, "spur work: %s %s: done in %s\n", j.Function, j.Handle, took)
		case w.Exceptions() && len(errOut) > 0:
			err = w.Exception(j, errOut)
			fmt.Fprintf(log, "spur work: %s %s: %v in %s (exception sent)\n", j.Function, j.Handle, runErr, took)
		default:
			err = w.Fail(j)
			fmt.Fprintf(log, "spur work: %s %s: %v in %s (failed)\n", j.Function, j.Handle, runErr, took)
		}
		if err != nil {
			return err
		}
	}
}

// runJob runs the command with the job's data on stdin; it returns stdout, the first
// maxStderr bytes of stderr, and why the command failed (nil when it exited 0).
func runJob(j *client.Job, command []string) (stdout, stderr []byte, err error) {
	c := exec.Command(command[0], command[1:]...)
	c.Stdin = bytes.NewReader(j.Data)
	var out bytes.Buffer
	errOut := &capped{max: maxStderr}
	c.Stdout, c.Stderr = &out, io.MultiWriter(errOut, os.Stderr)
	c.Env = append(os.Environ(), "GEARMAN_HANDLE="+j.Handle, "GEARMAN_FUNCTION="+j.Function, "GEARMAN_UNIQUE="+j.Unique)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a terminal's Ctrl-C is for spur, not the job
	err = c.Run()
	return out.Bytes(), errOut.Bytes(), err
}

// capped keeps the first max bytes written to it and drops the rest.
type capped struct {
	bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
