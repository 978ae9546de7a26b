// Command helmd is a long-lived helm for the alecton operator: one Go process on the Helm
// SDK that serves many helm actions at once, instead of one helm process per action.
//
// Protocol: one JSON object per line. On stdin, requests
//
//	{"id": 7, "args": ["upgrade", "--install", ...], "env": {"HELM_CACHE_HOME": "..."}, "inCluster": false}
//
// and cancels {"cancel": 7}; on stdout, one response per request, in the order they finish:
//
//	{"id": 7, "code": 0, "stdout": "...", "stderr": "..."}
//
// where code, stdout and stderr are what the helm CLI prints and returns for those args.
// Arguments helmd does not serve get code 2 and an `Error: helmd does not serve ...` line;
// the caller then runs the CLI. On SIGTERM or at the end of stdin, everything in flight is
// cancelled (an upgrade then marks its release failed, as the CLI does on SIGTERM) and
// helmd exits after a short grace.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"helm.sh/helm/v4/pkg/kube"
)

type request struct {
	ID        *int64            `json:"id"`
	Cancel    *int64            `json:"cancel"`
	Args      []string          `json:"args"`
	Env       map[string]string `json:"env"`
	InCluster bool              `json:"inCluster"`
}

type response struct {
	ID     int64  `json:"id"`
	Code   int    `json:"code"`
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
}

// maxLine bounds one request line: argv and env only (values travel in files).
const maxLine = 16 << 20

// server tracks the requests in flight so that a cancel or shutdown reaches them.
type server struct {
	clients *clientCache
	mu      sync.Mutex
	running map[int64]context.CancelFunc
	wg      sync.WaitGroup
	outMu   sync.Mutex
	out     *bufio.Writer
}

func (s *server) reply(r response) {
	line, err := json.Marshal(r)
	if err != nil { // strings and ints only: cannot happen
		line = []byte(`{"id":` + strconv.FormatInt(r.ID, 10) + `,"code":1,"stdout":"","stderr":"Error: helmd: unencodable response\n"}`)
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	_, _ = s.out.Write(append(line, '\n'))
	_ = s.out.Flush()
}

func (s *server) start(ctx context.Context, req request) {
	id := *req.ID
	ctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	if _, dup := s.running[id]; dup {
		s.mu.Unlock()
		cancel()
		s.reply(response{ID: id, Code: 2, Stderr: fmt.Sprintf("Error: helmd: request %d is already running\n", id)})
		return
	}
	s.running[id] = cancel
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.running, id)
			s.mu.Unlock()
			cancel()
		}()
		code, stdout, stderr := run(ctx, s.clients, req)
		s.reply(response{ID: id, Code: code, Stdout: stdout, Stderr: stderr})
	}()
}

func (s *server) cancel(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cancel, ok := s.running[id]; ok {
		cancel()
	}
}

func (s *server) cancelAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cancel := range s.running {
		cancel()
	}
}

// shutdown cancels everything in flight and waits up to `grace` for the answers.
func (s *server) shutdown(grace time.Duration) {
	s.cancelAll()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		s.mu.Lock()
		left := len(s.running)
		s.mu.Unlock()
		fmt.Fprintf(os.Stderr, "helmd: %d requests still running after %s; exiting\n", left, grace)
	}
}

func main() {
	// The field manager of server-side apply, as the helm CLI names itself.
	kube.ManagedFieldsManager = "helm"
	grace := 10 * time.Second
	if value, err := time.ParseDuration(os.Getenv("HELMD_SHUTDOWN_GRACE")); err == nil {
		grace = value
	}
	idle := 5 * time.Minute
	if value, err := time.ParseDuration(os.Getenv("HELMD_CLIENT_IDLE")); err == nil {
		idle = value
	}
	s := &server{
		clients: newClientCache(idle),
		running: map[int64]context.CancelFunc{},
		out:     bufio.NewWriter(os.Stdout),
	}
	go s.clients.evictLoop()

	ended := make(chan struct{})
	go func() {
		defer close(ended)
		s.readRequests(os.Stdin)
	}()
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, os.Interrupt)
	select {
	case <-ended:
	case <-signals:
	}
	s.shutdown(grace)
}

func (s *server) readRequests(in *os.File) {
	scanner := bufio.NewScanner(in)
	scanner.Buffer(make([]byte, 64<<10), maxLine)
	for scanner.Scan() {
		var req request
		if err := json.Unmarshal(scanner.Bytes(), &req); err != nil {
			fmt.Fprintf(os.Stderr, "helmd: unreadable request line: %v\n", err)
			continue
		}
		switch {
		case req.Cancel != nil:
			s.cancel(*req.Cancel)
		case req.ID != nil:
			s.start(context.Background(), req)
		default:
			fmt.Fprintln(os.Stderr, "helmd: request without id or cancel")
		}
	}
	if err := scanner.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "helmd: reading requests: %v\n", err)
	}
}
