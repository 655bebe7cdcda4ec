package engine

import (
	"bytes"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/queue"
	"github.com/spur-gearman/spur/wal"
)

// admin executes one text admin line. Replies copy gearmand byte for byte, odd line endings
// included (lists end ".\n", OK/ERR lines "\r\n", getpid/verbose/version "\n"), so gearadmin
// and monitoring scripts keep working.
func (s *Session) admin(line []byte) {
	w, err := codec.SplitAdmin(line)
	if err == nil && w.N > codec.GearmandAdminWords && !w.Is(0, "schedule") {
		err = codec.ErrTooManyWords // gearmand's limit, for every command but Spur's own
	}
	if err != nil {
		// gearmand closes the connection here; a clear error is friendlier and harmless.
		s.sendText(codec.AdminTooManyWords)
		return
	}
	if !s.wasAdmin.Load() {
		s.wasAdmin.Store(true)
	}
	if w.N > 0 {
		cmd := bytes.ToLower(w.Word(0))
		if err := s.allow(ActAdmin, cmd); err != nil {
			s.logRefusal(ActAdmin, cmd, err)
			s.sendText(codec.AdminAccessDenied(string(cmd), err.Error()))
			return
		}
	}
	switch {
	case w.Is(0, "status") && w.N == 1:
		s.sendText(s.e.statusText(false, s.readable()))
	case w.Is(0, "prioritystatus") && w.N == 1:
		s.sendText(s.e.statusText(true, s.readable()))
	case w.Is(0, "workers") && w.N == 1:
		s.sendText(s.e.workersText(s.readable()))
	case w.Is(0, "maxqueue"):
		s.adminMaxQueue(&w)
	case w.Is(0, "show") && w.N >= 2:
		switch {
		case w.N == 2 && w.Is(1, "jobs"):
			s.sendText(s.e.jobsText(false, s.readable()))
		case w.N == 3 && w.Is(1, "jobs"):
			s.sendText(s.functionJobsText(string(w.Word(2)), 0))
		case w.N == 4 && w.Is(1, "jobs") && positive(w.Word(3)):
			s.sendText(s.functionJobsText(string(w.Word(2)), int(min(atoi(w.Word(3)), 1<<31-1))))
		case w.N == 2 && w.Is(1, "node"):
			s.showNode()
		case w.N == 2 && w.Is(1, "stats"):
			s.sendText(s.e.statsText(s.readable()))
		case w.N == 3 && w.Is(1, "unique") && w.Is(2, "jobs"):
			s.sendText(s.e.jobsText(true, s.readable()))
		case w.N == 2 && w.Is(1, "scheduled"):
			s.sendText(s.e.scheduledText(s.readable()))
		case w.N == 2 && w.Is(1, "paused"):
			s.sendText(s.e.pausedText(s.readable()))
		case w.N == 2 && w.Is(1, "limits"):
			s.sendText(s.e.limitsText(s.readable()))
		case w.N == 2 && w.Is(1, "schedules"):
			s.sendText(s.e.schedulesText(s.readable()))
		case w.N == 2 && w.Is(1, "retries"):
			s.sendText(s.e.retriesText(s.readable()))
		case w.Is(1, "result"):
			s.showResult(&w)
		case w.N <= 3 && w.Is(1, "dead"):
			s.sendText(s.deadText(string(w.Word(2))))
		default:
			s.sendText(codec.AdminUnknownShow)
		}
	case w.Is(0, "cancel") && w.N == 3:
		if !w.Is(1, "job") {
			s.sendText(codec.AdminUnknownError)
		} else if s.e.Cancel(w.Word(2)) {
			s.sendText(codec.AdminOK)
		} else if s.e.shared != nil {
			s.cancelElsewhere(w.Word(2))
		} else {
			s.sendText(codec.AdminUnknownJob)
		}
	case w.Is(0, "create"):
		if w.N != 3 || !w.Is(1, "function") {
			s.sendText(codec.AdminIncompleteArgs("create"))
			return
		}
		// Kept, even with nothing in it, until dropped.
		s.changeSettings(w.Word(2), func(st *wal.FunctionSettings) { st.Declared = true })
	case w.Is(0, "drop"):
		if w.N != 3 || !w.Is(1, "function") {
			s.sendText(codec.AdminIncompleteArgs("drop"))
			return
		}
		s.dropFunction(w.Word(2))
	case w.Is(0, "pause") || w.Is(0, "resume"):
		cmd := strings.ToLower(string(w.Word(0)))
		if w.N != 2 {
			s.sendText(codec.AdminIncompleteArgs(cmd))
			return
		}
		s.setPaused(w.Word(1), cmd == "pause")
	case w.Is(0, "limit"):
		if w.N != 3 {
			s.sendText(codec.AdminIncompleteArgs("limit"))
			return
		}
		s.setLimit(w.Word(1), int(max(0, min(atoi(w.Word(2)), 1<<31-1))))
	case w.Is(0, "schedule"):
		s.adminSchedule(line, &w)
	case w.Is(0, "retry"):
		s.adminRetry(&w)
	case w.Is(0, "purge"):
		if w.N != 3 || !w.Is(1, "dead") {
			s.sendText(codec.AdminIncompleteArgs("purge"))
			return
		}
		s.e.PurgeDead(string(w.Word(2)))
		s.sendText(codec.AdminOK)
	case w.Is(0, "drain"):
		if w.N != 3 || !w.Is(1, "worker") {
			s.sendText(codec.AdminIncompleteArgs("drain"))
			return
		}
		s.sendText(s.e.drainWorker(w.Word(2)))
	case w.Is(0, "getpid") && w.N == 1:
		s.sendText(codec.AdminValue(strconv.Itoa(os.Getpid())))
	case w.Is(0, "verbose") && w.N == 1:
		s.sendText(codec.AdminValue(s.e.cfg.Verbose))
	case w.Is(0, "version") && w.N == 1:
		s.sendText(codec.AdminValue(Version))
	case w.Is(0, "shutdown") && (w.N == 1 || (w.N == 2 && w.Is(1, "graceful"))):
		graceful := w.N == 2
		s.e.log.Warn("shutdown requested by admin command", "remote", s.who.IP, "graceful", graceful)
		s.sendText(codec.AdminOK)
		if s.e.cfg.OnShutdown != nil {
			go s.e.cfg.OnShutdown(graceful)
		}
	default:
		s.sendText(codec.AdminUnknownCommand(w.Word(0)))
	}
}

