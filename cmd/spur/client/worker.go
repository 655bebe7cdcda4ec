package client

import (
	"errors"

	"github.com/spur-gearman/spur/codec"
)

// Job is a job assigned to a worker.
type Job struct {
	Handle, Function, Unique string
	Data                     []byte
}

// Worker is a connection registered for some functions, taking one job at a time:
//
//	GRAB_JOB_UNIQ -> JOB_ASSIGN_UNIQ: run it, WORK_COMPLETE / WORK_FAIL / WORK_EXCEPTION
//	              -> NO_JOB: PRE_SLEEP, wait for NOOP, grab again
type Worker struct {
	c          *Client
	exceptions bool
}

// NewWorker registers c for fns (CAN_DO each), naming the connection id (SET_CLIENT_ID, shown
// by `workers`; none when empty), and asks whether the server takes exceptions.
func (c *Client) NewWorker(id string, fns ...string) (*Worker, error) {
	if id != "" {
		if err := c.send(codec.SetClientID, []byte(id)); err != nil {
			return nil, err
		}
	}
	for _, fn := range fns {
		if err := c.send(codec.CanDo, []byte(fn)); err != nil {
			return nil, err
		}
	}
	ok, err := c.Option("exceptions")
	if err != nil {
		return nil, err
	}
	return &Worker{c: c, exceptions: ok}, nil
}

// Exceptions reports whether the server accepted the exceptions option, and so knows
// WORK_EXCEPTION.
func (w *Worker) Exceptions() bool { return w.exceptions }

// Next waits for a job. It returns (nil, nil) once stop is closed while it waits, and never
// grabs a job after stop is closed.
func (w *Worker) Next(stop <-chan struct{}) (*Job, error) {
	for {
		if closed(stop) {
			return nil, nil
		}
		if err := w.c.send(codec.GrabJobUniq); err != nil {
			return nil, err
		}
		p, err := w.grabReply()
		if err != nil {
			return nil, err
		}
		if p.typ == codec.JobAssignUniq {
			return &Job{Handle: string(p.arg(0)), Function: string(p.arg(1)), Unique: string(p.arg(2)), Data: p.arg(3)}, nil
		}
		if err := w.c.send(codec.PreSleep); err != nil {
			return nil, err
		}
		if err := w.sleep(stop); err != nil {
			return nil, err
		}
	}
}

// grabReply reads the answer to GRAB_JOB_UNIQ, passing by what may arrive before it: a NOOP
// sent while the worker was not listening, an ERROR JOB_NOT_FOUND about a result the server
// no longer wanted (the job was cancelled, or its CAN_DO_TIMEOUT ran out).
func (w *Worker) grabReply() (packet, error) {
	for {
		p, err := w.c.recv(true)
		var se *ServerError
		switch {
		case errors.As(err, &se) && se.Code == codec.CodeJobNotFound:
			continue
		case err != nil:
			return p, err
		case p.typ == codec.JobAssignUniq, p.typ == codec.NoJob:
			return p, nil
		case p.typ == codec.Noop:
			continue
		default:
			return p, unexpected(p, "JOB_ASSIGN_UNIQ or NO_JOB")
		}
	}
}

// sleep waits for NOOP, or for stop.
func (w *Worker) sleep(stop <-chan struct{}) error {
	woken, watcher := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watcher)
		select {
		case <-stop:
			w.c.Interrupt()
		case <-woken:
		}
	}()
	// The watcher is gone before sleep returns: a late Interrupt must not cut the next read.
	defer func() { close(woken); <-watcher }()
	for {
		p, err := w.c.recv(false)
		var se *ServerError
		switch {
		case closed(stop):
			return nil
		case errors.As(err, &se) && se.Code == codec.CodeJobNotFound:
			continue
		case err != nil:
			return err
		case p.typ == codec.Noop:
			return nil
		}
	}
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Complete ends the job with its result.
func (w *Worker) Complete(j *Job, data []byte) error {
	return w.c.send(codec.WorkComplete, []byte(j.Handle), data)
}

// Fail ends the job as failed.
func (w *Worker) Fail(j *Job) error { return w.c.send(codec.WorkFail, []byte(j.Handle)) }

// Exception ends the job with an exception (data its text); a server without exceptions
// gets WORK_FAIL instead.
func (w *Worker) Exception(j *Job, data []byte) error {
	if !w.exceptions {
		return w.Fail(j)
	}
	return w.c.send(codec.WorkException, []byte(j.Handle), data)
}
