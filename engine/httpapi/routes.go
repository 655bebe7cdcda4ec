package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spur-gearman/spur/engine"
	"github.com/spur-gearman/spur/engine/cron"
	"github.com/spur-gearman/spur/queue"
	"github.com/spur-gearman/spur/wal"
)

func (a *api) routes() {
	a.handle("GET /api/openapi.json", func(w http.ResponseWriter, _ *http.Request, _ *engine.Identity) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openapiDoc)
	})
	a.handle("GET /api/me", a.me)
	a.handle("GET /api/status", a.status)
	a.handle("GET /api/functions/{fn}", a.function)
	a.handle("GET /api/functions/{fn}/jobs", a.functionJobs)
	a.handle("POST /api/functions/{fn}/pause", a.pauseFunction(true))
	a.handle("POST /api/functions/{fn}/resume", a.pauseFunction(false))
	a.handle("PUT /api/functions/{fn}/limit", a.limitFunction)
	a.handle("PUT /api/functions/{fn}/retry", a.retryFunction)
	a.handle("POST /api/jobs", a.submit)
	a.handle("GET /api/jobs", a.jobByUnique)
	a.handle("GET /api/jobs/{handle}", a.job)
	a.handle("DELETE /api/jobs/{handle}", a.cancel)
	a.handle("GET /api/results", a.resultByUnique)
	a.handle("GET /api/results/{handle}", a.result)
	a.handle("GET /api/scheduled", a.scheduled)
	a.handle("GET /api/schedules", a.schedules)
	a.handle("POST /api/schedules", a.addSchedule)
	a.handle("POST /api/schedules/{handle}/pause", a.changeSchedule("pause", a.e.PauseSchedule))
	a.handle("POST /api/schedules/{handle}/resume", a.changeSchedule("resume", a.e.ResumeSchedule))
	a.handle("POST /api/schedules/{handle}/run", a.changeSchedule("run", a.e.RunSchedule))
	a.handle("DELETE /api/schedules/{handle}", a.changeSchedule("delete", a.e.DeleteSchedule))
	a.handle("GET /api/dead", a.dead)
	a.handle("DELETE /api/dead", a.purgeDead)
	a.handle("POST /api/dead/retry", a.retryDeadFunction)
	a.handle("POST /api/dead/{handle}/retry", a.retryDeadOne)
	a.handle("GET /api/workers", a.workers)
	a.handle("POST /api/workers/{id}/drain", a.drainWorker)
	a.clusterRoutes()
}

// mayWords are the admin words /api/me answers for.
var mayWords = []string{"pause", "resume", "limit", "retry", "purge", "schedule", "cancel", "drain"}

func (a *api) me(w http.ResponseWriter, _ *http.Request, who *engine.Identity) {
	may := map[string]bool{}
	for _, word := range mayWords {
		may[word] = a.e.Permits(who, engine.ActAdmin, word)
	}
	may["submit"] = a.e.Permits(who, engine.ActSubmit, "*")
	writeJSON(w, http.StatusOK, map[string]any{
		"identity": map[string]any{"ip": who.IP, "loopback": who.Loopback, "name": who.Name, "token": who.Token},
		"may":      may,
	})
}

// functionStatus is FunctionStatus of the contract.
type functionStatus struct {
	Name         string         `json:"name"`
	Queued       map[string]int `json:"queued"`
	Scheduled    int            `json:"scheduled"`
	Running      int            `json:"running"`
	Workers      int            `json:"workers"`
	Total        int            `json:"total"`
	OldestAge    *float64       `json:"oldest_queued_age_s"`
	Paused       bool           `json:"paused"`
	Limit        int            `json:"limit"`
	Submitted    uint64         `json:"submitted"`
	Completed    uint64         `json:"completed"`
	Failed       uint64         `json:"failed"`
	Retried      uint64         `json:"retried"`
	DeadLettered uint64         `json:"dead_lettered"`
}

func statusOf(st *engine.FunctionStat, t time.Time) functionStatus {
	fs := functionStatus{Name: st.Name, Running: st.Running, Workers: st.Workers, Total: st.Total,
		Queued: map[string]int{"high": st.Queued[queue.High], "normal": st.Queued[queue.Normal], "low": st.Queued[queue.Low]}}
	more(&fs, st, t)
	return fs
}