// adminMaxQueue: maxqueue FN [ALL | HIGH NORMAL [LOW]]; a function that does not exist is left
// alone but still answered OK, as gearmand does.
func (s *Session) adminMaxQueue(w *codec.AdminWords) {
	if w.N < 2 {
		s.sendText(codec.AdminIncompleteArgs("maxqueue"))
		return
	}
	var limits [queue.NumPriorities]int
	limit := func(i int) int { return int(max(0, min(atoi(w.Word(i)), 1<<31-1))) }
	switch w.N {
	case 3:
		n := limit(2)
		limits = [queue.NumPriorities]int{n, n, n}
	case 4:
		limits = [queue.NumPriorities]int{limit(2), limit(3), 0}
	case 5:
		limits = [queue.NumPriorities]int{limit(2), limit(3), limit(4)}
	}
	sh := s.e.reg.ShardFor(w.Word(1))
	sh.Lock()
	defer sh.Unlock()
	f := sh.Get(w.Word(1))
	if f == nil {
		s.sendText(codec.AdminOK)
		return
	}
	st := settingsOf(f)
	st.MaxQueue = limits
	if s.saveForAdmin(f.Name, &st) {
		f.MaxQueue = limits
		f.NoteSettingsChanged()
	}
}

// statusText renders `status` (FN TOTAL RUNNING WORKERS) or `prioritystatus` (FN HIGH NORMAL
// LOW WORKERS, queued jobs only), sorted by function name. Every listing leaves out the
// functions readable refuses (see Session.readable).
func (e *Engine) statusText(byPriority bool, readable func(string) bool) string {
	var lines []string
	e.reg.EachShard(func(sh *queue.Shard) {
		sh.EachFunction(func(f *queue.Function) {
			if !visible(readable, f.Name) {
				return
			}
			var b strings.Builder
			b.WriteString(f.Name)
			if byPriority {
				for p := range f.Queued {
					b.WriteByte('\t')
					b.WriteString(strconv.Itoa(f.Queued[p]))
				}
			} else {
				b.WriteByte('\t')
				b.WriteString(strconv.Itoa(f.Total))
				b.WriteByte('\t')
				b.WriteString(strconv.Itoa(f.Running))
			}
			b.WriteByte('\t')
			b.WriteString(strconv.Itoa(len(f.Workers)))
			b.WriteByte('\n')
			lines = append(lines, b.String())
		})
	})
	sort.Strings(lines) // once, here: no shard is sorted under its lock
	return strings.Join(lines, "") + ".\n"
}

