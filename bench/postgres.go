package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// The PostgreSQL peer: what teams that build an event-sourced system
// usually pick instead of JetStream, an events table with a unique
// (stream_id, version) — the pattern of Marten and Message DB — on a
// PostgreSQL server the harness starts for itself (Debian's package, `make
// postgres` installs it): initdb in a temporary directory, a free loopback
// port, the unix socket in the same directory, fsync and synchronous_commit
// on; stopped with `pg_ctl stop -m fast` and removed afterwards.

// pgUser is the database superuser initdb creates.
const pgUser = "bench"

// pgGlob is where Debian's packages put initdb (a variable for the test of
// a machine without PostgreSQL).
var pgGlob = "/usr/lib/postgresql/*/bin/initdb"

// findPostgres returns the directory holding initdb, postgres and pg_ctl:
// the one of initdb on PATH, else the newest /usr/lib/postgresql/<ver>/bin
// (where Debian puts them, off PATH).
func findPostgres() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		return filepath.Dir(p), nil
	}
	found, _ := filepath.Glob(pgGlob)
	if len(found) == 0 {
		return "", errors.New("no initdb on PATH or in /usr/lib/postgresql/*/bin (`make postgres` installs Debian's postgresql)")
	}
	slices.SortFunc(found, func(a, b string) int { // newest version last
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(a))))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(b))))
		return va - vb
	})
	return filepath.Dir(found[len(found)-1]), nil
}

// pgServer is a running PostgreSQL server of the harness's.
type pgServer struct {
	bin  string // directory of initdb, postgres and pg_ctl
	dir  string // temporary directory: data/, the socket, postgres.log
	data string
	Port int
	cred *syscall.Credential // the postgres user's when the harness runs as root
	cmd  *exec.Cmd
	done chan struct{} // closed when the postmaster has exited
	err  error         // its exit, once done is closed
	once sync.Once
}

// startPostgres initialises a cluster in a new temporary directory and
// starts a postmaster on it, in its own process group (an interrupt of the
// harness reaches the harness, which stops it). PostgreSQL refuses to run
// as root: then the directory is given to the postgres system user the
// package creates and every PostgreSQL program runs as that user. It
// returns once the server accepts connections.
func startPostgres(ctx context.Context) (*pgServer, error) {
	bin, err := findPostgres()
	if err != nil {
		return nil, err
	}
	s := &pgServer{bin: bin, done: make(chan struct{})}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, and PostgreSQL refuses root: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// Directly under the temporary directory, not inside the harness's
	// (0700, root's): the postgres user must reach it.
	if s.dir, err = os.MkdirTemp("", "engagements-bench-pg-"); err != nil {
		return nil, err
	}
	s.data = filepath.Join(s.dir, "data")
	if s.cred != nil {
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			_ = os.RemoveAll(s.dir)
			return nil, err
		}
	}
	fail := func(err error) (*pgServer, error) {
		s.stop()
		return nil, err
	}
	if out, err := s.command(ctx, "initdb", "-D", s.data, "-U", pgUser, "-A", "trust", "-E", "UTF8",
		"--no-locale", "--no-sync").CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %w\n%s", err, out))
	}
	if s.Port, err = freePort(); err != nil {
		return fail(err)
	}
	log, err := os.Create(filepath.Join(s.dir, "postgres.log"))
	if err != nil {
		return fail(err)
	}
	s.cmd = s.command(context.Background(), "postgres", "-D", s.data, "-p", strconv.Itoa(s.Port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+s.dir,
		"-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "max_connections=100")
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		log.Close()
		close(s.done)
		return fail(fmt.Errorf("postgres: %w", err))
	}
	go func() {
		s.err = s.cmd.Wait()
		log.Close()
		close(s.done)
	}()
	for range 600 { // 30 s
		select {
		case <-s.done:
			return fail(fmt.Errorf("postgres exited before accepting connections (%v): %s", s.err, s.logTail()))
		case <-ctx.Done():
			return fail(ctx.Err())
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(cctx, s.ConnString())
		if err == nil {
			err = conn.Ping(cctx)
			conn.Close(cctx)
		}
		cancel()
		if err == nil {
			return s, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fail(fmt.Errorf("postgres did not accept connections within 30 s: %s", s.logTail()))
}

// command runs a PostgreSQL program from s.bin in s.dir, as the postgres
// user when the harness is root, in a process group of its own.
func (s *pgServer) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "TZ=UTC"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.cred}
	return cmd
}

// ConnString is the keyword/value connection string for the server, over
// TCP on the loopback interface.
func (s *pgServer) ConnString() string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=postgres sslmode=disable", s.Port, pgUser)
}

// Pid is the postmaster's process id (0 if it never started).
func (s *pgServer) Pid() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// stop shuts the server down (`pg_ctl stop -m fast`: open transactions are
// rolled back, the shutdown checkpoint is written), waits for the
// postmaster to exit — killing its process group when it does not within a
// minute — and removes the directory. Safe to call more than once.
func (s *pgServer) stop() error {
	var err error
	s.once.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			select {
			case <-s.done:
			default:
				if out, e := s.command(context.Background(), "pg_ctl", "stop", "-D", s.data, "-m", "fast", "-w",
					"-t", "60").CombinedOutput(); e != nil {
					err = fmt.Errorf("pg_ctl stop: %w: %s", e, strings.TrimSpace(string(out)))
				}
				select {
				case <-s.done:
				case <-time.After(time.Minute):
					_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
					<-s.done
					err = errors.Join(err, errors.New("postgres did not stop within a minute: killed"))
				}
			}
		}
		err = errors.Join(err, os.RemoveAll(s.dir))
	})
	return err
}

// logTail is the last lines of the server's log, for errors.
func (s *pgServer) logTail() string {
	f, err := os.Open(filepath.Join(s.dir, "postgres.log"))
	if err != nil {
		return "(no log)"
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 10 {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, " | ")
}
