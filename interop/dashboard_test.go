package interop

// The dashboard (engine/dashboard, served at / of --http-addr) in a real browser: Debian's
// headless Chromium driven through the DevTools protocol by chromedp, against a real spurd
// that real jobs flow through (a raw Gearman client and workers in this file).
//
//   - TestDashboardMatchesServer: jobs complete, fail into the dead-letter list (a retry
//     policy of one attempt), wait queued by priority, wait for a time, run and are held by
//     a worker, and a schedule is added; the numbers and lists on the page must then match
//     /api/status, /api/workers, /api/dead, /api/scheduled, /api/schedules and the admin
//     `status` and `workers`; the result lookup finds a completed job; the Pause, Resume,
//     Retry, schedule Pause and Purge buttons take effect on the server (admin `show paused`,
//     the API). SPUR_DASHBOARD_PNG=FILE also writes the screenshot taken while jobs flow
//     there (docs/dashboard.png is made so: see README.md).
//   - TestDashboardCluster: a node with peers shows the cluster panel, every node as
//     /api/cluster/status has it, a dead peer down with its error, the sum, a node's Done/s
//     (SPUR_DASHBOARD_CLUSTER_PNG=FILE writes a screenshot of it).
//   - TestDashboardThousandFunctions: with 1,000 functions the page loads, keeps polling,
//     and no render (performance.now() around it, in the page) takes a second; the load
//     time is logged; a hidden tab stops polling every second.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/spur-gearman/spur/codec"
)

// requireChromium returns the path of Debian's chromium; it fails the test when missing.
func requireChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("chromium unavailable (not on PATH); install the Debian package chromium")
	return ""
}

// dashServer is a spurd with --http-addr.
type dashServer struct {
	*server
	base string // http://127.0.0.1:PORT
}