// drainWorker is `drain worker ID`, ID being the first column of `workers`: the worker
// connection with that file descriptor gets no more jobs (a grab gets NO_JOB, it is not
// woken), finishes what it holds, and is then disconnected. gearmand has no way to stop a
// worker from the server side.
func (e *Engine) drainWorker(id []byte) string {
	if fd, err := strconv.Atoi(string(id)); err == nil && e.DrainWorker(fd) == nil {
		return codec.AdminOK
	}
	return codec.AdminErr("UNKNOWN_WORKER", "no worker connection has the id "+string(id))
}

// jobsText renders `show jobs` (HANDLE RETRIES IGNORE PERSISTED) or `show unique jobs`.
func (e *Engine) jobsText(uniques bool, readable func(string) bool) string {
	var b strings.Builder
	for _, j := range e.reg.Jobs() {
		sh := j.Fn.Shard()
		sh.Lock()
		switch {
		case j.State == queue.Done || !visible(readable, j.Fn.Name):
		case uniques:
			b.WriteString(j.Unique)
			b.WriteByte('\n')
		default:
			b.WriteString(j.Handle)
			b.WriteByte('\t')
			b.WriteString(strconv.FormatUint(uint64(j.Retries()), 10))
			b.WriteByte('\t')
			b.WriteString(boolDigit(j.Ignore))
			b.WriteByte('\t')
			b.WriteString(boolDigit(j.Persisted))
			b.WriteByte('\n')
		}
		sh.Unlock()
	}
	b.WriteString(".\n")
	return b.String()
}

// setPaused is `pause FN` and `resume FN`. A paused function's jobs stay queued: submits
// still queue them, grabs pass them by and no sleeping worker is woken for them, until
// `resume` wakes its sleepers. Pausing a function nothing knows yet makes it, so that its
// jobs can be held before they arrive.
func (s *Session) setPaused(name []byte, paused bool) {
	s.changeSettings(name, func(st *wal.FunctionSettings) { st.Paused = paused })
}

// setLimit is `limit FN N`: at most N of the function's jobs run at once, across all its
// workers (0 removes the limit). Jobs beyond it wait queued; a worker asking for work passes
// them by, and a sleeper is woken when a running one ends. Made for a fragile downstream:
// a database that takes ten connections, an API with a rate limit.
func (s *Session) setLimit(name []byte, n int) {
	s.changeSettings(name, func(st *wal.FunctionSettings) { st.Limit = n })
}

// changeSettings changes a function's own settings for an admin command (UpdateFunction),
// answering OK once the change is durable.
func (s *Session) changeSettings(name []byte, change func(*wal.FunctionSettings)) {
	r := &adminReply{s: s, ok: codec.AdminOK}
	s.holdReply(&r.slot)
	s.e.UpdateFunction(name, change, r.Acked)
}

// saveForAdmin is saveSettings for an admin command, answered OK once the write is durable;
// false when the store refused it (and the command was answered so).
func (s *Session) saveForAdmin(name string, st *wal.FunctionSettings) bool {
	r := &adminReply{s: s, ok: codec.AdminOK}
	s.holdReply(&r.slot)
	return s.e.saveSettings(name, st, r.Acked) == nil
}

