package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// service is one `engagements serve` subprocess on its own data directory
// and a free loopback port, logging (JSON) to a file beside the data.
type service struct {
	URL     string
	Data    string
	LogFile string
	Started time.Time

	cmd  *exec.Cmd
	done chan struct{}
	err  error // from Wait, once done is closed
}

// startService starts bin serve with the given sync policy; extra flags
// follow. It returns as soon as the process runs; waitReady says when it
// answers.
func startService(bin, data, logFile, sync string) (*service, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	log, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, "serve", "--data", data, "--http", addr, "--sync", sync,
		"--rate-limit", "0", "--log-format", "json")
	cmd.Stdout = io.Discard
	cmd.Stderr = log
	s := &service{URL: "http://" + addr, Data: data, LogFile: logFile, cmd: cmd, done: make(chan struct{})}
	s.Started = time.Now()
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		s.err = cmd.Wait()
		log.Close()
		close(s.done)
	}()
	return s, nil
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before serve binds it; on a benchmark machine that is unlikely.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls /readyz until it answers 200 and returns the time from
// the process start. /readyz itself waits (up to 2 s a call) for the
// projection, so the poll interval matters only before serve listens.
func (s *service) waitReady(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		select {
		case <-s.done:
			return 0, fmt.Errorf("serve exited before it was ready (%v); log: %s", s.err, s.logTail())
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/readyz", nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(s.Started), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("serve not ready within %s; log: %s", timeout, s.logTail())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// adminToken reads the token the first start wrote to <data>/admin.token.
func (s *service) adminToken() (string, error) {
	b, err := os.ReadFile(filepath.Join(s.Data, "admin.token"))
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// memory is the process's peak and current resident set size in MiB, from
// /proc/<pid>/status (VmHWM and VmRSS).
func (s *service) memory() (peak, current float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read process status: %w", err)
	}
	field := func(name string) (float64, error) {
		for line := range strings.Lines(string(b)) {
			if rest, ok := strings.CutPrefix(line, name+":"); ok {
				kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
				return kb / 1024, err
			}
		}
		return 0, fmt.Errorf("no %s in /proc/<pid>/status", name)
	}
	if peak, err = field("VmHWM"); err != nil {
		return 0, 0, err
	}
	current, err = field("VmRSS")
	return peak, current, err
}

// cpuTime is the CPU time (user and system) the process has used so far,
// from /proc/<pid>/stat.
func (s *service) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("read process stat: %w", err)
	}
	// The fields after the command (in parentheses, which may hold spaces):
	// state is the 3rd field of stat, utime and stime the 14th and 15th.
	_, rest, ok := bytes.Cut(b, []byte(") "))
	f := strings.Fields(string(rest))
	if !ok || len(f) < 13 {
		return 0, errors.New("read process stat: unexpected format")
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read process stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go runs on.
const clockTicks = 100

// stop sends SIGTERM and waits for the exit; anything but a clean exit 0
// within the timeout is an error (and the process is killed).
func (s *service) stop(timeout time.Duration) error {
	select {
	case <-s.done:
		return fmt.Errorf("serve had already exited: %v", s.err)
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM: %w", err)
	}
	select {
	case <-s.done:
	case <-time.After(timeout):
		s.kill()
		return fmt.Errorf("serve did not exit within %s of SIGTERM; killed", timeout)
	}
	if s.err != nil {
		return fmt.Errorf("serve exited with %v after SIGTERM; log: %s", s.err, s.logTail())
	}
	return nil
}

// kill ends the process if it still runs and waits for it; for cleanup.
func (s *service) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// logRecord finds the first JSON log line whose msg is msg.
func (s *service) logRecord(msg string) (map[string]any, bool) {
	f, err := os.Open(s.LogFile)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	needle := []byte(`"msg":` + strconv.Quote(msg))
	for sc.Scan() {
		if !bytes.Contains(sc.Bytes(), needle) {
			continue
		}
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil {
			return rec, true
		}
	}
	return nil, false
}

// logLevel counts the log lines at a level (e.g. ERROR), to notice trouble
// the load generator would not see, and returns up to three distinct
// messages of them (msg and err). Lines about /readyz are left out: serve
// logs the 503s of the harness's own readiness polls during catch-up.
func (s *service) logLevel(level string) (n int, samples []string) {
	f, err := os.Open(s.LogFile)
	if err != nil {
		return 0, nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	needle := []byte(`"level":"` + level + `"`)
	for sc.Scan() {
		if !bytes.Contains(sc.Bytes(), needle) || bytes.Contains(sc.Bytes(), []byte(`"path":"/readyz"`)) {
			continue
		}
		n++
		var rec struct {
			Msg string `json:"msg"`
			Err string `json:"err"`
		}
		if len(samples) < 3 && json.Unmarshal(sc.Bytes(), &rec) == nil {
			sample := rec.Msg
			if rec.Err != "" {
				sample += ": " + rec.Err
			}
			if !slices.Contains(samples, sample) {
				samples = append(samples, sample)
			}
		}
	}
	return n, samples
}

// logTail is the end of the log, for error messages.
func (s *service) logTail() string {
	b, err := os.ReadFile(s.LogFile)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// errNotCreated is a setup request that did not answer 201.
var errNotCreated = errors.New("not created")

// createEngagements records n agreements through the API and returns their
// ids: the engagements the append clients write to.
func (s *service) createEngagements(ctx context.Context, token string, n int) ([]string, error) {
	ids := make([]string, n)
	client := &http.Client{Timeout: 30 * time.Second}
	for i := range ids {
		body := fmt.Sprintf(`{"kind":"agreement","title":"Benchmark MOU %d","parties":["IOM","WHO"]}`, i)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/v1/engagements", strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("create engagement: %w", err)
		}
		var e struct {
			ID string `json:"id"`
		}
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || err != nil || e.ID == "" {
			return nil, fmt.Errorf("create engagement: %w (status %d, %v)", errNotCreated, resp.StatusCode, err)
		}
		ids[i] = e.ID
	}
	return ids, nil
}