func startDashServer(t *testing.T, extraArgs ...string) *dashServer {
	t.Helper()
	if serverKind != "spur" {
		t.Skip("the dashboard is Spur's own: gearmand has none to compare")
	}
	hp, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	hostPort := net.JoinHostPort("127.0.0.1", strconv.Itoa(hp))
	s := serverMode{name: "builtin"}.launch(t, append([]string{"--http-addr", hostPort}, extraArgs...)...)
	d := &dashServer{server: s, base: "http://" + hostPort}
	deadline := time.Now().Add(readyTimeout)
	for {
		res, err := http.Get(d.base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz not ready after %v: %v", d.base, readyTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d
}

// api GETs path of the JSON API into v.
func (d *dashServer) api(t *testing.T, path string, v any) {
	t.Helper()
	res, err := http.Get(d.base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, res.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

// admin sends one admin line and returns the answer: the lines before "." of a listing, or
// the one line of a command.
func (d *dashServer) admin(t *testing.T, line string, listing bool) []string {
	t.Helper()
	c, err := net.DialTimeout("tcp", d.addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(eventTimeout))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	var out []string
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("admin %q: %v after %q", line, err, out)
		}
		l = strings.TrimRight(l, "\r\n")
		if !listing {
			return []string{l}
		}
		if l == "." {
			return out
		}
		out = append(out, l)
	}
}

// ---------------------------------------------------------------------------
// A raw Gearman connection: just what the tests need to make jobs flow.

type gearConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialGear(t *testing.T, addr string) *gearConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &gearConn{c: c, r: bufio.NewReaderSize(c, 64<<10)}
}

func (g *gearConn) send(typ codec.Type, args ...string) error {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	_, err := g.c.Write(codec.AppendRequest(nil, typ, bs...))
	return err
}

// read returns the next packet's type and arguments (copied).
func (g *gearConn) read() (codec.Type, []string, error) {
	hdr := make([]byte, codec.HeaderSize)
	if _, err := io.ReadFull(g.r, hdr); err != nil {
		return 0, nil, err
	}
	buf := append(hdr, make([]byte, binary.BigEndian.Uint32(hdr[8:12]))...)
	if _, err := io.ReadFull(g.r, buf[codec.HeaderSize:]); err != nil {
		return 0, nil, err
	}
	p, _, err := codec.Parse(buf, 0)
	if err != nil {
		return 0, nil, err
	}
	args := make([]string, p.NArgs)
	for i := range args {
		args[i] = string(p.Args[i])
	}
	return p.Type, args, nil
}

// submit submits a background job (typ one of the SUBMIT_JOB_*_BG, or SUBMIT_JOB_EPOCH with
// the epoch before data in args) and returns its handle.
func (g *gearConn) submit(t *testing.T, typ codec.Type, args ...string) string {
	t.Helper()
	if err := g.send(typ, args...); err != nil {
		t.Fatal(err)
	}
	got, a, err := g.read()
	if err != nil || got != codec.JobCreated {
		t.Fatalf("submit %v: got %v %q, %v", args, got, a, err)
	}
	return a[0]
}

// submitMany pipelines n background submissions of fn (data i) and returns their handles.
func (g *gearConn) submitMany(t *testing.T, name func(i int) string, n int) []string {
	t.Helper()
	var buf []byte
	for i := range n {
		buf = codec.AppendRequest(buf, codec.SubmitJobBg, []byte(name(i)), nil, []byte(strconv.Itoa(i)))
	}
	if _, err := g.c.Write(buf); err != nil {
		t.Fatal(err)
	}
	handles := make([]string, n)
	for i := range handles {
		got, a, err := g.read()
		if err != nil || got != codec.JobCreated {
			t.Fatalf("submission %d: got %v %q, %v", i, got, a, err)
		}
		handles[i] = a[0]
	}
	return handles
}

// gearWorker works fns until stopped: answer says what to send back for each job
// (WORK_COMPLETE with its data, WORK_FAIL, or 0 to hold the job and never answer).
type gearWorker struct {
	g      *gearConn
	done   chan struct{}
	worked atomic.Int64
}

func startGearWorker(t *testing.T, addr, clientID string, fns []string, answer func(fn, data string) (codec.Type, string)) *gearWorker {
	t.Helper()
	w := &gearWorker{g: dialGear(t, addr), done: make(chan struct{})}
	if err := w.g.send(codec.SetClientID, clientID); err != nil {
		t.Fatal(err)
	}
	for _, fn := range fns {
		if err := w.g.send(codec.CanDo, fn); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		defer close(w.done)
		for {
			if w.g.send(codec.GrabJob) != nil {
				return
			}
			typ, a, err := w.g.read()
			if err != nil {
				return
			}
			switch typ {
			case codec.NoJob:
				if w.g.send(codec.PreSleep) != nil {
					return
				}
				for typ != codec.Noop {
					if typ, _, err = w.g.read(); err != nil {
						return
					}
				}
			case codec.JobAssign:
				reply, data := answer(a[1], a[2])
				w.worked.Add(1)
				switch reply {
				case codec.WorkComplete:
					err = w.g.send(codec.WorkComplete, a[0], data)
				case codec.WorkFail:
					err = w.g.send(codec.WorkFail, a[0])
				default: // hold it: read until the connection closes
					_, _ = io.Copy(io.Discard, w.g.r)
					return
				}
				if err != nil {
					return
				}
			}
		}
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *gearWorker) stop() {
	w.g.c.Close()
	<-w.done
}

// ---------------------------------------------------------------------------
// The browser.

// browser is one headless Chromium with one tab.
type browser struct {
	t   *testing.T
	ctx context.Context // the tab's; each action runs under a timeout derived from it
	mu  sync.Mutex
	js  []string // exceptions thrown in the page, console errors, Content-Security-Policy violations
}

// actionTimeout bounds each browser action; the browser itself ends with the test.
const actionTimeout = 30 * time.Second

func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := requireChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1200),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium's sandbox refuses to run as root (CI)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx}
	// Report every Content-Security-Policy violation (an inline style, a script or font from
	// elsewhere) as a console error, which the reader below records with the rest.
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `document.addEventListener('securitypolicyviolation',
			e => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))`,
	}); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("start chromium %s: %v", path, err)
	}
	messages := chromedp.Console(ctx)
	read := make(chan struct{})
	go func() {
		defer close(read)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.js = append(b.js, m.String())
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		b.checkErrors()
		cancelCtx()
		cancelAlloc()
		<-read
	})
	return b
}

func (b *browser) checkErrors() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, e := range b.js {
		if i == 5 {
			b.t.Errorf("in the page: %d more", len(b.js)-i)
			break
		}
		b.t.Errorf("in the page: %s", e)
	}
}

// do runs actions under actionTimeout.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("chromium: %v", err)
	}
}

// eval evaluates js in the page into a T.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("chromium: evaluate %s: %v", clip(js), err)
	}
	return v
}

// pageStats is window.spurStats (see app.js).
type pageStats struct {
	Polls        int       `json:"polls"`
	Renders      int       `json:"renders"`
	LastRenderMs float64   `json:"lastRenderMs"`
	MaxRenderMs  float64   `json:"maxRenderMs"`
	LoadMs       *float64  `json:"loadMs"`
	Errors       int       `json:"errors"`
	LastError    string    `json:"lastError"`
	RecentMs     []float64 `json:"recentMs"`
}

func (b *browser) stats() pageStats {
	b.t.Helper()
	return eval[pageStats](b, `window.spurStats || {}`)
}

// open loads the dashboard and waits for its first render.
func (b *browser) open(url string) {
	b.t.Helper()
	b.do(chromedp.Navigate(url))
	b.waitFor("the first render", func() (bool, string) {
		s := b.stats()
		return s.LoadMs != nil, fmt.Sprintf("%+v", s)
	})
}