func (a *api) status(w http.ResponseWriter, _ *http.Request, who *engine.Identity) {
	if err := a.allowAdmin(who, "status"); err != nil {
		writeError(w, err)
		return
	}
	t := time.Now()
	fns := []functionStatus{}
	var totals struct {
		Queued       int    `json:"queued"`
		Running      int    `json:"running"`
		Workers      int    `json:"workers"`
		Submitted    uint64 `json:"submitted"`
		Completed    uint64 `json:"completed"`
		Failed       uint64 `json:"failed"`
		Retried      uint64 `json:"retried"`
		DeadLettered uint64 `json:"dead_lettered"`
	}
	for _, st := range a.e.FunctionStats() {
		if !a.e.Readable(who, st.Name) {
			continue
		}
		fs := statusOf(&st, t)
		fns = append(fns, fs)
		totals.Queued += fs.Queued["high"] + fs.Queued["normal"] + fs.Queued["low"]
		totals.Running += fs.Running
		totals.Submitted += fs.Submitted
		totals.Completed += fs.Completed
		totals.Failed += fs.Failed
		totals.Retried += fs.Retried
		totals.DeadLettered += fs.DeadLettered
	}
	for _, wk := range a.e.Workers(who) {
		if len(wk.Functions) > 0 {
			totals.Workers++
		}
	}
	results, _ := a.e.ResultStats()
	peers := a.opts.Cluster.Peers
	if peers == nil {
		peers = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"node":           a.e.NodeName(),
		"peers":          peers,
		"version":        engine.Version,
		"started_at":     jtime(a.opts.Started),
		"uptime_s":       t.Sub(a.opts.Started).Seconds(),
		"draining":       a.e.Draining(),
		"connections":    a.e.Sessions(),
		"results_stored": results,
		"dead_letters":   a.e.DeadCount(),
		"schedules":      a.e.ScheduleCount(),
		"totals":         totals,
		"functions":      fns,
	})
}

// readFunction checks that who may run admin word and read function fn.
func (a *api) readFunction(who *engine.Identity, word, fn string) error {
	if err := a.allowAdmin(who, word); err != nil {
		return err
	}
	if err := a.e.Allow(who, engine.ActStatus, []byte(fn)); err != nil {
		return denied(err)
	}
	return nil
}

func (a *api) function(w http.ResponseWriter, r *http.Request, who *engine.Identity) {
	fn := r.PathValue("fn")
	if err := a.readFunction(who, "status", fn); err != nil {
		writeError(w, err)
		return
	}
	for _, st := range a.e.FunctionStats() {
		if st.Name == fn {
			writeJSON(w, http.StatusOK, statusOf(&st, time.Now()))
			return
		}
	}
	writeError(w, notFound("no function "+strconv.Quote(fn)))
}

// jobJSON is Job of the contract.
type jobJSON struct {
	Handle      string `json:"handle"`
	Function    string `json:"function"`
	Unique      string `json:"unique"`
	Priority    string `json:"priority"`
	State       string `json:"state"`
	Background  bool   `json:"background"`
	RunAt       jtime  `json:"run_at"`
	StartedAt   jtime  `json:"started_at"`
	Worker      *int   `json:"worker"`
	Numerator   uint64 `json:"numerator"`
	Denominator uint64 `json:"denominator"`
	Clients     int    `json:"clients"`
}

// defaultJobs and maxJobs bound the jobs of one listing (?limit=).
const (
	defaultJobs = 1000
	maxJobs     = 100000
)

// jobsLimit is a listing's ?limit=, defaultJobs when absent.
func jobsLimit(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return defaultJobs, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxJobs {
		return 0, badRequest("limit: want a number from 1 to " + strconv.Itoa(maxJobs))
	}
	return n, nil
}

