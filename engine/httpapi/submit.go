package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/engine"
	"github.com/spur-gearman/spur/queue"
)

// Submitting, for the JSON API and gearmand's HTTP interface alike. A background job goes
// through the engine's typed SubmitBackground. A foreground job is a Gearman client in the
// process: a session the request's goroutine drives as its event loop, fed a SUBMIT_JOB and
// read for the WORK_* packets of the job, then closed when the job ends or the request
// does. So a foreground job over HTTP behaves exactly as one over the Gearman port:
// coalescing, status, cancel, and a client that goes away before the end (its job is
// abandoned: a queued one is dropped, a running one runs on and its result is dropped).

// job is a submit, whatever door it came through.
type job struct {
	fn, unique, data []byte
	prio             queue.Priority
	runAt            int64 // unix seconds; background only
}

// checkSubmit refuses a function name or unique the protocol would.
func checkSubmit(fn, unique string) error {
	if fn == "" {
		return badRequest(`"function" is required`)
	}
	if r := codec.CheckSubmit([]byte(fn), []byte(unique), nil); r != nil {
		return badRequest(r.Text)
	}
	return nil
}

// admit checks a submit before it is made: its sizes, that who may submit to its function,
// that the engine takes jobs.
func admit(e *engine.Engine, who *engine.Identity, j *job) error {
	if err := checkSubmit(string(j.fn), string(j.unique)); err != nil {
		return err
	}
	if err := e.Allow(who, engine.ActSubmit, j.fn); err != nil {
		return denied(err)
	}
	if e.Draining() {
		return engineError(engine.ErrShuttingDown)
	}
	return nil
}

// submitBackground queues j as a background job and returns its handle once it is durable.
func submitBackground(e *engine.Engine, who *engine.Identity, j *job) (string, error) {
	if err := admit(e, who, j); err != nil {
		return "", err
	}
	type created struct {
		handle string
		err    error
	}
	done := make(chan created, 1)
	e.SubmitBackground(engine.SubmitRequest{Function: j.fn, Unique: j.unique, Data: j.data, Priority: j.prio, RunAt: j.runAt},
		who, func(h string, err error) { done <- created{h, err} })
	c := <-done
	if c.err != nil {
		return "", engineError(c.err)
	}
	return c.handle, nil
}

// outcome is how a foreground job ended.
type outcome struct {
	handle   string
	command  codec.Type // WORK_COMPLETE, WORK_FAIL or WORK_EXCEPTION
	data     []byte     // its WORK_DATA chunks, then the data of its last packet
	warnings [][]byte
	num, den uint64
}

// maxResult bounds what a foreground job's data may add up to over HTTP.
const maxResult = 256 << 20

// errTimeout is a foreground wait that ran out; the handle is in the outcome.
var errTimeout = &apiError{http.StatusGatewayTimeout, "TIMEOUT", "the job did not end in time; it was abandoned as when a Gearman client goes away"}

// loopback is the transport of an in-process session: the request's goroutine is its loop,
// woken through a channel.
type loopback struct{ wake chan struct{} }

