package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/discovery"

	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
)

func TestArgumentsHelmdDoesNotServeAreCode2(t *testing.T) {
	for _, args := range [][]string{
		{"version"},
		{"template", "x", "./chart"},
		{"upgrade", "--install", "--set", "a=b", "--", "r", "./chart"},
		{"history", "--output", "table", "--", "r"},
		{"get", "values", "r"},
	} {
		code, _, stderr := run(context.Background(), newClientCache(time.Minute), request{Args: args})
		if code != 2 || !strings.HasPrefix(stderr, "Error: helmd does not serve") {
			t.Errorf("%v: code %d, stderr %q", args, code, stderr)
		}
	}
}

func TestAnIncompleteKubeconfigNeverFallsBackToInCluster(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
	t.Setenv("KUBERNETES_SERVICE_PORT", "443")
	empty := t.TempDir() + "/empty.kubeconfig"
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(context.Background(), newClientCache(time.Minute), request{
		Args: []string{"history", "--kubeconfig", empty, "--namespace", "x", "--output", "json", "--", "r"},
	})
	if code != 1 || strings.Contains(stderr, "10.0.0.1") || !strings.Contains(stderr, "localhost:8080") {
		t.Fatalf("code %d, stderr %q", code, stderr)
	}
}

func TestHistoryRowsAreTheCLIsOldestFirstNewestMax(t *testing.T) {
	deployed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	chart := &chartv2.Chart{Metadata: &chartv2.Metadata{Name: "web", Version: "1.2.3", AppVersion: "9"}}
	var releases []*releasev1.Release
	for revision := 1; revision <= 4; revision++ {
		releases = append(releases, &releasev1.Release{Version: revision, Chart: chart, Info: &releasev1.Info{
			Status: common.StatusSuperseded, Description: "d", LastDeployed: deployed,
		}})
	}
	releases[3].Chart = nil
	out, err := json.Marshal(historyRows(releases, 2))
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"revision":3,"updated":"2026-01-02T03:04:05Z","status":"superseded","chart":"web-1.2.3",` +
		`"app_version":"9","description":"d"},{"revision":4,"updated":"2026-01-02T03:04:05Z",` +
		`"status":"superseded","chart":"MISSING","app_version":"MISSING","description":"d"}]`
	if string(out) != want {
		t.Fatalf("got %s", out)
	}
}

func TestAnAnswerLargerThanTheBoundFailsInsteadOfFillingMemory(t *testing.T) {
	const limit = 1000
	body := func(size int) io.ReadCloser { return io.NopCloser(strings.NewReader(strings.Repeat("x", size))) }
	exact, err := io.ReadAll(&boundedBody{ReadCloser: body(limit), left: limit})
	if err != nil || len(exact) != limit {
		t.Fatalf("an answer of exactly the bound: %d bytes, %v", len(exact), err)
	}
	if _, err := io.ReadAll(&boundedBody{ReadCloser: body(limit + 1), left: limit}); err == nil {
		t.Fatal("an answer past the bound was read whole")
	}
}

// countingDiscovery counts the refetches asked of it.
type countingDiscovery struct {
	discovery.CachedDiscoveryInterface
	invalidated int
}

func (c *countingDiscovery) Invalidate() { c.invalidated++ }

func TestManyActionsInvalidatingDiscoveryAtOnceRefetchItOnce(t *testing.T) {
	inner := &countingDiscovery{}
	cached := &staleAwareDiscovery{CachedDiscoveryInterface: inner, filled: time.Now().Add(-discoveryStale)}
	for range 50 { // every action's capabilities invalidate discovery
		cached.Invalidate()
	}
	if inner.invalidated != 1 {
		t.Fatalf("50 invalidations within a moment refetched discovery %d times, want 1", inner.invalidated)
	}
	cached.filled = time.Now().Add(-discoveryStale)
	cached.Invalidate()
	if inner.invalidated != 2 {
		t.Fatal("an invalidation after discoveryStale did not refetch")
	}
}