func (a *api) functionJobs(w http.ResponseWriter, r *http.Request, who *engine.Identity) {
	fn := r.PathValue("fn")
	if err := a.readFunction(who, "show", fn); err != nil {
		writeError(w, err)
		return
	}
	limit, err := jobsLimit(r)
	if err != nil {
		writeError(w, err)
		return
	}
	jobs := []jobJSON{}
	for _, j := range a.e.Jobs(who, fn, limit) {
		jj := jobJSON{Handle: j.Handle, Function: j.Function, Unique: j.Unique, Priority: j.Priority.String(),
			State: j.State.String(), Background: j.Background, RunAt: jtime(j.RunAt), StartedAt: jtime(j.Started),
			Numerator: j.Numerator, Denominator: j.Denominator, Clients: j.Clients}
		if j.Worker >= 0 {
			id := j.Worker
			jj.Worker = &id
		}
		jobs = append(jobs, jj)
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": jobs})
}

// changeFunction applies change to fn's settings for admin word and answers once it is
// durable.
func (a *api) changeFunction(w http.ResponseWriter, r *http.Request, who *engine.Identity, word string, change func(*wal.FunctionSettings)) {
	fn := r.PathValue("fn")
	if err := a.allowAdmin(who, word); err != nil {
		writeError(w, err)
		return
	}
	if len(fn) > 512 {
		writeError(w, badRequest("function name too long"))
		return
	}
	done := make(chan error, 1)
	a.e.UpdateFunction([]byte(fn), change, func(err error) { done <- err })
	if err := <-done; err != nil {
		writeError(w, engineError(err))
		return
	}
	ok(w)
}

func (a *api) pauseFunction(paused bool) func(http.ResponseWriter, *http.Request, *engine.Identity) {
	word := "resume"
	if paused {
		word = "pause"
	}
	return func(w http.ResponseWriter, r *http.Request, who *engine.Identity) {
		a.changeFunction(w, r, who, word, func(st *wal.FunctionSettings) { st.Paused = paused })
	}
}

func (a *api) limitFunction(w http.ResponseWriter, r *http.Request, who *engine.Identity) {
	var body struct {
		Limit *int `json:"limit"`
	}
	if err := a.readJSON(w, r, &body); err != nil {
		writeError(w, err)
		return
	}
	if body.Limit == nil || *body.Limit < 0 || *body.Limit > 1<<31-1 {
		writeError(w, badRequest(`want {"limit": N}, N from 0 (no limit) up`))
		return
	}
	a.changeFunction(w, r, who, "limit", func(st *wal.FunctionSettings) { st.Limit = *body.Limit })
}

func (a *api) retryFunction(w http.ResponseWriter, r *http.Request, who *engine.Identity) {
	var body struct {
		Attempts int             `json:"attempts"`
		Base     json.RawMessage `json:"base"`
		Max      json.RawMessage `json:"max"`
		Off      bool            `json:"off"`
	}
	if err := a.readJSON(w, r, &body); err != nil {
		writeError(w, err)
		return
	}
	words := []string{"off"}
	if !body.Off {
		words = []string{strconv.Itoa(body.Attempts), durationWord(body.Base), durationWord(body.Max)}
	}
	p, err := engine.ParseRetryPolicy(words)
	if err != nil {
		writeError(w, badRequest("retry: "+err.Error()))
		return
	}
	a.changeFunction(w, r, who, "retry", func(st *wal.FunctionSettings) { st.Retry = wal.RetryPolicy(p) })
}

// durationWord turns a JSON duration (seconds as a number, or a string such as "1s") into
// the word ParseRetryPolicy reads.
func durationWord(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(raw))
}

// jobStatus is the answer of GET /api/jobs/{handle}.
type jobStatus struct {
	Handle      string      `json:"handle,omitempty"`
	Unique      string      `json:"unique,omitempty"`
	Known       bool        `json:"known"`
	Running     bool        `json:"running"`
	Numerator   uint64      `json:"numerator"`
	Denominator uint64      `json:"denominator"`
	Clients     int         `json:"clients"`
	Function    string      `json:"function"`
	Result      *resultJSON `json:"result,omitempty"`
}

func (a *api) job(w http.ResponseWriter, r *http.Request, who *engine.Identity) {
	h := r.PathValue("handle")
	st := a.e.Status([]byte(h))
	js := jobStatus{Handle: h}
	a.answerStatus(w, who, st, js, func() (wal.Result, bool, error) { return a.e.Result(h) })
}

func (a *api) jobByUnique(w http.ResponseWriter, r *http.Request, who *engine.Identity) {
	u := r.URL.Query().Get("unique")
	if u == "" {
		writeError(w, badRequest("give ?unique=U (or GET /api/jobs/HANDLE)"))
		return
	}
	st := a.e.StatusUnique([]byte(u))
	js := jobStatus{Unique: u}
	fn := r.URL.Query().Get("function")
	a.answerStatus(w, who, st, js, func() (wal.Result, bool, error) {
		if fn == "" {
			return wal.Result{}, false, nil
		}
		return a.e.ResultByUnique(fn, u)
	})
}

