package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/spf13/cobra"

	"github.com/spur-gearman/spur/cmd/spur/client"
)

func (a *app) topCmd() *cobra.Command {
	var every time.Duration
	c := &cobra.Command{
		Use:   "top",
		Short: "a live full-screen view of functions, workers and throughput",
		Long: `A live view of the server, polled every --interval: per function its jobs (total, queued,
running), workers and DONE/S, and the worker connections.

DONE/S is how many of the function's jobs ended (completed or failed) per second between two
polls, from spurd's counters ("show stats"). gearmand has none: against it DONE/S is how fast
the function's total falls, exact while no new jobs arrive, a lower bound while they do.

Keys: q quit, s next sort column, p pause/resume refreshing, up/down scroll.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if every < 100*time.Millisecond {
				return usagef("--interval %s: at least 100ms", every)
			}
			m := &topModel{a: a, every: every, prev: map[string]int{}, rates: map[string]float64{}}
			defer m.close()
			p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithInput(cmd.InOrStdin()), tea.WithOutput(cmd.OutOrStdout()))
			_, err := p.Run()
			return err
		},
	}
	c.Flags().DurationVarP(&every, "interval", "n", time.Second, "refresh interval")
	return c
}

// sortKeys are the columns s cycles through.
var sortKeys = []string{"function", "total", "queued", "running", "workers", "done/s"}

type topRow struct {
	functionRow
	rate float64
}

// topModel is the bubbletea model of `spur top`. Polls run one at a time (the next tick is
// asked for when a poll's answer arrives), so the connection has one user.
type topModel struct {
	a     *app
	every time.Duration
	c     *client.Client

	rows        []topRow
	workers     []workerRow
	err         error
	polled      time.Time
	prev        map[string]int // each function's total (or jobs ended, with stats) at the previous poll
	noStats     bool           // the server has no "show stats" (gearmand)
	prevAt      time.Time
	rates       map[string]float64
	connections int

	sortBy        int
	paused        bool
	offset        int
	width, height int
}

type tickMsg struct{}

type pollMsg struct {
	at      time.Time
	funcs   []functionRow
	workers []workerRow
	ended   map[string]int // jobs ended per function since the server's start; nil without "show stats"
	err     error
}

func (m *topModel) close() {
	if m.c != nil {
		m.c.Close()
	}
}

func (m *topModel) Init() tea.Cmd { return m.poll }

// poll reads status, prioritystatus and workers; a broken connection is dialled again at the
// next poll.
func (m *topModel) poll() tea.Msg {
	if m.c == nil {
		c, err := m.a.dial()
		if err != nil {
			return pollMsg{at: time.Now(), err: err}
		}
		m.c = c
	}
	funcs, err := readFunctions(m.c)
	var workers []workerRow
	if err == nil {
		workers, err = readWorkers(m.c)
	}
	var ended map[string]int
	if err == nil && !m.noStats {
		ended, err = readEnded(m.c)
		if isUnsupported(err) {
			m.noStats, err = true, nil
		}
	}
	if err != nil {
		m.c.Close()
		m.c = nil
	}
	return pollMsg{at: time.Now(), funcs: funcs, workers: workers, ended: ended, err: err}
}

// readEnded reads spurd's `show stats`: each function's completed plus failed jobs.
func readEnded(c *client.Client) (map[string]int, error) {
	lines, err := adminOn(c, "show stats")
	if err != nil {
		return nil, err
	}
	ended := make(map[string]int, len(lines))
	for _, l := range lines {
		f := fields(l, 6)
		ended[unescape(f[0])] = atoi(f[2]) + atoi(f[3])
	}
	return ended, nil
}

func (m *topModel) tick() tea.Cmd {
	return tea.Tick(m.every, func(time.Time) tea.Msg { return tickMsg{} })
}

func (m *topModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tea.KeyMsg:
		switch msg.String() {
		case "q", "ctrl+c", "esc":
			return m, tea.Quit
		case "s":
			m.sortBy = (m.sortBy + 1) % len(sortKeys)
			m.sortRows()
		case "p":
			m.paused = !m.paused
			if !m.paused {
				return m, m.poll
			}
		case "up", "k":
			m.offset = max(0, m.offset-1)
		case "down", "j":
			m.offset = min(m.offset+1, max(0, len(m.rows)-1))
		}
	case tickMsg:
		if !m.paused {
			return m, m.poll
		}
	case pollMsg:
		m.apply(msg)
		if m.paused {
			return m, nil
		}
		return m, m.tick()
	}
	return m, nil
}

// apply takes a poll's answer, computing each function's DONE/S from the fall of its total.
func (m *topModel) apply(p pollMsg) {
	m.err = p.err
	if p.err != nil {
		return
	}
	dt := p.at.Sub(m.prevAt).Seconds()
	next := make(map[string]int, len(p.funcs))
	m.rows = m.rows[:0]
	for _, f := range p.funcs {
		now, done := f.Total, func(before, now int) int { return before - now } // the total's fall
		if p.ended != nil {
			now, done = p.ended[f.Function], func(before, now int) int { return now - before } // the counter's rise
		}
		next[f.Function] = now
		if before, ok := m.prev[f.Function]; ok && !m.prevAt.IsZero() && dt > 0 {
			m.rates[f.Function] = float64(max(0, done(before, now))) / dt
		}
		m.rows = append(m.rows, topRow{f, m.rates[f.Function]})
	}
	m.prev, m.prevAt, m.polled = next, p.at, p.at
	m.connections = len(p.workers)
	m.workers = m.workers[:0]
	for _, w := range p.workers {
		if len(w.Functions) > 0 { // workers only: not clients, nor top's own connection
			m.workers = append(m.workers, w)
		}
	}
	m.sortRows()
}

func queued(r functionRow) int { return r.Total - r.Running }

func (m *topModel) sortRows() {
	key := sortKeys[m.sortBy]
	sort.SliceStable(m.rows, func(i, j int) bool {
		a, b := m.rows[i], m.rows[j]
		var x, y float64
		switch key {
		case "function":
			return a.Function < b.Function
		case "total":
			x, y = float64(a.Total), float64(b.Total)
		case "queued":
			x, y = float64(queued(a.functionRow)), float64(queued(b.functionRow))
		case "running":
			x, y = float64(a.Running), float64(b.Running)
		case "workers":
			x, y = float64(a.Workers), float64(b.Workers)
		case "done/s":
			x, y = a.rate, b.rate
		}
		if x != y {
			return x > y // the busiest first
		}
		return a.Function < b.Function
	})
}

var (
	titleStyle  = lipgloss.NewStyle().Bold(true)
	headerStyle = lipgloss.NewStyle().Reverse(true)
)

func (m *topModel) View() string {
	var b strings.Builder
	state := "every " + m.every.String()
	if m.paused {
		state = "PAUSED"
	}
	b.WriteString(titleStyle.Render(fmt.Sprintf("spur top  %s  %s  sort: %s", m.a.addr(), state, sortKeys[m.sortBy])))
	b.WriteByte('\n')
	if m.err != nil {
		b.WriteString("error: " + m.err.Error() + "\n")
	} else if !m.polled.IsZero() {
		b.WriteString("updated " + m.polled.Format("15:04:05") + "\n")
	} else {
		b.WriteString("connecting...\n")
	}
	var total, run, qd int
	var rate float64
	for _, r := range m.rows {
		total += r.Total
		run += r.Running
		qd += queued(r.functionRow)
		rate += r.rate
	}
	fmt.Fprintf(&b, "functions %d   jobs %d   queued %d   running %d   connections %d   done/s %.1f\n\n",
		len(m.rows), total, qd, run, m.connections, rate)

	// The functions get what the workers' panel (a third of the screen at most) leaves.
	height := m.height
	if height <= 0 {
		height = 24
	}
	workerLines := min(len(m.workers), max(1, height/3))
	fnLines := max(1, height-6-workerLines-3)
	m.offset = min(m.offset, max(0, len(m.rows)-1))
	end := min(len(m.rows), m.offset+fnLines)
	lines := []string{"FUNCTION\tTOTAL\tQUEUED\tRUNNING\tWORKERS\tDONE/S"}
	for _, r := range m.rows[m.offset:end] {
		lines = append(lines, fmt.Sprintf("%s\t%d\t%d\t%d\t%d\t%.1f", r.Function, r.Total, queued(r.functionRow), r.Running, r.Workers, r.rate))
	}
	m.writeTable(&b, lines)
	if end < len(m.rows) || m.offset > 0 {
		fmt.Fprintf(&b, "(%d-%d of %d functions)\n", m.offset+1, end, len(m.rows))
	}
	b.WriteByte('\n')
	lines = []string{"WORKER\tADDRESS\tCLIENT-ID\tSTATE\tFUNCTIONS"}
	for _, w := range m.workers[:workerLines] {
		state := "active"
		if w.Draining {
			state = "draining"
		}
		lines = append(lines, w.ID+"\t"+w.Address+"\t"+w.ClientID+"\t"+state+"\t"+strings.Join(w.Functions, " "))
	}
	m.writeTable(&b, lines)
	b.WriteString("\nq quit  s sort  p pause  up/down scroll\n")
	return b.String()
}

// writeTable aligns tab-separated lines, the first as a highlighted header, each cut to the
// screen's width.
func (m *topModel) writeTable(b *strings.Builder, lines []string) {
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	for _, l := range lines {
		fmt.Fprintln(tw, l)
	}
	tw.Flush()
	for i, l := range strings.Split(strings.TrimSuffix(sb.String(), "\n"), "\n") {
		if m.width > 0 && len(l) > m.width {
			l = l[:m.width]
		}
		if i == 0 {
			l = headerStyle.Render(l)
		}
		b.WriteString(l + "\n")
	}
}
