// Package wake runs a command when mail arrives for an idle agent: the
// engine behind `relay-mcp watch`. The watcher hears content-free mail
// events from the relay (protocol.Mail: "ID has N unread, newest seq S")
// and runs the configured command — typically a resumable headless agent
// turn such as `claude -p --resume SESSION "check your relay messages"` —
// once per burst of mail, never two at once for one id, and records each
// run's exit code and duration in a log line and a small state file.
package wake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/claude-relay/claude-relay/internal/atomicfile"
	"github.com/claude-relay/claude-relay/protocol"
)

// Options configure a Runner.
type Options struct {
	ID      string // the watched id
	Command string // run with sh -c (cmd /C on Windows)
	// Debounce is how long mail must stop coming before the command runs,
	// so a burst of messages wakes the agent once. Defaults to 2s.
	Debounce time.Duration
	// MaxDelay bounds the debounce under a steady stream of mail.
	// Defaults to 10 × Debounce.
	MaxDelay time.Duration
	// RunTimeout kills a command that runs longer. Defaults to 30m.
	RunTimeout time.Duration
	// MaxRuns ends Run after that many runs; 0 means no limit.
	MaxRuns int
	// SkipOnline leaves mail alone while the id is online: its own
	// relay-mcp has it, and its hooks show it at the next turn.
	SkipOnline bool
	// StateFile, when set, is rewritten after every run (JSON State).
	StateFile string
	// Output receives the command's stdout and stderr. Defaults to discard.
	Output io.Writer
	// Env is added to the command's environment.
	Env    []string
	Logger *slog.Logger
}

// Run is one run of the command, as recorded.
type Run struct {
	Started    time.Time `json:"started"`
	DurationMS int64     `json:"duration_ms"`
	ExitCode   int       `json:"exit_code"`       // -1 when it could not start or was killed
	Error      string    `json:"error,omitempty"` // why, when ExitCode is -1 or a timeout
	Count      int       `json:"count"`           // unread mail when it started
	Seq        uint64    `json:"seq"`             // newest mail seq when it started
}

// State is what the state file holds.
type State struct {
	ID      string    `json:"id"`
	Command string    `json:"command"`
	Runs    int       `json:"runs"`
	Last    *Run      `json:"last,omitempty"`
	Updated time.Time `json:"updated"`
}

// Runner debounces mail events and runs the command.
type Runner struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	latest protocol.Mail
	kick   chan struct{} // cap 1: a new event
	state  State
}

// New returns a Runner; call Notify for every mail event and Run once.
func New(opts Options) *Runner {
	if opts.Debounce <= 0 {
		opts.Debounce = 2 * time.Second
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 10 * opts.Debounce
	}
	if opts.RunTimeout <= 0 {
		opts.RunTimeout = 30 * time.Minute
	}
	if opts.Output == nil {
		opts.Output = io.Discard
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{opts: opts, log: opts.Logger, kick: make(chan struct{}, 1), state: State{ID: opts.ID, Command: opts.Command}}
}

// Notify records a mail event. It never blocks.
func (r *Runner) Notify(m protocol.Mail) {
	if m.For != r.opts.ID {
		return
	}
	r.mu.Lock()
	if m.Seq >= r.latest.Seq {
		r.latest = m
	}
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *Runner) pending(handled uint64) (protocol.Mail, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.latest, r.latest.Count > 0 && r.latest.Seq > handled && !(r.opts.SkipOnline && r.latest.Online)
}

// Run waits for mail and runs the command, one run at a time, until ctx
// ends or MaxRuns runs are done. Mail that arrives while the command runs
// leads to one more run after it (the agent may have read its mail before
// that mail came).
func (r *Runner) Run(ctx context.Context) error {
	var handled uint64
	for runs := 0; r.opts.MaxRuns == 0 || runs < r.opts.MaxRuns; runs++ {
		// Wait for mail newer than what the last run started after.
		for {
			if _, ok := r.pending(handled); ok {
				break
			}
			select {
			case <-ctx.Done():
				return nil
			case <-r.kick:
			}
		}
		// Debounce: wait until mail stops coming for Debounce (at most MaxDelay).
		quiet := time.NewTimer(r.opts.Debounce)
		limit := time.NewTimer(r.opts.MaxDelay)
	settle:
		for {
			select {
			case <-ctx.Done():
				quiet.Stop()
				limit.Stop()
				return nil
			case <-r.kick:
				quiet.Reset(r.opts.Debounce)
			case <-quiet.C:
				break settle
			case <-limit.C:
				break settle
			}
		}
		quiet.Stop()
		limit.Stop()
		m, ok := r.pending(handled)
		if !ok { // the agent came online meanwhile (SkipOnline)
			runs--
			continue
		}
		handled = m.Seq
		r.runOnce(ctx, m)
	}
	return nil
}

func (r *Runner) runOnce(ctx context.Context, m protocol.Mail) {
	rctx, cancel := context.WithTimeout(ctx, r.opts.RunTimeout)
	defer cancel()
	var cmd *exec.Cmd
	if runtime.GOOS == "windows" {
		cmd = exec.CommandContext(rctx, "cmd", "/C", r.opts.Command)
	} else {
		cmd = exec.CommandContext(rctx, "sh", "-c", r.opts.Command)
	}
	cmd.Env = append(os.Environ(), r.opts.Env...)
	cmd.Env = append(cmd.Env,
		"RELAY_WATCH_ID="+r.opts.ID,
		"RELAY_WATCH_COUNT="+strconv.Itoa(m.Count),
		"RELAY_WATCH_SEQ="+strconv.FormatUint(m.Seq, 10),
	)
	cmd.Stdout, cmd.Stderr = r.opts.Output, r.opts.Output
	cmd.WaitDelay = 5 * time.Second
	run := Run{Started: time.Now().UTC(), Count: m.Count, Seq: m.Seq}
	r.log.Info("mail waits; running the wake command", "id", r.opts.ID, "count", m.Count, "seq", m.Seq)
	err := cmd.Run()
	run.DurationMS = time.Since(run.Started).Milliseconds()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case rctx.Err() == context.DeadlineExceeded:
		run.ExitCode, run.Error = -1, fmt.Sprintf("killed after --run-timeout %s", r.opts.RunTimeout)
	case errors.As(err, &ee):
		run.ExitCode = ee.ExitCode()
	default:
		run.ExitCode, run.Error = -1, err.Error()
	}
	lvl := slog.LevelInfo
	if run.ExitCode != 0 {
		lvl = slog.LevelWarn
	}
	r.log.Log(ctx, lvl, "wake command finished", "id", r.opts.ID, "exit_code", run.ExitCode, "duration", time.Duration(run.DurationMS)*time.Millisecond, "err", run.Error)
	r.mu.Lock()
	r.state.Runs++
	r.state.Last = &run
	r.state.Updated = time.Now().UTC()
	st := r.state
	r.mu.Unlock()
	if r.opts.StateFile != "" {
		if err := writeState(r.opts.StateFile, st); err != nil {
			r.log.Warn("could not write the watch state file", "path", r.opts.StateFile, "err", err)
		}
	}
}

// State returns what has been recorded so far.
func (r *Runner) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

func writeState(path string, st State) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o600)
}

// ReadState reads a state file written by a Runner.
func ReadState(path string) (State, error) {
	var st State
	b, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}