// answerStatus answers a job's status (GET_STATUS) and, once it has ended, its kept
// result. A job of a function who may not read is answered as unknown, as GET_STATUS does.
func (a *api) answerStatus(w http.ResponseWriter, who *engine.Identity, st engine.JobStatus, js jobStatus, read func() (wal.Result, bool, error)) {
	if st.Known && a.e.Allow(who, engine.ActStatus, []byte(st.Function)) == nil {
		js.Known, js.Running, js.Numerator, js.Denominator, js.Clients, js.Function = true, st.Running, st.Numerator, st.Denominator, st.Clients, st.Function
		writeJSON(w, http.StatusOK, js)
		return
	}
	if !st.Known {
		res, found, err := read()
		if err == nil && found && a.e.Readable(who, res.Function) {
			rj := resultOf(&res)
			js.Handle, js.Function, js.Result = res.Handle, res.Function, &rj
			writeJSON(w, http.StatusOK, js)
			return
		}
	}
	writeError(w, notFound("no live job and no kept result"))
}

func (a *api) cancel(w http.ResponseWriter, r *http.Request, who *engine.Identity) {
	if err := a.allowAdmin(who, "cancel"); err != nil {
		writeError(w, err)
		return
	}
	handle := []byte(r.PathValue("handle"))
	if !a.e.Cancel(handle) {
		done, holder, err := a.e.CancelShared(r.Context(), handle)
		switch {
		case err != nil:
			writeError(w, engineError(err))
			return
		case holder != "":
			writeError(w, conflict("the job is held by node "+holder+": cancel it there"))
			return
		case !done:
			writeError(w, notFound("no live job with this handle"))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]bool{"cancelled": true})
}

// resultJSON is Result of the contract.
type resultJSON struct {
	Handle   string `json:"handle"`
	Function string `json:"function"`
	Unique   string `json:"unique"`
	Outcome  string `json:"outcome"`
	payload
	Attempts   uint32 `json:"attempts"`
	StartedAt  jtime  `json:"started_at"`
	FinishedAt jtime  `json:"finished_at"`
}

func resultOf(r *wal.Result) resultJSON {
	return resultJSON{Handle: r.Handle, Function: r.Function, Unique: r.Unique, Outcome: r.Outcome.String(),
		payload: payloadOf(r.Data), Attempts: r.Attempts, StartedAt: nanoTime(r.Started), FinishedAt: nanoTime(r.Finished)}
}

func (a *api) result(w http.ResponseWriter, r *http.Request, who *engine.Identity) {
	h := r.PathValue("handle")
	a.answerResult(w, who, func() (wal.Result, bool, error) { return a.e.Result(h) })
}

func (a *api) resultByUnique(w http.ResponseWriter, r *http.Request, who *engine.Identity) {
	q := r.URL.Query()
	fn, u := q.Get("function"), q.Get("unique")
	if fn == "" || !q.Has("unique") {
		writeError(w, badRequest("give ?function=FN&unique=U (or GET /api/results/HANDLE)"))
		return
	}
	a.answerResult(w, who, func() (wal.Result, bool, error) { return a.e.ResultByUnique(fn, u) })
}

// answerResult is `show result`: admin "show", and the result's function readable.
func (a *api) answerResult(w http.ResponseWriter, who *engine.Identity, read func() (wal.Result, bool, error)) {
	if err := a.allowAdmin(who, "show"); err != nil {
		writeError(w, err)
		return
	}
	res, found, err := read()
	switch {
	case errors.Is(err, engine.ErrResultsOff):
		writeError(w, notFound(err.Error()))
	case err != nil:
		writeError(w, engineError(err))
	case !found || !a.e.Readable(who, res.Function):
		writeError(w, notFound("no kept result (the job is still live, never existed, or its result expired)"))
	default:
		writeJSON(w, http.StatusOK, resultOf(&res))
	}
}