func (l *loopback) Wake() error {
	select {
	case l.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
	return nil
}

// submitForeground runs j as a foreground job for who until it ends or ctx does (then
// errTimeout with the handle, when ctx's deadline passed, or ctx's error).
func submitForeground(ctx context.Context, e *engine.Engine, who *engine.Identity, j *job) (outcome, error) {
	var out outcome
	if err := admit(e, who, j); err != nil {
		return out, err
	}
	typ := codec.SubmitJob
	switch j.prio {
	case queue.High:
		typ = codec.SubmitJobHigh
	case queue.Low:
		typ = codec.SubmitJobLow
	}
	t := &loopback{wake: make(chan struct{}, 1)}
	s := e.NewSessionAs(t, -1, *who)
	defer s.Close()
	// Exceptions are asked for, as libgearman's clients do, so that WORK_EXCEPTION is told.
	req := codec.AppendRequest(nil, codec.OptionReq, []byte("exceptions"))
	req = codec.AppendRequest(req, typ, j.fn, j.unique, j.data)
	if _, closed := s.Feed(req); closed {
		return out, &apiError{http.StatusInternalServerError, "INTERNAL", "the engine refused the submit packet"}
	}
	var buf []byte
	for {
		b, overflow := s.TakeOutput()
		if b != nil {
			buf = append(buf, b.B...)
			s.ReleaseOutput(b)
		}
		for {
			p, n, err := codec.Parse(buf, math.MaxUint32)
			if err != nil {
				return out, &apiError{http.StatusInternalServerError, "INTERNAL", "cannot read the engine's reply: " + err.Error()}
			}
			if n == 0 {
				break
			}
			done, err := out.take(&p)
			if done || err != nil {
				return out, err
			}
			buf = buf[n:]
		}
		if overflow || len(out.data) > maxResult {
			return out, &apiError{http.StatusInternalServerError, "INTERNAL", "the job's data is larger than " + strconv.Itoa(maxResult) + " bytes"}
		}
		if len(buf) == 0 {
			buf = nil // let a large packet's buffer go
		}
		select {
		case <-t.wake:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) && out.handle != "" {
				return out, errTimeout
			}
			return out, ctx.Err()
		}
	}
}

// take adds one packet of the engine to the outcome; done once the job has ended.
func (o *outcome) take(p *codec.Packet) (done bool, err error) {
	switch p.Type {
	case codec.OptionRes:
	case codec.JobCreated:
		o.handle = string(p.Args[0])
	case codec.WorkData:
		o.data = append(o.data, p.Args[1]...)
	case codec.WorkWarning:
		o.warnings = append(o.warnings, append([]byte{}, p.Args[1]...))
	case codec.WorkStatus:
		o.num, _ = strconv.ParseUint(string(p.Args[1]), 10, 64)
		o.den, _ = strconv.ParseUint(string(p.Args[2]), 10, 64)
	case codec.WorkComplete, codec.WorkException:
		o.command, o.data = p.Type, append(o.data, p.Args[1]...)
		return true, nil
	case codec.WorkFail:
		o.command = p.Type
		return true, nil
	case codec.Error:
		code, text := string(p.Args[0]), string(p.Args[1])
		switch {
		case code == codec.CodePermissionDenied:
			return true, &apiError{http.StatusForbidden, "PERMISSION_DENIED", text}
		case text == codec.ReplyQueueFull.Text:
			return true, engineError(engine.ErrQueueFull)
		case text == codec.ReplyShuttingDown.Text:
			return true, engineError(engine.ErrShuttingDown)
		case code == codec.CodeQueueError:
			return true, &apiError{http.StatusServiceUnavailable, "QUEUE_ERROR", text}
		}
		return true, badRequest(code + ": " + text)
	}
	return false, nil
}

// submitBody is the body of POST /api/jobs.
type submitBody struct {
	Function string `json:"function"`
	payload
	Unique     string          `json:"unique"`
	Priority   string          `json:"priority"`
	Background bool            `json:"background"`
	At         json.RawMessage `json:"at"`
	In         json.RawMessage `json:"in"`
	Wait       *float64        `json:"wait"`
}

// Foreground waits: the default, and the most a request may ask for.
const (
	defaultWait = 30 * time.Second
	maxWait     = 300 * time.Second
)