// limitsText renders `show limits`: FUNCTION \t LIMIT \t RUNNING per function with a
// concurrency limit, sorted by name.
func (e *Engine) limitsText(readable func(string) bool) string {
	var lines []string
	e.reg.EachShard(func(sh *queue.Shard) {
		sh.EachFunction(func(f *queue.Function) {
			if f.Limit > 0 && visible(readable, f.Name) {
				var b strings.Builder
				writeAdminField(&b, f.Name)
				b.WriteString("\t" + strconv.Itoa(f.Limit) + "\t" + strconv.Itoa(f.Running) + "\n")
				lines = append(lines, b.String())
			}
		})
	})
	sort.Strings(lines)
	return strings.Join(lines, "") + ".\n"
}

// pausedText renders `show paused`: the paused functions' names, sorted, one per line.
func (e *Engine) pausedText(readable func(string) bool) string {
	var names []string
	e.reg.EachShard(func(sh *queue.Shard) {
		sh.EachFunction(func(f *queue.Function) {
			if f.Paused && visible(readable, f.Name) {
				names = append(names, f.Name)
			}
		})
	})
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		writeAdminField(&b, n)
		b.WriteByte('\n')
	}
	b.WriteString(".\n")
	return b.String()
}

// scheduledText renders `show scheduled`, one line per job waiting for its run-at time,
// soonest first:
//
//	HANDLE \t FUNCTION \t UNIQUE \t RUN-AT (unix seconds) \t RUN-AT (RFC 3339, UTC) \t PRIORITY \t KIND
//
// KIND is "once" for a job (an epoch job, a retry waiting out its backoff) and the cron spec
// for a recurring schedule, whose RUN-AT is its next firing.
//
// Function names and uniques are bytes a client chose: tabs, line breaks and other control
// bytes in them are written as \xNN (and a backslash as \x5c), so that no job can forge or
// split a line of the listing.
func (e *Engine) scheduledText(readable func(string) bool) string {
	var b strings.Builder
	for _, j := range e.Scheduled() {
		if !visible(readable, j.Function) {
			continue
		}
		writeJobColumns(&b, j.Handle, j.Function, j.Unique)
		b.WriteString(strconv.FormatInt(secondsOf(j.RunAt.UnixMilli()), 10))
		b.WriteByte('\t')
		b.WriteString(j.RunAt.UTC().Format(time.RFC3339))
		b.WriteByte('\t')
		b.WriteString(j.Priority.String())
		b.WriteByte('\t')
		if j.Schedule == "" {
			b.WriteString("once")
		} else {
			b.WriteString(j.Schedule)
		}
		b.WriteByte('\n')
	}
	b.WriteString(".\n")
	return b.String()
}

// writeJobColumns writes the first columns of every job listing (`show scheduled`,
// `show schedules`, `show result`, `show dead`): handle, function and unique, each followed
// by a tab.
func writeJobColumns(b *strings.Builder, handle, fn, unique string) {
	b.WriteString(handle)
	b.WriteByte('\t')
	writeAdminField(b, fn)
	b.WriteByte('\t')
	writeAdminField(b, unique)
	b.WriteByte('\t')
}

// writeAdminField writes s with control bytes and backslashes escaped as \xNN.
func writeAdminField(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c == '\\' {
			b.WriteString(`\x`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// dropFunction is `drop function FN`: exactly the function of that name (gearmand matches
// case-insensitively and drops every match). Unlike gearmand it refuses while jobs are
// queued, which gearmand would orphan (spec weakness 11).
func (s *Session) dropFunction(name []byte) {
	sh := s.e.reg.ShardFor(name)
	sh.Lock()
	defer sh.Unlock()
	f := sh.Get(name)
	switch {
	case f == nil:
		s.sendText(codec.AdminNoSuchFunction)
		return
	case len(f.Workers) > 0 || f.Running > 0:
		s.sendText(codec.AdminFunctionBusy)
		return
	case f.Total > 0:
		s.sendText(codec.AdminFunctionHasJobs)
		return
	}
	if !f.HasSettings() {
		s.sendText(codec.AdminOK)
	} else if !s.saveForAdmin(f.Name, nil) {
		return // the log refused: the function stays, as its settings on disk do
	}
	if f.WakeTimer != nil {
		f.WakeTimer.Stop()
	}
	if f.WakeCheck != nil {
		f.WakeCheck.Stop()
	}
	sh.Delete(f)
}