func (a *api) scheduled(w http.ResponseWriter, _ *http.Request, who *engine.Identity) {
	if err := a.allowAdmin(who, "show"); err != nil {
		writeError(w, err)
		return
	}
	type entry struct {
		Handle   string `json:"handle"`
		Function string `json:"function"`
		Unique   string `json:"unique"`
		RunAt    jtime  `json:"run_at"`
		Priority string `json:"priority"`
		Schedule string `json:"schedule"`
	}
	jobs := []entry{}
	for _, j := range a.e.Scheduled() {
		if a.e.Readable(who, j.Function) {
			jobs = append(jobs, entry{j.Handle, j.Function, j.Unique, jtime(j.RunAt), j.Priority.String(), j.Schedule})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": jobs})
}

func (a *api) schedules(w http.ResponseWriter, _ *http.Request, who *engine.Identity) {
	if err := a.allowAdmin(who, "show"); err != nil {
		writeError(w, err)
		return
	}
	type entry struct {
		Handle   string `json:"handle"`
		Function string `json:"function"`
		Spec     string `json:"spec"`
		Zone     string `json:"tz"`
		Unique   string `json:"unique"`
		Priority string `json:"priority"`
		Paused   bool   `json:"paused"`
		Next     jtime  `json:"next_run"`
		Last     jtime  `json:"last_run"`
	}
	list := []entry{}
	for _, s := range a.e.Schedules() {
		if a.e.Readable(who, s.Function) {
			list = append(list, entry{s.Handle, s.Function, s.Spec, s.Zone, s.Unique, s.Priority.String(), s.Paused, jtime(s.Next), jtime(s.LastRun)})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"schedules": list})
}

func (a *api) addSchedule(w http.ResponseWriter, r *http.Request, who *engine.Identity) {
	var body struct {
		Function string `json:"function"`
		Spec     string `json:"spec"`
		Zone     string `json:"tz"`
		Unique   string `json:"unique"`
		Priority string `json:"priority"`
		payload
	}
	if err := a.readJSON(w, r, &body); err != nil {
		writeError(w, err)
		return
	}
	if err := a.allowAdmin(who, "schedule"); err != nil {
		writeError(w, err)
		return
	}
	req, err := a.scheduleRequest(body.Function, body.Spec, body.Zone, body.Unique, body.Priority, body.payload)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := a.e.Allow(who, engine.ActSubmit, req.Function); err != nil {
		writeError(w, denied(err))
		return
	}
	type added struct {
		handle string
		err    error
	}
	done := make(chan added, 1)
	a.e.AddSchedule(req, who, func(h string, err error) { done <- added{h, err} })
	res := <-done
	if res.err != nil {
		if strings.Contains(res.err.Error(), "time zone") {
			writeError(w, badRequest(res.err.Error()))
			return
		}
		writeError(w, engineError(res.err))
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"handle": res.handle})
}

func (a *api) scheduleRequest(fn, spec, zone, unique, prio string, data payload) (engine.ScheduleRequest, error) {
	var req engine.ScheduleRequest
	if fn == "" {
		return req, badRequest(`"function" is required`)
	}
	s, err := cron.Parse(spec)
	if err != nil {
		return req, badRequest("spec: " + err.Error())
	}
	p, err := priorityOf(prio)
	if err != nil {
		return req, err
	}
	if zone != "" {
		if _, err := time.LoadLocation(zone); err != nil {
			return req, badRequest("unknown time zone " + strconv.Quote(zone))
		}
	}
	b, err := data.bytes()
	if err != nil {
		return req, err
	}
	if err := checkSubmit(fn, unique); err != nil {
		return req, err
	}
	return engine.ScheduleRequest{Function: []byte(fn), Unique: []byte(unique), Data: b, Priority: p, Spec: s, Zone: zone}, nil
}

func (a *api) changeSchedule(word string, op func(string, func(error)) error) func(http.ResponseWriter, *http.Request, *engine.Identity) {
	return func(w http.ResponseWriter, r *http.Request, who *engine.Identity) {
		if err := a.allowAdmin(who, "schedule"); err != nil {
			writeError(w, err)
			return
		}
		done := make(chan error, 1)
		err := op(r.PathValue("handle"), func(err error) { done <- err })
		if errors.Is(err, engine.ErrNoSchedule) {
			writeError(w, notFound("no schedule with this handle"))
			return
		}
		if err == nil {
			err = <-done
		}
		if err != nil {
			writeError(w, engineError(err))
			return
		}
		ok(w)
	}
}

func (a *api) dead(w http.ResponseWriter, r *http.Request, who *engine.Identity) {
	if err := a.allowAdmin(who, "show"); err != nil {
		writeError(w, err)
		return
	}
	type entry struct {
		Handle   string `json:"handle"`
		Function string `json:"function"`
		Unique   string `json:"unique"`
		Priority string `json:"priority"`
		Attempts uint32 `json:"attempts"`
		Outcome  string `json:"outcome"`
		Error    string `json:"error"`
		First    jtime  `json:"first_failed_at"`
		Last     jtime  `json:"last_failed_at"`
		payload
	}
	list := []entry{}
	for _, d := range a.e.DeadLetters(r.URL.Query().Get("function")) {
		if !a.e.Readable(who, d.Job.Function) {
			continue
		}
		list = append(list, entry{Handle: d.Job.Handle, Function: d.Job.Function, Unique: d.Job.Unique,
			Priority: queue.Priority(d.Job.Priority).String(), Attempts: d.Job.Attempts, Outcome: d.LastOutcome.String(),
			Error: string(d.LastError), First: nanoTime(d.FirstFailed), Last: nanoTime(d.LastFailed), payload: payloadOf(d.Job.Data)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"dead": list})
}

// retryDead queues again the dead letters pick chooses and answers with how many, once
// they are durable.
func (a *api) retryDead(w http.ResponseWriter, pick func(*wal.DeadLetter) bool, one bool) {
	done := make(chan error, 1)
	n := a.e.RetryDead(pick, func(err error) { done <- err })
	if n == 0 && one {
		writeError(w, notFound("no dead letter with this handle"))
		return
	}
	if n > 0 {
		if err := <-done; err != nil {
			writeError(w, engineError(err))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]int{"retried": n})
}

func (a *api) retryDeadOne(w http.ResponseWriter, r *http.Request, who *engine.Identity) {
	if err := a.allowAdmin(who, "retry"); err != nil {
		writeError(w, err)
		return
	}
	h := r.PathValue("handle")
	a.retryDead(w, func(d *wal.DeadLetter) bool { return d.Job.Handle == h }, true)
}

func (a *api) retryDeadFunction(w http.ResponseWriter, r *http.Request, who *engine.Identity) {
	var body struct {
		Function string `json:"function"`
	}
	if err := a.readJSON(w, r, &body); err != nil {
		writeError(w, err)
		return
	}
	if body.Function == "" {
		writeError(w, badRequest(`want {"function": FN}`))
		return
	}
	if err := a.allowAdmin(who, "retry"); err != nil {
		writeError(w, err)
		return
	}
	a.retryDead(w, func(d *wal.DeadLetter) bool { return d.Job.Function == body.Function }, false)
}

func (a *api) purgeDead(w http.ResponseWriter, r *http.Request, who *engine.Identity) {
	fn := r.URL.Query().Get("function")
	if fn == "" {
		writeError(w, badRequest("give ?function=FN"))
		return
	}
	if err := a.allowAdmin(who, "purge"); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"purged": a.e.PurgeDead(fn)})
}