func (a *api) submit(w http.ResponseWriter, r *http.Request, who *engine.Identity) {
	var body submitBody
	if err := a.readJSON(w, r, &body); err != nil {
		writeError(w, err)
		return
	}
	j, wait, err := body.job(time.Now())
	if err != nil {
		writeError(w, err)
		return
	}
	if body.Background {
		h, err := submitBackground(a.e, who, j)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"handle": h})
		return
	}
	// The write deadline of the server must not cut the wait short.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + 10*time.Second))
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	out, err := submitForeground(ctx, a.e, who, j)
	if err == errTimeout {
		writeErrorWith(w, err, map[string]any{"handle": out.handle})
		return
	}
	if err != nil {
		if ae := (*apiError)(nil); errors.As(err, &ae) {
			writeError(w, err)
		}
		return // the client went away: nobody to answer
	}
	warnings := []payload{}
	for _, wd := range out.warnings {
		warnings = append(warnings, payloadOf(wd))
	}
	res := struct {
		Handle  string `json:"handle"`
		Outcome string `json:"outcome"`
		payload
		Warnings []payload        `json:"warnings"`
		Status   map[string]int64 `json:"status"`
	}{Handle: out.handle, Outcome: commandOutcome(out.command), payload: payloadOf(out.data), Warnings: warnings,
		Status: map[string]int64{"numerator": int64(out.num), "denominator": int64(out.den)}}
	writeJSON(w, http.StatusOK, res)
}

func commandOutcome(t codec.Type) string {
	switch t {
	case codec.WorkComplete:
		return "complete"
	case codec.WorkException:
		return "exception"
	}
	return "fail"
}

// job checks the body and returns the submit it asks for, and the foreground wait.
func (b *submitBody) job(t time.Time) (*job, time.Duration, error) {
	if err := checkSubmit(b.Function, b.Unique); err != nil {
		return nil, 0, err
	}
	prio, err := priorityOf(b.Priority)
	if err != nil {
		return nil, 0, err
	}
	data, err := b.bytes()
	if err != nil {
		return nil, 0, err
	}
	j := &job{fn: []byte(b.Function), unique: []byte(b.Unique), data: data, prio: prio}
	var runAt time.Time
	switch {
	case len(b.At) > 0 && len(b.In) > 0:
		return nil, 0, badRequest(`give "at" or "in", not both`)
	case len(b.At) > 0:
		if runAt, err = timeOf(b.At); err != nil {
			return nil, 0, badRequest("at: " + err.Error())
		}
	case len(b.In) > 0:
		d, err := durationOf(b.In)
		if err != nil || d < 0 {
			return nil, 0, badRequest(`in: want seconds (90) or a duration ("90s")`)
		}
		runAt = t.Add(d)
	}
	if !runAt.IsZero() {
		if !b.Background {
			return nil, 0, badRequest(`a job with "at" or "in" must be a background job ("background": true)`)
		}
		// The engine schedules in whole seconds; round up, so that it never runs early.
		j.runAt = runAt.Unix()
		if runAt.Nanosecond() > 0 {
			j.runAt++
		}
	}
	wait := defaultWait
	if b.Wait != nil {
		if b.Background {
			return nil, 0, badRequest(`"wait" is for a foreground job`)
		}
		if *b.Wait <= 0 || *b.Wait > maxWait.Seconds() || math.IsNaN(*b.Wait) {
			return nil, 0, badRequest("wait: want seconds, more than 0 and at most " + strconv.Itoa(int(maxWait.Seconds())))
		}
		wait = time.Duration(*b.Wait * float64(time.Second))
	}
	return j, wait, nil
}

// timeOf reads a time: RFC 3339, or unix seconds as a number.
func timeOf(raw json.RawMessage) (time.Time, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, errors.New("want an RFC 3339 time or unix seconds")
		}
		return t, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || f < 0 || f > 1e11 {
		return time.Time{}, errors.New("want an RFC 3339 time or unix seconds")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// durationOf reads a duration: seconds as a number, or a Go duration string ("90s").
func durationOf(raw json.RawMessage) (time.Duration, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
			return secondsDuration(f)
		}
		return time.ParseDuration(s)
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, err
	}
	return secondsDuration(f)
}

func secondsDuration(f float64) (time.Duration, error) {
	if math.IsNaN(f) || f < 0 || f > 100*365*24*3600 {
		return 0, errors.New("out of range")
	}
	return time.Duration(f * float64(time.Second)), nil
}