// waitFor polls cond (true when met; the string says what was seen) for eventTimeout.
func (b *browser) waitFor(what string, cond func() (bool, string)) {
	b.t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waited %v for %s; last seen: %s", eventTimeout, what, seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// table reads a table body of the page: row key -> cell class -> text.
func (b *browser) table(name string) map[string]map[string]string {
	b.t.Helper()
	return eval[map[string]map[string]string](b, `(() => { const out = {};
		for (const tr of document.querySelectorAll('[data-body="`+name+`"] tr[data-key]')) {
			const cells = {};
			for (const td of tr.cells) for (const c of td.classList) if (c !== 'num') cells[c] = td.textContent.trim();
			cells['_class'] = tr.className;
			out[tr.dataset.key] = cells;
		}
		return out; })()`)
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	return eval[string](b, `(document.querySelector(`+strconv.Quote(sel)+`) || {textContent: ''}).textContent.trim()`)
}

// click clicks sel (a real mouse press and release at its place, as a person would).
func (b *browser) click(sel string) {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

func (b *browser) screenshot() []byte {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("chromium: screenshot: %v", err)
	}
	return buf
}

// ---------------------------------------------------------------------------
// The API's answers, as far as the tests compare them.

type apiFunction struct {
	Name   string `json:"name"`
	Queued struct {
		High   int `json:"high"`
		Normal int `json:"normal"`
		Low    int `json:"low"`
	} `json:"queued"`
	Scheduled    int      `json:"scheduled"`
	Running      int      `json:"running"`
	Workers      int      `json:"workers"`
	Total        int      `json:"total"`
	OldestAge    *float64 `json:"oldest_queued_age_s"`
	Paused       bool     `json:"paused"`
	Limit        int      `json:"limit"`
	Submitted    int      `json:"submitted"`
	Completed    int      `json:"completed"`
	Failed       int      `json:"failed"`
	Retried      int      `json:"retried"`
	DeadLettered int      `json:"dead_lettered"`
}

type apiStatus struct {
	Version       string         `json:"version"`
	Connections   int            `json:"connections"`
	ResultsStored int            `json:"results_stored"`
	DeadLetters   int            `json:"dead_letters"`
	Schedules     int            `json:"schedules"`
	Totals        map[string]int `json:"totals"`
	Functions     []apiFunction  `json:"functions"`
}

func (s *apiStatus) function(name string) *apiFunction {
	for i := range s.Functions {
		if s.Functions[i].Name == name {
			return &s.Functions[i]
		}
	}
	return nil
}

type apiWorkers struct {
	Workers []struct {
		ID       int    `json:"id"`
		ClientID string `json:"client_id"`
		Running  []struct {
			Handle   string  `json:"handle"`
			Function string  `json:"function"`
			RunningS float64 `json:"running_s"`
		} `json:"running"`
	} `json:"workers"`
}

type apiHandles struct {
	Jobs      []struct{ Handle string } `json:"jobs"`
	Schedules []struct {
		Handle string `json:"handle"`
		Paused bool   `json:"paused"`
	} `json:"schedules"`
	Dead []struct {
		Handle   string `json:"handle"`
		Function string `json:"function"`
	} `json:"dead"`
}

// pageNumber parses a number as the page prints it ("1,234").
func pageNumber(s string) int {
	n, err := strconv.Atoi(strings.ReplaceAll(s, ",", ""))
	if err != nil {
		return -1
	}
	return n
}

// pageSeconds parses a duration as the page prints it ("3.2s", "42s", "4m 05s").
func pageSeconds(s string) float64 {
	m := regexp.MustCompile(`^(?:(\d+)m )?([\d.]+)s$`).FindStringSubmatch(s)
	if m == nil {
		return math.NaN()
	}
	min, _ := strconv.Atoi(m[1])
	sec, _ := strconv.ParseFloat(m[2], 64)
	return float64(min)*60 + sec
}

// functionMismatch says how the page's functions table differs from st ("" when it does not).
func functionMismatch(page map[string]map[string]string, st *apiStatus) string {
	var diffs []string
	if len(page) != len(st.Functions) {
		diffs = append(diffs, fmt.Sprintf("%d rows, want %d", len(page), len(st.Functions)))
	}
	for _, f := range st.Functions {
		row, ok := page[f.Name]
		if !ok {
			diffs = append(diffs, f.Name+" missing")
			continue
		}
		for col, want := range map[string]int{"high": f.Queued.High, "normal": f.Queued.Normal, "low": f.Queued.Low,
			"scheduled": f.Scheduled, "running": f.Running, "workers": f.Workers, "completed": f.Completed,
			"failed": f.Failed, "dead": f.DeadLettered} {
			if got := pageNumber(row[col]); got != want {
				diffs = append(diffs, fmt.Sprintf("%s %s %q, want %d", f.Name, col, row[col], want))
			}
		}
		if wantState := map[bool]string{true: "paused", false: "active"}[f.Paused]; row["state"] != wantState {
			diffs = append(diffs, fmt.Sprintf("%s state %q, want %s", f.Name, row["state"], wantState))
		}
		if f.OldestAge == nil {
			if row["oldest"] != "" {
				diffs = append(diffs, fmt.Sprintf("%s oldest %q, want none", f.Name, row["oldest"]))
			}
		} else if got := pageSeconds(row["oldest"]); !(math.Abs(got-*f.OldestAge) < 3) {
			diffs = append(diffs, fmt.Sprintf("%s oldest %q, want about %.1fs", f.Name, row["oldest"], *f.OldestAge))
		}
	}
	return strings.Join(diffs, "; ")
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ---------------------------------------------------------------------------

func TestDashboardMatchesServer(t *testing.T) {
	d := startDashServer(t)
	b := startBrowser(t)

	if got := d.admin(t, "retry dash.fail 1 1s 1s", false); got[0] != "OK" {
		t.Fatalf("retry dash.fail 1 1s 1s: %q", got)
	}
	if got := d.admin(t, "schedule add dash.cron 0 4 * * * unique=nightly", false); !strings.HasPrefix(got[0], "OK ") {
		t.Fatalf("schedule add: %q", got)
	}
	ok := startGearWorker(t, d.addr, "dash-ok", []string{"dash.ok"}, func(_, data string) (codec.Type, string) {
		return codec.WorkComplete, "done " + data
	})
	failer := startGearWorker(t, d.addr, "dash-failer", []string{"dash.fail"}, func(string, string) (codec.Type, string) {
		return codec.WorkFail, ""
	})
	startGearWorker(t, d.addr, "dash-holder", []string{"dash.slow"}, func(string, string) (codec.Type, string) { return 0, "" })

	c := dialGear(t, d.addr)
	for _, p := range []struct {
		typ codec.Type
		n   int
	}{{codec.SubmitJobHighBg, 2}, {codec.SubmitJobBg, 3}, {codec.SubmitJobLowBg, 1}} {
		for i := range p.n {
			c.submit(t, p.typ, "dash.idle", "", strconv.Itoa(i))
		}
	}
	held := c.submit(t, codec.SubmitJobBg, "dash.slow", "", "held")
	c.submit(t, codec.SubmitJobBg, "dash.slow", "", "waits behind it")
	later := c.submit(t, codec.SubmitJobEpoch, "dash.later", "", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10), "in an hour")

	b.open(d.base + "/")
	if hidden := eval[bool](b, `document.getElementById('cluster').hidden`); !hidden {
		t.Error("the cluster panel is shown on a node without peers")
	}

	// Jobs flow for a while with the page open: the charts draw it.
	var okHandles []string
	var nOK, nFail int
	flowUntil := time.Now().Add(8 * time.Second)
	for i := 0; time.Now().Before(flowUntil); i++ {
		n := 4 + 3*(i%8) // 40 to 250 a second, so that the chart has something to draw
		okHandles = append(okHandles, c.submitMany(t, func(int) string { return "dash.ok" }, n)...)
		nOK += n
		if i%5 == 0 {
			c.submit(t, codec.SubmitJobBg, "dash.fail", "", "doomed "+strconv.Itoa(i))
			nFail++
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.waitFor("a throughput above 0/s and a drawn chart", func() (bool, string) {
		rate := b.text("#rate-completed")
		line := eval[string](b, `(document.querySelector('#chart-completed path.line') || {getAttribute: () => ''}).getAttribute('d')`)
		v, _ := strconv.ParseFloat(strings.TrimSuffix(strings.ReplaceAll(rate, ",", ""), "/s"), 64)
		return v > 0 && strings.Count(line, "L") >= 3, fmt.Sprintf("rate %q, path %q", rate, line)
	})
	shot := b.screenshot()
	if img, err := png.Decode(bytes.NewReader(shot)); err != nil || img.Bounds().Dx() < 1000 {
		t.Fatalf("screenshot: %v (%d bytes)", err, len(shot))
	}
	if out := os.Getenv("SPUR_DASHBOARD_PNG"); out != "" {
		if err := os.WriteFile(out, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", out, len(shot))
	}

	// Let the flow settle: every dash.ok job completed, every dash.fail job dead.
	var st apiStatus
	deadline := time.Now().Add(eventTimeout)
	for {
		d.api(t, "/api/status", &st)
		fo, ff := st.function("dash.ok"), st.function("dash.fail")
		if fo != nil && ff != nil && fo.Completed == nOK && ff.DeadLettered == nFail && st.DeadLetters == nFail {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the flow did not settle (%d completed, %d dead wanted): %+v", nOK, nFail, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ok.worked.Load() != int64(nOK) || failer.worked.Load() != int64(nFail) {
		t.Fatalf("workers worked %d and %d jobs, want %d and %d", ok.worked.Load(), failer.worked.Load(), nOK, nFail)
	}

	// The numbers on the page are the server's (read again until the page has polled).
	b.waitFor("the page to match /api/status", func() (bool, string) {
		d.api(t, "/api/status", &st)
		diffs := []string{functionMismatch(b.table("fn"), &st)}
		for name, want := range map[string]int{"queued": st.Totals["queued"], "running": st.Totals["running"],
			"workers": st.Totals["workers"], "submitted": st.Totals["submitted"], "completed": st.Totals["completed"],
			"failed": st.Totals["failed"], "dead letters": st.DeadLetters, "schedules": st.Schedules,
			"results stored": st.ResultsStored, "functions": len(st.Functions)} {
			if got := b.text(`#summary [data-key="` + name + `"] .v`); pageNumber(got) != want {
				diffs = append(diffs, fmt.Sprintf("summary %s: %q, want %d", name, got, want))
			}
		}
		diff := strings.Trim(strings.Join(diffs, "; "), "; ")
		return diff == "", diff
	})
	fns := b.table("fn")
	if f := st.function("dash.idle"); f == nil || f.Queued.High != 2 || f.Queued.Normal != 3 || f.Queued.Low != 1 || fns["dash.idle"]["high"] != "2" {
		t.Errorf("dash.idle: API %+v, page %v; want 2 high, 3 normal, 1 low queued", f, fns["dash.idle"])
	}
	if f := st.function("dash.later"); f == nil || f.Scheduled != 1 || fns["dash.later"]["scheduled"] != "1" {
		t.Errorf("dash.later: API %+v, page %v; want 1 scheduled", f, fns["dash.later"])
	}
	// ... and those of the admin protocol: FUNCTION TOTAL RUNNING WORKERS.
	adminStatus := d.admin(t, "status", true)
	if len(adminStatus) != len(fns) {
		t.Errorf("admin status has %d functions, the page %d: %q vs %v", len(adminStatus), len(fns), adminStatus, keys(fns))
	}
	for _, l := range adminStatus {
		f := strings.Split(l, "\t")
		row := fns[f[0]]
		if len(f) != 4 || row == nil {
			t.Errorf("admin status line %q: no such row on the page", l)
			continue
		}
		// Queued counts by priority include the scheduled ones (waiting for their time).
		total := pageNumber(row["high"]) + pageNumber(row["normal"]) + pageNumber(row["low"]) + pageNumber(row["running"])
		if strconv.Itoa(total) != f[1] || row["running"] != f[2] || row["workers"] != f[3] {
			t.Errorf("admin status %q; the page: total %d running %s workers %s", l, total, row["running"], row["workers"])
		}
	}

	// Workers, with what each runs.
	var ws apiWorkers
	d.api(t, "/api/workers", &ws)
	pw := b.table("workers")
	// The admin `workers` lists every connection (ID IP CLIENT-ID : FUNCTIONS...); the workers
	// are those with functions.
	var adminWorkers []string
	for _, l := range d.admin(t, "workers", true) {
		if id, fns, _ := strings.Cut(l, " : "); strings.TrimSpace(fns) != "" {
			adminWorkers = append(adminWorkers, strings.Fields(id)[0])
		}
	}
	sort.Strings(adminWorkers)
	if got := keys(pw); len(ws.Workers) != 3 || strings.Join(got, " ") != strings.Join(adminWorkers, " ") {
		t.Errorf("workers: page %v, admin workers %v, API %+v; want the 3 of this test", got, adminWorkers, ws)
	}
	for _, w := range ws.Workers {
		row := pw[strconv.Itoa(w.ID)]
		if row == nil {
			t.Errorf("worker %d (%s) not on the page", w.ID, w.ClientID)
			continue
		}
		if w.ClientID == "dash-holder" {
			if len(w.Running) != 1 || w.Running[0].Handle != held || !strings.Contains(row["running"], held) || !strings.Contains(row["running"], "for") {
				t.Errorf("the holder: API %+v, page %q; want it running %s", w, row["running"], held)
			}
		}
	}

	// Scheduled jobs, schedules and dead letters: the same handles as the API's.
	var sj, sc, dl apiHandles
	d.api(t, "/api/scheduled", &sj)
	d.api(t, "/api/schedules", &sc)
	d.api(t, "/api/dead", &dl)
	var want []string
	for _, j := range sj.Jobs {
		want = append(want, j.Handle)
	}
	sort.Strings(want)
	if got := keys(b.table("scheduled")); strings.Join(got, " ") != strings.Join(want, " ") || !strings.Contains(strings.Join(want, " "), later) {
		t.Errorf("scheduled jobs: page %v, API %v; want %s among them", got, want, later)
	}
	if len(sc.Schedules) != 1 {
		t.Fatalf("schedules: %+v, want the one added", sc)
	}
	schedule := sc.Schedules[0].Handle
	if row := b.table("schedules")[schedule]; row == nil || !strings.HasPrefix(row["next"], "in ") || row["state"] != "active" {
		t.Errorf("schedule %s on the page: %v; want active with a next run", schedule, row)
	}
	want = want[:0]
	for _, x := range dl.Dead {
		want = append(want, x.Handle)
	}
	sort.Strings(want)
	if got := keys(b.table("dead")); len(want) != nFail || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("dead letters: page %v, API %v; want %d", got, want, nFail)
	}
	if row := b.table("deadfn")["dash.fail"]; row == nil || pageNumber(row["n"]) != nFail {
		t.Errorf("dead letters of dash.fail on the page: %v, want %d", row, nFail)
	}

	// A result by handle.
	b.do(chromedp.SetValue(chromedp.CSS("#result-handle"), okHandles[0]))
	b.click(`#result-form button[type=submit]`)
	b.waitFor("the result of "+okHandles[0], func() (bool, string) {
		out := b.text("#result-out")
		return strings.Contains(out, "complete") && strings.Contains(out, "done 0"), out
	})

	// Buttons act on the server. Pause, then resume, a function.
	b.click(`[data-body="fn"] tr[data-key="dash.idle"] button[data-act="pause"]`)
	b.waitFor("dash.idle paused on the server and the page", func() (bool, string) {
		paused := d.admin(t, "show paused", true)
		var f apiFunction
		d.api(t, "/api/functions/dash.idle", &f)
		row := b.table("fn")["dash.idle"]
		return strings.Join(paused, ",") == "dash.idle" && f.Paused && row["state"] == "paused",
			fmt.Sprintf("show paused %q, API paused %v, page %v", paused, f.Paused, row)
	})
	b.click(`[data-body="fn"] tr[data-key="dash.idle"] button[data-act="resume"]`)
	b.waitFor("dash.idle resumed", func() (bool, string) {
		paused := d.admin(t, "show paused", true)
		row := b.table("fn")["dash.idle"]
		return len(paused) == 0 && row["state"] == "active", fmt.Sprintf("show paused %q, page %v", paused, row)
	})

	// Retry a dead letter: with no worker for it now, it waits queued again.
	failer.stop()
	retried := dl.Dead[0].Handle
	b.click(`[data-body="dead"] tr[data-key="` + retried + `"] button[data-act="retry"]`)
	b.waitFor(retried+" queued again", func() (bool, string) {
		var now apiHandles
		d.api(t, "/api/dead", &now)
		d.api(t, "/api/status", &st)
		f := st.function("dash.fail")
		_, onPage := b.table("dead")[retried]
		return len(now.Dead) == nFail-1 && f != nil && f.Queued.Normal == 1 && !onPage,
			fmt.Sprintf("%d dead, dash.fail %+v, still on the page %v", len(now.Dead), f, onPage)
	})

	// Pause the schedule; purge the rest of the dead letters (two clicks: it destroys).
	b.click(`[data-body="schedules"] tr[data-key="` + schedule + `"] button[data-act="sched-pause"]`)
	b.waitFor("the schedule paused", func() (bool, string) {
		d.api(t, "/api/schedules", &sc)
		return len(sc.Schedules) == 1 && sc.Schedules[0].Paused && b.table("schedules")[schedule]["state"] == "paused", fmt.Sprintf("%+v", sc)
	})
	purge := `[data-body="deadfn"] tr[data-key="dash.fail"] button[data-act="purge-fn"]`
	b.click(purge)
	if got := b.text(purge); !strings.HasPrefix(got, "Sure?") {
		t.Errorf("purge after one click: %q, want it asking Sure?", got)
	}
	d.api(t, "/api/dead", &dl)
	if len(dl.Dead) != nFail-1 {
		t.Errorf("one click purged: %d dead letters left, want %d", len(dl.Dead), nFail-1)
	}
	b.click(purge)
	b.waitFor("the dead letters purged", func() (bool, string) {
		d.api(t, "/api/dead", &dl)
		return len(dl.Dead) == 0 && len(b.table("dead")) == 0, fmt.Sprintf("%+v", dl)
	})

	s := b.stats()
	t.Logf("page: %d polls, %d renders, first render %.0f ms after navigation, slowest render %.1f ms, %d errors (%s)",
		s.Polls, s.Renders, *s.LoadMs, s.MaxRenderMs, s.Errors, s.LastError)
	if s.Errors != 0 {
		t.Errorf("the page saw %d failed polls, last: %s", s.Errors, s.LastError)
	}
}

func TestDashboardThousandFunctions(t *testing.T) {
	const nFunctions = 1000
	d := startDashServer(t)
	b := startBrowser(t)
	c := dialGear(t, d.addr)
	name := func(i int) string { return fmt.Sprintf("load.%04d", i) }
	c.submitMany(t, name, nFunctions)
	c.submitMany(t, name, nFunctions) // two jobs each, so that every row has an oldest age that moves
	startGearWorker(t, d.addr, "load-holder", []string{name(0)}, func(string, string) (codec.Type, string) { return 0, "" })

	start := time.Now()
	b.open(d.base + "/")
	s := b.stats()
	loadWall := time.Since(start)
	t.Logf("1,000 functions: first full render %.0f ms after navigation start (%v from the test's Navigate), that render %.1f ms",
		*s.LoadMs, loadWall.Round(time.Millisecond), s.LastRenderMs)
	if *s.LoadMs > 5000 {
		t.Errorf("the page took %.0f ms to show 1,000 functions, want well under 5 s", *s.LoadMs)
	}
	if got := b.text(`[data-count="fn"]`); got != "1,000" {
		t.Errorf("function count %q, want 1,000", got)
	}
	if rows := len(b.table("fn")); rows != 200 {
		t.Errorf("%d rows shown before show more, want the cap of 200", rows)
	}

	// Show them all; the page must keep polling and rendering, every render under a second.
	b.click(`[data-more="fn"] button[data-act="more"]`)
	b.waitFor("all 1,000 rows", func() (bool, string) {
		n := len(b.table("fn"))
		return n == nFunctions, fmt.Sprintf("%d rows", n)
	})
	before := b.stats()
	b.waitFor("five more polls rendered", func() (bool, string) {
		s = b.stats()
		return s.Renders >= before.Renders+5, fmt.Sprintf("%+v", s)
	})
	t.Logf("1,000 rows shown: last render %.1f ms, slowest render %.1f ms over %d renders; the last ones (ms): %v", s.LastRenderMs, s.MaxRenderMs, s.Renders, s.RecentMs)
	if s.MaxRenderMs > 1000 {
		t.Errorf("a render took %.0f ms with 1,000 functions, want under 1 s", s.MaxRenderMs)
	}
	var st apiStatus
	d.api(t, "/api/status", &st)
	if diff := functionMismatch(b.table("fn"), &st); diff != "" {
		// Ages move between the two reads; everything else is still.
		t.Logf("page vs API right after a poll: %s", diff)
	}
	rows := b.table("fn")
	if rows[name(999)]["normal"] != "2" || rows[name(0)]["running"] != "1" || rows[name(0)]["workers"] != "1" {
		t.Errorf("rows %s %v and %s %v; want 2 queued, and 1 running with 1 worker", name(999), rows[name(999)], name(0), rows[name(0)])
	}

	// The filter box narrows it to one.
	b.do(chromedp.SendKeys(chromedp.CSS(`[data-filter="fn"]`), name(777)))
	b.waitFor("the filter", func() (bool, string) {
		rows := b.table("fn")
		return len(rows) == 1 && rows[name(777)] != nil, fmt.Sprintf("%v", keys(rows))
	})
	if got := b.text(`[data-count="fn"]`); got != "1 of 1,000" {
		t.Errorf("count with a filter: %q, want 1 of 1,000", got)
	}

	// A hidden tab polls every 15 s, not every second; shown again, it polls at once.
	setHidden := func(hidden bool) {
		eval[bool](b, `Object.defineProperty(document, 'hidden', {configurable: true, get: () => `+strconv.FormatBool(hidden)+`});
			document.dispatchEvent(new Event('visibilitychange')); true`)
	}
	setHidden(true)
	time.Sleep(1500 * time.Millisecond) // the poll already due may still run
	hiddenFrom := b.stats().Polls
	time.Sleep(3 * time.Second)
	if n := b.stats().Polls - hiddenFrom; n != 0 {
		t.Errorf("%d polls in 3 s while the tab was hidden, want none", n)
	}
	setHidden(false)
	shown := time.Now()
	for b.stats().Polls == hiddenFrom {
		if time.Since(shown) > 2*time.Second { // well before the hidden tab's next poll
			t.Fatalf("no poll within 2 s of the tab being shown again")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDashboardCluster: a node with three peers (two real spurd nodes, one with its own
// durable log, and an address nobody listens on) shows the cluster panel: one row per node
// in --peer order with its state, queued, running and workers as /api/cluster/status says,
// the dead one down with its error, the sum, and a node's Done/s while jobs flow through it.
func TestDashboardCluster(t *testing.T) {
	nb := serverMode{name: "builtin"}.launch(t, "--node-name", "b")
	nc := serverMode{name: "durable", durable: true}.launch(t, "--node-name", "c")
	deadPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	dead := net.JoinHostPort("127.0.0.1", strconv.Itoa(deadPort))
	d := startDashServer(t, "--node-name", "a", "--peer", nb.addr, "--peer", nc.addr+","+dead, "--peer-timeout", "500ms")
	for addr, n := range map[string]int{d.addr: 1, nb.addr: 2, nc.addr: 3} {
		c := dialGear(t, addr)
		for i := range n {
			c.submit(t, codec.SubmitJobBg, "cl.idle", "", strconv.Itoa(i))
		}
	}
	startGearWorker(t, nb.addr, "b-worker", []string{"cl.ok"}, func(_, data string) (codec.Type, string) { return codec.WorkComplete, data })
	b := startBrowser(t)
	b.open(d.base + "/")
	if hidden := eval[bool](b, `document.getElementById('cluster').hidden`); hidden {
		t.Fatal("the cluster panel is hidden on a node with peers")
	}

	// Jobs flow through b for a while: its Done/s rises above 0.
	c := dialGear(t, nb.addr)
	flowUntil := time.Now().Add(10 * time.Second)
	for time.Now().Before(flowUntil) {
		c.submitMany(t, func(int) string { return "cl.ok" }, 20)
		time.Sleep(100 * time.Millisecond)
		if v, _ := strconv.ParseFloat(strings.ReplaceAll(b.table("cluster")[nb.addr]["rate"], ",", ""), 64); v > 0 {
			break
		}
	}
	if v, _ := strconv.ParseFloat(strings.ReplaceAll(b.table("cluster")[nb.addr]["rate"], ",", ""), 64); !(v > 0) {
		t.Errorf("b's Done/s stayed %q while jobs flowed", b.table("cluster")[nb.addr]["rate"])
	}

	type clusterNode struct {
		Name   string         `json:"name"`
		Addr   string         `json:"addr"`
		Up     bool           `json:"up"`
		Error  string         `json:"error"`
		Totals map[string]int `json:"totals"`
	}
	var cl struct {
		Nodes []clusterNode `json:"nodes"`
		Sum   struct {
			Up     int            `json:"up"`
			Nodes  int            `json:"nodes"`
			Totals map[string]int `json:"totals"`
		} `json:"sum"`
	}
	b.waitFor("the cluster panel to match /api/cluster/status", func() (bool, string) {
		d.api(t, "/api/cluster/status?functions=false", &cl)
		rows := b.table("cluster")
		var diffs []string
		if len(cl.Nodes) != 4 || len(rows) != 5 {
			return false, fmt.Sprintf("%d nodes, %d rows: %v", len(cl.Nodes), len(rows), rows)
		}
		for i, n := range cl.Nodes {
			row := rows[n.Addr]
			want := map[string]string{"addr": n.Addr, "state": "up", "queued": strconv.Itoa(n.Totals["queued"]),
				"running": strconv.Itoa(n.Totals["running"]), "workers": strconv.Itoa(n.Totals["workers"])}
			if !n.Up {
				want = map[string]string{"addr": n.Addr, "state": "down", "queued": "—", "error": n.Error}
			}
			for col, v := range want {
				if row[col] != v {
					diffs = append(diffs, fmt.Sprintf("node %d %s: %s %q, want %q", i, n.Addr, col, row[col], v))
				}
			}
			if !strings.HasPrefix(row["name"], map[bool]string{true: n.Name, false: "—"}[n.Up]) {
				diffs = append(diffs, fmt.Sprintf("node %d name %q, want %q", i, row["name"], n.Name))
			}
		}
		sum := rows["sum"]
		if sum["state"] != fmt.Sprintf("%d of %d up", cl.Sum.Up, cl.Sum.Nodes) || sum["queued"] != num(cl.Sum.Totals["queued"]) ||
			sum["workers"] != strconv.Itoa(cl.Sum.Totals["workers"]) {
			diffs = append(diffs, fmt.Sprintf("sum row %v, want %+v", sum, cl.Sum))
		}
		return len(diffs) == 0, strings.Join(diffs, "; ")
	})
	// In --peer order: a (this node), b, c, then the dead address; the sums as queued on each.
	order := []string{d.addr, nb.addr, nc.addr, dead}
	for i, n := range cl.Nodes {
		if n.Addr != order[i] && !(i == 0 && strings.HasSuffix(order[0], ":"+strings.Split(n.Addr, ":")[1])) {
			t.Errorf("node %d is %s, want %s", i, n.Addr, order[i])
		}
	}
	if q := []int{cl.Nodes[0].Totals["queued"], cl.Nodes[1].Totals["queued"], cl.Nodes[2].Totals["queued"]}; q[0] != 1 || q[2] != 3 || q[1] < 2 ||
		cl.Sum.Up != 3 || cl.Nodes[3].Up || !strings.Contains(cl.Nodes[3].Error, "refused") || cl.Nodes[1].Totals["workers"] != 1 {
		t.Errorf("cluster: %+v", cl)
	}
	if out := os.Getenv("SPUR_DASHBOARD_CLUSTER_PNG"); out != "" {
		if err := os.WriteFile(out, b.screenshot(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if s := b.stats(); s.Errors != 0 {
		t.Errorf("the page saw %d failed polls, last: %s", s.Errors, s.LastError)
	}
}

// num formats n as the page does ("1,234").
func num(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