func (a *api) workers(w http.ResponseWriter, _ *http.Request, who *engine.Identity) {
	if err := a.allowAdmin(who, "workers"); err != nil {
		writeError(w, err)
		return
	}
	type running struct {
		Handle   string  `json:"handle"`
		Function string  `json:"function"`
		Started  jtime   `json:"started_at"`
		For      float64 `json:"running_s"`
	}
	type worker struct {
		ID        int       `json:"id"`
		IP        string    `json:"ip"`
		Identity  string    `json:"identity"`
		ClientID  string    `json:"client_id"`
		Functions []string  `json:"functions"`
		Sleeping  bool      `json:"sleeping"`
		Draining  bool      `json:"draining"`
		Running   []running `json:"running"`
	}
	t := time.Now()
	list := []worker{}
	for _, wk := range a.e.Workers(who) {
		if len(wk.Functions) == 0 && len(wk.Running) == 0 {
			continue // a client, not a worker
		}
		out := worker{ID: wk.ID, IP: wk.IP, Identity: wk.Identity, ClientID: wk.ClientID, Functions: wk.Functions,
			Sleeping: wk.Sleeping, Draining: wk.Draining, Running: []running{}}
		if out.Functions == nil {
			out.Functions = []string{}
		}
		for _, j := range wk.Running {
			out.Running = append(out.Running, running{j.Handle, j.Function, jtime(j.Started), t.Sub(j.Started).Seconds()})
		}
		list = append(list, out)
	}
	writeJSON(w, http.StatusOK, map[string]any{"workers": list})
}

func (a *api) drainWorker(w http.ResponseWriter, r *http.Request, who *engine.Identity) {
	if err := a.allowAdmin(who, "drain"); err != nil {
		writeError(w, err)
		return
	}
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || a.e.DrainWorker(id) != nil {
		writeError(w, notFound("no worker connection has the id "+strconv.Quote(r.PathValue("id"))))
		return
	}
	ok(w)
}

// priorityOf reads "high", "normal" or "low" ("" = normal).
func priorityOf(s string) (queue.Priority, error) {
	switch strings.ToLower(s) {
	case "high":
		return queue.High, nil
	case "", "normal":
		return queue.Normal, nil
	case "low":
		return queue.Low, nil
	}
	return queue.Normal, badRequest(`priority: want "high", "normal" or "low"`)
}
